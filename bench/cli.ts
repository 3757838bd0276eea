// `npm run bench -- <scenario> [options]`: see bench/README.md or `npm run bench -- --help`.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { markdown, overviewText, runLine, summarize, summaryLines, textTable } from './report.ts';
import type { EntryReport } from './report.ts';
import { DEFAULT_RUN_OPTIONS, runOnce } from './runner.ts';
import type { RunOptions, RunResult } from './runner.ts';
import { entryId, findScenario, SCENARIOS, standardMatrix, SWEEP_SIZES, sweepMsgs } from './scenarios.ts';
import type { Entry, Params } from './scenarios.ts';
import { hostCpuSeconds, killAllNow, natsServerVersion, REPO_ROOT, skeinAvailable } from './servers.ts';
import type { Target } from './servers.ts';
import { enableBenchTls } from './tls.ts';

const NATS = 'nats-server';

/**
 * Every option, in the order --help lists them: parseArgs' table, the help text and the
 * unknown-option message are all built from this one list. A line of `help` after the first
 * is printed indented under it.
 */
interface OptionSpec {
  name: string;
  type: 'string' | 'boolean';
  short?: string;
  arg?: string;
  help: string;
}

const OPTIONS = [
  { name: 'msgs', type: 'string', arg: 'N', help: 'messages per publisher (reqrep: requests in total); 5M, 200k, 1e6 accepted' },
  { name: 'size', type: 'string', arg: 'N', help: 'payload bytes (16, 1KiB, 64k)' },
  { name: 'sizes', type: 'string', arg: 'a,b,...', help: "payload sizes for 'sizes'" },
  { name: 'n', type: 'string', arg: 'N', help: 'subscribers / pairs / queue members / requesters / publishers' },
  { name: 'subs', type: 'string', arg: 'N', help: 'same as --n' },
  { name: 'pairs', type: 'string', arg: 'N', help: 'same as --n' },
  { name: 'members', type: 'string', arg: 'N', help: 'same as --n' },
  { name: 'requesters', type: 'string', arg: 'N', help: 'same as --n' },
  { name: 'pubs', type: 'string', arg: 'N', help: 'same as --n' },
  { name: 'conns', type: 'string', arg: 'N', help: "idle connections ('idle', default 10000)" },
  { name: 'interest', type: 'string', arg: 'N', help: "subscriptions of the interest connection ('wildcard', default 100000)" },
  { name: 'subjects', type: 'string', arg: 'N', help: "distinct live subjects ('wildcard', default 4096)" },
  { name: 'rounds', type: 'string', arg: 'N', help: 'rounds; targets alternate A B A B within the run (default 3)' },
  { name: 'against', type: 'string', arg: 'nats-server', help: 'also run every scenario on a fresh nats-server; print ratios' },
  { name: 'target', type: 'string', arg: 'T', help: 'skein (default) or nats-server: what is measured without --url' },
  { name: 'workers', type: 'string', arg: '1,2,4', help: 'skein --workers sweep (one target per value)' },
  {
    name: 'url',
    type: 'string',
    arg: 'U[,U2]',
    help: "measure an already running server (two urls for 'cluster', the leaf scenarios (hub,leaf) and 'gateway')",
  },
  { name: 'pid', type: 'string', arg: 'P[,P2]', help: 'with --url: sample CPU and peak RSS of these server pids' },
  {
    name: 'rate',
    type: 'string',
    arg: 'N/Tms',
    help: 'pace each publisher: N messages in one write every T ms (e.g. 5/1ms), as a client that\nwrites a few messages per read; default: as fast as the server takes them',
  },
  { name: 'scale', type: 'string', arg: 'F', help: 'multiply default message counts (e.g. 0.1 for a quick look)' },
  { name: 'gen-procs', type: 'string', arg: 'K', help: "spread each role's connections over up to K processes (default 1)" },
  { name: 'deadline', type: 'string', arg: 'S', help: "seconds from 'go' until a run is declared FAILED (default 120)" },
  { name: 'json', type: 'boolean', help: 'print one JSON document instead of key=value lines and tables' },
  { name: 'save', type: 'boolean', help: "also write bench/results/<date>-<host>.json and .md (always on for 'all')" },
  { name: 'out', type: 'string', arg: 'DIR', help: 'results directory (default bench/results)' },
  { name: 'no-progress', type: 'boolean', help: 'no progress bar on stderr' },
  { name: 'cpu-prof', type: 'boolean', help: 'start skein with node --cpu-prof (profiles in bench/results/prof/)' },
  { name: 'node-args', type: 'string', arg: 'ARGS', help: 'more node flags for skein, space-separated (e.g. "--trace-gc")' },
  { name: 'no-cluster-skein', type: 'boolean', help: 'skip the cluster scenario for skein' },
  { name: 'cluster-skein', type: 'boolean', help: 'accepted for old command lines; the default now' },
  { name: 'tls', type: 'boolean', help: 'clients connect over TLS (throwaway CA; servers get --tls --tlscert --tlskey)' },
  {
    name: 'wait-quiet',
    type: 'string',
    arg: 'S',
    help: 'before each run, wait up to S seconds for the host to be quiet\n(other work below 25% of a core over 1 s)',
  },
  { name: 'help', type: 'boolean', short: 'h', help: 'this text' },
] as const satisfies readonly OptionSpec[];

