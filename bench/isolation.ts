// One slow consumer and a healthy one (issue 10 §5): the latency a healthy subscriber sees
// while another subscriber on its worker reads slowly and a publisher floods that one.
//
//   npm run bench:isolation                      # skein --workers 2 against nats-server, 3 rounds A B A B
//   npm run bench:isolation -- --seconds 10 --rounds 5
//
// Connections, in this order (skein places each on the worker with the fewest connections, so
// they alternate): the slow subscriber (worker 0), the flooder (worker 1, in its own process:
// 1 KiB messages as fast as the server takes them), the healthy subscriber (worker 0), the
// pacer (worker 1: one 16 B message every millisecond, carrying its send time). The slow
// subscriber reads 64 KiB every 100 ms. The healthy subscriber's latency (receive time minus
// send time, one process, one clock) is the result: p50/p99/max per run, and the ratio of
// medians to nats-server's. Prints key=value lines and a table; --save writes bench/results.
// ISO_NODE_ARGS="--trace-gc" runs skein under those node flags; ISO_DEBUG=1 prints the tail of
// each server's log after its run.

import { fork } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, killAllNow, launch, REPO_ROOT, track, type Target } from './servers.ts';

const SELF = fileURLToPath(import.meta.url);

function connect(url: string): Promise<net.Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => resolve(s));
    s.once('error', reject);
    s.setNoDelay(true);
    s.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
  });
}

/** Resolves at the PONG of a PING (the server has everything sent before). */
function pingPong(s: net.Socket, seen: () => string): Promise<void> {
  const before = seen().split('PONG').length;
  s.write('PING\r\n');
  return new Promise((resolve) => {
    const check = (): void => {
      if (seen().split('PONG').length > before) resolve();
      else setTimeout(check, 5);
    };
    check();
  });
}

// ---- the flooder, in its own process -------------------------------------------------------

async function flooder(url: string): Promise<void> {
  const s = await connect(url);
  const frame = `PUB iso.slow 1024\r\n${'f'.repeat(1024)}\r\n`;
  const chunk = Buffer.from(frame.repeat(64));
  s.on('error', () => process.exit(0));
  process.send!('connected');
  process.on('message', (m) => {
    if (m === 'stop') process.exit(0);
  });
  await new Promise((r) => process.once('message', r)); // 'go'
  for (;;) {
    if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
  }
}

// ---- one run --------------------------------------------------------------------------------

