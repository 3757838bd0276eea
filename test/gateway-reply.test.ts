// Request/reply across gateways (protocol.md §3.8): the `_GR_.<cluster hash>.<server hash>.`
// reply mapping on requests that leave the cluster, the reply returning only to the origin
// cluster and, inside it, through the server that forwarded the request; clients never see
// the prefix.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import test from 'ava';
import type { Msg, NatsConnection } from 'nats';
import { checkRequestReply, interestSeen, uid } from './helpers/cluster.ts';
import { GATEWAY_CMD, gwHash, gwOldHash, gwReplyPrefix, isCmd, usePeer, type GwOp } from './helpers/gateway-peer.ts';
import { ALL_VARIANTS, SINGLE_VARIANTS, Supercluster, eventually, gatewayTest } from './helpers/supercluster.ts';

const msgOn = (subject: string) => (o: GwOp) => o.op === 'RMSG' && o.msg?.subject === subject;

test('the test helper computes nats-server\'s gateway hash: gateway "A" is NUmM6c', (t) => {
  t.is(gwHash('A'), 'NUmM6c');
});

gatewayTest('request/reply works between every pair of servers of a supercluster', ALL_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [2, 2, 1] });
  const ncs: NatsConnection[] = [];
  for (const g of sc.all) ncs.push(await sc.client(g.cluster, g.index));
  await checkRequestReply(t, ncs);
});

gatewayTest(
  'a reply returns through the server that forwarded the request, even when it lands on another server of the cluster',
  ALL_VARIANTS,
  async (t, variant) => {
    // B knows only A1's URL, so B's outbound to A lands on A1; the requester is on A2. The
    // reply reaches A1 as _GR_.<A>.<A2>.<inbox> and must go on to A2 over the route. Each
    // request has its own new inbox (noMux), so every reply is mapped (a reply subscription
    // older than 2 s is not, and its reply then travels by plain interest).
    const sc = await Supercluster.start(t, { variant, sizes: [2, 1], gatewayUrlsOf: () => [0] });
    const [a1, a2, b] = [await sc.client(0, 0), await sc.client(0, 1), await sc.client(1, 0)];
    const z = await sc.gatewayz(sc.server(1, 0));
    t.is(z.outbound_gateways[sc.names[0]]?.connection?.port, sc.server(0, 0).gatewayPort, 'B dials A1');
    const subject = `svc.${uid()}`;
    const replies: string[] = [];
    b.subscribe(subject, {
      callback: (_e, m: Msg) => {
        replies.push(m.reply ?? '');
        m.respond(`re:${m.string()}`);
      },
    });
    // No client sees the routed form. (2.9.10 also hands the stripped reply from A2 back over
    // the route to A1's `>` subscriber, a second hop; that is not part of the target.)
    const onA1: string[] = [];
    a1.subscribe('>', { callback: (_e, m) => onA1.push(m.subject) });
    await interestSeen(b, [a2]);
    for (let i = 0; i < 20; i++) {
      const r = await a2.request(subject, `q${i}`, { timeout: 5000, noMux: true });
      t.is(r.string(), `re:q${i}`);
    }
    t.true(
      replies.every((r) => r.startsWith('_INBOX.')),
      `the responder sees the plain reply subject: ${replies[0]}`,
    );
    t.false(
      onA1.some((s) => s.startsWith('_GR_.')),
      `A1 delivered ${onA1.filter((s) => s.startsWith('_GR_.')).join(', ')}`,
    );
  },
);

gatewayTest(
  'a request leaving the cluster carries _GR_.<cluster hash>.<server hash>. on its reply; the reply comes back stripped',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const p = await usePeer(t, { name: 'P' });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      remotes: () => [{ name: 'P', urls: [`nats://${p.url}`] }],
    });
    const a = sc.server(0, 0);
    const out = await p.accept(); // A's outbound: requests come this way
    const into = await p.dial(a.gatewayPort); // A's inbound: replies go this way
    await into.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    p.sendInterest(out, '$G', ['svc']);
    await out.ping();
    const nc = await sc.client(0, 0);
    const pending = nc.request('svc', 'ping', { timeout: 10_000 });
    const req = await out.next(msgOn('svc'));
    const prefix = gwReplyPrefix(sc.names[0], await sc.serverId(a));
    t.true(req.msg?.reply?.startsWith(prefix), `${req.msg?.reply} starts with ${prefix}`);
    t.regex(req.msg!.reply!.slice(prefix.length), /^_INBOX\./);
    into.sendMsg({ subject: req.msg!.reply!, payload: 'pong' });
    t.is((await pending).string(), 'pong');
  },
);

