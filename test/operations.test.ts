// Operating a running server as nats-server is operated: signals (SIGHUP reload, SIGUSR1 log
// reopen, none of them opening Node's inspector), config reload (what takes effect, what is
// refused with nats-server's message), the log file and its rotation, log timestamps, the pid
// file, the ports file and `--signal`.

import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, Events, type NatsConnection } from 'nats';
import bcrypt from 'bcryptjs';
import { rawConnect, rawSession } from './helpers/raw.ts';
import { repoRoot, startServer, useServer } from './helpers/server.ts';
import { exitOf, listeningPorts, logAfter, signalAndWait, tempDir, useConfServer } from './helpers/ops.ts';
import { TestCluster, meshReady, waitFor } from './helpers/cluster.ts';
import { runningServers } from '../src/config/signal.ts';

const NODE = process.execPath;

/** Whether process `pid` has a handler for signal number `signo` (Linux /proc SigCgt). */
function catches(pid: number, signo: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << BigInt(signo - 1))) !== 0n;
  } catch {
    return false;
  }
}
const MAIN = path.join(repoRoot, 'src', 'main.ts');

/** Runs `skein ...args` (the CLI, not a server) to completion. */
function skeinCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(NODE, [MAIN, ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------------
// Signals

test.serial('SIGHUP and SIGUSR1 leave the server running and serving', async (t) => {
  t.timeout(60_000);
  const { srv } = await useConfServer(t, 'skein', 'debug: true\n');
  await signalAndWait(srv, 'SIGHUP', /\[INF\] Reloaded server configuration/);
  await signalAndWait(srv, 'SIGUSR1', /\[INF\] File log re-open ignored, not a file logger/);
  t.regex(srv.output(), /\[DBG\] Trapped "hangup" signal/);
  t.regex(srv.output(), /\[DBG\] Trapped "user defined signal 1" signal/);
  const { c } = await rawSession(srv.port);
  await c.ping();
  c.close();
  t.false(srv.exited());
});

test.serial('SIGUSR1 never opens the Node.js inspector, not even while the server is starting', async (t) => {
  t.timeout(60_000);
  // Sent at once after spawning: node may still be loading the modules.
  const child = spawn(NODE, [MAIN, '-a', '127.0.0.1', '-p', '-1', '--workers', '1'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d;
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d;
  });
  await new Promise((r) => child.once('spawn', r));
  // As soon as node handles SIGUSR1 at all (before that it would die of it, as any process):
  // at first that is node's own handler, which starts the inspector, until src/main.ts runs.
  await waitFor(() => catches(child.pid!, 10), 30_000, 'node to handle SIGUSR1');
  process.kill(child.pid!, 'SIGUSR1');
  await waitFor(() => /Server is ready/.test(out) || child.exitCode !== null || child.signalCode !== null, 60_000, 'the server to start');
  t.regex(out, /Server is ready/, out);
  // If that SIGUSR1 reached node's handler, the inspector it opened was closed again.
  if (/Debugger listening/.test(out)) t.regex(out, /Closed the Node\.js inspector that a SIGUSR1 opened while skein was starting/);
  const port = Number(/Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  // Once ready, it listens on its client port only, and a SIGUSR1 now changes nothing.
  process.kill(child.pid!, 'SIGUSR1');
  await waitFor(() => /File log re-open ignored/.test(out), 10_000, 'the SIGUSR1 to be handled');
  t.deepEqual(listeningPorts(child.pid!), [port], out);
  t.false(/Debugger listening/.test(out.split('Server is ready')[1]), 'no inspector after start-up');
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
  t.is(child.exitCode, 0);
});

// ---------------------------------------------------------------------------------------------
// Reload

test.serial("reload changes a connected nats client's permissions", async (t) => {
  t.timeout(60_000);
  const users = (alicePublish: string): string =>
    [
      'authorization {',
      '  users = [',
      `    {user: alice, password: a, permissions: {publish: ${alicePublish}}}`,
      '    {user: bob, password: b}',
      '  ]',
      '}',
    ].join('\n');
  const { srv, rewrite } = await useConfServer(t, 'skein', users('"foo.>"'));
  const alice = await connect({ port: srv.port, user: 'alice', pass: 'a' });
  const bob = await connect({ port: srv.port, user: 'bob', pass: 'b' });
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const errors: string[] = [];
  void (async () => {
    for await (const s of alice.status()) if (s.type === Events.Error) errors.push(String(s.data));
  })();
  const got: string[] = [];
  bob.subscribe('>', { callback: (_e, m) => got.push(m.subject) });
  await bob.flush();

  alice.publish('foo.1');
  alice.publish('bar.1'); // denied
  alice.publish('foo.2');
  await waitFor(() => got.includes('foo.2'), 15_000, 'foo.2');
  t.deepEqual(got, ['foo.1', 'foo.2']);
  await waitFor(() => errors.length === 1, 15_000, 'the permissions error');

  rewrite(users('["bar.>"]'));
  await signalAndWait(srv, 'SIGHUP', /Reloaded server configuration/);
  alice.publish('foo.3'); // denied now
  alice.publish('bar.2'); // allowed now
  await waitFor(() => got.includes('bar.2'), 15_000, 'bar.2 after the reload');
  t.deepEqual(got, ['foo.1', 'foo.2', 'bar.2']);
  await waitFor(() => errors.length === 2, 15_000, 'a second permissions error');
  t.false(alice.isClosed());
});

test.serial('reload closes clients the new authorization refuses and removes subscriptions it no longer allows', async (t) => {
  t.timeout(60_000);
  const conf = (users: string): string => `authorization {\n  users = [\n${users}\n  ]\n}\n`;
  // a's password is a bcrypt hash: checked again on the hashing thread (the asynchronous path).
  const hashOf = (password: string): string => bcrypt.hashSync(password, 4).replace(/^\$2b\$/, '$2a$');
  const { srv, rewrite } = await useConfServer(t, 'skein', conf(`{user: a, password: "${hashOf('a')}"}\n{user: b, password: b}`));
  const { c: a } = await rawSession(srv.port, { connect: { user: 'a', pass: 'a' } });
  const { c: b } = await rawSession(srv.port, { connect: { user: 'b', pass: 'b' } });
  t.teardown(() => {
    a.close();
    b.close();
  });
  b.send('SUB secret.x 7\r\nSUB open.x 8\r\n');
  await b.ping();
  rewrite(conf(`{user: a, password: "${hashOf('not a')}"}\n{user: b, password: b, permissions: {subscribe: "open.>"}}`));
  process.kill(srv.pid, 'SIGHUP');
  await a.expect("-ERR 'Authorization Violation'\r\n");
  await a.closed(5000);
  await b.expect(`-ERR 'Permissions Violation for Subscription to "secret.x" (sid "7")'\r\n`);
  await srv.waitForLog(/Removed sub "secret.x" \(sid "7"\) for User "b" - not authorized/);
  // b keeps its allowed subscription and its connection.
  const { c: p } = await rawSession(srv.port, { connect: { user: 'b', pass: 'b' } });
  t.teardown(() => p.close());
  p.send('PUB secret.x 1\r\nx\r\nPUB open.x 1\r\ny\r\n');
  await p.ping();
  await b.expect(/MSG open\.x 8 1\r\ny\r\n/);
  t.false(b.data().includes('MSG secret.x'));
});

test.serial('reload logs each change as nats-server does, and new clients get the new INFO', async (t) => {
  t.timeout(60_000);
  const before = 'port: 4222\n';
  const after =
    'port: 4222\nmax_payload: 4096\nping_interval: "1m"\ndebug: true\nmax_connections: 100\nwrite_deadline: "3s"\nping_max: 5\n';
  const lines: Record<string, string[]> = {};
  for (const impl of ['skein', 'nats-server'] as const) {
    const { srv, rewrite } = await useConfServer(t, impl, before);
    rewrite(after);
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
    const { c, info } = await rawSession(srv.port);
    c.close();
    t.is(info.max_payload, 4096, impl);
  }
  t.deepEqual(lines.skein, lines['nats-server']);
  t.true(lines.skein.includes('Reloaded: max_payload = 4096'));
});

test.serial("a change that cannot be reloaded is refused with nats-server's message, and the server keeps serving", async (t) => {
  t.timeout(90_000);
  const base = 'lame_duck_duration: "2m"\n';
  const changes = [
    'server_name: changed\n',
    'lame_duck_duration: "40s"\n',
    'max_pending: 1MB\n',
    'max_subscriptions: 10\n',
    'cluster { port: 6999 }\n',
  ];
  const messages: Record<string, string[]> = {};
  for (const impl of ['skein', 'nats-server'] as const) {
    const { srv, rewrite } = await useConfServer(t, impl, base);
    messages[impl] = [];
    for (const change of changes) {
      rewrite(change.startsWith('lame_duck') ? change : base + change);
      const m = await signalAndWait(srv, 'SIGHUP', /\[ERR\] Failed to reload server configuration: (.*)/);
      messages[impl].push(m[1]);
      const { c } = await rawSession(srv.port);
      await c.ping();
      c.close();
    }
    // A later good reload still applies.
    rewrite(base + 'max_payload: 2048\n');
    await signalAndWait(srv, 'SIGHUP', /Reloaded server configuration/);
    const { c, info } = await rawSession(srv.port);
    c.close();
    t.is(info.max_payload, 2048, impl);
  }
  t.deepEqual(messages.skein, messages['nats-server']);
  t.deepEqual(messages.skein.slice(0, 2), [
    'config reload not supported for ServerName: old=, new=changed',
    'config reload not supported for LameDuckDuration: old=2m0s, new=40s',
  ]);
});

test.serial('a bad config file on reload is reported with its position; the running options stay', async (t) => {
  t.timeout(60_000);
  const { srv, file, rewrite } = await useConfServer(t, 'skein', 'max_payload: 4096\n');
  rewrite('max_payload: 2048\nnonsense: 1\n');
  const m = await signalAndWait(srv, 'SIGHUP', /\[ERR\] Failed to reload server configuration: (.*)/);
  t.is(m[1], `${file}:2:1: unknown field "nonsense"`);
  rewrite('max_payload: [\n');
  const m2 = await signalAndWait(srv, 'SIGHUP', /\[ERR\] Failed to reload server configuration: (.*)/);
  t.is(m2[1], `${file}:2:1: Unexpected EOF processing array.`);
  const { c, info } = await rawSession(srv.port);
  c.close();
  t.is(info.max_payload, 4096);
});

test.serial("without a config file a reload is refused with nats-server's message", async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl: 'skein', workers: 1 });
  const m = await signalAndWait(srv, 'SIGHUP', /\[ERR\] Failed to reload server configuration: (.*)/);
  t.is(m[1], 'can only reload config when a file is provided using -c or --config');
});

