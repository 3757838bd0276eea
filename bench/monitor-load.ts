// Does monitoring slow message traffic? One skein server, the bench's pubsub scenario against
// it (`bench/cli.ts pubsub --url`), alternately without and with a client that fetches a
// monitoring endpoint back to back the whole time (default `/connz?subs=1`, over `--conns`
// idle connections with a subscription each, so every answer asks the workers for real work).
// Each round runs both (off then on, or on then off, alternating) so each ratio pairs two runs
// made under the same machine noise; the median ratio is the result. Because throughput on a
// shared host moves with everything else running there, the server's worker threads' CPU time
// per message (from /proc/PID/task) is reported too: the monitoring's cost to the threads that
// carry messages, which other load on the host does not change.
//
//   npm run bench:monitor-load -- [--rounds 5] [--msgs 2M] [--size 16] [--workers 2] [--conns 500]
//                              [--path '/connz?subs=1'] [--interval MS (0: back to back)]
//
// Prints the idle cost (`idle ...` lines: worker and main thread CPU per second with no traffic,
// without and with the polling client), then one `run key=value ...` line per run, one `ratio ...`
// line per round and a summary.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * `--hitter URL`: the monitoring client, in its own process, at the lowest CPU priority: in a
 * deployment the scraper runs elsewhere, and here it must not win CPU from the server or the
 * load generator on a small host (what is measured is the server's cost of answering). It
 * fetches back to back, or every `intervalMs`. Prints its request count on SIGTERM.
 */
async function hitter(url: string, intervalMs: number): Promise<void> {
  try {
    os.setPriority(19);
  } catch {
    // not permitted: run at normal priority
  }
  let requests = 0;
  let failures = 0;
  let stop = false;
  process.on('SIGTERM', () => {
    stop = true;
  });
  while (!stop) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) requests++;
      else failures++;
    } catch {
      failures++;
    }
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
  }
  process.stdout.write(`${JSON.stringify({ requests, failures })}\n`);
}

function startSkein(workers: number): Promise<{ child: ChildProcess; port: number; mon: number }> {
  const child = spawn(
    process.execPath,
    [path.join(root, 'src', 'main.ts'), '-a', '127.0.0.1', '-p', '-1', '-m', '-1', '--workers', String(workers)],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`skein did not start:\n${log}`)), 30_000);
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      log += s;
      const mon = /Starting http monitor on \S+:(\d+)/.exec(log);
      const port = /Listening for client connections on \S+:(\d+)/.exec(log);
      if (mon && port && /Server is ready/.test(log)) {
        clearTimeout(timer);
        resolve({ child, port: Number(port[1]), mon: Number(mon[1]) });
      }
    });
    child.on('exit', (code) => reject(new Error(`skein exited (${code}):\n${log}`)));
  });
}

/** `n` idle raw connections with one subscription each (what the monitoring request walks). */
async function idleConnections(port: number, n: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('data', (d) => {
      if (d.includes('PING')) s.write('PONG\r\n');
    });
    s.on('error', () => undefined);
    s.write(`CONNECT {"verbose":false,"name":"idle-${i}"}\r\nSUB idle.${i} ${i}\r\nPING\r\n`);
    socks.push(s);
  }
  return socks;
}

function runBench(port: number, pid: number, msgs: string, size: string): Promise<{ msgsPerS: number; status: string; other: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'bench', 'cli.ts'),
        'pubsub',
        '--url',
        `nats://127.0.0.1:${port}`,
        '--pid',
        String(pid),
        '--json',
        '--rounds',
        '1',
        '--msgs',
        msgs,
        '--size',
        size,
        '--no-progress',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.on('exit', () => {
      try {
        const doc = JSON.parse(out) as { entries: { runs: { msgsPerS: number; status: string; otherCpuPct: number }[] }[] };
        const r = doc.entries[0].runs[0];
        resolve({ msgsPerS: r.msgsPerS, status: r.status, other: r.otherCpuPct });
      } catch (err) {
        reject(new Error(`bench output not understood: ${(err as Error).message}\n${out.slice(0, 500)}`));
      }
    });
  });
}

/** CPU milliseconds used so far by the server's threads, by thread name (`WorkerThread`, `MainThread`, ...). */
function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const tick = 1000 / 100; // USER_HZ
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) * tick);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return out;
}

