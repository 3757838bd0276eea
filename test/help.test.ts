// `-h` and the README's flag table come from one table (src/config/flags.ts FLAGS): they list the
// same flags, every listed flag parses, and README.md's generated table is current.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { parseFlags } from '../src/config/flags.ts';
import { README, FLAGS_BEGIN, FLAGS_END, withGeneratedParts } from './helpers/readme.ts';
import { repoRoot } from './helpers/server.ts';

function skeinHelp(): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'src', 'launcher.cjs'), '-h'], { cwd: repoRoot, timeout: 30_000 }, (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

/** `-a`, `--addr`, `-DV` ... as written in a synopsis. */
function flagNames(text: string): string[] {
  return [...text.matchAll(/(?<![\w-])(--?[A-Za-z][\w-]*)/g)].map((m) => m[1]);
}

function readmeTable(): string {
  const readme = fs.readFileSync(README, 'utf8');
  return readme.slice(readme.indexOf(FLAGS_BEGIN) + FLAGS_BEGIN.length, readme.indexOf(FLAGS_END));
}

test("README.md's flag table is the one src/config/flags.ts generates (run `npm run readme` after adding a flag)", (t) => {
  const readme = fs.readFileSync(README, 'utf8');
  t.true(readme.includes(FLAGS_BEGIN) && readme.includes(FLAGS_END), 'README.md keeps the flag table markers');
  t.is(readme, withGeneratedParts(readme), 'README.md is out of date: run `npm run readme`');
});

test('-h and the README flag table list the same flags, and every one of them parses', async (t) => {
  t.timeout(30_000);
  const help = await skeinHelp();
  t.is(help.code, 0);
  // Synopses only: the left column of -h, the first column of the README table.
  const fromHelp = help.stdout
    .split('\n')
    .filter((l) => /^ {4,8}-/.test(l))
    .flatMap((l) => flagNames(l.trim().split(/ {2,}/)[0]));
  const fromReadme = readmeTable()
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .flatMap((l) => flagNames(l.split('`')[1]));
  t.deepEqual([...new Set(fromHelp)].sort(), [...new Set(fromReadme)].sort());
  for (const name of ['-m', '--http_port', '--client_advertise', '--cluster_listen', '--workers']) t.true(fromHelp.includes(name), name);
  // Each flag parses, with a value when its synopsis shows one (`<port>`), alone otherwise.
  for (const synopsis of help.stdout
    .split('\n')
    .filter((l) => /^ {4,8}-/.test(l))
    .map((l) => l.trim().split(/ {2,}/)[0])) {
    const value = synopsis.includes('<') ? ['1'] : [];
    for (const name of flagNames(synopsis)) t.notThrows(() => parseFlags([name, ...value]), synopsis);
  }
});
