// Entry of every pool thread (client workers, route, gateway and leaf threads), in plain
// JavaScript so that loading it needs no type stripper. Before the thread's real entry is
// imported, a module load hook serves skein's .ts files from the sources the main thread
// stripped (src/threads/sources.ts), so this thread never loads Node's stripper (about 8 MB a
// thread), and a resolve hook finds their relative imports without the file system. A file
// not among them resolves and loads as usual.
//
// The task is { boot: { entry, sources }, ...the entry's own task }; each thread runs one task
// for the server's life.

import { registerHooks } from 'node:module';

let run;

function serve(sources) {
  const { bytes, files } = sources;
  registerHooks({
    // A relative import between those files is their URL: no file system look-ups (Node's
    // resolver stats and realpaths each one), which took a third of a thread's import time.
    resolve(specifier, context, nextResolve) {
      if (specifier.startsWith('.') && context.parentURL !== undefined) {
        const url = new URL(specifier, context.parentURL).href;
        if (files[url] !== undefined) return { url, format: 'module', shortCircuit: true };
      }
      return nextResolve(specifier, context);
    },
    load(url, context, nextLoad) {
      const range = files[url];
      if (range === undefined) return nextLoad(url, context);
      const source = Buffer.from(bytes, range[0], range[1] - range[0]).toString('utf8');
      return { format: 'module', source, shortCircuit: true };
    },
  });
}

export default async function boot(task) {
  if (run === undefined) {
    if (task.boot.sources !== null) serve(task.boot.sources);
    run = (await import(task.boot.entry)).default;
  }
  return run(task);
}
