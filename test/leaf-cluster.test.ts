// Leaf nodes with clusters and gateways (../shared/protocol.md §8.5-8.7): a leaf attached to one
// server of a cluster serves the whole cluster; a leaf cluster needs a remote on every member
// that must reach the hub (a member without one is cut off), and the hub never sends a message
// down a second connection of the same leaf cluster; messages from a leaf go out on gateways.
//
// Each test runs on all-nats-server topologies, and on skein and mixed ones only with skein leaf nodes (on since issue 13). The gateway test
// runs all-nats-server, all-skein and with skein in each one place (a request from cluster B to
// the leaf has its reply mapped `_GR_.`, which the leaf sends up to its hub: leafnode.go gwLeafSubs).

import { checkPubSub, checkRequestReply, deliveryBarrier, interestSeen, uid, waitFor } from './helpers/cluster.ts';
import { HUB_CLUSTER_MIXES, LeafTopology, leafClusterOnTwoHubs, leafTest } from './helpers/leaf.ts';
import { FakeHub, leafToHub, rawRoute } from './helpers/leafpeer.ts';
import { rawSession } from './helpers/raw.ts';

leafTest('a leaf attached to one server of a cluster reaches, and is reached from, every server of it', ['hub', 'leaf'], async (t, mix) => {
  t.timeout(180_000);
  const topo = await LeafTopology.start(t, [
    { name: 'h1', impl: mix.hub, cluster: 'H', accept: true },
    { name: 'h2', impl: mix.hub, cluster: 'H' },
    { name: 'h3', impl: mix.hub, cluster: 'H' },
    { name: 'leaf', impl: mix.leaf, remotes: ['h1'] },
  ]);
  await topo.waitConnected();
  const ncs = [await topo.client('leaf'), await topo.client('h1'), await topo.client('h2'), await topo.client('h3')];
  for (const nc of ncs.slice(1)) await interestSeen(nc, ncs.slice(1)); // the full mesh is up
  await checkPubSub(t, ncs);
  await checkRequestReply(t, ncs);
});

leafTest(
  'every member of a leaf cluster with its own remote gets a hub message once; a member without a remote is cut off',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true },
      { name: 'l1', impl: mix.leaf, cluster: 'LC', remotes: ['hub'] },
      { name: 'l2', impl: mix.leaf, cluster: 'LC', remotes: ['hub'] },
      { name: 'l3', impl: mix.leaf, cluster: 'LC' },
    ]);
    await topo.waitConnected();
    // The hub sees two connections, both from cluster LC.
    t.is((await topo.leafz('hub')).leafnodes, 2);
    const [hub, l1, l2, l3] = [await topo.client('hub'), await topo.client('l1'), await topo.client('l2'), await topo.client('l3')];
    await interestSeen(l3, [l1, l2]);
    const id = uid();
    const got = { l1: [] as string[], l2: [] as string[], l3: [] as string[], hub: [] as string[] };
    l1.subscribe(`x.${id}`, { callback: (_e, m) => got.l1.push(m.string()) });
    l2.subscribe(`x.${id}`, { callback: (_e, m) => got.l2.push(m.string()) });
    l3.subscribe(`x.${id}`, { callback: (_e, m) => got.l3.push(m.string()) });
    await interestSeen(l1, [hub]);
    await interestSeen(l2, [hub]);
    hub.publish(`x.${id}`, 'from hub');
    await waitFor(() => got.l1.length >= 1 && got.l2.length >= 1, 10_000, 'l1 and l2');
    await deliveryBarrier([hub, l1, l2]);
    await deliveryBarrier([l1, l2, l3]);
    t.deepEqual(got.l1, ['from hub']);
    t.deepEqual(got.l2, ['from hub'], 'once: not also from l1 over the route');
    t.deepEqual(got.l3, [], 'l3 has no remote: nothing from the hub reaches it');

    // l1 publishes y: the hub gets it once, l2 gets it once (over the route, not down its own
    // connection from the hub), and nothing from l3 reaches the hub.
    hub.subscribe(`y.${id}`, { callback: (_e, m) => got.hub.push(m.string()) });
    l2.subscribe(`y.${id}`, { callback: (_e, m) => got.l2.push(m.string()) });
    await interestSeen(hub, [l1]);
    await interestSeen(l2, [l1]);
    l1.publish(`y.${id}`, 'from l1');
    hub.subscribe(`z.${id}`, { callback: (_e, m) => got.hub.push(m.string()) });
    await interestSeen(hub, [l1]);
    l3.publish(`z.${id}`, 'from l3');
    await l3.flush();
    await waitFor(() => got.hub.length >= 1 && got.l2.length >= 2, 10_000, 'y on the hub and l2');
    await deliveryBarrier([hub, l1, l2]);
    await deliveryBarrier([l1, l2, l3]);
    await deliveryBarrier([hub, l1]);
    t.deepEqual(got.hub, ['from l1'], 'nothing from l3 reaches the hub');
    t.deepEqual(got.l2, ['from hub', 'from l1']);
  },
);

