// Mixed clusters of skein and nats-server 2.9.10 (the Debian package): the same checks in
// every direction as cluster.test.ts, route restarts in both implementations, client
// failover from one implementation to the other, route authorization and cluster-name
// negotiation across implementations.

import test from 'ava';
import { connect } from 'nats';
import { rawSession } from './helpers/raw.ts';
import { useServer } from './helpers/server.ts';
import {
  TestCluster,
  checkPubSub,
  checkQueue,
  checkRequestReply,
  checkUnsubscribe,
  interestSeen,
  meshReady,
  uid,
  waitFor,
  type NodeSpec,
} from './helpers/cluster.ts';

const nats = (name: string): NodeSpec => ({ impl: 'nats-server', name });
const skein = (name: string): NodeSpec => ({ impl: 'skein', name });

test.serial('2 nats-server + 1 skein: messages flow every way, and a restarted skein rejoins', async (t) => {
  t.timeout(120_000);
  // The seed is a nats-server: skein learns the second nats-server from its gossip.
  const cl = await TestCluster.start(t, [nats('n1'), nats('n2'), skein('s1')]);
  let ncs = await cl.clients(t);
  try {
    await meshReady(ncs);
  } catch (err) {
    t.log(cl.logs());
    throw err;
  }
  await checkPubSub(t, ncs);
  await checkQueue(t, ncs);
  await checkRequestReply(t, ncs);
  await checkUnsubscribe(t, ncs);

  // The skein server goes away and comes back: routes heal, interest resyncs both ways.
  await ncs[2].close();
  await cl.stopNode(2);
  const id = uid();
  const onN1: string[] = [];
  ncs[0].subscribe(`back.${id}`, { callback: (_e, m) => onN1.push(m.string()) });
  await ncs[0].flush();
  await cl.startNode(2);
  ncs = [ncs[0], ncs[1], await connect({ servers: `127.0.0.1:${cl.nodes[2].port}`, reconnect: false })];
  t.teardown(() => ncs[2].close());
  await meshReady(ncs);
  await interestSeen(ncs[0], [ncs[2]]);
  ncs[2].publish(`back.${id}`, 'hello from the restarted skein');
  await ncs[2].flush();
  await waitFor(() => onN1.length === 1, 15_000, 'the message from the restarted server');
  t.deepEqual(onN1, ['hello from the restarted skein']);
  await checkPubSub(t, ncs);
});

