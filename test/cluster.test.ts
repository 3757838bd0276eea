// Clusters of skein servers: full mesh from a seed or from a list naming every member,
// message flow in every direction, interest resync after restarts, failures while traffic
// flows, client failover, and the route protocol itself on raw sockets posing as a route.
// Mixed clusters with nats-server are in cluster-interop.test.ts.

import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { connect, type NatsConnection } from 'nats';
import { useServer } from './helpers/server.ts';
import { rawConnect, rawSession, type RawClient } from './helpers/raw.ts';
import {
  TestCluster,
  allRoutes,
  checkPubSub,
  checkQueue,
  checkRequestReply,
  checkUnsubscribe,
  flushAll,
  interestSeen,
  meshReady,
  sleep,
  uid,
  waitFor,
} from './helpers/cluster.ts';

const skein3 = [
  { impl: 'skein' as const, name: 'a' },
  { impl: 'skein' as const, name: 'b' },
  { impl: 'skein' as const, name: 'c' },
];

// ------------------------------------------------------------------------------------------
// Whole clusters

test.serial('a seed-started cluster meshes by gossip and moves messages every way', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(t, skein3);
  const ncs = await cl.clients(t);
  try {
    await meshReady(ncs);
  } catch (err) {
    t.log(cl.logs());
    throw err;
  }
  // b and c only know the seed; their direct route came from gossip (an implicit route).
  await checkPubSub(t, ncs);
  await checkQueue(t, ncs);
  await checkRequestReply(t, ncs);
  await checkUnsubscribe(t, ncs);
  // Every client is told every server's client URL.
  const want = cl.nodes.map((n) => `127.0.0.1:${n.port}`).sort();
  await waitFor(
    () => ncs.every((nc) => [...(nc.info?.connect_urls ?? [])].sort().join() === want.join()),
    10_000,
    'connect_urls listing the three servers',
  );
  for (const nc of ncs) t.deepEqual([...(nc.info?.connect_urls ?? [])].sort(), want);
});

test.serial('a config listing every member, itself included, forms one route per pair and never dials itself', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(t, skein3, { routes: allRoutes, args: () => ['-D'] });
  const ncs = await cl.clients(t);
  await meshReady(ncs);
  await checkPubSub(t, ncs);
  // Duplicates (each side dialled the other) are resolved to one registered route per pair
  // (between skein servers a registered route may be the duplicate that closes).
  const held = (n: (typeof cl.nodes)[number]): number => {
    const out = n.srv.output();
    const registered = new Set([...out.matchAll(/rid:(\d+) - Registering remote route/g)].map((m) => m[1]));
    for (const m of out.matchAll(/rid:(\d+) - Router connection closed/g)) registered.delete(m[1]);
    return registered.size;
  };
  await waitFor(() => cl.nodes.every((n) => held(n) === 2), 10_000, 'one route per pair on every node');
  for (const n of cl.nodes) {
    t.false(n.srv.output().includes(`127.0.0.1:${n.clusterPort} - rid`), `${n.spec.name} never connected to itself`);
    t.is(held(n), 2, `${n.spec.name} holds one route to each peer`);
  }
});

test.serial('a restarted server rejoins and interest made while it was down works afterwards', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(t, skein3, { routes: allRoutes });
  const [a, b] = await Promise.all([0, 1].map((i) => connect({ servers: `127.0.0.1:${cl.nodes[i].port}`, reconnect: false })));
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await meshReady([a, b]);
  await cl.stopNode(2);
  const id = uid();
  const onA: string[] = [];
  a.subscribe(`down.${id}`, { callback: (_e, m) => onA.push(m.string()) });
  a.subscribe(`down.${id}.q`, { queue: 'g', callback: (_e, m) => onA.push(m.string()) });
  await a.flush();

  await cl.startNode(2);
  const c = await connect({ servers: `127.0.0.1:${cl.nodes[2].port}`, reconnect: false });
  t.teardown(() => c.close());
  // The restarted server gets a's interest in the dump when the route comes back.
  await interestSeen(a, [c], 20_000);
  c.publish(`down.${id}`, 'plain');
  c.publish(`down.${id}.q`, 'queued');
  await c.flush();
  await waitFor(() => onA.length >= 2, 15_000, 'messages from the restarted server');
  t.deepEqual(onA.sort(), ['plain', 'queued']);
  // And its own new subscriptions reach the others.
  const onC: string[] = [];
  c.subscribe(`up.${id}`, { callback: (_e, m) => onC.push(m.string()) });
  await interestSeen(c, [a, b]);
  a.publish(`up.${id}`, 'from a');
  b.publish(`up.${id}`, 'from b');
  await flushAll([a, b]);
  await waitFor(() => onC.length >= 2, 15_000, 'messages to the restarted server');
  t.deepEqual(onC.sort(), ['from a', 'from b']);
});

