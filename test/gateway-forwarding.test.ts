// Forwarding rules across gateways (protocol.md §3.8): only messages published in a cluster go
// out on its gateways; a message from an inbound gateway reaches local subscribers and the
// local routes, one hop, and never leaves on another gateway; what a receiving cluster does
// with the queue section of a gateway message; headers cross intact.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import { headers as natsHeaders, type NatsConnection } from 'nats';
import { interestSeen, uid } from './helpers/cluster.ts';
import { GATEWAY_CMD, isCmd, usePeer, type GatewayConn } from './helpers/gateway-peer.ts';
import { ALL_VARIANTS, Supercluster, eventually, gatewayTest, type VariantName } from './helpers/supercluster.ts';

const CLUSTER_VARIANTS: VariantName[] = ['nats-server', 'skein', 'mixed'];

gatewayTest(
  'a message from an inbound gateway reaches local subscribers and the local routes, one hop, and never leaves on another gateway',
  CLUSTER_VARIANTS,
  async (t, variant) => {
    // P sends into A1; Q is another remote cluster that wants everything, dialled by A1 and A2.
    const p = await usePeer(t, { name: 'P', listen: false });
    const q = await usePeer(t, { name: 'Q' });
    const sc = await Supercluster.start(t, { variant, sizes: [2], remotes: () => [{ name: 'Q', urls: [`nats://${q.url}`] }] });
    const qConns = await Promise.all([q.accept(), q.accept()]);
    for (const c of qConns) q.sendInterest(c, '$G', ['>']);
    await Promise.all(qConns.map((c) => c.ping()));
    const [n1, n2] = [await sc.client(0, 0), await sc.client(0, 1)];
    const got: string[] = [];
    n1.subscribe('hop', { callback: (_e, m) => got.push(`A1:${m.string()}`) });
    n2.subscribe('hop', { callback: (_e, m) => got.push(`A2:${m.string()}`) });
    await interestSeen(n2, [n1]);
    const fromP = await p.dial(sc.server(0, 0).gatewayPort);
    await fromP.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    await eventually('RS+ hop to P', () => fromP.ops().some((o) => o.op === 'RS+' && o.args[1] === 'hop'));
    fromP.sendMsg({ subject: 'hop', payload: 'from-P' });
    await eventually('delivery on both servers', () => got.length >= 2);
    t.deepEqual([...got].sort(), ['A1:from-P', 'A2:from-P']);
    // Markers published in A after the delivery go out to Q; from-P must not be ahead of them.
    n1.publish('hop', 'marker-1');
    n2.publish('hop', 'marker-2');
    await Promise.all(qConns.map((c) => c.next((o) => o.op === 'RMSG' && /^marker-/.test(o.msg?.payload ?? ''))));
    for (const c of qConns)
      t.false(
        c.ops().some((o) => o.msg?.payload === 'from-P'),
        'never out on another gateway',
      );
    t.is(got.filter((g) => g.endsWith(':from-P')).length, 2, 'each subscriber once');
  },
);

gatewayTest(
  'each message reaches every other cluster exactly once: a route peer never sends it on again',
  ALL_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2, 2, 1] });
    const pub = await sc.client(0, 0);
    const subs: NatsConnection[] = [];
    for (const g of sc.all) subs.push(await sc.client(g.cluster, g.index));
    const subject = `once.${uid()}`;
    const got = subs.map(() => [] as string[]);
    subs.forEach((nc, i) => nc.subscribe(subject, { callback: (_e, m) => got[i].push(m.string()) }));
    for (const nc of subs) await interestSeen(nc, [pub]);
    for (let i = 0; i < 100; i++) pub.publish(subject, `m${i}`);
    await pub.flush();
    await eventually('100 on every server', () => got.every((g) => g.length >= 100));
    // A last marker on the same subject: anything sent twice would come before it.
    pub.publish(subject, 'end');
    await eventually('the end marker everywhere', () => got.every((g) => g.includes('end')));
    got.forEach((g, i) => t.is(g.length, 101, `${sc.all[i].name} got each message once`));
  },
);

gatewayTest(
  'the receiving cluster gives a gateway message to every plain subscriber, and to one member of each queue group it names, anywhere in the cluster',
  CLUSTER_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2] });
    const [n1, n2] = [await sc.client(0, 0), await sc.client(0, 1)];
    const got: Record<string, string[]> = { plain1: [], plain2: [], q1a: [], q1b: [], q2: [] };
    const on = (k: string) => (_e: unknown, m: { string(): string }) => got[k].push(m.string());
    n1.subscribe('work', { callback: on('plain1') });
    n2.subscribe('work', { callback: on('plain2') });
    n1.subscribe('work', { queue: 'q1', callback: on('q1a') });
    n2.subscribe('work', { queue: 'q1', callback: on('q1b') });
    n2.subscribe('work', { queue: 'q2', callback: on('q2') });
    await interestSeen(n2, [n1]);
    const p = await usePeer(t, { name: 'P', listen: false });
    const c: GatewayConn = await p.dial(sc.server(0, 0).gatewayPort);
    await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    for (let i = 0; i < 40; i++) c.sendMsg({ subject: 'work', queues: ['q1'], payload: `q1-${i}` });
    c.sendMsg({ subject: 'work', queues: ['q1', 'q2'], reply: 'rep', payload: 'both' });
    c.sendMsg({ subject: 'work', payload: 'plain' });
    await eventually('the plain message on both servers', () => got.plain1.includes('plain') && got.plain2.includes('plain'));
    await eventually('q1 messages', () => got.q1a.length + got.q1b.length >= 41);
    const q1 = [...got.q1a, ...got.q1b];
    t.is(q1.filter((x) => x.startsWith('q1-')).length, 40, 'one q1 member per message');
    t.is(new Set(q1).size, q1.length, 'never two members');
    t.deepEqual(got.q2, ['both'], 'q2 only when named');
    t.is(q1.filter((x) => x === 'both').length, 1);
    t.false(q1.includes('plain') || got.q2.includes('plain'), 'a message without a queue section reaches no queue member');
    for (const k of ['plain1', 'plain2']) t.is(got[k].length, 42, `${k} gets every message, queue section or not`);
    // 2.9.10 picks among local and route members alike (not local first): both q1 members
    // get some of 40.
    t.true(got.q1a.length > 0 && got.q1b.length > 0, `q1 split ${got.q1a.length}/${got.q1b.length}`);
  },
);

gatewayTest('headers cross gateways intact (HMSG), in both directions', ALL_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [1, 1] });
  const [a, b] = [await sc.client(0, 0), await sc.client(1, 0)];
  for (const [from, to, name] of [
    [a, b, 'A to B'],
    [b, a, 'B to A'],
  ] as const) {
    const subject = `hdr.${uid()}`;
    const got: { h?: string; v?: string; body: string }[] = [];
    to.subscribe(subject, { callback: (_e, m) => got.push({ h: m.headers?.get('X-Test'), v: m.headers?.get('Multi'), body: m.string() }) });
    await interestSeen(to, [from]);
    const h = natsHeaders();
    h.set('X-Test', 'yes');
    h.append('Multi', 'one');
    from.publish(subject, 'payload', { headers: h });
    await eventually(name, () => got.length === 1);
    t.deepEqual(got[0], { h: 'yes', v: 'one', body: 'payload' }, name);
  }
});