test.serial('1 nats-server + 2 skein: messages flow every way; a client fails over from nats-server to skein', async (t) => {
  t.timeout(120_000);
  // The seed is skein: nats-server learns the second skein server from skein's gossip.
  const cl = await TestCluster.start(t, [skein('s1'), nats('n1'), skein('s2')]);
  const ncs = await cl.clients(t);
  try {
    await meshReady(ncs);
  } catch (err) {
    t.log(cl.logs());
    throw err;
  }
  await checkPubSub(t, ncs);
  await checkQueue(t, ncs);
  await checkRequestReply(t, ncs);
  await checkUnsubscribe(t, ncs);

  // A client given only the nats-server's URL learns the skein servers from connect_urls.
  const nPort = cl.nodes[1].port;
  const roamer = await connect({ servers: `127.0.0.1:${nPort}`, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  t.teardown(() => roamer.close());
  await waitFor(() => (roamer.info?.connect_urls?.length ?? 0) === 3, 10_000, 'the client to learn the cluster');
  const id = uid();
  const got: string[] = [];
  roamer.subscribe(`roam.${id}`, { callback: (_e, m) => got.push(m.string()) });
  await roamer.flush();
  await ncs[1].close();
  await cl.stopNode(1);
  await waitFor(() => roamer.getServer() !== `127.0.0.1:${nPort}` && !roamer.isClosed(), 15_000, 'the client to fail over');
  const [host, port] = roamer.getServer().split(':');
  t.is(host, '127.0.0.1');
  t.true([cl.nodes[0].port, cl.nodes[2].port].includes(Number(port)), 'now on a skein server');
  // Its subscription was re-made on skein: a publish on the other skein server reaches it.
  const deadline = Date.now() + 10_000;
  while (got.length === 0 && Date.now() < deadline) {
    ncs[0].publish(`roam.${id}`, 'after failover');
    ncs[2].publish(`roam.${id}`, 'after failover');
    await Promise.all([ncs[0].flush(), ncs[2].flush()]);
    await new Promise((r) => setTimeout(r, 50));
  }
  t.true(got.length > 0 && got.every((s) => s === 'after failover'));

  // The nats-server comes back and the route heals from its side (it re-dials its seed).
  await cl.startNode(1);
  const n1 = await connect({ servers: `127.0.0.1:${cl.nodes[1].port}`, reconnect: false });
  t.teardown(() => n1.close());
  await meshReady([ncs[0], n1, ncs[2]]);
  await checkPubSub(t, [ncs[0], n1, ncs[2]]);
});

test.serial('route credentials are required and checked the same way by both implementations', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(t, [nats('n1'), skein('s1')], { routeAuth: 'ruser:rpass' });
  const ncs = await cl.clients(t);
  await meshReady(ncs);
  await checkRequestReply(t, ncs);

  // Wrong credentials, each implementation dialling the other: refused by the acceptor with
  // -ERR 'Authorization Violation', and the dialler keeps retrying at a slow pace.
  const [n1, s1] = cl.nodes;
  const wrongSkein = await useServer(t, {
    impl: 'skein',
    workers: 1,
    args: [
      '--cluster',
      'nats://127.0.0.1:-1',
      '--cluster_name',
      cl.clusterName!,
      '--routes',
      `nats-route://ruser:wrong@127.0.0.1:${n1.clusterPort}`,
    ],
  });
  const wrongNats = await useServer(t, {
    impl: 'nats-server',
    args: [
      '--cluster',
      'nats://127.0.0.1:-1',
      '--cluster_name',
      cl.clusterName!,
      '--routes',
      `nats-route://ruser:wrong@127.0.0.1:${s1.clusterPort}`,
    ],
  });
  await wrongSkein.waitForLog(/Route Error 'Authorization Violation'/, 30_000);
  await wrongNats.waitForLog(/Route Error 'Authorization Violation'/, 30_000);
  await n1.srv.waitForLog(/rid:\d+ - authentication error/, 30_000);
  await s1.srv.waitForLog(/rid:\d+ - authentication error/, 30_000);
  t.pass();
});

test.serial("a skein server without a cluster name adopts a nats-server's configured name", async (t) => {
  t.timeout(60_000);
  const cl = await TestCluster.start(t, [nats('n1'), skein('s1')], {
    clusterName: null,
    args: (i) => (i === 0 ? ['--cluster_name', 'fixed'] : []),
  });
  const ncs = await cl.clients(t);
  await meshReady(ncs);
  await cl.nodes[1].srv.waitForLog(/Cluster name updated to fixed/, 30_000);
  const { c, info } = await rawSession(cl.nodes[1].port);
  c.close();
  t.is(info.cluster, 'fixed');
});

test.serial("a nats-server peer entering lame-duck mode is dropped from the skein server's connect_urls", async (t) => {
  t.timeout(60_000);
  const cl = await TestCluster.start(t, [skein('s1'), nats('n1')], {
    // nats-server refuses a lame-duck duration under 30s; skein reads the same keys.
    config: 'lame_duck_duration: "30s"\nlame_duck_grace_period: "10s"\n',
  });
  const ncs = await cl.clients(t);
  await meshReady(ncs);
  const [s1, n1] = cl.nodes;
  // A raw protocol-1 client on skein that has had its first PONG gets async INFOs.
  const { c } = await rawSession(s1.port, { connect: { protocol: 1 } });
  t.teardown(() => c.close());
  const both = [`127.0.0.1:${s1.port}`, `127.0.0.1:${n1.port}`];
  const urlsIn = (line: string): string[] => (JSON.parse(line.slice(5).trim()) as { connect_urls?: string[] }).connect_urls ?? [];
  if (!c.data().includes(`127.0.0.1:${n1.port}`)) {
    const info = await c.expect(/INFO \{.*\} \r\n/, 5000);
    t.deepEqual(urlsIn(info).sort(), both.sort());
  }
  process.kill(n1.srv.pid, 'SIGUSR2');
  await n1.srv.waitForLog(/Entering lame duck mode/, 30_000);
  const update = await c.expect(/INFO \{.*\} \r\n/, 5000);
  t.deepEqual(urlsIn(update), [`127.0.0.1:${s1.port}`]);
  process.kill(n1.srv.pid, 'SIGINT');
});
