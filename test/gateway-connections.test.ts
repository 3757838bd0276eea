// Gateway connections between clusters: how many, who dials whom, how the servers that are
// not configured with a gateway find it (gossip from gateways and from route peers), and
// that clients never hear about gateways.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import { connect, type NatsConnection } from 'nats';
import { checkPubSub } from './helpers/cluster.ts';
import { rawConnect } from './helpers/raw.ts';
import { get, getJson } from './helpers/monitor.ts';
import { ALL_VARIANTS, SINGLE_VARIANTS, Supercluster, eventually, gatewayTest, re } from './helpers/supercluster.ts';

gatewayTest(
  'three clusters of two servers hold 12 gateway connections (6N): one outbound per remote cluster on every server',
  ALL_VARIANTS,
  async (t, variant) => {
    // B and C name only A; B and C find each other by gossip.
    const sc = await Supercluster.start(t, { variant, sizes: [2, 2, 2] });
    t.deepEqual(await sc.connectionCounts(), { outbound: 12, inbound: 12 });
    for (const g of sc.all) {
      const z = await sc.gatewayz(g);
      t.is(z.name, sc.names[g.cluster], `${g.name} /gatewayz name`);
      t.is(z.port, g.gatewayPort, `${g.name} /gatewayz port`);
      for (const [name, out] of Object.entries(z.outbound_gateways)) {
        t.truthy(out.connection, `${g.name}: outbound to ${name} has a connection`);
      }
    }
    // Messages flow between every pair of servers, each exactly once.
    const ncs: NatsConnection[] = [];
    for (const g of sc.all) ncs.push(await sc.client(g.cluster, g.index));
    await checkPubSub(t, ncs);
  },
);

gatewayTest(
  'a gateway that is not configured is found by gossip from the gateway that is: C names only A and connects to B',
  ALL_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1, 1, 1] });
    const [a, b, c] = [sc.server(0, 0), sc.server(1, 0), sc.server(2, 0)];
    const [A, B, C] = sc.names;
    // `configured` says whether the remote came from the config file: A names nobody, B and C name A.
    const configured = async (g: typeof a) => {
      const z = await sc.gatewayz(g);
      return Object.fromEntries(Object.entries(z.outbound_gateways).map(([n, o]) => [n, o.configured]));
    };
    t.deepEqual(await configured(a), { [B]: false, [C]: false });
    t.deepEqual(await configured(b), { [A]: true, [C]: false });
    t.deepEqual(await configured(c), { [A]: true, [B]: false });
    // Inbound connections never count as configured.
    for (const g of [a, b, c]) {
      const z = await sc.gatewayz(g);
      for (const list of Object.values(z.inbound_gateways)) for (const i of list) t.false(i.configured, `${g.name}: inbound`);
    }
    // nats-server's log lines for an implicit (gossiped) gateway.
    await c.srv.waitForLog(new RegExp(`Connecting to implicit gateway "${re(B)}"`));
    await c.srv.waitForLog(new RegExp(`Outbound gateway connection to "${re(B)}" \\(\\w+\\) registered`));
    await b.srv.waitForLog(new RegExp(`Inbound gateway connection from "${re(C)}" \\(\\w+\\) registered`));
    await a.srv.waitForLog(new RegExp(`Connecting to implicit gateway "${re(B)}"`));
  },
);

gatewayTest('a server with no gateway configured learns the remote gateways from its route peers', ALL_VARIANTS, async (t, variant) => {
  // B1 names only A1, so A2 gets no inbound from B: its outbound to B can only come from
  // A1, which tells its routes about every gateway it has an outbound to.
  const sc = await Supercluster.start(t, { variant, sizes: [2, 1], gatewayUrlsOf: () => [0] });
  const [a1, a2, b1] = [sc.server(0, 0), sc.server(0, 1), sc.server(1, 0)];
  const [A, B] = sc.names;
  const z2 = await sc.gatewayz(a2);
  t.deepEqual(Object.keys(z2.outbound_gateways), [B]);
  t.false(z2.outbound_gateways[B].configured);
  t.deepEqual(z2.inbound_gateways, {}, 'A2 has no inbound: B1 dialled A1');
  t.is((await sc.gatewayz(a1)).inbound_gateways[B]?.length, 1);
  t.is((await sc.gatewayz(b1)).inbound_gateways[A]?.length, 2, 'B1 gets an inbound from each server of A');
  await a2.srv.waitForLog(new RegExp(`Connecting to implicit gateway "${re(B)}"`));
});

gatewayTest('a server that joins a cluster later learns the remote gateways from its new route', ALL_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, {
    variant,
    sizes: [2, 1],
    gatewayUrlsOf: () => [0],
    startOnly: [
      [0, 0],
      [1, 0],
    ],
  });
  await sc.waitConnected();
  const a2 = await sc.startServer(0, 1);
  await sc.waitConnected();
  t.deepEqual(Object.keys((await sc.gatewayz(a2)).outbound_gateways), [sc.names[1]]);
  t.is((await sc.gatewayz(sc.server(1, 0))).inbound_gateways[sc.names[0]]?.length, 2);
});

