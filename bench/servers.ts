// Starting and stopping the servers under test (skein, nats-server, 2-node clusters of
// either), and reading their CPU time and peak RSS from /proc. Every process started here is
// registered so that Ctrl-C, errors and normal exit all stop it.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchTlsServerArgs } from './tls.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SKEIN_MAIN = path.join(REPO_ROOT, 'src', 'main.ts');

export type TargetKind = 'skein' | 'nats-server' | 'url';

export interface Target {
  label: string; // "skein -w2", "nats-server", "url"
  kind: TargetKind;
  workers?: number; // skein only; undefined: skein's own default
  urls?: string[]; // kind 'url': already running servers (2 for the cluster scenario)
  pids?: number[]; // kind 'url': optional pids to sample CPU/RSS from
}

export class NotSupportedError extends Error {
  readonly code = 'BENCH_NOT_SUPPORTED';
}

// ---- process registry: everything started here is stopped on exit -------------------------

const live = new Set<ChildProcess>();

export function track(p: ChildProcess): void {
  live.add(p);
  p.once('exit', () => live.delete(p));
}

// Synchronous last resort (process 'exit' handlers cannot wait).
export function killAllNow(): void {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

export async function stopProcess(p: ChildProcess, graceMs = 5000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGINT');
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ---- /proc sampling ----------------------------------------------------------------------

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

// CPU seconds (user + system, all threads, including exited ones) used by `pid` so far.
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

// Whole-host CPU seconds so far, from /proc/stat: busy (user, nice, system, irq, softirq; all
// processes, all cores) and steal (time the hypervisor gave to other guests).
export function hostCpuSeconds(): { busy: number; steal: number } {
  try {
    const line = fs.readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return { busy: (user + nice + system + irq + softirq) / ticksPerSecond(), steal: (steal ?? 0) / ticksPerSecond() };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

// Peak resident set size in bytes (VmHWM).
export function peakRssBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

// ---- launching ---------------------------------------------------------------------------

export interface Launched {
  urls: string[];
  pids: number[]; // for CPU/RSS sampling; empty for an external server without --pid
  stop(): Promise<void>;
  logTail(): string;
}

export function natsServerVersion(): string | null {
  try {
    return execFileSync('nats-server', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function skeinAvailable(): boolean {
  return fs.existsSync(SKEIN_MAIN);
}

export interface LaunchOptions {
  readyTimeoutMs?: number;
  nodeArgs?: string[]; // extra node flags for skein (e.g. --cpu-prof)
  noClusterSkein?: boolean; // skip the cluster scenario for skein (--no-cluster-skein)
  topology?: 'cluster' | 'leaf' | 'gateway'; // how two servers are joined (the scenario says)
}

// Starts `count` fresh servers of `target` (count 2 = a cluster with routes both ways).
export async function launch(target: Target, count: 1 | 2, opts: LaunchOptions = {}): Promise<Launched> {
  if (target.kind === 'url') {
    const urls = target.urls ?? [];
    if (urls.length < count) throw new Error(`this scenario needs ${count} server urls (--url a,b)`);
    return { urls: urls.slice(0, count), pids: target.pids ?? [], stop: async () => {}, logTail: () => '' };
  }
  if (opts.topology === 'leaf') {
    return launchLeafPair(target, opts);
  }
  if (count === 2 && opts.topology === 'gateway') return launchGateway(target, opts);
  if (count === 2 && target.kind === 'skein' && opts.noClusterSkein === true) {
    throw new NotSupportedError('cluster scenario skipped for skein (--no-cluster-skein)');
  }
  // Ports are picked by the OS (`-1`) and read back from the log: a port picked first and bound
  // later can be taken in between by anything else running on the machine. The second server
  // of a cluster dials the first one's route port; the route works both ways.
  const started: Server[] = [];
  try {
    for (let k = 0; k < count; k++) {
      const args = ['-a', '127.0.0.1', '-p', '-1', ...benchTlsServerArgs()];
      if (count === 2) {
        args.push('--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'bench');
        if (k === 1) args.push('--routes', `nats://127.0.0.1:${started[0].clusterPort}`);
      }
      const server = startServer(target, args, opts);
      started.push(server);
      await server.ready;
    }
  } catch (e) {
    await Promise.all(started.map((s) => stopProcess(s.proc)));
    throw e;
  }
  return {
    urls: started.map((s) => `nats://127.0.0.1:${s.port}`),
    pids: started.map((s) => s.proc.pid!),
    stop: async () => {
      await Promise.all(started.map((s) => stopProcess(s.proc)));
    },
    logTail: () => started.map((s) => s.log.slice(-2000)).join('\n'),
  };
}

/**
 * One server of a topology started from a small .conf file (nats-server's format, which skein
 * reads too): its text, given the ports read back from the servers started before it; the
 * line whose first group is a port to read back (OS-picked, `-1`); a line to wait for.
 */
interface ConfServer {
  name: string;
  conf: (ports: number[]) => string;
  portLine?: RegExp;
  readyLine?: RegExp;
}

/** Start `servers` in order, each on its own .conf in a temporary folder removed on stop. */
async function launchConfServers(target: Target, opts: LaunchOptions, dirPrefix: string, servers: ConfServer[]): Promise<Launched> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  const started: Server[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(started.map((s) => stopProcess(s.proc)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (const c of servers) {
      const file = path.join(dir, `${c.name}.conf`);
      fs.writeFileSync(file, c.conf(ports));
      const server = startServer(target, ['-a', '127.0.0.1', '-p', '-1', ...benchTlsServerArgs(), '-c', file], opts);
      started.push(server);
      await server.ready;
      if (c.portLine !== undefined) ports.push(await logged(server, c.portLine, opts.readyTimeoutMs ?? 20_000));
      if (c.readyLine !== undefined) await logged(server, c.readyLine, opts.readyTimeoutMs ?? 20_000);
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    urls: started.map((s) => `nats://127.0.0.1:${s.port}`),
    pids: started.map((s) => s.proc.pid!),
    stop: cleanup,
    logTail: () => started.map((s) => s.log.slice(-2000)).join('\n'),
  };
}

/**
 * A hub and a leaf of it: the hub listens for leafs on an OS-picked port (read back from its
 * `Listening for leafnode connections on H:P` line), the leaf dials it; ready once the leaf logs
 * `Leafnode connection created`. The leaf settings have no command-line flags, so each server
 * gets a small .conf file.
 */
function launchLeafPair(target: Target, opts: LaunchOptions): Promise<Launched> {
  return launchConfServers(target, opts, 'skein-bench-leaf-', [
    {
      name: 'hub',
      conf: () => 'server_name: bench-hub\nleafnodes { listen: "127.0.0.1:-1" }\n',
      portLine: /Listening for leafnode connections on \S+:(\d+)/,
    },
    {
      name: 'leaf',
      conf: ([leafPort]) => `server_name: bench-leaf\nleafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:${leafPort}" } ] }\n`,
      readyLine: /Leafnode connection created/,
    },
  ]);
}

/**
 * Two single-server clusters, A and B, joined by a gateway: A listens for gateways on an
 * OS-picked port (read back from `Listening for gateways connections on H:P`); B names A (the
 * gateway A->B is found by the handshake, as in a real supercluster). Both read a small .conf
 * file.
 */
function launchGateway(target: Target, opts: LaunchOptions): Promise<Launched> {
  return launchConfServers(target, opts, 'skein-bench-gw-', [
    {
      name: 'A',
      conf: () => 'gateway {\n  name: A\n  listen: "127.0.0.1:-1"\n}\n',
      portLine: /Listening for gateways? connections on \S+:(\d+)/,
    },
    {
      name: 'B',
      conf: ([gatewayPortA]) =>
        `gateway {\n  name: B\n  listen: "127.0.0.1:-1"\n  gateways: [{name: A, url: "nats://127.0.0.1:${gatewayPortA}"}]\n}\n`,
    },
  ]);
}

/** Waits until a server's log matches; resolves with the first group as a number (0 if none). */
async function logged(s: Server, re: RegExp, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(s.log);
    if (m) return Number(m[1] ?? 0);
    if (s.proc.exitCode !== null || s.proc.signalCode !== null)
      throw new Error(`server exited before logging ${re}:\n${s.log.slice(-1000)}`);
    if (Date.now() > end) throw new Error(`server did not log ${re} within ${timeoutMs} ms:\n${s.log.slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Server {
  proc: ChildProcess;
  /** Resolves once the server is ready and its ports are known. */
  ready: Promise<void>;
  log: string;
  /** From the `Listening for client/route connections on H:P` lines (0 until logged). */
  port: number;
  clusterPort: number;
}

function startServer(target: Target, args: string[], opts: LaunchOptions): Server {
  let cmd: string;
  let argv: string[];
  if (target.kind === 'skein') {
    cmd = process.execPath;
    argv = [...(opts.nodeArgs ?? []), SKEIN_MAIN, ...args];
    if (target.workers !== undefined) argv.push('--workers', String(target.workers));
  } else {
    cmd = 'nats-server';
    argv = args;
  }
  // Raise the soft fd limit to the hard one for both servers alike (the many-connections
  // scenario needs > 10,000 fds); `exec` keeps the pid, so /proc sampling sees the server.
  const proc = spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', cmd, ...argv], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(proc);
  const server: Server = { proc, ready: Promise.resolve(), log: '', port: 0, clusterPort: 0 };
  const wantsRoutePort = args.includes('--cluster');
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  server.ready = new Promise<void>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${target.label} did not print "Server is ready" within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer): void => {
      server.log += d.toString();
      if (server.log.length > 200_000) server.log = server.log.slice(-100_000);
      server.port ||= Number(/Listening for client connections on \S+:(\d+)/.exec(server.log)?.[1] ?? 0);
      server.clusterPort ||= Number(/Listening for route connections on \S+:(\d+)/.exec(server.log)?.[1] ?? 0);
      // nats-server logs its route listener after "Server is ready".
      if (server.log.includes('Server is ready') && server.port !== 0 && (!wantsRoutePort || server.clusterPort !== 0)) finish();
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('error', (e) => finish(new Error(`${target.label}: ${e.message}`)));
    proc.once('exit', (code, sig) => {
      const tail = server.log.trim().split('\n').slice(-5).join('\n');
      finish(new Error(`${target.label} exited before it was ready (code ${code}, signal ${sig})${tail ? ':\n' + tail : ''}`));
    });
  });
  return server;
}
