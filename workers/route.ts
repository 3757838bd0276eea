// Route thread entry (one long-lived piscina task on a dedicated one-thread pool): the route
// control plane on src/cluster/peer-thread.ts, with the messages only routes answer.
// Solicited routes are dialled from here, not from main.

import { RouteControl, type ClusterTask } from '../src/cluster/route-control.ts';
import { runPeerThread, type PeerThreadTask } from '../src/cluster/peer-thread.ts';
import { answerRoute } from '../src/monitor/collect.ts';

export interface RouteTask extends ClusterTask, PeerThreadTask {}

export default function run(task: RouteTask): Promise<void> {
  const { thread } = task;
  return runPeerThread(
    task,
    'route',
    (send) => new RouteControl(task, send),
    (cluster, msg, send) => {
      switch (msg.type) {
        case 'info':
          return true; // client INFO is the client workers' business
        case 'reload':
          cluster.reload(msg.options, msg.clientUrls ?? [], msg.routesAdded ?? [], msg.routesRemoved ?? []);
          return true;
        case 'gateway-outbounds':
          cluster.setGatewayOutbounds(msg.outbounds);
          return true;
        case 'ldm':
          cluster.lameDuck();
          return true;
        case 'monitor':
          send({ type: 'monitor-reply', id: msg.id, thread, data: answerRoute(cluster, msg.query) });
          return true;
        default:
          return false;
      }
    },
  );
}
