// Giving memory back after a burst. Under load a thread's V8 heap grows, and so does the
// memory behind dead Buffers (socket reads, output slabs) that only a GC frees; once the load
// stops, an idle thread allocates nothing, so no GC runs and nothing is returned (measured
// with bench/churn.ts: ~90 MB over three threads kept after 10,000 connections came and
// went, or after a publish + SUB/UNSUB storm). nats-server's Go runtime returns such memory
// by itself. Here each thread checks its event loop every few seconds; after a busy spell,
// once it has been quiet for two checks in a row, it runs one memory-reducing full GC (V8's
// "last resort" collection, which also shrinks the young generation). It runs only on a
// thread that has had next to nothing to do for ten seconds, so its pause (tens of ms)
// delays no traffic to speak of. Node has no API for that collection; `gc` from a fresh
// context after `--expose-gc` is the known way to reach it at run time. The main thread sets
// the flag before it starts the pool, so a pool thread finds `gc` on its global and never loads
// node:v8 and node:vm (about 0.4 MB a thread, measured with 32 bare workers).

const CHECK_MS = 5000;
/** A check interval with the event loop at least this busy is a busy spell. */
const BUSY_ELU = 0.05;
/** Quiet checks in a row after a busy spell before the compaction. */
const QUIET_CHECKS = 2;

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let gcFunction: GcFunction | null | undefined;

function exposedGc(): GcFunction | null {
  if (gcFunction !== undefined) return gcFunction;
  const own = (globalThis as { gc?: GcFunction }).gc;
  if (own !== undefined) return (gcFunction = own);
  try {
    process.getBuiltinModule('node:v8').setFlagsFromString('--expose-gc');
    gcFunction = process.getBuiltinModule('node:vm').runInNewContext('gc') as GcFunction;
  } catch {
    gcFunction = null;
  }
  return gcFunction;
}

/** Called on the main thread before it starts threads: each of them then has `gc` on its global. */
export function exposeGcToNewThreads(): void {
  exposedGc();
}

/**
 * One memory-reducing GC `delayMs` from now: after start-up, whose garbage (module loading,
 * compilation, set-up) a thread that then stays idle would otherwise keep for good. The
 * delay lets the threads of a large pool take their turns instead of pausing all at once.
 */
export function compactSoon(delayMs: number): void {
  const gc = exposedGc();
  if (gc === null) return;
  setTimeout(() => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }), delayMs).unref();
}

/** Start the check on this thread; returns a function that stops it. */
export function startMemoryReducer(): () => void {
  const gc = exposedGc();
  if (gc === null) return () => {};
  let busySpell = false;
  let quiet = 0;
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy >= BUSY_ELU) {
      busySpell = true;
      quiet = 0;
      return;
    }
    if (!busySpell || ++quiet < QUIET_CHECKS) return;
    busySpell = false;
    quiet = 0;
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  }, CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
