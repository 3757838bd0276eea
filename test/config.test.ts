// The options front ends: YAML config file and command-line flags, through loadOptions.

import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, defaultOptions, type Options } from '../src/config/options.ts';
import { loadOptions } from '../src/config/load.ts';
import { parseConfigText, parseGoDuration, parseSize } from '../src/config/config.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Writes `text` to a temp YAML file removed when the test ends; returns its path. */
function configFile(t: ExecutionContext, text: string, name = 'skein.yaml'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-config-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

async function run(argv: string[]): Promise<Options> {
  const result = await loadOptions(argv);
  if (result.kind !== 'run') throw new Error(`expected kind run, got ${result.kind}`);
  return result.options;
}

async function fromYaml(t: ExecutionContext, text: string, argv: string[] = []): Promise<Options> {
  return run(['-c', configFile(t, text), ...argv]);
}

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

// ---------------------------------------------------------------------------------------------
// Defaults

test('no arguments give nats-server defaults and one worker per CPU', async (t) => {
  const o = await run([]);
  t.deepEqual(o, {
    host: '0.0.0.0',
    port: 4222,
    workers: os.availableParallelism(),
    maxPayload: 1048576,
    maxControlLine: 4096,
    maxPending: 67108864,
    maxConnections: 65536,
    maxSubscriptions: 0,
    pingIntervalMs: 120_000,
    pingMax: 2,
    writeDeadlineMs: 10_000,
    debug: false,
    trace: false,
    lameDuckDurationMs: 120_000,
    lameDuckGracePeriodMs: 10_000,
  });
  t.deepEqual(defaultOptions(), o);
});

test('an empty config file changes nothing but configFile', async (t) => {
  const file = configFile(t, '# nothing here\n');
  const o = await run(['-c', file]);
  t.is(o.configFile, file);
  t.deepEqual({ ...o, configFile: undefined }, { ...defaultOptions(), configFile: undefined });
});

// ---------------------------------------------------------------------------------------------
// Flags

const flagCases: { argv: string[]; expect: Partial<Options> }[] = [
  { argv: ['-p', '4333'], expect: { port: 4333 } },
  { argv: ['--port', '4333'], expect: { port: 4333 } },
  { argv: ['--port=4333'], expect: { port: 4333 } },
  { argv: ['-port=4333'], expect: { port: 4333 } },
  { argv: ['-p', '-1'], expect: { port: -1 } },
  { argv: ['-p', '0'], expect: { port: 4222 } }, // nats-server: 0 is "unset"
  { argv: ['-a', '127.0.0.1'], expect: { host: '127.0.0.1' } },
  { argv: ['--addr', '127.0.0.2'], expect: { host: '127.0.0.2' } },
  { argv: ['--net=127.0.0.3'], expect: { host: '127.0.0.3' } },
  { argv: ['-n', 'n1'], expect: { serverName: 'n1' } },
  { argv: ['--name', 'n2'], expect: { serverName: 'n2' } },
  { argv: ['--server_name', 'n3'], expect: { serverName: 'n3' } },
  { argv: ['--workers', '3'], expect: { workers: 3 } },
  { argv: ['--workers=1'], expect: { workers: 1 } },
  { argv: ['-D'], expect: { debug: true, trace: false } },
  { argv: ['--debug'], expect: { debug: true, trace: false } },
  { argv: ['-V'], expect: { debug: false, trace: true } },
  { argv: ['--trace'], expect: { debug: false, trace: true } },
  { argv: ['-DV'], expect: { debug: true, trace: true } },
  { argv: ['-P', '/tmp/x.pid'], expect: { pidFile: '/tmp/x.pid' } },
  { argv: ['--pid', '/tmp/y.pid'], expect: { pidFile: '/tmp/y.pid' } },
  { argv: ['-m', '8222'], expect: { httpPort: 8222 } },
  { argv: ['--http_port=8223'], expect: { httpPort: 8223 } },
  { argv: ['--user', 'u', '--pass', 'p'], expect: { authorization: { user: 'u', password: 'p', timeoutMs: 2000 } } },
  { argv: ['--auth', 's3cr3t'], expect: { authorization: { token: 's3cr3t', timeoutMs: 2000 } } },
  { argv: ['-l', '/tmp/s.log'], expect: { logFile: '/tmp/s.log' } },
  { argv: ['--log=/tmp/t.log'], expect: { logFile: '/tmp/t.log' } },
  { argv: ['-T=false'], expect: { logtime: false } },
  { argv: ['--logtime'], expect: { logtime: true } },
  { argv: ['--ports_file_dir', '/tmp'], expect: { portsFileDir: '/tmp' } },
];

for (const { argv, expect } of flagCases) {
  test(`flag ${argv.join(' ')} sets ${Object.keys(expect).join(', ')}`, async (t) => {
    const o = await run(argv);
    for (const [key, value] of Object.entries(expect)) t.deepEqual(o[key as keyof Options], value, key);
  });
}

test('--cluster sets the route listener; userinfo becomes route credentials; -1 is random', async (t) => {
  const o = await run([
    '--cluster',
    'nats://ruser:rpass@127.0.0.1:6222',
    '--cluster_name',
    'skein',
    '--routes',
    'nats://127.0.0.1:6223, nats://127.0.0.1:6224',
  ]);
  t.deepEqual(o.cluster, {
    name: 'skein',
    host: '127.0.0.1',
    port: 6222,
    authorization: { user: 'ruser', password: 'rpass', timeoutMs: 2000 },
    routes: ['nats://127.0.0.1:6223', 'nats://127.0.0.1:6224'],
    noAdvertise: false,
    connectRetries: 0,
  });
  const random = await run(['--cluster=nats://0.0.0.0:-1']);
  t.is(random.cluster?.port, -1);
  t.is(random.cluster?.host, '0.0.0.0');
  t.is(random.cluster?.authorization, undefined);
});

test('--cluster with a user but no password is refused', async (t) => {
  const err = await configError(loadOptions(['--cluster', 'nats://ruser@127.0.0.1:6222']));
  t.is(err.code, 'BAD_FLAG');
  t.is(err.message, 'expected cluster password to be set');
});

test("--routes without a cluster listener is refused with nats-server's message", async (t) => {
  const err = await configError(loadOptions(['--routes', 'nats://127.0.0.1:6223']));
  t.is(err.code, 'BAD_FLAG');
  t.is(err.message, 'solicited routes require cluster capabilities, e.g. --cluster');
});

test('unknown flags and bad flag values are errors naming the flag', async (t) => {
  const cases: [string[], string][] = [
    [['--bogus'], 'flag provided but not defined: --bogus'],
    [['-x', '1'], 'flag provided but not defined: -x'],
    [['--max_payload', '10'], 'flag provided but not defined: --max_payload'],
    [['-p'], 'flag needs an argument: -p'],
    [['-p', 'abc'], 'invalid value "abc" for flag -p: parse error'],
    [['--port=70000'], 'invalid value "70000" for flag --port: port must be between -1 and 65535'],
    [['--workers', '0'], 'invalid value "0" for flag --workers: workers must be >= 1'],
    [['-D=maybe'], 'invalid boolean value "maybe" for -D: parse error'],
    [['serve'], 'unrecognized command: "serve"'],
    [['--cluster', 'not a url'], 'invalid value "not a url" for flag --cluster: not a URL like nats://host:port'],
  ];
  for (const [argv, message] of cases) {
    const err = await configError(loadOptions(argv));
    t.is(err.code, 'BAD_FLAG', argv.join(' '));
    t.is(err.message, message, argv.join(' '));
  }
});

test('a boolean flag takes a value only after =', async (t) => {
  const file = configFile(t, 'debug: true\n');
  t.false((await run(['-c', file, '-D=false'])).debug);
  t.true((await run(['-D=true'])).debug);
});

// ---------------------------------------------------------------------------------------------
// Flags over the file

test('flags override the config file', async (t) => {
  const file = configFile(
    t,
    [
      'server_name: from-file',
      'host: 10.0.0.1',
      'port: 4300',
      'workers: 2',
      'http_port: 8300',
      'debug: false',
      'authorization: {user: fileuser, password: filepass, timeout: 3}',
      'cluster:',
      '  name: filecluster',
      '  listen: "10.0.0.1:6300"',
      '  authorization: {user: r, password: rp}',
      '  routes: ["nats://10.0.0.2:6300"]',
      '',
    ].join('\n'),
  );
  const o = await run([
    '-c',
    file,
    '-a',
    '127.0.0.1',
    '-p',
    '4400',
    '-n',
    'from-flag',
    '--workers',
    '5',
    '-m',
    '8400',
    '-D',
    '--user',
    'flaguser',
    '--pass',
    'flagpass',
    '--cluster',
    'nats://127.0.0.1:6400',
    '--cluster_name',
    'flagcluster',
    '--routes',
    'nats://127.0.0.1:6401',
  ]);
  t.is(o.serverName, 'from-flag');
  t.is(o.host, '127.0.0.1');
  t.is(o.port, 4400);
  t.is(o.workers, 5);
  t.is(o.httpPort, 8400);
  t.true(o.debug);
  t.deepEqual(o.authorization, { user: 'flaguser', password: 'flagpass', timeoutMs: 3000 });
  // No userinfo in --cluster drops the file's route credentials, as nats-server does.
  t.deepEqual(o.cluster, {
    name: 'flagcluster',
    host: '127.0.0.1',
    port: 6400,
    routes: ['nats://127.0.0.1:6401'],
    noAdvertise: false,
    connectRetries: 0,
  });
});

test('the file fills what the flags leave alone; flag order does not matter', async (t) => {
  const file = configFile(t, 'port: 4300\nmax_payload: 2KB\ntrace: true\n');
  const o = await run(['-p', '4400', '-c', file]);
  t.is(o.port, 4400);
  t.is(o.maxPayload, 2048);
  t.true(o.trace);
});

test("an empty --cluster turns off the file's cluster", async (t) => {
  const o = await fromYaml(t, 'cluster: {port: 6222, routes: ["nats://127.0.0.1:6223"]}\n', ['--cluster', '']);
  t.is(o.cluster, undefined);
});

// ---------------------------------------------------------------------------------------------
// The examples in config/

const examples = readdirSync(path.join(repoRoot, 'config'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

test('config/ holds the five documented examples', (t) => {
  for (const name of ['single.yaml', 'auth.yaml', 'cluster-a.yaml', 'cluster-b.yaml', 'cluster-c.yaml']) {
    t.true(examples.includes(name), name);
  }
});

for (const name of examples) {
  test(`example config/${name} loads, and still loads with its commented keys enabled`, async (t) => {
    const file = path.join(repoRoot, 'config', name);
    const result = await loadOptions(['-t', '-c', file]);
    t.is(result.kind, 'check');
    // A commented-out `# key: value` line (lower-case key) is an option the reader may enable.
    const text = readFileSync(file, 'utf8');
    const enabled = text.replace(/^(\s*)# (\s*[a-z_]+:(?:\s|$))/gm, '$1$2');
    const commentedKeys = text.match(/^\s*# \s*[a-z_]+:(?:\s|$)/gm) ?? [];
    t.is(enabled === text, commentedKeys.length === 0);
    await t.notThrowsAsync(loadOptions(['-c', configFile(t, enabled, name)]));
  });
}

test('the cluster examples form one 3-server cluster on one machine', async (t) => {
  const ports = [];
  for (const [name, clientPort, routePort] of [
    ['a', 4222, 6222],
    ['b', 4223, 6223],
    ['c', 4224, 6224],
  ] as const) {
    const o = await run(['-c', path.join(repoRoot, 'config', `cluster-${name}.yaml`)]);
    t.is(o.port, clientPort);
    t.is(o.cluster?.port, routePort);
    t.is(o.cluster?.name, 'skein');
    t.deepEqual(o.cluster?.routes, ['nats://127.0.0.1:6222', 'nats://127.0.0.1:6223', 'nats://127.0.0.1:6224']);
    ports.push(o.serverName);
  }
  t.is(new Set(ports).size, 3, 'distinct server names');
});

test('the auth example has a users list with permissions', async (t) => {
  const o = await run(['-c', path.join(repoRoot, 'config', 'auth.yaml')]);
  const users = o.authorization?.users ?? [];
  t.deepEqual(
    users.map((u) => u.user),
    ['admin', 'alice', 'monitor', 'guest'],
  );
  t.deepEqual(users[1].permissions, {
    publish: { allow: ['orders.>', '_INBOX.>'] },
    subscribe: { allow: ['orders.*', '_INBOX.>', 'billing.> workers'], deny: ['orders.secret'] },
  });
  t.deepEqual(users[3].permissions, { publish: { allow: ['_INBOX.>'] }, subscribe: { allow: ['_INBOX.>'] } });
});

// ---------------------------------------------------------------------------------------------
// Values: durations, sizes, listen, booleans, aliases

test('durations: numbers are seconds, strings are Go durations', async (t) => {
  const cases: [string, number][] = [
    ['5', 5000],
    ['0.5', 500],
    ['"2m"', 120_000],
    ['10s', 10_000],
    ['"500ms"', 500],
    ['1h', 3_600_000],
    ['"1m30s"', 90_000],
    ['1.5s', 1500],
    ['"250us"', 0.25],
  ];
  for (const [yaml, ms] of cases) {
    const o = await fromYaml(t, `ping_interval: ${yaml}\nwrite_deadline: ${yaml}\n`);
    t.is(o.pingIntervalMs, ms, yaml);
    t.is(o.writeDeadlineMs, ms, yaml);
  }
  const auth = await fromYaml(t, 'authorization: {user: a, password: b, timeout: 0.5}\n');
  t.is(auth.authorization?.timeoutMs, 500);
});

test("parseGoDuration matches Go's time.ParseDuration, messages included", (t) => {
  t.is(parseGoDuration('0'), 0);
  t.is(parseGoDuration('-1.5h'), -5_400_000);
  t.is(parseGoDuration('.5s'), 500);
  t.is(parseGoDuration('1h2m3s4ms'), 3_723_004);
  t.throws(() => parseGoDuration('5x'), { message: 'time: unknown unit "x" in duration "5x"' });
  t.throws(() => parseGoDuration('5'), { message: 'time: missing unit in duration "5"' });
  t.throws(() => parseGoDuration(''), { message: 'time: invalid duration ""' });
  t.throws(() => parseGoDuration('s'), { message: 'time: invalid duration "s"' });
});

test('sizes: numbers are bytes; K/M/G are powers of 1000 and KB/MB/GB of 1024, as in nats-server', async (t) => {
  const cases: [string, number][] = [
    ['1024', 1024],
    ['"1MB"', 1048576],
    ['64KB', 65536],
    ['1M', 1_000_000],
    ['2K', 2000],
    ['1mib', 1048576],
    ['"4 kb"', 4096],
    ['2ki', 2048],
  ];
  for (const [yaml, bytes] of cases) {
    const o = await fromYaml(t, `max_payload: ${yaml}\nmax_control_line: ${yaml}\nmax_pending: 1GB\n`);
    t.is(o.maxPayload, bytes, yaml);
    t.is(o.maxControlLine, bytes, yaml);
    t.is(o.maxPending, 1024 ** 3);
  }
  t.is(parseSize('1G'), 1e9);
  t.is(parseSize('12QB'), undefined);
});

test('listen takes "host:port", "[v6]:port" or a port, at top level and in cluster and gateway', async (t) => {
  const o = await fromYaml(
    t,
    [
      'listen: "127.0.0.1:4333"',
      'http: "127.0.0.1:8333"',
      'cluster: {listen: "[::1]:6333", name: c}',
      'gateway: {listen: 7333, name: c}',
      '',
    ].join('\n'),
  );
  t.is(o.host, '127.0.0.1');
  t.is(o.port, 4333);
  t.is(o.httpHost, '127.0.0.1');
  t.is(o.httpPort, 8333);
  t.is(o.cluster?.host, '::1');
  t.is(o.cluster?.port, 6333);
  t.is(o.gateway?.host, '0.0.0.0');
  t.is(o.gateway?.port, 7333);
});

test('keys are case-insensitive and nats-server aliases are accepted', async (t) => {
  const o = await fromYaml(
    t,
    [
      'NET: 127.0.0.9',
      'Max_Conn: 10',
      'max_subs: 7',
      'monitor_port: 8999',
      'pidfile: /tmp/p.pid',
      'authorization: {username: u, pass: p}',
      'debug: yes',
      'trace: on',
      '',
    ].join('\n'),
  );
  t.is(o.host, '127.0.0.9');
  t.is(o.maxConnections, 10);
  t.is(o.maxSubscriptions, 7);
  t.is(o.httpPort, 8999);
  t.is(o.pidFile, '/tmp/p.pid');
  t.deepEqual(o.authorization, { user: 'u', password: 'p', timeoutMs: 2000 });
  t.true(o.debug);
  t.true(o.trace);
});

test('every documented top-level key is read into Options', async (t) => {
  const o = await fromYaml(
    t,
    [
      'server_name: s1',
      'host: 127.0.0.1',
      'port: 4555',
      'workers: 3',
      'max_payload: 4096',
      'max_control_line: 1024',
      'max_pending: 1MB',
      'max_connections: 100',
      'max_subscriptions: 50',
      'ping_interval: 30s',
      'ping_max: 5',
      'write_deadline: 2s',
      'http_port: 8555',
      'debug: true',
      'trace: true',
      'pid_file: /tmp/s1.pid',
      'lame_duck_duration: 45s',
      'lame_duck_grace_period: 5s',
      'client_advertise: "example.com:4555"',
      '',
    ].join('\n'),
  );
  t.like(o, {
    serverName: 's1',
    host: '127.0.0.1',
    port: 4555,
    workers: 3,
    maxPayload: 4096,
    maxControlLine: 1024,
    maxPending: 1048576,
    maxConnections: 100,
    maxSubscriptions: 50,
    pingIntervalMs: 30_000,
    pingMax: 5,
    writeDeadlineMs: 2000,
    httpPort: 8555,
    debug: true,
    trace: true,
    pidFile: '/tmp/s1.pid',
    lameDuckDurationMs: 45_000,
    lameDuckGracePeriodMs: 5000,
    clientAdvertise: 'example.com:4555',
  });
});

test('cluster and gateway blocks are read in full', async (t) => {
  const o = await fromYaml(
    t,
    [
      'cluster:',
      '  host: 127.0.0.1',
      '  port: 6222',
      '  authorization: {user: ruser, password: rpass, timeout: 0.5}',
      '  routes:',
      '    - nats-route://ruser:rpass@127.0.0.1:6223',
      '    - " nats://127.0.0.1:6224 "',
      '    - nats://127.0.0.1:6224',
      '  no_advertise: true',
      '  connect_retries: 3',
      'gateway:',
      '  name: A',
      '  port: 7222',
      '  authorization: {user: gu, password: gp}',
      '  gateways:',
      '    - {name: B, urls: ["nats://127.0.0.1:7223"]}',
      '    - {name: C, url: "nats://127.0.0.1:7224"}',
      '',
    ].join('\n'),
  );
  t.deepEqual(o.cluster, {
    name: 'A', // a gateway's name is the cluster name
    host: '127.0.0.1',
    port: 6222,
    authorization: { user: 'ruser', password: 'rpass', timeoutMs: 500 },
    routes: ['nats-route://ruser:rpass@127.0.0.1:6223', 'nats://127.0.0.1:6224'],
    noAdvertise: true,
    connectRetries: 3,
  });
  t.deepEqual(o.gateway, {
    name: 'A',
    host: '0.0.0.0',
    port: 7222,
    authorization: { user: 'gu', password: 'gp', timeoutMs: 2000 },
    authTimeoutMs: 2000,
    gateways: [
      { name: 'B', urls: ['nats://127.0.0.1:7223'] },
      { name: 'C', urls: ['nats://127.0.0.1:7224'] },
    ],
  });
});

test('a cluster block without a port does not listen for routes', async (t) => {
  const o = await fromYaml(t, 'cluster: {name: lonely}\n');
  t.is(o.cluster, undefined);
});

// ---------------------------------------------------------------------------------------------
// Permissions

test('permissions given as a subject, a list or {allow, deny} all become {allow?, deny?}', async (t) => {
  const o = await fromYaml(
    t,
    [
      'authorization:',
      '  users:',
      '    - {user: one, password: x, permissions: {publish: "a.>", subscribe: ["b.*", "c"]}}',
      '    - user: two',
      '      password: x',
      '      permissions:',
      '        publish: {allow: "d", deny: ["d.secret", "e.>"]}',
      '        subscribe: {deny: ">"}',
      '    - {user: three, password: x, permissions: {pub: "f", sub: {allow: ["g q1"]}}}',
      '    - {user: four, password: x, permissions: {publish: {}}}',
      '    - {user: five}',
      '',
    ].join('\n'),
  );
  const users = o.authorization?.users ?? [];
  t.deepEqual(users[0], { user: 'one', password: 'x', permissions: { publish: { allow: ['a.>'] }, subscribe: { allow: ['b.*', 'c'] } } });
  t.deepEqual(users[1].permissions, { publish: { allow: ['d'], deny: ['d.secret', 'e.>'] }, subscribe: { deny: ['>'] } });
  t.deepEqual(users[2].permissions, { publish: { allow: ['f'] }, subscribe: { allow: ['g q1'] } });
  t.deepEqual(users[3], { user: 'four', password: 'x' }); // an empty map is no permission (nats-server)
  t.deepEqual(users[4], { user: 'five', password: '' });
});

test('default_permissions apply to users without their own', async (t) => {
  const o = await fromYaml(
    t,
    [
      'authorization:',
      '  default_permissions: {publish: "pub.>"}',
      '  users: [{user: a, password: x}, {user: b, password: y, permissions: {subscribe: "s"}}]',
      '',
    ].join('\n'),
  );
  t.deepEqual(o.authorization?.users?.[0].permissions, { publish: { allow: ['pub.>'] } });
  t.deepEqual(o.authorization?.users?.[1].permissions, { subscribe: { allow: ['s'] } });
});

// ---------------------------------------------------------------------------------------------
// Errors

test('an unknown key names the key, the file and the line like nats-server', async (t) => {
  const file = configFile(t, 'port: 4222\nmax_payload: 2KB\nfoo: 1\n');
  const err = await configError(loadOptions(['-c', file]));
  t.is(err.code, 'UNKNOWN_KEY');
  t.is(err.message, `${file}:3:1: unknown field "foo"`);
  t.deepEqual(err.position, { file, line: 3, col: 1 });

  const nested = configFile(t, 'cluster:\n  port: 6222\n  bogus_key: 1\n');
  const err2 = await configError(loadOptions(['-c', nested]));
  t.is(err2.message, `${nested}:3:3: unknown field "bogus_key"`);
});

test('a nats-server key skein does not implement says so', async (t) => {
  const file = configFile(t, 'port: 4222\njetstream: {}\n');
  const err = await configError(loadOptions(['-c', file]));
  t.is(err.code, 'UNSUPPORTED');
  t.is(err.message, `${file}:2:1: field "jetstream" is not supported by skein`);
});

test('bad values name the key, the file and the line', async (t) => {
  const cases: [string, string, string][] = [
    ['port: 1\nmax_payload: -5\n', '2:14', 'max_payload must be a positive integer (bytes), got -5'],
    ['max_payload: 0\n', '1:14', 'max_payload must be a positive integer (bytes), got 0'],
    ['max_payload: "12QB"\n', '1:14', 'max_payload must be a size in bytes (a number, or a string like "64KB", "1MB", "1M"), got "12QB"'],
    ['max_payload: 3GB\nmax_pending: 4GB\n', '1:14', 'max_payload value is too big'],
    ['workers: 0\n', '1:10', 'workers must be an integer >= 1, got 0'],
    ['workers: 1.5\n', '1:10', 'workers must be an integer >= 1, got 1.5'],
    ['port: 70000\n', '1:7', 'port must be an integer between -1 and 65535, got 70000'],
    ['port: "4222"\n', '1:7', 'port must be an integer between -1 and 65535, got "4222"'],
    ['ping_interval: "5x"\n', '1:16', 'error parsing ping_interval: time: unknown unit "x" in duration "5x"'],
    ['write_deadline: -1\n', '1:17', 'write_deadline must be a positive duration, got -1'],
    ['debug: maybe\n', '1:8', 'debug must be a boolean (true or false), got "maybe"'],
    ['server_name: 12\n', '1:14', 'server_name must be a string, got 12 (quote it)'],
    ['listen: "nohost"\n', '1:9', 'could not parse address string "nohost"'],
    ['cluster:\n  port: 6222\n  routes: ["nats://h"]\n', '3:12', 'error parsing route url ["nats://h"]: no port'],
    ['cluster: 6222\n', '1:10', 'cluster must be a map, got 6222'],
    ['authorization:\n  users: [{password: x}]\n', '2:11', 'User entry requires a user'],
    ['authorization:\n  users: [{user: a, permissions: {publish: "a..b"}}]\n', '2:44', 'subject "a..b" is not a valid subject'],
    ['authorization:\n  users: [{user: a, permissions: {publ: "a"}}]\n', '2:35', 'Unknown field "publ" parsing permissions'],
    [
      'authorization:\n  users: [{user: a, permissions: {publish: {allw: "a"}}}]\n',
      '2:45',
      "Unknown field name \"allw\" parsing subject permissions, only 'allow' or 'deny' are permitted",
    ],
    ['lame_duck_duration: 10s\n', '1:21', 'invalid lame_duck_duration of 10s, minimum is 30 seconds'],
  ];
  for (const [yaml, at, reason] of cases) {
    const file = configFile(t, yaml);
    const err = await configError(loadOptions(['-c', file]));
    t.is(err.message, `${file}:${at}: ${reason}`, yaml);
  }
});

test('every problem in a file is reported at once', async (t) => {
  const file = configFile(t, 'foo: 1\nport: x\nbar: 2\ncluster: {port: 6222, zed: 1}\n');
  const err = await configError(loadOptions(['-c', file]));
  t.deepEqual(
    err.problems.map((p) => p.message),
    [
      `${file}:1:1: unknown field "foo"`,
      `${file}:2:7: port must be an integer between -1 and 65535, got "x"`,
      `${file}:3:1: unknown field "bar"`,
      `${file}:4:23: unknown field "zed"`,
    ],
  );
  t.is(err.message, err.problems.map((p) => p.message).join('\n'));
});

test("cross-field rules use nats-server's wording", async (t) => {
  const cases: [string, string, string][] = [
    ['max_payload: 2MB\nmax_pending: 1MB\n', '1:1', 'max_payload (2097152) cannot be higher than max_pending (1048576)'],
    [
      'authorization: {user: a, password: b, users: [{user: c, password: d}]}\n',
      '1:1',
      'Can not have a single user/pass and a users array',
    ],
    ['authorization: {token: t, users: [{user: c, password: d}]}\n', '1:1', 'Can not have a token and a users array'],
    ['authorization: {user: a, password: b, token: t}\n', '1:1', 'Cannot have a user/pass and token'],
    ['authorization:\n  users: [{user: c, password: d}, {user: c, password: e}]\n', '1:1', 'Duplicate user "c" detected'],
    ['cluster:\n  port: 6222\n  authorization: {token: t}\n', '3:19', 'Cluster authorization does not support tokens'],
    ['cluster:\n  port: 6222\n  authorization:\n    users: []\n', '4:5', 'Cluster authorization does not allow multiple users'],
    ['gateway: {name: A, authorization: {token: t}}\n', '1:36', 'Gateway authorization does not support tokens'],
    ['gateway: {port: 7222}\n', '1:1', 'gateway has no name'],
    ['gateway: {name: A}\n', '1:1', 'gateway "A" has no port specified (select -1 for random port)'],
    ['gateway: {name: A, port: -1, gateways: [{urls: ["nats://h:1"]}]}\n', '1:41', 'gateway in the list 0 has no name'],
    ['gateway: {name: A, port: -1, gateways: [{name: B}]}\n', '1:41', 'gateway "B" has no URL'],
    [
      'cluster: {name: C, port: 6222}\ngateway: {name: A, port: 7222}\n',
      '1:11',
      'cluster name conflicts between cluster and gateway definitions',
    ],
    [
      'lame_duck_duration: 30s\nlame_duck_grace_period: 30s\n',
      '2:1',
      'lame duck grace period (30s) should be strictly lower than lame duck duration (30s)',
    ],
    [
      'cluster: {routes: ["nats://h:1"]}\n',
      '1:11',
      'cluster routes require a cluster port (set cluster.port or cluster.listen, or --cluster)',
    ],
  ];
  for (const [yaml, at, reason] of cases) {
    const file = configFile(t, yaml);
    const err = await configError(loadOptions(['-c', file]));
    t.is(err.message, `${file}:${at}: ${reason}`, yaml);
    t.true(err.code === 'CONFLICT' || err.code === 'BAD_VALUE', yaml);
  }
});

test('a cross-field conflict made by a flag is still caught', async (t) => {
  const file = configFile(t, 'authorization: {users: [{user: c, password: d}]}\n');
  const err = await configError(loadOptions(['-c', file, '--user', 'x', '--pass', 'y']));
  t.is(err.code, 'CONFLICT');
  t.regex(err.message, /Can not have a single user\/pass and a users array$/);
  const pay = await configError(loadOptions(['-c', configFile(t, 'max_payload: 100MB\n')]));
  t.is(pay.message.split(': ').slice(1).join(': '), 'max_payload (104857600) cannot be higher than max_pending (67108864)');
});

test('a missing or unreadable config file is an error naming the file', async (t) => {
  const missing = path.join(os.tmpdir(), `skein-no-such-config-${process.pid}.yaml`);
  const err = await configError(loadOptions(['-c', missing]));
  t.is(err.code, 'FILE');
  t.is(err.message, `cannot read config file ${missing}: no such file or directory`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-config-dir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const err2 = await configError(loadOptions(['--config', dir]));
  t.is(err2.code, 'FILE');
  t.true(err2.message.includes(dir));
});

test('YAML syntax errors point at the line', async (t) => {
  const file = configFile(t, 'port: 4222\nport: 4223\n');
  const err = await configError(loadOptions(['-c', file]));
  t.is(err.code, 'SYNTAX');
  t.is(err.message, `${file}:2:1: Map keys must be unique`);
});

// ---------------------------------------------------------------------------------------------
// -t, -h, -v

test('-t with a config file returns the checked options', async (t) => {
  const file = configFile(t, 'port: 4999\n');
  const result = await loadOptions(['-t', '-c', file]);
  t.is(result.kind, 'check');
  if (result.kind === 'check') t.is(result.options.port, 4999);
});

test("-t without a config file is refused with nats-server's message", async (t) => {
  const err = await configError(loadOptions(['-t']));
  t.is(err.message, 'must specify [-c, --config] option to check configuration file syntax');
});

test('-t reports a bad config file as an error', async (t) => {
  const file = configFile(t, 'nope: 1\n');
  const err = await configError(loadOptions(['-t', '-c', file]));
  t.is(err.code, 'UNKNOWN_KEY');
});

test('-h, --help and `help` return the usage text', async (t) => {
  for (const argv of [['-h'], ['--help'], ['help'], ['-p', '4222', '-h']]) {
    const result = await loadOptions(argv);
    t.is(result.kind, 'help', argv.join(' '));
    if (result.kind === 'help') {
      t.true(result.text.includes('Usage: skein [options]'));
      for (const flag of ['--config', '--port', '--workers', '--cluster_name', '--routes', '-DV', '--http_port']) {
        t.true(result.text.includes(flag), flag);
      }
    }
  }
});

test('-h wins over a missing config file (help is decided before the file is read)', async (t) => {
  const result = await loadOptions(['-c', '/nonexistent/skein.yaml', '-h']);
  t.is(result.kind, 'help');
});

test('-v, --version and `version` print the package version', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  for (const argv of [['-v'], ['--version'], ['version']]) {
    t.deepEqual(await loadOptions(argv), { kind: 'version', text: `skein: v${pkg.version}` }, argv.join(' '));
  }
});

// nats-server 2.9.10's config keys, read off server/opts.go (processConfigFileLine and the
// block parsers). Each must be either read or refused as not supported, never "unknown".
const NATS_SERVER_2_9_10_KEYS: Record<string, { wrap: (line: string) => string; keys: string[] }> = {
  top: {
    wrap: (l) => l,
    keys: [
      'listen',
      'client_advertise',
      'port',
      'server_name',
      'host',
      'net',
      'debug',
      'trace',
      'trace_verbose',
      'logtime',
      'mappings',
      'maps',
      'disable_sublist_cache',
      'no_sublist_cache',
      'accounts',
      'authorization',
      'http',
      'https',
      'http_port',
      'monitor_port',
      'https_port',
      'http_base_path',
      'cluster',
      'gateway',
      'leaf',
      'leafnodes',
      'store_dir',
      'storedir',
      'jetstream',
      'logfile',
      'log_file',
      'logfile_size_limit',
      'log_size_limit',
      'syslog',
      'remote_syslog',
      'pidfile',
      'pid_file',
      'ports_file_dir',
      'prof_port',
      'max_control_line',
      'max_payload',
      'max_pending',
      'max_connections',
      'max_conn',
      'max_traced_msg_len',
      'max_subscriptions',
      'max_subs',
      'max_sub_tokens',
      'max_subscription_tokens',
      'ping_interval',
      'ping_max',
      'tls',
      'ocsp',
      'allow_non_tls',
      'write_deadline',
      'lame_duck_duration',
      'lame_duck_grace_period',
      'operator',
      'operators',
      'roots',
      'root',
      'root_operators',
      'root_operator',
      'resolver',
      'account_resolver',
      'accounts_resolver',
      'resolver_tls',
      'resolver_preload',
      'resolver_pinned_accounts',
      'no_auth_user',
      'system_account',
      'system',
      'no_system_account',
      'no_system',
      'no_sys_acc',
      'no_header_support',
      'trusted',
      'trusted_keys',
      'connect_error_reports',
      'reconnect_error_reports',
      'websocket',
      'ws',
      'mqtt',
      'server_tags',
      'default_js_domain',
    ],
  },
  cluster: {
    wrap: (l) => `cluster:\n  port: 6222\n  ${l}`,
    keys: [
      'name',
      'listen',
      'port',
      'host',
      'net',
      'authorization',
      'routes',
      'tls',
      'cluster_advertise',
      'advertise',
      'no_advertise',
      'connect_retries',
      'permissions',
    ],
  },
  gateway: {
    wrap: (l) => `gateway:\n  name: g\n  ${l}`,
    keys: [
      'name',
      'listen',
      'port',
      'host',
      'net',
      'authorization',
      'tls',
      'advertise',
      'connect_retries',
      'gateways',
      'reject_unknown',
      'reject_unknown_cluster',
    ],
  },
  remoteGateway: {
    wrap: (l) => `gateway:\n  name: g\n  port: 7222\n  gateways:\n    - name: h\n      ${l}`,
    keys: ['name', 'tls', 'url', 'urls'],
  },
  authorization: {
    wrap: (l) => `authorization:\n  ${l}`,
    keys: ['user', 'username', 'pass', 'password', 'token', 'timeout', 'users', 'default_permission', 'default_permissions', 'permissions'],
  },
  user: {
    wrap: (l) => `authorization:\n  users:\n    - user: a\n      ${l}`,
    keys: [
      'allowed_connection_types',
      'authorization',
      'clients',
      'connection_types',
      'nkey',
      'pass',
      'password',
      'permission',
      'permissions',
      'user',
      'username',
    ],
  },
  permissions: {
    wrap: (l) => `authorization:\n  users:\n    - user: a\n      permissions:\n        ${l}`,
    keys: ['publish', 'pub', 'import', 'subscribe', 'sub', 'export', 'allow_responses', 'publish_allow_responses'],
  },
  routeAuthorization: {
    wrap: (l) => `cluster:\n  port: 6222\n  authorization:\n    ${l}`,
    keys: ['user', 'username', 'pass', 'password', 'token', 'timeout'],
  },
};

test('every nats-server 2.9.10 config key is either read or refused as not supported, by name', (t) => {
  for (const [block, { wrap, keys }] of Object.entries(NATS_SERVER_2_9_10_KEYS)) {
    for (const key of keys) {
      for (const value of ['1', '{}']) {
        const text = `${wrap(`${key}: ${value}`)}\n`;
        let err: ConfigError | undefined;
        try {
          parseConfigText(text, 'x.yaml', defaultOptions());
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
      }
    }
  }
});

test('server_tags is refused as not supported, naming the key, file and line', (t) => {
  const err = t.throws<ConfigError>(() => parseConfigText('port: 4222\nserver_tags: ["az:1"]\n', 'x.yaml', defaultOptions()));
  t.is(err.code, 'UNSUPPORTED');
  t.is(err.message, 'x.yaml:2:1: field "server_tags" is not supported by skein');
});
