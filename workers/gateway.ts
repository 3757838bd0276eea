// Gateway thread entry (one long-lived piscina task on a dedicated one-thread pool): the
// gateway control plane on src/cluster/peer-thread.ts, with the messages only gateways answer.
// Outbound gateways are dialled from here, not from main.

import { GatewayControl, type GatewayTask } from '../src/cluster/gateway-control.ts';
import { runPeerThread, type PeerThreadTask } from '../src/cluster/peer-thread.ts';

export interface GatewayThreadTask extends GatewayTask, PeerThreadTask {}

export default function run(task: GatewayThreadTask): Promise<void> {
  const { thread } = task;
  return runPeerThread(
    task,
    'gateway',
    (send) => new GatewayControl(task, send),
    (gateways, msg, send) => {
      switch (msg.type) {
        case 'ldm':
          return true; // clients' and routes' business
        case 'reload':
          gateways.reload(msg.options);
          return true;
        case 'gateway-route-peer':
          gateways.routePeer(msg.add, msg.gatewayUrl, msg.serverName, msg.serverId);
          return true;
        case 'gateway-gossip':
          gateways.fromRoute(msg.gateway, msg.urls);
          return true;
        case 'monitor':
          send({
            type: 'monitor-reply',
            id: msg.id,
            thread,
            data: msg.query.kind === 'gatewayz' ? gateways.gatewayz(msg.query.accs, msg.query.gwName) : null,
          });
          return true;
        default:
          return false;
      }
    },
  );
}