type Values = { [O in (typeof OPTIONS)[number] as O['name']]?: O['type'] extends 'string' ? string : boolean };

function optionLines(): string {
  return OPTIONS.map((o: OptionSpec) => {
    const head = `  ${o.short ? `-${o.short}, ` : ''}--${o.name}${o.arg ? ` ${o.arg}` : ''}`;
    const [first, ...more] = o.help.split('\n');
    const pad = ' '.repeat(22);
    const lead = head.length < pad.length ? head.padEnd(pad.length) : `${head}\n${pad}`;
    return [lead + first, ...more.map((l) => pad + l)].join('\n');
  }).join('\n');
}

const HELP = `usage: npm run bench -- <scenario> [options]

scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(9)} ${s.summary}`).join('\n')}
  sizes     payload sweep 1->1 over --sizes (default ${SWEEP_SIZES.join(',')})
  all       the standard matrix, skein --workers 1,2 against nats-server; writes bench/results/
  report F  re-print the tables of a saved results JSON and rewrite its markdown

options:
${optionLines()}
`;

/** parseArgs, with its errors said in one line that names the option and the valid ones. */
function parseCommandLine(argv: string[]): ReturnType<typeof parseOptions> {
  try {
    return parseOptions(argv);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = /'([^']+)'/.exec(e.message)?.[1] ?? '?';
      const valid = OPTIONS.map((o) => `--${o.name}`).join(' ');
      throw new UsageError(`unknown option ${name}; valid options: ${valid} (npm run bench -- --help)`);
    }
    if (e.code?.startsWith('ERR_PARSE_ARGS_')) throw new UsageError(e.message.split('. ')[0]);
    throw err;
  }
}

function parseOptions(argv: string[]): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const o of OPTIONS as readonly OptionSpec[]) options[o.name] = o.short ? { type: o.type, short: o.short } : { type: o.type };
  return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
}

/** A command-line mistake: one line on stderr, exit 2 (as every other error here). */
class UsageError extends Error {}

function parseCount(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([kKmM]?)$/.exec(s.trim());
  if (!m) throw new Error(`--${what}: not a count: ${s}`);
  const mult = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6 }[m[2]]!;
  return Math.round(Number(m[1]) * mult);
}

function parseSize(s: string): number {
  const m = /^(\d+)\s*(b|B|k|K|KiB|kb|KB|m|M|MiB)?$/.exec(s.trim());
  if (!m) throw new Error(`--size: not a size: ${s}`);
  const u = (m[2] ?? '').toLowerCase();
  return Number(m[1]) * (u.startsWith('k') ? 1024 : u.startsWith('m') ? 1024 * 1024 : 1);
}

function list(s: string | undefined): string[] {
  return (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseCommandLine(process.argv.slice(2));
  const v = values as Values;
  const name = positionals[0];
  if (v.help || name === 'help' || name === 'list') {
    process.stdout.write(HELP);
    return 0;
  }
  if (!name) {
    process.stderr.write(HELP);
    return 2;
  }
  const note = (s: string): void => void process.stderr.write(`bench: ${s}\n`);
  if (name === 'report') {
    // Re-render a saved run: `npm run bench -- report bench/results/<file>.json` (rewrites the .md).
    const file = positionals[1];
    if (!file) throw new Error('usage: npm run bench -- report <results.json>');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { meta: Record<string, string>; entries: EntryReport[] };
    const vs = doc.entries[0]?.ratios[0]?.against ?? null;
    const entries = doc.entries.map((e) => {
      const s = findScenario(e.scenario)!;
      return summarize(
        { id: e.id, scenario: s, params: e.params },
        e.runs,
        e.summaries.map((x) => x.target),
        vs,
      );
    });
    doc.entries = entries;
    for (const e of entries) process.stdout.write(textTable(e, vs) + '\n\n');
    process.stdout.write(overviewText(doc.entries, vs) + '\n');
    const md = file.replace(/\.json$/, '') + '.md';
    fs.writeFileSync(md, markdown(doc.entries, vs, doc.meta));
    note(`wrote ${md}`);
    return 0;
  }

  // ---- entries
  const scale = v.scale ? Number(v.scale) : 1;
  const genProcs = v['gen-procs'] ? parseCount(v['gen-procs'], 'gen-procs') : 1;
  const nFlag = v.n ?? v.subs ?? v.pairs ?? v.members ?? v.requesters ?? v.pubs;
  const over: Partial<Params> = {};
  if (v.size) over.size = parseSize(v.size);
  if (nFlag) over.n = parseCount(nFlag, 'n');
  if (v.conns) over.conns = parseCount(v.conns, 'conns');
  if (v.interest) over.interest = parseCount(v.interest, 'interest');
  if (v.subjects) over.subjects = parseCount(v.subjects, 'subjects');
  if (v.rate) {
    const m = /^(\d+)\/(\d+(?:\.\d+)?)ms$/.exec(v.rate.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) <= 0) throw new Error(`--rate: N/Tms, e.g. 5/1ms, not ${v.rate}`);
    over.rate = { batch: Number(m[1]), intervalMs: Number(m[2]) };
  }
  const msgs = v.msgs ? parseCount(v.msgs, 'msgs') : undefined;
  let entries: Entry[];
  if (name === 'all') {
    entries = standardMatrix(scale, genProcs).map((e) => {
      const params = { ...e.params, ...(msgs !== undefined ? { msgs } : {}) };
      // Worker counts given on the command line apply to every entry.
      return { ...e, params, id: entryId(e.scenario, params), workers: v.workers ? undefined : e.workers };
    });
  } else if (name === 'sizes') {
    const s = findScenario('pubsub')!;
    const sizes = v.sizes ? list(v.sizes).map(parseSize) : SWEEP_SIZES;
    entries = sizes.map((size) => {
      const params: Params = { ...s.defaults, genProcs, ...over, size, msgs: msgs ?? Math.max(1, Math.round(sweepMsgs(size) * scale)) };
      return { id: entryId(s, params), scenario: s, params };
    });
  } else {
    const s = findScenario(name);
    if (!s) {
      process.stderr.write(`bench: unknown scenario ${JSON.stringify(name)}\n\n${HELP}`);
      return 2;
    }
    const params: Params = { ...s.defaults, genProcs, ...over, msgs: msgs ?? Math.max(1, Math.round(s.defaults.msgs * scale)) };
    entries = [{ id: entryId(s, params), scenario: s, params }];
  }

  // ---- targets
  const natsVersion = natsServerVersion();
  let against: string | null = v.against ?? (name === 'all' && !v.url ? NATS : null);
  if (against !== null && against !== NATS) throw new Error(`--against: only "${NATS}" is supported`);
  const targets: Target[] = [];
  if (v.url) {
    targets.push({ label: 'url', kind: 'url', urls: list(v.url), pids: list(v.pid).map(Number) });
  } else if (v.target === NATS) {
    targets.push({ label: NATS, kind: 'nats-server' });
    against = null;
  } else if (v.target === undefined || v.target === 'skein') {
    const workers = v.workers ? list(v.workers).map((w) => parseCount(w, 'workers')) : name === 'all' ? [1, 2] : [];
    if (!skeinAvailable())
      note(`skein's src/main.ts does not exist yet: skein runs will fail (use --target ${NATS} to measure the reference only)`);
    if (workers.length === 0) targets.push({ label: 'skein', kind: 'skein' });
    for (const w of workers) targets.push({ label: `skein -w${w}`, kind: 'skein', workers: w });
  } else {
    throw new Error(`--target: skein or ${NATS}, not ${v.target}`);
  }
  if (against === NATS) {
    if (natsVersion === null) {
      note(`${NATS} is NOT installed (not on PATH): running without it, no ratios`);
      against = null;
    } else {
      targets.push({ label: NATS, kind: 'nats-server' });
    }
  }
  if (targets.some((t) => t.kind === 'nats-server') && natsVersion === null) {
    note(`${NATS} is NOT installed (not on PATH): its runs will fail`);
  }
  const rounds = v.rounds ? parseCount(v.rounds, 'rounds') : 3;
  if (v.tls) enableBenchTls();

  const outDir = path.resolve(v.out ?? path.join(REPO_ROOT, 'bench', 'results'));
  const runOpts: RunOptions = {
    ...DEFAULT_RUN_OPTIONS,
    deadlineMs: v.deadline ? Number(v.deadline) * 1000 : DEFAULT_RUN_OPTIONS.deadlineMs,
    launch: {
      noClusterSkein: v['no-cluster-skein'] ?? false,
      nodeArgs: [
        ...(v['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.join(outDir, 'prof')}`] : []),
        ...(typeof v['node-args'] === 'string' ? v['node-args'].split(' ').filter((a) => a !== '') : []),
      ],
    },
  };

  const meta: Record<string, string> = {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    loadavg_at_start: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    node: process.version,
    'nats-server': natsVersion ?? 'not installed',
    skein_commit:
      (git(['rev-parse', '--short', 'HEAD']) || '?') + (git(['status', '--porcelain', 'src', 'workers']) ? ' (+ uncommitted changes)' : ''),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
    targets: targets.map((t) => t.label).join(', '),
    rounds: String(rounds),
    tls: v.tls ? 'clients' : 'off',
  };

  // ---- run
  const showBar = !v.json && !v['no-progress'] && process.stderr.isTTY === true;
  const bar = showBar
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: '{label} [{bar}] {percentage}% {value}/{total}',
          hideCursor: true,
          clearOnComplete: true,
          barsize: 30,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let interrupted = false;
  const onSignal = (sig: string): void => {
    if (interrupted) return;
    interrupted = true;
    bar?.stop();
    note(`${sig}: stopping every process this run started`);
    killAllNow();
    process.exit(130);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('exit', () => killAllNow());

  if (!v.json) {
    for (const [k, val] of Object.entries(meta)) process.stdout.write(`meta ${k}=${JSON.stringify(val)}\n`);
  }
  const reports: EntryReport[] = [];
  for (const entry of entries) {
    const runs: RunResult[] = [];
    const entryTargets = targetsFor(entry, targets);
    for (let round = 1; round <= rounds; round++) {
      for (const target of entryTargets) {
        const label = `${entry.id} ${target.label} round ${round}/${rounds}`;
        if (v['wait-quiet']) await waitQuiet(Number(v['wait-quiet']) * 1000, note);
        if (bar) bar.start(1, 0, { label });
        else if (!v.json) note(`running ${label}`);
        const r = await runOnce(entry, target, round, {
          ...runOpts,
          onProgress: bar
            ? (done, total) => {
                bar.setTotal(total);
                bar.update(done);
              }
            : undefined,
        });
        bar?.stop();
        runs.push(r);
        if (!v.json) process.stdout.write(runLine(r) + '\n');
        if (r.status === 'FAILED' && !v.json) note(`${label} FAILED:\n  ${r.problems.join('\n  ')}`);
      }
    }
    const rep = summarize(
      entry,
      runs,
      entryTargets.map((t) => t.label),
      against,
    );
    reports.push(rep);
    if (!v.json) {
      for (const l of summaryLines(rep)) process.stdout.write(l + '\n');
      process.stdout.write('\n' + textTable(rep, against) + '\n\n');
    }
  }

  if (!v.json && reports.length > 1) process.stdout.write(overviewText(reports, against) + '\n');
  const doc = { meta, entries: reports };
  if (v.json) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  if (name === 'all' || v.save) {
    fs.mkdirSync(outDir, { recursive: true });
    const day = new Date().toISOString().slice(0, 10);
    const host = os.hostname().replace(/[^A-Za-z0-9_.-]/g, '_');
    let base = path.join(outDir, `${day}-${host}`);
    for (let k = 2; fs.existsSync(base + '.json'); k++) base = path.join(outDir, `${day}-${host}-${k}`);
    fs.writeFileSync(base + '.json', JSON.stringify(doc, null, 2) + '\n');
    fs.writeFileSync(base + '.md', markdown(reports, against, meta));
    note(`wrote ${path.relative(process.cwd(), base)}.json and .md`);
  }
  if (v['cpu-prof'])
    note(
      `skein cpu profiles in ${path.join(outDir, 'prof')}; summarise with: npm run bench:prof -- ${path.join(outDir, 'prof')}/*.cpuprofile`,
    );
  const failed = reports.some((r) => r.summaries.some((s) => s.status === 'FAILED'));
  return failed ? 1 : 0;
}

// An entry with its own worker counts (the matrix's sweep) runs skein at those instead of the
// run's, in the same place among the targets; other targets (nats-server, a URL) stay.
function targetsFor(entry: Entry, targets: Target[]): Target[] {
  const sweep = entry.workers;
  if (sweep === undefined || !targets.some((t) => t.kind === 'skein' && t.workers !== undefined)) return targets;
  const out: Target[] = [];
  let placed = false;
  for (const t of targets) {
    if (t.kind !== 'skein' || t.workers === undefined) out.push(t);
    else if (!placed) {
      placed = true;
      for (const w of sweep) out.push({ label: `skein -w${w}`, kind: 'skein', workers: w });
    }
  }
  return out;
}

// Waits until the whole host used less than 25% of one core over a 1 s window, or gives up.
async function waitQuiet(maxMs: number, note: (s: string) => void): Promise<void> {
  const end = Date.now() + maxMs;
  let busyPct = NaN;
  while (Date.now() < end) {
    const a = hostCpuSeconds().busy;
    await new Promise((r) => setTimeout(r, 1000));
    busyPct = (hostCpuSeconds().busy - a) * 100;
    if (busyPct < 25) return;
  }
  note(`host still busy (${busyPct.toFixed(0)}% of a core) after ${maxMs / 1000} s: running anyway`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: Error) => {
    killAllNow();
    process.stderr.write(`bench: ${e.message}\n`);
    process.exitCode = 2;
  },
);
