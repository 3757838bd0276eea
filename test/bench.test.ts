// The bench tool's own tests: its frame reader and delivery checks catch loss, reordering and
// duplication, and a tiny run of every scenario completes against a started server. No test
// asserts a speed (timing is measured by bench/, never asserted).
//
// Scenarios run against SKEIN_TEST_IMPL (default skein), started by the bench's own launcher;
// the cluster scenario also runs on a 2-node nats-server cluster when nats-server is installed.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { mergeGroup, SeqChecker } from '../bench/check.ts';
import { buildPubTemplate, PROBE_SID, ProtocolReader, seqBits, writeSeq } from '../bench/protocol.ts';
import { DEFAULT_RUN_OPTIONS, runOnce } from '../bench/runner.ts';
import type { RunOptions } from '../bench/runner.ts';
import { entryId, findScenario, SCENARIOS, standardMatrix } from '../bench/scenarios.ts';
import { overviewText, type EntryReport } from '../bench/report.ts';
import type { Entry, Params } from '../bench/scenarios.ts';
import { killAllNow, natsServerVersion, REPO_ROOT } from '../bench/servers.ts';
import type { Target } from '../bench/servers.ts';

const impl = process.env.SKEIN_TEST_IMPL ?? 'skein';
const target: Target =
  impl === 'nats-server' ? { label: 'nats-server', kind: 'nats-server' } : { label: 'skein -w2', kind: 'skein', workers: 2 };
const haveNats = natsServerVersion() !== null;

const opts: RunOptions = { ...DEFAULT_RUN_OPTIONS, deadlineMs: 30_000, setupTimeoutMs: 30_000, stallMs: 2000 };

test.after.always(() => killAllNow());

function entry(name: string, over: Partial<Params>): Entry {
  const s = findScenario(name)!;
  const params: Params = { ...s.defaults, genProcs: 1, ...over };
  return { id: entryId(s, params), scenario: s, params };
}

// ---- frame reader --------------------------------------------------------------------------

interface Seen {
  msgs: [number, number, number, string | null][]; // sid, seq, size, reply
  pings: number;
  pongs: number;
  errs: string[];
}

function collector(): { seen: Seen; reader: ProtocolReader } {
  const seen: Seen = { msgs: [], pings: 0, pongs: 0, errs: [] };
  const reader = new ProtocolReader({
    onMsg: (sid, seq, size, b, rs, re) => seen.msgs.push([sid, seq, size, rs < 0 ? null : b.toString('latin1', rs, re)]),
    onPing: () => void seen.pings++,
    onPong: () => void seen.pongs++,
    onInfo: () => {},
    onErr: (l) => void seen.errs.push(l),
  });
  return { seen, reader };
}

function msgFrame(subject: string, sid: number, size: number, seq: number, reply?: string): Buffer {
  const head = Buffer.from(`MSG ${subject} ${sid}${reply ? ' ' + reply : ''} ${size}\r\n`, 'latin1');
  const f = Buffer.alloc(head.length + size + 2, 0x78);
  head.copy(f);
  writeSeq(f, head.length, size, seq);
  f[f.length - 2] = 13;
  f[f.length - 1] = 10;
  return f;
}

const stream = Buffer.concat([
  Buffer.from('INFO {"server_id":"x","max_payload":1048576}\r\n+OK\r\n'),
  msgFrame('a.b', 1, 16, 0),
  Buffer.from('PING\r\n'),
  msgFrame('a.b', 1, 16, 1),
  msgFrame('wild.7.live', 12, 3, 0x0a0b0c),
  msgFrame('req', 1, 70_000, 99, '_INBOX.x.1'),
  msgFrame('probe.x', PROBE_SID, 0, 0),
  Buffer.from('PONG\r\n'),
  msgFrame('a.b', 1, 1, 255),
  Buffer.from("-ERR 'Slow Consumer'\r\n"),
]);

const expected: Seen = {
  msgs: [
    [1, 0, 16, null],
    [1, 1, 16, null],
    [12, 0x0a0b0c, 3, null],
    [1, 99, 70_000, '_INBOX.x.1'],
    [PROBE_SID, 0, 0, null],
    [1, 255, 1, null],
  ],
  pings: 1,
  pongs: 1,
  errs: ["-ERR 'Slow Consumer'"],
};

test('reader decodes a stream fed in one chunk', (t) => {
  const { seen, reader } = collector();
  reader.feed(stream);
  t.deepEqual(seen, expected);
});

