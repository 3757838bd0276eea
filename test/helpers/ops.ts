// Helpers for the operations tests (signals, reload, lame duck, log files): a server started
// from a config file the test can rewrite, log waits that look only at new output, and the
// listening sockets of a process (to prove the Node.js inspector is not listening).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useServer, type Impl, type ServerHandle, type StartOptions, type Teardownable } from './server.ts';

export function tempDir(t: Teardownable): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-ops-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface ConfServer {
  srv: ServerHandle;
  file: string;
  dir: string;
  /** Rewrites the config file (for a reload). */
  rewrite(text: string): void;
}

/** A server started with `-c <dir>/server.conf` (nats-server's format, read by both). */
export async function useConfServer(t: Teardownable, impl: Impl, text: string, opts: Partial<StartOptions> = {}): Promise<ConfServer> {
  const dir = tempDir(t);
  const file = path.join(dir, 'server.conf');
  fs.writeFileSync(file, text);
  const srv = await useServer(t, {
    ...opts,
    impl,
    workers: impl === 'skein' ? (opts.workers ?? 2) : undefined,
    args: ['-c', file, ...(opts.args ?? [])],
  });
  return { srv, file, dir, rewrite: (next) => fs.writeFileSync(file, next) };
}

/** Waits for `re` in what the server writes after `from` (an output length). Returns the match. */
export async function logAfter(srv: ServerHandle, from: number, re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = srv.output().slice(from).match(re);
    if (m) return m;
    if (srv.exited()) throw new Error(`${srv.impl} exited before logging ${re}\n--- output ---\n${srv.output()}`);
    if (Date.now() > deadline)
      throw new Error(`${srv.impl} did not log ${re} within ${timeoutMs}ms\n--- output ---\n${srv.output().slice(from)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends `signal` and waits for the line it causes. */
export async function signalAndWait(srv: ServerHandle, signal: NodeJS.Signals, re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const from = srv.output().length;
  process.kill(srv.pid, signal);
  return logAfter(srv, from, re, timeoutMs);
}

/** Waits until the process has exited; returns its exit code. */
export async function exitOf(srv: ServerHandle, timeoutMs = 20_000): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (!srv.exited()) {
    if (Date.now() > deadline) throw new Error(`${srv.impl} still running after ${timeoutMs}ms\n--- output ---\n${srv.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return srv.exitCode();
}

/** TCP ports process `pid` listens on (Linux /proc): its socket inodes matched against the LISTEN table. */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A: LISTEN
      if (inodes.has(f[9])) ports.push(Number.parseInt(f[1].split(':')[1], 16));
    }
  }
  return ports.sort((a, b) => a - b);
}
