// Summaries over rounds, skein/nats-server ratios, and the three outputs: key=value lines,
// a readable table, and JSON/markdown for `all`.

import type { RunResult } from './runner.ts';
import { entryTitle, type Entry } from './scenarios.ts';

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface TargetSummary {
  target: string;
  runs: number;
  ok: number;
  skipped: number;
  status: 'ok' | 'FAILED' | 'skipped';
  problems: string[];
  order: 'checked' | 'unchecked' | 'n/a';
  msgsPerS?: Spread;
  deliveriesPerS?: Spread;
  mbPerS?: Spread;
  serverCpuPct?: Spread;
  serverNsPerMsg?: Spread;
  serverRssMB?: Spread;
  genCpuPct?: Spread;
  genCpuMaxPct?: Spread;
  otherCpuPct?: Spread;
  p50Us?: Spread;
  p90Us?: Spread;
  p99Us?: Spread;
  p999Us?: Spread;
}

export interface Ratio {
  target: string;
  against: string;
  metric: string; // 'msgs_per_s' (higher is better for skein) or 'p50_us' / 'p99_us' (lower is better)
  pairs: number;
  spread: Spread;
}

export interface EntryReport {
  id: string;
  title: string;
  scenario: string;
  params: Entry['params'];
  latency: boolean;
  runs: RunResult[];
  summaries: TargetSummary[];
  ratios: Ratio[];
}

export function spread(values: number[]): Spread | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1] };
}

export function summarize(entry: Entry, runs: RunResult[], targets: string[], against: string | null): EntryReport {
  const latency = entry.scenario.name === 'reqrep';
  const summaries = targets.map((t): TargetSummary => {
    const mine = runs.filter((r) => r.target === t);
    const ok = mine.filter((r) => r.status === 'ok');
    const skipped = mine.filter((r) => r.status === 'skipped').length;
    const pick = (f: (r: RunResult) => number | undefined): Spread | undefined => spread(ok.map((r) => f(r) ?? NaN));
    // First lines only; the server log tails stay in the per-run records (JSON).
    const problems = [
      ...new Set(
        mine
          .filter((r) => r.status !== 'ok')
          .flatMap((r) => r.problems.filter((p) => !p.startsWith('server log tail')).map((p) => p.split('\n')[0])),
      ),
    ];
    return {
      target: t,
      runs: mine.length,
      ok: ok.length,
      skipped,
      status: skipped === mine.length ? 'skipped' : ok.length === mine.length ? 'ok' : 'FAILED',
      problems,
      order:
        ok.length > 0 && ok.every((r) => r.order === 'n/a')
          ? 'n/a'
          : ok.length > 0 && ok.every((r) => r.order === 'checked')
            ? 'checked'
            : 'unchecked',
      msgsPerS: pick((r) => r.msgsPerS),
      deliveriesPerS: pick((r) => r.deliveriesPerS),
      mbPerS: pick((r) => r.mbPerS),
      serverCpuPct: pick((r) => r.serverCpuPct),
      serverNsPerMsg: pick((r) => r.serverNsPerMsg),
      serverRssMB: pick((r) => r.serverRssMB),
      genCpuPct: pick((r) => r.genCpuPct),
      genCpuMaxPct: pick((r) => r.genCpuMaxPct),
      otherCpuPct: pick((r) => r.otherCpuPct),
      p50Us: pick((r) => r.latency?.p50Us),
      p90Us: pick((r) => r.latency?.p90Us),
      p99Us: pick((r) => r.latency?.p99Us),
      p999Us: pick((r) => r.latency?.p999Us),
    };
  });
  const ratios: Ratio[] = [];
  if (against !== null) {
    const base = runs.filter((r) => r.target === against && r.status === 'ok');
    for (const t of targets) {
      if (t === against) continue;
      const metrics: [string, (r: RunResult) => number][] = latency
        ? [
            ['p50_us', (r) => r.latency!.p50Us],
            ['p99_us', (r) => r.latency!.p99Us],
            ['msgs_per_s', (r) => r.msgsPerS],
          ]
        : [['msgs_per_s', (r) => r.msgsPerS]];
      for (const [metric, f] of metrics) {
        // Pair runs of the same round: they ran back to back, under the same machine noise.
        const values: number[] = [];
        for (const r of runs.filter((x) => x.target === t && x.status === 'ok')) {
          const b = base.find((x) => x.round === r.round);
          if (b) values.push(f(r) / f(b));
        }
        const s = spread(values);
        if (s) ratios.push({ target: t, against, metric, pairs: values.length, spread: s });
      }
    }
  }
  return {
    id: entry.id,
    title: entryTitle(entry),
    scenario: entry.scenario.name,
    params: entry.params,
    latency,
    runs,
    summaries,
    ratios,
  };
}