function cpuDelta(a: Map<string, number>, b: Map<string, number>, name: string): number {
  return (b.get(name) ?? 0) - (a.get(name) ?? 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** `2M`, `500k`, `1e6`. */
function parseCount(s: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([kKmM]?)$/.exec(s.trim());
  if (!m) throw new Error(`--msgs: not a count: ${s}`);
  return Math.round(Number(m[1]) * ({ '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6 } as Record<string, number>)[m[2]]);
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      hitter: { type: 'string' },
      rounds: { type: 'string', default: '5' },
      msgs: { type: 'string', default: '2M' },
      size: { type: 'string', default: '16' },
      workers: { type: 'string', default: '2' },
      conns: { type: 'string', default: '500' },
      path: { type: 'string', default: '/connz?subs=1' },
      interval: { type: 'string', default: '0' },
    },
  });
  if (v.hitter !== undefined) {
    await hitter(v.hitter, Number(v.interval));
    return;
  }
  const rounds = Number(v.rounds);
  const { child: server, port, mon } = await startSkein(Number(v.workers));
  const idle = await idleConnections(port, Number(v.conns));
  const url = `http://127.0.0.1:${mon}${v.path}`;
  process.stdout.write(
    `meta workers=${v.workers} msgs=${v.msgs} size=${v.size} idle_conns=${v.conns} monitor_path=${v.path} ` +
      `monitor_interval_ms=${v.interval} rounds=${rounds} host_cpus=${os.availableParallelism()} loadavg=${os.loadavg()[0].toFixed(1)}\n`,
  );
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const startHitter = (): { child: ChildProcess; counts: () => Promise<{ requests: number; failures: number }> } => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--hitter', url, '--interval', v.interval], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    return {
      child,
      counts: async () => {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await done;
        return JSON.parse(out || '{"requests":0,"failures":0}') as { requests: number; failures: number };
      },
    };
  };
  // Without message traffic, whatever CPU the worker threads use beyond their timers is what
  // answering the monitoring requests costs them: the cost to the threads that carry messages,
  // measured without the noise of throughput.
  await new Promise((r) => setTimeout(r, 3000)); // the idle connections settle
  for (const monitoring of [false, true, false]) {
    const h = monitoring ? startHitter() : null;
    const before = threadCpuMs(server.pid!);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    const after = threadCpuMs(server.pid!);
    const secs = (Date.now() - t0) / 1000;
    const counts = h !== null ? await h.counts() : null;
    process.stdout.write(
      `idle monitoring=${monitoring ? 'on' : 'off'} worker_cpu_ms_per_s=${(cpuDelta(before, after, 'WorkerThread') / secs).toFixed(1)} ` +
        `main_cpu_ms_per_s=${(cpuDelta(before, after, 'MainThread') / secs).toFixed(1)}` +
        `${counts !== null ? ` monitor_req_per_s=${(counts.requests / secs).toFixed(1)} monitor_failures=${counts.failures}` : ''}\n`,
    );
  }
  const quiet: number[] = [];
  const loaded: number[] = [];
  let failed = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? [false, true] : [true, false];
      const result: Record<string, { msgsPerS: number; status: string; workerUsPerMsg: number }> = {};
      let hitterFailures = 0;
      for (const monitoring of order) {
        const h = monitoring ? startHitter() : null;
        const started = Date.now();
        const before = threadCpuMs(server.pid!);
        const r = await runBench(port, server.pid!, v.msgs, v.size);
        const after = threadCpuMs(server.pid!);
        const msgs = parseCount(v.msgs);
        const workerUsPerMsg = (cpuDelta(before, after, 'WorkerThread') * 1000) / msgs;
        const mainMs = cpuDelta(before, after, 'MainThread');
        let extra = '';
        if (h !== null) {
          const counts = await h.counts();
          hitterFailures += counts.failures;
          const secs = (Date.now() - started) / 1000;
          extra = ` monitor_requests=${counts.requests} monitor_failures=${counts.failures} monitor_req_per_s=${(counts.requests / secs).toFixed(1)}`;
        }
        process.stdout.write(
          `run round=${round} monitoring=${monitoring ? 'on' : 'off'} status=${r.status} msgs_per_s=${Math.round(r.msgsPerS)} ` +
            `worker_cpu_us_per_msg=${workerUsPerMsg.toFixed(3)} main_cpu_ms=${Math.round(mainMs)} other_cpu_pct=${Math.round(r.other)}${extra}\n`,
        );
        result[monitoring ? 'on' : 'off'] = { msgsPerS: r.msgsPerS, status: r.status, workerUsPerMsg };
      }
      const a = result.off;
      const b = result.on;
      if (a.status !== 'ok' || b.status !== 'ok' || hitterFailures > 0) {
        failed++;
        continue;
      }
      quiet.push(a.msgsPerS);
      loaded.push(b.msgsPerS);
      ratios.push(b.msgsPerS / a.msgsPerS);
      cpuRatios.push(b.workerUsPerMsg / a.workerUsPerMsg);
      process.stdout.write(
        `ratio round=${round} msgs_per_s_on_over_off=${(b.msgsPerS / a.msgsPerS).toFixed(3)} worker_cpu_per_msg_on_over_off=${(b.workerUsPerMsg / a.workerUsPerMsg).toFixed(3)}\n`,
      );
    }
  } finally {
    for (const s of idle) s.destroy();
    server.kill('SIGINT');
  }
  if (ratios.length === 0) {
    process.stdout.write(`summary failed_rounds=${failed} (no complete round)\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(
    `summary msgs_per_s_off_median=${Math.round(median(quiet))} msgs_per_s_on_median=${Math.round(median(loaded))} ` +
      `ratio_median=${median(ratios).toFixed(3)} ratio_min=${Math.min(...ratios).toFixed(3)} ratio_max=${Math.max(...ratios).toFixed(3)} ` +
      `worker_cpu_per_msg_ratio_median=${median(cpuRatios).toFixed(3)} failed_rounds=${failed}\n`,
  );
}

await main();
