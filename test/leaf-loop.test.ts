// Loop detection (../shared/protocol.md §8.8): every server puts its own `$LDS.<nuid>` subject in
// each leaf interest dump; others pass it on like any subscription; a server that receives its
// own sends `-ERR 'Loop detected for leafnode account="$G". Delaying attempt to reconnect for
// 30s'`, closes, and (if it dialled) waits 30s before dialling again. A topology with a cycle is
// refused that way, never with a message storm.
//
// Each test runs on all-nats-server topologies, and on skein and mixed ones only with skein leaf nodes (on since issue 13). Two tests wait out the 30s delay.

import type { NatsConnection } from 'nats';
import { sleep, uid } from './helpers/cluster.ts';
import { LeafTopology, leafTest, type LeafNodeSpec } from './helpers/leaf.ts';
import { FakeHub, leafToHub } from './helpers/leafpeer.ts';

const LOOP_ERR = 'Loop detected for leafnode account="$G". Delaying attempt to reconnect for 30s';
const loopLogRe = /Loop detected for leafnode account="\$G"/;

/**
 * Subscribes to one subject on every connection, publishes `n` messages from the first, and
 * returns each subscriber's count after `observeMs`. A loop would multiply deliveries without
 * bound; a refused one delivers each message at most once per subscriber.
 */
async function stormCheck(ncs: NatsConnection[], n: number, observeMs: number): Promise<number[]> {
  const subject = `storm.${uid()}`;
  const counts = ncs.map(() => 0);
  ncs.forEach((nc, i) =>
    nc.subscribe(subject, {
      callback: () => {
        counts[i]++;
      },
    }),
  );
  await Promise.all(ncs.map((nc) => nc.flush()));
  for (let k = 0; k < n; k++) ncs[0].publish(subject, String(k));
  await ncs[0].flush();
  await sleep(observeMs); // watching for a storm: a bounded observation, not a timing assertion
  return counts;
}

leafTest(
  "two servers that each dial the other detect the loop with nats-server's error, and no message storms",
  ['a', 'b'],
  async (t, mix) => {
    t.timeout(120_000);
    const specs: LeafNodeSpec[] = [
      { name: 'a', impl: mix.a, remotes: ['b'] },
      { name: 'b', impl: mix.b, remotes: ['a'] },
    ];
    const topo = await LeafTopology.start(t, specs); // a cycle: leased leaf ports
    const a = topo.node('a').srv;
    const b = topo.node('b').srv;
    await Promise.race([a.waitForLog(loopLogRe, 30_000), b.waitForLog(loopLogRe, 30_000)]);
    t.regex(a.output() + b.output(), /Loop detected for leafnode account="\$G"\. Delaying attempt to reconnect for 30s/);
    const counts = await stormCheck([await topo.client('a'), await topo.client('b')], 10, 3000);
    t.true(
      counts.every((c) => c <= 10),
      `deliveries per subscriber: ${counts}`,
    );
    t.is(counts[0], 10, "the publisher's own server delivers each message once");
  },
);

leafTest('a cycle of three leafs (a -> b -> c -> a) is refused as a loop, without a message storm', ['a', 'b', 'c'], async (t, mix) => {
  t.timeout(120_000);
  const topo = await LeafTopology.start(t, [
    { name: 'a', impl: mix.a, remotes: ['b'] },
    { name: 'b', impl: mix.b, remotes: ['c'] },
    { name: 'c', impl: mix.c, remotes: ['a'] },
  ]);
  const logs = ['a', 'b', 'c'].map((n) => topo.node(n).srv);
  await Promise.race(logs.map((s) => s.waitForLog(loopLogRe, 40_000)));
  const counts = await stormCheck([await topo.client('a'), await topo.client('b'), await topo.client('c')], 10, 3000);
  t.true(
    counts.every((c) => c <= 10),
    `deliveries per subscriber: ${counts}`,
  );
  t.is(counts[0], 10);
});

leafTest(
  'a hub that receives its own $LDS. subject from a leaf sends the loop -ERR and closes that connection only',
  ['hub'],
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, accept: true }]);
    const good = await leafToHub(topo.node('hub').leafPort, { name: 'good' });
    t.teardown(() => good.peer.close());
    const bad = await leafToHub(topo.node('hub').leafPort, { name: 'bad' });
    t.teardown(() => bad.peer.close());
    // bad's dump holds the hub's own $LDS. subject and good's (passed on like any interest), in
    // map order: the hub's is the one that is not good's.
    const hubLds = await bad.peer.until(
      () => [...bad.peer.interest().keys()].find((k) => k.startsWith('$LDS.') && k !== good.lds),
      10_000,
      "the hub's $LDS. subject",
    );
    t.true(good.peer.interest().has(hubLds), 'the hub gives every leaf the same $LDS. subject');
    bad.peer.sub(hubLds);
    const err = await bad.peer.next((f) => f.op === '-ERR', 10_000, 'the loop -ERR');
    t.is(err.error, LOOP_ERR);
    await bad.peer.closed(10_000);
    await topo.node('hub').srv.waitForLog(loopLogRe, 10_000);
    await good.peer.ping();
    t.false(good.peer.isClosed(), 'the other leaf connection is untouched');
    // Another leaf's $LDS. subject is just interest: passing it on is not a loop.
    good.peer.sub(good.lds!);
    await good.peer.ping();
    t.false(good.peer.isClosed());
  },
);

leafTest(
  'a leaf that gets its own $LDS. subject back from its hub closes with the loop -ERR and waits 30s before dialling again',
  ['leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const fake = await FakeHub.start();
    t.teardown(() => fake.close());
    const topo = await LeafTopology.start(t, [
      { name: 'leaf', impl: mix.leaf, remotes: [{ urls: [`nats-leaf://127.0.0.1:${fake.port}`] }] },
    ]);
    const peer = await fake.accepted(1);
    const own = await peer.until(() => [...peer.interest().keys()].find((k) => k.startsWith('$LDS.')), 10_000, "the leaf's $LDS. subject");
    peer.sub(own); // as if a cycle had carried it back
    const err = await peer.next((f) => f.op === '-ERR', 10_000, 'the loop -ERR');
    t.is(err.error, LOOP_ERR);
    await peer.closed(10_000);
    const closedAt = Date.now();
    await topo.node('leaf').srv.waitForLog(loopLogRe, 10_000);
    // The redial comes 30s (plus the reconnect interval) later: never sooner (a lower bound only).
    await fake.accepted(2, 90_000);
    const delay = fake.acceptedAt[1] - closedAt;
    t.true(delay >= 29_000, `redialled ${delay}ms after the loop`);
  },
);

leafTest('a leaf whose hub passes the loop -ERR closes and waits 30s before dialling again', ['leaf'], async (t, mix) => {
  t.timeout(120_000);
  const fake = await FakeHub.start();
  t.teardown(() => fake.close());
  await LeafTopology.start(t, [{ name: 'leaf', impl: mix.leaf, remotes: [{ urls: [`nats-leaf://127.0.0.1:${fake.port}`] }] }]);
  const peer = await fake.accepted(1);
  await peer.next((f) => f.op === 'LS+', 10_000, "the leaf's dump");
  // Any other -ERR is only logged (leaf-handshake.test.ts); this one makes the leaf close.
  peer.send(`-ERR '${LOOP_ERR}'\r\n`);
  await peer.closed(10_000);
  const closedAt = Date.now();
  await fake.accepted(2, 90_000);
  const delay = fake.acceptedAt[1] - closedAt;
  t.true(delay >= 29_000, `redialled ${delay}ms after the loop -ERR`);
});
