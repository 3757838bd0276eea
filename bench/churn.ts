// Connection churn and memory: how an existing connection's PING round trip holds up while
// thousands of connections open and close, and how much memory a server holds for idle
// connections and after a burst of publish/subscribe churn. Raw protocol in child
// processes (this file, --role ...), servers started fresh for every run, skein and
// nats-server alternating when --against nats-server is given.
//
//   npm run bench:churn -- churn --against nats-server      # PING p50/p99/max during 10,000 opens/closes
//   npm run bench:churn -- idle --conns 10000 --against nats-server   # RSS for idle connections
//   npm run bench:churn -- subchurn --secs 20 --against nats-server   # RSS under 1->1 + SUB/UNSUB churn, then idle
//
// Options: --workers N (skein), --conns N, --parallel N (connections in flight per churn
// process), --procs N (churn processes), --secs S, --rounds N, --ping-gap-ms N, --quiet-secs S
// (wait after the load before rss_quiet_mb; default 20: the server gives memory back after ~10s),
// --node-args "--cpu-prof --trace-gc" (skein), --url nats://h:p --pid P (a running server).
// Prints one `run key=value ...` line per run and a summary line per target.

import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launch, killAllNow, type Target, type Launched } from './servers.ts';

const SELF = fileURLToPath(import.meta.url);

interface Args {
  mode: string;
  role?: string;
  url: string;
  against: boolean;
  workers?: number;
  conns: number;
  parallel: number;
  procs: number;
  secs: number;
  rounds: number;
  pingGapMs: number;
  /** Extra node flags for skein (`--cpu-prof`, `--trace-gc`). */
  nodeArgs: string[];
  /** A server already running (--url nats://h:p --pid P), instead of fresh ones. */
  pid?: number;
  /** How long a run waits after the load for memory to be given back (rss_quiet_mb). */
  quietMs: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    mode: argv[0] ?? 'churn',
    url: '',
    against: false,
    conns: 10_000,
    parallel: 100,
    procs: 2,
    secs: 20,
    rounds: 1,
    pingGapMs: 5,
    nodeArgs: [],
    quietMs: 20_000,
  };
  for (let i = 1; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => argv[++i];
    switch (k) {
      case '--role':
        a.role = v();
        break;
      case '--url':
        a.url = v();
        break;
      case '--against':
        a.against = v() === 'nats-server';
        break;
      case '--workers':
        a.workers = Number(v());
        break;
      case '--conns':
        a.conns = Number(v());
        break;
      case '--parallel':
        a.parallel = Number(v());
        break;
      case '--procs':
        a.procs = Number(v());
        break;
      case '--secs':
        a.secs = Number(v());
        break;
      case '--rounds':
        a.rounds = Number(v());
        break;
      case '--ping-gap-ms':
        a.pingGapMs = Number(v());
        break;
      case '--node-args':
        a.nodeArgs = v()
          .split(' ')
          .filter((x) => x !== '');
        break;
      case '--pid':
        a.pid = Number(v());
        break;
      case '--quiet-secs':
        a.quietMs = Number(v()) * 1000;
        break;
      default:
        throw new Error(`unknown option ${k}`);
    }
  }
  return a;
}

// ------------------------------------------------------------------------- child roles

const CONNECT = 'CONNECT {"verbose":false,"pedantic":false}\r\n';

function hostPort(url: string): { host: string; port: number } {
  const m = /^nats:\/\/([^:]+):(\d+)$/.exec(url);
  if (!m) throw new Error(`bad url ${url}`);
  return { host: m[1], port: Number(m[2]) };
}

/** Connect, CONNECT + `extra` + PING, resolve at the PONG (with the socket still open). */
function session(url: string, extra = ''): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ ...hostPort(url), noDelay: true });
    let seen = '';
    let sent = false;
    const onData = (d: Buffer): void => {
      seen += d.toString('latin1');
      if (!sent && seen.includes('\r\n')) {
        sent = true;
        sock.write(`${CONNECT}${extra}PING\r\n`);
      }
      if (sent && seen.includes('PONG\r\n')) {
        sock.off('data', onData);
        resolve(sock);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

/** Report to the parent and wait for its `stop`. */
function reportAndWait(report: Record<string, unknown>, onStop: () => void = () => {}): void {
  process.send!({ type: 'report', report });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop') {
      onStop();
      process.exit(0);
    }
  });
}