// ---- formatting --------------------------------------------------------------------------

export function fmtRate(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  if (x >= 1e6) return `${(x / 1e6).toFixed(x >= 1e7 ? 1 : 2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(x >= 1e5 ? 0 : 1)}k`;
  return x.toFixed(0);
}

function fmt(x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  return x.toFixed(digits);
}

function fmtSpread(s: Spread | undefined, f: (x: number) => string): string {
  if (!s) return '-';
  if (s.min === s.max) return f(s.median);
  return `${f(s.median)} [${f(s.min)}-${f(s.max)}]`;
}

function num(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? 'nan' : Number(x.toFixed(digits)).toString();
}

function kvEscape(v: string): string {
  return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
}

// One key=value line per run.
export function runLine(r: RunResult): string {
  const kv: [string, string][] = [
    ['entry', r.entry],
    ['target', r.target],
    ['round', String(r.round)],
    ['status', r.status],
    ['published', String(r.published)],
    ['delivered', String(r.delivered)],
    ['order', r.order],
    ['elapsed_s', num(r.elapsedS, 4)],
    ['msgs_per_s', num(r.msgsPerS, 0)],
    ['deliveries_per_s', num(r.deliveriesPerS, 0)],
    ['mb_per_s', num(r.mbPerS, 2)],
    ['srv_cpu_pct', num(r.serverCpuPct, 1)],
    ['srv_ns_per_msg', num(r.serverNsPerMsg, 0)],
    ['srv_peak_rss_mb', num(r.serverRssMB, 1)],
    ['gen_cpu_pct', num(r.genCpuPct, 1)],
    ['gen_cpu_max_pct', num(r.genCpuMaxPct, 1)],
    ['other_cpu_pct', num(r.otherCpuPct, 1)],
    ['steal_pct', num(r.stealPct, 1)],
  ];
  if (r.latency) {
    kv.push(['p50_us', num(r.latency.p50Us, 1)], ['p90_us', num(r.latency.p90Us, 1)], ['p99_us', num(r.latency.p99Us, 1)]);
    kv.push(['p999_us', num(r.latency.p999Us, 1)], ['max_us', num(r.latency.maxUs, 1)]);
  }
  if (r.problems.length) kv.push(['problem', r.problems[0].split('\n')[0]]);
  return 'run ' + kv.map(([k, v]) => `${k}=${kvEscape(v)}`).join(' ');
}

// One key=value line per target summary and per ratio.
export function summaryLines(e: EntryReport): string[] {
  const out: string[] = [];
  for (const s of e.summaries) {
    const kv: [string, string][] = [
      ['entry', e.id],
      ['target', s.target],
      ['status', s.status],
      ['ok_runs', `${s.ok}/${s.runs}`],
    ];
    const add = (k: string, sp: Spread | undefined, d: number): void => {
      if (sp) kv.push([`${k}_median`, num(sp.median, d)], [`${k}_min`, num(sp.min, d)], [`${k}_max`, num(sp.max, d)]);
    };
    if (e.latency) {
      add('p50_us', s.p50Us, 1);
      add('p90_us', s.p90Us, 1);
      add('p99_us', s.p99Us, 1);
      add('p999_us', s.p999Us, 1);
    }
    add('msgs_per_s', s.msgsPerS, 0);
    add('mb_per_s', s.mbPerS, 2);
    if (s.serverCpuPct) kv.push(['srv_cpu_pct_median', num(s.serverCpuPct.median, 1)]);
    add('srv_ns_per_msg', s.serverNsPerMsg, 0);
    if (s.serverRssMB) kv.push(['srv_peak_rss_mb_median', num(s.serverRssMB.median, 1)]);
    if (s.genCpuPct) kv.push(['gen_cpu_pct_median', num(s.genCpuPct.median, 1)]);
    if (s.otherCpuPct) kv.push(['other_cpu_pct_median', num(s.otherCpuPct.median, 1)]);
    if (s.problems.length) kv.push(['problem', s.problems[0]]);
    out.push('summary ' + kv.map(([k, v]) => `${k}=${kvEscape(v)}`).join(' '));
  }
  for (const r of e.ratios) {
    out.push(
      `ratio entry=${e.id} target=${kvEscape(r.target)} against=${kvEscape(r.against)} metric=${r.metric} pairs=${r.pairs} ` +
        `median=${num(r.spread.median, 3)} min=${num(r.spread.min, 3)} max=${num(r.spread.max, 3)}`,
    );
  }
  return out;
}