test.serial('max_connections lowered by a reload closes connections over the new limit', async (t) => {
  t.timeout(60_000);
  const { srv, rewrite } = await useConfServer(t, 'skein', 'max_connections: 100\n');
  const clients = await Promise.all([1, 2, 3].map(() => rawSession(srv.port)));
  t.teardown(() => clients.forEach(({ c }) => c.close()));
  rewrite('max_connections: 1\n');
  await signalAndWait(srv, 'SIGHUP', /Closed 2 connections to fall within max_connections/);
  await waitFor(() => clients.filter(({ c }) => c.isClosed()).length === 2, 10_000, 'two connections closed');
  for (const { c } of clients) if (c.isClosed()) t.true(c.data().includes("-ERR 'maximum connections exceeded'\r\n"));
  const survivor = clients.find(({ c }) => !c.isClosed())!;
  await survivor.c.ping();
});

test.serial('reload adds and removes cluster routes', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(t, [{ impl: 'skein', name: 'b' }]);
  const b = cl.nodes[0];
  const dir = tempDir(t);
  const file = path.join(dir, 'a.conf');
  const routeUrl = `nats://127.0.0.1:${b.clusterPort}`;
  const conf = (routes: string[]): string =>
    `cluster {\n  name: ${cl.clusterName}\n  listen: 127.0.0.1:-1\n  routes = [${routes.join(', ')}]\n}\n`;
  fs.writeFileSync(file, conf([]));
  const a = await useServer(t, { impl: 'skein', workers: 1, args: ['-c', file, '-n', 'a'] });
  fs.writeFileSync(file, conf([routeUrl]));
  await signalAndWait(a, 'SIGHUP', /Reloaded: cluster routes/);
  const ncs = await Promise.all([a.port, b.port].map((port) => connect({ port, reconnect: false })));
  t.teardown(() => Promise.all(ncs.map((nc: NatsConnection) => nc.close())));
  await meshReady(ncs);
  fs.writeFileSync(file, conf([]));
  await signalAndWait(a, 'SIGHUP', new RegExp(`Removed route ${routeUrl.replace(/\./g, '\\.')}`));
  await a.waitForLog(/Router connection closed: Route Removed/);
  await b.srv.waitForLog(/Router connection closed/);
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// Log file, timestamps

test.serial('-l logs to a file, from every thread; SIGUSR1 reopens it after rotation', async (t) => {
  t.timeout(90_000);
  const dir = tempDir(t);
  const logFile = path.join(dir, 'skein.log');
  // Nothing on stderr, so the port is read from the log file (the server helper reads stderr).
  const child = spawn(NODE, [MAIN, '-a', '127.0.0.1', '-p', '-1', '--workers', '2', '-l', logFile, '-D'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  const logText = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  await waitFor(() => logText().includes('Server is ready'), 60_000, 'the log file to say the server is ready');
  const port = Number(/Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(logText())?.[1]);
  t.is(stderr, '', 'nothing on stderr');
  fs.renameSync(logFile, `${logFile}.1`);
  process.kill(child.pid!, 'SIGUSR1');
  await waitFor(() => logText().includes('File log re-opened'), 10_000, 'the reopened log');
  // Connections are logged by the worker threads: those reopened the file too.
  const { c, info } = await rawSession(port);
  c.close();
  await waitFor(() => logText().includes(`cid:${info.client_id} - Client connection created`), 10_000, 'a worker line in the new file');
  t.false(fs.readFileSync(`${logFile}.1`, 'utf8').includes('File log re-opened'));
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
  t.is(child.exitCode, 0);
});

test.serial('logtime off (-T=false or logtime: false) leaves the time out of log lines, as nats-server', async (t) => {
  t.timeout(60_000);
  for (const impl of ['skein', 'nats-server'] as const) {
    const srv = await useServer(t, { impl, args: ['-T=false'] });
    await srv.waitForLog(/^\[\d+\] \[INF\] Server is ready$/m);
    t.notRegex(srv.output(), /\d\d:\d\d:\d\d/, impl);
  }
  const { srv } = await useConfServer(t, 'skein', 'logtime: false\n');
  await srv.waitForLog(/^\[\d+\] \[INF\] Server is ready$/m);
  t.notRegex(srv.output(), /\d\d:\d\d:\d\d/);
});

// ---------------------------------------------------------------------------------------------
// pid file, ports file, --signal

test.serial("ports_file_dir gets <name>_<pid>.ports with nats-server's JSON, removed at exit", async (t) => {
  t.timeout(60_000);
  const shapes: Record<string, unknown> = {};
  for (const impl of ['skein', 'nats-server'] as const) {
    const dir = tempDir(t);
    const srv = await startServer({
      impl,
      args: ['--ports_file_dir', dir, '--cluster', 'nats://127.0.0.1:-1', '-m', '-1'],
      workers: impl === 'skein' ? 1 : undefined,
    });
    const file = path.join(dir, `${impl === 'skein' ? 'skein' : 'nats-server'}_${srv.pid}.ports`);
    // nats-server writes the file in place: wait until it is complete.
    const parsed = (): Record<string, string[]> | null => {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string[]>;
      } catch {
        return null;
      }
    };
    await waitFor(() => parsed() !== null, 10_000, `${impl}'s ports file`);
    const ports = parsed()!;
    t.deepEqual(ports.nats, [`nats://127.0.0.1:${srv.port}`], impl);
    t.regex(ports.cluster[0], /^nats:\/\/127\.0\.0\.1:\d+$/, impl);
    t.regex(ports.monitoring[0], /^http:\/\/127\.0\.0\.1:\d+$/, impl);
    shapes[impl] = Object.keys(ports);
    await srv.stop();
    t.false(fs.existsSync(file), `${impl} removes its ports file`);
  }
  t.deepEqual(shapes.skein, shapes['nats-server']);
});

// Go's net.Listen on 0.0.0.0 opens one dual-stack socket: nats-server's default host answers
// on [::1] too, and its ports file lists the IPv6 addresses. Needs IPv6 on the test host.
const hasIpv6Loopback = Object.values(os.networkInterfaces()).some((as) => (as ?? []).some((a) => a.address === '::1'));
(hasIpv6Loopback ? test.serial : test.serial.skip)(
  "the default host listens dual stack as nats-server's: IPv4 and [::1] clients, monitoring, the ports file, the log lines",
  async (t) => {
    t.timeout(60_000);
    const seen: Record<string, unknown> = {};
    for (const impl of ['skein', 'nats-server'] as const) {
      const dir = tempDir(t);
      const srv = await useServer(t, {
        impl,
        args: ['-a', '0.0.0.0', '-m', '-1', '--ports_file_dir', dir, '-D'],
        workers: impl === 'skein' ? 1 : undefined,
      });
      const file = path.join(dir, `${impl === 'skein' ? 'skein' : 'nats-server'}_${srv.pid}.ports`);
      const parsed = (): Record<string, string[]> | null => {
        try {
          return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string[]>;
        } catch {
          return null;
        }
      };
      await waitFor(() => parsed() !== null, 10_000, `${impl}'s ports file`);
      const mon = Number(/Starting http monitor on 0\.0\.0\.0:(\d+)/.exec(srv.output())![1]);
      const v6 = await rawSession(srv.port, { host: '::1' });
      const v4 = await rawSession(srv.port, { host: '127.0.0.1' });
      v6.c.close();
      v4.c.close();
      const health = await fetch(`http://[::1]:${mon}/healthz`);
      const created = await srv.waitForLog(/\[DBG\] (\S*::1\S*) - cid:\d+ - Client connection created/);
      seen[impl] = {
        listening: /Listening for client connections on (\S+):\d+/.exec(srv.output())![1],
        infoHost: v6.info.host,
        clientIps: [v6.info.client_ip, v4.info.client_ip],
        v6Client: created[1].replace(/:\d+$/, ':P'),
        health: health.status,
        ports: Object.fromEntries(Object.entries(parsed()!).map(([k, urls]) => [k, urls.map((u) => u.replace(/:\d+$/, ':P'))])),
      };
    }
    t.deepEqual(seen.skein, seen['nats-server']);
    t.like(seen.skein, { listening: '0.0.0.0', clientIps: ['::1', '127.0.0.1'], v6Client: '[::1]:P', health: 200 });
    t.true((seen.skein as { ports: { nats: string[] } }).ports.nats.includes('nats://[::1]:P'));
  },
);

test.serial("--signal sends nats-server's commands to the pid in a pid file", async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  const pidFile = path.join(dir, 'skein.pid');
  const conf = path.join(dir, 's.conf');
  fs.writeFileSync(conf, 'debug: true\n');
  const srv = await useServer(t, { impl: 'skein', workers: 1, args: ['-c', conf, '-P', pidFile] });
  t.is(fs.readFileSync(pidFile, 'utf8'), String(srv.pid));
  let from = srv.output().length;
  t.is(skeinCli(['--signal', `reload=${pidFile}`]).status, 0);
  await logAfter(srv, from, /Reloaded server configuration/);
  from = srv.output().length;
  t.is(skeinCli(['-sl', `reopen=${srv.pid}`]).status, 0);
  await logAfter(srv, from, /File log re-open ignored/);
  t.is(skeinCli(['--signal', `quit=${pidFile}`]).status, 0);
  t.is(await exitOf(srv), 0);
});

test.serial('without a pid, --signal looks for the process named skein (the server, not a launcher or itself)', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl: 'skein', workers: 1 });
  const found = runningServers();
  t.true(Array.isArray(found) && found.includes(srv.pid), String(found));
  t.false(Array.isArray(found) && found.includes(process.pid));
  t.is(fs.readFileSync(`/proc/${srv.pid}/comm`, 'utf8').trim(), 'skein');
});

