// Bad input and faults on leaf connections (../shared/protocol.md §8.5, 8.6, 8.9, 8.11): a raw
// peer on the leaf port that sends garbage, malformed LS+/LMSG, a huge control line, or that
// stalls, is closed (or, for an invalid subject, answered) without harming other traffic; killing
// the middle of a chain splits the graph cleanly and it heals, with interest resynced, when the
// server returns.
//
// "Other traffic" is a real leaf attached to the same hub carrying messages both ways, checked
// after each fault.
//
// Each test runs on all-nats-server topologies, and on skein and mixed ones only with skein leaf nodes (on since issue 13).

import type { ExecutionContext } from 'ava';
import { ErrorCode, type NatsConnection } from 'nats';
import { interestSeen, uid, waitFor } from './helpers/cluster.ts';
import { chainSpecs, LeafTopology, leafTest, type Mix } from './helpers/leaf.ts';
import { leafToHub, type LeafSession } from './helpers/leafpeer.ts';

/** A hub with a real leaf attached, and a client on each. */
async function hubWithLeaf(
  t: ExecutionContext,
  mix: Mix,
  hubConfig?: string,
): Promise<{ topo: LeafTopology; hub: NatsConnection; leaf: NatsConnection }> {
  const topo = await LeafTopology.start(t, [
    { name: 'hub', impl: mix.hub, accept: true, config: hubConfig },
    { name: 'leaf', impl: mix.leaf, remotes: ['hub'] },
  ]);
  await topo.waitConnected();
  return { topo, hub: await topo.client('hub'), leaf: await topo.client('leaf') };
}

/** A round trip each way across the real leaf connection. */
async function trafficFlows(t: ExecutionContext, hub: NatsConnection, leaf: NatsConnection): Promise<void> {
  const id = uid();
  hub.subscribe(`svc.h.${id}`, { callback: (_e, m) => m.respond('hub') });
  leaf.subscribe(`svc.l.${id}`, { callback: (_e, m) => m.respond('leaf') });
  await interestSeen(hub, [leaf]);
  await interestSeen(leaf, [hub]);
  t.is((await leaf.request(`svc.h.${id}`, '', { timeout: 10_000 })).string(), 'hub');
  t.is((await hub.request(`svc.l.${id}`, '', { timeout: 10_000 })).string(), 'leaf');
}

async function rawLeaf(topo: LeafTopology, t: ExecutionContext, name: string): Promise<LeafSession> {
  const s = await leafToHub(topo.node('hub').leafPort, { name });
  t.teardown(() => s.peer.close());
  return s;
}

leafTest(
  "garbage on a leaf connection closes only that connection: -ERR 'Unknown Protocol Operation' after CONNECT",
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const { topo, hub, leaf } = await hubWithLeaf(t, mix);
    for (const junk of ['\x00\x01\xffgarbage here\r\n', 'MSG foo 1 2\r\nhi\r\n', 'HELLO\r\n']) {
      const s = await rawLeaf(topo, t, `junk${uid()}`);
      s.peer.send(junk);
      const err = await s.peer.next((f) => f.op === '-ERR', 10_000, 'the -ERR');
      t.is(err.line, "-ERR 'Unknown Protocol Operation'", JSON.stringify(junk));
      await s.peer.closed(10_000);
    }
    await trafficFlows(t, hub, leaf);
    t.is((await topo.leafz('hub')).leafnodes, 1);
  },
);

leafTest(
  'malformed leaf operations: an invalid LS+ subject is answered and kept open; wrong argument counts and a bad reply indicator close silently',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const { topo, hub, leaf } = await hubWithLeaf(t, mix);
    const s = await rawLeaf(topo, t, 'badsub');
    s.peer.send('LS+ foo..bar\r\n');
    const err = await s.peer.next((f) => f.op === '-ERR', 10_000, 'the -ERR');
    t.is(err.line, "-ERR 'Invalid Subscription'");
    await s.peer.ping();
    t.false(s.peer.isClosed(), 'an invalid subject does not close the connection');
    for (const bad of ['LS+ a b c d\r\n', 'LS+ a b\r\n', 'LMSG foo bad q 2\r\nhi\r\n', 'LMSG foo 1 2 3 4 5 x\r\n']) {
      const p = await rawLeaf(topo, t, `bad${uid()}`);
      p.peer.send(bad);
      await p.peer.closed(10_000);
      t.deepEqual(
        p.peer.frames.filter((f) => f.op === '-ERR').map((f) => f.line),
        [],
        `${JSON.stringify(bad)}: closed without -ERR`,
      );
    }
    await topo.node('hub').srv.waitForLog(/processLeafSub Parse Error/, 10_000);
    await topo.node('hub').srv.waitForLog(/Bad or Missing Reply Indicator/, 10_000);
    await trafficFlows(t, hub, leaf);
  },
);

