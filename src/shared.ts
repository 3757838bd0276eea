// The shared-memory layout handed to every worker: message rings (one per ordered pair of
// threads), interest logs (one per thread), doorbells, liveness flags and counters.
// Created once by the main thread; workers attach to the same SharedArrayBuffers.

import { Ring } from './ring.ts';
import { InterestLog, MAX_THREADS } from './interest.ts';

export interface SharedLayout {
  threads: number;
  /** rings[from * threads + to]; null on the diagonal. */
  rings: (SharedArrayBuffer | null)[];
  logs: SharedArrayBuffer[];
  doorbells: SharedArrayBuffer;
  alive: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /** One Int32: the last connection id handed out. Clients (cid) and routes (rid) share it, as in nats-server. */
  ids: SharedArrayBuffer;
}

/** The next connection id (cid/rid), unique across every thread of the server. */
export function nextConnectionId(ids: SharedArrayBuffer): number {
  return Atomics.add(new Int32Array(ids), 0, 1) + 1;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Ring size: room for at least two maximal messages, shrinking as the thread count grows. */
export function ringCapacity(threads: number, maxPayload: number, maxControlLine: number): number {
  const floor = nextPow2(2 * (maxPayload + maxControlLine + 256));
  const budget = nextPow2(Math.floor((256 * 1024 * 1024) / Math.max(1, threads * (threads - 1))));
  return Math.max(floor, Math.min(budget, 8 * 1024 * 1024), 1024 * 1024);
}

export function createLayout(threads: number, maxPayload: number, maxControlLine: number): SharedLayout {
  if (threads > MAX_THREADS) throw new Error(`at most ${MAX_THREADS} worker threads are supported`);
  const cap = ringCapacity(threads, maxPayload, maxControlLine);
  const rings: (SharedArrayBuffer | null)[] = [];
  for (let from = 0; from < threads; from++) {
    for (let to = 0; to < threads; to++) rings.push(from === to ? null : Ring.create(cap));
  }
  const logs: SharedArrayBuffer[] = [];
  for (let t = 0; t < threads; t++) {
    const sab = InterestLog.create(4 * 1024 * 1024);
    const lg = new InterestLog(sab);
    for (let r = 0; r < threads; r++) if (r !== t) lg.openReader(r, 0);
    logs.push(sab);
  }
  return {
    threads,
    rings,
    logs,
    doorbells: new SharedArrayBuffer(threads * 8),
    alive: new SharedArrayBuffer(threads * 4),
    counters: new SharedArrayBuffer(threads * 4),
    ids: new SharedArrayBuffer(4),
  };
}

/**
 * One thread's connection count, for the main thread's placement: main adds when it hands
 * a socket over, the owning worker subtracts when the connection closes.
 */
export class ThreadCounters {
  private readonly conns: Int32Array;
  private readonly thread: number;

  constructor(sab: SharedArrayBuffer, thread: number) {
    this.conns = new Int32Array(sab);
    this.thread = thread;
  }

  addConnections(delta: number): void {
    Atomics.add(this.conns, this.thread, delta);
  }

  connections(): number {
    return Atomics.load(this.conns, this.thread);
  }

  resetConnections(): void {
    Atomics.store(this.conns, this.thread, 0);
  }
}
