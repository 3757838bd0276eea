// Gateway thread entry (one long-lived piscina task on a dedicated one-thread pool). Wires the
// gateway control plane (and its bridge) to the MessagePort main hands accepted gateway sockets
// and control messages through. Outbound gateways are dialled from here, not from main.

import type { MessagePort } from 'node:worker_threads';
import { GatewayControl, type GatewayTask } from '../src/cluster/gateway-control.ts';
import { configureLog, log } from '../src/log.ts';
import { whenSocketsClosed, fromPort, type ControlMessage } from '../src/threads/control.ts';
import { RouteStats, ThreadStats } from '../src/monitor/stats.ts';
import { startMemoryReducer } from '../src/threads/memory.ts';

export interface GatewayThreadTask extends GatewayTask {
  port: MessagePort;
  /** Monitoring counters, one slot per thread (src/monitor/stats.ts). */
  stats: SharedArrayBuffer;
}

export default function run(task: GatewayThreadTask): Promise<void> {
  const { port, thread } = task;
  configureLog(task.options);
  const send = (m: ControlMessage): void => port.postMessage(m);
  const gateways = new GatewayControl(task, send);
  gateways.bridge.stats = new RouteStats(new ThreadStats(task.stats, thread));
  gateways.start();
  startMemoryReducer();

  return new Promise<void>((resolve) => {
    port.on('message', (raw: unknown) => {
      const m = fromPort(raw);
      if ('socket' in m) {
        gateways.addInbound(m.socket, m.cid);
        return;
      }
      const msg = m;
      switch (msg.type) {
        case 'shutdown': {
          gateways.shutdown();
          whenSocketsClosed(() => gateways.openSockets(), msg.graceMs, () => {
            send({ type: 'stopped', thread });
            port.close();
            resolve();
          });
          break;
        }
        case 'info':
        case 'ldm':
          break; // clients' and routes' business
        case 'reload':
          gateways.reload(msg.options);
          break;
        case 'reopen-log':
          gateways.reopenLog();
          break;
        case 'gateway-route-peer':
          gateways.routePeer(msg.add, msg.gatewayUrl, msg.serverName, msg.serverId);
          break;
        case 'gateway-gossip':
          gateways.fromRoute(msg.gateway, msg.urls);
          break;
        case 'crash':
          // Only sent when the server runs with SKEIN_FAULT_INJECTION=1 (tests), on a client's
          // PUB to $SKEIN.FAULT.CRASH.GATEWAY.
          setImmediate(() => {
            throw new Error('fault injection: gateway thread crash requested');
          });
          break;
        case 'snapshot-request':
          send({ type: 'snapshot', from: thread, to: msg.from, ...gateways.interestSnapshot(msg.from) });
          break;
        case 'snapshot':
          gateways.applySnapshot(msg.from, msg.position, msg.entries);
          break;
        case 'monitor':
          send({
            type: 'monitor-reply', id: msg.id, thread,
            data: msg.query.kind === 'gatewayz' ? gateways.gatewayz(msg.query.accs, msg.query.gwName) : null,
          });
          break;
        default:
          log.warn(`gateway thread: unexpected control message ${(msg as { type: string }).type}`);
      }
    });
    send({ type: 'ready', thread });
    if (task.replacement) send({ type: 'snapshot-request', from: thread });
  });
}