leafTest(
  'messages from a leaf go out on gateways, and come back in to it',
  ['a', 'b', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await LeafTopology.start(t, [
      { name: 'a1', impl: mix.a, accept: true, gateway: { name: 'A' } },
      { name: 'b1', impl: mix.b, gateway: { name: 'B', to: ['a1'] } },
      { name: 'leaf', impl: mix.leaf, remotes: ['a1'] },
    ]);
    await topo.waitConnected();
    const ncs = [await topo.client('leaf'), await topo.client('a1'), await topo.client('b1')];
    // Gateways start optimistic and learn no-interest; checkPubSub waits for interest by probing.
    await checkPubSub(t, ncs);
    await checkRequestReply(t, ncs);
  },
  [
    { a: 'nats-server', b: 'nats-server', leaf: 'nats-server' },
    { a: 'skein', b: 'skein', leaf: 'skein' },
    { a: 'skein', b: 'nats-server', leaf: 'nats-server' },
    { a: 'nats-server', b: 'skein', leaf: 'nats-server' },
    { a: 'nats-server', b: 'nats-server', leaf: 'skein' },
  ],
);

leafTest('a leaf with a gateway announces $GR.*.> and _GR_.> to its hub, as a hub with one does to its leafs', ['leaf'], async (t, mix) => {
  t.timeout(60_000);
  // leafnode.go initLeafNodeSmapAndSendSubs: applyGlobalRouting on any leaf connection of a
  // server with gateways, the one it dialled included.
  const fake = await FakeHub.start();
  t.teardown(() => fake.close());
  await LeafTopology.start(t, [
    { name: 'leaf', impl: mix.leaf, gateway: { name: 'GL' }, remotes: [{ urls: [`nats-leaf://127.0.0.1:${fake.port}`] }] },
  ]);
  const peer = await fake.accepted(1);
  await peer.until(
    () => (peer.interest().has('$GR.*.>') && peer.interest().has('_GR_.>') ? true : undefined),
    15_000,
    'LS+ $GR.*.> and LS+ _GR_.> from the leaf',
  );
  t.pass();
});

leafTest(
  'a leaf sends the answer to a request with a _GR_. reply up to its hub, whatever the hub announced, and delivers it nowhere else',
  ['leaf'],
  async (t, mix) => {
    t.timeout(60_000);
    // A hub that announces no `_GR_.>` (a nats-server hub with gateways would): the answer goes up
    // all the same (leafnode.go gwLeafSubs), not by interest.
    const fake = await FakeHub.start();
    t.teardown(() => fake.close());
    const topo = await LeafTopology.start(t, [
      { name: 'leaf', impl: mix.leaf, remotes: [{ urls: [`nats-leaf://127.0.0.1:${fake.port}`] }] },
    ]);
    const peer = await fake.accepted(1);
    const leaf = await topo.client('leaf');
    const id = uid();
    const seenReplies: string[] = [];
    const local: string[] = [];
    leaf.subscribe(`svc.${id}`, {
      callback: (_e, m) => {
        seenReplies.push(m.reply ?? '');
        m.respond('pong');
      },
    });
    leaf.subscribe('_GR_.>', { callback: (_e, m) => local.push(m.subject) });
    await leaf.flush();
    await peer.until(() => (peer.interest().has(`svc.${id}`) ? true : undefined), 15_000, "the responder's interest");
    const routed = `_GR_.abcdef.ghijkl.inbox.${id}`;
    peer.msg(`svc.${id}`, 'ping', { reply: routed });
    const answer = await peer.next((f) => f.op === 'LMSG' && f.subject === routed, 15_000, 'the answer on the _GR_. subject');
    t.is(answer.payload, 'pong');
    t.is(answer.reply, undefined);
    t.deepEqual(seenReplies, [`inbox.${id}`], 'the responder sees the reply without the prefix');
    await peer.ping();
    await leaf.flush();
    t.deepEqual(local, [], 'the answer is not delivered on the leaf');
  },
);