leafTest('a huge control line from a leaf peer never harms other traffic, and the peer is closed', ['hub', 'leaf'], async (t, mix) => {
  t.timeout(120_000);
  // nats-server does not apply max_control_line to leaf connections: the line is buffered until
  // the peer, which cannot answer a PING inside it, is dropped as stale (ping_interval 1s here).
  // skein may close it sooner; either way only that connection goes.
  const { topo, hub, leaf } = await hubWithLeaf(t, mix, 'ping_interval: "1s"\nping_max: 2');
  const s = await rawLeaf(topo, t, 'huge');
  s.peer.autoPong = false; // a PONG would end the line (and nats-server would take a 1 MiB subject)
  s.peer.send(`LS+ ${'a'.repeat(1 << 20)}`);
  await trafficFlows(t, hub, leaf);
  await s.peer.closed(60_000);
  const errs = s.peer.frames.filter((f) => f.op === '-ERR').map((f) => f.error);
  t.true(
    errs.length <= 1 && errs.every((e) => e === 'Stale Connection' || /Maximum Control Line Exceeded/.test(e ?? '')),
    `errors: ${errs}`,
  );
  await trafficFlows(t, hub, leaf);
  t.is((await topo.leafz('hub')).leafnodes, 1);
});

leafTest('a leaf peer that stops answering PINGs is closed as stale without harming other traffic', ['hub', 'leaf'], async (t, mix) => {
  t.timeout(120_000);
  const { topo, hub, leaf } = await hubWithLeaf(t, mix, 'ping_interval: "1s"\nping_max: 2');
  const s = await rawLeaf(topo, t, 'mute');
  s.peer.autoPong = false;
  const err = await s.peer.next((f) => f.op === '-ERR', 30_000, 'the stale -ERR');
  t.is(err.line, "-ERR 'Stale Connection'");
  await s.peer.closed(10_000);
  await trafficFlows(t, hub, leaf);
});

leafTest(
  "a leaf peer that stops reading is cut off by the write deadline while the hub's other subscribers get every message",
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(180_000);
    const { topo, hub, leaf } = await hubWithLeaf(t, mix, 'write_deadline: "2s"');
    const id = uid();
    const subject = `flood.${id}`;
    const s = await rawLeaf(topo, t, 'sleeper');
    s.peer.sub(subject);
    await s.peer.ping();
    s.peer.socket.pause(); // reads nothing more: the hub's writes back up
    let onLeaf = 0;
    leaf.subscribe(subject, {
      callback: () => {
        onLeaf++;
      },
    });
    await interestSeen(leaf, [hub]);
    const payload = 'x'.repeat(64 * 1024);
    let sent = 0;
    const deadline = Date.now() + 90_000;
    while (!s.peer.isClosed() && !(await topo.leafz('hub')).leafs.every((l) => l.port !== s.peer.socket.localPort)) {
      for (let k = 0; k < 64; k++) hub.publish(subject, payload);
      sent += 64;
      await hub.flush();
      if (Date.now() > deadline) throw new Error(`the stalled peer was never cut off (sent ${sent} messages of 64 KiB)`);
    }
    await waitFor(() => onLeaf === sent, 60_000, `all ${sent} messages on the real leaf (have ${onLeaf})`);
    t.is(onLeaf, sent);
    await trafficFlows(t, hub, leaf);
  },
);

leafTest(
  'killing the middle of a chain splits it cleanly, and it heals with interest resynced when the middle returns',
  ['hub', 'mid', 'tail'],
  async (t, mix) => {
    t.timeout(180_000);
    const topo = await LeafTopology.start(t, chainSpecs(['hub', 'mid', 'tail'], mix), { fixedLeafPorts: true });
    await topo.waitConnected();
    const hub = await topo.client('hub');
    const tail = await topo.client('tail');
    const id = uid();
    const onHub: string[] = [];
    const onTail: string[] = [];
    hub.subscribe(`up.${id}`, { callback: (_e, m) => onHub.push(m.string()) });
    tail.subscribe(`down.${id}`, { callback: (_e, m) => onTail.push(m.string()) });
    await interestSeen(hub, [tail]);
    await interestSeen(tail, [hub]);

    await topo.killNode('mid');
    await topo.waitLeafs('hub', 0);
    await topo.waitLeafs('tail', 0);
    // Each side still serves its own clients; across the gap, requests get no-responders.
    const err = await tail.request(`up.${id}`, '', { timeout: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.is((err as { code?: string } | undefined)?.code, ErrorCode.NoResponders, "the hub's interest is gone from the tail");
    const local: string[] = [];
    tail.subscribe(`local.${id}`, { callback: (_e, m) => local.push(m.string()) });
    tail.publish(`local.${id}`, 'still here');
    await waitFor(() => local.length === 1, 10_000, 'local delivery on the tail');
    // Interest made during the split is announced once healed.
    hub.subscribe(`up2.${id}`, { callback: (_e, m) => onHub.push(m.string()) });
    await hub.flush();

    await topo.startNode('mid');
    await topo.waitConnected(60_000);
    await interestSeen(hub, [tail]);
    await interestSeen(tail, [hub]);
    tail.publish(`up.${id}`, 'a');
    tail.publish(`up2.${id}`, 'b');
    hub.publish(`down.${id}`, 'c');
    await Promise.all([hub.flush(), tail.flush()]);
    await waitFor(() => onHub.length === 2 && onTail.length === 1, 10_000, 'messages across the healed chain');
    t.deepEqual(onHub.sort(), ['a', 'b']);
    t.deepEqual(onTail, ['c']);
  },
);