async function roleProber(a: Args): Promise<void> {
  const sock = await session(a.url);
  const rtts: number[] = [];
  let stopping = false;
  let sentAt = 0n;
  sock.on('data', (d: Buffer) => {
    // PONGs answer our PINGs; the server's own PINGs get a PONG.
    const s = d.toString('latin1');
    if (s.includes('PING\r\n')) sock.write('PONG\r\n');
    if (!s.includes('PONG\r\n')) return;
    rtts.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
    if (!stopping) setTimeout(ping, a.pingGapMs);
  });
  const ping = (): void => {
    sentAt = process.hrtime.bigint();
    sock.write('PING\r\n');
  };
  process.on('message', (m: { type: string }) => {
    if (m.type === 'start') ping();
    if (m.type === 'finish') {
      stopping = true;
      rtts.sort((x, y) => x - y);
      const q = (p: number): number => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))] ?? NaN;
      process.send!({
        type: 'report',
        report: { pings: rtts.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: rtts[rtts.length - 1] ?? NaN },
      });
    }
    if (m.type === 'stop') process.exit(0);
  });
  process.send!({ type: 'ready' });
}

async function roleChurner(a: Args): Promise<void> {
  process.send!({ type: 'ready' });
  await new Promise<void>((r) => process.once('message', () => r()));
  const started = Date.now();
  let next = 0;
  let errors = 0;
  const one = async (): Promise<void> => {
    while (next < a.conns) {
      next++;
      try {
        const s = await session(a.url);
        s.destroy();
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: a.parallel }, one));
  reportAndWait({ conns: a.conns, errors, ms: Date.now() - started });
}

async function roleIdle(a: Args): Promise<void> {
  const socks: net.Socket[] = [];
  let next = 0;
  const one = async (): Promise<void> => {
    while (next < a.conns) {
      const i = next++;
      const s = await session(a.url, `SUB idle.${process.pid}.${i} 1\r\n`);
      s.on('data', (d: Buffer) => {
        if (d.toString('latin1').includes('PING\r\n')) s.write('PONG\r\n');
      });
      socks.push(s);
    }
  };
  await Promise.all(Array.from({ length: a.parallel }, one));
  reportAndWait({ conns: socks.length });
}

/** 1->1 stream as fast as the server takes it (a PING every 1,000 messages as flow control). */
async function roleStream(a: Args): Promise<void> {
  const sub = await session(a.url, 'SUB stream 1\r\n');
  const pub = await session(a.url);
  let received = 0;
  sub.on('data', (d: Buffer) => {
    for (let i = d.indexOf('MSG'); i >= 0; i = d.indexOf('MSG', i + 3)) received++;
    if (d.includes('PING\r\n')) sub.write('PONG\r\n');
  });
  const frame = Buffer.from('PUB stream 128\r\n' + 'x'.repeat(128) + '\r\n');
  const batch = Buffer.concat([...Array(1000).fill(frame), Buffer.from('PING\r\n')]);
  let sent = 0;
  let stop = false;
  pub.on('data', (d: Buffer) => {
    if (d.includes('PONG\r\n') && !stop) {
      sent += 1000;
      pub.write(batch);
    }
  });
  process.send!({ type: 'ready' });
  await new Promise<void>((r) => process.once('message', () => r()));
  pub.write(batch);
  process.on('message', (m: { type: string }) => {
    if (m.type === 'finish') {
      stop = true;
      process.send!({ type: 'report', report: { sent, received } });
    }
    if (m.type === 'stop') process.exit(0);
  });
}

