// Gateway liveness and bad peers (protocol.md §3.9): PINGs on both directions, stale
// detection, garbage, a stalled or non-reading peer, -ERR from a peer; each closes only that
// gateway (with nats-server's -ERR and close reason) while clients, routes and the other
// gateways carry on, and an explicit gateway is dialled again.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import { interestSeen } from './helpers/cluster.ts';
import { GATEWAY_CMD, isCmd, usePeer, type GatewayConn } from './helpers/gateway-peer.ts';
import { SINGLE_VARIANTS, Supercluster, eventually, gatewayTest, type VariantName } from './helpers/supercluster.ts';

const CLUSTER_VARIANTS: VariantName[] = ['nats-server', 'skein', 'mixed'];
const FAST_PINGS = 'ping_interval: "1s"';

/** A client of `sc` server (c, s) and a gateway `g` still deliver to a subscriber on server (c, s2). */
async function stillServing(sc: Supercluster, g: GatewayConn, c: number, s: number, s2: number, tag: string): Promise<void> {
  const [pub, sub] = [await sc.client(c, s), await sc.client(c, s2)];
  const got: string[] = [];
  sub.subscribe(`alive.${tag}`, { callback: (_e, m) => got.push(m.string()) });
  await interestSeen(sub, [pub]);
  await eventually('interest at the surviving gateway', () => g.ops().some((o) => o.op === 'RS+' && o.args[1] === `alive.${tag}`));
  pub.publish(`alive.${tag}`, 'client');
  g.sendMsg({ subject: `alive.${tag}`, payload: 'gateway' });
  await eventually('both deliveries', () => got.length >= 2);
  if ([...got].sort().join() !== 'client,gateway') throw new Error(`got ${got}`);
}

gatewayTest('gateways PING on both directions, the inbound only after CONNECT', SINGLE_VARIANTS, async (t, variant) => {
  const p = await usePeer(t, { name: 'P' });
  const sc = await Supercluster.start(t, {
    variant,
    sizes: [1],
    waitConnected: false,
    config: () => FAST_PINGS,
    remotes: () => [{ name: 'P', urls: [`nats://${p.url}`] }],
  });
  const a = sc.server(0, 0);
  const out = await p.accept();
  const silent = await (await usePeer(t, { name: 'SILENT', listen: false })).dial(a.gatewayPort, { handshake: false });
  const inbound = await (await usePeer(t, { name: 'IN', listen: false })).dial(a.gatewayPort);
  await Promise.all([out, inbound].map((c) => eventually('2 PINGs', () => c.ops().filter((o) => o.op === 'PING').length >= 2, 30_000)));
  // No CONNECT: no PING, only the auth timeout (2 s; PINGs here come every second).
  t.is((await silent.next('-ERR', 20_000)).err, 'Authentication Timeout');
  t.is(silent.ops().filter((o) => o.op === 'PING').length, 0, 'no PING before CONNECT');
});

gatewayTest(
  'a gateway that stops answering PINGs is closed as a Stale Connection after ping_max unanswered PINGs, and dialled again',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const p = await usePeer(t, { name: 'P' });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      config: () => `${FAST_PINGS}\nping_max: 2`,
      remotes: () => [{ name: 'P', urls: [`nats://${p.url}`] }],
    });
    const a = sc.server(0, 0);
    const out = await p.accept();
    out.autoPong = false;
    t.is((await out.next('-ERR', 30_000)).err, 'Stale Connection');
    t.is(out.ops().filter((o) => o.op === 'PING').length, 2, 'closed at the PING after ping_max unanswered ones');
    await out.closed();
    t.truthy(await a.srv.waitForLog(/Gateway connection closed: Stale Connection/));
    const again = await p.accept({ timeoutMs: 30_000 });
    t.is(again.serverConnect?.gateway, sc.names[0], 'the explicit gateway is dialled again');
    // The inbound side too.
    const inbound = await (await usePeer(t, { name: 'IN', listen: false })).dial(a.gatewayPort);
    inbound.autoPong = false;
    t.is((await inbound.next('-ERR', 30_000)).err, 'Stale Connection');
    await inbound.closed();
  },
);

