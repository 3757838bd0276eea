// Leaf nodes under faults skein adds to the spec (issue 13, reliability): a crashed leaf thread is
// replaced and its connections come back (accepted ones redial, remotes are dialled again) with
// interest resynced; a hub killed while traffic flows is replaced by another server of its
// cluster, learned from leafnode_urls, and the traffic resumes both ways.
//
// The crash hook is skein's (SKEIN_FAULT_INJECTION=1, a client PUB to $SKEIN.FAULT.CRASH.LEAF),
// so the crash tests run where skein holds the crashing side; the peer is either.

import type { ExecutionContext } from 'ava';
import type { NatsConnection } from 'nats';
import { checkPubSub, interestSeen, uid, waitFor } from './helpers/cluster.ts';
import { LeafTopology, leafTest, type Mix } from './helpers/leaf.ts';

const FAULTS = { SKEIN_FAULT_INJECTION: '1' };

async function crashLeafThread(topo: LeafTopology, node: string): Promise<void> {
  const nc = await topo.client(node);
  nc.publish('$SKEIN.FAULT.CRASH.LEAF');
  await nc.flush();
  await topo.node(node).srv.waitForLog(/Leaf thread replaced and ready/, 30_000);
}

/** Both directions carry traffic again (interest resynced on the new connection). */
async function bothWays(t: ExecutionContext, a: NatsConnection, b: NatsConnection): Promise<void> {
  await interestSeen(a, [b], 30_000);
  await interestSeen(b, [a], 30_000);
  await checkPubSub(t, [a, b]);
}

const hubCrashMixes: Mix[] = [
  { hub: 'skein', leaf: 'skein' },
  { hub: 'skein', leaf: 'nats-server' },
];
const leafCrashMixes: Mix[] = [
  { hub: 'skein', leaf: 'skein' },
  { hub: 'nats-server', leaf: 'skein' },
];

leafTest(
  'a crashed leaf thread on the hub is replaced, the leaf redials, and interest is resynced both ways',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true, env: FAULTS },
      { name: 'leaf', impl: mix.leaf, remotes: ['hub'] },
    ]);
    await topo.waitConnected();
    const [hub, leaf] = [await topo.client('hub'), await topo.client('leaf')];
    await bothWays(t, hub, leaf);
    await crashLeafThread(topo, 'hub');
    await topo.waitLeafs('hub', 1, 30_000);
    await bothWays(t, hub, leaf);
  },
  hubCrashMixes,
);

leafTest(
  'a crashed leaf thread on the leaf is replaced, its remote is dialled again, and interest is resynced both ways',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true },
      { name: 'leaf', impl: mix.leaf, remotes: ['hub'], env: FAULTS },
    ]);
    await topo.waitConnected();
    const [hub, leaf] = [await topo.client('hub'), await topo.client('leaf')];
    await bothWays(t, hub, leaf);
    await crashLeafThread(topo, 'leaf');
    await topo.waitLeafs('hub', 1, 30_000);
    await topo.waitConnected();
    await bothWays(t, hub, leaf);
  },
  leafCrashMixes,
);

leafTest(
  'a hub killed while traffic flows: the leaf moves to another server of the hub cluster and traffic resumes both ways',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await LeafTopology.start(t, [
      { name: 'h1', impl: mix.hub, cluster: 'H', accept: true },
      { name: 'h2', impl: mix.hub, cluster: 'H', accept: true },
      { name: 'leaf', impl: mix.leaf, remotes: ['h1'] },
    ]);
    await topo.waitConnected();
    const [h2, leaf] = [await topo.client('h2'), await topo.client('leaf')];
    await bothWays(t, h2, leaf);
    const id = uid();
    const up: number[] = [];
    const down: number[] = [];
    h2.subscribe(`up.${id}`, { callback: (_e, m) => up.push(Number(m.string())) });
    leaf.subscribe(`down.${id}`, { callback: (_e, m) => down.push(Number(m.string())) });
    await interestSeen(h2, [leaf]);
    await interestSeen(leaf, [h2]);
    let n = 0;
    let flowing = true;
    const pump = (async (): Promise<void> => {
      while (flowing) {
        leaf.publish(`up.${id}`, String(n));
        h2.publish(`down.${id}`, String(n));
        n++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await waitFor(() => up.length > 20 && down.length > 20, 20_000, 'traffic before the kill');
    await topo.killNode('h1');
    const killedAt = n;
    // The leaf learned h2's leaf URL from h1's INFO; it dials it and both directions flow again.
    await waitFor(() => up.some((x) => x > killedAt) && down.some((x) => x > killedAt), 60_000, 'traffic after the kill');
    flowing = false;
    await pump;
    t.is((await topo.leafz('h2')).leafnodes, 1);
    // No message is delivered twice (some around the kill are lost with h1, as with nats-server).
    t.is(new Set(up).size, up.length);
    t.is(new Set(down).size, down.length);
  },
  [
    { hub: 'skein', leaf: 'skein' },
    { hub: 'nats-server', leaf: 'skein' },
    { hub: 'skein', leaf: 'nats-server' },
  ],
);
