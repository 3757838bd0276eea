// The send side of a route without sockets and threads: PUB frames parsed by a worker's Broker,
// handed as ring records to the route thread's bridge, written as RMSG by a real route
// connection (to a socket that only counts bytes). Both ends run in this one thread, one after
// the other per read, so ns per message is the JS cost of the whole send side of a route.
//
//   npm run bench:hotloop-route-send          # 16 B
//   SIZE=1024 N=2000000 npm run bench:hotloop-route-send

import type { Socket } from 'node:net';
import { Broker } from '../src/broker/broker.ts';
import { Bridge } from '../src/cluster/bridge.ts';
import { createLayout } from '../src/threads/shared.ts';
import type { Mesh } from '../src/threads/mesh.ts';
import { CountingSocket, hotloopOpts as opts, runRounds } from './hotloop-kit.ts';
import { RouteConn } from '../src/conn/route.ts';

const layout = createLayout(1, opts.maxControlLine, { route: true });
const broker = new Broker(opts, { serverId: 'NHOTLOOP', serverName: 'hotloop', host: '127.0.0.1', port: 0 }, layout, 0, false);
const bridge = new Bridge<RouteConn>(opts, layout, layout.routeThread, false, { verb: 'RS', noun: 'route' });
const brokerMesh = (broker as unknown as { mesh: Mesh }).mesh;
const bridgeMesh = (bridge as unknown as { mesh: Mesh }).mesh;
bridgeMesh.bind(bridge);
const rsock = new CountingSocket();
const host = {
  markDirty: (c: RouteConn) => bridge.markDirty(c),
  onPeerControl: () => {},
  onPeerMsg: () => {},
  onPeerClosed: () => {},
  onPeerDrained: () => {},
  beforePeerRead: () => {},
  afterPeerRead: () => {},
};
const route = new RouteConn(host, opts, rsock as unknown as Socket, 1, null, false);
route.secured = true;
bridge.attach(route);
bridge.register(route, false);
bridge.peerSubscribed(route, 'bench.x', null, 1);
brokerMesh.applyInterest();
brokerMesh.poll();

const pub = new CountingSocket();
broker.addConnection(pub as unknown as Socket, 1, false);
pub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\n'));
runRounds(
  'PUB bench.x',
  (chunk) => {
    pub.emit('data', chunk); // the worker parses and commits the read's records
    bridgeMesh.poll(); // the route thread takes them and writes RMSG
  },
  rsock,
  'route_bytes',
);
