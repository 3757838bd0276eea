// TLS for clients and routes: the 2.9 upgrade (plaintext INFO, then the handshake) with the
// nats v2 and v3 clients, plaintext clients refused, the TLS timeout, mutual TLS with and
// without a client certificate, verify_and_map permissions; each run against skein and, with
// the same config, nats-server 2.9.10. Then a mixed cluster whose routes use TLS with
// verification both ways, and the `tls` block's config errors.

import test from 'ava';
import { connect as connectV2 } from 'nats';
import { connect as connectV3 } from '@nats-io/transport-node';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { useServer, type Impl } from './helpers/server.ts';
import { leasePort } from './helpers/ports.ts';
import { rawConnect } from './helpers/raw.ts';
import { ALICE_SUBJECT, certs, clientTls, rawTls } from './helpers/certs.ts';
import { logAfter, useConfServer } from './helpers/ops.ts';
import { TestCluster, checkPubSub, meshReady, uid, type NodeSpec } from './helpers/cluster.ts';
import { ConfigError } from '../src/config/options.ts';
import { loadOptions } from '../src/config/load.ts';

const IMPLS: Impl[] = ['skein', 'nats-server'];

/**
 * The same `tls` block for both implementations (YAML flow mapping = nats .conf map). The
 * handshake timeout is generous (10 s) unless a test is about it: on a loaded host a 2 s
 * handshake deadline can pass before the client gets to run.
 */
function tlsBlock(extra = ''): string {
  const c = certs();
  const timeout = extra.includes('timeout') ? '' : ', timeout: 10';
  return `{ cert_file: "${c.serverCert}", key_file: "${c.serverKey}", ca_file: "${c.ca}"${timeout}${extra} }`;
}

