// Reconnects (../shared/protocol.md §8.10, 8.11): a leaf redials its hub after a disconnect at
// the `reconnect` interval, to the URLs the hub advertised first (leafnode_urls), then the
// configured ones; it fails over to another server of the hub's cluster; a hub that stops
// answering PINGs is dropped as stale; and interest is resynced on every new connection.
// Timing is checked only as a lower bound (a loaded machine makes things later, never sooner).
//
// Each test runs on all-nats-server topologies, and on skein and mixed ones only with skein leaf nodes (on since issue 13).

import { interestSeen, uid, waitFor } from './helpers/cluster.ts';
import { LeafTopology, leafTest } from './helpers/leaf.ts';
import { FakeHub } from './helpers/leafpeer.ts';

leafTest('a leaf redials a restarted hub and interest is resynced both ways', ['hub', 'leaf'], async (t, mix) => {
  t.timeout(180_000);
  const topo = await LeafTopology.start(
    t,
    [
      { name: 'hub', impl: mix.hub, accept: true },
      { name: 'leaf', impl: mix.leaf, remotes: ['hub'] },
    ],
    { fixedLeafPorts: true },
  );
  await topo.waitConnected();
  const leaf = await topo.client('leaf');
  const id = uid();
  const onLeaf: string[] = [];
  leaf.subscribe(`down.${id}`, { callback: (_e, m) => onLeaf.push(m.string()) });
  await leaf.flush();

  await topo.killNode('hub');
  await topo.waitLeafs('leaf', 0);
  // Interest made while the hub is away is announced when it comes back.
  leaf.subscribe(`down2.${id}`, { callback: (_e, m) => onLeaf.push(m.string()) });
  await leaf.flush();
  await topo.startNode('hub');
  await topo.waitConnected(60_000);
  const hub = await topo.client('hub');
  const onHub: string[] = [];
  hub.subscribe(`up.${id}`, { callback: (_e, m) => onHub.push(m.string()) });
  await interestSeen(leaf, [hub]);
  await interestSeen(hub, [leaf]);
  hub.publish(`down.${id}`, 'a');
  hub.publish(`down2.${id}`, 'b');
  leaf.publish(`up.${id}`, 'c');
  await Promise.all([hub.flush(), leaf.flush()]);
  await waitFor(() => onLeaf.length === 2 && onHub.length === 1, 10_000, 'messages both ways after the reconnect');
  t.deepEqual(onLeaf.sort(), ['a', 'b']);
  t.deepEqual(onHub, ['c']);
});

leafTest(
  'a leaf configured with one server of a hub cluster fails over to another it learned from leafnode_urls',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await LeafTopology.start(t, [
      { name: 'h1', impl: mix.hub, cluster: 'H', accept: true },
      { name: 'h2', impl: mix.hub, cluster: 'H', accept: true },
      { name: 'leaf', impl: mix.leaf, remotes: ['h1'] },
    ]);
    await topo.waitConnected();
    const h2 = await topo.client('h2');
    const leaf = await topo.client('leaf');
    await interestSeen(h2, [await topo.client('h1')]);
    // h1 tells its leaf about h2's leaf URL (an async INFO when h2 joined, or in the first one).
    await topo.killNode('h1');
    const port = await topo.waitRemote('leaf', [topo.node('h2').leafPort], 60_000);
    t.is(port, topo.node('h2').leafPort, 'now connected to h2, which was never configured');
    const id = uid();
    const got: string[] = [];
    leaf.subscribe(`fo.${id}`, { callback: (_e, m) => got.push(m.string()) });
    await interestSeen(leaf, [h2]);
    h2.publish(`fo.${id}`, 'via h2');
    await waitFor(() => got.length === 1, 10_000, 'the message through h2');
    t.deepEqual(got, ['via h2']);
  },
);

leafTest(
  "after a disconnect a leaf redials the hub's advertised leafnode_urls first, after the reconnect interval",
  ['leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const second = await FakeHub.start();
    t.teardown(() => second.close());
    // The configured hub advertises itself and `second` (as a hub in a cluster does).
    const first = await FakeHub.start({
      info: (std) => ({ ...std, leafnode_urls: [`127.0.0.1:${second.port}`, std.ip] }),
    });
    t.teardown(() => first.close());
    await LeafTopology.start(t, [
      {
        name: 'leaf',
        impl: mix.leaf,
        leafConfig: 'reconnect: 3',
        remotes: [{ urls: [`nats-leaf://lu:lp@127.0.0.1:${first.port}`] }],
      },
    ]);
    const peer = await first.accepted(1);
    await peer.next((f) => f.op === 'LS+', 10_000, "the leaf's dump");
    peer.close();
    const closedAt = Date.now();
    const next = await second.accepted(1, 60_000);
    const delay = second.acceptedAt[0] - closedAt;
    t.true(delay >= 2500, `redialled ${delay}ms after the disconnect (reconnect: 3)`);
    // The credentials of the configured URL are reused for a URL learned from the hub.
    const connect = (await next.next((f) => f.op === 'CONNECT', 10_000, 'CONNECT')).json!;
    t.is(connect.user, 'lu');
    t.is(connect.pass, 'lp');
    t.is(first.connections.length, 1, 'the advertised URL was tried before the configured one');
  },
);

leafTest('a leaf drops a hub that stops answering PINGs as stale, and redials', ['leaf'], async (t, mix) => {
  t.timeout(120_000);
  const fake = await FakeHub.start();
  t.teardown(() => fake.close());
  await LeafTopology.start(t, [
    {
      name: 'leaf',
      impl: mix.leaf,
      config: 'ping_interval: "1s"\nping_max: 2',
      remotes: [{ urls: [`nats-leaf://127.0.0.1:${fake.port}`] }],
    },
  ]);
  const peer = await fake.accepted(1);
  peer.autoPong = false;
  const err = await peer.next((f) => f.op === '-ERR', 30_000, 'the stale -ERR');
  t.is(err.line, "-ERR 'Stale Connection'");
  // The leaf pinged whether or not there was traffic, every interval, before giving up.
  t.true(peer.frames.filter((f) => f.op === 'PING').length >= 2);
  await peer.closed(10_000);
  await fake.accepted(2, 30_000);
  t.pass();
});

leafTest(
  'a hub drops a leaf that stops answering PINGs as stale; the leaf redials and its interest is resynced',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true, config: 'ping_interval: "1s"\nping_max: 2' },
      { name: 'leaf', impl: mix.leaf, remotes: ['hub'] },
    ]);
    await topo.waitConnected();
    // SIGSTOP the leaf: its socket stays open but nothing answers.
    const leafPid = topo.node('leaf').srv.pid;
    process.kill(leafPid, 'SIGSTOP');
    let resumed = false;
    t.teardown(() => {
      if (!resumed) process.kill(leafPid, 'SIGCONT');
    });
    await topo.waitLeafs('hub', 0, 30_000);
    await topo.node('hub').srv.waitForLog(/Stale Connection/, 10_000);
    process.kill(leafPid, 'SIGCONT');
    resumed = true;
    await topo.waitConnected(60_000);
    const leaf = await topo.client('leaf');
    const hub = await topo.client('hub');
    await interestSeen(leaf, [hub]);
    t.pass();
  },
);