test.serial('killing a server while traffic flows leaves the other two serving, and its client fails over', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(t, skein3);
  const [a, b] = await Promise.all([0, 1].map((i) => connect({ servers: `127.0.0.1:${cl.nodes[i].port}`, reconnect: false })));
  t.teardown(() => Promise.all([a.close(), b.close()]));
  // c's client is given c's URL only; it learns the others from INFO connect_urls.
  const c = await connect({ servers: `127.0.0.1:${cl.nodes[2].port}`, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  t.teardown(() => c.close());
  await meshReady([a, b, c]);
  await waitFor(() => (c.info?.connect_urls?.length ?? 0) === 3, 10_000, "c's client to learn the cluster");

  const id = uid();
  let onB = 0;
  let onC = 0;
  b.subscribe(`flow.${id}`, {
    callback: () => {
      onB++;
    },
  });
  c.subscribe(`flow.${id}`, {
    callback: () => {
      onC++;
    },
  });
  await interestSeen(b, [a]);
  await interestSeen(c, [a]);
  let sent = 0;
  let stop = false;
  const pump = (async () => {
    while (!stop) {
      for (let k = 0; k < 20; k++) a.publish(`flow.${id}`, String(sent++));
      await a.flush();
      await sleep(5);
    }
  })();
  await waitFor(() => onB > 200 && onC > 200, 10_000, 'traffic to b and c');
  await cl.killNode(2);
  const atKill = onB;
  await waitFor(() => onB > atKill + 500, 10_000, 'b to keep receiving after c died');

  // c's client reconnects to a or b and its subscription works there.
  await waitFor(() => c.getServer() !== `127.0.0.1:${cl.nodes[2].port}`, 15_000, "c's client to fail over");
  const afterFailover = onC;
  await waitFor(() => onC > afterFailover + 100, 10_000, 'the failed-over subscription to receive');
  stop = true;
  await pump;
  t.true(onB > atKill + 500);
  t.pass();
});

test.serial('a crashed client worker is replaced and routes keep serving its connections', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(t, skein3.slice(0, 2), { env: { SKEIN_FAULT_INJECTION: '1' } });
  const b = await connect({ servers: `127.0.0.1:${cl.nodes[1].port}`, reconnect: false });
  t.teardown(() => b.close());
  const id = uid();
  const onB: string[] = [];
  b.subscribe(`toB.${id}`, { callback: (_e, m) => onB.push(m.string()) });
  await b.flush();
  const crasher = await connect({ servers: `127.0.0.1:${cl.nodes[0].port}`, reconnect: false });
  crasher.publish('$SKEIN.FAULT.CRASH');
  // Its worker throws before it may have written anything more (a PONG too): nats.js leaves a
  // flush pending forever when the server closes without one, so wait for the close itself.
  await waitFor(() => crasher.isClosed(), 20_000, 'the crashed worker closes its connections');
  await cl.nodes[0].srv.waitForLog(/Worker \d+ replaced and ready/, 20_000);
  // Fresh clients land on both workers, the replacement included: each must reach b's
  // subscriber (the replacement learnt the route thread's interest from a snapshot) and
  // be reached from b (the route thread replays the replacement's log).
  const clients: NatsConnection[] = [];
  for (let k = 0; k < 4; k++) clients.push(await connect({ servers: `127.0.0.1:${cl.nodes[0].port}`, reconnect: false }));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const onA = clients.map(() => [] as string[]);
  clients.forEach((c, k) => c.subscribe(`fromB.${id}.${k}`, { callback: (_e, m) => onA[k].push(m.string()) }));
  for (const c of clients) await interestSeen(c, [b]);
  for (let k = 0; k < clients.length; k++) b.publish(`fromB.${id}.${k}`, `to ${k}`);
  await b.flush();
  for (let k = 0; k < clients.length; k++) {
    clients[k].publish(`toB.${id}`, `from ${k}`);
    await clients[k].flush();
  }
  await waitFor(() => onB.length === clients.length && onA.every((g) => g.length === 1), 10_000, 'both directions');
  t.deepEqual(
    onB.sort(),
    clients.map((_c, k) => `from ${k}`),
  );
  onA.forEach((g, k) => t.deepEqual(g, [`to ${k}`]));
});

