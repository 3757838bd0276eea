// One thread's endpoint on the shared layout: its inbox (records from every other thread), the
// staging buffers that collect its records per destination during a read and commit them as
// one block per destination at the end of it, the interest logs (its own to write, the
// others' to replay), the doorbells, and the loop that drains it all without ever blocking
// the thread's event loop. Client workers (broker/broker.ts) and the dedicated route thread use the
// same endpoint; they differ in what a record means to them.
//
// A record larger than a block crosses in pieces (BlockKind.fragment) and is put together
// again on the consuming side, so no message is too large for an inbox.
//
// Runs on the owning thread only.

import { Inbox, Doorbell, BlockKind } from './ring.ts';
import { InterestLog, InterestOp, InterestGeneration, type InterestRecord } from './interest.ts';
import { openInbox, openLog, type SharedLayout } from './shared.ts';
import { STALL_RECORD_BYTES, writeStallRecord, type PendingCopy } from './record.ts';
import { log } from '../log.ts';
import { announcesInterest } from './roles.ts';

export interface MeshHandler {
  /**
   * One record from thread `from`: its body is `data[off, off + len)`, and `view` spans
   * `data` with the same offsets. Only valid during the call.
   */
  onRecord(from: number, data: Buffer, view: DataView, off: number, len: number): void;
  /** An interest change replayed from thread `from`'s log. */
  onInterest(from: number, rec: InterestRecord): void;
  /** An origin record (interest.ts) replayed from thread `from`'s log; without this hook, skipped. */
  onOriginInterest?(from: number, rec: InterestRecord): void;
  /** A direct-delivery record (interest.ts, broker/direct.ts) replayed from thread `from`'s log; without this hook, skipped. */
  onDirect?(from: number, rec: InterestRecord): void;
  /** Interest replayed for this pass, before any record of it is drained (announce it first). */
  afterInterest?(): void;
  /** The inbox is drained for now: write what the records produced. */
  afterDrain(): void;
  /** Every staged record is committed: publishers paused for ring space may resume. */
  onSpace(): void;
}

/** Bytes taken from the inbox before the output they produced is written. */
const DRAIN_BATCH_BYTES = 512 * 1024;
const STAGE_MIN = 16 * 1024;
/** A staging buffer this large is dropped once empty (memory comes back after a burst). */
const STAGE_KEEP_MAX = 1024 * 1024;

/** Records for one destination, not yet committed: [u32 len][body]... in buf[start, end). */
class Staging {
  buf: Buffer;
  view: DataView;
  start = 0;
  end = 0;
  /** Bytes of the record at `start` already sent as fragments. */
  fragDone = 0;
  /** Could not all be committed: waiting for the consumer to free space. */
  backlogged = false;
  /** Staged since the last flush (listed in Mesh.touched). */
  touched = false;
  /** Mesh.markEpoch when records were last staged here (see blockedSinceMark). */
  markEpoch = 0;
  /** The number (Mesh.reserved) of the last record staged here, while it may still grow (0: none). */
  lastSerial = 0;
  /** Where that record's length word is. */
  lastAt = 0;

  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(bytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Room for `bytes` more at the end (compacting or growing; keeps the staged bytes). */
  ensure(bytes: number): void {
    if (this.end + bytes <= this.buf.length) return;
    const used = this.end - this.start;
    let target = this.buf;
    if (used + bytes > this.buf.length) {
      target = Buffer.allocUnsafe(Math.max(this.buf.length * 2, used + bytes));
    }
    this.buf.copy(target, 0, this.start, this.end);
    this.lastSerial = 0; // moved: its offsets are stale
    if (target !== this.buf) {
      this.buf = target;
      this.view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    }
    this.start = 0;
    this.end = used;
  }
}

/** A record from one producer that arrives in pieces. */
interface Reassembly {
  buf: Buffer;
  have: number;
}

export class Mesh {
  readonly thread: number;
  readonly threads: number;
  private readonly layout: SharedLayout;
  private readonly inbox: Inbox;
  /** Other threads' inboxes, opened on first use. */
  private readonly outboxes: (Inbox | null)[];
  private readonly staging: (Staging | null)[];
  private readonly touched: number[] = [];
  private backlogCount = 0;
  private markEpoch = 1;
  private readonly markList: number[] = [];
  private readonly logs: (InterestLog | null)[];
  private readonly ownLog: InterestLog;
  private readonly gen: InterestGeneration;
  private readonly doorbells: (Doorbell | null)[];
  private readonly bell: Doorbell;
  private readonly alive: Int32Array;
  /** The threads that announce interest to server peers (woken for every interest change). */
  private readonly announcers: number[] = [];
  /** Whether we replay thread t's log (false while waiting for its snapshot). */
  private readonly readerLive: boolean[] = [];
  private readonly pieces = new Map<number, Reassembly>();
  /** A replacement thread drops what its predecessor left in the inbox, up to here. */
  private discardTo = -1;
  private interestDirty = false;
  private stopped = false;
  private handler: MeshHandler | null = null;
  /** Where the record being written goes (a staging buffer; see reserve). */
  dst: Buffer = Buffer.alloc(0);
  /** A DataView spanning `dst`. */
  dstView: DataView = new DataView(new ArrayBuffer(0));
  /** A record writer's frames kept aside: added before anything else is staged or committed. */
  pendingCopy: PendingCopy | null = null;
  /** Set by reserve() when the destination is backed up; the caller clears it. */
  full = false;
  /**
   * 1 for a thread whose subscribers got direct output in this read that is not written yet
   * (broker/direct.ts): before a record for it is staged, onStage writes that output, so
   * the record never overtakes it.
   */
  readonly directHeld: Uint8Array;
  onStage: ((t: number) => void) | null = null;
  /** The number of the record reserve() staged last (counts from 1). */
  reserved = 0;
  /**
   * Stalls asked of other threads for their publishers, key `cid * 1024 + thread` -> until
   * (ms): at most one request per publisher per stall period (see requestStall).
   */
  private readonly stalls = new Map<number, number>();
  /** Per thread: the backlog its inbox must fall to for a publisher held here to go on (-1: none; see crowded). */
  private readonly roomWanted: number[];
  private roomWantedAny = false;

