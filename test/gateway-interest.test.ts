// Interest across gateways, both modes (protocol.md §3.6-3.7), against a raw 2.9.10 peer:
//
// - as the receiver (the server holds the inbound; the peer dials it): queue RS+ then the
//   cmd 2 / RS+ ... / cmd 3 burst per account on registration, RS+/RS- on every 0<->1 change
//   of cluster-wide interest, A- for an unknown account, RS+/RS- from the peer refused;
// - as the sender (the server holds the outbound; it dials the peer): nothing for an account
//   of an interest-only peer until its cmd 2 / cmd 3, optimistic sends to a peer without
//   gateway_iom with RS- per subject, RS+ clearing it, cmd 2 / cmd 3 switching the account,
//   A- / A+ for a whole account;
// - skein's own optimistic receiver (`gateway.interest_mode: optimistic`): RS- per subject,
//   A-/A+, and the switch to interest-only after 1000 distinct no-interest subjects, skein
//   to skein.
//
// Absence ("this was not sent") is checked behind a barrier: a client flush, then a PING on
// the gateway connection. nats-server answers that PING after everything its clients
// published before the flush; skein's gateway thread must do the same (drain what the
// workers handed it, and replay their interest logs, before answering a PING).
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import type { NatsConnection } from 'nats';
import { interestSeen } from './helpers/cluster.ts';
import { GATEWAY_CMD, cmdInfo, isCmd, usePeer, type GatewayConn, type GwOp } from './helpers/gateway-peer.ts';
import { ALL_VARIANTS, SINGLE_VARIANTS, Supercluster, eventually, gatewayTest, type VariantName } from './helpers/supercluster.ts';

const CLUSTER_VARIANTS: VariantName[] = ['nats-server', 'skein', 'mixed'];

/** Everything `nc` published before this call is on the wire to the peer when it returns. */
async function barrier(nc: NatsConnection, c: GatewayConn): Promise<void> {
  await nc.flush();
  await c.ping();
}

const rsPlus = (acc: string, subject: string) => (o: GwOp) =>
  o.op === 'RS+' && o.args.length === 2 && o.args[0] === acc && o.args[1] === subject;
const rsMinus = (acc: string, subject: string) => (o: GwOp) =>
  o.op === 'RS-' && o.args.length === 2 && o.args[0] === acc && o.args[1] === subject;
const msgOn = (subject: string, payload?: string) => (o: GwOp) =>
  (o.op === 'RMSG' || o.op === 'HMSG') && o.msg?.subject === subject && (payload === undefined || o.msg.payload === payload);
const count = (c: GatewayConn, pred: (o: GwOp) => boolean) => c.ops().filter(pred).length;

// ---------------------------------------------------------------------------------------
// The server as the receiver

gatewayTest(
  "on registration the inbound sends every queue group of its cluster, then each account's plain interest between cmd 2 and cmd 3",
  CLUSTER_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2] });
    const [n1, n2] = [await sc.client(0, 0), await sc.client(0, 1)];
    for (const s of ['foo', 'foo', 'w.*']) n1.subscribe(s);
    n1.subscribe('qq', { queue: 'grp' });
    for (const s of ['bar', 'foo']) n2.subscribe(s);
    n2.subscribe('qq', { queue: 'grp' });
    n2.subscribe('q2', { queue: 'grp2' });
    await interestSeen(n2, [n1]); // A1 knows A2's subscriptions
    const peer = await usePeer(t, { name: 'F', listen: false });
    const c = await peer.dial(sc.server(0, 0).gatewayPort);
    await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    const ops = c.ops().filter((o) => !(o.args[1] ?? '').startsWith('_probe.'));
    const firstCmd2 = ops.findIndex(isCmd(GATEWAY_CMD.allSubsStart));
    const queueLines = ops.filter((o) => o.op === 'RS+' && o.args.length === 4).map((o) => o.line);
    t.deepEqual([...queueLines].sort(), ['RS+ $G q2 grp2 1', 'RS+ $G qq grp 1'], 'one RS+ per queue group of the cluster, weight 1');
    t.true(
      ops.filter((o) => o.op === 'RS+' && o.args.length === 4).every((o) => ops.indexOf(o) < firstCmd2),
      'queue RS+ before any cmd 2',
    );
    const start = ops.findIndex(isCmd(GATEWAY_CMD.allSubsStart, '$G'));
    const end = ops.findIndex(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    t.true(start >= 0 && start < end);
    const plain = ops.slice(start + 1, end).filter((o) => o.op === 'RS+' && o.args[0] === '$G');
    t.true(
      plain.every((o) => o.args.length === 2),
      'no queue in the plain burst',
    );
    t.deepEqual(plain.map((o) => o.args[1]).sort(), ['bar', 'foo', 'w.*'], 'cluster-wide plain interest, each subject once');
    t.false(
      ops.slice(end + 1).some((o) => o.op === 'RS+' && o.args[0] === '$G'),
      'nothing more for $G after cmd 3',
    );
    // The command INFOs are 2.9.10's: empty id, zero values, base64 account.
    t.deepEqual(ops[start].json, {
      server_id: '',
      server_name: '',
      version: '',
      proto: 0,
      go: '',
      host: '',
      port: 0,
      headers: false,
      max_payload: 0,
      gateway: sc.names[0],
      gateway_cmd: 2,
      gateway_cmd_payload: 'JEc=',
    });
  },
);