leafTest(
  'a leaf cluster attached to two servers of a hub cluster gets each message once',
  ['h1', 'h2', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await leafClusterOnTwoHubs(t, mix);
    const [h1, h2, l1, l2] = [await topo.client('h1'), await topo.client('h2'), await topo.client('l1'), await topo.client('l2')];
    await interestSeen(h1, [h2]);
    await interestSeen(l1, [l2]);
    const id = uid();
    const got = { h1: [] as string[], h2: [] as string[], l1: [] as string[], l2: [] as string[] };
    for (const [name, nc] of [
      ['h1', h1],
      ['h2', h2],
      ['l1', l1],
      ['l2', l2],
    ] as const) {
      nc.subscribe(`x.${id}`, { callback: (_e, m) => got[name].push(m.string()) });
    }
    await interestSeen(l1, [h1, h2, l2]);
    await interestSeen(l2, [h1, h2, l1]);
    await interestSeen(h1, [h2, l1, l2]);
    for (const k of Object.keys(got) as (keyof typeof got)[]) got[k].length = 0; // the probes
    l1.publish(`x.${id}`, 'from l1');
    h1.publish(`x.${id}`, 'from h1');
    await waitFor(() => Object.values(got).every((g) => g.length >= 2), 15_000, 'both messages everywhere');
    await deliveryBarrier([h1, h2, l1, l2]);
    await deliveryBarrier([l1, l2, h1, h2]);
    for (const [name, g] of Object.entries(got)) t.deepEqual(g.sort(), ['from h1', 'from l1'], `${name} gets each once`);
  },
  // h1 passes l1's message to h2 as `LMSG LC $G ...` (the origin cluster, route INFO `lnoc`), and
  // h2 sends it down to no leaf of cluster LC: l2 had it from l1 over their route already. A hub
  // cluster of one nats-server and one skein server checks both directions of that on the wire.
  [...HUB_CLUSTER_MIXES, { h1: 'nats-server', h2: 'nats-server', leaf: 'skein' }],
);