test.serial("--signal errors are nats-server's", (t) => {
  const cases: [string, string][] = [
    ['foo=1', 'unknown signal "foo"'],
    ['ldm=abc', 'invalid pid: abc'],
    ['ldm=1=2', 'invalid signal parameters: [2]'],
    ['ldm=999999999', 'no such process'],
  ];
  for (const [arg, expected] of cases) {
    const nats = spawnSync('nats-server', ['--signal', arg], { encoding: 'utf8' });
    const skein = skeinCli(['--signal', arg]);
    t.is(nats.stderr.trim(), `nats-server: ${expected}`, arg);
    t.is(skein.stderr.trim(), `skein: ${expected}`, arg);
    t.is(skein.status, 1, arg);
  }
});

test.serial('syslog flags are refused by name', (t) => {
  const r = skeinCli(['-s']);
  t.is(r.status, 1);
  t.regex(r.stderr, /syslog \(-s, --syslog\) is not supported by skein/);
});

test.serial('a client publishing before the listener closes is not lost to a new connection during reload', async (t) => {
  // Reload must never drop the client listener (only lame duck mode does).
  t.timeout(60_000);
  const { srv } = await useConfServer(t, 'skein', 'max_payload: 4096\n');
  await signalAndWait(srv, 'SIGHUP', /Reloaded server configuration/);
  const c = await rawConnect(srv.port);
  await c.expect(/^INFO /);
  c.close();
  t.pass();
});
