// The gateway handshake on the wire, against a raw peer that speaks 2.9.10's gateway protocol
// (protocol.md §3.2-3.5): the INFO an inbound sends, the CONNECT + INFO an outbound answers
// with, the implicit dial back, gossip (cmd 1), URL updates, one outbound per remote name.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import { rawConnect } from './helpers/raw.ts';
import { GATEWAY_CMD, gossipInfo, isCmd, usePeer, type GwOp } from './helpers/gateway-peer.ts';
import { useServer } from './helpers/server.ts';
import { getJson } from './helpers/monitor.ts';
import { SINGLE_VARIANTS, Supercluster, eventually, gatewayTest } from './helpers/supercluster.ts';

gatewayTest(
  "the gateway INFO is 2.9.10's: no space before CRLF, zero-valued fields always present, this cluster's gateway URLs, nrp and iom",
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1] });
    const a = sc.server(0, 0);
    const sock = await rawConnect(a.gatewayPort);
    t.teardown(() => sock.close());
    const line = await sock.expect(/^INFO \{.*\}\r\n/);
    t.notRegex(line, / \r\n$/, 'no space before CRLF');
    const info = JSON.parse(line.slice(5, -2)) as Record<string, unknown>;
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
      'gateway',
      'gateway_urls',
      'gateway_url',
      'gateway_nrp',
      'gateway_iom',
    ]);
    t.is(info.server_id, await sc.serverId(a));
    t.is(info.server_name, 'A1', 'the configured server_name');
    t.is(info.proto, 0);
    t.is(info.host, '127.0.0.1');
    t.is(info.port, a.gatewayPort);
    t.is(info.headers, true);
    t.is(info.max_payload, 1048576);
    t.is(info.gateway, sc.names[0]);
    t.deepEqual(info.gateway_urls, [`127.0.0.1:${a.gatewayPort}`]);
    t.is(info.gateway_url, `127.0.0.1:${a.gatewayPort}`);
    t.is(info.gateway_nrp, true);
    t.is(info.gateway_iom, true, '2.9.10 switches every account to interest-only at once');
  },
);

gatewayTest(
  'a server with a gateway and no cluster block names its gateway as its cluster to clients (INFO, /varz)',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1] });
    const a = sc.server(0, 0);
    const sock = await rawConnect(a.port);
    t.teardown(() => sock.close());
    const line = await sock.expect(/^INFO \{.*\} \r\n/);
    const info = JSON.parse(line.slice(5, -3)) as Record<string, unknown>;
    t.is(info.cluster, sc.names[0]);
    const varz = await getJson(a.httpPort, '/varz');
    t.deepEqual(varz.cluster, { name: sc.names[0] });
  },
);

gatewayTest(
  "a server dialled by a gateway dials it back: CONNECT (2.9.10's fields, in order) then its INFO",
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1] });
    const a = sc.server(0, 0);
    const peer = await usePeer(t, { name: 'F' });
    await peer.dial(a.gatewayPort);
    const back = await peer.accept();
    t.deepEqual(back.serverConnect, {
      echo: false,
      verbose: false,
      pedantic: false,
      tls_required: false,
      headers: false,
      name: await sc.serverId(a),
      cluster: '',
      gateway: sc.names[0],
    });
    t.deepEqual(Object.keys(back.serverConnect ?? {}), [
      'echo',
      'verbose',
      'pedantic',
      'tls_required',
      'headers',
      'name',
      'cluster',
      'gateway',
    ]);
    // The CONNECT line and the INFO line come in this order, right after the peer's INFO.
    t.regex(back.data(), /^CONNECT \{[^\r\n]*\}\r\nINFO \{[^\r\n]*\}\r\n/);
    t.is(back.serverInfo.gateway, sc.names[0]);
    await a.srv.waitForLog(/Connecting to implicit gateway "F"/);
    await a.srv.waitForLog(/Outbound gateway connection to "F" \(\w+\) registered/);
    await a.srv.waitForLog(/Inbound gateway connection from "F" \(\w+\) registered/);
  },
);

gatewayTest(
  'a new inbound hears of every other gateway the server knows, one gossip INFO (cmd 1) each',
  ['nats-server', 'skein', 'mixed'],
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1, 2] });
    const a = sc.server(0, 0);
    const peer = await usePeer(t, { name: 'F' });
    const c = await peer.dial(a.gatewayPort);
    const gossip = await c.next(isCmd(GATEWAY_CMD.gossip));
    t.is(gossip.json?.gateway, sc.names[1]);
    t.deepEqual([...(gossip.json?.gateway_urls as string[])].sort(), sc.servers[1].map((g) => `127.0.0.1:${g.gatewayPort}`).sort());
    t.is(gossip.json?.server_id, await sc.serverId(a));
    // Gossip comes before the interest burst (after the queue RS+, of which there are none here).
    await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    t.is(c.ops().filter(isCmd(GATEWAY_CMD.gossip)).length, 1, 'one gossip INFO per known gateway');
    const at = (pred: (o: GwOp) => boolean) => c.ops().findIndex(pred);
    t.true(at(isCmd(GATEWAY_CMD.gossip)) < at(isCmd(GATEWAY_CMD.allSubsStart, '$G')), 'gossip before the interest burst');
  },
);

