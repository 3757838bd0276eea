// Thread roles and the forwarding rule (src/threads/roles.ts), held against the bridge that a
// route, gateway or leaf thread runs (src/cluster/bridge.ts): every endpoint of the shared
// layout lives in this test's thread, the bridges' peers are fakes that record what they get.

import test from 'ava';
import { createLayout, type SharedLayout } from '../src/threads/shared.ts';
import { Mesh, type MeshHandler } from '../src/threads/mesh.ts';
import { Bridge, type BridgePeer, type PeerSub } from '../src/cluster/bridge.ts';
import { defaultOptions } from '../src/config/options.ts';
import { ThreadRole, countsAsLocal, mayForward } from '../src/threads/roles.ts';
import { FLAG_PLAIN, RecordWriter } from '../src/threads/record.ts';
import { MsgView } from '../src/protocol/msg-view.ts';

/** A peer connection that records what the bridge writes to it. */
class FakePeer implements BridgePeer<FakePeer> {
  closed = false;
  closing = false;
  headers = true;
  lnoc = false;
  pendingBytes = 0;
  socket = { pause(): void {}, resume(): void {} };
  readonly subs = new Map<string, PeerSub<FakePeer>>();
  targetPlain = false;
  targetQueued = false;
  readonly targetGroups: number[] = [];
  inMsgs = 0;
  inBytes = 0;
  outMsgs = 0;
  outBytes = 0;
  text = '';
  logPrefix(): string {
    return 'fake';
  }
  tick(): void {}
  flush(): void {}
  markStalled(): void {}
  close(): void {
    this.closed = true;
  }
  queueString(s: string): void {
    this.text += s;
  }
  writeTail(m: MsgView): void {
    this.text += `MSG ${m.subject()}\n`;
  }
  writeMsg(m: MsgView): void {
    this.text += `MSG ${m.subject()}\n`;
  }
}

const quiet: MeshHandler = { onRecord() {}, onInterest() {}, afterDrain() {}, onSpace() {} };

/** One plain message record for `subject` from `mesh` to thread `to`, as its publisher's thread writes it. */
function sendMsg(mesh: Mesh, to: number, subject: string): void {
  const m = new MsgView();
  m.sb = Buffer.from(subject);
  m.ss = 0;
  m.se = m.sb.length;
  m.pb = Buffer.from('hi');
  m.ps = 0;
  m.pe = 2;
  new RecordWriter(mesh).msg(to, m, FLAG_PLAIN, 7);
  mesh.flush();
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function bridgeOn(layout: SharedLayout, thread: number): { bridge: Bridge<FakePeer>; peer: FakePeer } {
  const bridge = new Bridge<FakePeer>({ ...defaultOptions(), workers: 1 }, layout, thread, false, { verb: 'RS', noun: 'peer' });
  const peer = new FakePeer();
  bridge.attach(peer);
  bridge.register(peer);
  return { bridge, peer };
}

test('the forwarding rule: a message read from a route goes to local subscribers only; one from a gateway also to the routes', (t) => {
  const { worker, route, gateway } = ThreadRole;
  t.true(mayForward(worker, route) && mayForward(worker, gateway) && mayForward(worker, worker));
  t.true(mayForward(route, worker));
  t.false(mayForward(route, route), 'one hop inside a cluster');
  t.false(mayForward(route, gateway), 'nothing read from a route goes out on a gateway');
  t.true(mayForward(gateway, worker) && mayForward(gateway, route), 'a gateway message reaches the local routes, one hop');
  t.false(mayForward(gateway, gateway));
  t.false(countsAsLocal(route, gateway), 'gateway interest is never announced to route peers');
  t.true(countsAsLocal(gateway, route) && countsAsLocal(route, worker));
});

test("the layout names each thread's role: workers first, then the route, gateway and leaf threads that exist", (t) => {
  const layout = createLayout(2, 4096, { route: true, leaf: true });
  t.deepEqual(layout.roles, [ThreadRole.worker, ThreadRole.worker, ThreadRole.route, ThreadRole.leaf]);
  t.is(layout.routeThread, 2);
  t.is(layout.gatewayThread, -1);
  t.is(layout.leafThread, 3);
  t.is(layout.threads, 4);
});

test("a route thread announces its workers' interest to its peers, never the gateway thread's", async (t) => {
  const layout = createLayout(1, 4096, { route: true, gateway: true });
  const { bridge, peer } = bridgeOn(layout, layout.routeThread);
  bridge.start();
  t.teardown(() => bridge.shutdown());
  const worker = new Mesh(layout, 0, false);
  worker.bind(quiet);
  const gateway = new Mesh(layout, layout.gatewayThread, false);
  gateway.bind(quiet);
  gateway.publishInterest('from.gateway', null, 1);
  gateway.flush();
  worker.publishInterest('from.worker', null, 1);
  worker.flush();
  await until(() => peer.text.includes('from.worker'), "the worker's RS+");
  bridge.beforeRead();
  t.is(peer.text, 'RS+ $G from.worker\r\n');
});

test('a gateway thread forwards what workers publish to its peers, never what the route thread read', async (t) => {
  const layout = createLayout(1, 4096, { route: true, gateway: true });
  const { bridge, peer } = bridgeOn(layout, layout.gatewayThread);
  bridge.peerSubscribed(peer, 'x', null, 1);
  bridge.start();
  t.teardown(() => bridge.shutdown());
  const worker = new Mesh(layout, 0, false);
  worker.bind(quiet);
  const route = new Mesh(layout, layout.routeThread, false);
  route.bind(quiet);
  sendMsg(route, layout.gatewayThread, 'x');
  sendMsg(worker, layout.gatewayThread, 'x');
  await until(() => peer.text.includes('MSG x'), "the worker's message");
  bridge.beforeRead();
  t.is(peer.text, 'MSG x\n', "one message: the worker's");
});

test('the leaf rows: a leaf thread takes what is published here and what routes and gateways bring (for the leafs this server is the hub of), and hands leaf messages everywhere', (t) => {
  const { worker, route, gateway, leaf } = ThreadRole;
  t.true(mayForward(worker, leaf), 'a local publish reaches the leafs');
  t.true(mayForward(route, leaf) && mayForward(gateway, leaf), 'a routed or gatewayed message reaches the leafs this server is the hub of');
  t.true(
    mayForward(leaf, worker) && mayForward(leaf, route) && mayForward(leaf, gateway),
    'a message from a leaf is handled like a local publish',
  );
  t.false(mayForward(leaf, leaf), 'leaf to leaf stays inside the one leaf thread');
  t.true(countsAsLocal(route, leaf), "a hub announces its leafs' interest to its routes");
  t.true(countsAsLocal(leaf, route) && countsAsLocal(leaf, worker), "a hub announces its cluster's interest to its leafs");
});
