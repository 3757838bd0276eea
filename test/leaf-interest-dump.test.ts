// What a hub announces to a leaf, compared with nats-server 2.9.10 as the oracle (../shared/protocol.md
// §8.5; leafnode.go initLeafNodeSmapAndSendSubs and updateLeafNodes): the same topology runs on
// nats-server and on skein, a raw leaf attaches to the hub, and the SET of `LS+`/`LS-` lines it
// gets (its dump, then the updates) must be the same. Topologies: a hub with and without a
// gateway, with and without a cluster, with subscriptions on the hub, on its route peer and on
// another leaf, plain and queue; two raw leafs, one of no cluster and one of the other leaf's
// cluster (whose interest it must not hear).
//
// Left out of the comparison, by design: the random suffix of `$LDS.` subjects (counted, not
// named), and `$SYS.` lines (a nats-server with a gateway and leafs needs a system account, whose
// service imports into `$G` it announces; skein has no system account).

import test, { type ExecutionContext } from 'ava';
import type { NatsConnection } from 'nats';
import { uid } from './helpers/cluster.ts';
import { LeafTopology, type LeafNodeSpec } from './helpers/leaf.ts';
import { leafToHub, type LeafPeer, type LeafSession } from './helpers/leafpeer.ts';
import type { Impl } from './helpers/server.ts';

interface Shape {
  gateway: boolean;
  cluster: boolean;
}

interface Seen {
  /** The LS+ lines of the dump (the frames after the connect_info INFO, up to our PING's PONG). */
  dump: string[];
  /** The LS+/LS- lines after it. */
  after: string[];
}

/** A line with its `$LDS.` suffix and the test's unique id masked. */
function mask(line: string, id: string): string {
  return line.replace(/\$LDS\.[A-Za-z0-9]+/g, '$LDS.*').replaceAll(id, 'ID');
}

// `$SYS.` lines and `LS+ $JS.API.>` are service imports from nats-server's system account (the
// latter when it is not standalone: server.go enables JetStream's imports on $G "in simple mixed
// mode"); skein has no system account and no JetStream, and announces neither.
const interesting = (line: string): boolean =>
  (line.startsWith('LS+ ') || line.startsWith('LS- ')) && !line.includes(' $SYS.') && line !== 'LS+ $JS.API.>';