test('reader decodes the same stream fed one byte at a time', (t) => {
  const { seen, reader } = collector();
  for (let i = 0; i < stream.length; i++) reader.feed(stream.subarray(i, i + 1));
  t.deepEqual(seen, expected);
});

test('reader decodes the same stream split at every offset into two chunks, and in random chunks', (t) => {
  for (let cut = 1; cut < stream.length; cut += 7) {
    const { seen, reader } = collector();
    reader.feed(stream.subarray(0, cut));
    reader.feed(stream.subarray(cut));
    t.deepEqual(seen, expected, `cut at ${cut}`);
  }
  let x = 12345;
  for (let trial = 0; trial < 20; trial++) {
    const { seen, reader } = collector();
    for (let i = 0; i < stream.length;) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      const n = 1 + (x % 9000);
      reader.feed(stream.subarray(i, i + n));
      i += n;
    }
    t.deepEqual(seen, expected, `trial ${trial}`);
  }
});

test('reader rejects a stream that is not NATS protocol', (t) => {
  const { reader } = collector();
  t.throws(() => reader.feed(Buffer.from('HTTP/1.1 200 OK\r\n')), { message: /unexpected frame/ });
});

test('publisher template frames carry the patched sequence numbers and cycle subjects', (t) => {
  const tpl = buildPubTemplate(['s.0', 's.1', 's.2'], 8, null, 100);
  t.is(tpl.frames % 3, 0);
  for (let f = 0; f < tpl.frames; f++) writeSeq(tpl.buf, tpl.payloadAt[f], 8, 1000 + f);
  const text = tpl.buf.toString('latin1');
  t.true(text.startsWith('PUB s.0 8\r\n'));
  t.is(tpl.buf.readUInt32LE(tpl.payloadAt[1]), 1001);
  t.is(tpl.frameEnd[tpl.frames - 1], tpl.buf.length);
  t.is(text.split('PUB s.1 8\r\n').length - 1, tpl.frames / 3);
});

// ---- delivery checks ---------------------------------------------------------------------

function feedExact(seqs: number[], size = 16): ReturnType<SeqChecker['result']> {
  const c = new SeqChecker('exact', seqBits(size));
  for (const s of seqs) c.push(s);
  return c.result(5);
}

test('exact check passes a complete in-order stream', (t) => {
  const r = feedExact([0, 1, 2, 3, 4]);
  t.true(r.ok);
  t.true(r.orderChecked);
});

test('exact check fails a stream with a missing message', (t) => {
  const r = feedExact([0, 1, 3, 4]);
  t.false(r.ok);
  t.regex(r.firstProblem!, /received 4 of 5 \(1 lost\)/);
});

test('exact check fails a reordered stream even when the count is right', (t) => {
  const r = feedExact([0, 2, 1, 3, 4]);
  t.false(r.ok);
  t.is(r.received, 5);
  t.regex(r.firstProblem!, /carried sequence 2, expected 1/);
});

test('exact check fails a duplicated message', (t) => {
  const r = feedExact([0, 1, 1, 2, 3, 4]);
  t.false(r.ok);
  t.regex(r.firstProblem!, /1 extra/);
});

test('exact check wraps for payloads under 4 bytes and only counts 0-byte payloads', (t) => {
  const c = new SeqChecker('exact', seqBits(1));
  for (let i = 0; i < 600; i++) c.push(i & 0xff);
  t.true(c.result(600).ok);
  const z = new SeqChecker('exact', seqBits(0));
  for (let i = 0; i < 5; i++) z.push(0);
  const r = z.result(5);
  t.true(r.ok);
  t.false(r.orderChecked);
  t.false(z.result(6).ok);
});

test('queue-group check fails on a message lost, on one delivered to two members, and on a member out of order', (t) => {
  const member = (seqs: number[]): SeqChecker => {
    const c = new SeqChecker('increasing', 32, 10);
    for (const s of seqs) c.push(s);
    return c;
  };
  const merge = (ms: SeqChecker[]) =>
    mergeGroup(
      ms.map((m) => m.received),
      ms.map((m) => m.seen),
      10,
    );
  t.true(merge([member([0, 2, 4, 6, 8]), member([1, 3, 5, 7, 9])]).ok);
  t.regex(merge([member([0, 2, 4, 6, 8]), member([1, 3, 5, 7])]).firstProblem!, /9 of 10 \(1 lost\)/);
  t.regex(merge([member([0, 2, 4, 6, 8]), member([1, 2, 5, 7, 9])]).firstProblem!, /9 distinct of 10.*1 delivered to more than one/);
  const swapped = member([0, 4, 2, 6, 8]);
  t.false(swapped.result(-1).ok);
});

