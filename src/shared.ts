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

const COUNTER_SLOTS = 8; // [connections, inMsgs, inBytes, outMsgs, outBytes, ...]
const CONN = 0;
const OUT_MSGS = 3;
const OUT_BYTES = 4;

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
    counters: new SharedArrayBuffer(threads * COUNTER_SLOTS * 8),
    ids: new SharedArrayBuffer(4),
  };
}

/** One thread's counters. Written by its owner; read (approximately) by anyone. */
export class ThreadCounters {
  private readonly f: Float64Array;
  private readonly conns: Int32Array;
  private readonly base: number;
  private readonly thread: number;

  constructor(sab: SharedArrayBuffer, thread: number) {
    this.f = new Float64Array(sab);
    this.conns = new Int32Array(sab);
    this.thread = thread;
    this.base = thread * COUNTER_SLOTS;
  }

  addConnections(delta: number): void {
    // The connection count is an Int32 in the first 4 bytes of the thread's first slot.
    Atomics.add(this.conns, this.base * 2 + CONN, delta);
  }

  connections(): number {
    return Atomics.load(this.conns, this.base * 2 + CONN);
  }

  resetConnections(): void {
    Atomics.store(this.conns, this.base * 2 + CONN, 0);
  }

  setOut(totals: [number, number]): void {
    this.f[this.base + OUT_MSGS] = totals[0];
    this.f[this.base + OUT_BYTES] = totals[1];
  }

  get threadIndex(): number {
    return this.thread;
  }
}
