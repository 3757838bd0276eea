// Queue groups across gateways (protocol.md §3.7): served in the publisher's own cluster
// first, else by the remote cluster with the lowest RTT, each message exactly once
// supercluster-wide, failing over to a remote cluster when the local members go and coming
// back when one returns; a message that arrives through a gateway reaches a member via the
// receiving cluster's routes.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import type { NatsConnection, Subscription } from 'nats';
import { interestSeen, uid } from './helpers/cluster.ts';
import { usePeer, type GatewayConn } from './helpers/gateway-peer.ts';
import { ALL_VARIANTS, SINGLE_VARIANTS, Supercluster, eventually, gatewayTest } from './helpers/supercluster.ts';

/** A queue member that records what it got. */
function member(nc: NatsConnection, subject: string, queue: string, got: string[]): Subscription {
  return nc.subscribe(subject, { queue, callback: (_e, m) => got.push(m.string()) });
}

/**
 * Returns once everything `pub` published before the call has reached `sub`'s server and been
 * delivered: a plain marker travels behind it on the same path (client, gateway, route).
 */
async function behind(pub: NatsConnection, sub: NatsConnection): Promise<void> {
  const subject = `_behind.${uid()}`;
  let seen = false;
  const s = sub.subscribe(subject, {
    callback: () => {
      seen = true;
    },
  });
  await interestSeen(sub, [pub]);
  pub.publish(subject);
  await pub.flush();
  await eventually('the marker', () => seen, 15_000, 20);
  s.unsubscribe();
}

let probes = 0;

/** Publishes `probe-N` messages (N unique in the file) until some member has one: the group's interest has reached the publisher. */
async function groupReachable(pub: NatsConnection, subject: string, members: string[][]): Promise<void> {
  await eventually(
    `queue interest on ${subject}`,
    async () => {
      pub.publish(subject, `probe-${probes++}`);
      await pub.flush();
      return members.some((m) => m.some((x) => x.startsWith('probe-')));
    },
    30_000,
    50,
  );
}

const real = (got: string[]) => got.filter((x) => !x.startsWith('probe-'));

gatewayTest(
  "a queue group is served in the publisher's cluster first: with a member there, nothing crosses a gateway",
  ALL_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2, 2] });
    const [a1, a2, b1] = [await sc.client(0, 0), await sc.client(0, 1), await sc.client(1, 0)];
    const subject = `work.${uid()}`;
    const [onA2, onB1] = [[] as string[], [] as string[]];
    member(a2, subject, 'wq', onA2);
    member(b1, subject, 'wq', onB1);
    await interestSeen(a2, [a1]);
    await interestSeen(b1, [a1]);
    for (let i = 0; i < 100; i++) a1.publish(subject, `m${i}`);
    await a1.flush();
    await eventually('100 messages on A2', () => onA2.length >= 100);
    await behind(a1, b1);
    await behind(a1, a2);
    t.is(onA2.length, 100, 'each message once');
    t.deepEqual(onB1, [], 'nothing to the remote member');
  },
);

gatewayTest(
  'with no member in its cluster, a queue group is served by one remote cluster, each message exactly once supercluster-wide',
  ALL_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2, 2, 1] });
    const [a1, a2] = [await sc.client(0, 0), await sc.client(0, 1)];
    const members = [await sc.client(1, 0), await sc.client(1, 1), await sc.client(2, 0)];
    const subject = `work.${uid()}`;
    const got = members.map(() => [] as string[]);
    members.forEach((nc, i) => member(nc, subject, 'wq', got[i]));
    for (const pub of [a1, a2]) await groupReachable(pub, subject, got);
    for (let i = 0; i < 200; i++) {
      a1.publish(subject, `a1-${i}`);
      a2.publish(subject, `a2-${i}`);
    }
    await Promise.all([a1.flush(), a2.flush()]);
    await eventually('400 deliveries', () => got.reduce((n, g) => n + real(g).length, 0) >= 400);
    for (const nc of members) await behind(a1, nc);
    for (const nc of members) await behind(a2, nc);
    const all = got.flatMap(real);
    t.is(all.length, 400);
    t.is(new Set(all).size, 400, 'no message twice');
  },
);

gatewayTest(
  "a message that crosses a gateway reaches a member through the receiving cluster's routes, once, and plain subscribers too",
  ALL_VARIANTS,
  async (t, variant) => {
    // A dials B1 only; the member is on B2.
    const sc = await Supercluster.start(t, { variant, sizes: [1, 2], gatewayUrlsOf: () => [0] });
    const a = await sc.client(0, 0);
    const [b1, b2] = [await sc.client(1, 0), await sc.client(1, 1)];
    const subject = `work.${uid()}`;
    const [q, plain] = [[] as string[], [] as string[]];
    member(b2, subject, 'wq', q);
    b1.subscribe(subject, { callback: (_e, m) => plain.push(m.string()) });
    await groupReachable(a, subject, [q]);
    await eventually('plain interest', async () => {
      await interestSeen(b1, [a]);
      return true;
    });
    plain.length = 0;
    for (let i = 0; i < 50; i++) a.publish(subject, `m${i}`);
    await a.flush();
    await eventually('50 to the member', () => real(q).length >= 50);
    await eventually('50 to the plain subscriber', () => plain.filter((x) => !x.startsWith('probe-')).length >= 50);
    await behind(a, b1);
    await behind(a, b2);
    t.is(real(q).length, 50);
    t.is(plain.filter((x) => !x.startsWith('probe-')).length, 50);
  },
);