async function observe(t: ExecutionContext, impl: Impl, shape: Shape): Promise<{ plain: Seen; same: Seen }> {
  const id = uid();
  const specs: LeafNodeSpec[] = [
    {
      name: 'hub',
      impl,
      accept: true,
      cluster: shape.cluster ? 'H' : undefined,
      gateway: shape.gateway ? { name: shape.cluster ? 'H' : 'GH' } : undefined,
    },
  ];
  if (shape.cluster) specs.push({ name: 'h2', impl, accept: true, cluster: 'H', gateway: shape.gateway ? { name: 'H' } : undefined });
  specs.push({ name: 'other', impl, remotes: ['hub'] });
  const topo = await LeafTopology.start(t, specs);
  await topo.waitConnected();
  const sources: [string, NatsConnection][] = [
    ['hub', await topo.client('hub')],
    ['other', await topo.client('other')],
  ];
  if (shape.cluster) sources.push(['h2', await topo.client('h2')]);
  // Interest present before the raw leafs attach (their dumps), everywhere.
  for (const [name, nc] of sources) {
    nc.subscribe(`early.${name}.${id}`);
    nc.subscribe(`early.q.${id}`, { queue: 'g' });
    nc.subscribe(`early.q.${id}`, { queue: 'g' });
    nc.subscribe(`$JS.API.early.${name}.${id}`);
    await nc.flush();
  }
  // Wait until the hub's leafs hear all of it: a raw leaf that carries a known subject.
  const probe = await leafToHub(topo.node('hub').leafPort, { name: `probe-${id}` });
  t.teardown(() => probe.peer.close());
  for (const [name] of sources)
    await probe.peer.until(() => (probe.peer.interest().has(`early.${name}.${id}`) ? true : undefined), 20_000, `early.${name}`);
  await probe.peer.until(
    () => (probe.peer.interest().get(`early.q.${id} g`) === 2 * sources.length ? true : undefined),
    20_000,
    'the queue weights',
  );
  const sessions: LeafSession[] = [
    await leafToHub(topo.node('hub').leafPort, { name: `plain-${id}`, lds: null }),
    // The other leaf's cluster (a standalone server with remotes names its server_name).
    await leafToHub(topo.node('hub').leafPort, { name: `same-${id}`, lds: null, connect: { cluster: 'other' } }),
  ];
  for (const s of sessions) t.teardown(() => s.peer.close());
  const dumpEnds: number[] = [];
  for (const s of sessions) {
    await s.peer.ping();
    dumpEnds.push(s.peer.frames.length);
  }
  // Changes after the dump, from every source; a last subject per source marks the end. The
  // unsubscribe waits until the leafs that should hear of the subscription did: skein announces
  // net changes, so a subscription and its removal that reach the hub's leaf thread in one pass
  // (a route peer's RS+ and RS- on a loaded host) announce nothing, where nats-server sends both.
  for (const [name, nc] of sources) {
    const sub = nc.subscribe(`late.${name}.${id}`);
    nc.subscribe(`late.q.${id}`, { queue: 'g' });
    nc.subscribe(`$KV.late.${name}.${id}`);
    await nc.flush();
    for (const s of name === 'other' ? sessions.slice(0, 1) : sessions)
      await s.peer.until(() => (s.peer.interest().has(`late.${name}.${id}`) ? true : undefined), 20_000, `late.${name}`);
    sub.unsubscribe();
    await nc.flush();
    nc.subscribe(`last.${name}.${id}`);
    await nc.flush();
  }
  const ends = sessions.map((s) => s.peer);
  const waitLast = async (peer: LeafPeer, names: string[]): Promise<void> => {
    for (const name of names)
      await peer.until(() => (peer.interest().has(`last.${name}.${id}`) ? true : undefined), 20_000, `last.${name}`);
    await peer.ping();
  };
  await waitLast(
    ends[0],
    sources.map(([n]) => n),
  );
  await waitLast(
    ends[1],
    sources.map(([n]) => n).filter((n) => n !== 'other'),
  );
  // The other leaf's `last` never reaches the same-cluster leaf: its PING after the others' is the barrier.
  await ends[0].ping();
  await ends[1].ping();
  const seen = (i: number): Seen => {
    const frames = sessions[i].peer.frames;
    const lines = frames.map((f) => f.line);
    const start = frames.findIndex((f) => f.op === 'INFO' && f.json?.connect_info === true) + 1;
    return {
      dump: lines
        .slice(start, dumpEnds[i])
        .filter(interesting)
        .map((l) => mask(l, id))
        .sort(),
      after: lines
        .slice(dumpEnds[i])
        .filter(interesting)
        .map((l) => mask(l, id))
        .sort(),
    };
  };
  const result = { plain: seen(0), same: seen(1) };
  await topo.stop();
  return result;
}

for (const shape of [
  { gateway: false, cluster: false },
  { gateway: true, cluster: false },
  { gateway: false, cluster: true },
  { gateway: true, cluster: true },
]) {
  const label = `${shape.gateway ? 'with' : 'without'} a gateway, ${shape.cluster ? 'in' : 'without'} a cluster`;
  test.serial(`a hub ${label} announces to a leaf what nats-server announces, dump and updates`, async (t) => {
    t.timeout(240_000);
    const oracle = await observe(t, 'nats-server', shape);
    const skein = await observe(t, 'skein', shape);
    t.deepEqual(skein.plain.dump, oracle.plain.dump, 'the dump to a leaf of no cluster');
    t.deepEqual(skein.same.dump, oracle.same.dump, "the dump to a leaf of the other leaf's cluster");
    t.deepEqual(skein.plain.after, oracle.plain.after, 'the updates to a leaf of no cluster');
    t.deepEqual(skein.same.after, oracle.same.after, "the updates to a leaf of the other leaf's cluster");
  });
}
