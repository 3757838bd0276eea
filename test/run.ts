// `npm test`: type-checks (tsc), lints (eslint) and checks formatting (prettier --check; `npm run
// format` fixes it) first, then runs ava with the TAP reporter, streams its output, and ends
// with one summary line `N passed, N failed[, N skipped]`. Exits with ava's exit code. A type
// error, a lint finding or an unformatted file stops the run before any test starts, with the
// tool's own message and `0 passed, 1 failed`. Arguments are passed through to
// ava (e.g. `npm test -- test/oracle.test.ts --match '*verbose*'`).

import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const avaCli = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const passthrough = process.argv.slice(2);
const args = [avaCli, ...(passthrough.includes('--tap') ? [] : ['--tap']), ...passthrough];

let tail = ''; // incomplete last line
const counts = { ok: 0, notOk: 0, skip: 0, todo: 0 };
const footer: { pass?: number; fail?: number; skip?: number } = {};

function scanLine(line: string): void {
  // Test lines are `ok N - title`, `not ok N - title`, with `# SKIP` / `# TODO` directives.
  // Lines of YAML error blocks are indented, so anchoring at column 0 avoids false hits.
  let m: RegExpMatchArray | null;
  if ((m = line.match(/^(not )?ok \d+\b(.*)$/))) {
    const directive = m[2].match(/#\s*(SKIP|TODO)\b/i)?.[1]?.toUpperCase();
    if (directive === 'SKIP') counts.skip++;
    else if (directive === 'TODO') counts.todo++;
    else if (m[1]) counts.notOk++;
    else counts.ok++;
  } else if ((m = line.match(/^# (pass|fail|skip) (\d+)\s*$/))) {
    footer[m[1] as 'pass' | 'fail' | 'skip'] = Number(m[2]);
  }
}

function onStdout(chunk: Buffer): void {
  process.stdout.write(chunk);
  tail += chunk.toString('utf8');
  const lines = tail.split('\n');
  tail = lines.pop() ?? '';
  for (const l of lines) scanLine(l.replace(/\r$/, ''));
}

function finish(code: number, startFailed: boolean): void {
  if (tail) scanLine(tail);
  let passed = footer.pass ?? counts.ok;
  let failed = footer.fail ?? counts.notOk + counts.todo;
  const skipped = footer.skip ?? counts.skip;
  if (startFailed) {
    passed = 0;
    failed = Math.max(failed, 1);
  } else if (code !== 0 && failed === 0) {
    // ava failed without reporting a failing test (crash, bad config, no test files...).
    failed = 1;
  }
  const summary = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
  process.stdout.write(`\n${summary}\n`, () => process.exit(code));
}

interface Check {
  name: string;
  proc: ChildProcess;
  done: Promise<{ code: number; output: string }>;
}

/** Starts a check tool on the bundled runtime, its output kept for the report. */
function startCheck(name: string, script: string, checkArgs: string[]): Check {
  const proc = spawn(process.execPath, [path.join(root, 'node_modules', script), ...checkArgs], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  let output = '';
  proc.stdout?.on('data', (d: Buffer) => {
    output += d.toString('utf8');
  });
  proc.stderr?.on('data', (d: Buffer) => {
    output += d.toString('utf8');
  });
  const done = new Promise<{ code: number; output: string }>((resolve) => {
    proc.on('error', (err) => resolve({ code: 1, output: `cannot start ${name}: ${err.message}\n` }));
    proc.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), output }));
  });
  return { name, proc, done };
}

/**
 * tsc, eslint and prettier side by side, reported in that order: the first that
 * fails stops the others and the run, so a type error fails fast with tsc's message.
 */
async function runChecks(): Promise<boolean> {
  const checks = [
    startCheck('tsc --noEmit -p .', 'typescript/bin/tsc', ['--noEmit', '-p', '.']),
    startCheck('eslint .', 'eslint/bin/eslint.js', ['.']),
    startCheck('prettier --check .', 'prettier/bin/prettier.cjs', ['--check', '--no-color', '--log-level', 'warn', '.']),
  ];
  running.push(...checks.map((c) => c.proc));
  for (const c of checks) {
    const { code, output } = await c.done;
    if (code === 0) continue;
    for (const other of checks) if (other !== c) other.proc.kill();
    process.stdout.write(output);
    process.stderr.write(`test/run.ts: ${c.name} failed (exit code ${code}); no test was run\n`);
    return false;
  }
  return true;
}

function runAva(): void {
  const child = spawn(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    // Node's compile cache halves the CPU a server start costs (every thread compiles every
    // module again otherwise); the suite starts a few hundred servers, on a shared machine.
    env: { NODE_COMPILE_CACHE: path.join(os.tmpdir(), 'skein-node-compile-cache'), ...process.env, FORCE_COLOR: '0' },
  });
  running.push(child);
  let started = false;
  child.on('spawn', () => {
    started = true;
  });
  child.stdout.on('data', onStdout);
  child.on('error', (err) => {
    process.stderr.write(`test/run.ts: cannot start ava: ${err.message}\n`);
    finish(1, true);
  });
  child.on('close', (code, signal) => {
    if (!started) return; // 'error' handled it
    const exitCode = code ?? (signal ? 1 : 0);
    finish(exitCode, false);
  });
}

const running: ChildProcess[] = [];

// Forward Ctrl-C so ava can stop its workers (and they their servers).
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const p of running) if (p.exitCode === null) p.kill(sig);
  });
}

if (await runChecks()) runAva();
else finish(1, true);