gatewayTest(
  'after registration, cluster-wide plain interest goes out as RS+ on the first subscriber and RS- when the last one leaves',
  CLUSTER_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2] });
    const [n1, n2] = [await sc.client(0, 0), await sc.client(0, 1)];
    const peer = await usePeer(t, { name: 'F', listen: false });
    const c = await peer.dial(sc.server(0, 0).gatewayPort);
    await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));

    const s1 = n1.subscribe('x.1');
    await c.next(rsPlus('$G', 'x.1'));
    // A second subscriber in the cluster (on the other server) changes nothing; the marker
    // subscription made after it on the same connection proves A1 has seen it.
    const s2 = n2.subscribe('x.1');
    n2.subscribe('m.1');
    await c.next(rsPlus('$G', 'm.1'));
    t.is(count(c, rsPlus('$G', 'x.1')), 1, 'no second RS+ for a second subscriber');
    s1.unsubscribe();
    n1.subscribe('m.2');
    await c.next(rsPlus('$G', 'm.2'));
    t.is(count(c, rsMinus('$G', 'x.1')), 0, 'no RS- while a subscriber is left in the cluster');
    s2.unsubscribe();
    await c.next(rsMinus('$G', 'x.1'));
    // Wildcards go as they are.
    n2.subscribe('y.>');
    await c.next(rsPlus('$G', 'y.>'));
  },
);

gatewayTest(
  'queue interest goes out as RS+ acc subject queue 1 for the first member in the cluster, RS- acc subject queue after the last',
  CLUSTER_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2] });
    const [n1, n2] = [await sc.client(0, 0), await sc.client(0, 1)];
    const peer = await usePeer(t, { name: 'F', listen: false });
    const c = await peer.dial(sc.server(0, 0).gatewayPort);
    await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    const qPlus = (o: GwOp) => o.op === 'RS+' && o.line === 'RS+ $G job wq 1';
    const qMinus = (o: GwOp) => o.op === 'RS-' && o.line === 'RS- $G job wq';
    const q1 = n1.subscribe('job', { queue: 'wq' });
    const q1b = n1.subscribe('job', { queue: 'wq' });
    await c.next(qPlus);
    const q2 = n2.subscribe('job', { queue: 'wq' });
    n2.subscribe('m.3');
    await c.next(rsPlus('$G', 'm.3'));
    t.is(count(c, qPlus), 1, 'the weight is always 1 and more members send nothing');
    q1.unsubscribe();
    q1b.unsubscribe();
    n1.subscribe('m.4');
    await c.next(rsPlus('$G', 'm.4'));
    t.is(count(c, qMinus), 0);
    q2.unsubscribe();
    await c.next(qMinus);
  },
);

gatewayTest('a message for an account the server does not know gets A- acc, once', SINGLE_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [1] });
  const peer = await usePeer(t, { name: 'F', listen: false });
  const c = await peer.dial(sc.server(0, 0).gatewayPort);
  await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
  c.sendMsg({ account: '$NOACC', subject: 'foo', payload: 'hi' });
  c.sendMsg({ account: '$NOACC', subject: 'bar', payload: 'hi' });
  await c.next((o) => o.op === 'A-' && o.args[0] === '$NOACC');
  await c.ping();
  t.is(
    count(c, (o) => o.op === 'A-'),
    1,
  );
  t.false(c.isClosed(), 'an unknown account is not an error');
});