test.serial('a crashed route thread is replaced: routes come back and interest resyncs both ways', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(t, skein3.slice(0, 2), { env: { SKEIN_FAULT_INJECTION: '1' } });
  const [a, b] = await cl.clients(t);
  const id = uid();
  // Interest made before the crash, on both sides, must survive it.
  const onA: string[] = [];
  const onB: string[] = [];
  a.subscribe(`toA.${id}`, { callback: (_e, m) => onA.push(m.string()) });
  b.subscribe(`toB.${id}`, { callback: (_e, m) => onB.push(m.string()) });
  await interestSeen(a, [b]);
  await interestSeen(b, [a]);
  // With SKEIN_FAULT_INJECTION=1, a PUB to $SKEIN.FAULT.CRASH.ROUTE makes node A's route thread throw.
  a.publish('$SKEIN.FAULT.CRASH.ROUTE');
  await a.flush();
  await cl.nodes[0].srv.waitForLog(/Route thread failed[\s\S]*fault injection: route thread crash requested/, 20_000);
  await cl.nodes[0].srv.waitForLog(/Route thread replaced and ready/, 20_000);
  // Both servers keep serving their clients, and messages cross again once the route is back.
  await a.flush();
  await b.flush();
  const deadline = Date.now() + 30_000;
  let n = 0;
  while ((onA.length === 0 || onB.length === 0) && Date.now() < deadline) {
    a.publish(`toB.${id}`, `a${n}`);
    b.publish(`toA.${id}`, `b${n}`);
    n++;
    await Promise.all([a.flush(), b.flush()]);
    await sleep(100);
  }
  t.true(onB.length > 0, 'A -> B after the route thread was replaced');
  t.true(onA.length > 0, 'B -> A after the route thread was replaced');
  // And new interest still propagates both ways.
  const late: string[] = [];
  a.subscribe(`late.${id}`, { callback: (_e, m) => late.push(m.string()) });
  await interestSeen(a, [b]);
  b.publish(`late.${id}`, 'hi');
  await b.flush();
  await waitFor(() => late.length === 1, 10_000, 'a message to a subscription made after the crash');
});

test.serial('servers without a cluster name agree on one name', async (t) => {
  t.timeout(60_000);
  const cl = await TestCluster.start(t, skein3.slice(0, 2), { clusterName: null });
  const ncs = await cl.clients(t);
  await meshReady(ncs);
  const names = cl.nodes.map((n) => /Cluster name is (\S+)/.exec(n.srv.output())?.[1]);
  t.true(cl.nodes.every((n) => n.srv.output().includes('Cluster name was dynamically generated, consider setting one')));
  const winner = [names[0]!, names[1]!].sort()[1];
  // The lower name adopts the higher one (byte order), and clients see it in INFO.
  await waitFor(() => cl.nodes.some((n) => n.srv.output().includes(`Cluster name updated to ${winner}`)), 15_000, 'one side to adopt');
  const fresh = await Promise.all(cl.nodes.map((n) => rawSession(n.port)));
  t.teardown(() => fresh.forEach(({ c }) => c.close()));
  for (const { info } of fresh) t.is(info.cluster, winner);
});

// ------------------------------------------------------------------------------------------
// The route protocol on raw sockets posing as a route

const FAKE_ID = 'NFAKEROUTE000000000000000000000000000000000000000000001';

function fakeConnect(cluster: string, extra: Record<string, unknown> = {}): string {
  return `CONNECT ${JSON.stringify({ echo: true, verbose: false, pedantic: false, tls_required: false, headers: true, name: FAKE_ID, cluster, ...extra })}\r\n`;
}

function fakeInfo(cluster: string, extra: Record<string, unknown> = {}): string {
  return `INFO ${JSON.stringify({ server_id: FAKE_ID, server_name: 'fake', version: '2.9.10', proto: 2, host: '127.0.0.1', port: 1, headers: true, max_payload: 1048576, cluster, ...extra })}\r\n`;
}