  private readonly onBlock = (producer: number, kind: number, data: Buffer, off: number, len: number): void => {
    this.block(producer, kind, data, off, len);
  };
  private readonly discardBlock = (): void => {};

  constructor(layout: SharedLayout, thread: number, replacement: boolean) {
    this.layout = layout;
    this.thread = thread;
    const n = (this.threads = layout.threads);
    this.inbox = openInbox(layout, thread);
    this.outboxes = new Array<Inbox | null>(n).fill(null);
    this.staging = new Array<Staging | null>(n).fill(null);
    this.roomWanted = new Array<number>(n).fill(-1);
    this.directHeld = new Uint8Array(n);
    this.logs = new Array<InterestLog | null>(n).fill(null);
    this.doorbells = new Array<Doorbell | null>(n).fill(null);
    for (let t = 0; t < n; t++) this.readerLive.push(true);
    this.ownLog = this.logOf(thread);
    this.gen = new InterestGeneration(layout.interestGen);
    this.bell = this.doorbellOf(thread);
    this.alive = new Int32Array(layout.alive);
    for (let t = 0; t < n; t++) if (announcesInterest(layout.roles[t])) this.announcers.push(t);
    if (replacement) {
      // Take over from a dead predecessor: its inbox holds records for connections that are
      // gone, and the others' interest arrives as snapshots (snapshotApplied).
      this.ownLog.adoptWriter();
      this.discardTo = this.inbox.reservedTo();
      for (let t = 0; t < n; t++) {
        if (t === thread) continue;
        this.logOf(t).openReader(thread);
        this.readerLive[t] = false;
      }
    }
    Atomics.store(this.alive, thread, 1);
  }

  isAlive(t: number): boolean {
    return Atomics.load(this.alive, t) === 1;
  }

  private logOf(t: number): InterestLog {
    return (this.logs[t] ??= openLog(this.layout, t));
  }

  private doorbellOf(t: number): Doorbell {
    return (this.doorbells[t] ??= new Doorbell(this.layout.doorbells, t));
  }

  private outbox(t: number): Inbox {
    return (this.outboxes[t] ??= openInbox(this.layout, t));
  }

  // ------------------------------------------------------------- outbound

