// Interest across leaf connections (../shared/protocol.md §8.5, 8.7): a leaf announces only its
// own local interest (its clients, and leafs for which it is the hub), never what it learned
// from its routes or its hub; a hub announces its whole cluster's interest and its other
// leafs', with cluster-wide queue weights, and never a leaf's own interest back to it.
//
// Each test runs on all-nats-server topologies, and on skein and mixed ones only with skein leaf nodes (on since issue 13).

import { deliveryBarrier, interestSeen, uid, waitFor } from './helpers/cluster.ts';
import { LeafTopology, leafTest, waitLeafInterest } from './helpers/leaf.ts';
import { FakeHub, leafToHub, type LeafPeer } from './helpers/leafpeer.ts';
import { getJson } from './helpers/monitor.ts';

const until = (peer: LeafPeer, cond: (i: Map<string, number>) => boolean, what: string): Promise<true> =>
  peer.until(() => (cond(peer.interest()) ? true : undefined), 15_000, what);

leafTest(
  "a hub announces its whole cluster's interest and its other leafs' to a leaf, with cluster-wide queue weights",
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, [
      { name: 'h1', impl: mix.hub, cluster: 'H', accept: true },
      { name: 'h2', impl: mix.hub, cluster: 'H' },
      { name: 'other', impl: mix.leaf, remotes: ['h1'] },
    ]);
    await topo.waitConnected();
    const [h1, h2, other] = [await topo.client('h1'), await topo.client('h2'), await topo.client('other')];
    await interestSeen(h2, [h1]); // the route is up
    const s = await leafToHub(topo.node('h1').leafPort, { name: 'raw' });
    t.teardown(() => s.peer.close());
    const id = uid();
    h2.subscribe(`from.h2.${id}`);
    h2.subscribe(`work.${id}`, { queue: 'wq' });
    await h2.flush();
    await until(s.peer, (i) => i.has(`from.h2.${id}`) && i.get(`work.${id} wq`) === 1, "h2's interest, through h1");
    h1.subscribe(`work.${id}`, { queue: 'wq' });
    await h1.flush();
    await until(s.peer, (i) => i.get(`work.${id} wq`) === 2, "the weight counting h1's member too");
    other.subscribe(`from.other.${id}`);
    await other.flush();
    await until(s.peer, (i) => i.has(`from.other.${id}`), "the other leaf's interest");
    t.pass();
  },
);

leafTest("a leaf announces only its own local interest: not its route peers', but its own leafs'", ['leaf', 'below'], async (t, mix) => {
  t.timeout(120_000);
  const fake = await FakeHub.start({ subs: ['from.hub'] });
  t.teardown(() => fake.close());
  const topo = await LeafTopology.start(t, [
    { name: 'l1', impl: mix.leaf, cluster: 'L', accept: true, remotes: [{ urls: [`nats-leaf://127.0.0.1:${fake.port}`] }] },
    { name: 'l2', impl: mix.leaf, cluster: 'L' },
    { name: 'below', impl: mix.below, remotes: ['l1'] },
  ]);
  await topo.waitConnected();
  const peer = await fake.accepted(1);
  const [l1, l2, below] = [await topo.client('l1'), await topo.client('l2'), await topo.client('below')];
  await interestSeen(l2, [l1]); // the route is up and carries l2's interest to l1
  const id = uid();
  l2.subscribe(`on.l2.${id}`);
  await l2.flush();
  await interestSeen(l2, [l1]); // l1 knows it now
  l1.subscribe(`on.l1.${id}`);
  below.subscribe(`on.below.${id}`);
  await Promise.all([l1.flush(), below.flush()]);
  await until(peer, (i) => i.has(`on.l1.${id}`) && i.has(`on.below.${id}`), "l1's and below's interest");
  await peer.ping();
  t.false(peer.interest().has(`on.l2.${id}`), "a route peer's interest is not announced to the hub");
  t.false(peer.interest().has('from.hub'), "the hub's own interest is not sent back");
  const ldsLines = [...peer.interest().keys()].filter((k) => k.startsWith('$LDS.'));
  t.true(ldsLines.length >= 2, `l1's own $LDS. subject and below's: ${ldsLines}`);
});

leafTest("a leaf's LS+ and LS- are passed on to the hub's other leafs, and never come back to it", ['hub'], async (t, mix) => {
  t.timeout(60_000);
  const topo = await LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, accept: true }]);
  const a = await leafToHub(topo.node('hub').leafPort, { name: 'a', subs: ['x.a'] });
  t.teardown(() => a.peer.close());
  const b = await leafToHub(topo.node('hub').leafPort, { name: 'b' });
  t.teardown(() => b.peer.close());
  await until(b.peer, (i) => i.has('x.a'), "a's LS+ on b");
  a.peer.unsub('x.a');
  await until(b.peer, (i) => !i.has('x.a'), "a's LS- on b");
  t.true(b.peer.frames.some((f) => f.line === 'LS- x.a'));
  await a.peer.ping();
  t.false(a.peer.frames.some((f) => f.line.includes('x.a')));
});