interface Single {
  port: number;
  clusterPort: number;
  output(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

async function single(t: ExecutionContext, config = '', args: string[] = [], userinfo = ''): Promise<Single> {
  const srv = await useServer(t, {
    impl: 'skein',
    workers: 2,
    config: config || undefined,
    args: ['--cluster', `nats://${userinfo}127.0.0.1:-1`, '--cluster_name', 'clu', ...args],
  });
  return { port: srv.port, clusterPort: srv.clusterPort, output: () => srv.output(), waitForLog: (re, ms) => srv.waitForLog(re, ms) };
}

async function fakeRoute(t: { teardown(fn: () => unknown): void }, s: Single): Promise<RawClient> {
  const r = await rawConnect(s.clusterPort);
  t.teardown(() => r.close());
  await r.expect(/^INFO \{.*\} \r\n/);
  r.send(fakeConnect('clu') + fakeInfo('clu'));
  return r;
}

test('the route INFO, the interest dump and RS+/RS- follow nats-server', async (t) => {
  t.timeout(60_000);
  const s = await single(t);
  const { c } = await rawSession(s.port);
  t.teardown(() => c.close());
  c.send('SUB foo 1\r\nSUB bar q1 2\r\nSUB bar q1 3\r\nSUB baz.> q2 4\r\nSUB foo 5\r\n');
  await c.ping();

  const r = await rawConnect(s.clusterPort);
  t.teardown(() => r.close());
  const line = await r.expect(/^INFO \{.*\} \r\n/);
  const info = JSON.parse(line.slice(5, -3)) as Record<string, unknown>;
  t.deepEqual(Object.keys(info), [
    'server_id',
    'server_name',
    'version',
    'proto',
    'go',
    'host',
    'port',
    'headers',
    'max_payload',
    'nonce',
    'cluster',
    'connect_urls',
    'lnoc',
  ]);
  t.is(info.proto, 2);
  t.is(info.port, s.clusterPort);
  t.is(info.cluster, 'clu');
  t.deepEqual(info.connect_urls, [`127.0.0.1:${s.port}`]);
  t.is(info.lnoc, true, 'lnoc: we speak LS+/LMSG with the leaf origin cluster');

  r.send(fakeConnect('clu') + fakeInfo('clu'));
  const dump = await r.expect(/RS\+ \$G baz\.> q2 1\r\n/);
  t.is(dump.match(/RS\+ \$G foo\r\n/g)?.length, 1, 'one RS+ for two plain subscriptions');
  t.regex(dump, /RS\+ \$G bar q1 2\r\n/);

  // A queue group's weight changes are announced as RS+ (smaller ones too); RS- only at zero.
  // (One at a time: the server's first PING may land in between.)
  c.send('SUB bar q1 6\r\n');
  await r.expect('RS+ $G bar q1 3\r\n');
  await c.ping();
  c.send('UNSUB 2\r\n');
  await r.expect('RS+ $G bar q1 2\r\n');
  await c.ping();
  c.send('UNSUB 1\r\nUNSUB 5\r\n');
  await r.expect('RS- $G foo\r\n');
  await c.ping();
  // Closing the client withdraws each of its groups with one RS-. (On a loaded machine the
  // route thread may read the close's interest changes in two steps and first announce the
  // group's true weight of the moment, `RS+ $G bar q1 1`: accurate, and harmless to a peer.)
  c.close();
  const rest = (await r.expect(/(RS- \$G (baz\.> q2|bar q1)\r\n[^]*){2}/))
    .replace(/PING\r\n/g, '')
    .replace(/RS\+ \$G bar q1 1\r\n(?=[^]*RS- \$G bar q1)/, '');
  t.true(rest === 'RS- $G bar q1\r\nRS- $G baz.> q2\r\n' || rest === 'RS- $G baz.> q2\r\nRS- $G bar q1\r\n', JSON.stringify(rest));
  // First PING about a second after the route was created (10s: a loaded machine's margin,
  // still far below the 2m ping_interval a server without the early first PING would wait).
  // On a loaded machine it may have come before any of the RS lines above and been consumed
  // by their expects, so look at everything the route received.
  await waitFor(() => r.data().includes('PING\r\n'), 10_000, "the route's first PING");
  r.send('PONG\r\n');
});

test("no_advertise keeps client URLs out of the route INFO and out of clients' INFO", async (t) => {
  t.timeout(60_000);
  const s = await single(t, '', ['--no_advertise']);
  const r = await rawConnect(s.clusterPort);
  t.teardown(() => r.close());
  const line = await r.expect(/^INFO \{.*\} \r\n/);
  t.false('connect_urls' in (JSON.parse(line.slice(5, -3)) as Record<string, unknown>));
  r.send(fakeConnect('clu') + fakeInfo('clu', { connect_urls: ['127.0.0.1:1'] }));
  await r.ping();
  const { c, info } = await rawSession(s.port, { connect: { protocol: 1 } });
  t.teardown(() => c.close());
  t.false('connect_urls' in info);
  await c.ping();
  t.false(c.data().includes('connect_urls'));
});

test("routed messages reach clients, and clients' messages go out as RMSG/HMSG with queue sections", async (t) => {
  t.timeout(60_000);
  const s = await single(t);
  const { c } = await rawSession(s.port, { connect: { headers: true } });
  t.teardown(() => c.close());
  c.send('SUB foo 1\r\nSUB grp.x qq 2\r\n');
  await c.ping();
  const r = await fakeRoute(t, s);
  await r.expect('RS+ $G grp.x qq 1\r\n');
  r.send('RS+ $G fromfake\r\nRS+ $G qq grp 3\r\n');
  r.send('RMSG $G foo 2\r\nhi\r\nRMSG $G foo reply.1 2\r\nhi\r\nRMSG $G grp.x | qq 3\r\nabc\r\nRMSG $G grp.x + r.2 qq 3\r\nabc\r\n');
  r.send('RMSG $G grp.x 3\r\nnoq\r\n'); // no queue section: never to queue members
  r.send('HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n');
  const toClient = await c.expect('HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n');
  t.is(
    toClient.replace(/PING\r\n/g, ''),
    'MSG foo 1 2\r\nhi\r\nMSG foo 1 reply.1 2\r\nhi\r\nMSG grp.x 2 3\r\nabc\r\n' +
      'MSG grp.x 2 r.2 3\r\nabc\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n',
  );

  await r.ping();
  c.send('PUB fromfake _INBOX.r1 2\r\nhi\r\nPUB qq 2\r\nhi\r\nPUB qq rep 2\r\nhi\r\nHPUB fromfake 12 14\r\nNATS/1.0\r\n\r\nhi\r\n');
  await c.ping();
  const toRoute = await r.expect('HMSG $G fromfake 12 14\r\nNATS/1.0\r\n\r\nhi\r\n');
  t.is(
    toRoute.replace(/PING\r\n/g, ''),
    'RMSG $G fromfake _INBOX.r1 2\r\nhi\r\nRMSG $G qq | grp 2\r\nhi\r\n' +
      'RMSG $G qq + rep grp 2\r\nhi\r\nHMSG $G fromfake 12 14\r\nNATS/1.0\r\n\r\nhi\r\n',
  );
  // Split frames are reassembled.
  const frame = 'RMSG $G foo reply.z 5\r\nsplit\r\n';
  for (const ch of frame) r.send(ch);
  await c.expect('MSG foo 1 reply.z 5\r\nsplit\r\n');
});

test("one read of a publisher's stream reaches a subscriber on another worker and a route, each message once and in order", async (t) => {
  t.timeout(60_000);
  const s = await single(t, '', ['-D']);
  const { c: sub, info: si } = await rawSession(s.port);
  const { c: pub, info: pi } = await rawSession(s.port);
  t.teardown(() => {
    sub.close();
    pub.close();
  });
  const created = (cid: unknown) => s.waitForLog(new RegExp(`cid:${String(cid)} - Client connection created on worker (\\d+)`));
  t.not((await created(si.client_id))[1], (await created(pi.client_id))[1], 'publisher and subscriber on different workers');
  sub.send('SUB s.x 1\r\n');
  await sub.ping();
  const r = await fakeRoute(t, s);
  r.send('RS+ $G s.x\r\n');
  await r.ping();
  await pub.ping();
  // Each message goes to the other worker (as a run) and to the route thread (record by
  // record), one after the other: neither may take the other's bytes.
  const payloads = Array.from({ length: 50 }, (_, i) => `m${i}`);
  pub.send(payloads.map((p) => `PUB s.x ${p.length}\r\n${p}\r\n`).join(''));
  await pub.ping();
  const toSub = await sub.expect(`MSG s.x 1 3\r\nm49\r\n`);
  t.is(toSub.replace(/PING\r\n/g, ''), payloads.map((p) => `MSG s.x 1 ${p.length}\r\n${p}\r\n`).join(''));
  const toRoute = await r.expect(`RMSG $G s.x 3\r\nm49\r\n`);
  t.true(toRoute.endsWith(payloads.map((p) => `RMSG $G s.x ${p.length}\r\n${p}\r\n`).join('')), toRoute);
});

test('a reply inbox subscribed with a request reaches the route before the request itself', async (t) => {
  t.timeout(60_000);
  // A request is SUB <inbox> then PUB with that reply in one write: the peer must get the
  // RS+ for the inbox before the RMSG, or the responder's answer may find no interest.
  const s = await single(t);
  const r = await fakeRoute(t, s);
  r.send('RS+ $G svc.echo\r\n');
  await r.ping();
  const { c } = await rawSession(s.port);
  t.teardown(() => c.close());
  for (let i = 0; i < 20; i++) {
    c.send(`SUB _INBOX.ord${i}.* ${i + 10}\r\nPUB svc.echo _INBOX.ord${i}.1 2\r\nhi\r\n`);
    const seen = await r.expect(`RMSG $G svc.echo _INBOX.ord${i}.1 2\r\nhi\r\n`, 5000);
    t.true(seen.includes(`RS+ $G _INBOX.ord${i}.*\r\n`), `RS+ before RMSG (round ${i}): ${JSON.stringify(seen)}`);
  }
});

for (const impl of ['skein', 'nats-server'] as const) {
  test(`subjects and queue names cross a route as bytes: RS+, RS-, RMSG keep \\xff and \\xfe apart (${impl})`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, {
      impl,
      workers: impl === 'skein' ? 2 : undefined,
      args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'clu'],
    });
    const { c } = await rawSession(srv.port);
    t.teardown(() => c.close());
    c.send('SUB \xff 1\r\nSUB q \xfe 2\r\nSUB \xfe 3\r\n');
    await c.ping();
    const r = await fakeRoute(t, { port: srv.port, clusterPort: srv.clusterPort, output: srv.output, waitForLog: srv.waitForLog });
    const dump = ['RS+ $G \xff\r\n', 'RS+ $G q \xfe 1\r\n', 'RS+ $G \xfe\r\n'];
    await waitFor(
      () => dump.every((l) => r.data().includes(l)),
      15_000,
      `the interest dump ${JSON.stringify(dump)} in ${JSON.stringify(r.data())}`,
    );
    r.send('RS+ $G \xfc.x\r\nRMSG $G \xff 1\r\nA\r\nRMSG $G \xfe 1\r\nB\r\nRMSG $G q | \xfe 1\r\nC\r\nRMSG $G q | \xff 1\r\nX\r\n');
    await r.ping();
    await c.expect('C\r\n');
    t.is(c.pending().replace(/PING\r\n/g, ''), '');
    t.is(
      c
        .data()
        .replace(/^INFO .*\r\n/, '')
        .replace(/PING\r\n|PONG\r\n/g, ''),
      'MSG \xff 1 1\r\nA\r\nMSG \xfe 3 1\r\nB\r\nMSG q 2 1\r\nC\r\n',
    );
    c.send('PUB \xfc.y 1\r\nE\r\nPUB \xfc.x 1\r\nD\r\nUNSUB 3\r\n');
    // (skein may send the RS- before the RMSG of the publish before it: not what this checks.)
    await waitFor(
      () => r.data().includes('RS- $G \xfe\r\n') && r.data().includes('RMSG $G \xfc.x 1\r\nD\r\n'),
      15_000,
      `RS- $G \\xfe and the RMSG in ${JSON.stringify(r.data())}`,
    );
    t.false(r.data().includes('\xfc.y'), 'no interest in \\xfc.y');
  });
}

