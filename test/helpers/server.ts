// Starts skein or nats-server as a child process for black-box tests.
//
// Both implementations are started the same way (`-a 127.0.0.1 -p -1 ...args`), so a test
// can run one exchange against each and compare the answers. Every server binds a port the
// OS picks (`-p -1`, and `-1` for a cluster listener) and the helper reads the real port back
// from its `Listening for client connections on H:P` / `Listening for route connections on
// H:P` lines: a port picked by the test and bound later can be taken in between by a
// concurrent test (EADDRINUSE, or worse, a server that answers for someone else). Every
// started process is registered; a process-exit hook SIGKILLs whatever a test failed to stop.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Impl = 'skein' | 'nats-server';

/** Config text for one implementation, or one text per implementation. */
export type ConfigText = string | { skein: string; natsServer: string };

export interface StartOptions {
  impl: Impl;
  /**
   * Extra command-line arguments, appended after `-a 127.0.0.1 -p PORT`. A cluster listener
   * given as `--cluster nats://127.0.0.1:-1` gets an OS-picked port, read back as clusterPort.
   */
  args?: string[];
  /**
   * Config file contents: YAML for skein (nats-server's key names), .conf for nats-server.
   * Given as an object, the text for `impl` is picked.
   */
  config?: ConfigText;
  /** skein only: `--workers N`. */
  workers?: number;
  env?: Record<string, string>;
  /**
   * Fixed client port, only to restart a server on the port it had (a test that checks that
   * peers and clients come back to it). Default `-1`: the OS picks, the log tells.
   */
  port?: number;
  /**
   * How readiness is detected. 'connect' (default) polls a TCP connect until the server sends
   * its INFO. 'log' waits for the `Listening for client connections on` line and opens no
   * connection, for tests where a probe connection would count (max_connections).
   */
  readiness?: 'connect' | 'log';
  /** Start-up deadline; default 60s (a loaded 2-core machine can take 20s to start a server). */
  readyTimeoutMs?: number;
}

export interface ServerHandle {
  impl: Impl;
  port: number;
  /** The route listener's port (read from the log), or 0 when no cluster is configured. */
  clusterPort: number;
  url: string;
  pid: number;
  /** SIGINT, wait for exit (deadline), then SIGKILL. Resolves with the exit code (null if killed). */
  stop(): Promise<number | null>;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** stdout and stderr interleaved in arrival order. */
  output(): string;
  /** Resolves with the first match of `re` in the output (past or future). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited(): boolean;
  exitCode(): number | null;
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The implementation under test: env SKEIN_TEST_IMPL (default skein). */
export function testImpl(): Impl {
  const v = process.env.SKEIN_TEST_IMPL ?? 'skein';
  if (v !== 'skein' && v !== 'nats-server') {
    throw new Error(`SKEIN_TEST_IMPL must be "skein" or "nats-server", got ${JSON.stringify(v)}`);
  }
  return v;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function killLeftovers(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}
process.on('exit', killLeftovers);
// ava ends a timed-out worker with SIGTERM, which skips 'exit' handlers: kill the servers,
// then die of the same signal as before.
for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killLeftovers();
    process.kill(process.pid, sig);
  });
}

/** Stops every server this process started and has not stopped yet. */
export async function stopAll(): Promise<void> {
  const children = [...live];
  await Promise.all(children.map((c) => stopChild(c, 5000)));
}

function stopChild(child: ChildProcess, deadlineMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      live.delete(child);
      resolve(child.exitCode);
      return;
    }
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, deadlineMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve(code);
    });
    try {
      child.kill('SIGINT');
    } catch {
      /* gone */
    }
  });
}

/** One TCP connect; resolves true when the server sent something starting with `INFO `. */
function probe(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.length >= 5) done(buf.startsWith('INFO '));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

function pickConfig(impl: Impl, config: ConfigText): string {
  if (typeof config === 'string') return config;
  return impl === 'skein' ? config.skein : config.natsServer;
}

