// The `leafnodes` config block (src/config/options.ts LeafNodeOptions, src/config/config.ts readLeafNodes):
// read from nats-server's .conf and from YAML into the same options, checked with
// nats-server 2.9.10's errors (file:line:col), every other 2.9.10 leafnodes key refused by name,
// `skein -t` agreeing with `nats-server -t`, a change refused on reload as nats-server refuses it,
// and, until leaf connections are built, a start-up warning that says so.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseConfigText } from '../src/config/config.ts';
import { ConfigError, defaultOptions, type Options } from '../src/config/options.ts';
import { validateOptions } from '../src/config/load.ts';
import { repoRoot, useServer } from './helpers/server.ts';

function read(text: string, file = 'x.conf'): Options {
  const o = defaultOptions();
  const positions = new Map();
  parseConfigText(text, file, o, positions);
  return validateOptions(o, positions);
}

function problem(text: string, file = 'x.conf'): ConfigError {
  try {
    read(text, file);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`no error for ${JSON.stringify(text)}`);
}

const FULL_CONF = `
leafnodes {
  listen: "127.0.0.1:7422"
  advertise: "leaf.example.com:7422"
  no_advertise: true
  authorization {
    users: [ {user: a, password: pa}, {user: b, password: pb, account: "$G"} ]
    timeout: 1.5
  }
  reconnect: 3
  remotes: [
    { url: "nats-leaf://u:p@hub.example.com:7422", hub: true }
    { urls: ["nats://h1.example.com:7422", "nats://h2.example.com"], account: "$G" }
  ]
}
`;

const FULL_YAML = `
leafnodes:
  listen: "127.0.0.1:7422"
  advertise: "leaf.example.com:7422"
  no_advertise: true
  authorization:
    users:
      - {user: a, password: pa}
      - {user: b, password: pb, account: "$G"}
    timeout: 1.5
  reconnect: 3
  remotes:
    - {url: "nats-leaf://u:p@hub.example.com:7422", hub: true}
    - {urls: ["nats://h1.example.com:7422", "nats://h2.example.com"], account: "$G"}
`;

test('the leafnodes block is read in full, the same from .conf and from YAML', (t) => {
  const fromConf = read(FULL_CONF, 'x.conf').leafNodes;
  const fromYaml = read(FULL_YAML, 'x.yaml').leafNodes;
  t.deepEqual(fromConf, {
    host: '127.0.0.1',
    port: 7422,
    advertise: 'leaf.example.com:7422',
    noAdvertise: true,
    authorization: {
      users: [
        { user: 'a', password: 'pa' },
        { user: 'b', password: 'pb' },
      ],
    },
    authTimeoutMs: 1500,
    reconnectIntervalMs: 3000,
    remotes: [
      { urls: ['nats-leaf://u:p@hub.example.com:7422'], account: '$G', hub: true },
      { urls: ['nats://h1.example.com:7422', 'nats://h2.example.com'], account: '$G', hub: false },
    ],
  });
  t.deepEqual(fromYaml, fromConf);
});

test('leafnodes defaults and forms: port/host, `leaf` alias, a single user, no listener without a port, nothing without a port or remotes', (t) => {
  const a = read('leaf { port: -1, host: "127.0.0.1", authorization { user: u, password: p } }').leafNodes!;
  t.is(a.port, -1);
  t.is(a.host, '127.0.0.1');
  t.deepEqual(a.authorization, { user: 'u', password: 'p' });
  t.is(a.authTimeoutMs, 2000, "the hub's auth timer default");
  t.is(a.reconnectIntervalMs, 1000, 'DEFAULT_LEAF_NODE_RECONNECT');
  t.deepEqual(a.remotes, []);
  const b = read('leafnodes { port: 7422 }').leafNodes!;
  t.is(b.host, '0.0.0.0');
  t.is(b.authorization, undefined);
  const c = read('leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:7422" } ] }').leafNodes!;
  t.is(c.port, 0, 'a leaf that only dials has no leaf listener');
  t.is(read('leafnodes { reconnect: 2 }').leafNodes, undefined, 'no port and no remotes: no leaf node role');
  t.is(read('leafnodes { }').leafNodes, undefined);
});

test('a leafnodes tls block makes the default leaf auth timeout the TLS timeout + 1s', (t) => {
  const l = read('leafnodes { port: -1, tls { cert_file: "a.pem", key_file: "a.key", timeout: 3 } }').leafNodes!;
  t.is(l.tls?.timeoutMs, 3000);
  t.is(l.authTimeoutMs, 4000);
  const m = read('leafnodes { port: -1, authorization { timeout: 5 }, tls { cert_file: "a.pem", key_file: "a.key" } }').leafNodes!;
  t.is(m.authTimeoutMs, 5000, 'an explicit timeout stays');
});