test('a message read from a route is never forwarded to another route', async (t) => {
  t.timeout(60_000);
  const s = await single(t);
  const r1 = await fakeRoute(t, s);
  const r2 = await rawConnect(s.clusterPort);
  t.teardown(() => r2.close());
  await r2.expect(/^INFO /);
  const id2 = FAKE_ID.replace(/1$/, '2');
  r2.send(`${fakeConnect('clu', { name: id2 })}${fakeInfo('clu', { server_id: id2, server_name: 'fake2' })}RS+ $G hop\r\n`);
  await r2.ping();
  r1.send('RMSG $G hop 2\r\nhi\r\n');
  await r1.ping();
  await r2.ping();
  t.false(r2.data().includes('RMSG'), 'one hop only');
});

for (const impl of ['skein', 'nats-server'] as const) {
  test(`a routed message for a queue group with no member here bounces back to a peer that has one (${impl})`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, {
      impl,
      workers: impl === 'skein' ? 2 : undefined,
      args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'clu'],
    });
    const r = await rawConnect(srv.clusterPort);
    t.teardown(() => r.close());
    await r.expect(/^INFO /);
    r.send(fakeConnect('clu') + fakeInfo('clu') + 'RS+ $G qb grp 1\r\n');
    await r.ping();
    r.send('RMSG $G qb | grp 2\r\nhi\r\n');
    await r.expect('RMSG $G qb | grp 2\r\nhi\r\n');
    t.pass();
  });
}

