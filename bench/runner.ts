// Runs one scenario once against one target: start fresh servers, start the load-generator
// processes, wait until every subscription is known, let the publishers go, wait until every
// message has arrived (or the deadline passes), collect reports, check delivery, stop
// everything that was started.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import hdr from 'hdr-histogram-js';
import { mergeGroup } from './check.ts';
import type { CheckResult } from './check.ts';
import type { ChildMsg, GenSpec, IdleReport, ParentMsg, PubReport, ReqReport, Report, SubReport } from './ipc.ts';
import type { Entry, Plan } from './scenarios.ts';
import { cpuSeconds, hostCpuSeconds, launch, NotSupportedError, peakRssBytes, track } from './servers.ts';
import type { Launched, LaunchOptions, Target } from './servers.ts';

const GEN_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'gen.ts');

export interface RunOptions {
  deadlineMs: number; // from 'go' to the last message
  setupTimeoutMs: number; // starting servers, connecting, subscribing, probing
  stallMs: number; // after the publishers are done: give up when nothing arrives for this long
  publishStallMs: number; // while publishing: give up when no message is sent or received for this long
  launch: LaunchOptions;
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_RUN_OPTIONS: RunOptions = {
  deadlineMs: 120_000,
  setupTimeoutMs: 60_000,
  stallMs: 3000,
  publishStallMs: 10_000,
  launch: {},
};

export interface Latency {
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  meanUs: number;
}

export interface RunResult {
  entry: string;
  target: string;
  round: number;
  status: 'ok' | 'FAILED' | 'skipped';
  problems: string[];
  published: number;
  delivered: number;
  order: 'checked' | 'unchecked' | 'n/a'; // n/a: nothing is delivered (pub-only)
  elapsedS: number;
  msgsPerS: number; // published messages (requests for reqrep) per second
  deliveriesPerS: number;
  mbPerS: number; // payload megabytes (1e6) per second: delivered, or published when pub-only
  serverCpuPct: number; // % of one core, summed over the target's server processes
  // Server CPU (all threads, user + system) per message it delivered, in ns: published for
  // pub-only, two per request for reqrep (the request and its reply), delivered otherwise.
  serverNsPerMsg: number;
  serverRssMB: number; // peak RSS (VmHWM), summed over the target's server processes
  genCpuPct: number; // % of one core, summed over the load-generator processes
  genCpuMaxPct: number; // the busiest load-generator process
  // Noise indicators: CPU used by everything else on the host during the run (host busy minus
  // server and load generator), and hypervisor steal; both % of one core.
  otherCpuPct: number;
  stealPct: number;
  latency?: Latency;
}

class Child {
  readonly proc: ChildProcess;
  readonly spec: GenSpec;
  readonly index: number;
  ready = false;
  done = false;
  progress = 0;
  report: Report | null = null;

