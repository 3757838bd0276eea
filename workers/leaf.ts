// Leaf thread entry (one long-lived piscina task on a dedicated one-thread pool): the leaf
// control plane on src/cluster/peer-thread.ts, with the messages only leaf nodes answer.
// Remotes are dialled from here, not from main.

import { LeafControl, type LeafTask as LeafControlTask } from '../src/cluster/leaf-control.ts';
import { runPeerThread, type PeerThreadTask } from '../src/cluster/peer-thread.ts';
import { answerLeaf } from '../src/monitor/collect.ts';

export interface LeafTask extends LeafControlTask, PeerThreadTask {}

export default function run(task: LeafTask): Promise<void> {
  const { thread } = task;
  return runPeerThread(
    task,
    'leaf',
    () => new LeafControl(task),
    (leaf, msg, send) => {
      switch (msg.type) {
        case 'info':
          leaf.setClusterName(msg.cluster);
          return true;
        case 'leaf-urls':
          leaf.setPeerLeafUrls(msg.urls);
          return true;
        case 'reload':
          leaf.reload(msg.options);
          return true;
        case 'ldm':
          return true; // leaf connections stay up in lame duck mode, as routes do
        case 'monitor':
          send({ type: 'monitor-reply', id: msg.id, thread, data: answerLeaf(leaf, msg.query) });
          return true;
        default:
          return false;
      }
    },
  );
}