gatewayTest(
  'garbage from a gateway closes only that gateway (Protocol Violation); clients, routes and other gateways carry on',
  CLUSTER_VARIANTS,
  async (t, variant) => {
    const p = await usePeer(t, { name: 'P' });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [2],
      remotes: (_c, s) => (s === 0 ? [{ name: 'P', urls: [`nats://${p.url}`] }] : []),
    });
    const a1 = sc.server(0, 0);
    const survivor = await (await usePeer(t, { name: 'S', listen: false })).dial(a1.gatewayPort);
    await survivor.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    // Garbage on the server's outbound (P accepted it) and on an inbound (G dialled).
    const out = await p.accept();
    out.send('GARBAGE\r\n');
    t.is((await out.next('-ERR')).err, 'Unknown Protocol Operation');
    await out.closed();
    const g = await (await usePeer(t, { name: 'G', listen: false })).dial(a1.gatewayPort);
    await g.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    g.send('RMSG $G foo notanumber\r\n');
    await g.closed();
    t.truthy(await a1.srv.waitForLog(/Gateway connection closed: Protocol Violation/));
    await stillServing(sc, survivor, 0, 0, 1, 'garbage');
    t.false(survivor.isClosed());
  },
);

gatewayTest(
  'a gateway that stalls in the middle of a message is closed as stale; nothing else waits for it',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1], waitConnected: false, config: () => FAST_PINGS });
    const a = sc.server(0, 0);
    const survivor = await (await usePeer(t, { name: 'S', listen: false })).dial(a.gatewayPort);
    await survivor.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    const staller = await (await usePeer(t, { name: 'STALL', listen: false })).dial(a.gatewayPort);
    await staller.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    staller.autoPong = false;
    staller.send('RMSG $G foo 100\r\nonly a part of it');
    const nc = await sc.client(0, 0);
    const got: string[] = [];
    nc.subscribe('meanwhile', { callback: (_e, m) => got.push(m.string()) });
    await survivor.next((o) => o.op === 'RS+' && o.args[1] === 'meanwhile');
    survivor.sendMsg({ subject: 'meanwhile', payload: 'not held up' });
    await eventually('delivery while a gateway is stalled', () => got.length === 1);
    t.is((await staller.next('-ERR', 30_000)).err, 'Stale Connection');
    await staller.closed();
    t.false(survivor.isClosed());
  },
);

gatewayTest(
  'a gateway that does not read is cut off by the write deadline, and clients are not held up',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const p = await usePeer(t, { name: 'P' });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      config: () => 'write_deadline: "1s"',
      remotes: () => [{ name: 'P', urls: [`nats://${p.url}`] }],
    });
    const a = sc.server(0, 0);
    const out = await p.accept();
    p.sendInterest(out, '$G', ['big']);
    await out.ping();
    out.socket.pause(); // reads nothing more: the server's writes back up
    const [pub, sub] = [await sc.client(0, 0), await sc.client(0, 0)];
    let got = 0;
    sub.subscribe('big', {
      callback: () => {
        got++;
      },
    });
    await sub.flush();
    const payload = new Uint8Array(16 * 1024);
    let sent = 0;
    await eventually(
      'the gateway cut off',
      async () => {
        for (let i = 0; i < 100; i++) pub.publish('big', payload);
        sent += 100;
        await pub.flush();
        return /Gateway connection closed: Slow Consumer \(Write Deadline\)/.test(a.srv.output());
      },
      60_000,
      10,
    );
    // 2.9.10 logs each deadline it misses and closes a gateway (unlike a client) only when a
    // whole deadline passed with nothing written.
    t.regex(a.srv.output(), /Slow Consumer Detected: WriteDeadline of 1s exceeded with \d+ chunks of \d+ total bytes\./);
    t.regex(a.srv.output(), /Gateway connection closed: Slow Consumer \(Write Deadline\)/);
    await eventually('every message to the local subscriber', () => got === sent, 60_000);
    t.is(got, sent);
  },
);

gatewayTest('an -ERR from a gateway closes it, and an explicit gateway is dialled again', SINGLE_VARIANTS, async (t, variant) => {
  const p = await usePeer(t, { name: 'P' });
  const sc = await Supercluster.start(t, {
    variant,
    sizes: [1],
    waitConnected: false,
    remotes: () => [{ name: 'P', urls: [`nats://${p.url}`] }],
  });
  const a = sc.server(0, 0);
  const out = await p.accept();
  out.send("-ERR 'boom'\r\n");
  await out.closed();
  t.truthy(await a.srv.waitForLog(/Gateway Error 'boom'/));
  const again = await p.accept({ timeoutMs: 30_000 });
  t.is(again.serverConnect?.gateway, sc.names[0]);
});
