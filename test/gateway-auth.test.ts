// Gateway authorization (gateway.authorization {user, password, timeout}) and the inbound's
// auth timer, as nats-server 2.9.10: credentials from the gateway URL or else the server's own
// gateway user and password, bcrypt hashes, nats-server's errors and log lines.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import bcrypt from 'bcryptjs';
import { usePeer } from './helpers/gateway-peer.ts';
import {
  ALL_VARIANTS,
  SINGLE_VARIANTS,
  Supercluster,
  countLines,
  eventually,
  gaps,
  gatewayTest,
  logLineTimes,
  re,
} from './helpers/supercluster.ts';

const AUTH = 'authorization { user: gw, password: pw }';

gatewayTest(
  "an inbound gateway must authenticate: the right user and password register, wrong or missing ones get -ERR 'Authorization Violation'",
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1], gatewayBlock: () => AUTH });
    const a = sc.server(0, 0);
    const tries: [string, Record<string, unknown>][] = [
      ['wrong password', { user: 'gw', pass: 'nope' }],
      ['no credentials', {}],
      ['wrong user', { user: 'x', pass: 'pw' }],
    ];
    for (const [what, creds] of tries) {
      const peer = await usePeer(t, { name: `F${what.length}`, listen: false });
      const c = await peer.dial(a.gatewayPort, { connect: creds });
      t.true(c.serverInfo.auth_required === true, 'INFO says auth_required');
      const err = await c.next('-ERR');
      t.is(err.err, 'Authorization Violation', what);
      await c.closed();
    }
    t.is(countLines(a.srv.output(), /\[ERR\] .* - gid:\d+ - authentication error/), 3);
    t.is(countLines(a.srv.output(), /Gateway connection closed: Authentication Failure/), 3);
    const peer = await usePeer(t, { name: 'GOOD', listen: false });
    const c = await peer.dial(a.gatewayPort, { connect: { user: 'gw', pass: 'pw' } });
    await c.next((o) => o.op === 'INFO' && o.json?.gateway_cmd === 3);
    await a.srv.waitForLog(/Inbound gateway connection from "GOOD" \(\w+\) registered/);
  },
);

gatewayTest(
  'an inbound that sends nothing is closed after the auth timeout (Authentication Timeout), even without gateway authorization',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1] });
    const peer = await usePeer(t, { name: 'SILENT', listen: false });
    const c = await peer.dial(sc.server(0, 0).gatewayPort, { handshake: false });
    t.is((await c.next('-ERR', 20_000)).err, 'Authentication Timeout');
    await c.closed();
    await sc.server(0, 0).srv.waitForLog(/Gateway connection closed: Authentication Timeout/);
  },
);

gatewayTest(
  "anything but CONNECT as an inbound's first operation gets -ERR 'Authorization Violation'",
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1] });
    for (const first of ['PING\r\n', 'RMSG $G foo 2\r\nhi\r\n', 'GARBAGE\r\n', `INFO {"gateway":"X"}\r\n`]) {
      const peer = await usePeer(t, { name: 'EARLY', listen: false });
      const c = await peer.dial(sc.server(0, 0).gatewayPort, { handshake: false });
      c.send(first);
      t.is((await c.next('-ERR')).err, 'Authorization Violation', JSON.stringify(first));
      await c.closed();
    }
  },
);

gatewayTest(
  'a dialling server sends the credentials of the gateway URL, or else its own gateway user and password',
  ALL_VARIANTS,
  async (t, variant) => {
    // Every cluster requires gw/pw. B names A with the credentials in the URL; C names A
    // without them and must use its own; the gossiped (implicit) gateways have no URL
    // credentials at all, so every one of them uses the server's own.
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1, 1, 1],
      waitConnected: false,
      gateways: () => [],
      gatewayBlock: () => AUTH,
      remotes: (c, _s, sc) => {
        const port = sc.server(0, 0).gatewayPort;
        if (c === 1) return [{ name: sc.names[0], urls: [`nats://gw:pw@127.0.0.1:${port}`] }];
        if (c === 2) return [{ name: sc.names[0], urls: [`nats://127.0.0.1:${port}`] }];
        return [];
      },
    });
    await sc.waitConnected();
    t.deepEqual(await sc.connectionCounts(), { outbound: 6, inbound: 6 });
    for (const g of sc.all) t.is(countLines(g.srv.output(), /authentication error|Authorization Violation/), 0, g.name);
  },
);