for (const impl of IMPLS) {
  test.serial(`${impl}: nats v2 and v3 clients use TLS after the plaintext INFO, which says tls_required`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, { impl, config: `tls: ${tlsBlock()}\n` });
    const raw = await rawConnect(srv.port);
    const line = await raw.expect(/^INFO .*\r\n/);
    raw.close();
    const info = JSON.parse(line.slice(5).trim()) as Record<string, unknown>;
    t.is(info.tls_required, true);
    t.is(info.tls_verify, undefined);

    const c = certs();
    const v2 = await connectV2({ servers: srv.url, tls: clientTls(c), reconnect: false });
    const v3 = await connectV3({ servers: srv.url, tls: clientTls(c), reconnect: false });
    t.teardown(() => Promise.all([v2.close(), v3.close()]));
    const subject = `tls.${uid()}`;
    const got: string[] = [];
    v3.subscribe(subject, {
      callback: (_e, m) => {
        got.push(m.string());
      },
    });
    await v3.flush();
    for (let i = 0; i < 100; i++) v2.publish(subject, `m${i}`);
    await v2.flush();
    const deadline = Date.now() + 10_000;
    while (got.length < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(
      got,
      Array.from({ length: 100 }, (_, i) => `m${i}`),
    );
  });

  test.serial(`${impl}: a client that speaks plaintext after INFO is closed with a TLS handshake error, others unharmed`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, { impl, config: `tls: ${tlsBlock()}\n`, workers: 1 });
    const nc = await connectV2({ servers: srv.url, tls: clientTls(certs()), reconnect: false });
    t.teardown(() => nc.close());
    const raw = await rawConnect(srv.port);
    await raw.expect(/^INFO .*\r\n/);
    raw.send('CONNECT {"verbose":false}\r\nPING\r\n');
    await raw.closed(5000);
    t.false(raw.data().includes('PONG\r\n'));
    await srv.waitForLog(/cid:\d+ - TLS handshake error: tls: first record does not look like a TLS handshake/);
    await nc.flush(); // the TLS client on the same worker still works
    t.pass();
  });

  test.serial(`${impl}: a client that goes away instead of starting TLS is logged as Go's EOF`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, { impl, config: `tls: ${tlsBlock()}\n` });
    const raw = await rawConnect(srv.port);
    await raw.expect(/^INFO .*\r\n/);
    raw.close();
    await srv.waitForLog(/cid:\d+ - TLS handshake error: EOF\n/);
    t.pass();
  });

  test.serial(`${impl}: a client that never starts TLS is dropped after the TLS timeout`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, { impl, config: `tls: ${tlsBlock(', timeout: 0.5')}\n` });
    const raw = await rawConnect(srv.port);
    await raw.expect(/^INFO .*\r\n/);
    await raw.closed(10_000);
    t.is(raw.data().replace(/^INFO .*\r\n/, ''), '');
    await srv.waitForLog(/TLS handshake error: read tcp 127\.0\.0\.1:\d+->127\.0\.0\.1:\d+: i\/o timeout/);
  });

  test.serial(`${impl}: verify requires a client certificate signed by ca_file`, async (t) => {
    t.timeout(60_000);
    const c = certs();
    const srv = await useServer(t, { impl, config: `tls: ${tlsBlock(', verify: true')}\n` });
    const ok = await rawTls(srv.port, c, 'alice');
    t.is(ok.info.tls_verify, true);
    ok.send('CONNECT {"verbose":false}\r\nPING\r\n');
    await ok.expect(/PONG\r\n/);
    ok.close();

    // No certificate: the handshake fails (TLS 1.3 may report it only after the client's Finished).
    const none = await rawTls(srv.port, c).catch((err: Error) => err);
    if (!(none instanceof Error)) {
      none.send('CONNECT {"verbose":false}\r\nPING\r\n');
      await none.closed();
      t.false((await none.expect(/.*/)).includes('PONG\r\n'));
    }
    await srv.waitForLog(/TLS handshake error: .*(certificate|didn't provide)/);

    const rogue = await rawTls(srv.port, c, 'rogue').catch((err: Error) => err);
    if (!(rogue instanceof Error)) {
      rogue.send('CONNECT {"verbose":false}\r\nPING\r\n');
      await rogue.closed();
    }
    await srv.waitForLog(/TLS handshake error: .*(unknown authority|unknown ca|certificate)/i);

    const v2 = await connectV2({ servers: srv.url, tls: clientTls(c, 'bob'), reconnect: false });
    await v2.flush();
    await v2.close();
    await t.throwsAsync(connectV2({ servers: srv.url, tls: clientTls(c), reconnect: false, timeout: 3000 }));
  });

  test.serial(
    `${impl}: verify_and_map takes the user from the certificate subject or e-mail SAN, and the user's permissions apply`,
    async (t) => {
      t.timeout(60_000);
      const c = certs();
      const config = `tls: ${tlsBlock(', verify_and_map: true')}
authorization: {
  users: [
    { user: "${ALICE_SUBJECT}", permissions: { publish: "alice.>", subscribe: "_INBOX.>" } },
    { user: "bob@example.com", permissions: { publish: "bob.>" } }
  ]
}
`;
      const srv = await useServer(t, { impl, config });
      for (const [who, mine, theirs] of [
        ['alice', 'alice.x', 'bob.x'],
        ['bob', 'bob.x', 'alice.x'],
      ] as const) {
        const s = await rawTls(srv.port, c, who);
        t.is(s.info.auth_required, true);
        s.send(`CONNECT {"verbose":false}\r\nPUB ${mine} 1\r\na\r\nPUB ${theirs} 1\r\nb\r\nPING\r\n`);
        const text = await s.expect(/PONG\r\n/);
        t.is(text, `-ERR 'Permissions Violation for Publish to "${theirs}"'\r\nPONG\r\n`, `${impl} ${who}`);
        s.close();
      }
      // client.go getAuthUser: the violation log names the user the certificate mapped to.
      await srv.waitForLog(/Publish Violation - User "bob@example\.com", Subject "alice\.x"/);
      t.regex(srv.output(), /Publish Violation - User "CN=alice,OU=nats\.io,O=Synadia,ST=CA,C=US", Subject "bob\.x"/);
      const carol = await rawTls(srv.port, c, 'carol');
      carol.send('CONNECT {"verbose":false}\r\nPING\r\n');
      t.is(await carol.expect(/-ERR.*\r\n/), "-ERR 'Authorization Violation'\r\n");
      await carol.closed();
    },
  );
}

/** A new server certificate (localhost, 127.0.0.1) from the test CA, into `dir` as server.pem / server-key.pem. */
function rotatedServerCert(dir: string): void {
  const c = certs();
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  writeFileSync(path.join(dir, 'new.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'new-key.pem',
    '-out',
    'new.csr',
    '-subj',
    '/CN=rotated',
  );
  run(
    'x509',
    '-req',
    '-in',
    'new.csr',
    '-CA',
    c.ca,
    '-CAkey',
    path.join(c.dir, 'ca-key.pem'),
    '-CAcreateserial',
    '-CAserial',
    path.join(dir, 'ca.srl'),
    '-out',
    'new.pem',
    '-days',
    '2',
    '-extfile',
    'new.ext',
  );
  copyFileSync(path.join(dir, 'new-key.pem'), path.join(dir, 'server-key.pem'));
  copyFileSync(path.join(dir, 'new.pem'), path.join(dir, 'server.pem'));
}

test.serial(
  "reload rotates the client TLS certificate and timeout: new handshakes on every worker get the new certificate, established ones stay, nats-server's lines",
  async (t) => {
    t.timeout(120_000);
    const c = certs();
    const lines: Record<string, string[]> = {};
    for (const impl of IMPLS) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-tls-reload-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      copyFileSync(c.serverCert, path.join(dir, 'server.pem'));
      copyFileSync(c.serverKey, path.join(dir, 'server-key.pem'));
      const conf = (timeout: number): string =>
        `tls { cert_file: "${path.join(dir, 'server.pem')}", key_file: "${path.join(dir, 'server-key.pem')}", ca_file: "${c.ca}", timeout: ${timeout} }\n`;
      const { srv, rewrite } = await useConfServer(t, impl, conf(10));
      const fingerprint = (x: Awaited<ReturnType<typeof rawTls>>): string => x.socket.getPeerX509Certificate()!.fingerprint256;
      const oldPrint = new X509Certificate(readFileSync(c.serverCert)).fingerprint256;
      const before = await rawTls(srv.port, c);
      t.teardown(() => before.close());
      t.is(fingerprint(before), oldPrint, impl);
      before.send('CONNECT {"verbose":false}\r\nPING\r\n');
      await before.expect(/PONG\r\n/);

      rotatedServerCert(dir);
      const newPrint = new X509Certificate(readFileSync(path.join(dir, 'server.pem'))).fingerprint256;
      rewrite(conf(5));
      const from = srv.output().length;
      process.kill(srv.pid, 'SIGHUP');
      await logAfter(srv, from, /Reloaded server configuration/);
      lines[impl] = [
        ...srv
          .output()
          .slice(from)
          .matchAll(/\[INF\] (Reload(?:ed)?: .*)/g),
      ]
        .map((m) => m[1])
        .filter((l) => l !== 'Reloaded: accounts'); // skein has no accounts

      // Several connections, so that each of skein's two workers handshakes at least one.
      const after = await Promise.all(Array.from({ length: 6 }, () => rawTls(srv.port, c)));
      for (const x of after) {
        t.is(fingerprint(x), newPrint, `${impl}: a handshake after the reload`);
        x.send('CONNECT {"verbose":false}\r\nPING\r\n');
        await x.expect(/PONG\r\n/);
        x.close();
      }
      before.send('PING\r\n');
      await before.expect(/PONG\r\n[^]*PONG\r\n/);
    }
    t.deepEqual(lines.skein, lines['nats-server']);
    t.true(lines.skein.includes('Reloaded: tls timeout = 5'));
    t.true(lines.skein.includes('Reloaded: tls = enabled'));
  },
);

test.serial(
  'reload with route TLS takes a rotated certificate as nats-server does (`Reloaded: cluster`), and refuses turning it off',
  async (t) => {
    t.timeout(120_000);
    const c = certs();
    const lines: Record<string, string[]> = {};
    const refusals: Record<string, string> = {};
    for (const impl of IMPLS) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-tls-reload-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      copyFileSync(c.serverCert, path.join(dir, 'server.pem'));
      copyFileSync(c.serverKey, path.join(dir, 'server-key.pem'));
      const conf = `cluster { name: rot, port: -1, tls { cert_file: "${path.join(dir, 'server.pem')}", key_file: "${path.join(dir, 'server-key.pem')}", ca_file: "${c.ca}", timeout: 10 } }\n`;
      const { srv, rewrite } = await useConfServer(t, impl, conf);
      rotatedServerCert(dir);
      const from = srv.output().length;
      process.kill(srv.pid, 'SIGHUP');
      await logAfter(srv, from, /Reloaded server configuration/);
      lines[impl] = [
        ...srv
          .output()
          .slice(from)
          .matchAll(/\[INF\] (Reload(?:ed)?: .*)/g),
      ]
        .map((m) => m[1])
        .filter((l) => l !== 'Reloaded: accounts');
      rewrite('cluster { name: rot, port: -1 }\n');
      const from2 = srv.output().length;
      process.kill(srv.pid, 'SIGHUP');
      const m = await logAfter(srv, from2, /Reloaded server configuration|Failed to reload server configuration: (.*)/);
      refusals[impl] = m[1] ?? 'reloaded';
    }
    t.deepEqual(lines.skein, lines['nats-server']);
    t.true(lines.skein.includes('Reloaded: cluster'));
    // nats-server takes it (and keeps its routes on TLS until they reconnect); skein says no.
    t.is(refusals['nats-server'], 'reloaded');
    t.regex(refusals.skein, /^config reload not supported for cluster tls: old=enabled, new=disabled/);
  },
);