gatewayTest('each server advertises every gateway URL of its cluster, learned from its routes', ALL_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [2, 2] });
  // A raw look at what B1 tells a gateway that dials it: its INFO lists B1 and B2.
  const sock = await rawConnect(sc.server(1, 0).gatewayPort);
  t.teardown(() => sock.close());
  const line = await sock.expect(/^INFO (\{.*\})\r\n/);
  const info = JSON.parse(line.slice(5, -2)) as Record<string, unknown>;
  const want = [sc.server(1, 0), sc.server(1, 1)].map((g) => `127.0.0.1:${g.gatewayPort}`).sort();
  t.deepEqual([...(info.gateway_urls as string[])].sort(), want);
  t.is(info.gateway_url, `127.0.0.1:${sc.server(1, 0).gatewayPort}`);
  t.is(info.gateway, sc.names[1]);
});

gatewayTest('clients never see gateway URLs: connect_urls name only their own cluster', ALL_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [2, 2] });
  const ownClients = new Set([sc.server(0, 0).port, sc.server(0, 1).port]);
  const elsewhere = new Set([...sc.all.map((g) => g.gatewayPort), sc.server(1, 0).port, sc.server(1, 1).port]);
  const sock = await rawConnect(sc.server(0, 0).port);
  t.teardown(() => sock.close());
  const line = await sock.expect(/^INFO (\{.*\}) \r\n/);
  const info = JSON.parse(line.slice(5, -3)) as Record<string, unknown>;
  t.deepEqual(
    Object.keys(info).filter((k) => /gateway/.test(k)),
    [],
    'no gateway field in a client INFO',
  );
  const ports = ((info.connect_urls as string[] | undefined) ?? []).map((u) => Number(u.split(':').pop()));
  t.true(ports.length > 0, 'connect_urls lists the cluster');
  for (const p of ports) {
    t.true(ownClients.has(p), `connect_urls port ${p} is a client port of cluster A`);
    t.false(elsewhere.has(p));
  }
  // A client that connects while a remote cluster's server joins gets no INFO about it.
  const nc = await connect({ servers: `127.0.0.1:${sc.server(0, 0).port}`, reconnect: false });
  t.teardown(() => nc.close());
  sock.send('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n');
  await sock.expect('PONG\r\n');
  await sc.kill(1, 1);
  await sc.startServer(1, 1);
  await sc.waitConnected();
  await sock.ping();
  t.notRegex(sock.data(), /gateway/i, 'no async INFO to clients about gateways');
  const urls = nc.info?.connect_urls ?? [];
  for (const u of urls) t.true(ownClients.has(Number(u.split(':').pop())), u);
});

gatewayTest('a gateway restarted on new ports is found again by every cluster', ALL_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [2, 2, 1] });
  // B2 names A; it comes back on new ports, and C (which never named B) dials it again.
  await sc.kill(1, 1);
  await sc.waitConnected();
  t.deepEqual(await sc.connectionCounts(), { outbound: 8, inbound: 8 });
  await sc.startServer(1, 1);
  await sc.waitConnected();
  t.deepEqual(await sc.connectionCounts(), { outbound: 10, inbound: 10 });
  await eventually('B2 to reach C', async () => (await sc.gatewayz(sc.server(2, 0))).inbound_gateways[sc.names[1]]?.length === 2);
});

gatewayTest(
  'the live page data (/skeinz) lists every gateway connection, outbound and inbound, and the gateway thread',
  ['skein'],
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1, 1] });
    const [a, b] = [sc.server(0, 0), sc.server(1, 0)];
    const live = (await getJson(a.httpPort, '/skeinz')) as {
      gateway_name: string;
      gateways: { gateway: string; direction: string; port: number }[];
      threads: { kind: string; connections: number }[];
    };
    t.is(live.gateway_name, sc.names[0]);
    t.deepEqual(live.gateways.map((g) => `${g.gateway} ${g.direction}`).sort(), [`${sc.names[1]} inbound`, `${sc.names[1]} outbound`]);
    t.is(live.gateways.find((g) => g.direction === 'outbound')?.port, b.gatewayPort);
    t.is(live.threads.filter((th) => th.kind === 'gateway').length, 1, 'one gateway thread');
  },
);

gatewayTest('/varz shows the gateway block with the port picked for -1', SINGLE_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [1] });
  const a = sc.server(0, 0);
  const gw = (await getJson(a.httpPort, '/varz')).gateway as Record<string, unknown>;
  t.is(gw.name, sc.names[0]);
  t.is(gw.port, a.gatewayPort);
  t.is(gw.host, '127.0.0.1');
});

gatewayTest("/metrics has the exporter's gatewayz series for every gateway connection", ['skein'], async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [1, 1] });
  const [A, B] = sc.names;
  const text = (await get(sc.server(0, 0).httpPort, '/metrics')).body;
  for (const kind of ['outbound', 'inbound']) {
    t.regex(
      text,
      new RegExp(
        `^gnatsd_gatewayz_${kind}_gateway_configured\\{gateway_name="${re(A)}",remote_gateway_name="${re(B)}",server_id="\\w+"\\} 0$`,
        'm',
      ),
    );
    t.regex(
      text,
      new RegExp(
        `^gnatsd_gatewayz_${kind}_gateway_conn_in_msgs\\{gateway_name="${re(A)}",cid="\\d+",remote_gateway_name="${re(B)}",server_id="\\w+"\\} \\d+$`,
        'm',
      ),
    );
  }
});
