// One thread's endpoint on the shared layout: its outbound and inbound message rings, the
// overflow queues that keep records in order while a ring is full, the interest logs
// (its own to write, the others' to replay), the doorbells, and the loop that drains it all
// without ever blocking the thread's event loop. Client workers (broker.ts) and the
// dedicated route thread use the same endpoint; they differ in what a record means to them.
//
// Runs on the owning thread only.

import { Ring, Doorbell } from './ring.ts';
import { InterestLog, InterestOp, type InterestRecord } from './interest.ts';
import type { SharedLayout } from './shared.ts';
import { log } from './log.ts';

export interface MeshHandler {
  /** A record from thread `from`'s ring; `data[off, off + len)` is only valid during the call. */
  onRecord(from: number, data: Buffer, off: number, len: number): void;
  /** An interest change replayed from thread `from`'s log. */
  onInterest(from: number, rec: InterestRecord): void;
  /** Interest replayed for this pass, before any record of it is drained (announce it first). */
  afterInterest?(): void;
  /** All rings drained for now: write what the records produced. */
  afterDrain(): void;
  /** Overflow fully moved into rings: publishers paused for it may resume. */
  onSpace(): void;
  /** While true, records stay in the rings (the thread's own output is backed up). */
  drainBlocked?(): boolean;
  /** Checked between records: stop this drain early. */
  stopDrain?: () => boolean;
}

const RING_BATCH = 8192;
/** Bytes drained from one ring before the output they produced is written. */
const RING_BATCH_BYTES = 512 * 1024;

export class Mesh {
  readonly thread: number;
  readonly threads: number;
  private readonly outRings: (Ring | null)[] = [];
  private readonly inRings: (Ring | null)[] = [];
  private readonly overflow: Buffer[][] = [];
  private readonly touched: boolean[] = [];
  private readonly logs: InterestLog[];
  private readonly ownLog: InterestLog;
  private readonly doorbells: Doorbell[] = [];
  private readonly bell: Doorbell;
  private readonly alive: Int32Array;
  /** Whether we replay thread t's log (false while waiting for its snapshot). */
  private readonly readerLive: boolean[] = [];
  private overflowCount = 0;
  private readonly tails: number[] = [];
  private interestDirty = false;
  private stopped = false;
  private handler: MeshHandler | null = null;
  /** Where the record being written goes: ring data or an overflow buffer (see reserve). */
  dst: Buffer = Buffer.alloc(0);
  /** A DataView spanning `dst`, for word-wise copies. */
  dstView: DataView = new DataView(new ArrayBuffer(0));
  private readonly outViews: (DataView | null)[] = [];

  constructor(layout: SharedLayout, thread: number, replacement: boolean) {
    this.thread = thread;
    const n = (this.threads = layout.threads);
    for (let t = 0; t < n; t++) {
      this.outRings.push(t === thread ? null : new Ring(layout.rings[thread * n + t]!));
      this.inRings.push(t === thread ? null : new Ring(layout.rings[t * n + thread]!));
      this.overflow.push([]);
      this.touched.push(false);
      const out = this.outRings[t];
      this.outViews.push(out === null ? null : new DataView(out.data.buffer, out.data.byteOffset, out.data.byteLength));
      this.readerLive.push(true);
      this.doorbells.push(new Doorbell(layout.doorbells, t));
    }
    this.logs = layout.logs.map((sab) => new InterestLog(sab));
    this.ownLog = this.logs[thread];
    this.bell = this.doorbells[thread];
    this.alive = new Int32Array(layout.alive);
    if (replacement) {
      // Take over from a dead predecessor: its inbound backlog means nothing to our new
      // connections, and the others' interest arrives as snapshots (applySnapshot).
      this.ownLog.adoptWriter();
      for (let t = 0; t < n; t++) {
        this.inRings[t]?.skipAll();
        this.outRings[t]?.adoptProducer();
        if (t !== thread) {
          this.logs[t].openReader(thread);
          this.readerLive[t] = false;
        }
      }
    }
    Atomics.store(this.alive, thread, 1);
  }

  isAlive(t: number): boolean {
    return Atomics.load(this.alive, t) === 1;
  }

  // ------------------------------------------------------------- outbound

  /**
   * Space for one record of `bytes` to thread `t`. Returns the offset in `this.dst` to write
   * it at. When the ring is full (or records are already queued for it, to keep order) the
   * record goes to an overflow buffer and `full` is set: the caller should stop reading
   * whatever produced it until onSpace().
   */
  reserve(t: number, bytes: number): number {
    const q = this.overflow[t];
    const ring = this.outRings[t]!;
    if (q.length === 0) {
      const off = ring.reserve(bytes);
      if (off >= 0) {
        this.dst = ring.data;
        this.dstView = this.outViews[t]!;
        this.touched[t] = true;
        return off;
      }
    }
    const rec = Buffer.allocUnsafe(bytes);
    q.push(rec);
    this.overflowCount++;
    ring.wantSpace();
    this.dst = rec;
    this.dstView = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    this.full = true;
    return 0;
  }

  /** Set by reserve() when a record had to be queued; the caller clears it. */
  full = false;

  get hasOverflow(): boolean {
    return this.overflowCount > 0;
  }

  /** Append an interest change (absolute weight; 0 removes) to our log. */
  publishInterest(subject: string, queue: string | null, weight: number): void {
    if (this.threads === 1) return;
    this.ownLog.append(InterestOp.set, subject, queue, weight);
    this.interestDirty = true;
  }

