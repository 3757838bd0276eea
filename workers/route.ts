// Route thread entry (one long-lived piscina task on a dedicated one-thread pool). Wires the
// route control plane (and its bridge) to the MessagePort main hands accepted route sockets
// and control messages through.
// Solicited routes are dialled from here, not from main.

import type { MessagePort } from 'node:worker_threads';
import { RouteControl, type ClusterTask } from '../src/cluster/route-control.ts';
import { configureLog, log } from '../src/log.ts';
import { whenSocketsClosed, fromPort, type ControlMessage } from '../src/threads/control.ts';
import { RouteStats, ThreadStats } from '../src/monitor/stats.ts';
import { answerRoute } from '../src/monitor/collect.ts';
import { startMemoryReducer } from '../src/threads/memory.ts';

export interface RouteTask extends ClusterTask {
  port: MessagePort;
  /** Monitoring counters, one slot per thread (src/monitor/stats.ts). */
  stats: SharedArrayBuffer;
}

export default function run(task: RouteTask): Promise<void> {
  const { port, thread } = task;
  configureLog(task.options);
  const send = (m: ControlMessage): void => port.postMessage(m);
  const cluster = new RouteControl(task, send);
  cluster.bridge.stats = new RouteStats(new ThreadStats(task.stats, thread));
  cluster.start();
  startMemoryReducer();

  return new Promise<void>((resolve) => {
    port.on('message', (raw: unknown) => {
      const m = fromPort(raw);
      if ('socket' in m) {
        cluster.addInbound(m.socket, m.cid);
        return;
      }
      const msg = m;
      switch (msg.type) {
        case 'shutdown': {
          cluster.shutdown();
          whenSocketsClosed(() => cluster.openSockets(), msg.graceMs, () => {
            send({ type: 'stopped', thread });
            port.close();
            resolve();
          });
          break;
        }
        case 'info':
          break; // client INFO is the client workers' business
        case 'reload':
          cluster.reload(msg.options, msg.clientUrls ?? [], msg.routesAdded ?? [], msg.routesRemoved ?? []);
          break;
        case 'reopen-log':
          cluster.reopenLog();
          break;
        case 'gateway-outbounds':
          cluster.setGatewayOutbounds(msg.outbounds);
          break;
        case 'ldm':
          cluster.lameDuck();
          break;
        case 'crash':
          // Only sent when the server runs with SKEIN_FAULT_INJECTION=1 (tests), on a client's
          // PUB to $SKEIN.FAULT.CRASH.ROUTE.
          setImmediate(() => {
            throw new Error('fault injection: route thread crash requested');
          });
          break;
        case 'snapshot-request':
          send({ type: 'snapshot', from: thread, to: msg.from, ...cluster.interestSnapshot(msg.from) });
          break;
        case 'snapshot':
          cluster.applySnapshot(msg.from, msg.position, msg.entries);
          break;
        case 'monitor':
          send({ type: 'monitor-reply', id: msg.id, thread, data: answerRoute(cluster, msg.query) });
          break;
        default:
          log.warn(`route thread: unexpected control message ${(msg as { type: string }).type}`);
      }
    });
    send({ type: 'ready', thread });
    if (task.replacement) send({ type: 'snapshot-request', from: thread });
  });
}