gatewayTest(
  'a reply to a request from another cluster goes back as _GR_... only to that cluster, never to local subscribers or other gateways',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const p = await usePeer(t, { name: 'P' });
    const q = await usePeer(t, { name: 'Q' });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      remotes: () => [
        { name: 'P', urls: [`nats://${p.url}`] },
        { name: 'Q', urls: [`nats://${q.url}`] },
      ],
    });
    const a = sc.server(0, 0);
    const [toP, toQ] = await Promise.all([p.accept(), q.accept()]);
    // Q wants everything: a reply leaking to it would show.
    q.sendInterest(toQ, '$G', ['>']);
    const fromP = await p.dial(a.gatewayPort);
    await fromP.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    await toQ.ping();
    const nc = await sc.client(0, 0);
    const seenReply: string[] = [];
    nc.subscribe('rep.>', { callback: (_e, m) => seenReply.push(m.subject) });
    const responderSaw: string[] = [];
    nc.subscribe('svc2', {
      callback: (_e, m: Msg) => {
        responderSaw.push(m.reply ?? '');
        m.respond('answer');
      },
    });
    await fromP.next((o) => o.op === 'RS+' && o.args[1] === 'svc2');
    const routed = `${gwReplyPrefix('P', p.serverId)}rep.x`;
    fromP.sendMsg({ subject: 'svc2', reply: routed, payload: 'ask' });
    const back = await toP.next(msgOn(routed));
    t.is(back.msg?.payload, 'answer');
    t.deepEqual(responderSaw, ['rep.x'], 'the responder sees the reply without the prefix');
    await nc.flush();
    await toQ.ping();
    t.false(
      toQ.ops().some((o) => o.op === 'RMSG' && /rep\.x$/.test(o.msg?.subject ?? '')),
      'not to another gateway',
    );
    t.deepEqual(seenReply, [], 'not to local subscribers of the reply subject');
  },
);

gatewayTest(
  'a message on _GR_. for another cluster is dropped; for this cluster it is delivered without the prefix',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1] });
    const a = sc.server(0, 0);
    const peer = await usePeer(t, { name: 'P', listen: false });
    const c = await peer.dial(a.gatewayPort);
    await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    const nc = await sc.client(0, 0);
    const got: string[] = [];
    nc.subscribe('inbox.>', { callback: (_e, m) => got.push(`${m.subject}=${m.string()}`) });
    nc.subscribe('_GR_.>', { callback: (_e, m) => got.push(`${m.subject}=${m.string()}`) });
    await c.next((o) => o.op === 'RS+' && o.args[1] === 'inbox.>');
    c.sendMsg({ subject: `_GR_.${gwHash('elsewhere')}.${gwHash('someone')}.inbox.1`, payload: 'not ours' });
    c.sendMsg({ subject: `${gwReplyPrefix(sc.names[0], await sc.serverId(a))}inbox.2`, payload: 'ours' });
    await eventually('the message for this cluster', () => got.length >= 1);
    c.sendMsg({ subject: 'inbox.3', payload: 'plain' });
    await eventually('the plain marker', () => got.some((g) => g.startsWith('inbox.3')));
    t.deepEqual(got, ['inbox.2=ours', 'inbox.3=plain']);
  },
);

gatewayTest('a peer without gateway_nrp gets the old $GR.<hash>. reply prefix', SINGLE_VARIANTS, async (t, variant) => {
  const p = await usePeer(t, { name: 'OLD', nrp: false });
  const sc = await Supercluster.start(t, {
    variant,
    sizes: [1],
    waitConnected: false,
    remotes: () => [{ name: 'OLD', urls: [`nats://${p.url}`] }],
  });
  const out = await p.accept();
  p.sendInterest(out, '$G', ['svc']);
  await out.ping();
  const nc = await sc.client(0, 0);
  const pending = nc.request('svc', 'ping', { timeout: 3000 }).catch(() => undefined);
  const req = await out.next(msgOn('svc'));
  t.true(req.msg?.reply?.startsWith(`$GR.${gwOldHash(sc.names[0])}.`), req.msg?.reply);
  await pending;
});

gatewayTest(
  'a reply subject is mapped only for a subscription made in the last 2 s: an old one goes out as it is',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const p = await usePeer(t, { name: 'P', iom: false });
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1],
      waitConnected: false,
      config: () => 'ping_interval: "1s"',
      remotes: () => [{ name: 'P', urls: [`nats://${p.url}`] }],
    });
    const out = await p.accept();
    const nc = await sc.client(0, 0);
    nc.subscribe('old.reply');
    nc.subscribe('fresh.reply.x');
    await nc.flush();
    // Three of the server's gateway PINGs (1 s apart on its clock) make the subscription old.
    await eventually('3 PINGs', () => out.ops().filter((o) => o.op === 'PING').length >= 3, 30_000);
    nc.subscribe('new.reply');
    nc.publish('svc', 'a', { reply: 'old.reply' });
    nc.publish('svc', 'b', { reply: 'new.reply' });
    nc.publish('svc', 'c', { reply: 'not.subscribed' });
    await out.next((o) => msgOn('svc')(o) && o.msg?.payload === 'c');
    const replies = out
      .ops()
      .filter(msgOn('svc'))
      .map((o) => o.msg?.reply);
    const prefix = gwReplyPrefix(sc.names[0], await sc.serverId(sc.server(0, 0)));
    t.deepEqual(replies, ['old.reply', `${prefix}new.reply`, 'not.subscribed']);
  },
);
