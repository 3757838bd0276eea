// The hot loop (hotloop.ts) of several source trees in one process: each tree's Broker is
// loaded side by side and fed the same PUB chunks, rounds alternating between the trees (the
// order reversed every other round), timed by this thread's CPU time (whose clock may tick in
// milliseconds: give rounds of 50 ms or more) and by the wall clock. On a loaded host this
// compares two versions far more steadily than separate runs: the host's noise falls on both
// alike. Whichever tree loads first tends to gain 3-8% (code placement, inline caches), so
// run both orders and trust only a difference that survives the swap.
//
//   npm run bench:hotloop-ab -- /path/treeA /path/treeB
//   NSUB=4 SIZE=1024 N=1000000 ROUNDS=30 npm run bench:hotloop-ab -- /tmp/base .
//   CROSS=1 npm run bench:hotloop-ab -- /tmp/base .    # the crossing of hotloop-cross.ts instead

import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const trees = process.argv.slice(2).map((t) => resolve(t));
if (trees.length === 0) {
  console.error('usage: npm run bench:hotloop-ab -- <tree> [<tree>...]   (env NSUB SIZE N ROUNDS SUBJECT)');
  process.exit(2);
}
const nsubs = Number(process.env.NSUB ?? 1);
const size = Number(process.env.SIZE ?? 16);
const total = Number(process.env.N ?? 2_000_000);
const rounds = Number(process.env.ROUNDS ?? 20);
const subject = process.env.SUBJECT ?? 'bench.x';
/** The publisher on worker 0, the subscribers on worker 1 (both Brokers in this thread, as hotloop-cross.ts). */
const cross = process.env.CROSS === '1';
/** Rounds at the start left out of the figures: the JIT still warms up there. */
const warmupRounds = Math.min(2, rounds - 1);

interface Setup {
  tree: string;
  feed: (chunk: Buffer) => void;
  delivered: { written: number };
  cpuNsPerMsg: number[];
  wallNsPerMsg: number[];
  bytesPerRound: number;
}

const from = (tree: string, file: string) => import(pathToFileURL(`${tree}/${file}`).href);
const setups: Setup[] = [];
for (const tree of trees) {
  const { Broker } = await from(tree, 'src/broker/broker.ts');
  const { createLayout } = await from(tree, 'src/threads/shared.ts');
  const { CountingSocket, hotloopOpts: opts } = await from(tree, 'bench/hotloop-kit.ts');
  const identity = { serverId: 'NHOTLOOP', serverName: 'hotloop', host: '127.0.0.1', port: 0 };
  const layout = createLayout(cross ? 2 : 1, opts.maxControlLine);
  const broker = new Broker(cross ? { ...opts, workers: 2 } : opts, identity, layout, 0, false);
  const delivering = cross ? new Broker({ ...opts, workers: 2 }, identity, layout, 1, false) : broker;
  const pub = new CountingSocket();
  const sub = new CountingSocket();
  delivering.addConnection(sub as Socket, 2, false);
  const subs = Array.from({ length: nsubs }, (_v, i) => `SUB ${subject} ${i + 1}\r\n`).join('');
  sub.emit('data', Buffer.from(`CONNECT {"verbose":false,"pedantic":false}\r\n${subs}`));
  const mesh = (b: unknown) => (b as { mesh: { applyInterest(): void; poll(): boolean } }).mesh;
  if (cross) mesh(broker).applyInterest(); // worker 0 learns worker 1's subscriptions
  broker.addConnection(pub as Socket, 1, false);
  pub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\n'));
  const feed = cross
    ? (c: Buffer) => {
        pub.emit('data', c);
        mesh(delivering).poll();
      }
    : (c: Buffer) => {
        pub.emit('data', c);
        broker.flushAll(); // each chunk a read in a pass of its own
      };
  setups.push({ tree, feed, delivered: sub, cpuNsPerMsg: [], wallNsPerMsg: [], bytesPerRound: 0 });
}

const frame = Buffer.concat([Buffer.from(`PUB ${subject} ${size}\r\n`), Buffer.alloc(size, 97), Buffer.from('\r\n')]);
const perChunk = Math.max(1, Math.floor(65536 / frame.length));
const chunk = Buffer.concat(Array<Buffer>(perChunk).fill(frame));
const chunks = Math.ceil(total / perChunk);
const msgs = chunks * perChunk;

for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? setups : [...setups].reverse();
  for (const s of order) {
    const before = s.delivered.written;
    const cpu0 = process.threadCpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < chunks; i++) s.feed(chunk);
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.threadCpuUsage(cpu0);
    if (r >= warmupRounds) {
      s.cpuNsPerMsg.push(((cpu.user + cpu.system) * 1000) / msgs);
      s.wallNsPerMsg.push(ns / msgs);
    }
    s.bytesPerRound = s.delivered.written - before;
  }
}

const median = (v: number[]): number => {
  const sorted = [...v].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
for (const s of setups) {
  // Trees that deliver different byte counts are not doing the same work: say so.
  console.log(
    `tree=${s.tree}${cross ? ' cross=1' : ''} subs=${nsubs} size=${size} msgs=${msgs} rounds=${s.cpuNsPerMsg.length} ` +
      `cpu_ns_per_msg_median=${median(s.cpuNsPerMsg).toFixed(1)} cpu_ns_per_msg_min=${Math.min(...s.cpuNsPerMsg).toFixed(1)} ` +
      `ns_per_msg_median=${median(s.wallNsPerMsg).toFixed(1)} ns_per_msg_min=${Math.min(...s.wallNsPerMsg).toFixed(1)} ` +
      `delivered_bytes_per_round=${s.bytesPerRound}`,
  );
}
process.exit(0);