gatewayTest('a gateway with the wrong credentials is refused and re-dialled about once a second', ALL_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, {
    variant,
    sizes: [1, 1],
    waitConnected: false,
    gateways: () => [],
    gatewayBlock: (c) => (c === 0 ? AUTH : ''),
    remotes: (c, _s, sc) => (c === 1 ? [{ name: sc.names[0], urls: [`nats://gw:nope@127.0.0.1:${sc.server(0, 0).gatewayPort}`] }] : []),
  });
  const [a, b] = [sc.server(0, 0), sc.server(1, 0)];
  const refused = /Gateway Error 'Authorization Violation'/;
  await eventually('3 refusals', () => countLines(b.srv.output(), refused) >= 3);
  for (const gap of gaps(logLineTimes(b.srv.output(), refused))) t.true(gap >= 900, `re-dialled after ${gap} ms`);
  t.true(countLines(a.srv.output(), /\[ERR\] .*authentication error/) >= 3);
  t.deepEqual((await sc.gatewayz(a)).inbound_gateways, {});
});

gatewayTest('a bcrypt hash as the gateway password accepts the plaintext password', ALL_VARIANTS, async (t, variant) => {
  // Only A hashes: a server sends its own gateway password on gossiped gateways, and a hash
  // is not the password (2.9.10 sends it anyway, so a bcrypt block on every server breaks
  // every implicit gateway).
  const hash = bcrypt.hashSync('pw', 4);
  const sc = await Supercluster.start(t, {
    variant,
    sizes: [1, 1],
    waitConnected: false,
    gateways: () => [],
    gatewayBlock: (c) => (c === 0 ? `authorization { user: gw, password: "${hash}" }` : ''),
    remotes: (c, _s, sc) => (c === 1 ? [{ name: sc.names[0], urls: [`nats://gw:pw@127.0.0.1:${sc.server(0, 0).gatewayPort}`] }] : []),
  });
  await sc.waitConnected();
  t.is(countLines(sc.server(0, 0).srv.output(), /authentication error/), 0);
  t.regex(sc.server(0, 0).srv.output(), new RegExp(`Inbound gateway connection from "${re(sc.names[1])}"`));
});

gatewayTest('a gossiped gateway that refuses the credentials is not re-dialled in a hot loop', ['skein'], async (t, variant) => {
  // nats-server 2.9.10 fails this: the server dials P back as an implicit gateway, P refuses
  // the CONNECT, and 2.9.10 re-dials after 0-100 ms, forever, as long as P's inbound stays.
  const sc = await Supercluster.start(t, { variant, sizes: [1], waitConnected: false, config: () => 'ping_interval: "1s"' });
  const a = sc.server(0, 0);
  const peer = await usePeer(t, { name: 'P' });
  const inbound = await peer.dial(a.gatewayPort);
  const refused = peer.acceptAll((c) => {
    void c.next('CONNECT').then(
      () => {
        c.send("-ERR 'Authorization Violation'\r\n");
        c.close();
      },
      () => undefined,
    );
  });
  await eventually('the first refused dial', () => refused() >= 1);
  // Three of A's own gateway PINGs (1 s apart on A's clock) make the observation window.
  const pings = inbound.ops().filter((o) => o.op === 'PING').length;
  await eventually('3 gateway PINGs from A', () => inbound.ops().filter((o) => o.op === 'PING').length >= pings + 3, 30_000);
  const attempts = logLineTimes(a.srv.output(), new RegExp(`Connecting to implicit gateway "P"`));
  for (const gap of gaps(attempts)) t.true(gap >= 900, `re-dialled after ${gap} ms`);
  t.true(refused() <= 6, `${refused()} dials in about 3 s`);
});