// ---- end to end: a broker that loses, reorders or duplicates one message is caught --------

type Fault = 'drop' | 'swap' | 'dup' | 'stall';

// Just enough NATS for the 1->1 scenario (literal subjects, no queues). Message #50 on a
// non-probe subject is dropped, swapped with #51, or delivered twice; or from #50 on the server
// goes silent (delivers nothing, answers no PING), as a deadlocked broker would.
function faultyServer(fault: Fault): Promise<{ url: string; close(): void }> {
  const subs: { sock: net.Socket; subject: string; sid: string }[] = [];
  let k = 0;
  let held: string | null = null;
  const server = net.createServer((sock) => {
    sock.write('INFO {"server_id":"faulty","version":"0.0.0","proto":1,"max_payload":1048576}\r\n');
    let buf = '';
    sock.on('error', () => {});
    sock.on('close', () => {
      for (let i = subs.length - 1; i >= 0; i--) if (subs[i].sock === sock) subs.splice(i, 1);
    });
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const out = new Map<net.Socket, string>();
      const emit = (s: net.Socket, text: string): void => void out.set(s, (out.get(s) ?? '') + text);
      for (;;) {
        const nl = buf.indexOf('\r\n');
        if (nl < 0) break;
        const [op, ...args] = buf.slice(0, nl).split(' ');
        if (op === 'PUB') {
          const size = Number(args[args.length - 1]);
          if (buf.length < nl + 2 + size + 2) break;
          const payload = buf.slice(nl + 2, nl + 2 + size);
          buf = buf.slice(nl + 2 + size + 2);
          const probe = args[0].startsWith('probe.');
          const n = probe ? -1 : k++;
          if (fault === 'stall' && n >= 50) continue;
          for (const s of subs.filter((x) => x.subject === args[0])) {
            const frame = `MSG ${args[0]} ${s.sid} ${size}\r\n${payload}\r\n`;
            if (n === 50 && fault === 'drop') continue;
            if (n === 50 && fault === 'swap') {
              held = frame;
              continue;
            }
            emit(s.sock, frame);
            if (n === 50 && fault === 'dup') emit(s.sock, frame);
            if (n === 51 && held !== null) emit(s.sock, held);
          }
          continue;
        }
        buf = buf.slice(nl + 2);
        if (op === 'PING' && !(fault === 'stall' && k >= 50)) emit(sock, 'PONG\r\n');
        else if (op === 'SUB') subs.push({ sock, subject: args[0], sid: args[args.length - 1] });
      }
      for (const [s, text] of out) s.write(Buffer.from(text, 'latin1'));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        url: `nats://127.0.0.1:${port}`,
        close: () => {
          for (const s of subs) s.sock.destroy();
          server.close();
        },
      });
    });
  });
}

