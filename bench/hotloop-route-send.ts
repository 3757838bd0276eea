// The send side of a route without sockets and threads: PUB frames parsed by a worker's Broker,
// handed as ring records to the route thread's bridge, written as RMSG by a real route
// connection (to a socket that only counts bytes). Both ends run in this one thread, one after
// the other per read, so ns per message is the JS cost of the whole send side of a route.
//
//   npm run bench:hotloop-route-send          # 16 B
//   SIZE=1024 N=2000000 npm run bench:hotloop-route-send
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Broker } from '../src/broker/broker.ts';
import { Bridge } from '../src/cluster/bridge.ts';
import { createLayout } from '../src/threads/shared.ts';
import type { Mesh } from '../src/threads/mesh.ts';
import { defaultOptions } from '../src/config/options.ts';
import { RouteConn } from '../src/conn/route.ts';

class CountingSocket extends EventEmitter {
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  destroyed = false;
  written = 0;
  setNoDelay(): void {}
  setKeepAlive(): void {}
  cork(): void {}
  uncork(): void {}
  resume(): void {}
  pause(): void {}
  end(): void {}
  ref(): void {}
  unref(): void {}
  destroy(): void {
    this.destroyed = true;
  }
  write(b: Buffer, cb?: () => void): boolean {
    this.written += b.length;
    if (cb !== undefined) cb();
    return true;
  }
}

const opts = { ...defaultOptions(), workers: 1, maxPending: Number.MAX_SAFE_INTEGER };
const size = Number(process.env.SIZE ?? 16);
const total = Number(process.env.N ?? 5_000_000);
const rounds = Number(process.env.ROUNDS ?? 3);

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
const frame = Buffer.concat([Buffer.from(`PUB bench.x ${size}\r\n`), Buffer.alloc(size, 97), Buffer.from('\r\n')]);
const perChunk = Math.max(1, Math.floor(65536 / frame.length));
const chunk = Buffer.concat(Array(perChunk).fill(frame));
const chunks = Math.ceil(total / perChunk);
for (let r = 0; r < rounds; r++) {
  const before = rsock.written;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < chunks; i++) {
    pub.emit('data', chunk); // the worker parses and commits the read's records
    bridgeMesh.poll(); // the route thread takes them and writes RMSG
  }
  const ns = Number(process.hrtime.bigint() - t0);
  const msgs = chunks * perChunk;
  const sent = rsock.written - before;
  if (sent === 0) throw new Error('nothing was sent on the route');
  console.log(
    `round=${r + 1} size=${size} msgs=${msgs} ns_per_msg=${(ns / msgs).toFixed(1)} msgs_per_s=${((msgs / ns) * 1e9).toFixed(0)} route_bytes=${sent}`,
  );
}
process.exit(0);