  /**
   * Space for one record body of `bytes` to thread `t`. Returns the offset in `this.dst` to
   * write it at; it is committed at the next flush(). Sets `full` when records for `t`
   * already wait for space: the caller should stop reading whatever produced it.
   */
  reserve(t: number, bytes: number): number {
    if (this.directHeld[t] !== 0) this.onStage!(t);
    this.addPending(); // frames a writer kept aside come before this record
    let st = this.staging[t];
    if (st === null) st = this.staging[t] = new Staging(Math.max(STAGE_MIN, bytes + 4));
    if (bytes > 0xffffffff) throw new RangeError(`record of ${bytes} bytes is too large`);
    st.ensure(bytes + 4);
    const o = st.end;
    st.view.setUint32(o, bytes, true);
    st.end = o + 4 + bytes;
    st.lastAt = o;
    st.lastSerial = this.reserved = (this.reserved + 1) & 0x3fffffff || 1;
    if (!st.touched) {
      st.touched = true;
      this.touched.push(t);
    }
    if (st.markEpoch !== this.markEpoch) {
      st.markEpoch = this.markEpoch;
      this.markList.push(t);
    }
    if (st.backlogged) this.full = true;
    this.writeTo(st);
    return o + 4;
  }

  /** `dst` becomes `st`'s buffer. (Stored only when it changes: a pointer store costs a write barrier.) */
  private writeTo(st: Staging): void {
    if (this.dst !== st.buf) {
      this.dst = st.buf;
      this.dstView = st.view;
    }
  }

  /**
   * How many more bytes extend(t, serial, ...) could take now (-1: that record grows no more);
   * when it can grow, `dst` is that record's buffer.
   */
  room(t: number, serial: number): number {
    const st = this.staging[t];
    if (st === null || st.lastSerial !== serial) return -1;
    this.writeTo(st);
    return st.buf.length - st.end;
  }

  /**
   * `bytes` more at the end of record number `serial` to thread `t`, if it is still the last
   * one staged for `t` and not committed, and the staging buffer has the room without moving:
   * returns where they go in `dst` (now that record's buffer), else -1.
   */
  extend(t: number, serial: number, bytes: number): number {
    const st = this.staging[t];
    if (st === null || st.lastSerial !== serial || st.end + bytes > st.buf.length) return -1;
    const v = st.view;
    v.setUint32(st.lastAt, v.getUint32(st.lastAt, true) + bytes, true);
    const o = st.end;
    st.end = o + bytes;
    if (st.backlogged) this.full = true;
    this.writeTo(st);
    return o;
  }

  /** Start of one unit of input (a read): blockedSinceMark() looks at what it staged. */
  mark(): void {
    this.markEpoch++;
    this.markList.length = 0;
  }

  /** Did records staged since mark() go to a destination that is backed up? */
  blockedSinceMark(): boolean {
    if (this.backlogCount === 0) return false;
    // (A staging buffer dropped after a burst, see commit, had nothing left: not blocked.)
    for (let i = 0; i < this.markList.length; i++) if (this.staging[this.markList[i]]?.backlogged === true) return true;
    return false;
  }

  /**
   * The threads that records staged since mark() went to whose inbox holds more than `bytes`
   * not yet taken (or whose records still wait here for room), or null when none does. Each of
   * them rings us when its consumer next takes some (see crowded).
   */
  crowdedSinceMark(bytes: number): number[] | null {
    let out: number[] | null = null;
    for (let i = 0; i < this.markList.length; i++) {
      const t = this.markList[i];
      if (this.crowded(t, bytes)) (out ??= []).push(t);
    }
    return out;
  }

  /** Does thread t's inbox hold more than `bytes` (then it rings us when its consumer takes some)? */
  crowded(t: number, bytes: number): boolean {
    if (t === this.thread || !this.isAlive(t)) return false;
    if (this.staging[t]?.backlogged === true) return true;
    const inbox = this.outbox(t);
    // (Looked at first without asking: asking makes the consumer ring us after its next drain.)
    if (inbox.backlogBytes() <= bytes || inbox.ringWhenBelow(this.thread, bytes)) return false;
    // Also looked at before our loop sleeps (hasWork): a ring that came between this look and
    // the sleep would otherwise be missed.
    this.roomWanted[t] = bytes;
    this.roomWantedAny = true;
    return true;
  }

  get hasBacklog(): boolean {
    return this.backlogCount > 0;
  }

  /**
   * Nothing of ours for thread `t` is staged, waiting for room or unhandled in its inbox: a
   * message written to one of its subscribers' sockets from here now cannot overtake one we
   * sent it before (broker/direct.ts).
   */
  quiet(t: number): boolean {
    const st = this.staging[t];
    if (st !== null && (st.end !== st.start || st.backlogged)) return false;
    const box = this.outboxes[t];
    return box === null || box.handled();
  }

