// The origin of leaf interest across routes (../shared/protocol.md §2.7, §8.5; route.go
// addRouteSubOrUnsubProtoToBuf, processRemoteSub; leafnode.go updateLeafNodes,
// initLeafNodeSmapAndSendSubs): a hub tells a route peer that said `lnoc` a leaf's interest as
// `LS+ <leaf cluster> $G subject [queue weight]` and `LS-  $G ...` (RS+/RS- to one that did not,
// and in the full dump at route registration), and a hub that gets `LS+ <origin>` from a route
// passes that interest to none of its leafs of that cluster, `$LDS.` updates excepted. A key
// keeps the origin of its first subscription, on both sides.
//
// Every test runs on nats-server (the oracle) and skein.

import { interestSeen, uid, waitFor } from './helpers/cluster.ts';
import { HUB_CLUSTER_MIXES, LeafTopology, leafClusterOnTwoHubs, leafTest, type Mix } from './helpers/leaf.ts';
import { ldsSubject, leafToHub, rawRoute, type LeafPeer } from './helpers/leafpeer.ts';
import { rawSession } from './helpers/raw.ts';

const has = (peer: LeafPeer, key: string): Promise<true> =>
  peer.until(() => (peer.interest().has(key) ? true : undefined), 15_000, `LS+ ${key}`);

/** A hub alone in its cluster H, that cluster's name as the hub uses it, and a fresh subject id. */
async function hubOfClusterH(
  t: Parameters<Parameters<typeof leafTest>[2]>[0],
  mix: Mix,
): Promise<{ hub: ReturnType<LeafTopology['node']>; cluster: string; id: string }> {
  const topo = await LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, cluster: 'H', accept: true }]);
  return { hub: topo.node('hub'), cluster: topo.clusterNames.get('H')!, id: uid() };
}

leafTest(
  "a hub announces a leaf cluster member's interest to an lnoc route as LS+ with its origin, and RS+ to others",
  ['hub'],
  async (t, mix) => {
    t.timeout(90_000);
    const { hub, cluster, id } = await hubOfClusterH(t, mix);
    const a = await leafToHub(hub.leafPort, { connect: { cluster: 'LC' }, subs: [`pre.${id}`] });
    const n = await leafToHub(hub.leafPort, {});
    t.teardown(() => a.peer.close());
    t.teardown(() => n.peer.close());
    await a.peer.ping();
    const { c } = await rawSession(hub.port);
    t.teardown(() => c.close());

    const lnoc = await rawRoute(t, hub.clusterPort, cluster, true);
    const plain = await rawRoute(t, hub.clusterPort, cluster, false);
    // The full dump at route registration carries no origin (route.go sendSubsToRoute).
    await lnoc.expect(`RS+ $G pre.${id}\r\n`);
    await plain.expect(`RS+ $G pre.${id}\r\n`);

    a.peer.sub(`b.${id}`);
    await lnoc.expect(`LS+ LC $G b.${id}\r\n`);
    await plain.expect(`RS+ $G b.${id}\r\n`);
    // (Weight 1: nats-server counts a new leaf queue subscription as 1 towards routes, whatever its
    // weight, route.go updateRouteSubscriptionMap from processLeafSub; skein counts its weight.)
    a.peer.sub(`q.${id}`, 'g', 1);
    await lnoc.expect(`LS+ LC $G q.${id} g 1\r\n`);
    await plain.expect(`RS+ $G q.${id} g 1\r\n`);
    a.peer.unsub(`b.${id}`);
    await lnoc.expect(`LS-  $G b.${id}\r\n`);
    await plain.expect(`RS- $G b.${id}\r\n`);
    a.peer.unsub(`q.${id}`, 'g');
    await lnoc.expect(`LS-  $G q.${id} g\r\n`);
    await plain.expect(`RS- $G q.${id} g\r\n`);
    // A leaf of no cluster: no origin.
    n.peer.sub(`c.${id}`);
    await lnoc.expect(`RS+ $G c.${id}\r\n`);

    // The first subscription on a key decides: a client's, then the leaf's (nothing more); the
    // leaf's, then a client's (nothing more).
    c.send(`SUB d.${id} 1\r\n`);
    await c.ping();
    await lnoc.expect(`RS+ $G d.${id}\r\n`);
    a.peer.sub(`d.${id}`);
    a.peer.sub(`e.${id}`);
    await lnoc.expect(`LS+ LC $G e.${id}\r\n`);
    c.send(`SUB e.${id} 2\r\n`);
    await c.ping();
    a.peer.sub(`end.${id}`);
    const rest = await lnoc.expect(`LS+ LC $G end.${id}\r\n`);
    t.false(rest.includes(` d.${id}`), rest);
    t.false(rest.includes(` e.${id}`), rest);
  },
);