gatewayTest(
  'RS+ or RS- received on an inbound connection is a protocol violation that closes it, and only it',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1] });
    const a = sc.server(0, 0);
    const nc = await sc.client(0, 0);
    const survivor = await (await usePeer(t, { name: 'S', listen: false })).dial(a.gatewayPort);
    await survivor.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    for (const [op, line] of [
      ['RS+', 'RS+ $G foo\r\n'],
      ['RS-', 'RS- $G foo\r\n'],
    ] as const) {
      const peer = await usePeer(t, { name: `V${op === 'RS+' ? 1 : 2}`, listen: false });
      const c = await peer.dial(a.gatewayPort);
      await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
      c.send(line);
      await c.closed();
      t.truthy(
        await a.srv.waitForLog(
          new RegExp(`\\[ERR\\] .* - gid:\\d+ - Received ${op.replace('+', '\\+')} from gateway on inbound connection`),
        ),
      );
    }
    t.truthy(await a.srv.waitForLog(/Gateway connection closed: Protocol Violation/));
    // The other gateway and the clients carry on.
    const got: string[] = [];
    nc.subscribe('still', { callback: (_e, m) => got.push(m.string()) });
    await survivor.next(rsPlus('$G', 'still'));
    survivor.sendMsg({ subject: 'still', payload: 'here' });
    await eventually('the message from the surviving gateway', () => got.length === 1);
    t.deepEqual(got, ['here']);
  },
);

// ---------------------------------------------------------------------------------------
// The server as the sender

gatewayTest(
  'to an interest-only peer (gateway_iom) nothing goes for an account before its cmd 2 ... cmd 3, then only what matches its RS+',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const peer = await usePeer(t, { name: 'P' });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      remotes: () => [{ name: 'P', urls: [`nats://${peer.url}`] }],
    });
    const c = await peer.accept();
    const nc = await sc.client(0, 0);
    // Queue interest needs no cmd 2/3: it is the marker of the first round.
    c.send('RS+ $G mark.q mq 1\r\n');
    await c.ping();
    nc.publish('foo', 'before');
    nc.publish('mark.q', 'm1');
    const m1 = await c.next(msgOn('mark.q', 'm1'));
    t.deepEqual(m1.msg?.queues, ['mq']);
    t.is(m1.line, 'RMSG $G mark.q | mq 2');
    t.is(count(c, msgOn('foo')), 0, 'nothing for an account the peer has not sent');
    peer.sendInterest(c, '$G', ['foo', 'w.*']);
    await c.ping();
    for (const s of ['bar', 'foo', 'w.x', 'w.x.y', 'foo.bar']) nc.publish(s, 'after');
    nc.publish('mark.q', 'm2');
    await c.next(msgOn('mark.q', 'm2'));
    const sent = c
      .ops()
      .filter((o) => o.op === 'RMSG' && o.msg?.payload === 'after')
      .map((o) => o.msg!.subject);
    t.deepEqual(sent, ['foo', 'w.x']);
  },
);

gatewayTest(
  'to an optimistic peer (no gateway_iom) messages go out until RS- marks the subject; RS+ clears it, a wildcard RS+ every subject it covers',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const peer = await usePeer(t, { name: 'P', iom: false });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      remotes: () => [{ name: 'P', urls: [`nats://${peer.url}`] }],
    });
    const c = await peer.accept();
    const nc = await sc.client(0, 0);
    // s.2 is always wanted (optimistic): it closes each round.
    const round = async (tag: string, subjects: string[]): Promise<string[]> => {
      for (const s of subjects) nc.publish(s, tag);
      nc.publish('s.2', tag);
      await c.next(msgOn('s.2', tag));
      return c
        .ops()
        .filter((o) => o.op === 'RMSG' && o.msg?.payload === tag && o.msg.subject !== 's.2')
        .map((o) => o.msg!.subject);
    };
    t.deepEqual(await round('r1', ['s.1', 'other']), ['s.1', 'other'], 'optimistic: everything goes');
    c.send('RS- $G s.1\r\n');
    await c.ping();
    t.deepEqual(await round('r2', ['s.1', 'other']), ['other'], 'RS- stops that subject only');
    c.send('RS+ $G s.1\r\n');
    await c.ping();
    t.deepEqual(await round('r3', ['s.1']), ['s.1'], 'RS+ clears it');
    c.send('RS- $G s.1\r\nRS- $G s.3\r\n');
    await c.ping();
    t.deepEqual(await round('r4', ['s.1', 's.3']), []);
    c.send('RS+ $G s.*\r\n');
    await c.ping();
    t.deepEqual(await round('r5', ['s.1', 's.3']), ['s.1', 's.3'], 'a wildcard RS+ clears the subjects it covers');
  },
);

