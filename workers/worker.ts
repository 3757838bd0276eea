// Worker thread entry (one long-lived piscina task per worker). Wires a Broker to the
// MessagePort the main thread hands sockets and control messages through.

import type { MessagePort } from 'node:worker_threads';
import { Broker } from '../src/broker/broker.ts';
import { configureLog, log } from '../src/log.ts';
import type { SharedLayout } from '../src/threads/shared.ts';
import type { Options } from '../src/config/options.ts';
import type { ServerIdentity } from '../src/protocol/info.ts';
import { whenSocketsClosed, fromPort, type ControlMessage } from '../src/threads/control.ts';
import { ThreadStats } from '../src/monitor/stats.ts';
import { ClosedConnections, answerWorker } from '../src/monitor/collect.ts';
import { compactSoon, startMemoryReducer } from '../src/threads/memory.ts';

export interface WorkerTask {
  thread: number;
  port: MessagePort;
  layout: SharedLayout;
  options: Options;
  identity: ServerIdentity;
  replacement: boolean;
  faultInjection: boolean;
  /** Monitoring counters, one slot per thread (src/monitor/stats.ts). */
  stats: SharedArrayBuffer;
}

export default function run(task: WorkerTask): Promise<void> {
  const { port, thread } = task;
  configureLog(task.options);
  const broker = new Broker(task.options, task.identity, task.layout, thread, task.replacement);
  broker.stats = new ThreadStats(task.stats, thread);
  const closed = new ClosedConnections();
  broker.onClosed = (conn) => closed.add(broker, conn);
  const send = (m: ControlMessage): void => port.postMessage(m);
  broker.faultInjection = task.faultInjection;
  if (task.faultInjection) {
    broker.onRouteFault = () => send({ type: 'fault', target: 'route' });
    broker.onGatewayFault = () => send({ type: 'fault', target: 'gateway' });
    broker.onLeafFault = () => send({ type: 'fault', target: 'leaf' });
  }
  broker.start();
  startMemoryReducer();
  // A thread going down with an uncaught exception (main then reports and replaces it) closes
  // its direct-delivery slots before Node closes its sockets (src/broker/direct.ts).
  process.on('uncaughtExceptionMonitor', () => broker.abandonSockets());

  return new Promise<void>((resolve) => {
    port.on('message', (raw: unknown) => {
      const m = fromPort(raw);
      if ('socket' in m) {
        broker.enqueueConnection(m.socket, m.cid, m.reject === true);
        return;
      }
      const msg = m;
      switch (msg.type) {
        case 'shutdown': {
          broker.shutdown();
          whenSocketsClosed(
            () => broker.openSockets(),
            msg.graceMs,
            () => {
              send({ type: 'stopped', thread });
              port.close();
              resolve();
            },
          );
          break;
        }
        case 'info':
          broker.updateInfo(msg.cluster, msg.connectUrls);
          break;
        case 'reload':
          broker.reload(msg.options, msg.closeExcess);
          break;
        case 'reopen-log':
          broker.reopenLog();
          break;
        case 'settle':
          compactSoon(msg.delayMs);
          break;
        case 'ldm':
          broker.lameDuck(msg.connectUrls ?? []);
          break;
        case 'ldm-close':
          broker.closeClientsSpread(msg.windowMs);
          break;
        case 'snapshot-request':
          send({ type: 'snapshot', from: thread, to: msg.from, ...broker.interestSnapshot() });
          break;
        case 'snapshot':
          broker.applySnapshot(msg.from, msg.position, msg.entries);
          break;
        case 'monitor':
          broker.foldDirect();
          send({ type: 'monitor-reply', id: msg.id, thread, data: answerWorker(broker, closed, msg.query) });
          break;
        default:
          log.warn(`worker ${thread}: unexpected control message ${(msg as { type: string }).type}`);
      }
    });
    send({ type: 'ready', thread });
    if (task.replacement) send({ type: 'snapshot-request', from: thread });
  });
}