leafTest(
  "a hub passes a route's LS+ <origin> to none of its leafs of that cluster, $LDS. updates excepted; a key keeps its first origin",
  ['hub'],
  async (t, mix) => {
    t.timeout(90_000);
    const { hub, cluster, id } = await hubOfClusterH(t, mix);
    const r = await rawRoute(t, hub.clusterPort, cluster, true);
    const early = ldsSubject();
    r.send(
      `LS+ LC $G x.${id}\r\nLS+ LC $G q.${id} g 3\r\nRS+ $G y.${id}\r\nLS+ LC $G z.${id}\r\nRS+ $G z.${id}\r\n` +
        `RS+ $G u.${id}\r\nLS+ LC $G u.${id}\r\nLS+ LC $G ${early}\r\nPING\r\n`,
    );
    await r.expect('PONG\r\n');
    const { c } = await rawSession(hub.port);
    t.teardown(() => c.close());
    c.send(`SUB q.${id} g 1\r\n`);
    await c.ping();
    const a = await leafToHub(hub.leafPort, { connect: { cluster: 'LC' }, lds: null });
    const b = await leafToHub(hub.leafPort, { connect: { cluster: 'LD' }, lds: null });
    t.teardown(() => a.peer.close());
    t.teardown(() => b.peer.close());
    await a.peer.ping();
    await b.peer.ping();
    // The dumps: leaf b (cluster LD) hears it all; leaf a (LC) not what came with origin LC, not
    // even the `$LDS.` subject, and a queue weight without the route's share.
    const bDump = b.peer.interest();
    for (const key of [`x.${id}`, `y.${id}`, `z.${id}`, `u.${id}`, early]) t.true(bDump.has(key), `b: ${key}`);
    t.is(bDump.get(`q.${id} g`), 4);
    const aDump = a.peer.interest();
    for (const key of [`x.${id}`, `z.${id}`, early]) t.false(aDump.has(key), `a: ${key}`);
    t.true(aDump.has(`y.${id}`), 'a: a key that came without origin first');
    t.true(aDump.has(`u.${id}`), 'a: the same, a later LS+ with origin changes nothing');
    t.is(aDump.get(`q.${id} g`), 1, "a: the hub client's member only");

    // Updates: an LS+ with origin LC goes to b only, a `$LDS.` one to both; LS- likewise.
    const late = ldsSubject();
    r.send(`LS+ LC $G w.${id}\r\nLS+ LC $G ${late}\r\nLS-  $G x.${id}\r\nLS+ LC $G q.${id} g 5\r\nRS+ $G end.${id}\r\n`);
    await has(b.peer, `end.${id}`);
    await has(a.peer, `end.${id}`);
    await a.peer.ping();
    await b.peer.ping();
    const bNow = b.peer.interest();
    t.true(bNow.has(`w.${id}`));
    t.true(bNow.has(late));
    t.false(bNow.has(`x.${id}`));
    t.is(bNow.get(`q.${id} g`), 6);
    const aNow = a.peer.interest();
    t.false(aNow.has(`w.${id}`));
    t.true(aNow.has(late), 'a: a later `$LDS.` subject, whatever its origin');
    t.is(aNow.get(`q.${id} g`), 1);
    t.false(
      a.peer.frames.some((f) => f.line.includes(`x.${id}`) || f.line.includes(`w.${id}`) || f.line.includes(`q.${id} g 6`)),
      a.peer.transcript(),
    );
  },
);

leafTest(
  "a hub does not announce one leaf cluster member's interest to another member attached to it through a route peer",
  ['h1', 'h2', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await leafClusterOnTwoHubs(t, mix);
    const [h1, h2, l1] = [await topo.client('h1'), await topo.client('h2'), await topo.client('l1')];
    await interestSeen(h1, [h2]);
    const id = uid();
    l1.subscribe(`only.l1.${id}`);
    l1.subscribe(`q.l1.${id}`, { queue: 'g' });
    await l1.flush();
    h2.subscribe(`marker.${id}`);
    await h2.flush();
    // h2's subscription reaches l2 through h2's leaf connection; l1's would come the same way.
    const heard = async (): Promise<string[]> => (await topo.leafz('l2', true)).leafs.flatMap((l) => l.subscriptions_list ?? []);
    let list: string[] = [];
    await waitFor(
      () => {
        void heard().then((l) => (list = l));
        return list.includes(`marker.${id}`);
      },
      20_000,
      "h2's marker on l2's leaf connection",
    );
    // h2 learned l1's interest from h1 with origin LC by now (the route carried it before h2's own).
    await interestSeen(h2, [l1]).catch(() => undefined);
    list = await heard();
    t.false(list.includes(`only.l1.${id}`), list.join(' '));
    t.false(list.includes(`q.l1.${id}`), list.join(' '));
  },
  HUB_CLUSTER_MIXES,
);

leafTest(
  'a leaf cluster member subscribed first keeps the key: a hub client subscribed later on the same subject misses what the other member publishes',
  ['h1', 'h2', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await leafClusterOnTwoHubs(t, mix);
    const [h1, h2, l1, l2] = [await topo.client('h1'), await topo.client('h2'), await topo.client('l1'), await topo.client('l2')];
    await interestSeen(h1, [h2]);
    await interestSeen(l1, [l2]);
    const id = uid();
    const got = { l1: [] as string[], h1: [] as string[] };
    l1.subscribe(`k.${id}`, { callback: (_e, m) => got.l1.push(m.string()) });
    await l1.flush();
    await interestSeen(l1, [h2, l2]);
    h1.subscribe(`k.${id}`, { callback: (_e, m) => got.h1.push(m.string()) });
    await h1.flush();
    await interestSeen(h1, [h2]);
    l2.publish(`k.${id}`, 'from l2');
    await l2.flush();
    await waitFor(() => got.l1.length > 0, 15_000, 'l1 gets it over its route');
    // A later publish from h2 marks the end: everything l2's message could reach, it has reached.
    h2.publish(`k.${id}`, 'from h2');
    await waitFor(() => got.h1.includes('from h2'), 15_000, 'h1 gets the marker');
    t.deepEqual(got.h1, ['from h2'], "h1's client: h2 never tells l2 of k, so l2's message stays in the leaf cluster");
  },
  HUB_CLUSTER_MIXES,
);
