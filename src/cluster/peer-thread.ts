// The body of a route, gateway or leaf thread entry (workers/route.ts, gateway.ts, leaf.ts): one
// long-lived piscina task on a dedicated one-thread pool that wires the role's control plane
// (and its bridge) to the MessagePort main hands accepted sockets and control messages
// through. The messages every role answers alike (shutdown, reopen-log, crash, the interest
// snapshot of a replacement thread) are answered here; the entry file answers the rest.
//
// Runs on the role's thread only.

import type { Socket } from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import type { Options } from '../config/options.ts';
import { configureLog, log } from '../log.ts';
import { whenSocketsClosed, fromPort, type ControlMessage } from '../threads/control.ts';
import { RouteStats, ThreadStats } from '../monitor/stats.ts';
import { startMemoryReducer } from '../threads/memory.ts';
import type { InterestSnapshot } from './peer-control.ts';

/** What main hands every role thread, whatever its role. */
export interface PeerThreadTask {
  port: MessagePort;
  thread: number;
  options: Options;
  /** Monitoring counters, one slot per thread (src/monitor/stats.ts). */
  stats: SharedArrayBuffer;
  /** This thread replaces one that died: it asks the others for their interest. */
  replacement: boolean;
}

/** What the thread asks of its control plane (cluster/peer-control.ts PeerControl has it all). */
export interface PeerThreadControl {
  readonly bridge: { stats: RouteStats };
  start(): void;
  addInbound(socket: Socket, cid: number): void;
  shutdown(): void;
  openSockets(): number;
  reopenLog(): void;
  interestSnapshot(to: number): InterestSnapshot;
  applySnapshot(from: number, position: number, entries: [string, string | null, number][]): void;
}

/**
 * Run the thread until main says shutdown: `create` builds the control plane (the log is
 * configured first); `answer` gets every message the roles do not share and returns false
 * for one it does not know (logged as unexpected). `role` names the thread in log lines and
 * in the fault-injection crash.
 */
export function runPeerThread<T extends PeerThreadControl>(
  task: PeerThreadTask,
  role: 'route' | 'gateway' | 'leaf',
  create: (send: (m: ControlMessage) => void) => T,
  answer: (control: T, m: ControlMessage, send: (m: ControlMessage) => void) => boolean,
): Promise<void> {
  const { port, thread } = task;
  configureLog(task.options);
  const send = (m: ControlMessage): void => port.postMessage(m);
  const control = create(send);
  control.bridge.stats = new RouteStats(new ThreadStats(task.stats, thread));
  control.start();
  startMemoryReducer();

  return new Promise<void>((resolve) => {
    port.on('message', (raw: unknown) => {
      const m = fromPort(raw);
      if ('socket' in m) {
        control.addInbound(m.socket, m.cid);
        return;
      }
      const msg = m;
      switch (msg.type) {
        case 'shutdown':
          control.shutdown();
          whenSocketsClosed(
            () => control.openSockets(),
            msg.graceMs,
            () => {
              send({ type: 'stopped', thread });
              port.close();
              resolve();
            },
          );
          return;
        case 'reopen-log':
          control.reopenLog();
          return;
        case 'crash':
          // Only sent when the server runs with SKEIN_FAULT_INJECTION=1 (tests), on a client's
          // PUB to $SKEIN.FAULT.CRASH.ROUTE (.GATEWAY, .LEAF).
          setImmediate(() => {
            throw new Error(`fault injection: ${role} thread crash requested`);
          });
          return;
        case 'snapshot-request':
          send({ type: 'snapshot', from: thread, to: msg.from, ...control.interestSnapshot(msg.from) });
          return;
        case 'snapshot':
          control.applySnapshot(msg.from, msg.position, msg.entries);
          return;
        default:
          if (!answer(control, msg, send)) log.warn(`${role} thread: unexpected control message ${(msg as { type: string }).type}`);
      }
    });
    send({ type: 'ready', thread });
    if (task.replacement) send({ type: 'snapshot-request', from: thread });
  });
}