/** SUB/UNSUB of ever new subjects, 100 per round trip. */
async function roleSubChurn(a: Args): Promise<void> {
  const c = await session(a.url);
  let k = 0;
  let stop = false;
  const round = (): void => {
    let s = '';
    for (let i = 0; i < 100; i++, k++) s += `SUB churn.${process.pid}.${k} ${k}\r\nUNSUB ${k}\r\n`;
    c.write(s + 'PING\r\n');
  };
  c.on('data', (d: Buffer) => {
    if (d.includes('PONG\r\n') && !stop) round();
  });
  process.send!({ type: 'ready' });
  await new Promise<void>((r) => process.once('message', () => r()));
  round();
  process.on('message', (m: { type: string }) => {
    if (m.type === 'finish') {
      stop = true;
      process.send!({ type: 'report', report: { subs: k } });
    }
    if (m.type === 'stop') process.exit(0);
  });
}

// ------------------------------------------------------------------------- driver

class Child {
  readonly proc: ChildProcess;
  private readonly inbox: { type: string; report?: Record<string, unknown> }[] = [];
  private waiter: (() => void) | null = null;

  constructor(role: string, a: Args, url: string, extra: string[] = []) {
    this.proc = fork(
      SELF,
      [
        a.mode,
        '--role',
        role,
        '--url',
        url,
        '--conns',
        String(a.conns),
        '--parallel',
        String(a.parallel),
        '--ping-gap-ms',
        String(a.pingGapMs),
        ...extra,
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    this.proc.on('message', (m: { type: string }) => {
      this.inbox.push(m);
      this.waiter?.();
    });
    this.proc.on('exit', (code) => {
      if (code !== 0 && code !== null) this.inbox.push({ type: 'error', report: { code } });
      this.waiter?.();
    });
  }

  async next(type: string, timeoutMs = 600_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type || m.type === 'error');
      if (i >= 0) {
        const m = this.inbox.splice(i, 1)[0];
        if (m.type === 'error') throw new Error(`child exited: ${JSON.stringify(m.report)}`);
        return m.report ?? {};
      }
      if (Date.now() > deadline) throw new Error(`child: no ${type} within ${timeoutMs}ms`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 1000);
      });
      this.waiter = null;
    }
  }

  send(type: string): void {
    if (this.proc.connected) this.proc.send({ type });
  }
}

function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Math.round(Number(m[1]) / 1024) : NaN;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = (x: unknown): string => (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(2)) : String(x));
const line = (kv: Record<string, unknown>): string =>
  Object.entries(kv)
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(' ');

async function runChurn(a: Args, srv: Launched): Promise<Record<string, unknown>> {
  const url = srv.urls[0];
  const prober = new Child('prober', a, url);
  await prober.next('ready');
  const churners = Array.from({ length: a.procs }, () => new Child('churner', { ...a, conns: Math.ceil(a.conns / a.procs) }, url));
  for (const c of churners) await c.next('ready');
  const rssBefore = rssMb(srv.pids[0]);
  prober.send('start');
  await sleep(500);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, rssMb(srv.pids[0]));
  }, 200);
  const started = Date.now();
  for (const c of churners) c.send('go');
  const reports = await Promise.all(churners.map((c) => c.next('report')));
  const ms = Date.now() - started;
  prober.send('finish');
  const ping = await prober.next('report');
  clearInterval(sampler);
  for (const c of [prober, ...churners]) c.send('stop');
  const conns = reports.reduce((n, r) => n + Number(r.conns), 0);
  const errors = reports.reduce((n, r) => n + Number(r.errors), 0);
  await sleep(Math.min(2000, a.quietMs));
  const rssAfter = rssMb(srv.pids[0]);
  await sleep(Math.max(0, a.quietMs - 2000));
  return {
    conns,
    errors,
    secs: ms / 1000,
    conns_per_s: Math.round(conns / (ms / 1000)),
    ...prefix('ping_', ping),
    rss_before_mb: rssBefore,
    rss_peak_mb: rssPeak,
    rss_after_mb: rssAfter,
    rss_quiet_mb: rssMb(srv.pids[0]),
  };
}