  constructor(index: number, spec: GenSpec) {
    this.index = index;
    this.spec = spec;
    this.proc = fork(GEN_FILE, [], {
      execPath: process.execPath,
      // BENCH_GEN_NODE_ARGS (e.g. "--cpu-prof"): profile the load generator itself.
      execArgv: (process.env.BENCH_GEN_NODE_ARGS ?? '').split(' ').filter(Boolean),
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    track(this.proc);
  }

  send(m: ParentMsg): void {
    if (this.proc.connected) this.proc.send(m);
  }
}

function nowNs(): number {
  return Number(process.hrtime.bigint());
}

function emptyResult(entry: Entry, target: Target, round: number): RunResult {
  return {
    entry: entry.id,
    target: target.label,
    round,
    status: 'FAILED',
    problems: [],
    published: 0,
    delivered: 0,
    order: 'unchecked',
    elapsedS: NaN,
    msgsPerS: NaN,
    deliveriesPerS: NaN,
    mbPerS: NaN,
    serverCpuPct: NaN,
    serverNsPerMsg: NaN,
    serverRssMB: NaN,
    genCpuPct: NaN,
    genCpuMaxPct: NaN,
    otherCpuPct: NaN,
    stealPct: NaN,
  };
}

export async function runOnce(entry: Entry, target: Target, round: number, opts: RunOptions = DEFAULT_RUN_OPTIONS): Promise<RunResult> {
  const result = emptyResult(entry, target, round);
  let servers: Launched;
  try {
    servers = await launch(target, entry.scenario.servers, {
      readyTimeoutMs: opts.setupTimeoutMs,
      ...opts.launch,
      topology: entry.scenario.topology,
    });
  } catch (e) {
    if (e instanceof NotSupportedError) {
      result.status = 'skipped';
      result.problems.push(e.message);
    } else {
      result.problems.push(`server start: ${(e as Error).message}`);
    }
    return result;
  }
  const uid = crypto.randomBytes(3).toString('hex');
  const plan = entry.scenario.plan(entry.params, servers.urls, uid);
  const children = plan.children.map((spec, i) => new Child(i, spec));
  try {
    await drive(plan, children, servers, opts, result);
  } catch (e) {
    const msg = (e as Error).message;
    if (!result.problems.includes(msg)) result.problems.push(msg);
  } finally {
    await Promise.all(
      children.map(async (c) => {
        c.send({ type: 'exit' });
        const t = setTimeout(() => c.proc.kill('SIGKILL'), 2000);
        if (c.proc.exitCode === null && c.proc.signalCode === null) await new Promise((r) => c.proc.once('exit', r));
        clearTimeout(t);
      }),
    );
    await servers.stop();
  }
  if (result.problems.length > 0) {
    result.status = 'FAILED';
    const tail = servers.logTail().trim();
    if (tail && result.problems.some((p) => /closed|ERR|exited|deadline|lost/.test(p))) {
      result.problems.push(`server log tail:\n${tail.split('\n').slice(-8).join('\n')}`);
    }
  } else {
    result.status = 'ok';
  }
  return result;
}

// Waits for `cond` to become true; re-evaluated on every child message. Rejects on a child
// error, a child exit, or the timeout.
function makeWaiter(children: Child[]) {
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  const poke = (): void => {
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  for (const c of children) {
    c.proc.on('message', (m: ChildMsg) => {
      switch (m.type) {
        case 'ready':
          c.ready = true;
          break;
        case 'done':
          c.done = true;
          break;
        case 'progress':
          c.progress = m.n;
          break;
        case 'final':
          c.report = m.report;
          break;
        case 'error':
          failure ??= new Error(`${c.spec.role} process: ${m.message}`);
          break;
        case 'probed':
          break;
      }
      poke();
    });
    c.proc.once('exit', (code, sig) => {
      if (c.report === null) failure ??= new Error(`${c.spec.role} process exited early (code ${code}, signal ${sig})`);
      poke();
    });
  }
  return async function until(cond: () => boolean, timeoutMs: number, what: string, tick?: () => void): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (failure) throw failure;
      if (cond()) return;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${what}: timed out after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(left, 100));
      });
      wake = null;
      if (tick) tick();
    }
  };
}