gatewayTest('an outbound that hears of a gateway by gossip dials it', SINGLE_VARIANTS, async (t, variant) => {
  const p = await usePeer(t, { name: 'P' });
  const q = await usePeer(t, { name: 'Q' });
  const sc = await Supercluster.start(t, {
    variant,
    sizes: [1],
    waitConnected: false,
    remotes: () => [{ name: 'P', urls: [`nats://${p.url}`] }],
  });
  const toP = await p.accept();
  toP.send(gossipInfo(p.serverId, 'Q', [q.url]));
  const toQ = await q.accept();
  t.is(toQ.serverConnect?.gateway, sc.names[0]);
  await sc.server(0, 0).srv.waitForLog(/Connecting to implicit gateway "Q"/);
  t.deepEqual(Object.keys((await sc.gatewayz(sc.server(0, 0))).outbound_gateways).sort(), ['P', 'Q']);
});

gatewayTest(
  'one outbound per remote gateway: a second server of the same remote cluster gets an inbound, not a second outbound',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1] });
    const a = sc.server(0, 0);
    const f1 = await usePeer(t, { name: 'F' });
    const f2 = await usePeer(t, { name: 'F' });
    const dialsToF2 = f2.acceptAll();
    await f1.dial(a.gatewayPort);
    await f1.accept();
    const c2 = await f2.dial(a.gatewayPort);
    await c2.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    await eventually('two inbounds from F', async () => (await sc.gatewayz(a)).inbound_gateways.F?.length === 2);
    const z = await sc.gatewayz(a);
    t.deepEqual(Object.keys(z.outbound_gateways), ['F']);
    t.is(dialsToF2(), 0, 'no dial to the second server of F');
  },
);

gatewayTest(
  "when a server joins the cluster, every inbound gateway gets an INFO with the cluster's new gateway URLs",
  ['nats-server', 'skein', 'mixed'],
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2], startOnly: [[0, 0]] });
    const a1 = sc.server(0, 0);
    const peer = await usePeer(t, { name: 'F', listen: false });
    const c = await peer.dial(a1.gatewayPort);
    await c.next(isCmd(GATEWAY_CMD.allSubsComplete, '$G'));
    const a2 = await sc.startServer(0, 1);
    const want = [a1, a2].map((g) => `127.0.0.1:${g.gatewayPort}`).sort();
    const update = await c.next(
      (o) =>
        o.op === 'INFO' &&
        o.json?.gateway_cmd === undefined &&
        JSON.stringify([...((o.json?.gateway_urls as string[] | undefined) ?? [])].sort()) === JSON.stringify(want),
      30_000,
    );
    t.is(update.json?.gateway, sc.names[0]);
    t.is(update.json?.gateway_url, `127.0.0.1:${a1.gatewayPort}`);
  },
);

// ---------------------------------------------------------------------------------------
// Gateways and routes: what a route peer hears

/** Joins the cluster of the server at `clusterPort` as a raw route named `id`; returns the connection and the server's route INFO. */
async function fakeRoute(clusterPort: number, cluster: string, id: string) {
  const r = await rawConnect(clusterPort);
  const line = await r.expect(/^INFO \{.*\} \r\n/);
  r.send(
    `CONNECT {"echo":true,"verbose":false,"pedantic":false,"tls_required":false,"headers":true,"name":"${id}","cluster":"${cluster}","lnoc":true}\r\n` +
      `INFO {"server_id":"${id}","server_name":"fake-route","version":"2.9.10","proto":2,"host":"127.0.0.1","port":1,"headers":true,"max_payload":1048576,"cluster":"${cluster}","lnoc":true}\r\n`,
  );
  return { r, info: JSON.parse(line.slice(5, -3)) as Record<string, unknown> };
}

gatewayTest(
  'a route peer hears of every gateway the server has an outbound to (cmd 1, server_id GW<id>), and the route INFO carries gateway_url',
  ['nats-server', 'skein', 'mixed'],
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2, 1] });
    const a1 = sc.server(0, 0);
    const { r, info } = await fakeRoute(a1.clusterPort, sc.names[0], 'NFAKEROUTE');
    t.teardown(() => r.close());
    t.is(info.gateway_url, `127.0.0.1:${a1.gatewayPort}`);
    const line = await r.expect(/INFO \{[^\r\n]*"gateway_cmd":1[^\r\n]*\}\r\n/);
    const gossip = JSON.parse(line.slice(line.indexOf('INFO ') + 5, -2)) as Record<string, unknown>;
    t.deepEqual(gossip, {
      server_id: `GW${await sc.serverId(a1)}`,
      server_name: '',
      version: '',
      proto: 0,
      go: '',
      host: '',
      port: 0,
      headers: false,
      max_payload: 0,
      gateway: sc.names[1],
      gateway_urls: [`127.0.0.1:${sc.server(1, 0).gatewayPort}`],
      gateway_cmd: 1,
    });
    t.notRegex(line, / \r\n$/, 'no space before CRLF');
  },
);

gatewayTest(
  "a server without a gateway that hears of one from a route logs nats-server's error and dials nothing",
  SINGLE_VARIANTS,
  async (t, variant) => {
    const srv = await useServer(t, {
      impl: variant.impl(0, 0),
      args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'plain'],
      workers: 1,
    });
    const { r } = await fakeRoute(srv.clusterPort, 'plain', 'NFAKEROUTE');
    t.teardown(() => r.close());
    await r.expect(/PING\r\n/, 20_000);
    const nowhere = await usePeer(t, { name: 'B' });
    const dials = nowhere.acceptAll();
    r.send(
      `INFO {"server_id":"GWNFAKEROUTE","server_name":"","version":"","proto":0,"go":"","host":"","port":0,"headers":false,"max_payload":0,"gateway":"B","gateway_urls":["${nowhere.url}"],"gateway_cmd":1}\r\n`,
    );
    t.truthy(await srv.waitForLog(/\[ERR\] Received information about gateway "B" from NFAKEROUTE, but gateway is not configured/));
    await r.ping();
    t.is(dials(), 0);
    t.false(r.isClosed(), 'the route stays');
  },
);