test("leafnodes errors use nats-server's wording and name the file, line and column", (t) => {
  const cases: [string, string, string][] = [
    ['leafnodes: 5\n', '1:12', 'Expected map to define a leafnode, got 5'],
    [
      'leafnodes {\n  port: -1\n  authorization { user: a, password: b, users: [{user: c, password: d}] }\n}\n',
      '3:3',
      'can not have a single user/pass and a users array',
    ],
    [
      'leafnodes {\n  port: -1\n  authorization { users: [{user: c, password: d}, {user: c, password: e}] }\n}\n',
      '3:3',
      'duplicate user "c" detected in leafnode authorization',
    ],
    ['leafnodes { port: -1, authorization { token: x } }\n', '1:39', 'unknown field "token"'],
    ['leafnodes { remotes: { url: "x" } }\n', '1:22', 'Expected remotes field to be an array, got a map'],
    ['leafnodes { remotes: [ { url: "nats://a b:1" } ] }\n', '1:31', 'error parsing leafnode url ["nats://a b:1"]'],
    ['leafnodes { remotes: [ { url: 5 } ] }\n', '1:31', 'Expected remote leafnode url to be an array or string, got 5'],
    [
      'leafnodes { remotes: [ { url: "nats://h:1", account: FOO } ] }\n',
      '1:54',
      'cannot find local account "FOO" specified in leafnode remote (skein has only the global account $G)',
    ],
    [
      'leafnodes { port: -1, authorization { user: a, password: b, account: FOO } }\n',
      '1:70',
      'cannot find local account "FOO" specified in leafnode authorization (skein has only the global account $G)',
    ],
    ['leafnodes { foo: 1 }\n', '1:13', 'unknown field "foo"'],
    [
      'leafnodes { remotes: [ { url: "nats://h:1" } ], reconnect: "2s" }\n',
      '1:60',
      'leafnodes.reconnect must be a whole number of seconds (nats-server reads no duration string here), got "2s"',
    ],
    ['leafnodes { remotes: [ { hub: true } ] }\n', '1:24', 'leafnode remote has no url (give url or urls)'],
    [
      'leafnodes { remotes: [ { url: "nats://h:1", urls: ["nats://h:2"] } ] }\n',
      '1:45',
      'a leafnode remote takes url or urls, not both (nats-server would keep one of them at random)',
    ],
    ['leafnodes { port: -1, authorization { password: p } }\n', '1:23', 'leafnodes authorization has a password but no user'],
  ];
  for (const [text, at, reason] of cases) {
    const err = problem(text, 'x.conf');
    t.is(err.message, `x.conf:${at}: ${reason}`, text);
  }
});

test('websocket leaf remotes and the leafnodes keys skein does not implement are refused as not supported, by name', (t) => {
  const ws = problem('leafnodes { remotes: [ { url: "ws://127.0.0.1:7422" } ] }\n');
  t.is(ws.code, 'UNSUPPORTED');
  t.regex(ws.message, /websocket leaf connections are not supported by skein$/);
  // nats-server 2.9.10's leafnodes keys (opts.go parseLeafNodes, parseLeafAuthorization,
  // parseLeafUsers, parseRemoteLeafNodes): each is read or refused by name, never "unknown".
  const blocks: Record<string, { wrap: (l: string) => string; keys: string[] }> = {
    leafnodes: {
      wrap: (l) => `leafnodes { port: -1\n ${l} }`,
      keys: [
        'listen',
        'port',
        'host',
        'net',
        'authorization',
        'remotes',
        'reconnect',
        'reconnect_delay',
        'reconnect_interval',
        'tls',
        'leafnode_advertise',
        'advertise',
        'no_advertise',
        'min_version',
        'minimum_version',
      ],
    },
    authorization: {
      wrap: (l) => `leafnodes { port: -1, authorization {\n ${l} } }`,
      keys: ['user', 'username', 'pass', 'password', 'timeout', 'users', 'account'],
    },
    user: {
      wrap: (l) => `leafnodes { port: -1, authorization { users: [ { user: x\n ${l} } ] } }`,
      keys: ['user', 'username', 'pass', 'password', 'account'],
    },
    remote: {
      wrap: (l) => `leafnodes { remotes: [ { url: "nats://h:1"\n ${l} } ] }`,
      keys: [
        'no_randomize',
        'dont_randomize',
        'url',
        'urls',
        'account',
        'local',
        'creds',
        'credentials',
        'tls',
        'hub',
        'deny_imports',
        'deny_import',
        'deny_exports',
        'deny_export',
        'ws_compress',
        'ws_compression',
        'websocket_compress',
        'websocket_compression',
        'ws_no_masking',
        'websocket_no_masking',
        'jetstream_cluster_migrate',
        'js_cluster_migrate',
      ],
    },
  };
  const supported: string[] = [];
  for (const [block, { wrap, keys }] of Object.entries(blocks)) {
    for (const key of keys) {
      for (const value of ['1', '{}']) {
        let err: ConfigError | undefined;
        try {
          read(`${wrap(`${key}: ${value}`)}\n`);
        } catch (e) {
          err = e as ConfigError;
        }
        const problems = err?.problems ?? [];
        t.false(
          problems.some((p) => p.code === 'UNKNOWN_KEY'),
          `${block}.${key}: ${err?.message}`,
        );
        const refused = problems.find((p) => p.code === 'UNSUPPORTED');
        if (refused) t.regex(refused.message, new RegExp(`field "${key}" is not supported by skein$`), `${block}.${key}`);
        else if (value === '1') supported.push(`${block}.${key}`);
      }
    }
  }
  t.true(supported.includes('remote.hub') && supported.includes('leafnodes.remotes'), supported.join(' '));
  for (const key of ['leafnodes.min_version', 'remote.deny_imports', 'remote.credentials', 'remote.no_randomize']) {
    t.false(supported.includes(key), `${key} is refused`);
  }
});