gatewayTest(
  "an optimistic peer's cmd 2 ... cmd 3 switches the account to interest-only: afterwards only RS+ subjects go out",
  SINGLE_VARIANTS,
  async (t, variant) => {
    const peer = await usePeer(t, { name: 'P', iom: false });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      remotes: () => [{ name: 'P', urls: [`nats://${peer.url}`] }],
    });
    const c = await peer.accept();
    const nc = await sc.client(0, 0);
    c.send('RS- $G x\r\n');
    await c.ping();
    nc.publish('x', 'r1');
    nc.publish('y', 'r1');
    await c.next(msgOn('y', 'r1'));
    t.is(count(c, msgOn('x')), 0);
    c.send(`${cmdInfo('P', 2, '$G')}RS+ $G a\r\n${cmdInfo('P', 3, '$G')}`);
    await c.ping();
    for (const s of ['b', 'x', 'y']) nc.publish(s, 'r2');
    nc.publish('a', 'r2');
    await c.next(msgOn('a', 'r2'));
    t.deepEqual(
      c
        .ops()
        .filter((o) => o.op === 'RMSG' && o.msg?.payload === 'r2')
        .map((o) => o.msg!.subject),
      ['a'],
    );
    // From now on RS+/RS- are the whole truth for $G.
    c.send('RS+ $G b\r\nRS- $G a\r\n');
    await c.ping();
    nc.publish('a', 'r3');
    nc.publish('b', 'r3');
    await c.next(msgOn('b', 'r3'));
    t.is(count(c, msgOn('a', 'r3')), 0);
  },
);

gatewayTest('A- from the peer stops every message of the account; A+ lets them go again', SINGLE_VARIANTS, async (t, variant) => {
  const peer = await usePeer(t, { name: 'P', iom: false });
  const sc = await Supercluster.start(t, {
    variant,
    sizes: [1],
    waitConnected: false,
    remotes: () => [{ name: 'P', urls: [`nats://${peer.url}`] }],
  });
  const c = await peer.accept();
  const nc = await sc.client(0, 0);
  c.send('A- $G\r\n');
  await c.ping();
  nc.publish('foo', 'while A-');
  nc.publish('bar', 'while A-');
  await barrier(nc, c);
  t.is(
    count(c, (o) => o.op === 'RMSG' && o.msg?.account === '$G'),
    0,
    'nothing for $G after A-',
  );
  c.send('A+ $G\r\n');
  await c.ping();
  nc.publish('foo', 'after A+');
  await c.next(msgOn('foo', 'after A+'));
  t.is(
    count(c, (o) => o.msg?.payload === 'while A-'),
    0,
  );
});

gatewayTest(
  '/gatewayz?accs=1 shows every account interest-only, with the threshold of 1000, on both sides',
  ALL_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1, 1] });
    const [a, b] = [sc.server(0, 0), sc.server(1, 0)];
    const nb = await sc.client(1, 0);
    nb.subscribe('seen.here');
    await nb.flush();
    type Acc = { name: string; interest_mode: string; interest_only_threshold: number; num_subs?: number };
    await eventually("$G on A's outbound to B", async () => {
      const z = await sc.gatewayz(a, '?accs=1');
      const accs = (z.outbound_gateways[sc.names[1]]?.accounts ?? []) as Acc[];
      const g = accs.find((x) => x.name === '$G');
      return g !== undefined && g.interest_mode === 'Interest-Only' && g.interest_only_threshold === 1000 && (g.num_subs ?? 0) >= 1;
    });
    const zb = await sc.gatewayz(b, '?accs=1');
    const inbound = (zb.inbound_gateways[sc.names[0]]?.[0] as { accounts?: Acc[] } | undefined)?.accounts ?? [];
    const g = inbound.find((x) => x.name === '$G');
    t.is(g?.interest_mode, 'Interest-Only');
    t.is(g?.interest_only_threshold, 1000);
  },
);

// ---------------------------------------------------------------------------------------
// skein's optimistic receiver (gateway.interest_mode: optimistic), the seed's other half