leafTest(
  'a hub passes a leaf message to an lnoc route as LMSG with the leaf cluster, and sends a routed LMSG down no leaf of that cluster',
  ['hub'],
  async (t, mix) => {
    t.timeout(90_000);
    const topo = await LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, cluster: 'H', accept: true }]);
    const hub = topo.node('hub');
    const cluster = topo.clusterNames.get('H')!;
    const id = uid();
    const subject = `x.${id}`;
    const { c } = await rawSession(hub.port, { connect: { headers: true } });
    t.teardown(() => c.close());
    c.send(`SUB ${subject} 1\r\n`);
    await c.ping();
    const lnoc = await rawRoute(t, hub.clusterPort, cluster, true);
    const plain = await rawRoute(t, hub.clusterPort, cluster, false);
    // Each route follows its interest in the subject with a marker subject of its own: the
    // client's subscription alone makes the hub announce the subject to its leafs, so only a
    // marker seen by a leaf shows that the hub has taken in that route's interest (in order).
    lnoc.send(`RS+ $G ${subject}\r\nRS+ $G mark.lnoc.${id}\r\n`);
    plain.send(`RS+ $G ${subject}\r\nRS+ $G mark.plain.${id}\r\n`);
    const a = await leafToHub(hub.leafPort, { connect: { cluster: 'LC' }, subs: [subject] });
    const b = await leafToHub(hub.leafPort, { connect: { cluster: 'LD' }, subs: [subject] });
    t.teardown(() => a.peer.close());
    t.teardown(() => b.peer.close());
    // The hub announces the routes' (and the other leaf's) interest: it has taken all of it in.
    for (const p of [a.peer, b.peer]) {
      const has = (): true | undefined => {
        const seen = p.interest();
        return seen.has(subject) && seen.has(`mark.lnoc.${id}`) && seen.has(`mark.plain.${id}`) ? true : undefined;
      };
      await p.until(has, 15_000, 'the interest of the client, both routes and the other leaf on each leaf');
    }

    // Leaf a (cluster LC) publishes: the lnoc route is told the origin, with both sizes; the
    // other route gets RMSG/HMSG as from a client.
    a.peer.msg(subject, 'hi');
    a.peer.msg(subject, 'hi', { reply: 'rep.1' });
    a.peer.msg(subject, 'hi', { headers: 'NATS/1.0\r\n\r\n' });
    // (Interest lines may come between the messages: a leaf's `$LDS.` subscription, announced
    // to the routes whenever the hub gets to it, is not what this checks.)
    const messagesOf = (text: string): string => text.replace(/^[RL]S[+-] [^\r\n]*\r\n/gm, '');
    const toLnoc = messagesOf(await lnoc.expect(`LMSG LC $G ${subject} 12 14\r\nNATS/1.0\r\n\r\nhi\r\n`));
    t.regex(
      toLnoc,
      new RegExp(
        `LMSG LC \\$G ${subject.replace('.', '\\.')} 0 2\r\nhi\r\nLMSG LC \\$G ${subject.replace('.', '\\.')} rep\\.1 0 2\r\nhi\r\n`,
      ),
    );
    const toPlain = messagesOf(await plain.expect(`HMSG $G ${subject} 12 14\r\nNATS/1.0\r\n\r\nhi\r\n`));
    t.regex(
      toPlain,
      new RegExp(`RMSG \\$G ${subject.replace('.', '\\.')} 2\r\nhi\r\nRMSG \\$G ${subject.replace('.', '\\.')} rep\\.1 2\r\nhi\r\n`),
    );

    await c.expect(`HMSG ${subject} 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n`); // leaf a's, to the client

    // The lnoc route sends a message that came from a leaf of cluster LC: leaf a's cluster had
    // it already, so only leaf b and the client get it (a header size of 0 is no headers).
    lnoc.send(
      `LMSG LC $G ${subject} 0 3\r\nabc\r\nLMSG LC $G ${subject} r.2 12 15\r\nNATS/1.0\r\n\r\nhdr\r\nRMSG $G ${subject} 3\r\nend\r\n`,
    );
    const toClient = await c.expect(`MSG ${subject} 1 3\r\nend\r\n`);
    t.is(
      toClient.replace(/PING\r\n/g, ''),
      `MSG ${subject} 1 3\r\nabc\r\nHMSG ${subject} 1 r.2 12 15\r\nNATS/1.0\r\n\r\nhdr\r\nMSG ${subject} 1 3\r\nend\r\n`,
    );
    await b.peer.waitFor((f) => f.subject === subject && f.payload === 'end', 15_000, "leaf b's last message");
    await a.peer.waitFor((f) => f.subject === subject && f.payload === 'end', 15_000, "leaf a's last message");
    const got = (p: typeof a.peer): string[] => p.messages().map((f) => `${f.op} ${f.reply ?? ''} ${f.payload}`);
    t.deepEqual(got(b.peer).slice(-3), ['LMSG  abc', 'HMSG r.2 hdr', 'LMSG  end'], 'leaf b (cluster LD) gets the routed messages');
    t.deepEqual(got(a.peer), ['LMSG  end'], 'leaf a (cluster LC) gets only the one without its origin');
  },
);

leafTest(
  'a hub with a gateway and no cluster block names its gateway as its cluster to leafs, and refuses a leaf of that cluster',
  ['hub'],
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, accept: true, gateway: { name: 'GA' } }]);
    const s = await leafToHub(topo.node('hub').leafPort);
    t.teardown(() => s.peer.close());
    t.is(s.info.cluster, 'GA');
    t.is(s.connectInfo.cluster, 'GA');
    const err = await t.throwsAsync(leafToHub(topo.node('hub').leafPort, { connect: { cluster: 'GA' } }));
    t.regex(err?.message ?? '', /-ERR 'remote leafnode has same cluster name'/);
  },
);