test.serial('mixed cluster: nats-server and skein routes use TLS, each side verifying the other', async (t) => {
  t.timeout(120_000);
  const specs: NodeSpec[] = [
    { impl: 'nats-server', name: 'n1' },
    { impl: 'skein', name: 's1' },
    { impl: 'skein', name: 's2' },
  ];
  const cl = await TestCluster.start(t, specs, { config: `cluster: { tls: ${tlsBlock()} }\n`, args: () => ['-D'] });
  const ncs = await cl.clients(t);
  try {
    await meshReady(ncs, 30_000);
  } catch (err) {
    t.log(cl.logs());
    throw err;
  }
  await checkPubSub(t, ncs);
  for (const n of cl.nodes) {
    await n.srv.waitForLog(/rid:\d+ - TLS version 1\.[23]/);
  }
});

test.serial("a route peer that refuses our certificate with an alert is logged in Go's words, as nats-server logs it", async (t) => {
  t.timeout(120_000);
  const c = certs();
  const texts: Record<string, string> = {};
  for (const impl of IMPLS) {
    const acceptor = await useServer(t, {
      impl,
      config: `cluster: { tls: ${tlsBlock()} }\n`,
      args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'test'],
    });
    // The dialler trusts only the other CA: it refuses the acceptor's certificate with an alert.
    await useServer(t, {
      impl: 'nats-server',
      config: `cluster: { tls: { cert_file: "${c.serverCert}", key_file: "${c.serverKey}", ca_file: "${path.join(c.dir, 'other-ca.pem')}", timeout: 10 } }\n`,
      args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'test', '--routes', `nats-route://127.0.0.1:${acceptor.clusterPort}`],
    });
    texts[impl] = (await acceptor.waitForLog(/rid:\d+ - TLS route handshake error: (.*)/, 15_000))[1];
  }
  t.is(texts.skein, texts['nats-server']);
  t.is(texts.skein, 'remote error: tls: bad certificate');
});