// ---------------------------------------------------------------------------------------------
// skein -t and nats-server -t on the same files

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: repoRoot, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

test('skein -t agrees with nats-server -t on leafnodes configs', async (t) => {
  t.timeout(120_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-leafconf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const valid = [
    FULL_CONF,
    'leafnodes { listen: "127.0.0.1:-1" }\n',
    'leafnodes { port: 7422, authorization { user: u, password: "$2a$11$C3BKsU1TgkM3QITk/7zJdOrBs6M8J6Gj0EoQ5zKKrk0GQwWg/XRrG", timeout: 2 } }\n',
    'leaf { remotes: [ { urls: ["nats-leaf://127.0.0.1:7422"] }, { url: "tls://127.0.0.1:7423", hub: true } ], reconnect: 5 }\n',
  ];
  const invalid = [
    'leafnodes: 5\n',
    'leafnodes { port: -1, authorization { user: a, password: b, users: [{user: c, password: d}] } }\n',
    'leafnodes { port: -1, authorization { token: x } }\n',
    'leafnodes { remotes: [ { url: "nats://a b:1" } ] }\n',
    'leafnodes { reconnect: "2s" }\n',
    'leafnodes { foo: 1 }\n',
  ];
  const launcher = path.join(repoRoot, 'src', 'launcher.cjs');
  for (const [i, text] of [...valid, ...invalid].entries()) {
    const file = path.join(dir, `c${i}.conf`);
    writeFileSync(file, text);
    const nats = await run('nats-server', ['-t', '-c', file]);
    const skein = await run(process.execPath, [launcher, '-t', '-c', file]);
    t.is(nats.code === 0, i < valid.length, `nats-server on ${text}: ${nats.out}`);
    t.is(skein.code === 0, nats.code === 0, `skein on ${text}: ${skein.out}`);
  }
});

test('a change to the leafnodes block is refused on reload, as nats-server refuses it', async (t) => {
  t.timeout(60_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-leafreload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'leaf.conf');
  writeFileSync(file, 'leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:1" } ], reconnect: 2 }\n');
  const srv = await useServer(t, { impl: 'skein', workers: 1, args: ['-c', file] });
  writeFileSync(file, 'leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:1" } ], reconnect: 3 }\n');
  process.kill(srv.pid, 'SIGHUP');
  await srv.waitForLog(/Failed to reload server configuration: config reload not supported for LeafNode/, 20_000);
  t.pass();
});

test("a configured leafnodes block listens for leafs and dials its remotes, with nats-server's log lines and no warning", async (t) => {
  t.timeout(60_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-leafstart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'hub.conf');
  writeFileSync(file, 'leafnodes { listen: "127.0.0.1:-1", remotes: [ { url: "nats-leaf://127.0.0.1:1" } ] }\n');
  const srv = await useServer(t, { impl: 'skein', workers: 1, args: ['-c', file] });
  await srv.waitForLog(/\[INF\] Listening for leafnode connections on 127\.0\.0\.1:\d+/, 20_000);
  await srv.waitForLog(/\[ERR\] Error trying to connect as leafnode to remote server "127\.0\.0\.1:1" \(attempt 1\)/, 20_000);
  t.notRegex(srv.output(), /\[WRN\]/);
});
