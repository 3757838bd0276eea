// Skein's TypeScript, type-stripped once on the main thread and shared with every pool thread.
//
// Node strips types with a WebAssembly build of swc that each thread loads on its first .ts
// file and keeps for the thread's life: about 8 MB per worker, measured on a 2-core VM as 64
// bare workers importing workers/worker.ts (777 MB bare -> 1.6 GB). Node's compile cache
// (useCompileCache in server.ts) avoids the stripper only once the cache on disk is warm, so a
// first start, a read-only temp directory or NODE_DISABLE_COMPILE_CACHE paid it in every
// thread. Instead the main thread, which runs the stripper anyway for its own modules, strips
// every file under src/ and workers/ into one SharedArrayBuffer; workers/boot.mjs serves them
// to its thread through a module load hook, so a pool thread never loads the stripper.
// Stripping only blanks out types, so line and column numbers in stack traces stay right.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const { stripQuietly, canStrip } = createRequire(import.meta.url)('../strip-types.cjs') as {
  stripQuietly: (source: string) => string;
  canStrip: boolean;
};

/** What workers/boot.mjs reads: UTF-8 sources, and each file URL's [start, end) in them. */
export interface StrippedSources {
  bytes: SharedArrayBuffer;
  files: Record<string, [number, number]>;
}

/** The folders whose .ts files pool threads load, under the package root. */
const FOLDERS = ['src', 'workers'];

/**
 * Every .ts file under the package's src/ and workers/, stripped, keyed by the file URL Node
 * resolves it to (real path, as the loader sees it). Null when this runtime cannot strip.
 */
export function stripSources(root: URL): StrippedSources | null {
  if (!canStrip) return null;
  const rootDir = fs.realpathSync(root);
  const chunks: Buffer[] = [];
  const files: Record<string, [number, number]> = {};
  let at = 0;
  for (const folder of FOLDERS) {
    const dir = path.join(rootDir, folder);
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      if (!name.endsWith('.ts')) continue;
      const file = path.join(dir, name);
      const bytes = Buffer.from(stripQuietly(fs.readFileSync(file, 'utf8')));
      files[pathToFileURL(file).href] = [at, at + bytes.length];
      chunks.push(bytes);
      at += bytes.length;
    }
  }
  const shared = new SharedArrayBuffer(at);
  const view = new Uint8Array(shared);
  let offset = 0;
  for (const c of chunks) {
    view.set(c, offset);
    offset += c.length;
  }
  return { bytes: shared, files };
}