for (const [fault, what, problem] of [
  ['drop', 'loses one message', /received 199 of 200 \(1 lost\)/],
  ['swap', 'reorders two messages', /message #50 carried sequence 51, expected 50/],
  ['dup', 'duplicates one message', /received 201 of 200 \(1 extra\)/],
  ['stall', 'goes silent mid-run', /publishing: no progress for 1000 ms \(200 of 200 sent, 50 of 200 received\)/],
] as const) {
  test.serial(`a run through a broker that ${what} is reported FAILED`, async (t) => {
    t.timeout(30_000);
    const srv = await faultyServer(fault);
    t.teardown(() => srv.close());
    const r = await runOnce(entry('pubsub', { msgs: 200, size: 16 }), { label: 'faulty', kind: 'url', urls: [srv.url] }, 1, {
      ...opts,
      stallMs: 500,
      publishStallMs: 1000,
    });
    t.is(r.status, 'FAILED');
    t.true(
      r.problems.some((p) => problem.test(p)),
      r.problems.join('\n'),
    );
  });
}

// ---- a tiny run of each scenario -----------------------------------------------------------

const tiny: [string, Partial<Params>][] = [
  ['pub', { msgs: 20_000 }],
  ['pub', { msgs: 5_000, n: 2 }],
  ['pubsub', { msgs: 20_000 }],
  ['pubsub', { msgs: 5_000, size: 0 }],
  ['pubsub', { msgs: 5_000, size: 3 }],
  ['pubsub', { msgs: 200, size: 65_536 }],
  ['fanout', { msgs: 5_000, n: 3 }],
  ['pairs', { msgs: 5_000, n: 3 }],
  ['queue', { msgs: 5_000, n: 3 }],
  ['reqrep', { msgs: 300, n: 1 }],
  ['reqrep', { msgs: 400, n: 4 }],
  ['idle', { msgs: 5_000, conns: 300 }],
  ['wildcard', { msgs: 5_000, interest: 5_000, subjects: 64 }],
];

for (const [name, over] of tiny) {
  const e = entry(name, over);
  test.serial(`tiny ${e.id} run completes on ${target.label} with every message checked`, async (t) => {
    t.timeout(60_000);
    const r = await runOnce(e, target, 1, opts);
    t.is(r.status, 'ok', r.problems.join('\n'));
    t.deepEqual(r.problems, []);
    t.true(r.published > 0);
    if (name === 'pub') t.is(r.order, 'n/a');
    else if (e.params.size === 0) t.is(r.order, 'unchecked');
    else t.is(r.order, 'checked');
    if (name === 'fanout') t.is(r.delivered, r.published * e.params.n);
    if (name === 'reqrep') {
      t.truthy(r.latency);
      t.true(r.latency!.p50Us > 0 && r.latency!.p50Us <= r.latency!.p99Us);
    }
    t.true(r.serverCpuPct >= 0);
    t.true(r.serverRssMB > 0);
  });
}

test.serial(`tiny cluster run completes on ${target.label} (publisher and subscriber on different servers)`, async (t) => {
  t.timeout(60_000);
  const r = await runOnce(entry('cluster', { msgs: 5_000 }), target, 1, opts);
  t.is(r.status, 'ok', r.problems.join('\n'));
  t.is(r.delivered, r.published);
});

test.serial('tiny cluster run completes on a 2-node nats-server cluster', async (t) => {
  if (!haveNats) {
    t.log('nats-server is not installed: skipped');
    t.pass();
    return;
  }
  t.timeout(60_000);
  const r = await runOnce(entry('cluster', { msgs: 5_000 }), { label: 'nats-server', kind: 'nats-server' }, 1, opts);
  t.is(r.status, 'ok', r.problems.join('\n'));
});

test.serial('tiny gateway run completes across two nats-server clusters joined by a gateway', async (t) => {
  if (!haveNats) {
    t.log('nats-server is not installed: skipped');
    t.pass();
    return;
  }
  t.timeout(60_000);
  const r = await runOnce(entry('gateway', { msgs: 5_000 }), { label: 'nats-server', kind: 'nats-server' }, 1, opts);
  t.is(r.status, 'ok', r.problems.join('\n'));
  t.is(r.delivered, r.published);
  t.is(r.order, 'checked');
});

test.serial('the gateway scenario runs on skein: every message crosses the gateway', async (t) => {
  t.timeout(60_000);
  const r = await runOnce(entry('gateway', { msgs: 5_000 }), { label: 'skein', kind: 'skein', workers: 1 }, 1, opts);
  t.is(r.status, 'ok', r.problems.join('\n'));
  t.is(r.delivered, r.published);
});

// ---- the command line --------------------------------------------------------------------

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, 'bench', 'cli.ts'), ...args],
      { cwd: REPO_ROOT, timeout: 90_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

test.serial('cli prints key=value lines, a table and ratios for --against nats-server', async (t) => {
  t.timeout(90_000);
  const args = ['pubsub', '--msgs', '5000', '--rounds', '2', '--no-progress'];
  if (impl === 'nats-server') args.push('--target', 'nats-server');
  else args.push('--workers', '1', '--against', 'nats-server');
  const r = await cli(args);
  t.is(r.code, 0, r.stderr);
  const runs = r.stdout.split('\n').filter((l) => l.startsWith('run '));
  t.is(runs.length, impl === 'nats-server' ? 2 : 4);
  for (const l of runs)
    t.regex(l, /status=ok .*msgs_per_s=\d+ .*srv_cpu_pct=[\d.]+ srv_ns_per_msg=\d+ srv_peak_rss_mb=[\d.]+ gen_cpu_pct=[\d.]+/);
  t.regex(r.stdout, /^summary entry=pubsub\/16B /m);
  t.regex(r.stdout, /== 1->1 16 B/);
  if (impl !== 'nats-server' && haveNats)
    t.regex(r.stdout, /^ratio entry=pubsub\/16B target="skein -w1" against=nats-server metric=msgs_per_s pairs=2 median=[\d.]+/m);
});

test.serial('cli --rate paces the publisher (N messages per write every T ms) and reports server CPU per message', async (t) => {
  t.timeout(90_000);
  const r = await cli([
    'pubsub',
    '--msgs',
    '400',
    '--rate',
    '5/1ms',
    '--rounds',
    '1',
    '--no-progress',
    '--target',
    impl === 'nats-server' ? 'nats-server' : 'skein',
  ]);
  t.is(r.code, 0, r.stderr);
  const run = r.stdout.split('\n').find((l) => l.startsWith('run '));
  t.regex(run ?? '', /entry=pubsub\/16B\/rate5per1ms .*status=ok .*delivered=400 .*srv_ns_per_msg=\d+/);
  // 400 messages at 5 per ms take at least 80 ms: the pace held (far from saturation).
  const elapsed = Number(/elapsed_s=([\d.]+)/.exec(run ?? '')?.[1]);
  t.true(elapsed >= 0.07, `elapsed ${elapsed}`);
  t.regex(r.stdout, /== 1->1 16 B, 5 msgs every 1 ms/);
  t.regex(r.stdout, /srv ns\/msg/);
});

test.serial('cli --json prints one JSON document with the runs and summaries', async (t) => {
  t.timeout(90_000);
  const r = await cli(['pub', '--msgs', '5000', '--rounds', '1', '--json', '--target', impl === 'nats-server' ? 'nats-server' : 'skein']);
  t.is(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { meta: Record<string, string>; entries: { id: string; runs: { status: string }[] }[] };
  t.is(doc.entries[0].id, 'pub/16B');
  t.is(doc.entries[0].runs[0].status, 'ok');
  t.truthy(doc.meta['nats-server']);
});

test.serial('cli rejects an unknown scenario with usage', async (t) => {
  t.timeout(30_000);
  const r = await cli(['nope']);
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown scenario "nope"/);
});

// ---- command line --------------------------------------------------------------------------

function npmBench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('npm', ['run', '--silent', 'bench', '--', ...args], { cwd: REPO_ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('the standard matrix sweeps pairs over 1, 2 and 4 workers, runs the route path at 16 B and 1 KiB, and the overview has a column for every target', (t) => {
  const m = standardMatrix(1, 1);
  const pairs = m.filter((e) => e.scenario.name === 'pairs');
  t.is(pairs.length, 1);
  t.deepEqual(pairs[0].workers, [1, 2, 4]);
  t.deepEqual(
    m
      .filter((e) => e.scenario.name === 'cluster')
      .map((e) => e.params.size)
      .sort((a, b) => a - b),
    [16, 1024],
  );
  t.true(m.filter((e) => e.scenario.name !== 'pairs').every((e) => e.workers === undefined));
  const report = (title: string, targets: string[]): EntryReport =>
    ({
      title,
      latency: false,
      ratios: [],
      runs: [],
      summaries: targets.map((target, i) => ({ target, status: 'ok', ok: 1, runs: 1, problems: [], msgsPerS: { median: 1000 * (i + 1) } })),
    }) as unknown as EntryReport;
  const text = overviewText(
    [report('a', ['skein -w1', 'skein -w2', 'nats-server']), report('pairs', ['skein -w1', 'skein -w2', 'skein -w4', 'nats-server'])],
    null,
  );
  const lines = text.split('\n');
  t.regex(lines[1], /scenario +metric +skein -w1 +skein -w2 +skein -w4 +nats-server/);
  t.regex(
    lines.find((l) => l.includes('pairs'))!,
    /1\.0k +2\.0k +3\.0k +4\.0k/,
  );
});

test('npm run bench -- --help exits 0 and lists every scenario and every option the cli reads', async (t) => {
  t.timeout(60_000);
  const r = await npmBench(['--help']);
  t.is(r.code, 0, r.stderr);
  for (const s of SCENARIOS) t.regex(r.stdout, new RegExp(`^  ${s.name} +\\S`, 'm'), `scenario ${s.name}`);
  for (const extra of ['sizes', 'all', 'report']) t.regex(r.stdout, new RegExp(`^  ${extra} `, 'm'));
  // Every option bench/cli.ts reads (v.name or v['name']) must be in the help.
  const source = fs.readFileSync(path.join(REPO_ROOT, 'bench', 'cli.ts'), 'utf8');
  const read = new Set([...source.matchAll(/\bv(?:\.([a-z]+)|\['([a-z-]+)'\])/g)].map((m) => m[1] ?? m[2]));
  t.true(read.size > 10, [...read].join(' '));
  for (const name of read) t.regex(r.stdout, new RegExp(`^  (?:-\\w, )?--${name}\\b`, 'm'), `option --${name}`);
  t.is((await npmBench(['-h'])).code, 0);
});

test('bench: an unknown option names itself and the valid ones; no scenario is a usage error', async (t) => {
  t.timeout(60_000);
  const r = await npmBench(['pubsub', '--sise', '16']);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0], /^bench: unknown option --sise; valid options: --msgs --size .* --help/);
  t.notRegex(r.stderr, /positional argument/);
  const missing = await npmBench(['pubsub', '--msgs']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /^bench: Option '--msgs <value>' argument missing\n$/);
  const none = await npmBench([]);
  t.is(none.code, 2);
  t.regex(none.stderr, /^usage: npm run bench/);
});

// ---- bench/churn.ts: connection churn and memory -----------------------------------------

function churnCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, 'bench', 'churn.ts'), ...args],
      { cwd: REPO_ROOT, timeout: 110_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

test.serial('churn bench: PING percentiles during connection churn, RSS for idle connections and after a SUB/UNSUB storm', async (t) => {
  t.timeout(120_000);
  const against = haveNats ? ['--against', 'nats-server'] : [];
  const churn = await churnCli([
    'churn',
    '--conns',
    '300',
    '--procs',
    '1',
    '--parallel',
    '10',
    '--quiet-secs',
    '1',
    '--workers',
    '2',
    ...against,
  ]);
  t.is(churn.code, 0, churn.stderr);
  const churnRuns = churn.stdout.split('\n').filter((l) => l.startsWith('run '));
  t.is(churnRuns.length, haveNats ? 2 : 1, churn.stdout);
  for (const l of churnRuns)
    t.regex(l, /conns=300 errors=0 .*ping_p50=[\d.]+ ping_p90=[\d.]+ ping_p99=[\d.]+ ping_max=[\d.]+ .*rss_quiet_mb=\d+/);
  const idle = await churnCli(['idle', '--conns', '200', '--procs', '1', '--quiet-secs', '1', '--workers', '2']);
  t.is(idle.code, 0, idle.stderr);
  t.regex(idle.stdout, /^run scenario=idle target=skein-w2 round=0 conns=200 rss_before_mb=\d+ rss_idle_conns_mb=\d+/m);
  const storm = await churnCli(['subchurn', '--secs', '2', '--quiet-secs', '1', '--workers', '2']);
  t.is(storm.code, 0, storm.stderr);
  t.regex(storm.stdout, /^run scenario=subchurn target=skein-w2 round=0 secs=2 msgs=[1-9]\d* subs_unsubs=[1-9]\d* /m);
});

// ---- the socket-free hot loops ----------------------------------------------------------------

function hotloop(script: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, 'bench', script)],
      { cwd: REPO_ROOT, timeout: 60_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('the crossing hot loop delivers byte for byte what the one-worker hot loop delivers, at 16 B and 1 KiB', async (t) => {
  t.timeout(120_000);
  for (const size of ['16', '1024']) {
    const env = { SIZE: size, N: '20000', ROUNDS: '2' };
    const [one, cross] = await Promise.all([hotloop('hotloop.ts', env), hotloop('hotloop-cross.ts', env)]);
    t.is(one.code, 0, one.stderr);
    t.is(cross.code, 0, cross.stderr);
    const delivered = (out: string): string[] => [...out.matchAll(/delivered_bytes=(\d+)/g)].map((m) => m[1]);
    t.is(delivered(cross.stdout).length, 2, cross.stdout);
    t.true(Number(delivered(cross.stdout)[0]) > 20000 * Number(size), `${size} B: ${cross.stdout}`);
    t.deepEqual(delivered(cross.stdout), delivered(one.stdout), `${size} B`);
  }
});
