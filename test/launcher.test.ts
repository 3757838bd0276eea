// The `skein` command (src/launcher.cjs): it runs under any Node, starts src/main.ts on the
// runtime the package brings (found next to the package, nested or hoisted, as npm ci,
// npm install -g and npx lay it out), passes signals and exit codes through, and refuses an
// old Node in one line when the bundled runtime is missing. `npm start` goes through it.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { repoRoot, type Teardownable } from './helpers/server.ts';
import { listeningPorts } from './helpers/ops.ts';

const launcher = path.join(repoRoot, 'src', 'launcher.cjs');
const bundledNode = fs.realpathSync(path.join(repoRoot, 'node_modules', 'node', 'bin', 'node'));
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };

interface Run {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first match of `re` in stdout+stderr; rejects on exit or after the deadline. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with [exit code, signal]. */
  exit: Promise<[number | null, NodeJS.Signals | null]>;
}

/**
 * Starts a command in its own process group (so a test can play the terminal's Ctrl-C);
 * the group is killed when the test ends.
 */
function run(t: Teardownable, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? repoRoot,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let exited = false;
  t.teardown(() => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    text += d.toString('utf8');
    for (const w of [...waiters]) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exit = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.on('close', (code, signal) => {
      exited = true;
      for (const w of [...waiters]) w();
      resolve([code, signal]);
    });
  });
  const waitFor = (re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = text.match(re);
        if (m) {
          done();
          resolve(m);
        } else if (exited) {
          done();
          reject(new Error(`${cmd} exited before printing ${re}:\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${cmd} did not print ${re} within ${timeoutMs} ms:\n${text}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return { child, output: () => text, waitFor, exit };
}

/** Waits for the server's INFO on a fresh connection: it really serves clients. */
function expectInfo(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no INFO within 10 s'));
    }, 10_000);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const tmpDirs: string[] = [];
test.after.always(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * skein as npm installs it for `npx skein` or as a dependency: <tmp>/node_modules/skein with
 * its dependencies hoisted beside it. `withRuntime: false` leaves the `node` package out, as
 * `npm ci --ignore-scripts` leaves it without its binary.
 */
function installedLayout(withRuntime: boolean): { root: string; launcher: string } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-launcher-'));
  tmpDirs.push(tmp);
  const modules = path.join(tmp, 'node_modules');
  const root = path.join(modules, 'skein');
  fs.mkdirSync(root, { recursive: true });
  for (const part of ['src', 'workers']) fs.cpSync(path.join(repoRoot, part), path.join(root, part), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(root, 'package.json'));
  for (const entry of fs.readdirSync(path.join(repoRoot, 'node_modules'))) {
    if (entry === '.bin' || entry.startsWith('.') || (entry === 'node' && !withRuntime)) continue;
    fs.symlinkSync(path.join(repoRoot, 'node_modules', entry), path.join(modules, entry));
  }
  return { root, launcher: path.join(root, 'src', 'launcher.cjs') };
}

/** A directory whose `node` claims to be Node v20.11.1 (it is the bundled one in disguise). */
function oldNodeDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-oldnode-'));
  tmpDirs.push(dir);
  const disguise = path.join(dir, 'disguise.cjs');
  fs.writeFileSync(
    disguise,
    "Object.defineProperty(process, 'version', { value: 'v20.11.1' });\n" +
      "Object.defineProperty(process.versions, 'node', { value: '20.11.1' });\n",
  );
  fs.writeFileSync(path.join(dir, 'node'), `#!/bin/sh\nexec '${bundledNode}' --require '${disguise}' "$@"\n`, { mode: 0o755 });
  return dir;
}

/** PATH without any node_modules/.bin (npm test puts the bundled runtime first). */
function plainPath(): string {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((p) => !p.includes('node_modules'))
    .join(path.delimiter);
}

test.serial('npx skein --help exits 0 and prints the usage', async (t) => {
  t.timeout(60_000);
  const r = run(t, 'npx', ['--no-install', 'skein', '--help']);
  const [code] = await r.exit;
  t.is(code, 0, r.output());
  t.regex(r.output(), /Usage: skein \[options\]/);
});

test.serial('skein -v prints the version through the launcher', async (t) => {
  t.timeout(30_000);
  const r = run(t, launcher, ['-v']);
  const [code] = await r.exit;
  t.is(code, 0, r.output());
  t.is(r.output(), `skein: v${pkg.version}\n`);
});

test.serial('the launcher on the bundled runtime runs the server in its own process; SIGINT exits 0', async (t) => {
  t.timeout(60_000);
  const r = run(t, process.execPath, [launcher, '-a', '127.0.0.1', '-p', '-1', '--workers', '1']);
  const m = await r.waitFor(/\[(\d+)\] \S+ \S+ \[INF\] Listening for client connections on 127\.0\.0\.1:(\d+)/);
  t.is(Number(m[1]), r.child.pid ?? -1, 'no second process when the launcher already runs on the bundled runtime');
  t.regex(await expectInfo(Number(m[2])), /^INFO \{/);
  r.child.kill('SIGINT');
  t.deepEqual(await r.exit, [0, null], r.output());
});

test.serial(
  'installed under node_modules with the runtime hoisted beside it: starts, serves, SIGINT exits 0, SIGTERM exits 1',
  async (t) => {
    t.timeout(90_000);
    const layout = installedLayout(true);
    // An old Node runs the launcher (as `#!/usr/bin/env node` may pick); the server must run on
    // the bundled runtime in a child process that gets the signal and whose exit code is ours.
    const env = { ...process.env, PATH: `${oldNodeDir()}${path.delimiter}${plainPath()}` };
    for (const [signal, expected] of [
      ['SIGINT', 0],
      ['SIGTERM', 1],
    ] as const) {
      const r = run(t, layout.launcher, ['-a', '127.0.0.1', '-p', '-1', '--workers', '1'], { env, cwd: os.tmpdir() });
      const m = await r.waitFor(/\[(\d+)\] \S+ \S+ \[INF\] Listening for client connections on 127\.0\.0\.1:(\d+)/);
      t.not(Number(m[1]), r.child.pid, 'the server runs in a child of the launcher');
      t.regex(r.output(), /Node: +v24\.\d+/, 'the server runs on the bundled runtime');
      t.regex(await expectInfo(Number(m[2])), /^INFO \{/);
      r.child.kill(signal); // the launcher only: it must forward the signal
      t.deepEqual(await r.exit, [expected, null], `${signal}: ${r.output()}`);
      t.notRegex(r.output(), /ExperimentalWarning|ERR_UNSUPPORTED/);
    }
  },
);

test.serial('without the bundled runtime, an old Node gets one line saying what to do', async (t) => {
  t.timeout(60_000);
  const layout = installedLayout(false);
  const env = { ...process.env, PATH: `${oldNodeDir()}${path.delimiter}${plainPath()}` };
  const r = run(t, layout.launcher, ['-v'], { env, cwd: os.tmpdir() });
  const [code] = await r.exit;
  t.is(code, 1);
  const lines = r
    .output()
    .split('\n')
    .filter((l) => l !== '');
  t.is(lines.length, 1, r.output());
  t.regex(
    lines[0],
    /^skein: needs Node\.js >= 24\.21; this is v20\.11\.1 \(.*\) and the runtime skein brings \(npm package "node"\) is missing/,
  );
  t.true(lines[0].includes(`run "npm rebuild node" in ${layout.root}`), lines[0]);

  // npm start goes through the same check (Node 20 cannot even load a .ts file).
  const s = run(t, 'npm', ['start', '--silent'], { env, cwd: layout.root });
  const [startCode] = await s.exit;
  t.not(startCode, 0);
  t.regex(s.output(), /skein: needs Node\.js >= 24\.21; this is v20\.11\.1/);
  t.notRegex(s.output(), /ERR_UNKNOWN_FILE_EXTENSION/);
});

test.serial('without the bundled runtime, a machine Node >= 24.21 is used', async (t) => {
  t.timeout(60_000);
  const layout = installedLayout(false);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-newnode-'));
  tmpDirs.push(dir);
  fs.symlinkSync(bundledNode, path.join(dir, 'node'));
  const env = { ...process.env, PATH: `${dir}${path.delimiter}${plainPath()}` };
  const r = run(t, layout.launcher, ['-v'], { env, cwd: os.tmpdir() });
  const [code] = await r.exit;
  t.is(code, 0, r.output());
  t.is(r.output(), `skein: v${pkg.version}\n`);
});

test.serial('npm start: Ctrl-C (SIGINT to the whole process group) exits 0', async (t) => {
  t.timeout(60_000);
  const r = run(t, 'npm', ['start', '--', '-a', '127.0.0.1', '-p', '-1', '--workers', '1']);
  const m = await r.waitFor(/Listening for client connections on 127\.0\.0\.1:(\d+)/);
  t.regex(await expectInfo(Number(m[1])), /^INFO \{/);
  process.kill(-r.child.pid!, 'SIGINT');
  t.deepEqual(await r.exit, [0, null], r.output());
  t.regex(r.output(), /Server Exiting\.\./);
});

/** Whether process `pid` has a handler for signal number `signo` (Linux /proc SigCgt). */
function catches(pid: number, signo: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << BigInt(signo - 1))) !== 0n;
  } catch {
    return false;
  }
}

/** Processes whose parent is `pid` (Linux /proc/<n>/stat). */
function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) kids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return kids;
}

test.serial(
  'two-process launcher: SIGHUP and SIGUSR1 while it starts neither kill it nor open an inspector, and the SIGHUPs are handled',
  async (t) => {
    t.timeout(90_000);
    // Installed under node_modules, the launcher always starts the server in a child process
    // (as it does when an older machine Node runs it).
    const layout = installedLayout(true);
    const r = run(t, bundledNode, [layout.launcher, '-a', '127.0.0.1', '-p', '-1', '--workers', '1'], { cwd: os.tmpdir() });
    const pid = r.child.pid!;
    const deadline = Date.now() + 60_000;
    // From the moment the launcher handles SIGHUP (before, any process dies of it), until the
    // server is ready: both signals, again and again, to the launcher, which must hold them
    // until the child can take them and then hand them on.
    while (!catches(pid, 1) && Date.now() < deadline && r.child.exitCode === null) await new Promise((res) => setTimeout(res, 2));
    let sent = 0;
    while (!/Server is ready/.test(r.output()) && Date.now() < deadline && r.child.exitCode === null && r.child.signalCode === null) {
      try {
        process.kill(pid, 'SIGHUP');
        process.kill(pid, 'SIGUSR1');
        sent++;
      } catch {
        /* gone: checked below */
      }
      await new Promise((res) => setTimeout(res, 15));
    }
    t.regex(r.output(), /Server is ready/, r.output());
    t.true(sent > 0);
    const port = Number(/Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(r.output())![1]);
    t.regex(await expectInfo(port), /^INFO \{/);
    // The SIGHUPs were not lost: each one is a reload, refused here for want of a config file.
    await r.waitFor(/Failed to reload server configuration: can only reload config when a file is provided/);
    // No inspector stayed open, in the launcher or in the server.
    const [server] = childrenOf(pid);
    t.truthy(server, `the server runs in a child process of ${pid}: ${r.output()}`);
    t.deepEqual(listeningPorts(pid), [], r.output());
    t.deepEqual(listeningPorts(server), [port], r.output());
    process.kill(pid, 'SIGINT');
    t.deepEqual(await r.exit, [0, null], r.output());
  },
);
