// The `gateway` block (nats-server 2.9.10's keys, opts.go parseGateway / parseGateways,
// gateway.go validateGatewayOptions, server.go validateCluster): read from YAML and .conf,
// validated with nats-server's errors, `-t` compared with `nats-server -t` on the same .conf
// files, and the gateway listener a configured gateway starts.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ConfigError, type Options } from '../src/config/options.ts';
import { loadOptions } from '../src/config/load.ts';
import { certs } from './helpers/certs.ts';
import { useServer } from './helpers/server.ts';
import { GATEWAY_LISTEN_RE } from './helpers/supercluster.ts';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-gw-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

async function options(argv: string[]): Promise<Options> {
  const r = await loadOptions(argv);
  if (r.kind !== 'run' && r.kind !== 'check') throw new Error(`unexpected ${r.kind}`);
  return r.options;
}

async function refusal(argv: string[]): Promise<ConfigError> {
  try {
    await loadOptions(argv);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a config error for ${argv.join(' ')}`);
}

test('the gateway block is read in full, from .conf and from YAML alike', async (t) => {
  const dir = tempDir(t);
  const c = certs();
  const conf = [
    'gateway {',
    '  name: A',
    '  listen: "127.0.0.1:7222"',
    '  advertise: "gw-a.example.com:7222"',
    '  connect_retries: 3',
    '  reject_unknown_cluster: true',
    '  authorization { user: gw, password: pw, timeout: 0.5 }',
    `  tls { cert_file: "${c.serverCert}", key_file: "${c.serverKey}", ca_file: "${c.ca}", timeout: 3 }`,
    '  gateways: [',
    '    {name: B, url: "nats://127.0.0.1:7223"}',
    `    {name: C, urls: ["nats://u:p@127.0.0.1:7224", " nats://127.0.0.1:7225 ", "nats://127.0.0.1:7225"], tls { cert_file: "${c.serverCert}", key_file: "${c.serverKey}", ca_file: "${c.ca}", timeout: 5 }}`,
    '  ]',
    '}',
  ].join('\n');
  const yaml = [
    'gateway:',
    '  name: A',
    '  listen: "127.0.0.1:7222"',
    '  advertise: "gw-a.example.com:7222"',
    '  connect_retries: 3',
    '  reject_unknown_cluster: true',
    '  authorization: {user: gw, password: pw, timeout: 0.5}',
    `  tls: {cert_file: "${c.serverCert}", key_file: "${c.serverKey}", ca_file: "${c.ca}", timeout: 3}`,
    '  gateways:',
    '    - {name: B, url: "nats://127.0.0.1:7223"}',
    `    - {name: C, urls: ["nats://u:p@127.0.0.1:7224", " nats://127.0.0.1:7225 ", "nats://127.0.0.1:7225"], tls: {cert_file: "${c.serverCert}", key_file: "${c.serverKey}", ca_file: "${c.ca}", timeout: 5}}`,
  ].join('\n');
  for (const file of [write(dir, 'gw.conf', conf), write(dir, 'gw.yaml', yaml)]) {
    const g = (await options(['-c', file])).gateway!;
    t.is(g.name, 'A');
    t.is(g.host, '127.0.0.1');
    t.is(g.port, 7222);
    t.is(g.advertise, 'gw-a.example.com:7222');
    t.is(g.connectRetries, 3);
    t.true(g.rejectUnknown);
    t.deepEqual(g.authorization, { user: 'gw', password: 'pw', timeoutMs: 500 });
    t.is(g.authTimeoutMs, 500);
    t.is(g.tls?.timeoutMs, 3000);
    t.truthy(g.tls?.cert, 'certificate read at load');
    t.deepEqual(
      g.gateways.map((r) => [r.name, r.urls]),
      [
        ['B', ['nats://127.0.0.1:7223']],
        ['C', ['nats://u:p@127.0.0.1:7224', 'nats://127.0.0.1:7225']],
      ],
    );
    t.is(g.gateways[0].tls, undefined, "no tls of its own: the gateway block's applies");
    t.is(g.gateways[1].tls?.timeoutMs, 5000);
    t.truthy(g.gateways[1].tls?.cert);
  }
});

test('reject_unknown is the old name of reject_unknown_cluster; a gateway name becomes the cluster name', async (t) => {
  const dir = tempDir(t);
  const o = await options(['-c', write(dir, 'a.conf', 'cluster { port: -1 }\ngateway { name: A, port: -1, reject_unknown: true }\n')]);
  t.true(o.gateway?.rejectUnknown);
  t.is(o.cluster?.name, 'A');
});

test('the inbound auth timeout: 2 s, the TLS timeout + 1 s with TLS, or authorization.timeout', async (t) => {
  const dir = tempDir(t);
  const c = certs();
  const tlsBlock = `tls { cert_file: "${c.serverCert}", key_file: "${c.serverKey}", ca_file: "${c.ca}", timeout: 3 }`;
  const cases: [string, number][] = [
    ['gateway { name: A, port: -1 }', 2000],
    [`gateway { name: A, port: -1, ${tlsBlock} }`, 4000],
    [`gateway { name: A, port: -1, ${tlsBlock}, authorization { user: u, password: p } }`, 4000],
    ['gateway { name: A, port: -1, authorization { timeout: 1.5 } }', 1500],
    [`gateway { name: A, port: -1, ${tlsBlock}, authorization { user: u, password: p, timeout: 1 } }`, 1000],
  ];
  for (const [i, [text, ms]] of cases.entries()) {
    const g = (await options(['-c', write(dir, `t${i}.conf`, `${text}\n`)])).gateway!;
    t.is(g.authTimeoutMs, ms, text);
  }
  const noUser = (await options(['-c', write(dir, 'nouser.conf', 'gateway { name: A, port: -1, authorization { timeout: 1.5 } }\n')]))
    .gateway!;
  t.is(noUser.authorization, undefined, 'no user: no credentials required');
});

test('interest_mode (skein only): interest-only (default) or optimistic, anything else refused', async (t) => {
  const dir = tempDir(t);
  t.is((await options(['-c', write(dir, 'a.conf', 'gateway { name: A, port: -1 }\n')])).gateway?.interestMode, undefined);
  t.is(
    (await options(['-c', write(dir, 'b.conf', 'gateway { name: A, port: -1, interest_mode: optimistic }\n')])).gateway?.interestMode,
    'optimistic',
  );
  t.is(
    (await options(['-c', write(dir, 'c.conf', 'gateway { name: A, port: -1, interest_mode: "Interest_Only" }\n')])).gateway?.interestMode,
    'interest-only',
  );
  const file = write(dir, 'd.conf', 'gateway { name: A, port: -1, interest_mode: sometimes }\n');
  const err = await refusal(['-c', file]);
  t.is(err.message, `${file}:1:45: gateway.interest_mode must be "interest-only" or "optimistic", got "sometimes"`);
});

// Both accept or both refuse (`-t`); where both refuse, the reason (after file:line:col) is
// the same unless noted.
const AGREEMENT: { conf: string; sameReason?: boolean }[] = [
  { conf: 'gateway { name: A, port: -1 }' },
  { conf: 'gateway { name: A, listen: "127.0.0.1:-1" }' },
  { conf: 'gateway { name: A, port: 7222, gateways: [ {name: B, url: "nats://h:1"} ] }' },
  { conf: 'gateway { name: A, port: 7222, gateways: [ {name: B, urls: ["nats://h:1", "nats://h:2"]} ] }' },
  { conf: 'gateway { name: A, port: 7222, gateways: [ {name: B, url: "nats://u:p@h:1"} ] }' },
  { conf: 'gateway { name: A, port: 7222, gateways: [ {name: A, url: "nats://h:1"} ] }' },
  { conf: 'gateway { name: A, port: 7222, gateways: [ {name: B, url: "nats://h:1"}, {name: B, url: "nats://h:2"} ] }' },
  { conf: 'gateway { name: A, port: 7222, authorization { user: a, password: b, timeout: 3 } }' },
  {
    conf: 'gateway { name: A, port: 7222, authorization { user: a, password: "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG" } }',
  },
  { conf: 'gateway { name: A, port: 7222, authorization { timeout: 1 } }' },
  { conf: 'gateway { name: A, port: 7222, reject_unknown_cluster: true, connect_retries: 3, advertise: "h:1" }' },
  { conf: 'gateway { name: A, port: 7222, reject_unknown: true }' },
  { conf: 'gateway { name: "A B", port: 7222 }' },
  { conf: 'gateway { name: A, port: 7222 }\ncluster { name: A, port: 6222 }' },
  { conf: 'gateway { name: A, port: 7222 }\ncluster { port: 6222 }' },
  {
    conf: 'gateway {\n  name: A\n  port: 7222\n  gateways [\n    {name: B, urls: [nats://h:1, nats://h:2]}\n    {name: C, url: nats://h:3}\n  ]\n}',
  },
  { conf: 'gateway { name: A, port: 7222, foo: 1 }', sameReason: true },
  { conf: 'gateway { name: A, port: 7222, gateways: [ {name: B, url: "nats://h:1", foo: 1} ] }', sameReason: true },
  { conf: 'gateway { name: A, port: 7222, authorization { token: t } }', sameReason: true },
  { conf: 'gateway { name: A, port: 7222, authorization { users: [{user: a, password: b}] } }', sameReason: true },
  { conf: 'gateway { name: A, port: 7222, tls { foo: 1 } }', sameReason: true },
  { conf: 'gateway { name: A, port: 7222, tls { cert_file: "/nonexistent.pem", key_file: "/nonexistent.key" } }' },
  {
    conf: 'gateway { name: A, port: 7222, gateways: [ {name: B, url: "nats://h:1", tls { cert_file: "/nonexistent.pem", key_file: "/x.key" } } ] }',
  },
  { conf: 'gateway { name: A, port: 7222, gateways: {name: B} }' },
  { conf: 'gateway { name: A, port: 7222, gateways: [ "nats://h:1" ] }' },
  { conf: 'gateway { name: A, port: 7222, gateways: [ {name: B, urls: "nats://h:1"} ] }' },
  { conf: 'gateway: 1' },
  { conf: 'gateway { name: A, port: "x" }' },
  { conf: 'gateway { name: 1, port: 7222 }' },
  { conf: 'gateway { name: A, port: 7222, connect_retries: "x" }' },
];

/** The part of a message after `file:line:col: ` (or all of it), first line only. */
function reason(text: string): string {
  const line = text
    .trim()
    .split('\n')[0]
    .replace(/^(nats-server|skein): /, '');
  return line.replace(/^\S+:\d+:\d+: /, '');
}

test('skein -t and nats-server -t accept and refuse the same gateway .conf files', async (t) => {
  const dir = tempDir(t);
  const disagree: string[] = [];
  for (const [i, { conf, sameReason }] of AGREEMENT.entries()) {
    const file = write(dir, `g${i}.conf`, `${conf}\n`);
    const nats = spawnSync('nats-server', ['-t', '-c', file], { encoding: 'utf8' });
    let skeinError: string | undefined;
    try {
      await loadOptions(['-t', '-c', file]);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      skeinError = err.message;
    }
    const natsOk = nats.status === 0;
    if (natsOk !== (skeinError === undefined)) {
      disagree.push(
        `${JSON.stringify(conf)}: nats-server ${natsOk ? 'accepts' : `refuses (${reason(nats.stderr)})`}, skein ${skeinError === undefined ? 'accepts' : `refuses (${skeinError})`}`,
      );
    } else if (sameReason && skeinError !== undefined && reason(skeinError) !== reason(nats.stderr)) {
      disagree.push(
        `${JSON.stringify(conf)}: nats-server says ${JSON.stringify(reason(nats.stderr))}, skein ${JSON.stringify(reason(skeinError))}`,
      );
    }
  }
  t.deepEqual(disagree, []);
});

test("a missing gateway TLS file is an error naming the block, with nats-server's text", async (t) => {
  const dir = tempDir(t);
  const cases: [string, string][] = [
    ['gateway { name: A, port: 7222, tls { cert_file: "/nonexistent.pem", key_file: "/nonexistent.key" } }', 'gateway.tls'],
    [
      'gateway { name: A, port: 7222, gateways: [ {name: B, url: "nats://h:1", tls { cert_file: "/nonexistent.pem", key_file: "/x.key" } } ] }',
      'gateway.gateways.0.tls',
    ],
  ];
  for (const [conf, block] of cases) {
    const file = write(dir, `${block}.conf`, `${conf}\n`);
    const err = await refusal(['-t', '-c', file]);
    t.regex(
      err.message,
      new RegExp(
        `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:\\d+: ${block.replace(/\./g, '\\.')}: error parsing X509 certificate/key pair: open /nonexistent\\.pem: no such file or directory$`,
      ),
    );
  }
});

// nats-server -t accepts these; nats-server then refuses to start with the message given
// (validateOptions runs at start-up only), or starts and fails at every dial. skein -t runs the
// start-up checks too, with nats-server's start-up message: stricter than `nats-server -t`.
const REFUSED_AT_START: { conf: string; natsStartError?: string; skein: string }[] = [
  {
    conf: 'gateway { name: A }',
    natsStartError: 'gateway "A" has no port specified (select -1 for random port)',
    skein: 'gateway "A" has no port specified (select -1 for random port)',
  },
  { conf: 'gateway { port: 7222 }', natsStartError: 'gateway has no name', skein: 'gateway has no name' },
  { conf: 'gateway { name: "", port: 7222 }', natsStartError: 'gateway has no name', skein: 'gateway has no name' },
  {
    conf: 'gateway { name: A, port: 7222, gateways: [ {name: B} ] }',
    natsStartError: 'gateway "B" has no URL',
    skein: 'gateway "B" has no URL',
  },
  {
    conf: 'gateway { name: A, port: 7222, gateways: [ {url: "nats://h:1"} ] }',
    natsStartError: 'gateway in the list 0 has no name',
    skein: 'gateway in the list 0 has no name',
  },
  {
    conf: 'gateway { name: A, port: 7222 }\ncluster { name: B, port: 6222 }',
    natsStartError: 'cluster name conflicts between cluster and gateway definitions',
    skein: 'cluster name conflicts between cluster and gateway definitions',
  },
  {
    conf: 'gateway { name: A, port: 7222 }\ncluster { name: B }',
    natsStartError: 'cluster name conflicts between cluster and gateway definitions',
    skein: 'cluster name conflicts between cluster and gateway definitions',
  },
  // Starts, then logs `Error getting IP for explicit gateway "B"` every second, forever.
  {
    conf: 'gateway { name: A, port: -1, gateways: [ {name: B, url: "nats://h"} ] }',
    skein: 'error parsing gateway url ["nats://h"]: no port',
  },
  // Starts with no gateway authorization at all: the password alone is silently ignored.
  { conf: 'gateway { name: A, port: -1, authorization { password: b } }', skein: 'gateway authorization has a password but no user' },
  // Fails at start-up (`Error listening on gateway port: 70000`).
  { conf: 'gateway { name: A, port: 70000 }', skein: 'gateway.port must be an integer between -1 and 65535, got 70000' },
];

test("skein -t refuses what nats-server only refuses at start-up (or never), with nats-server's start-up message", async (t) => {
  const dir = tempDir(t);
  for (const [i, { conf, natsStartError, skein }] of REFUSED_AT_START.entries()) {
    const file = write(dir, `s${i}.conf`, `${conf}\n`);
    t.is(spawnSync('nats-server', ['-t', '-c', file], { encoding: 'utf8' }).status, 0, `nats-server -t accepts ${conf}`);
    if (natsStartError !== undefined) {
      const run = spawnSync('nats-server', ['-c', file, '-p', '-1', '-a', '127.0.0.1'], { encoding: 'utf8', timeout: 10_000 });
      t.is(reason(run.stderr), natsStartError, `nats-server refuses to start: ${conf}`);
    }
    const err = await refusal(['-t', '-c', file]);
    t.is(reason(err.message), skein, conf);
  }
});

test('gateway keys nats-server reads and skein will not support are refused by name', async (t) => {
  const dir = tempDir(t);
  // nats-server parses a full authorization block here and ignores all but user/password/timeout.
  const file = write(
    dir,
    'p.conf',
    'gateway { name: A, port: -1, authorization { user: a, password: b, permissions { publish: "x" } } }\n',
  );
  const err = await refusal(['-t', '-c', file]);
  t.is(err.code, 'UNSUPPORTED');
  t.is(reason(err.message), 'field "permissions" is not supported by skein');
});

test('a configured gateway starts a gateway listener, with no warning', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl: 'skein', workers: 1, config: 'gateway: {name: A, listen: "127.0.0.1:-1"}\n' });
  t.truthy(await srv.waitForLog(GATEWAY_LISTEN_RE));
  t.truthy(await srv.waitForLog(/\[INF\] Gateway name is A/));
  t.notRegex(srv.output(), /\[WRN\]/);
});
