// Leaf chains: hub <- mid <- tail (mid dials hub, tail dials mid). Messages travel one edge
// per hop and a chain carries them as far as interest reaches, every way: pub/sub, wildcards,
// headers, request/reply across one and two hops, no-responders, unsubscribe.
//
// Every test runs per implementation mix (helpers/leaf.ts): all nats-server (always), and, only
// with skein leaf nodes (on since issue 13), all skein and skein as the hub,
// the middle or the tail with nats-server in the other places (the interop chains of issue 13).

import { ErrorCode, headers, type NatsConnection } from 'nats';
import { checkPubSub, checkRequestReply, checkUnsubscribe, deliveryBarrier, interestSeen, uid, waitFor } from './helpers/cluster.ts';
import { chainSpecs, LeafTopology, leafTest, type Mix } from './helpers/leaf.ts';

const CHAIN = ['hub', 'mid', 'tail'];

async function chain(t: Parameters<Parameters<typeof leafTest>[2]>[0], mix: Mix): Promise<{ topo: LeafTopology; ncs: NatsConnection[] }> {
  const topo = await LeafTopology.start(t, chainSpecs(CHAIN, mix));
  try {
    await topo.waitConnected();
  } catch (err) {
    t.log(topo.logs());
    throw err;
  }
  const ncs = [await topo.client('hub'), await topo.client('mid'), await topo.client('tail')];
  return { topo, ncs };
}

leafTest('pub/sub crosses a hub <- mid <- tail chain in every direction, each message once', CHAIN, async (t, mix) => {
  t.timeout(120_000);
  const { ncs } = await chain(t, mix);
  // Each server's subscriber hears each other server's publisher exactly once (6 directions).
  await checkPubSub(t, ncs);
});

leafTest('request/reply works across one and two hops of a chain, both ways', CHAIN, async (t, mix) => {
  t.timeout(120_000);
  const { ncs } = await chain(t, mix);
  await checkRequestReply(t, ncs);
});

leafTest('a request nobody in the chain listens to gets no-responders at once, from any server', CHAIN, async (t, mix) => {
  t.timeout(120_000);
  const { ncs } = await chain(t, mix);
  await checkPubSub(t, ncs); // the chain carries interest end to end
  for (const [i, nc] of ncs.entries()) {
    const err = await nc.request(`nobody.${uid()}`, 'x', { timeout: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.is((err as { code?: string } | undefined)?.code, ErrorCode.NoResponders, `request from ${CHAIN[i]}`);
  }
});

leafTest('wildcard subscriptions and headers cross the chain end to end', CHAIN, async (t, mix) => {
  t.timeout(120_000);
  const { ncs } = await chain(t, mix);
  const [hub, , tail] = ncs;
  const id = uid();
  const onHub: { subject: string; h?: string }[] = [];
  const onTail: { subject: string; h?: string }[] = [];
  hub.subscribe(`wc.${id}.>`, { callback: (_e, m) => onHub.push({ subject: m.subject, h: m.headers?.get('X-Hop') }) });
  tail.subscribe(`wc.${id}.*.down`, { callback: (_e, m) => onTail.push({ subject: m.subject, h: m.headers?.get('X-Hop') }) });
  await interestSeen(hub, [tail]);
  await interestSeen(tail, [hub]);
  const h = headers();
  h.set('X-Hop', 'two');
  tail.publish(`wc.${id}.a.b.c`, 'up', { headers: h });
  hub.publish(`wc.${id}.x.down`, 'down', { headers: h });
  hub.publish(`wc.${id}.x.y.down`, 'not for tail'); // `*` matches one token only
  await Promise.all([hub.flush(), tail.flush()]);
  await waitFor(() => onHub.length >= 1 && onTail.length >= 1, 10_000, 'both messages');
  await deliveryBarrier([hub, tail]);
  // The hub's own publishes match its own `wc.>` too (a client hears itself by default).
  t.deepEqual(
    onHub.filter((m) => m.subject === `wc.${id}.a.b.c`),
    [{ subject: `wc.${id}.a.b.c`, h: 'two' }],
  );
  t.deepEqual(onTail, [{ subject: `wc.${id}.x.down`, h: 'two' }]);
});

leafTest('unsubscribing at one end removes the interest along the whole chain', CHAIN, async (t, mix) => {
  t.timeout(120_000);
  const { ncs } = await chain(t, mix);
  // After each server's unsubscribe, requests from every other server get no-responders (not a
  // timeout), and nothing published afterwards is delivered.
  await checkUnsubscribe(t, ncs);
});

leafTest('a reply subject is carried unchanged across two hops', CHAIN, async (t, mix) => {
  t.timeout(120_000);
  const { ncs } = await chain(t, mix);
  const [hub, , tail] = ncs;
  const id = uid();
  let reply: string | undefined;
  hub.subscribe(`svc.${id}`, {
    callback: (_e, m) => {
      reply = m.reply;
      m.respond('ok');
    },
  });
  await interestSeen(hub, [tail]);
  const inbox = `_INBOX.${id}.custom`;
  const got: string[] = [];
  tail.subscribe(inbox, { callback: (_e, m) => got.push(m.string()) });
  await interestSeen(tail, [hub]);
  tail.publish(`svc.${id}`, 'q', { reply: inbox });
  await waitFor(() => got.length === 1, 10_000, 'the reply');
  // Leaf connections never rewrite replies (gateways do, with _GR_.).
  t.is(reply, inbox);
  t.deepEqual(got, ['ok']);
});
