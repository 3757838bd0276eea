// Top self-time functions of V8 .cpuprofile files (from `npm run bench -- <scenario> --cpu-prof`):
//   npm run bench:prof -- bench/results/prof/*.cpuprofile [--top 20]
// One table per file (the main thread and each worker thread write their own file).

import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args[topAt + 1]) : 15;
const files = args.filter((a, i) => !a.startsWith('--') && (topAt < 0 || i !== topAt + 1));
if (files.length === 0) {
  process.stderr.write('usage: npm run bench:prof -- <file.cpuprofile>... [--top N]\n');
  process.exit(2);
}

for (const file of files) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const n = byId.get(id)!;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'}  ${f.url ? path.basename(f.url) + ':' + (f.lineNumber + 1) : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
    if (f.functionName === '(idle)') idle += dt;
  });
  const busy = total - idle;
  process.stdout.write(`${path.basename(file)}: ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy\n`);
  const rows = [...self]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  for (const [k, t] of rows) {
    process.stdout.write(`  ${(t / 1000).toFixed(1).padStart(8)} ms  ${((t / busy) * 100).toFixed(1).padStart(5)}%  ${k}\n`);
  }
}
