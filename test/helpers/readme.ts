// README.md's generated parts. `npm run readme` rewrites them; test/help.test.ts fails while
// README.md differs from what this produces.
//
// The flag table sits between the markers below and is built from src/config/flags.ts's FLAGS, the
// same table `-h` is printed from.

import fs from 'node:fs';
import path from 'node:path';
import { flagTableMarkdown } from '../../src/config/flags.ts';
import { repoRoot } from './server.ts';

export const README = path.join(repoRoot, 'README.md');
export const FLAGS_BEGIN = '<!-- flags: generated from src/config/flags.ts by `npm run readme`; edit there -->';
export const FLAGS_END = '<!-- /flags -->';

/** README text with its flag table regenerated. Throws if the markers are missing. */
export function withGeneratedParts(readme: string): string {
  const begin = readme.indexOf(FLAGS_BEGIN);
  const end = readme.indexOf(FLAGS_END);
  if (begin < 0 || end < begin) throw new Error(`README.md has no ${FLAGS_BEGIN} ... ${FLAGS_END} section`);
  return `${readme.slice(0, begin + FLAGS_BEGIN.length)}\n${flagTableMarkdown()}\n${readme.slice(end)}`;
}

if (import.meta.main) {
  const before = fs.readFileSync(README, 'utf8');
  const after = withGeneratedParts(before);
  if (after !== before) fs.writeFileSync(README, after);
  process.stdout.write(after === before ? 'README.md is up to date\n' : 'README.md: flag table rewritten\n');
}
