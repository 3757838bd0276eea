// Queue groups across leaf connections (../shared/protocol.md §8.7): each message once across
// the whole graph, served as nats-server serves it. A client- or leaf-published message picks
// among the local and route members and uses a leaf's member only when there is no other; so a
// hub gives a leaf's member a message only when it has no member of its own, and a leaf serves
// its own publishers from its own members. Counts are exact: every test publishes a fixed
// number and checks who got what after a delivery barrier.
//
// Each test runs on all-nats-server topologies, and on skein and mixed ones only with skein leaf nodes (on since issue 13).

import type { ExecutionContext } from 'ava';
import type { NatsConnection } from 'nats';
import { deliveryBarrier, interestSeen, uid, waitFor } from './helpers/cluster.ts';
import { chainSpecs, LeafTopology, leafTest, waitLeafInterest } from './helpers/leaf.ts';

interface Group {
  counts: number[];
  seen: Map<string, number>;
  unsubscribe(i: number): void;
}

/** One member of queue group `wq` on `subject` per connection. */
function members(ncs: NatsConnection[], subject: string): Group {
  const counts = ncs.map(() => 0);
  const seen = new Map<string, number>();
  const subs = ncs.map((nc, i) =>
    nc.subscribe(subject, {
      queue: 'wq',
      callback: (_e, m) => {
        counts[i]++;
        seen.set(m.string(), (seen.get(m.string()) ?? 0) + 1);
      },
    }),
  );
  return { counts, seen, unsubscribe: (i) => subs[i].unsubscribe() };
}

/** Publishes n messages tagged `tag-k` and waits until each has arrived once (then a barrier). */
async function publishAll(
  t: ExecutionContext,
  pub: NatsConnection,
  subject: string,
  tag: string,
  n: number,
  g: Group,
  all: NatsConnection[],
): Promise<void> {
  for (let k = 0; k < n; k++) pub.publish(subject, `${tag}-${k}`);
  await pub.flush();
  const mine = (): number => [...g.seen.keys()].filter((k) => k.startsWith(`${tag}-`)).length;
  await waitFor(() => mine() === n, 15_000, `${n} messages from ${tag} (have ${mine()})`);
  await deliveryBarrier(all);
  const dups = [...g.seen.entries()].filter(([k, c]) => k.startsWith(`${tag}-`) && c !== 1);
  t.deepEqual(dups, [], `messages from ${tag} delivered exactly once`);
}

const N = 30;

leafTest(
  "a hub serves a queue group with its own member and gives the leaf's member nothing; with no member of its own, all to the leaf",
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, chainSpecs(['hub', 'leaf'], mix));
    await topo.waitConnected();
    const ncs = [await topo.client('hub'), await topo.client('leaf')];
    const subject = `q.${uid()}`;
    const g = members(ncs, subject);
    await interestSeen(ncs[1], [ncs[0]]);
    await interestSeen(ncs[0], [ncs[1]]);
    await waitLeafInterest(topo, 'hub', [subject]);

    await publishAll(t, ncs[0], subject, 'hub', N, g, ncs);
    t.deepEqual(g.counts, [N, 0], "published on the hub: the hub's member gets every one");
    await publishAll(t, ncs[1], subject, 'leaf', N, g, ncs);
    t.deepEqual(g.counts, [N, N], "published on the leaf: the leaf's own member gets every one");

    g.unsubscribe(0);
    await ncs[0].flush();
    await publishAll(t, ncs[0], subject, 'hub2', N, g, ncs);
    t.deepEqual(g.counts, [N, 2 * N], "the hub without a member of its own: all to the leaf's member");
    g.unsubscribe(1);
    const only = members([ncs[0]], subject); // now a member only on the hub
    await interestSeen(ncs[0], [ncs[1]]);
    await publishAll(t, ncs[1], subject, 'leaf2', N, only, ncs);
    t.deepEqual(only.counts, [N], "a leaf without a member of its own: all up to the hub's member");
  },
);

leafTest(
  'a queue group with a member on hub, mid and tail gets each message once, served where it was published',
  ['hub', 'mid', 'tail'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await LeafTopology.start(t, chainSpecs(['hub', 'mid', 'tail'], mix));
    await topo.waitConnected();
    const ncs = [await topo.client('hub'), await topo.client('mid'), await topo.client('tail')];
    const subject = `q.${uid()}`;
    const g = members(ncs, subject);
    for (const nc of ncs) await interestSeen(nc, ncs);
    await publishAll(t, ncs[0], subject, 'hub', N, g, ncs);
    await publishAll(t, ncs[1], subject, 'mid', N, g, ncs);
    await publishAll(t, ncs[2], subject, 'tail', N, g, ncs);
    t.is(g.seen.size, 3 * N);
    t.deepEqual(g.counts, [N, N, N], "each server's member got exactly what was published there");
    // Without the middle member, mid's publishes go to a leaf-side member: hub or tail, once each.
    g.unsubscribe(1);
    await ncs[1].flush();
    await publishAll(t, ncs[1], subject, 'mid2', N, g, ncs);
    t.is(g.counts[0] + g.counts[2], 2 * N + N, "mid's publishes went to hub or tail");
    t.is(g.counts[1], N);
  },
);

leafTest(
  "in a hub cluster a leaf's member is used only when no cluster member exists; the leaf serves its own publishers",
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await LeafTopology.start(t, [
      { name: 'h1', impl: mix.hub, cluster: 'H', accept: true },
      { name: 'h2', impl: mix.hub, cluster: 'H' },
      { name: 'leaf', impl: mix.leaf, remotes: ['h1'] },
    ]);
    await topo.waitConnected();
    const ncs = [await topo.client('h1'), await topo.client('h2'), await topo.client('leaf')];
    const subject = `q.${uid()}`;
    const g = members(ncs, subject);
    for (const nc of ncs) await interestSeen(nc, ncs);
    await publishAll(t, ncs[1], subject, 'h2', N, g, ncs);
    t.is(g.counts[2], 0, 'published on h2: the leaf (attached to h1) gets none');
    t.is(g.counts[0] + g.counts[1], N);
    await publishAll(t, ncs[0], subject, 'h1', N, g, ncs);
    t.is(g.counts[2], 0, 'published on h1: the leaf gets none');
    await publishAll(t, ncs[2], subject, 'leaf', N, g, ncs);
    t.is(g.counts[2], N, 'published on the leaf: all to its own member');
    // Only the leaf's member left: h2's publishes cross the route and h1's leaf connection, once each.
    g.unsubscribe(0);
    g.unsubscribe(1);
    await Promise.all([ncs[0].flush(), ncs[1].flush()]);
    await interestSeen(ncs[2], [ncs[1]]);
    await publishAll(t, ncs[1], subject, 'h2b', N, g, ncs);
    t.is(g.counts[2], 2 * N, 'with no cluster member: all to the leaf');
  },
);