test.serial('skein refuses a route peer whose certificate is not signed by ca_file, dialling and accepting', async (t) => {
  t.timeout(120_000);
  const c = certs();
  // The two servers dial each other, so both route ports are named before either starts.
  const leases = [await leasePort(), await leasePort()];
  t.teardown(() => {
    for (const l of leases) l.release();
  });
  const [p1, p2] = leases.map((l) => l.port);
  // s1 dials n1 and n1 dials s1; n1's certificate comes from another CA.
  const s1 = await useServer(t, {
    impl: 'skein',
    config: `cluster: { tls: ${tlsBlock()} }\n`,
    args: ['-n', 's1', '--cluster', `nats://127.0.0.1:${p1}`, '--cluster_name', 'test', '--routes', `nats-route://127.0.0.1:${p2}`],
  });
  const n1 = await useServer(t, {
    impl: 'nats-server',
    config: `cluster: { tls: { cert_file: "${c.rogueCert}", key_file: "${c.rogueKey}", ca_file: "${c.ca}", timeout: 10 } }\n`,
    args: ['-n', 'n1', '--cluster', `nats://127.0.0.1:${p2}`, '--cluster_name', 'test', '--routes', `nats-route://127.0.0.1:${p1}`],
  });
  // Dialling: n1's server certificate does not verify.
  await s1.waitForLog(
    new RegExp(`127\\.0\\.0\\.1:${p2} - rid:\\d+ - TLS route handshake error: .*(unknown authority|certificate)`, 'i'),
    15_000,
  );
  // Accepting: n1's client certificate does not verify.
  await s1.waitForLog(
    new RegExp(`127\\.0\\.0\\.1:(?!${p2}\\b)\\d+ - rid:\\d+ - TLS route handshake error: .*(unknown authority|certificate)`, 'i'),
    15_000,
  );
  t.false(/Registering remote route/.test(s1.output() + n1.output()));
});