leafTest(
  "interest made on a tail is announced hop by hop up to the hub, and a hub's down to the tail",
  ['hub', 'mid', 'tail'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub },
      { name: 'mid', impl: mix.mid, remotes: ['hub'] },
      { name: 'tail', impl: mix.tail, remotes: ['mid'] },
    ]);
    await topo.waitConnected();
    const tail = await topo.client('tail');
    const hub = await topo.client('hub');
    const id = uid();
    tail.subscribe(`deep.${id}`, { queue: 'tq' });
    hub.subscribe(`high.${id}`);
    await Promise.all([tail.flush(), hub.flush()]);
    // mid's connection from tail carries tail's interest; hub's connection from mid carries it on.
    await waitLeafInterest(topo, 'mid', [`deep.${id}`, `high.${id}`]);
    await waitLeafInterest(topo, 'hub', [`deep.${id}`]);
    await waitLeafInterest(topo, 'tail', [`high.${id}`]);
    // And a message follows it: published on the hub, the tail's queue member gets it.
    const got: string[] = [];
    tail.subscribe(`deep2.${id}`, { callback: (_e, m) => got.push(m.string()) });
    await interestSeen(tail, [hub]);
    hub.publish(`deep2.${id}`, 'down two hops');
    await waitFor(() => got.length === 1, 10_000, 'the message');
    t.deepEqual(got, ['down two hops']);
  },
);

leafTest(
  'JetStream subjects never cross a leaf connection: a hub does not announce them, and a literal LS+ for one is a Permissions Violation',
  ['hub'],
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, accept: true }]);
    const hub = await topo.client('hub');
    const id = uid();
    for (const s of [`$JS.API.INFO`, `$KV.b.${id}`, `$OBJ.o.${id}`, '$KV.*', '$KV', `plain.${id}`]) hub.subscribe(s);
    await hub.flush();
    const s = await leafToHub(topo.node('hub').leafPort);
    t.teardown(() => s.peer.close());
    await until(s.peer, (i) => i.has(`plain.${id}`), 'the plain subscription');
    await s.peer.ping();
    const js = [...s.peer.interest().keys()].filter((k) => /^\$(JS\.API|KV|OBJ)\./.test(k));
    t.deepEqual(js, [], 'nats-server denies $JS.API.>, $KV.> and $OBJ.> on leaf connections without a shared JetStream domain');
    t.true(s.peer.interest().has('$KV'), 'a bare $KV is not under $KV.>');
    // A wildcard is accepted; a literal subject under the deny is refused and closes the connection
    // (a bare `$KV` is not under the deny).
    s.peer.sub('$KV.>');
    s.peer.sub('$KV');
    await s.peer.ping();
    t.false(s.peer.isClosed());
    s.peer.sub(`$KV.b.${id}`);
    const err = await s.peer.next((f) => f.op === '-ERR', 10_000, 'the -ERR');
    t.is(err.line, `-ERR 'Permissions Violation for Subscription to "$KV.b.${id}"'`);
    await s.peer.closed(10_000);
  },
);

leafTest('a leaf never announces JetStream subjects to its hub (a Go hub would close the connection)', ['leaf'], async (t, mix) => {
  t.timeout(60_000);
  const fake = await FakeHub.start();
  t.teardown(() => fake.close());
  const topo = await LeafTopology.start(t, [{ name: 'leaf', impl: mix.leaf, remotes: [{ urls: [`nats-leaf://127.0.0.1:${fake.port}`] }] }]);
  const peer = await fake.accepted(1);
  const leaf = await topo.client('leaf');
  const id = uid();
  for (const s of [`$JS.API.INFO`, `$KV.b.${id}`, `$OBJ.o.${id}`, `plain.${id}`]) leaf.subscribe(s);
  await leaf.flush();
  await until(peer, (i) => i.has(`plain.${id}`), 'the plain subscription');
  await peer.ping();
  t.deepEqual(
    [...peer.interest().keys()].filter((k) => /^\$(JS\.API|KV|OBJ)\./.test(k)),
    [],
  );
});