function pad(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]))
      .join('  ')
      .trimEnd(),
  );
}

function statusCell(s: TargetSummary): string {
  if (s.status === 'skipped') return 'skipped';
  const order = s.ok > 0 && s.order === 'unchecked' ? ', order unchecked' : '';
  return s.ok === s.runs ? `${s.ok}/${s.runs} ok${order}` : `FAILED ${s.runs - s.ok}/${s.runs}`;
}

function ratioCell(e: EntryReport, target: string, metric: string): string {
  const r = e.ratios.find((x) => x.target === target && x.metric === metric);
  return r ? fmtSpread(r.spread, (x) => x.toFixed(2)) : '';
}

function tableRows(e: EntryReport, against: string | null): string[][] {
  const ratioHead = against ? `vs ${against}` : '';
  if (e.latency) {
    const rows = [
      [
        'target',
        'status',
        'p50 us',
        'p90 us',
        'p99 us',
        'p99.9 us',
        'req/s',
        'srv CPU',
        'srv ns/msg',
        'peak RSS',
        'gen CPU',
        'other',
        ratioHead ? `p50 ${ratioHead}` : '',
        ratioHead ? `p99 ${ratioHead}` : '',
      ],
    ];
    for (const s of e.summaries) {
      rows.push([
        s.target,
        statusCell(s),
        fmtSpread(s.p50Us, (x) => fmt(x, 0)),
        fmt(s.p90Us?.median, 0),
        fmtSpread(s.p99Us, (x) => fmt(x, 0)),
        fmt(s.p999Us?.median, 0),
        fmtRate(s.msgsPerS?.median),
        s.serverCpuPct ? `${fmt(s.serverCpuPct.median, 0)}%` : '-',
        fmtSpread(s.serverNsPerMsg, (x) => fmt(x, 0)),
        s.serverRssMB ? `${fmt(s.serverRssMB.median, 0)} MB` : '-',
        s.genCpuPct ? `${fmt(s.genCpuPct.median, 0)}%` : '-',
        s.otherCpuPct ? `${fmt(s.otherCpuPct.median, 0)}%` : '-',
        ratioCell(e, s.target, 'p50_us'),
        ratioCell(e, s.target, 'p99_us'),
      ]);
    }
    return rows;
  }
  const fanout = e.summaries.some((s) => s.deliveriesPerS && s.msgsPerS && s.deliveriesPerS.median > s.msgsPerS.median * 1.5);
  const head = [
    'target',
    'status',
    'msgs/s',
    ...(fanout ? ['deliveries/s'] : []),
    'MB/s',
    'srv CPU',
    'srv ns/msg',
    'peak RSS',
    'gen CPU (max proc)',
    'other',
    ratioHead,
  ];
  const rows = [head];
  for (const s of e.summaries) {
    rows.push([
      s.target,
      statusCell(s),
      fmtSpread(s.msgsPerS, fmtRate),
      ...(fanout ? [fmtRate(s.deliveriesPerS?.median)] : []),
      fmt(s.mbPerS?.median, 1),
      s.serverCpuPct ? `${fmt(s.serverCpuPct.median, 0)}%` : '-',
      fmtSpread(s.serverNsPerMsg, (x) => fmt(x, 0)),
      s.serverRssMB ? `${fmt(s.serverRssMB.median, 0)} MB` : '-',
      s.genCpuPct ? `${fmt(s.genCpuPct.median, 0)}% (${fmt(s.genCpuMaxPct?.median, 0)}%)` : '-',
      s.otherCpuPct ? `${fmt(s.otherCpuPct.median, 0)}%` : '-',
      ratioCell(e, s.target, 'msgs_per_s'),
    ]);
  }
  return rows;
}

function entryHeading(e: EntryReport): string {
  const p = e.params;
  const unit = e.latency ? 'requests' : 'msgs per publisher';
  const rounds = e.runs.length ? Math.max(...e.runs.map((r) => r.round)) : 0;
  return `${e.title}  [${e.id}: ${p.msgs.toLocaleString('en-US')} ${unit}, ${rounds} round${rounds === 1 ? '' : 's'}]`;
}

export function textTable(e: EntryReport, against: string | null): string {
  const lines = [`== ${entryHeading(e)}`, ...pad(tableRows(e, against)).map((l) => '   ' + l)];
  for (const s of e.summaries) for (const p of s.problems) lines.push(`   ${s.target}: ${p}`);
  return lines.join('\n');
}