test('a route that sends garbage or a bad reply indicator is closed; clients are not harmed', async (t) => {
  t.timeout(60_000);
  const s = await single(t);
  const { c } = await rawSession(s.port);
  t.teardown(() => c.close());
  c.send('SUB ok 1\r\n');
  await c.ping();
  const r = await fakeRoute(t, s);
  await r.ping();
  r.send('THIS IS NOT NATS\r\n');
  await r.expect("-ERR 'Unknown Protocol Operation'\r\n");
  await r.closed();
  const r2 = await fakeRoute(t, s);
  await r2.ping();
  r2.send('RMSG $G bar reply.x | q1 2\r\nhi\r\n');
  await r2.closed();
  t.false(r2.data().includes('-ERR'), 'argument errors close without -ERR');
  await s.waitForLog(/processRoutedMsgArgs Bad or Missing Reply Indicator: 'reply.x'/);
  await s.waitForLog(/Router connection closed: Protocol Violation/);
  c.send('PUB ok 2\r\nhi\r\n');
  await c.expect('MSG ok 1 2\r\nhi\r\n');
});

// Both implementations decode a route's CONNECT and INFO into typed objects (Go's
// encoding/json): a field of the wrong type closes the route with Go's error text.
for (const impl of ['nats-server', 'skein'] as const) {
  test(`${impl}: a route CONNECT or INFO with a field of the wrong type is refused with Go's json error`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, {
      impl,
      workers: impl === 'skein' ? 2 : undefined,
      args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'clu'],
    });
    const bad: [string, RegExp][] = [
      [fakeConnect('clu', { verbose: 'yes' }), /json: cannot unmarshal string into Go struct field ClientOpts\.verbose of type bool/],
      [fakeConnect('clu', { cluster: 7 }), /json: cannot unmarshal number into Go struct field connectInfo\.cluster of type string/],
      [
        fakeConnect('clu') + fakeInfo('clu', { server_id: 1 }),
        /json: cannot unmarshal number into Go struct field Info\.server_id of type string/,
      ],
      [
        fakeConnect('clu') + fakeInfo('clu', { port: 1.5 }),
        /json: cannot unmarshal number 1\.5 into Go struct field Info\.port of type int/,
      ],
    ];
    for (const [lines, logged] of bad) {
      const r = await rawConnect(srv.clusterPort);
      t.teardown(() => r.close());
      await r.expect(/^INFO /);
      r.send(`${lines}PING\r\n`);
      await r.closed();
      await srv.waitForLog(logged);
      t.false(r.data().includes('PONG\r\n'), `${lines.trim()}: refused before its PING`);
    }
    await srv.waitForLog(/Router connection closed: Protocol Violation/);
  });

  test(`${impl}: A+ and A- on a route are accepted and ignored`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, {
      impl,
      workers: impl === 'skein' ? 2 : undefined,
      args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'clu'],
    });
    const r = await rawConnect(srv.clusterPort);
    t.teardown(() => r.close());
    await r.expect(/^INFO /);
    r.send(fakeConnect('clu') + fakeInfo('clu'));
    await r.ping();
    r.send('A+ $G\r\na- $G\r\n');
    await r.ping();
    t.false(r.isClosed());
    t.false(r.data().includes('-ERR'));
  });
}