  /** Append an interest change (absolute weight; 0 removes) to our log; `routeWeight`: see interest.ts. */
  publishInterest(subject: string, queue: string | null, weight: number, routeWeight = -1, origin: string | null = null): void {
    if (this.threads === 1) return;
    this.ownLog.append(InterestOp.set, subject, queue, weight, routeWeight, origin);
    this.interestDirty = true;
  }

  /** Tell the other threads who here takes direct deliveries for `subject` (interest.ts: op direct; null: nobody). */
  publishDirect(subject: string, targets: string | null, count: number): void {
    if (this.threads === 1) return;
    this.ownLog.append(InterestOp.direct, subject, targets, count);
    this.interestDirty = true;
  }

  /** Can this subscription be logged at all (byte lengths)? */
  interestFits(subjectBytes: number, queueBytes: number): boolean {
    return this.ownLog.fits(subjectBytes, queueBytes);
  }

  /**
   * A writer's frames kept aside go in before anything else is staged or committed. (A
   * backed-up destination found here is not the caller's news: the read that staged them is
   * paused by blockedSinceMark.)
   */
  private addPending(): void {
    if (this.pendingCopy === null) return;
    const full = this.full;
    this.pendingCopy.copyPending();
    this.full = full;
  }

  /** Commit what was staged since the last flush and ring the consumers' doorbells. */
  flush(): void {
    this.addPending();
    const touched = this.touched;
    for (let i = 0; i < touched.length; i++) {
      const t = touched[i];
      const st = this.staging[t]!;
      st.touched = false;
      if (st.backlogged) continue; // retried in order when the consumer rings us
      if (!this.isAlive(t)) {
        st.start = st.end = st.fragDone = st.lastSerial = 0; // its consumer died: nobody takes them
        continue;
      }
      if (this.commit(t, st)) this.doorbellOf(t).ring();
    }
    touched.length = 0;
    if (this.interestDirty) {
      this.interestDirty = false;
      this.ownLog.flushBacklog();
      // Workers replay interest when they next route anything: waking them all for each
      // change would cost a wake-up per thread per SUB. The threads that announce interest to
      // server peers (the route thread) are woken; everyone only when the log needs its
      // readers to catch up.
      if (this.ownLog.crowded()) {
        for (let t = 0; t < this.threads; t++) if (t !== this.thread) this.doorbellOf(t).ring();
      } else {
        for (const t of this.announcers) if (t !== this.thread) this.doorbellOf(t).ring();
      }
    }
  }

  /**
   * Move staged records of `t` into its inbox, as whole-record blocks (or pieces of one record
   * larger than a block). Returns whether anything was committed; leaves the rest staged,
   * and `t` backlogged, when the inbox is full.
   */
  private commit(t: number, st: Staging): boolean {
    this.addPending();
    st.lastSerial = 0; // what is committed no longer grows
    const inbox = this.outbox(t);
    const max = inbox.maxBlockBody;
    const v = st.view;
    let any = false;
    while (st.start < st.end) {
      const first = v.getUint32(st.start, true);
      if (st.fragDone > 0 || first + 4 > max) {
        const piece = Math.min(max - 8, first - st.fragDone);
        if (!inbox.put(this.thread, BlockKind.fragment, piece, st.buf, st.start + 4 + st.fragDone, first, st.fragDone)) break;
        any = true;
        st.fragDone += piece;
        if (st.fragDone === first) {
          st.fragDone = 0;
          st.start += 4 + first;
        }
        continue;
      }
      let n = st.end - st.start;
      if (n > max) {
        // As many whole records as one block takes.
        n = 0;
        let len = first;
        while (n + 4 + len <= max) {
          n += 4 + len;
          if (st.start + n >= st.end) break;
          len = v.getUint32(st.start + n, true);
        }
      }
      if (!inbox.put(this.thread, BlockKind.records, n, st.buf, st.start)) break;
      any = true;
      st.start += n;
    }
    const done = st.start === st.end;
    if (done) {
      st.start = st.end = 0;
      if (st.buf.length > STAGE_KEEP_MAX) this.staging[t] = null;
    }
    if (done === st.backlogged) {
      st.backlogged = !done;
      this.backlogCount += done ? -1 : 1;
    }
    return any;
  }