interface RunResult {
  target: string;
  round: number;
  received: number;
  sent: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  slowOpen: boolean;
  /** The server's CPU (all threads) while the healthy stream was measured, % of one core. */
  cpuPct: number;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function runOnce(target: Target, round: number, seconds: number): Promise<RunResult> {
  const server = await launch(target, 1, { nodeArgs: (process.env.ISO_NODE_ARGS ?? '').split(' ').filter(Boolean) });
  const url = server.urls[0];
  const child = fork(SELF, ['--flood', url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track(child);
  try {
    const slow = await connect(url);
    let slowText = '';
    slow.on('data', (d: Buffer) => {
      slowText = (slowText + d.toString('latin1')).slice(-64);
    });
    slow.write('SUB iso.slow 1\r\n');
    await pingPong(slow, () => slowText);
    await new Promise((r) => child.once('message', r)); // the flooder is connected (second)
    const healthy = await connect(url);
    const pacer = await connect(url);
    let tail = '';
    const lat: number[] = [];
    let pongs = 0;
    healthy.on('data', (d: Buffer) => {
      const now = process.hrtime.bigint();
      const text = tail + d.toString('latin1');
      let i = 0;
      for (;;) {
        const k = text.indexOf('MSG iso.ok 1 16\r\n', i);
        if (k < 0 || k + 17 + 18 > text.length) break;
        const sentAt = BigInt(text.slice(k + 17, k + 33));
        lat.push(Number(now - sentAt) / 1000);
        i = k + 35;
      }
      pongs += text.slice(i).split('PONG').length - 1;
      tail = text.slice(Math.max(i, text.length - 64));
    });
    healthy.write('SUB iso.ok 1\r\nPING\r\n');
    await new Promise<void>((r) => {
      const check = (): void => (pongs > 0 ? r() : void setTimeout(check, 5));
      check();
    });
    // The slow subscriber reads 64 KiB every 100 ms from now on.
    slow.pause();
    const reader = setInterval(() => {
      slow.resume();
      setImmediate(() => slow.pause());
    }, 100);
    child.send('go');
    await new Promise((r) => setTimeout(r, 1000)); // let the backlog build
    let sent = 0;
    const cpu = (): number => server.pids.reduce((a, pid) => a + cpuSeconds(pid), 0);
    const cpuAt = cpu();
    const paceAt = Date.now();
    const pace = setInterval(() => {
      const ts = process.hrtime.bigint().toString().padStart(16, '0').slice(-16);
      pacer.write(`PUB iso.ok 16\r\n${ts}\r\n`);
      sent++;
    }, 1);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    clearInterval(pace);
    const cpuPct = (100 * (cpu() - cpuAt)) / ((Date.now() - paceAt) / 1000);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(reader);
    const slowOpen = !slow.destroyed && slow.readable;
    child.send('stop');
    for (const s of [slow, healthy, pacer]) s.destroy();
    const sorted = [...lat].sort((a, b) => a - b);
    return {
      target: target.label,
      round,
      received: lat.length,
      sent,
      p50Us: percentile(sorted, 0.5),
      p99Us: percentile(sorted, 0.99),
      maxUs: sorted.at(-1) ?? NaN,
      slowOpen,
      cpuPct,
    };
  } finally {
    child.kill('SIGKILL');
    if (process.env.ISO_DEBUG) process.stderr.write(server.logTail() + '\n');
    await server.stop();
  }
}

// ---- main -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      flood: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      workers: { type: 'string' },
      save: { type: 'boolean' },
    },
  });
  if (v.flood !== undefined) return flooder(v.flood);
  const seconds = Number(v.seconds ?? 5);
  const rounds = Number(v.rounds ?? 3);
  const targets: Target[] = [
    { label: `skein -w${v.workers ?? 2}`, kind: 'skein', workers: Number(v.workers ?? 2) },
    { label: 'nats-server', kind: 'nats-server' },
  ];
  process.on('exit', () => killAllNow());
  const results: RunResult[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      const r = await runOnce(t, round, seconds);
      results.push(r);
      process.stdout.write(
        `run target=${JSON.stringify(r.target)} round=${r.round} sent=${r.sent} received=${r.received} p50_us=${r.p50Us.toFixed(0)} p99_us=${r.p99Us.toFixed(0)} max_us=${r.maxUs.toFixed(0)} slow_subscriber_open=${r.slowOpen} server_cpu_pct=${r.cpuPct.toFixed(0)} loadavg=${os.loadavg()[0].toFixed(2)}\n`,
      );
    }
  }
  const lines = ['| target | healthy p50 us | healthy p99 us | max us | received/sent |', '|---|---|---|---|---|'];
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const t of targets) {
    const mine = results.filter((r) => r.target === t.label);
    lines.push(
      `| ${t.label} | ${med(mine.map((r) => r.p50Us)).toFixed(0)} | ${med(mine.map((r) => r.p99Us)).toFixed(0)} | ${med(mine.map((r) => r.maxUs)).toFixed(0)} | ${mine.map((r) => `${r.received}/${r.sent}`).join(', ')} |`,
    );
  }
  const ratios = results
    .filter((r) => r.target !== 'nats-server')
    .map((r) => r.p99Us / results.find((n) => n.target === 'nats-server' && n.round === r.round)!.p99Us);
  lines.push(
    '',
    `healthy p99 ratio to nats-server, per round: ${ratios.map((x) => x.toFixed(2)).join(', ')} (median ${med(ratios).toFixed(2)})`,
  );
  process.stdout.write('\n' + lines.join('\n') + '\n');
  if (v.save) {
    const dir = path.join(REPO_ROOT, 'bench', 'results');
    const file = path.join(dir, `${new Date().toISOString().slice(0, 10)}-${os.hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-isolation.md`);
    const head = `# one slow consumer, one healthy (bench/isolation.ts)\n\n- date: ${new Date().toISOString()}\n- command: npm run bench:isolation -- ${process.argv.slice(2).join(' ')}\n- loadavg at end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n\n`;
    fs.writeFileSync(file, head + lines.join('\n') + '\n');
    process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    killAllNow();
    process.stderr.write(`isolation: ${e.stack ?? e.message}\n`);
    process.exit(2);
  },
);
