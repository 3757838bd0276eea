// Pool threads load skein's TypeScript from the copy the main thread stripped once
// (src/threads/sources.ts, workers/boot.mjs), never loading Node's type stripper themselves:
// it costs about 8 MB in every thread that loads it. The stripper is Node's bundled amaro (swc
// built to WebAssembly): its internal module shows in process.moduleLoadList once loaded.

import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BOOT = new URL('../workers/boot.mjs', import.meta.url).href;
const SOURCES = new URL('../src/threads/sources.ts', import.meta.url).href;
const PISCINA = import.meta.resolve('piscina');

/** A package root with src/probe.ts (which imports src/dep.ts) and no workers/ folder. */
function probePackage(t: { teardown(fn: () => void): void }): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-sources-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'src'));
  fs.writeFileSync(path.join(root, 'src', 'dep.ts'), 'export const answer: number = 42;\n');
  fs.writeFileSync(
    path.join(root, 'src', 'probe.ts'),
    [
      "import { answer } from './dep.ts';",
      'interface Report { stripper: string[]; answer: number; line: number }',
      'export default function probe(): Report {',
      '  const stack: string = new Error("where").stack ?? "";',
      '  const line = Number(/probe\\.ts:(\\d+):/.exec(stack)?.[1] ?? -1);',
      '  const stripper = process.moduleLoadList.filter((m: string) => /amaro/.test(m));',
      '  return { stripper, answer, line };',
      '}',
      '',
    ].join('\n'),
  );
  return fs.realpathSync(root);
}

const MEMORY = new URL('../src/threads/memory.ts', import.meta.url).href;

interface ProbeRun {
  /** The probe module, whose default export runs in the pool thread. */
  entry: string;
  /** Package root whose sources the main side strips for the thread (null: none). */
  sourcesRoot: string | null;
  /** The main side sets --expose-gc before it starts the pool, as the server does. */
  exposeGc?: boolean;
}

/**
 * Runs the probe in a thread of a piscina pool started, as a server starts its pools, in a
 * child process of its own that exits when done; returns what the probe returned.
 */
async function runProbe<R>(p: ProbeRun): Promise<R> {
  const script = [
    `import { Piscina } from ${JSON.stringify(PISCINA)};`,
    `import { stripSources } from ${JSON.stringify(SOURCES)};`,
    `import { exposeGcToNewThreads } from ${JSON.stringify(MEMORY)};`,
    `import { pathToFileURL } from 'node:url';`,
    `const [entry, root, exposeGc] = process.argv.slice(1);`,
    `if (exposeGc === '1') exposeGcToNewThreads();`,
    `const pool = new Piscina({ filename: ${JSON.stringify(BOOT)}, minThreads: 1, maxThreads: 1 });`,
    `const sources = root === '' ? null : stripSources(pathToFileURL(root + '/'));`,
    `process.stdout.write(JSON.stringify(await pool.run({ boot: { entry, sources } })), () => process.exit(0));`,
  ].join('\n');
  const args = [p.entry, p.sourcesRoot ?? '', p.exposeGc === true ? '1' : '0'];
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, ...args], {
    timeout: 30_000,
    killSignal: 'SIGKILL',
  });
  return JSON.parse(stdout) as R;
}

interface StripReport {
  stripper: string[];
  answer: number;
  line: number;
}

/** What the worker-entry probe reports: the listed built-ins it loaded, and typeof gc. */
interface ModuleReport {
  builtins: string[];
  gc: string;
}

test('a pool thread runs TypeScript stripped on the main thread without loading the type stripper', async (t) => {
  t.timeout(30_000);
  const root = probePackage(t);
  const entry = pathToFileURL(path.join(root, 'src', 'probe.ts')).href;
  const r = await runProbe<StripReport>({ entry, sourcesRoot: root });
  t.is(r.answer, 42, 'imports between the files resolve through the hook');
  t.is(r.line, 4, 'stack traces keep the source line numbers');
  t.deepEqual(r.stripper, [], 'no type stripper in the thread');
  // Without the stripped copy, the same thread strips the files itself: the check can fail.
  const own = await runProbe<StripReport>({ entry, sourcesRoot: null });
  t.is(own.answer, 42);
  t.true(own.stripper.length > 0, 'the stripper is loaded when the thread strips for itself');
});

test("a client worker's modules load neither fs/promises, v8, vm, tls nor crypto, and its memory reducer finds gc on its global", async (t) => {
  // Each of those costs every thread that loads it 0.4-1.6 MB (32 bare workers; bench/README.md
  // part 6). The probe imports the worker's entry and runs what the worker runs after start-up.
  t.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-sources-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const entry = path.join(dir, 'probe.mjs');
  const worker = new URL('../workers/worker.ts', import.meta.url).href;
  fs.writeFileSync(
    entry,
    [
      `import ${JSON.stringify(worker)};`,
      `import { compactSoon } from ${JSON.stringify(MEMORY)};`,
      'export default function probe() {',
      '  compactSoon(0);',
      '  const builtins = process.moduleLoadList.filter((m) => /^NativeModule (fs\\/promises|v8|vm|tls|crypto)$/.test(m));',
      '  return { builtins, gc: typeof globalThis.gc };',
      '}',
      '',
    ].join('\n'),
  );
  const probe = { entry: pathToFileURL(entry).href, sourcesRoot: fileURLToPath(new URL('..', import.meta.url)) };
  const r = await runProbe<ModuleReport>({ ...probe, exposeGc: true });
  t.deepEqual(r.builtins, []);
  t.is(r.gc, 'function', 'the main side set --expose-gc before the thread started');
  // Without the flag from the main side the reducer reaches gc through node:v8 and node:vm.
  const alone = await runProbe<ModuleReport>(probe);
  t.deepEqual(alone.builtins, ['NativeModule v8', 'NativeModule vm']);
});