gatewayTest(
  'when the local members leave, the group fails over to a remote cluster; when one returns, delivery comes back',
  ALL_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2, 2] });
    const [a1, a2, b1] = [await sc.client(0, 0), await sc.client(0, 1), await sc.client(1, 0)];
    const subject = `work.${uid()}`;
    const [onA2, onB1] = [[] as string[], [] as string[]];
    const local = member(a2, subject, 'wq', onA2);
    member(b1, subject, 'wq', onB1);
    await groupReachable(a1, subject, [onA2]);
    const batch = async (tag: string): Promise<void> => {
      for (let i = 0; i < 50; i++) a1.publish(subject, `${tag}-${i}`);
      await a1.flush();
      await behind(a1, a2);
      await behind(a1, b1);
    };
    const tagged = (got: string[], tag: string) => got.filter((x) => x.startsWith(`${tag}-`)).length;

    await batch('local');
    t.deepEqual([tagged(onA2, 'local'), tagged(onB1, 'local')], [50, 0], 'local member first');

    local.unsubscribe();
    await a2.flush();
    let n = 0;
    await eventually(
      'failover to B',
      async () => {
        a1.publish(subject, `switch-${n++}`);
        await a1.flush();
        return onB1.some((x) => x.startsWith('switch-'));
      },
      30_000,
      50,
    );
    await batch('remote');
    t.deepEqual([tagged(onA2, 'remote'), tagged(onB1, 'remote')], [0, 50], 'remote cluster after the local members left');

    member(a2, subject, 'wq', onA2);
    await a2.flush();
    n = 0;
    await eventually(
      'failback to A',
      async () => {
        a1.publish(subject, `back-${n++}`);
        await a1.flush();
        return onA2.some((x) => x.startsWith('back-'));
      },
      30_000,
      50,
    );
    await batch('again');
    t.deepEqual([tagged(onA2, 'again'), tagged(onB1, 'again')], [50, 0], 'local again once a member returned');
    const all = [...onA2, ...onB1];
    t.is(new Set(all).size, all.length, 'no message twice, transitions included');
  },
);

gatewayTest(
  'among remote clusters, the one with the lowest gateway RTT serves the group; the order follows the measured RTT',
  SINGLE_VARIANTS,
  async (t, variant) => {
    // Two raw peers with the group; one answers PINGs late. The server measures RTT with its
    // gateway PINGs (every ping_interval, here 1 s) and sends the group to the nearest.
    const p = await usePeer(t, { name: 'P' });
    const q = await usePeer(t, { name: 'Q' });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      config: () => 'ping_interval: "1s"',
      remotes: () => [
        { name: 'P', urls: [`nats://${p.url}`] },
        { name: 'Q', urls: [`nats://${q.url}`] },
      ],
    });
    const [toP, toQ] = await Promise.all([p.accept(), q.accept()]);
    for (const c of [toP, toQ]) c.send('RS+ $G work wq 1\r\n');
    await Promise.all([toP.ping(), toQ.ping()]);
    const nc = await sc.client(0, 0);
    const pongsAnswered = async (c: GatewayConn, n: number) => {
      const start = c.ops().filter((o) => o.op === 'PING').length;
      await eventually(`${n} more PINGs`, () => c.ops().filter((o) => o.op === 'PING').length >= start + n, 30_000);
    };
    const round = async (tag: string): Promise<[number, number]> => {
      for (let i = 0; i < 20; i++) nc.publish('work', `${tag}-${i}`);
      await nc.flush();
      await eventually(
        `20 ${tag} messages`,
        () => [toP, toQ].reduce((s, c) => s + c.ops().filter((o) => o.msg?.payload.startsWith(`${tag}-`)).length, 0) >= 20,
      );
      return [toP, toQ].map((c) => c.ops().filter((o) => o.msg?.payload.startsWith(`${tag}-`)).length) as [number, number];
    };
    // The server's RTT is the time from its last PING to the next PONG. With PINGs 1 s apart and
    // PONGs 500 ms late, a third PING means the late PONG of the second has been measured.
    toQ.pongDelayMs = 500;
    await Promise.all([pongsAnswered(toP, 2), pongsAnswered(toQ, 3)]);
    t.deepEqual(await round('r1'), [20, 0], 'P is nearer');
    const line = toP.ops().find((o) => o.msg?.payload === 'r1-0')?.line;
    t.is(line, 'RMSG $G work | wq 4', 'the group goes with a queue section only');
    toQ.pongDelayMs = 0;
    toP.pongDelayMs = 500;
    await Promise.all([pongsAnswered(toP, 3), pongsAnswered(toQ, 2)]);
    t.deepEqual(await round('r2'), [0, 20], 'Q is nearer now');
  },
);
