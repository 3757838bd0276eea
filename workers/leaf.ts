// Leaf thread entry (one long-lived piscina task on a dedicated one-thread pool). Wires the leaf
// control plane (and its bridge) to the MessagePort main hands accepted leaf sockets and control
// messages through. Remotes are dialled from here, not from main.

import type { MessagePort } from 'node:worker_threads';
import { LeafControl, type LeafTask as LeafControlTask } from '../src/cluster/leaf-control.ts';
import { configureLog, log } from '../src/log.ts';
import { whenSocketsClosed, fromPort, type ControlMessage } from '../src/threads/control.ts';
import { RouteStats, ThreadStats } from '../src/monitor/stats.ts';
import { answerLeaf } from '../src/monitor/collect.ts';
import { startMemoryReducer } from '../src/threads/memory.ts';

export interface LeafTask extends LeafControlTask {
  port: MessagePort;
  /** Monitoring counters, one slot per thread (src/monitor/stats.ts). */
  stats: SharedArrayBuffer;
}

export default function run(task: LeafTask): Promise<void> {
  const { port, thread } = task;
  configureLog(task.options);
  const send = (m: ControlMessage): void => port.postMessage(m);
  const leaf = new LeafControl(task);
  leaf.bridge.stats = new RouteStats(new ThreadStats(task.stats, thread));
  leaf.start();
  startMemoryReducer();

  return new Promise<void>((resolve) => {
    port.on('message', (raw: unknown) => {
      const m = fromPort(raw);
      if ('socket' in m) {
        leaf.addInbound(m.socket, m.cid);
        return;
      }
      const msg = m;
      switch (msg.type) {
        case 'shutdown': {
          leaf.shutdown();
          whenSocketsClosed(() => leaf.openSockets(), msg.graceMs, () => {
            send({ type: 'stopped', thread });
            port.close();
            resolve();
          });
          break;
        }
        case 'info':
          leaf.setClusterName(msg.cluster);
          break;
        case 'leaf-urls':
          leaf.setPeerLeafUrls(msg.urls);
          break;
        case 'reload':
          leaf.reload(msg.options);
          break;
        case 'reopen-log':
          leaf.reopenLog();
          break;
        case 'ldm':
          break; // leaf connections stay up in lame duck mode, as routes do
        case 'crash':
          // Only sent when the server runs with SKEIN_FAULT_INJECTION=1 (tests), on a client's
          // PUB to $SKEIN.FAULT.CRASH.LEAF.
          setImmediate(() => {
            throw new Error('fault injection: leaf thread crash requested');
          });
          break;
        case 'snapshot-request':
          send({ type: 'snapshot', from: thread, to: msg.from, ...leaf.interestSnapshot(msg.from) });
          break;
        case 'snapshot':
          leaf.applySnapshot(msg.from, msg.position, msg.entries);
          break;
        case 'monitor':
          send({ type: 'monitor-reply', id: msg.id, thread, data: answerLeaf(leaf, msg.query) });
          break;
        default:
          log.warn(`leaf thread: unexpected control message ${(msg as { type: string }).type}`);
      }
    });
    send({ type: 'ready', thread });
    if (task.replacement) send({ type: 'snapshot-request', from: thread });
  });
}
