// Whole-server counters without locks: every thread (client workers and the route thread) owns
// one slot of Float64 fields in a SharedArrayBuffer the main thread creates and hands to the
// threads next to the shared layout. A thread counts in plain fields of its ThreadStats and
// copies them into its slot once per read or drain batch (publish), never per message; the
// main thread sums the slots when /varz or /metrics asks.
//
// Plain (non-Atomics) Float64 stores: one writer per slot, and an 8-byte aligned store is not
// torn on the platforms Node runs on; a reader may see a batch's fields half updated, which
// only matters for a counter read mid-batch (it shows the earlier value). Integers stay exact
// up to 2^53.

/** Field offsets inside a thread's slot. */
export const Stat = {
  inMsgs: 0,
  inBytes: 1,
  outMsgs: 2,
  outBytes: 3,
  slowConsumers: 4,
  /** Client subscriptions (workers) or route peers' subscriptions (route thread); a gauge. */
  subscriptions: 5,
  /** Records written into rings to other threads. */
  crossSent: 6,
  /** Records drained from other threads' rings. */
  crossReceived: 7,
  /** Publishers stalled because a subscriber they feed was backed up. */
  stalls: 8,
  /** Publishers (or routes) paused because a ring to another thread was full. */
  ringFull: 9,
  /** Registered routes (route thread only); a gauge. */
  routes: 10,
  /** Messages written straight into subscribers' sockets on other workers (broker/direct.ts). */
  directSent: 11,
} as const;
export type StatField = (typeof Stat)[keyof typeof Stat];

const SLOT_FIELDS = 16;

export function createStats(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(threads * SLOT_FIELDS * 8);
}

/**
 * One thread's counters. Runs on the owning thread only. A replacement thread continues from
 * its predecessor's published values, so the server's totals never go backwards.
 */
export class ThreadStats {
  inMsgs = 0;
  inBytes = 0;
  outMsgs = 0;
  outBytes = 0;
  crossSent = 0;
  crossReceived = 0;
  stalls = 0;
  ringFull = 0;
  directSent = 0;
  private readonly slot: Float64Array | null;
  private readonly slowBase: number;

  constructor(sab: SharedArrayBuffer | null, thread: number) {
    this.slot = sab === null ? null : new Float64Array(sab, thread * SLOT_FIELDS * 8, SLOT_FIELDS);
    const s = this.slot;
    if (s === null) {
      this.slowBase = 0;
      return;
    }
    this.inMsgs = s[Stat.inMsgs];
    this.inBytes = s[Stat.inBytes];
    this.outMsgs = s[Stat.outMsgs];
    this.outBytes = s[Stat.outBytes];
    this.crossSent = s[Stat.crossSent];
    this.crossReceived = s[Stat.crossReceived];
    this.stalls = s[Stat.stalls];
    this.ringFull = s[Stat.ringFull];
    this.directSent = s[Stat.directSent];
    this.slowBase = s[Stat.slowConsumers];
  }

  /** Counters that go nowhere (a Broker or Cluster built outside a server, in unit tests). */
  static detached(): ThreadStats {
    return new ThreadStats(null, 0);
  }

  /**
   * Copy the counters into the shared slot. `slowConsumers` counts since this thread started;
   * `subscriptions` and `routes` are current gauges.
   */
  publish(subscriptions: number, slowConsumers: number, routes = 0): void {
    const s = this.slot;
    if (s === null) return;
    s[Stat.inMsgs] = this.inMsgs;
    s[Stat.inBytes] = this.inBytes;
    s[Stat.outMsgs] = this.outMsgs;
    s[Stat.outBytes] = this.outBytes;
    s[Stat.slowConsumers] = this.slowBase + slowConsumers;
    s[Stat.subscriptions] = subscriptions;
    s[Stat.crossSent] = this.crossSent;
    s[Stat.crossReceived] = this.crossReceived;
    s[Stat.stalls] = this.stalls;
    s[Stat.ringFull] = this.ringFull;
    s[Stat.routes] = routes;
    s[Stat.directSent] = this.directSent;
  }
}

/** A connection's message counters (route connections count their own). */
export interface ConnCounters {
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
}

/**
 * The route thread's totals: its route connections count their own messages (for /routez), so
 * the thread's counters are what closed routes had counted plus what the live ones have.
 * Runs on the route thread only.
 */
export class RouteStats {
  readonly stats: ThreadStats;
  private readonly retired: ConnCounters;

  constructor(stats: ThreadStats) {
    this.stats = stats;
    this.retired = { inMsgs: stats.inMsgs, inBytes: stats.inBytes, outMsgs: stats.outMsgs, outBytes: stats.outBytes };
  }

  /** A route closed: keep what it counted. */
  retire(c: ConnCounters): void {
    this.retired.inMsgs += c.inMsgs;
    this.retired.inBytes += c.inBytes;
    this.retired.outMsgs += c.outMsgs;
    this.retired.outBytes += c.outBytes;
  }

  publish(live: Iterable<ConnCounters>, subscriptions: number, routes: number): void {
    const st = this.stats;
    const r = this.retired;
    st.inMsgs = r.inMsgs;
    st.inBytes = r.inBytes;
    st.outMsgs = r.outMsgs;
    st.outBytes = r.outBytes;
    for (const c of live) {
      st.inMsgs += c.inMsgs;
      st.inBytes += c.inBytes;
      st.outMsgs += c.outMsgs;
      st.outBytes += c.outBytes;
    }
    st.publish(subscriptions, 0, routes);
  }
}

/** Main thread: reads the slots. */
export class StatsReader {
  private readonly all: Float64Array;
  readonly threads: number;

  constructor(sab: SharedArrayBuffer, threads: number) {
    this.all = new Float64Array(sab);
    this.threads = threads;
  }

  value(thread: number, field: StatField): number {
    return this.all[thread * SLOT_FIELDS + field];
  }

  sum(field: StatField): number {
    let n = 0;
    for (let t = 0; t < this.threads; t++) n += this.all[t * SLOT_FIELDS + field];
    return n;
  }
}