async function drive(plan: Plan, children: Child[], servers: Launched, opts: RunOptions, result: RunResult): Promise<void> {
  const until = makeWaiter(children);
  for (const c of children) c.send({ type: 'init', spec: c.spec });
  await until(() => children.every((c) => c.ready), opts.setupTimeoutMs, 'connecting and subscribing');

  // Probe until every subscribing connection has seen its probe message: its subscription has
  // then reached the publishers' server (across a route, or across skein's workers).
  if (plan.probes.length > 0) {
    const pending = new Set(plan.probes);
    for (const c of children) {
      c.proc.on('message', (m: ChildMsg) => {
        if (m.type !== 'probed') return;
        const spec = c.spec;
        const subject = spec.role === 'sub' ? spec.conns[m.conn].probe : spec.role === 'rep' ? spec.probe : '';
        pending.delete(subject);
      });
    }
    let last = 0;
    const sendProbes = (): void => {
      if (Date.now() - last < 50) return;
      last = Date.now();
      for (const i of plan.probers) children[i].send({ type: 'probe', subjects: [...pending] });
    };
    sendProbes();
    await until(
      () => pending.size === 0,
      Math.min(opts.setupTimeoutMs, 20_000),
      "waiting for subscriptions to reach the publishers' server",
      sendProbes,
    );
  }

  const cpu0 = servers.pids.map(cpuSeconds);
  const host0 = hostCpuSeconds();
  const t0 = nowNs();
  const deadline = Date.now() + opts.deadlineMs;
  for (const c of children) c.send({ type: 'go' });
  const senders = children.filter((c) => c.spec.role === 'pub' || c.spec.role === 'req');
  const receivers = children.filter((c) => c.spec.role === 'sub');
  const progressOf = children.filter((c) => c.spec.role === plan.progressRole);
  const report = (): void =>
    opts.onProgress?.(
      progressOf.reduce((a, c) => a + c.progress, 0),
      plan.progressTotal,
    );
  const counts = (): string => {
    const sent = senders.reduce((a, c) => a + c.progress, 0);
    const got = receivers.reduce((a, c) => a + c.progress, 0);
    return `${sent} of ${plan.published} sent, ${got} of ${plan.delivered} received`;
  };
  // A server that stops making progress (deadlock, stalled flow control) fails the run after
  // publishStallMs instead of holding it until the deadline.
  let lastCounts = '';
  let countsChanged = Date.now();
  try {
    await until(
      () => senders.every((c) => c.done),
      opts.deadlineMs,
      'publishing (deadline)',
      () => {
        report();
        const now = counts();
        if (now !== lastCounts) {
          lastCounts = now;
          countsChanged = Date.now();
        } else if (Date.now() - countsChanged > opts.publishStallMs) {
          throw new Error(`publishing: no progress for ${opts.publishStallMs} ms`);
        }
      },
    );
  } catch (e) {
    throw new Error(`${(e as Error).message} (${counts()})`);
  }

  // Publishers are done (their PONG came back: the server has every PUB). Wait for delivery,
  // giving up when the deadline passes or nothing has arrived for stallMs.
  let lastProgress = -1;
  let lastChange = Date.now();
  try {
    await until(
      () => receivers.every((c) => c.done),
      Math.max(1, deadline - Date.now()),
      'delivering (deadline)',
      () => {
        report();
        const p = receivers.reduce((a, c) => a + c.progress, 0);
        if (p !== lastProgress) {
          lastProgress = p;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > opts.stallMs) {
          throw new Error(`delivering: nothing arrived for ${opts.stallMs} ms after the publishers finished (${counts()})`);
        }
      },
    );
  } catch (e) {
    // Still collect the reports below: they say how many messages were lost.
    result.problems.push((e as Error).message);
  }
  const t1 = nowNs();
  const cpu1 = servers.pids.map(cpuSeconds);
  const host1 = hostCpuSeconds();
  const rss = servers.pids.map(peakRssBytes);
  report();

  for (const c of children) c.send({ type: 'finish' });
  await until(() => children.every((c) => c.report !== null), 20_000, 'collecting reports');

  const windowS = (t1 - t0) / 1e9;
  result.serverCpuPct = servers.pids.length ? (cpu1.reduce((a, v, i) => a + v - cpu0[i], 0) / windowS) * 100 : NaN;
  result.serverRssMB = servers.pids.length ? rss.reduce((a, v) => a + v, 0) / 1e6 : NaN;
  evaluate(plan, children, result);
  const handled = plan.pubOnly ? result.published : plan.latency ? 2 * (result.published + (plan.unmeasured ?? 0)) : result.delivered;
  if (servers.pids.length && handled > 0) result.serverNsPerMsg = (cpu1.reduce((a, v, i) => a + v - cpu0[i], 0) * 1e9) / handled;
  const genS = (result.genCpuPct / 100) * result.elapsedS; // measured over the run's own window
  const serverS = servers.pids.length ? cpu1.reduce((a, v, i) => a + v - cpu0[i], 0) : 0;
  // Without the server's pid (--url without --pid) its CPU would be counted as "other".
  if (servers.pids.length) result.otherCpuPct = Math.max(0, ((host1.busy - host0.busy - serverS - genS) / windowS) * 100);
  result.stealPct = ((host1.steal - host0.steal) / windowS) * 100;
}