test('a stalled route is closed as stale; clients keep working', async (t) => {
  t.timeout(60_000);
  const s = await single(t, 'ping_interval: "300ms"\nping_max: 2\n');
  const r = await fakeRoute(t, s);
  const started = Date.now();
  // Never answer the server's PINGs, send nothing else.
  // At 300ms pings this takes about a second; the default ping_interval (2m) would not
  // get here within the wait.
  await r.expect("-ERR 'Stale Connection'\r\n", 30_000);
  await r.closed();
  t.true(Date.now() - started < 30_000);
  await s.waitForLog(/Router connection closed: Stale Connection/);
  const nc = await connect({ servers: `127.0.0.1:${s.port}`, reconnect: false });
  t.teardown(() => nc.close());
  const sub = nc.subscribe('still', { max: 1 });
  nc.publish('still', 'up');
  for await (const m of sub) t.is(m.string(), 'up');
});

test('a client on the route port is told so', async (t) => {
  t.timeout(60_000);
  const s = await single(t);
  const r = await rawConnect(s.clusterPort);
  t.teardown(() => r.close());
  await r.expect(/^INFO /);
  r.send('CONNECT {"verbose":false,"pedantic":false,"lang":"node","version":"1.0","protocol":1}\r\nPING\r\n');
  await r.expect("-ERR 'attempted to connect to route port'\r\n");
  await r.closed();
  await s.waitForLog(/Router connection closed: Incorrect Port/);
  t.pass();
});