// One row per scenario: each target's headline number (msgs/s, or p50 latency for reqrep)
// with its ratio to the `against` target.
function overviewRows(entries: EntryReport[]): string[][] {
  // Every target any entry ran, in order of first appearance (an entry may sweep more worker
  // counts than the others: its extra columns are empty elsewhere).
  const targets: string[] = [];
  for (const e of entries) {
    for (const s of e.summaries) {
      if (targets.includes(s.target)) continue;
      // A swept skein column goes after the other skein columns.
      let at = targets.length;
      if (s.target.startsWith('skein')) while (at > 0 && !targets[at - 1].startsWith('skein')) at--;
      targets.splice(at, 0, s.target);
    }
  }
  const rows = [['scenario', 'metric', ...targets]];
  for (const e of entries) {
    const cells = targets.map((name) => {
      const s = e.summaries.find((x) => x.target === name);
      if (s === undefined) return '';
      if (s.status === 'skipped') return 'skipped';
      if (s.ok === 0) return 'FAILED';
      const value = e.latency ? `${fmt(s.p50Us?.median, 0)} us` : fmtRate(s.msgsPerS?.median);
      const r = e.ratios.find((x) => x.target === s.target && x.metric === (e.latency ? 'p50_us' : 'msgs_per_s'));
      const failed = s.ok < s.runs ? ` (${s.runs - s.ok} FAILED)` : '';
      const cpu = s.serverNsPerMsg ? `, ${fmt(s.serverNsPerMsg.median, 0)} ns/msg` : '';
      return (r ? `${value} (x${r.spread.median.toFixed(2)})` : value) + cpu + failed;
    });
    rows.push([e.title, e.latency ? 'p50 latency, srv CPU' : 'msgs/s, srv CPU', ...cells]);
  }
  return rows;
}

// A warning when other work on the host used much CPU during the runs.
function noiseNote(entries: EntryReport[]): string | null {
  const other = spread(entries.flatMap((e) => e.runs.map((r) => r.otherCpuPct)));
  if (!other || other.median < 25) return null;
  return (
    `Note: other work on this host used a median ${other.median.toFixed(0)}% of a core (max ${other.max.toFixed(0)}%) during these runs ` +
    '("other" column): absolute numbers are depressed and noisy; the paired per-round ratios are the figures to quote.'
  );
}

export function overviewText(entries: EntryReport[], against: string | null): string {
  const head = against ? `== overview (medians; xR = ratio to ${against}, median of per-round ratios)` : '== overview (medians)';
  const note = noiseNote(entries);
  return [head, ...pad(overviewRows(entries)).map((l) => '   ' + l), ...(note ? ['   ' + note] : [])].join('\n');
}

export function markdown(entries: EntryReport[], against: string | null, meta: Record<string, string>): string {
  const out: string[] = ['# skein bench results', ''];
  for (const [k, v] of Object.entries(meta)) out.push(`- ${k}: ${v}`);
  out.push('', '## Overview', '');
  out.push(
    `Medians over the rounds${against ? `; (xR) = ratio to ${against}, the median of per-round ratios (msgs/s: above 1 is faster; latency: below 1 is faster)` : ''}; ns/msg = server CPU (all threads) per delivered message.`,
    '',
  );
  const ov = overviewRows(entries);
  out.push(`| ${ov[0].join(' | ')} |`, `|${ov[0].map(() => '---').join('|')}|`);
  for (const r of ov.slice(1)) out.push(`| ${r.join(' | ')} |`);
  const note = noiseNote(entries);
  if (note) out.push('', note);
  out.push('', '## Details', '');
  out.push(
    'Cells are median [min-max] over the rounds; ratios pair runs of the same round (skein / nats-server;',
    'for msgs/s above 1 means skein is faster, for latency below 1 means skein is faster). CPU is % of one core;',
    '"gen" is the load generator, "other" is everything else on the host during the run (noise).',
    '',
  );
  for (const e of entries) {
    out.push(`### ${entryHeading(e)}`, '');
    const rows = tableRows(e, against);
    out.push(`| ${rows[0].join(' | ')} |`, `|${rows[0].map(() => '---').join('|')}|`);
    for (const r of rows.slice(1)) out.push(`| ${r.join(' | ')} |`);
    for (const s of e.summaries) for (const p of s.problems) out.push('', `${s.target}: ${p}`);
    out.push('');
  }
  return out.join('\n');
}