/** Whether the server will have a route listener: `--cluster URL` or a `cluster` config key. */
function hasClusterListener(opts: StartOptions): boolean {
  const args = opts.args ?? [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--cluster' && (args[i + 1] ?? '') !== '') return true;
    if (/^--cluster=./.test(args[i])) return true;
  }
  return opts.config !== undefined && /^\s*cluster\s*[:{ ]/m.test(pickConfig(opts.impl, opts.config));
}

/** Node's compile cache for servers started by tests (test/run.ts sets the same one). */
const compileCache = path.join(os.tmpdir(), 'skein-node-compile-cache');

const clientListenRe = /Listening for client connections on \S+:(\d+)\b/;
const routeListenRe = /Listening for route connections on \S+:(\d+)\b/;

async function startOnce(opts: StartOptions): Promise<ServerHandle> {
  const args = ['-a', '127.0.0.1', '-p', String(opts.port ?? -1)];
  if (opts.config !== undefined) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-test-'));
    tempDirs.add(dir);
    const file = path.join(dir, opts.impl === 'skein' ? 'server.yaml' : 'server.conf');
    writeFileSync(file, pickConfig(opts.impl, opts.config));
    args.push('-c', file);
  }
  if (opts.impl === 'skein' && opts.workers !== undefined) args.push('--workers', String(opts.workers));
  args.push(...(opts.args ?? []));

  const [cmd, argv] = opts.impl === 'skein' ? [process.execPath, [path.join(repoRoot, 'src', 'main.ts'), ...args]] : ['nats-server', args];
  const child = spawn(cmd, argv, {
    cwd: repoRoot,
    env: { NODE_COMPILE_CACHE: compileCache, ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);

  let stderrText = '';
  let outputText = '';
  const logWaiters = new Set<() => void>();
  const onText = (s: string, isErr: boolean) => {
    if (isErr) stderrText += s;
    outputText += s;
    for (const w of [...logWaiters]) w();
  };
  child.stdout.setEncoding('utf8').on('data', (s: string) => onText(s, false));
  child.stderr.setEncoding('utf8').on('data', (s: string) => onText(s, true));
  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
    for (const w of [...logWaiters]) w();
  });
  child.on('exit', () => {
    live.delete(child);
    for (const w of [...logWaiters]) w();
  });

  const exited = () => child.exitCode !== null || child.signalCode !== null || spawnError !== undefined;

  const waitForLog = (re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const m = outputText.match(re);
        if (m) {
          finish();
          resolve(m);
        } else if (exited()) {
          finish();
          reject(
            new Error(
              `${opts.impl} exited (code ${child.exitCode}, signal ${child.signalCode}) ` +
                `before logging ${re}${spawnError ? `: ${spawnError.message}` : ''}\n--- output ---\n${outputText}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${opts.impl} did not log ${re} within ${timeoutMs}ms\n--- output ---\n${outputText}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        logWaiters.delete(check);
      };
      logWaiters.add(check);
      check();
    });

  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + readyTimeoutMs;
  let port = 0;
  let clusterPort = 0;
  try {
    port = Number((await waitForLog(clientListenRe, readyTimeoutMs))[1]);
    // nats-server logs the route listener after "Server is ready"; skein before it.
    if (hasClusterListener(opts)) clusterPort = Number((await waitForLog(routeListenRe, Math.max(1, deadline - Date.now())))[1]);
    if (opts.readiness !== 'log') {
      // Listening is logged once the socket is bound; wait until the server answers with INFO.
      for (;;) {
        if (exited()) {
          throw new Error(
            `${opts.impl} exited during start-up (code ${child.exitCode}, signal ` +
              `${child.signalCode})${spawnError ? `: ${spawnError.message}` : ''}\n--- output ---\n${outputText}`,
          );
        }
        if (await probe(port, 1000)) break;
        if (Date.now() > deadline) {
          throw new Error(`${opts.impl} not serving on port ${port} within ${readyTimeoutMs}ms\n--- output ---\n${outputText}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      if (exited()) throw new Error(`${opts.impl} exited during start-up\n--- output ---\n${outputText}`);
    }
  } catch (err) {
    await stopChild(child, 2000);
    throw err;
  }

  return {
    impl: opts.impl,
    port,
    clusterPort,
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    stop: () => stopChild(child, 5000),
    stderr: () => stderrText,
    output: () => outputText,
    waitForLog,
    exited,
    exitCode: () => child.exitCode,
  };
}

/**
 * Starts a server and waits until it serves. Throws with the server's output if it cannot.
 * With a fixed port (a restart on the ports a server had), a port still held for a moment
 * (an outgoing connection that happened to get it as its local port) is retried for a while.
 */
export async function startServer(opts: StartOptions): Promise<ServerHandle> {
  const fixedPorts = opts.port !== undefined;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!fixedPorts || Date.now() > deadline || !/address already in use|EADDRINUSE/i.test(String(err))) throw err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Minimal view of an ava ExecutionContext, so helpers do not depend on ava's types. */
export interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** startServer, stopped automatically when the test ends (pass or fail). */
export async function useServer(t: Teardownable, opts: StartOptions): Promise<ServerHandle> {
  const srv = await startServer(opts);
  t.teardown(() => srv.stop());
  return srv;
}