  /** Retry backed-up destinations (a consumer rang us); drop those whose consumer died. */
  private retryBacklog(): void {
    for (let t = 0; t < this.threads; t++) {
      const st = this.staging[t];
      if (st === null || !st.backlogged) continue;
      if (!this.isAlive(t)) {
        st.start = st.end = st.fragDone = st.lastSerial = 0;
        st.backlogged = false;
        this.backlogCount--;
        continue;
      }
      if (this.commit(t, st)) this.doorbellOf(t).ring();
    }
  }

  // ------------------------------------------------------------- stalls

  /**
   * A record from thread `t`, published by its connection `cid`, reached a consumer here that
   * is backed up: ask `t` to stall that publisher for `ms` (nats-server's fast-producer
   * stall). A control record, at most once per publisher per stall period, never per message.
   */
  requestStall(t: number, cid: number, ms: number): void {
    const key = cid * 1024 + t;
    const now = Date.now();
    const until = this.stalls.get(key);
    if (until !== undefined && until > now) return;
    this.stalls.set(key, now + ms);
    this.sendStall(t, cid, ms);
  }

  /** Our consumers caught up: let every publisher we stalled go on now. */
  releaseStalls(): void {
    if (this.stalls.size === 0) return;
    for (const key of this.stalls.keys()) this.sendStall(key % 1024, Math.floor(key / 1024), 0);
    this.stalls.clear();
    this.flush();
  }

  /**
   * Forget stalls long run out (called from a periodic sweep). Kept a while past their period:
   * the publisher stays throttled until released (see Broker.remoteStalled), so the release
   * must still find it.
   */
  pruneStalls(now: number): void {
    if (this.stalls.size > 0) for (const [key, until] of this.stalls) if (until + 10_000 <= now) this.stalls.delete(key);
  }

  private sendStall(t: number, cid: number, ms: number): void {
    if (!this.isAlive(t)) return;
    const full = this.full;
    const o = this.reserve(t, STALL_RECORD_BYTES);
    writeStallRecord(this.dstView, o, cid, ms);
    this.full = full; // a control record never pauses anyone here
  }

  /** Our interest log holds every change made so far (none waits for log space). */
  interestPublished(): boolean {
    return !this.ownLog.hasBacklog || this.ownLog.flushBacklog();
  }

  // -------------------------------------------------------------- inbound

  private block(producer: number, kind: number, data: Buffer, off: number, len: number): void {
    const h = this.handler!;
    const v = this.inbox.view;
    if (kind === BlockKind.records) {
      if (this.pieces.size > 0) this.pieces.delete(producer); // a producer that restarted mid-record
      const end = off + len;
      let p = off;
      while (p < end) {
        const rl = v.getUint32(p, true);
        h.onRecord(producer, data, v, p + 4, rl);
        p += 4 + rl;
      }
      return;
    }
    if (kind !== BlockKind.fragment) return;
    const total = v.getUint32(off, true);
    const at = v.getUint32(off + 4, true);
    let r = this.pieces.get(producer);
    if (at === 0) {
      r = { buf: Buffer.allocUnsafe(total), have: 0 };
      this.pieces.set(producer, r);
    }
    if (r === undefined || r.have !== at || r.buf.length !== total) {
      this.pieces.delete(producer);
      return;
    }
    data.copy(r.buf, at, off + 8, off + len);
    r.have += len - 8;
    if (r.have < total) return;
    this.pieces.delete(producer);
    h.onRecord(producer, r.buf, new DataView(r.buf.buffer, r.buf.byteOffset, r.buf.byteLength), 0, total);
  }

  /**
   * Deliver every record other threads have committed to us so far, whatever the batch
   * limits and stalls: a PING or UNSUB on this thread must not overtake them. False when a
   * block reserved before now is not committed yet (its producer is copying it in): the
   * caller waits and asks again.
   */
  drainCommitted(): boolean {
    const upTo = this.inbox.reservedTo();
    this.discard();
    this.inbox.drain(this.onBlock, Infinity, upTo);
    this.wakeProducers();
    return this.inbox.position() === upTo;
  }

  /**
   * Take what already waits in the inbox (a thread busy with its own sockets drains as it
   * goes, at each read, instead of waiting for a wake-up). Returns whether anything was taken.
   */
  drainPending(): boolean {
    if (!this.inbox.hasData()) return false;
    const upTo = this.inbox.reservedTo();
    this.applyInterest();
    this.handler!.afterInterest?.();
    this.discard();
    const taken = this.inbox.drain(this.onBlock, DRAIN_BATCH_BYTES, upTo);
    this.wakeProducers();
    return taken > 0;
  }