function evaluate(plan: Plan, children: Child[], result: RunResult): void {
  const reports = children.map((c) => c.report!);
  const pubs = reports.filter((r): r is PubReport => r.role === 'pub');
  const subs = reports.filter((r): r is SubReport => r.role === 'sub');
  const reqs = reports.filter((r): r is ReqReport => r.role === 'req');
  const idles = reports.filter((r): r is IdleReport => r.role === 'idle' || r.role === 'interest');
  const problems = result.problems;

  // Delivery checks.
  const sent = pubs.reduce((a, r) => a + r.sent, 0);
  if (pubs.length > 0 && sent !== plan.published) problems.push(`published ${sent} of ${plan.published}`);
  let orderChecked = true;
  const checks: CheckResult[] = [];
  if (plan.queueGroup) {
    const members = plan.queueGroup.children.map((i) => children[i].report as SubReport);
    const received = members.flatMap((r) => r.checks.map((c) => c.received));
    const seen = members.flatMap((r) => r.seen);
    checks.push(mergeGroup(received, seen, plan.queueGroup.total));
    for (const r of members) checks.push(...r.checks); // per-member order
  } else {
    for (const r of subs) checks.push(...r.checks);
  }
  for (const c of checks) {
    if (!c.orderChecked) orderChecked = false;
    if (!c.ok) problems.push(c.firstProblem ?? 'delivery check failed');
  }
  for (const r of reqs) problems.push(...r.problems);
  for (const r of idles) {
    if (r.alive !== r.connections)
      problems.push(`${r.connections - r.alive} of ${r.connections} ${r.role} connections were closed by the server`);
    if (r.unexpected > 0) problems.push(`${r.role} connections received ${r.unexpected} messages they never subscribed to`);
  }
  result.order = plan.pubOnly ? 'n/a' : orderChecked ? 'checked' : 'unchecked';

  // Rates.
  const size = plan.children.find((c) => c.role === 'pub')?.conns[0]?.size ?? 0;
  let elapsedNs: number;
  if (plan.latency) {
    const first = Math.min(...reqs.map((r) => r.firstSendNs));
    const last = Math.max(...reqs.map((r) => r.lastRecvNs));
    elapsedNs = last - first;
    result.published = reqs.reduce((a, r) => a + r.completed, 0);
    result.delivered = result.published;
    const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 3 });
    for (const r of reqs) h.add(hdr.decodeFromCompressedBase64(r.histogram));
    result.latency = {
      p50Us: h.getValueAtPercentile(50) / 1000,
      p90Us: h.getValueAtPercentile(90) / 1000,
      p99Us: h.getValueAtPercentile(99) / 1000,
      p999Us: h.getValueAtPercentile(99.9) / 1000,
      maxUs: h.maxValue / 1000,
      meanUs: h.mean / 1000,
    };
  } else {
    const first = Math.min(...pubs.map((r) => r.firstWriteNs));
    const last = plan.pubOnly ? Math.max(...pubs.map((r) => r.pongNs)) : Math.max(...subs.map((r) => r.lastRecvNs));
    elapsedNs = last - first;
    result.published = sent;
    result.delivered = plan.pubOnly ? 0 : subs.reduce((a, r) => a + r.received, 0);
  }
  const elapsedS = elapsedNs / 1e9;
  result.elapsedS = elapsedS;
  if (elapsedS > 0 && Number.isFinite(elapsedS)) {
    result.msgsPerS = result.published / elapsedS;
    result.deliveriesPerS = result.delivered / elapsedS;
    result.mbPerS = ((plan.pubOnly ? result.published : result.delivered) * size) / elapsedS / 1e6;
    const cpus = reports.map((r) => (r.cpuUs / 1e6 / elapsedS) * 100);
    result.genCpuPct = cpus.reduce((a, v) => a + v, 0);
    result.genCpuMaxPct = Math.max(...cpus);
  }
}