test("a route with another cluster name is rejected with nats-server's error", async (t) => {
  t.timeout(60_000);
  const s = await single(t);
  const r = await rawConnect(s.clusterPort);
  t.teardown(() => r.close());
  await r.expect(/^INFO /);
  r.send(fakeConnect('other') + fakeInfo('other'));
  await r.expect(`-ERR 'Rejecting connection, cluster name "other" does not match "clu"'\r\n`);
  await r.closed();
  await s.waitForLog(/Router connection closed: Cluster Name Conflict/);
  t.pass();
});

test('route authorization: wrong credentials and no CONNECT are refused as nats-server does', async (t) => {
  t.timeout(60_000);
  // --cluster's userinfo sets the credentials; the file supplies the timeout.
  const s = await single(t, 'cluster:\n  authorization:\n    user: ruser\n    password: rpass\n    timeout: 0.5\n', [], 'ruser:rpass@');
  const bad = await rawConnect(s.clusterPort);
  t.teardown(() => bad.close());
  const infoLine = await bad.expect(/^INFO \{.*\} \r\n/);
  t.is((JSON.parse(infoLine.slice(5, -3)) as { auth_required?: boolean }).auth_required, true);
  bad.send(fakeConnect('clu', { user: 'ruser', pass: 'nope' }) + fakeInfo('clu'));
  await bad.expect("-ERR 'Authorization Violation'\r\n");
  await bad.closed();
  await s.waitForLog(/rid:\d+ - authentication error/);

  // Timed from before the connect, the server's 0.5s can only look longer, never shorter.
  const started = Date.now();
  const silent = await rawConnect(s.clusterPort);
  t.teardown(() => silent.close());
  await silent.expect(/^INFO /);
  await silent.expect("-ERR 'Authentication Timeout'\r\n", 10_000);
  t.true(Date.now() - started >= 400);
  await silent.closed();

  const good = await rawConnect(s.clusterPort);
  t.teardown(() => good.close());
  await good.expect(/^INFO /);
  good.send(fakeConnect('clu', { user: 'ruser', pass: 'rpass' }) + fakeInfo('clu'));
  await good.ping();
  t.false(good.isClosed());
});

test('a solicited route rejected for its credentials is retried with a delay, not in a loop', async (t) => {
  t.timeout(60_000);
  // A listener posing as a route acceptor that refuses every CONNECT.
  let dials = 0;
  const dialTimes: number[] = [];
  const fake = net.createServer((sock) => {
    dials++;
    dialTimes.push(Date.now());
    sock.write(`INFO ${JSON.stringify({ server_id: 'NREFUSER', proto: 2, cluster: 'clu', auth_required: true, port: 1 })} \r\n`);
    sock.on('data', () => {
      sock.end("-ERR 'Authorization Violation'\r\n");
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => fake.close(() => resolve())));
  const fakePort = (fake.address() as net.AddressInfo).port;
  const s = await single(t, '', ['--routes', `nats-route://ruser:wrong@127.0.0.1:${fakePort}`]);
  // Three more dials must each come after a pause (about 1s in 2.9.10), not back to back.
  await waitFor(() => dials >= 4, 15_000, 'four dials');
  for (let i = 1; i < 4; i++) {
    const gap = dialTimes[i] - dialTimes[i - 1];
    t.true(gap >= 500, `dial ${i + 1} came ${gap}ms after the previous one`);
  }
  await s.waitForLog(/Route Error 'Authorization Violation'/);
});