  private wakeProducers(): void {
    this.inbox.takeWaiters((p) => this.doorbellOf(p).ringAlways());
  }

  /** A replacement drops its predecessor's records (their connections are gone). */
  private discard(): void {
    if (this.discardTo < 0) return;
    this.inbox.drain(this.discardBlock, Infinity, this.discardTo);
    if (this.inbox.position() === this.discardTo) this.discardTo = -1;
  }

  // -------------------------------------------------------------- interest

  /** Replay other threads' new interest records. O(1) when no log changed. */
  applyInterest(): void {
    if (!this.gen.changed()) return;
    const h = this.handler!;
    for (let t = 0; t < this.threads; t++) {
      if (t === this.thread || !this.readerLive[t]) continue;
      const lg = this.logOf(t);
      if (!lg.hasNew(this.thread)) continue;
      lg.read(this.thread, (rec) => {
        if (rec.op === InterestOp.direct) h.onDirect?.(t, rec);
        else if (rec.origin === undefined) h.onInterest(t, rec);
        else h.onOriginInterest?.(t, rec);
      });
    }
  }

  /** Our log position, for a snapshot a replacement thread asked for. */
  snapshotPosition(): number {
    this.ownLog.flushBacklog();
    return this.ownLog.position();
  }

  /** A snapshot of thread `from` was applied: replay its log from `position` on. */
  snapshotApplied(from: number, position: number): void {
    this.logOf(from).setReaderPosition(this.thread, position);
    this.readerLive[from] = true;
    this.gen.invalidate();
  }

  // ----------------------------------------------------------------- loop

  /** Who gets records and interest (set before anything is drained). */
  bind(handler: MeshHandler): void {
    this.handler = handler;
  }

  /** Start draining; the handler is called on this thread's event loop. */
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

  /** Wake the loop if it sleeps with work waiting (a periodic safety net; see the sweeps). */
  kick(): void {
    if (this.bell.sleeping && this.hasWork()) this.bell.ringAlways();
  }

  private hasWork(): boolean {
    if (this.gen.peek()) return true;
    if (this.roomWantedAny) {
      for (let t = 0; t < this.threads; t++) {
        const want = this.roomWanted[t];
        if (want >= 0 && (!this.isAlive(t) || this.outbox(t).backlogBytes() <= want)) return true;
      }
    }
    if (this.backlogCount > 0) {
      // Space freed in an inbox we wait on, even if its consumer looked before we asked.
      for (let t = 0; t < this.threads; t++) {
        const st = this.staging[t];
        if (
          st !== null &&
          st.backlogged &&
          (!this.isAlive(t) || this.outbox(t).hasRoomFor(Math.min(st.end - st.start, this.outbox(t).maxBlockBody)))
        )
          return true;
      }
    }
    return this.inbox.hasData();
  }

  /** One pass over everything shared; returns whether any record was taken. */
  poll(): boolean {
    const h = this.handler!;
    // A producer logs interest changes before it commits the records that follow them (a
    // SUB to a reply inbox, then the request). Take the reservation cursor first and apply
    // interest second, so every record drained below is seen after the interest that
    // preceded it: the route thread must send RS+ before the RMSG that depends on it.
    const upTo = this.inbox.reservedTo();
    this.applyInterest();
    h.afterInterest?.();
    this.discard();
    const taken = this.inbox.drain(this.onBlock, DRAIN_BATCH_BYTES, upTo);
    this.wakeProducers();
    if (this.backlogCount > 0) {
      this.retryBacklog();
      if (this.backlogCount === 0) h.onSpace();
    }
    if (this.ownLog.hasBacklog) this.ownLog.flushBacklog();
    if (this.roomWantedAny) {
      // Asked again (crowded) by the handler for whatever is still held.
      this.roomWanted.fill(-1);
      this.roomWantedAny = false;
    }
    h.afterDrain();
    this.flush();
    this.inbox.markDone();
    return taken > 0;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let did = false;
      try {
        did = this.poll();
      } catch (err) {
        log.error(`Thread ${this.thread}: error draining shared rings: ${(err as Error).stack}`);
      }
      if (did && this.inbox.hasData()) {
        // More came meanwhile: let this thread's sockets run, then take it (no sleep, no wake).
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      await this.bell.sleep(() => !this.hasWork());
    }
  }
}