leafTest(
  'a `>` across a leaf connection gets no message on $JS.API., $KV. or $OBJ. subjects, either way',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true },
      { name: 'leaf', impl: mix.leaf, remotes: ['hub'] },
      { name: 'other', impl: mix.leaf, remotes: ['hub'] },
    ]);
    await topo.waitConnected();
    const [hub, leaf, other] = [await topo.client('hub'), await topo.client('leaf'), await topo.client('other')];
    const id = uid();
    // What the hub and the other leaf get from the leaf, and the leaf from the hub (each side's
    // own publishes come back to its own `>` too: only the other side's count).
    const got = { hub: [] as string[], leaf: [] as string[], other: [] as string[] };
    hub.subscribe('>', {
      callback: (_e, m) => {
        if (m.string() === `leaf ${id}`) got.hub.push(m.subject);
      },
    });
    leaf.subscribe('>', {
      callback: (_e, m) => {
        if (m.string() === `hub ${id}`) got.leaf.push(m.subject);
      },
    });
    other.subscribe('>', {
      callback: (_e, m) => {
        if (m.string() === `leaf ${id}`) got.other.push(m.subject);
      },
    });
    await Promise.all([hub.flush(), leaf.flush(), other.flush()]);
    // Each `>` has crossed once a probe gets through.
    await waitFor(
      () => {
        hub.publish(`probe.${id}`, `hub ${id}`);
        leaf.publish(`probe.${id}`, `leaf ${id}`);
        return got.hub.length > 0 && got.leaf.length > 0 && got.other.length > 0;
      },
      15_000,
      'the `>` subscriptions to cross',
    );
    const subjects = [
      `$JS.API.STREAM.INFO.${id}`,
      `$KV.b.${id}`,
      `$OBJ.o.${id}`,
      `$JS.ACK.s.${id}`,
      `$KVX.${id}`,
      `plain.${id}`,
      `end.${id}`,
    ];
    for (const s of subjects) {
      hub.publish(s, `hub ${id}`);
      leaf.publish(s, `leaf ${id}`);
    }
    await Promise.all([hub.flush(), leaf.flush()]);
    await waitFor(() => [got.hub, got.leaf, got.other].every((g) => g.includes(`end.${id}`)), 15_000, 'the end markers');
    await deliveryBarrier([hub, leaf, other]);
    // nats-server's default leaf denies ($JS.API.>, $KV.>, $OBJ.>) filter delivery over every leaf
    // connection, both ways; nothing else does.
    const expected = [`$JS.ACK.s.${id}`, `$KVX.${id}`, `plain.${id}`, `end.${id}`];
    t.deepEqual(
      got.hub.filter((s) => !s.startsWith('probe.')),
      expected,
      'from the leaf to the hub',
    );
    t.deepEqual(
      got.leaf.filter((s) => !s.startsWith('probe.')),
      expected,
      'from the hub to the leaf',
    );
    t.deepEqual(
      got.other.filter((s) => !s.startsWith('probe.')),
      expected,
      'from the leaf through the hub to another leaf',
    );

    // A leaf that sends one all the same: the hub delivers it to its own subscribers (nats-server
    // does not check what comes in), never down another leaf connection.
    const raw = await leafToHub(topo.node('hub').leafPort, { name: 'raw' });
    t.teardown(() => raw.peer.close());
    got.hub.length = 0;
    got.other.length = 0;
    for (const s of [`$KV.raw.${id}`, `raw.${id}`]) raw.peer.msg(s, `leaf ${id}`);
    await raw.peer.ping();
    await waitFor(() => got.hub.includes(`raw.${id}`) && got.other.includes(`raw.${id}`), 15_000, "the raw leaf's plain message");
    await deliveryBarrier([hub, other]);
    t.deepEqual(got.hub, [`$KV.raw.${id}`, `raw.${id}`], "the hub's own subscriber gets both");
    t.deepEqual(got.other, [`raw.${id}`], 'the other leaf only the plain one');
  },
);

leafTest(
  "a leaf in a cluster does not pass its hub's interest on to its route peers (a queue group behind the hub is never picked from there)",
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true },
      { name: 'l1', impl: mix.leaf, cluster: 'LC', remotes: ['hub'] },
      { name: 'l2', impl: mix.leaf, cluster: 'LC' },
    ]);
    await topo.waitConnected();
    const [hub, l1, l2] = [await topo.client('hub'), await topo.client('l1'), await topo.client('l2')];
    await interestSeen(l2, [l1]);
    const id = uid();
    const got = { hub: 0, l2: 0 };
    hub.subscribe(`work.${id}`, {
      queue: 'g',
      callback: () => {
        got.hub++;
      },
    });
    await hub.flush();
    await waitLeafInterest(topo, 'l1', [`work.${id}`]);
    // l1 has the hub's member; once l1's own interest (made after) reached l2, the hub's would have too.
    l1.subscribe(`mark.${id}`);
    await l1.flush();
    await interestSeen(l1, [l2]);
    const routes = (await getJson(topo.node('l2').monitorPort, '/routez?subs=1')).routes as { subscriptions_list?: string[] }[];
    const heard = routes.flatMap((r) => r.subscriptions_list ?? []);
    t.true(heard.includes(`mark.${id}`), `l1's own interest reaches l2: ${heard}`);
    t.false(heard.includes(`work.${id}`), "the hub's interest does not");
    // With a member of its own, l2 serves every message it publishes.
    l2.subscribe(`work.${id}`, {
      queue: 'g',
      callback: () => {
        got.l2++;
      },
    });
    await l2.flush();
    for (let i = 0; i < 20; i++) l2.publish(`work.${id}`);
    await l2.flush();
    await waitFor(() => got.l2 === 20, 10_000, "l2's member to get all 20");
    t.is(got.hub, 0);
  },
);