// ---------------------------------------------------------------------------------------
// Config

async function configError(t: { teardown(fn: () => void): void }, text: string, argv: string[] = []): Promise<ConfigError> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-tls-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'skein.yaml');
  writeFileSync(file, text);
  try {
    await loadOptions(['-c', file, ...argv]);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a config error');
}

test('tls config: unknown cipher suites and curves are refused naming the key and line', async (t) => {
  const c = certs();
  const err = await configError(
    t,
    `port: 4222
tls:
  cert_file: ${c.serverCert}
  key_file: ${c.serverKey}
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_BOGUS]
  curve_preferences: [CurveP256, Curve25519]
  nonsense: 1
`,
  );
  t.regex(err.message, /skein\.yaml:5:\d+: cipher_suites: unrecognized cipher TLS_BOGUS/);
  t.regex(err.message, /skein\.yaml:6:\d+: curve_preferences: unrecognized curve preference Curve25519/);
  t.regex(err.message, /skein\.yaml:7:\d+: error parsing tls config, unknown field \["nonsense"\]/);
  const rc4 = await configError(
    t,
    `tls: { cert_file: ${c.serverCert}, key_file: ${c.serverKey}, cipher_suites: [TLS_RSA_WITH_RC4_128_SHA] }\n`,
  );
  t.regex(rc4.message, /cipher_suites: cipher TLS_RSA_WITH_RC4_128_SHA is not available/);
});

test('tls config: a missing key or file is a config error; the flags need a certificate and a key', async (t) => {
  const c = certs();
  t.regex((await configError(t, `tls: { cert_file: ${c.serverCert} }\n`)).message, /tls: missing 'key_file' in TLS configuration/);
  t.regex(
    (await configError(t, `cluster: { port: -1, tls: { cert_file: /nonexistent.pem, key_file: ${c.serverKey} } }\n`)).message,
    /skein\.yaml:1:\d+: cluster\.tls: error parsing X509 certificate\/key pair: open \/nonexistent\.pem: no such file or directory/,
  );
  const flagErr = await loadOptions(['--tls', '--tlscert', c.serverCert]).catch((e: Error) => e);
  t.is((flagErr as Error).message, 'TLS Server private key must be present and valid');
  const ok = await loadOptions(['--tlsverify', '--tlscert', c.serverCert, '--tlskey', c.serverKey, '--tlscacert', c.ca]);
  t.is(ok.kind, 'run');
  if (ok.kind === 'run') {
    t.is(ok.options.tls?.verify, true);
    t.truthy(ok.options.tls?.cert?.includes('BEGIN CERTIFICATE'));
  }
  const off = await loadOptions(['--tls=false', '--tlscert', c.serverCert]);
  t.is(off.kind === 'run' ? off.options.tls : 'x', undefined);
});
