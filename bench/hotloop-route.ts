// The route thread's receive path without sockets and threads: RMSG frames parsed by the
// server-to-server parser, routed by the route thread's bridge into the ring of the worker
// that holds the subscriber, and that worker's Broker draining them into the subscriber's
// output. Both ends run in this one thread, one after the other per read, so ns per message is
// the JS cost of the whole receive side of a route (apart from syscalls and wake-ups).
//
//   npm run bench:hotloop-route              # 16 B
//   SIZE=1024 N=2000000 npm run bench:hotloop-route

import type { Socket } from 'node:net';
import { Broker } from '../src/broker/broker.ts';
import { Bridge, type BridgePeer, type PeerSub } from '../src/cluster/bridge.ts';
import { createLayout } from '../src/threads/shared.ts';
import type { Mesh } from '../src/threads/mesh.ts';
import { CountingSocket, hotloopOpts as opts, runRounds } from './hotloop-kit.ts';
import { PeerParser } from '../src/protocol/peer-parser.ts';
import { ConnKind } from '../src/conn/base.ts';
import type { MsgView } from '../src/protocol/msg-view.ts';

/** The route peer the messages come from (it sends only; nothing is written to it here). */
class SendingPeer implements BridgePeer<SendingPeer> {
  closed = false;
  closing = false;
  headers = true;
  lnoc = false;
  pendingBytes = 0;
  socket = { pause(): void {}, resume(): void {} };
  readonly subs = new Map<string, PeerSub<SendingPeer>>();
  targetPlain = false;
  targetQueued = false;
  readonly targetGroups: number[] = [];
  inMsgs = 0;
  inBytes = 0;
  outMsgs = 0;
  outBytes = 0;
  logPrefix(): string {
    return 'peer';
  }
  tick(): void {}
  flush(): void {}
  markStalled(): void {}
  close(): void {}
  queueString(): void {}
  writeTail(): void {}
  writeMsg(): void {}
}

const layout = createLayout(1, opts.maxControlLine, { route: true });
const broker = new Broker(opts, { serverId: 'NHOTLOOP', serverName: 'hotloop', host: '127.0.0.1', port: 0 }, layout, 0, false);
const bridge = new Bridge<SendingPeer>(opts, layout, layout.routeThread, false, { verb: 'RS', noun: 'route' });
const peer = new SendingPeer();
bridge.attach(peer);
bridge.register(peer, false);
// (The meshes are driven by hand below: both ends live in this thread.)
const brokerMesh = (broker as unknown as { mesh: Mesh }).mesh;
const bridgeMesh = (bridge as unknown as { mesh: Mesh }).mesh;
bridgeMesh.bind(bridge);

const sub = new CountingSocket();
broker.addConnection(sub as unknown as Socket, 1, false);
sub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\nSUB bench.x 1\r\n'));
brokerMesh.flush();
bridgeMesh.poll(); // the route thread learns the subscription

const parser = new PeerParser(
  {
    closing: false,
    onControl(): void {},
    onMsg(m: MsgView): void {
      peer.inMsgs++;
      peer.inBytes += m.pe - m.ps;
      bridge.fromPeer(peer, m);
    },
    onParseError(kind, detail): void {
      throw new Error(`${kind}: ${detail}`);
    },
  },
  ConnKind.route,
);

runRounds(
  'RMSG $G bench.x',
  (chunk) => {
    parser.parse(chunk);
    bridge.flushAll(); // commit the read's records (and ring the worker)
    brokerMesh.poll(); // the worker takes them and writes the subscriber's output
  },
  sub,
  'delivered_bytes',
);