gatewayTest(
  'an optimistic skein receiver says RS- once per subject without interest, RS+ when interest appears, A-/A+ for an empty account',
  ['skein'],
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1], gatewayBlock: () => 'interest_mode: optimistic' });
    const a = sc.server(0, 0);
    const peer = await usePeer(t, { name: 'F', listen: false, iom: false });
    const c = await peer.dial(a.gatewayPort);
    t.not(c.serverInfo.gateway_iom, true, 'an optimistic receiver does not advertise gateway_iom');
    const nc = await sc.client(0, 0);
    // No subscription at all: the whole account is refused once.
    c.sendMsg({ subject: 'nobody', payload: '1' });
    c.sendMsg({ subject: 'nobody.else', payload: '2' });
    await c.next((o) => o.op === 'A-' && o.args[0] === '$G');
    const got: string[] = [];
    nc.subscribe('has', { callback: (_e, m) => got.push(m.string()) });
    await c.next((o) => o.op === 'A+' && o.args[0] === '$G');
    c.sendMsg({ subject: 'has', payload: 'delivered' });
    c.sendMsg({ subject: 'nope', payload: 'x' });
    c.sendMsg({ subject: 'nope', payload: 'y' });
    await c.next(rsMinus('$G', 'nope'));
    await c.ping();
    t.is(count(c, rsMinus('$G', 'nope')), 1, 'RS- once per subject');
    t.is(count(c, rsMinus('$G', 'has')), 0);
    await eventually('delivery', () => got.length === 1);
    nc.subscribe('nope');
    await c.next(rsPlus('$G', 'nope'));
    t.false(c.ops().some(isCmd(GATEWAY_CMD.allSubsStart)), 'still optimistic');
  },
);

gatewayTest(
  'an optimistic skein receiver switches an account to interest-only on the 1001st distinct subject without interest',
  ['skein'],
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1], gatewayBlock: () => 'interest_mode: optimistic' });
    const peer = await usePeer(t, { name: 'F', listen: false, iom: false });
    const c = await peer.dial(sc.server(0, 0).gatewayPort);
    const nc = await sc.client(0, 0);
    nc.subscribe('keep');
    nc.subscribe('keep.*');
    await nc.flush();
    for (let i = 1; i <= 1000; i++) c.sendMsg({ subject: `n.${i}`, payload: '' });
    await c.next(rsMinus('$G', 'n.1000'), 30_000);
    await c.ping();
    t.is(
      count(c, (o) => o.op === 'RS-'),
      1000,
    );
    t.false(c.ops().some(isCmd(GATEWAY_CMD.allSubsStart)), 'no switch at 1000');
    c.sendMsg({ subject: 'n.1001', payload: '' });
    const start = await c.next(isCmd(GATEWAY_CMD.allSubsStart, '$G'));
    const end = await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    const ops = c.ops();
    const burst = ops
      .slice(ops.indexOf(start) + 1, ops.indexOf(end))
      .filter((o) => o.op === 'RS+')
      .map((o) => o.args[1]);
    t.deepEqual(burst.sort(), ['keep', 'keep.*']);
    t.is(count(c, rsMinus('$G', 'n.1001')), 0, 'the 1001st gets the switch, not an RS-');
    // Interest-only from now on: RS+/RS- on every 0<->1 change, no RS- for messages.
    nc.subscribe('later');
    await c.next(rsPlus('$G', 'later'));
  },
);

gatewayTest(
  'skein to skein with optimistic receivers: messages flow, and 1001 subjects without interest switch the account',
  ['skein'],
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1, 1], gatewayBlock: () => 'interest_mode: optimistic' });
    const [a, b] = [sc.server(0, 0), sc.server(1, 0)];
    const [na, nb] = [await sc.client(0, 0), await sc.client(1, 0)];
    const got: string[] = [];
    nb.subscribe('wanted', { callback: (_e, m) => got.push(m.string()) });
    await nb.flush();
    const mode = async () => {
      const z = await sc.gatewayz(a, '?accs=1');
      const accs = (z.outbound_gateways[sc.names[1]]?.accounts ?? []) as { name: string; interest_mode: string }[];
      return accs.find((x) => x.name === '$G')?.interest_mode;
    };
    await eventually('the first message across', async () => {
      na.publish('wanted', 'hello');
      await na.flush();
      return got.length > 0;
    });
    t.not(await mode(), 'Interest-Only');
    for (let i = 0; i <= 1000; i++) na.publish(`unwanted.${i}`, '');
    await na.flush();
    await eventually("$G interest-only on A's outbound to B", async () => (await mode()) === 'Interest-Only', 30_000);
    got.length = 0;
    await eventually('messages still flow', async () => {
      na.publish('wanted', 'again');
      await na.flush();
      return got.includes('again');
    });
    t.truthy(b);
  },
);
