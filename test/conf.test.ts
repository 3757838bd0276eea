// nats-server's .conf format as a config file: the grammar (src/config/conf.ts), one set of key
// checks shared with the YAML front end, error positions, include and variables, format
// choice, agreement with `nats-server -t`, and the official Helm chart's rendering.

import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConf, type ConfNode } from '../src/config/conf.ts';
import { ConfigError, type Options } from '../src/config/options.ts';
import { loadOptions } from '../src/config/load.ts';
import { rawSession } from './helpers/raw.ts';
import { repoRoot, useServer } from './helpers/server.ts';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-conf-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

/** The tree as plain JS, positions dropped. */
function plain(n: ConfNode): unknown {
  switch (n.kind) {
    case 'scalar':
      return n.value;
    case 'list':
      return n.items.map(plain);
    case 'map':
      return Object.fromEntries(n.entries.map((e) => [e.key, plain(e.value)]));
  }
}

const parse = (text: string, env: Record<string, string> = {}): unknown =>
  plain(
    parseConf(text, '/virtual/x.conf', {
      env,
      readFile: () => {
        throw new Error('no includes here');
      },
    }),
  );

async function options(argv: string[]): Promise<Options> {
  const r = await loadOptions(argv);
  if (r.kind !== 'run' && r.kind !== 'check') throw new Error(`unexpected ${r.kind}`);
  return r.options;
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
// Grammar

test('key: value, key = value and key value; entries end at a new line, comma or semicolon', (t) => {
  t.deepEqual(parse('a: 1\nb = 2\nc 3\nd: 4, e: 5; f 6\n'), { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 });
  t.deepEqual(parse('a:1\n"b": 2\n\'c\' = 3\n'), { a: 1, b: 2, c: 3 });
  t.deepEqual(parse('a: 1\r\nb: 2\r\n'), { a: 1, b: 2 }, 'CRLF line ends');
  t.deepEqual(parse('a: 1;;\n'), { a: 1 }, 'an empty entry is nothing');
  t.deepEqual(parse('a: 1\na: 2\n'), { a: 2 }, 'a repeated key replaces the earlier one');
});

test('blocks, arrays, comments, and a file wrapped in braces', (t) => {
  const text = [
    '# a comment',
    '// another',
    'outer {',
    '  inner { x: 1, y: [1, "two", three] }   # after a value',
    '  list = [',
    '    a   // after an item',
    '    b,',
    '    {k: v}',
    '  ]',
    '}',
    'empty {}',
    'none: []',
  ].join('\n');
  t.deepEqual(parse(text), {
    outer: { inner: { x: 1, y: [1, 'two', 'three'] }, list: ['a', 'b', { k: 'v' }] },
    empty: {},
    none: [],
  });
  t.deepEqual(parse('{\n  "a": 1,\n  "b": [1, 2,],\n}\n'), { a: 1, b: [1, 2] }, 'JSON-like, trailing commas');
  t.deepEqual(parse('a: x#y\nb: x # y\n'), { a: 'x#y', b: 'x' }, '# inside a bare string is kept');
});

test('strings: double quoted with escapes, single quoted raw, bare, and ( ) blocks', (t) => {
  t.deepEqual(parse('a: "t\\tn\\nq\\"b\\\\x\\x41"\nb: \'raw \\t\'\nc: bare-word\nd: nats://h:1\n'), {
    a: 't\tn\nq"b\\xA',
    b: 'raw \\t',
    c: 'bare-word',
    d: 'nats://h:1',
  });
  // As nats-server: the text between `(` and a line holding only `)`.
  t.deepEqual(parse('a: (\nline one\nline two\n)\n'), { a: '\nline one\nline two' });
  t.deepEqual(parse('a: "yes"\nb: yes\nc: OFF\nd: true\n'), { a: 'yes', b: true, c: false, d: true }, 'bare booleans');
});

test('numbers: sizes as nats-server reads them, floats, dates and addresses', (t) => {
  t.deepEqual(parse('a: 2KB\nb: 2k\nc: 1MiB\nd: 1M\ne: 1gb\nf: -5\ng: 1.5\nh: 0.5\n'), {
    a: 2048,
    b: 2000,
    c: 1048576,
    d: 1000000,
    e: 1073741824,
    f: -5,
    g: 1.5,
    h: 0.5,
  });
  // A bare `2m` is a size (2000000), `10s` a string: the nats-server trap for durations.
  t.deepEqual(parse('a: 2m\nb: 10s\nc: 500ms\nd: 127.0.0.1:4222\ne: 2020-01-02T03:04:05Z\n'), {
    a: 2000000,
    b: '10s',
    c: '500ms',
    d: '127.0.0.1:4222',
    e: '2020-01-02T03:04:05Z',
  });
});

test('syntax errors name the file, the line and the column', (t) => {
  const cases: [string, string][] = [
    ['port: [4222\n', '2:1: Unexpected EOF processing array.'],
    ['a {\n  b: 1\n', '3:1: Unexpected EOF processing map.'],
    ['port: "abc\n', '1:7: Unexpected EOF in a quoted string'],
    ['port: 4222 extra\n', "1:12: Expected a top-level value to end with a new line, comment or EOF, but got 'e' instead."],
    ['a { b: 1 c }\n', "1:10: Expected a map value terminator ',' or a map terminator '}', but got 'c' instead."],
    ['a: [1 2]\n', "1:7: Expected an array value terminator ',' or an array terminator ']', but got '2' instead."],
    ['port:\n', '1:6: Expected value but found new line'],
    ['port\n', '1:1: key "port" has no value'],
    [
      'a: "\\q"\n',
      "1:5: Invalid escape character 'q'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.",
    ],
    ['a: 1.5h\n', "1:7: Expected a top-level value to end with a new line, comment or EOF, but got 'h' instead."],
    ['a: 1kbb\n', "1:4: invalid size suffix in '1kbb'"],
    ['a: 2020-01-02\n', "2:1: Expected 'T' in ISO8601 datetime, but found '\\n' instead."],
    ['a: .5\n', '1:4: Floats must start with a digit'],
    [': 1\n', "1:1: Unexpected key separator ':'"],
    ['a: 99999999999999999999\n', "1:4: integer '99999999999999999999' is out of the range"],
  ];
  for (const [text, expected] of cases) {
    const err = t.throws(() => parseConf(text, '/virtual/x.conf'), { instanceOf: ConfigError }, text);
    t.is(err?.message, `/virtual/x.conf:${expected}`, text);
    t.is((err as ConfigError | undefined)?.code, 'SYNTAX');
  }
});

// ---------------------------------------------------------------------------------------------
// One set of key checks for both formats

test('a .conf file and a YAML file with the same keys give the same Options', async (t) => {
  const dir = tempDir(t);
  const pairs: [string, string][] = [
    [
      'port: 4333\nmax_payload: 64KB\nping_interval: "30s"\ndebug: true\n',
      'port: 4333\nmax_payload: 64KB\nping_interval: 30s\ndebug: true\n',
    ],
    [
      'authorization {\n  users = [\n    {user: a, password: b, permissions: {publish: {allow: ["a.>"], deny: "a.b"}, subscribe: "x"}}\n    {user: c, password: d}\n  ]\n  timeout: 0.5\n}\n',
      'authorization:\n  users:\n    - {user: a, password: b, permissions: {publish: {allow: ["a.>"], deny: "a.b"}, subscribe: "x"}}\n    - {user: c, password: d}\n  timeout: 0.5\n',
    ],
    [
      'cluster {\n  name: c1\n  listen: 127.0.0.1:6222\n  authorization { user: r, password: p }\n  routes = [\n    nats-route://r:p@127.0.0.1:6223\n    nats://127.0.0.1:6224\n  ]\n  no_advertise: true\n  connect_retries: 3\n}\n',
      'cluster:\n  name: c1\n  listen: "127.0.0.1:6222"\n  authorization: {user: r, password: p}\n  routes: ["nats-route://r:p@127.0.0.1:6223", "nats://127.0.0.1:6224"]\n  no_advertise: true\n  connect_retries: 3\n',
    ],
    [
      'lame_duck_duration: "45s"\nlame_duck_grace_period: "5s"\nno_system_account: true\nlog_file: "/tmp/x.log"\nlogtime: false\nports_file_dir: "/tmp"\npid_file: "/tmp/x.pid"\n',
      'lame_duck_duration: 45s\nlame_duck_grace_period: 5s\nno_system_account: true\nlog_file: /tmp/x.log\nlogtime: false\nports_file_dir: /tmp\npid_file: /tmp/x.pid\n',
    ],
  ];
  for (const [conf, yaml] of pairs) {
    const fromConf = await options(['-c', write(dir, 'a.conf', conf)]);
    const fromYaml = await options(['-c', write(dir, 'a.yaml', yaml)]);
    t.deepEqual({ ...fromConf, configFile: undefined }, { ...fromYaml, configFile: undefined }, conf);
  }
});

test("key errors are the YAML front end's, at the .conf positions, all reported at once", async (t) => {
  const dir = tempDir(t);
  const file = write(
    dir,
    'bad.conf',
    [
      'foo: 1',
      'port: "x"',
      'jetstream { max_mem: 1G }',
      'cluster { port: 6222, zed: 1 }',
      'authorization {',
      '  users: [ {user: a, permissions: {publ: "a"}} ]',
      '}',
      'lame_duck_duration: "10s"',
      'no_system_account: false',
    ].join('\n'),
  );
  const err = await configError(loadOptions(['-c', file]));
  t.deepEqual(
    err.problems.map((p) => p.message),
    [
      `${file}:1:1: unknown field "foo"`,
      `${file}:2:7: port must be an integer between -1 and 65535, got "x"`,
      `${file}:3:1: field "jetstream" is not supported by skein`,
      `${file}:4:23: unknown field "zed"`,
      `${file}:6:36: Unknown field "publ" parsing permissions`,
      `${file}:8:21: invalid lame_duck_duration of 10s, minimum is 30 seconds`,
      `${file}:9:20: no_system_account: false is not supported by skein (skein has no system account; remove the key or set it to true)`,
    ],
  );
  const conflict = await configError(loadOptions(['-c', write(dir, 'c.conf', 'authorization { user: a, password: b, token: t }\n')]));
  t.is(conflict.message, `${path.join(dir, 'c.conf')}:1:1: Cannot have a user/pass and token`);
});

test("a bare number of seconds for ping_interval is nats-server's warning: logged on a run, fatal under -t", async (t) => {
  const dir = tempDir(t);
  const file = write(dir, 'w.conf', 'ping_interval: 60\n');
  const run = await loadOptions(['-c', file]);
  t.is(run.kind, 'run');
  if (run.kind === 'run') {
    t.is(run.options.pingIntervalMs, 60_000);
    t.deepEqual(
      run.warnings.map((w) => w.message),
      [`${file}:1:1: invalid use of field "ping_interval": ping_interval should be converted to a duration`],
    );
  }
  const err = await configError(loadOptions(['-t', '-c', file]));
  t.is(err.message, `${file}:1:1: invalid use of field "ping_interval": ping_interval should be converted to a duration`);
  // YAML documents numbers as seconds: no warning there.
  const yaml = await loadOptions(['-t', '-c', write(dir, 'w.yaml', 'ping_interval: 60\n')]);
  t.is(yaml.kind, 'check');
});

// ---------------------------------------------------------------------------------------------
// include and variables

test('include reads a file relative to the including file, where the include stands', async (t) => {
  const dir = tempDir(t);
  write(dir, 'conf.d/auth.conf', 'authorization {\n  include "users.conf"\n}\n');
  write(dir, 'conf.d/users.conf', 'users: [ {user: a, password: b} ]\n');
  write(dir, 'conf.d/limits.conf', "max_payload: 2KB\ninclude '../more/ping.conf'\n");
  write(dir, 'more/ping.conf', 'ping_max: 5\n');
  const main = write(dir, 'main.conf', 'port: 4333\ninclude conf.d/auth.conf\ninclude ./conf.d/limits.conf\n');
  const o = await options(['-c', main]);
  t.is(o.port, 4333);
  t.deepEqual(o.authorization?.users, [{ user: 'a', password: 'b' }]);
  t.is(o.maxPayload, 2048);
  t.is(o.pingMax, 5);
});

test('include errors: a missing file, an error inside the included file, a cycle', async (t) => {
  const dir = tempDir(t);
  const missing = write(dir, 'm.conf', 'port: 1\ninclude nope.conf\n');
  t.is(
    (await configError(loadOptions(['-c', missing]))).message,
    `${missing}:2:1: error parsing include file "nope.conf": open ${path.join(dir, 'nope.conf')}: no such file or directory`,
  );
  const inner = write(dir, 'inner.conf', 'debug: true\nfoo: 1\n');
  const outer = write(dir, 'outer.conf', 'include inner.conf\n');
  t.is((await configError(loadOptions(['-c', outer]))).message, `${inner}:2:1: unknown field "foo"`);
  const badSyntax = write(dir, 'syntax.conf', 'a {\n');
  const outer2 = write(dir, 'outer2.conf', 'include syntax.conf\n');
  t.is((await configError(loadOptions(['-c', outer2]))).message, `${badSyntax}:2:1: Unexpected EOF processing map.`);
  const a = write(dir, 'a.conf', 'include b.conf\n');
  write(dir, 'b.conf', 'include a.conf\n');
  t.regex(
    (await configError(loadOptions(['-c', a]))).message,
    /b\.conf:1:1: error parsing include file "a\.conf": include cycle: .*a\.conf -> .*b\.conf -> .*a\.conf$/,
  );
});

test('variables: defined earlier in an enclosing block, else from the environment', (t) => {
  t.deepEqual(parse('P: 4222\nport: $P\nauth { U: bob\n  user: $U\n  inner { x: $P } }\n'), {
    P: 4222,
    port: 4222,
    auth: { U: 'bob', user: 'bob', inner: { x: 4222 } },
  });
  // An environment value is read as a .conf value: a number stays a number.
  t.deepEqual(parse('port: $PORT\nname: $NAME\nlist: $LIST\n', { PORT: '4333', NAME: 'n-1', LIST: '[a, b]' }), {
    port: 4333,
    name: 'n-1',
    list: ['a', 'b'],
  });
  // A file variable wins over the environment; a bcrypt hash is not a variable.
  t.deepEqual(parse('X: file\na: $X\nb: $2a$11$abcdef\n', { X: 'env' }), { X: 'file', a: 'file', b: '$2a$11$abcdef' });
  t.throws(() => parse('a: $LATER\nLATER: 1\n'), {
    message: "/virtual/x.conf:1:4: variable reference for 'LATER' on line 1 can not be found",
  });
  t.throws(() => parse('a { X: 1 }\nb: $X\n'), { message: "/virtual/x.conf:2:4: variable reference for 'X' on line 2 can not be found" });
});

test('a key used only as a variable is not an unknown field; an unused one is', async (t) => {
  const dir = tempDir(t);
  const o = await options(['-c', write(dir, 'v.conf', 'PASS: s3cret\nauthorization { LOCAL: u1\n  user: $LOCAL, password: $PASS }\n')]);
  t.deepEqual(o.authorization && { user: o.authorization.user, password: o.authorization.password }, { user: 'u1', password: 's3cret' });
  const file = write(dir, 'u.conf', 'UNUSED: 1\nport: 4333\n');
  t.is((await configError(loadOptions(['-c', file]))).message, `${file}:1:1: unknown field "UNUSED"`);
});

test('a value from a variable is checked where it is used', async (t) => {
  const dir = tempDir(t);
  const file = write(dir, 'v.conf', 'P: "abc"\nport: $P\n');
  t.is((await configError(loadOptions(['-c', file]))).message, `${file}:2:7: port must be an integer between -1 and 65535, got "abc"`);
});

// ---------------------------------------------------------------------------------------------
// Format choice

test(".conf is nats-server's format, .yaml/.yml YAML; another name is .conf if it parses as one, else YAML", async (t) => {
  const dir = tempDir(t);
  t.is((await options(['-c', write(dir, 'server', 'port 4333\nauthorization { token: t }\n')])).port, 4333);
  t.is((await options(['-c', write(dir, 'server2', 'port: 4334\ncluster:\n  port: 6222\n')])).port, 4334);
  t.is((await options(['-c', write(dir, 'nats-server.cfg', 'port = 4335\n')])).port, 4335);
  // The extension decides: YAML syntax in a .conf file is a .conf error.
  const yamlInConf = write(dir, 'x.conf', 'cluster:\n  port: 6222\n');
  t.is((await configError(loadOptions(['-c', yamlInConf]))).message, `${yamlInConf}:1:9: Expected value but found new line`);
  const neither = write(dir, 'neither', 'a: [\n');
  const err = await configError(loadOptions(['-c', neither]));
  t.true(err.problems.length >= 2);
  t.regex(err.problems[0].message, /neither:2:1: not a \.conf file: Unexpected EOF processing array\./);
  t.regex(err.problems.at(-1)!.message, /neither:\d+:\d+: not YAML either: /);
});

// ---------------------------------------------------------------------------------------------
// Against nats-server

// Both accept or both refuse (`-t`). Left out on purpose: files where skein is stricter (a
// negative max_payload, max_payload above max_pending, a key with no value at the end).
const AGREEMENT: string[] = [
  'port 4222',
  'port = 4222; debug = true',
  'port: 4222, debug: true',
  'max_payload: 2KB',
  'max_connections: 1M',
  'ping_interval: "2m"',
  'ping_interval: 10s',
  'ping_interval: 60',
  'listen: 127.0.0.1:4222',
  'listen: localhost:4222',
  'server_name: "tab\\there"',
  'debug: yes',
  'authorization { user: a, password: b }',
  'authorization {\n  user = a\n  password = b   # comment\n  // another\n}',
  'authorization { users = [\n  {user: a, password: b}\n  {user: c, password: d}\n] }',
  'authorization { token: abc, user: a, password: b }',
  'cluster {\n  listen: 127.0.0.1:6222\n  routes = [\n    nats://127.0.0.1:6223\n    nats://127.0.0.1:6224\n  ]\n}',
  'cluster {\n  name: c1\n  port: 6222\n  authorization { user: r, password: p, timeout: 0.5 }\n  no_advertise: true\n  connect_retries: 3\n}',
  'foo: 1',
  'port: [4222',
  'port: "abc',
  'port: {',
  'authorization { user: a',
  'max_payload: 1.5',
  'ping_interval: 1.5h',
  'A: 4222\nport: $A',
  'port: $A\nA: 4222',
  'authorization { PW: x, user: u, password: $PW }',
  'port: 4222 extra',
  '"port": 4222',
  "'port' = 4222",
  'port:4222',
  'port:',
  'lame_duck_duration: "29s"',
  'lame_duck_duration: "30s"',
  'lame_duck_grace_period: "-1s"',
  'no_system_account: true',
  'logtime: false',
  'log_file: "/tmp/skein-x.log"',
  'ports_file_dir: "/tmp"',
  '{ port: 4222 }',
  '{\n "port": 4222,\n "debug": true,\n}',
  'port: 4222 // c',
  'server_name: a#b',
  'include ./nope.conf',
  'port: 4222;;',
  'server_name: (\nmulti\nline\n)',
  'max_payload: 0x10',
  'server_name: 2020-01-01',
];

test('skein -t and nats-server -t accept and refuse the same .conf files', async (t) => {
  const dir = tempDir(t);
  const disagree: string[] = [];
  for (const [i, text] of AGREEMENT.entries()) {
    const file = write(dir, `c${i}.conf`, `${text}\n`);
    const nats = spawnSync('nats-server', ['-t', '-c', file], { encoding: 'utf8' });
    let skeinOk = true;
    try {
      await loadOptions(['-t', '-c', file]);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      skeinOk = false;
    }
    if ((nats.status === 0) !== skeinOk)
      disagree.push(
        `${JSON.stringify(text)}: nats-server ${nats.status === 0 ? 'accepts' : 'refuses'}, skein ${skeinOk ? 'accepts' : 'refuses'}`,
      );
  }
  t.deepEqual(disagree, []);
});

// ---------------------------------------------------------------------------------------------
// The official Helm chart

const CHART_ENV = { SERVER_NAME: 'nats-0', POD_NAME: 'nats-0', CLUSTER_ADVERTISE: 'nats-0.nats.default.svc.cluster.local' };

for (const chart of ['nats-chart-1.x.conf', 'nats-chart-0.x.conf']) {
  const file = path.join(repoRoot, 'test', 'fixtures', 'helm', chart);

  // Serial: it sets the chart's environment variables in this process for loadOptions.
  test.serial(`the Helm chart's ${chart} passes -t on both servers`, async (t) => {
    const nats = spawnSync('nats-server', ['-t', '-c', file], { encoding: 'utf8', env: { ...process.env, ...CHART_ENV } });
    t.is(nats.status, 0, nats.stderr);
    const saved = { ...process.env };
    Object.assign(process.env, CHART_ENV);
    try {
      const o = await options(['-t', '-c', file]);
      t.is(o.serverName, 'nats-0');
      t.is(o.cluster?.name, 'nats');
      t.is(o.cluster?.routes.length, 3);
      t.is(o.lameDuckDurationMs, 30_000);
      t.is(o.lameDuckGracePeriodMs, 10_000);
      t.is(o.pidFile, '/var/run/nats/nats.pid');
    } finally {
      for (const k of Object.keys(CHART_ENV)) if (saved[k] === undefined) delete process.env[k];
    }
  });

  test(`skein starts with the Helm chart's ${chart} unchanged`, async (t) => {
    t.timeout(60_000);
    const dir = tempDir(t);
    const pidFile = path.join(dir, 'nats.pid');
    // Only what a test on a shared machine must move: ports (random) and the pid file.
    const srv = await useServer(t, {
      impl: 'skein',
      workers: 1,
      env: CHART_ENV,
      args: ['-c', file, '--cluster', 'nats://127.0.0.1:-1', '-m', '-1', '-P', pidFile],
    });
    const { c, info } = await rawSession(srv.port);
    c.close();
    t.is(info.server_name, 'nats-0');
    t.is(info.cluster, 'nats');
    t.is(readFileSync(pidFile, 'utf8'), String(srv.pid));
    t.false(/unknown field|not supported/.test(srv.output()));
  });
}