async function runIdle(a: Args, srv: Launched): Promise<Record<string, unknown>> {
  const url = srv.urls[0];
  const rssBefore = rssMb(srv.pids[0]);
  const holders = Array.from({ length: a.procs }, () => new Child('idle', { ...a, conns: Math.ceil(a.conns / a.procs) }, url));
  const reports = await Promise.all(holders.map((c) => c.next('report')));
  await sleep(Math.min(3000, a.quietMs));
  const rssHeld = rssMb(srv.pids[0]);
  await sleep(a.quietMs);
  const rssHeldQuiet = rssMb(srv.pids[0]);
  for (const c of holders) c.send('stop');
  await sleep(a.quietMs);
  return {
    conns: reports.reduce((n, r) => n + Number(r.conns), 0),
    rss_before_mb: rssBefore,
    rss_idle_conns_mb: rssHeld,
    rss_idle_conns_quiet_mb: rssHeldQuiet,
    rss_after_close_quiet_mb: rssMb(srv.pids[0]),
  };
}

async function runSubChurn(a: Args, srv: Launched): Promise<Record<string, unknown>> {
  const url = srv.urls[0];
  const rssBefore = rssMb(srv.pids[0]);
  const stream = new Child('stream', a, url);
  const churn = new Child('subchurn', a, url);
  await stream.next('ready');
  await churn.next('ready');
  stream.send('go');
  churn.send('go');
  const samples: number[] = [];
  for (let s = 0; s < a.secs; s++) {
    await sleep(1000);
    samples.push(rssMb(srv.pids[0]));
  }
  stream.send('finish');
  churn.send('finish');
  const sr = await stream.next('report');
  const cr = await churn.next('report');
  stream.send('stop');
  churn.send('stop');
  // Idle afterwards: is the memory given back?
  await sleep(a.quietMs);
  return {
    secs: a.secs,
    msgs: sr.received,
    subs_unsubs: cr.subs,
    rss_before_mb: rssBefore,
    rss_mid_mb: samples[Math.floor(samples.length / 2)],
    rss_end_mb: samples[samples.length - 1],
    rss_peak_mb: Math.max(...samples),
    rss_quiet_mb: rssMb(srv.pids[0]),
  };
}

function prefix(p: string, o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}${k}`, v]));
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.role !== undefined) {
    const roles: Record<string, (a: Args) => Promise<void>> = {
      prober: roleProber,
      churner: roleChurner,
      idle: roleIdle,
      stream: roleStream,
      subchurn: roleSubChurn,
    };
    await roles[a.role](a);
    return;
  }
  const run = { churn: runChurn, idle: runIdle, subchurn: runSubChurn }[a.mode];
  if (run === undefined) throw new Error(`unknown scenario ${a.mode} (churn, idle, subchurn)`);
  const targets: Target[] =
    a.url !== ''
      ? [{ label: 'url', kind: 'url', urls: [a.url], pids: a.pid !== undefined ? [a.pid] : [] }]
      : [{ label: `skein${a.workers ? ` -w${a.workers}` : ''}`, kind: 'skein', workers: a.workers }];
  if (a.against) targets.push({ label: 'nats-server', kind: 'nats-server' });
  const results = new Map<string, Record<string, unknown>[]>();
  for (let round = 0; round < a.rounds; round++) {
    for (const t of targets) {
      const srv = await launch(t, 1, { readyTimeoutMs: 60_000, nodeArgs: a.nodeArgs });
      try {
        await sleep(1000);
        const r = await run(a, srv);
        console.log(`run scenario=${a.mode} target=${t.label.replace(/ /g, '')} round=${round} ${line(r)}`);
        results.set(t.label, [...(results.get(t.label) ?? []), r]);
      } finally {
        await srv.stop();
      }
    }
  }
  for (const [label, rs] of results) {
    const keys = Object.keys(rs[0]).filter((k) => typeof rs[0][k] === 'number');
    const med = Object.fromEntries(
      keys.map((k) => {
        const v = rs.map((r) => r[k] as number).sort((x, y) => x - y);
        return [k, v[Math.floor(v.length / 2)]];
      }),
    );
    console.log(`summary scenario=${a.mode} target=${label.replace(/ /g, '')} rounds=${rs.length} ${line(med)}`);
  }
}

const isRole = process.argv.includes('--role');
if (!isRole) {
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));
} else {
  // A role lives until the driver says stop, or goes away.
  process.on('disconnect', () => process.exit(0));
}
main().then(
  () => {
    if (!isRole) process.exit(0);
  },
  (err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
  },
);