  /** Publish what was written since the last flush and ring the consumers' doorbells. */
  flush(): void {
    for (let t = 0; t < this.threads; t++) {
      if (!this.touched[t]) continue;
      this.touched[t] = false;
      if (this.outRings[t]!.commit()) this.doorbells[t].ring();
    }
    if (this.interestDirty) {
      this.interestDirty = false;
      this.ownLog.flushBacklog();
      for (let t = 0; t < this.threads; t++) if (t !== this.thread) this.doorbells[t].ring();
    }
  }

  /** Our interest log holds every change made so far (none waits for log space). */
  interestPublished(): boolean {
    return !this.ownLog.hasBacklog || this.ownLog.flushBacklog();
  }

  /**
   * Deliver every record other threads have committed to us so far, whatever the batch
   * limits and stalls: a PING or UNSUB on this thread must not overtake them.
   */
  drainCommitted(): void {
    const h = this.handler!;
    for (let t = 0; t < this.threads; t++) {
      const ring = this.inRings[t];
      if (ring === null || !ring.hasData()) continue;
      const { producerWaiting } = ring.drain((d, off, len) => h.onRecord(t, d, off, len), Infinity, Infinity, undefined, ring.tailPosition());
      if (producerWaiting) this.doorbells[t].ringAlways();
    }
  }

  private retryOverflow(): void {
    for (let t = 0; t < this.threads; t++) {
      const q = this.overflow[t];
      if (q.length === 0) continue;
      if (!this.isAlive(t)) {
        this.overflowCount -= q.length;
        q.length = 0;
        continue;
      }
      const ring = this.outRings[t]!;
      let moved = 0;
      for (; moved < q.length; moved++) {
        const rec = q[moved];
        const off = ring.reserve(rec.length);
        if (off < 0) break;
        rec.copy(ring.data, off);
      }
      if (moved > 0) {
        q.splice(0, moved);
        this.overflowCount -= moved;
        this.touched[t] = true;
      }
      if (q.length > 0) ring.wantSpace();
    }
  }

  // -------------------------------------------------------------- interest

  /** Replay every other thread's new interest records. Cheap when there are none. */
  applyInterest(): void {
    const h = this.handler!;
    for (let t = 0; t < this.threads; t++) {
      if (t === this.thread || !this.readerLive[t]) continue;
      const lg = this.logs[t];
      if (lg.hasNew(this.thread)) lg.read(this.thread, (rec) => h.onInterest(t, rec));
    }
  }

  /** Our log position, for a snapshot a replacement thread asked for. */
  snapshotPosition(): number {
    this.ownLog.flushBacklog();
    return this.ownLog.position();
  }

  /** A snapshot of thread `from` was applied: replay its log from `position` on. */
  snapshotApplied(from: number, position: number): void {
    this.logs[from].setReaderPosition(this.thread, position);
    this.readerLive[from] = true;
  }

  // ----------------------------------------------------------------- loop

  /** Who gets records and interest (set before anything is drained). */
  bind(handler: MeshHandler): void {
    this.handler = handler;
  }

  /** Start draining rings and logs; the handler is called on this thread's event loop. */
  start(handler: MeshHandler): void {
    this.handler = handler;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.bell.ringAlways();
  }

  /** Wake our own drain loop (a stall ended). */
  wake(): void {
    this.bell.ringAlways();
  }

  private hasWork(): boolean {
    // Space freed in a ring we wait on, even if the consumer looked before we asked.
    if (this.overflowCount > 0) {
      for (let t = 0; t < this.threads; t++) {
        const q = this.overflow[t];
        if (q.length > 0 && this.isAlive(t) && this.outRings[t]!.canReserve(q[0].length)) return true;
      }
    }
    if (this.handler!.drainBlocked?.() === true) return false;
    for (let t = 0; t < this.threads; t++) {
      if (t === this.thread) continue;
      if (this.inRings[t]!.hasData()) return true;
      if (this.readerLive[t] && this.logs[t].hasNew(this.thread)) return true;
    }
    return false;
  }

  /** One pass over everything shared; returns whether any record was processed. */
  poll(): boolean {
    const h = this.handler!;
    let did = false;
    // A producer logs interest changes before it commits the records that follow them (a
    // SUB to a reply inbox, then the request). Take the ring tails first and apply interest
    // second, so every record drained below is seen after the interest that preceded it:
    // the route thread must send RS+ before the RMSG that depends on it.
    const tails = this.tails;
    for (let t = 0; t < this.threads; t++) tails[t] = this.inRings[t]?.tailPosition() ?? 0;
    this.applyInterest();
    h.afterInterest?.();
    const blocked = h.drainBlocked !== undefined && h.drainBlocked();
    for (let t = 0; t < this.threads && !blocked; t++) {
      const ring = this.inRings[t];
      if (ring === null || !ring.hasData()) continue;
      const { count, producerWaiting } = ring.drain((d, off, len) => h.onRecord(t, d, off, len), RING_BATCH, RING_BATCH_BYTES, h.stopDrain, tails[t]);
      if (count > 0) did = true;
      if (producerWaiting) this.doorbells[t].ringAlways();
    }
    if (this.overflowCount > 0) {
      this.retryOverflow();
      if (this.overflowCount === 0) h.onSpace();
    }
    if (this.ownLog.hasBacklog) this.ownLog.flushBacklog();
    h.afterDrain();
    this.flush();
    return did;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let did = false;
      try {
        did = this.poll();
      } catch (err) {
        log.error(`Thread ${this.thread}: error draining shared rings: ${(err as Error).stack}`);
      }
      if (did) {
        // Let this thread's sockets run between batches.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      // A stalled drain is retried when the stall ends (wake) or within 100ms.
      await this.bell.sleep(() => !this.hasWork(), 100);
    }
  }
}
