// The replicated interest graph. Each thread that owns subscriptions writes its interest
// changes, aggregated per (subject, queue) like the route protocol's RS+/RS- with queue
// weights, into its own log in shared memory. Every other thread replays those logs into its
// own sublist, so a publishing thread knows, without asking anyone, which threads have
// interest in a subject. A reader applies pending records before it routes anything from a
// read, so a SUB answered with PONG on one thread is seen by a PUB that another thread reads
// afterwards.
//
// A writer bumps one shared generation word after each append: a reader compares it with the
// value it last saw and scans the logs only when it moved (an O(1) check per read, not one
// per thread).
//
// Layout of one log: Int32 header [tail, readerPos[0..readers), readerActive[0..readers)],
// then a byte ring of records [u32 len][u8 op][u8 flags][u16 0][u32 subjLen][u32 queueLen]
// [i32 weight][subject][queue][i32 routeWeight if flags & 1], subject and queue as bytes (latin1
// strings: one char per byte). Single writer, one cursor per reader.
//
// routeWeight: the leaf thread's interest has two audiences. Client workers get all of it;
// routes and gateways only what its leafs announced (nats-server never passes a hub's interest
// to routes or gateways), so its records carry that second weight too.
//
// origin (flags & 2, then [u32 len][origin bytes]): the leaf cluster a share of the interest came
// from (route LS+ <origin>, a leaf's CONNECT cluster). Such a record does not change the entry's
// weight: it says what the weight is *without* the subscriptions of that origin (plain: 0/1;
// -1: none of that origin any more, forget it). Only the route thread (which announces
// `LS+ <origin>` to lnoc peers) and the leaf thread (which tells no leaf of that cluster) read
// them; the mesh hands them to onOriginInterest, never to onInterest. Interest without an origin
// writes none.

const TAIL = 0;
const POS = 1;
const REC_HDR = 16;

// direct (op 3): not interest but who on the writing thread takes direct deliveries for a
// subject (broker/direct.ts): `queue` carries the encoded list of its subscriptions (null:
// none, the thread's subscribers of that subject are reached through its inbox only) and
// `weight` their number. The mesh hands them to onDirect, never to onInterest.
export const InterestOp = { set: 1, reset: 2, direct: 3 } as const;

export interface InterestRecord {
  op: number;
  subject: string;
  queue: string | null;
  weight: number;
  /** The weight for route and gateway viewers, when it differs in kind (the leaf thread's); -1 or absent: none. */
  routeWeight?: number;
  /** An origin record (see above): `weight` is the entry's weight without this origin's share. */
  origin?: string;
}

const FLAG_ROUTE_WEIGHT = 1;
const FLAG_ORIGIN = 2;

function headerBytes(readers: number): number {
  return (((1 + 2 * readers) * 4 + 63) >> 6) << 6;
}

/** Bytes of shared memory for one log of `capacity` data bytes read by `readers` threads. */
export function interestLogBytes(capacity: number, readers: number): number {
  return headerBytes(readers) + capacity;
}

export class InterestLog {
  private readonly hdr: Int32Array;
  private readonly data: Buffer;
  private readonly capacity: number;
  private readonly mask: number;
  private readonly readers: number;
  private readonly gen: Int32Array;
  private localTail: number;
  /** Where the slowest reader was when last looked at (free space is recomputed lazily). */
  private slowest: number;
  /** Records that did not fit yet (writer side); flushed in order as readers catch up. */
  private backlog: Buffer[] = [];

  /** The log at `offset` of `sab`; `gen` is the layout's shared interest generation word. */
  constructor(sab: SharedArrayBuffer, offset: number, capacity: number, readers: number, gen: SharedArrayBuffer) {
    if ((capacity & (capacity - 1)) !== 0) throw new Error('interest log capacity must be a power of two');
    this.readers = readers;
    const hb = headerBytes(readers);
    this.hdr = new Int32Array(sab, offset, hb / 4);
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.data = Buffer.from(sab, offset + hb, capacity);
    this.gen = new Int32Array(gen, 0, 1);
    this.localTail = Atomics.load(this.hdr, TAIL) >>> 0;
    this.slowest = this.localTail;
  }

  // ---- writer ----

  /** Take over as writer (a replacement thread, or main writing for a dead thread). */
  adoptWriter(): void {
    this.localTail = Atomics.load(this.hdr, TAIL) >>> 0;
    this.slowest = this.localTail;
    this.backlog = [];
  }

  /**
   * Log one change. A record larger than half the log cannot be written: the caller checks
   * fits() first (the layout sizes logs for the largest control line, so it never happens
   * for a subject a client could send).
   */
  append(op: number, subject: string, queue: string | null, weight: number, routeWeight = -1, origin: string | null = null): void {
    const sLen = subject.length;
    const qLen = queue === null ? 0 : queue.length;
    const oLen = origin === null ? 0 : 4 + origin.length;
    const rwLen = routeWeight >= 0 ? 4 : 0;
    const rec = Buffer.allocUnsafe(REC_HDR + sLen + qLen + rwLen + oLen);
    rec[0] = op;
    rec[1] = (routeWeight >= 0 ? FLAG_ROUTE_WEIGHT : 0) | (origin !== null ? FLAG_ORIGIN : 0);
    rec.writeUInt16LE(0, 2);
    rec.writeUInt32LE(sLen, 4);
    rec.writeUInt32LE(qLen, 8);
    rec.writeInt32LE(weight, 12);
    rec.write(subject, REC_HDR, sLen, 'latin1');
    if (queue !== null) rec.write(queue, REC_HDR + sLen, qLen, 'latin1');
    if (routeWeight >= 0) rec.writeInt32LE(routeWeight, REC_HDR + sLen + qLen);
    if (origin !== null) {
      const o = REC_HDR + sLen + qLen + rwLen;
      rec.writeUInt32LE(origin.length, o);
      rec.write(origin, o + 4, origin.length, 'latin1');
    }
    if (!this.fits(sLen, qLen + oLen))
      throw new RangeError(`interest record of ${rec.length} bytes exceeds the interest log (${this.capacity} bytes)`);
    this.backlog.push(rec);
    this.flushBacklog();
  }

  /** Can a record for this subject and queue (byte lengths) be logged at all? */
  fits(subjectBytes: number, queueBytes: number): boolean {
    return REC_HDR + subjectBytes + queueBytes + 4 + 4 + 3 <= this.capacity >>> 1;
  }

  /** Move backlog records into the ring; true when the backlog is empty. */
  flushBacklog(): boolean {
    let written = 0;
    while (written < this.backlog.length) {
      if (!this.tryWrite(this.backlog[written])) break;
      written++;
    }
    if (written > 0) {
      this.backlog.splice(0, written);
      Atomics.store(this.hdr, TAIL, this.localTail | 0);
      Atomics.add(this.gen, 0, 1);
    }
    return this.backlog.length === 0;
  }

  get hasBacklog(): boolean {
    return this.backlog.length > 0;
  }

  /** More than half of the log still unread by some reader (they should catch up now). */
  crowded(): boolean {
    if ((this.localTail - this.slowest) >>> 0 <= this.capacity >>> 1) return false;
    this.rescan();
    return (this.localTail - this.slowest) >>> 0 > this.capacity >>> 1 || this.backlog.length > 0;
  }

  private free(): number {
    return this.capacity - ((this.localTail - this.slowest) >>> 0);
  }

  /** Find the slowest active reader (O(readers); only when the cached one leaves too little room). */
  private rescan(): void {
    let slowest = this.localTail;
    for (let r = 0; r < this.readers; r++) {
      if (Atomics.load(this.hdr, POS + this.readers + r) !== 1) continue;
      const pos = Atomics.load(this.hdr, POS + r) >>> 0;
      if ((this.localTail - pos) >>> 0 > (this.localTail - slowest) >>> 0) slowest = pos;
    }
    this.slowest = slowest;
  }

  private tryWrite(rec: Buffer): boolean {
    const total = (rec.length + 4 + 3) & ~3;
    let off = this.localTail & this.mask;
    const toEnd = this.capacity - off;
    const need = total > toEnd ? toEnd + total : total;
    if (this.free() < need) {
      this.rescan();
      if (this.free() < need) return false;
    }
    let tail = this.localTail;
    if (total > toEnd) {
      this.data.writeUInt32LE(0, off);
      tail = (tail + toEnd) >>> 0;
      off = 0;
    }
    this.data.writeUInt32LE(total, off);
    rec.copy(this.data, off + 4);
    this.localTail = (tail + total) >>> 0;
    return true;
  }

  // ---- readers ----

  /** Register reader `r` starting at `atPosition` (default: the current end of the log). */
  openReader(r: number, atPosition?: number): void {
    Atomics.store(this.hdr, POS + r, atPosition ?? Atomics.load(this.hdr, TAIL));
    Atomics.store(this.hdr, POS + this.readers + r, 1);
  }

  closeReader(r: number): void {
    Atomics.store(this.hdr, POS + this.readers + r, 0);
  }

  position(): number {
    return Atomics.load(this.hdr, TAIL) >>> 0;
  }

  setReaderPosition(r: number, pos: number): void {
    Atomics.store(this.hdr, POS + r, pos | 0);
  }

  hasNew(r: number): boolean {
    return Atomics.load(this.hdr, POS + r) !== Atomics.load(this.hdr, TAIL);
  }

  /** Apply every record after reader `r`'s cursor. */
  read(r: number, fn: (rec: InterestRecord) => void): number {
    let pos = Atomics.load(this.hdr, POS + r) >>> 0;
    const tail = Atomics.load(this.hdr, TAIL) >>> 0;
    let n = 0;
    const d = this.data;
    while (pos !== tail) {
      const off = pos & this.mask;
      const total = d.readUInt32LE(off);
      if (total === 0) {
        pos = (pos + (this.capacity - off)) >>> 0;
        continue;
      }
      const b = off + 4;
      const sLen = d.readUInt32LE(b + 4);
      const qLen = d.readUInt32LE(b + 8);
      const s = b + REC_HDR;
      const flags = d[b + 1];
      const rec: InterestRecord = {
        op: d[b],
        weight: d.readInt32LE(b + 12),
        subject: d.toString('latin1', s, s + sLen),
        queue: qLen === 0 ? null : d.toString('latin1', s + sLen, s + sLen + qLen),
        routeWeight: (flags & FLAG_ROUTE_WEIGHT) !== 0 ? d.readInt32LE(s + sLen + qLen) : -1,
      };
      if ((flags & FLAG_ORIGIN) !== 0) {
        const o = s + sLen + qLen + ((flags & FLAG_ROUTE_WEIGHT) !== 0 ? 4 : 0);
        rec.origin = d.toString('latin1', o + 4, o + 4 + d.readUInt32LE(o));
      }
      fn(rec);
      pos = (pos + total) >>> 0;
      n++;
    }
    Atomics.store(this.hdr, POS + r, pos | 0);
    return n;
  }
}

/** The shared interest generation: bumped by every log append (see InterestLog). */
export class InterestGeneration {
  private readonly gen: Int32Array;
  private seen: number;

  constructor(sab: SharedArrayBuffer) {
    this.gen = new Int32Array(sab, 0, 1);
    this.seen = Atomics.load(this.gen, 0) - 1; // look once at start
  }

  /** Did any log change since the last call that returned true? */
  changed(): boolean {
    const g = Atomics.load(this.gen, 0);
    if (g === this.seen) return false;
    this.seen = g;
    return true;
  }

  /** Cheap peek (no state change). */
  peek(): boolean {
    return Atomics.load(this.gen, 0) !== this.seen;
  }

  /** Force a scan at the next changed() (a reader came back to life). */
  invalidate(): void {
    this.seen = Atomics.load(this.gen, 0) - 1;
  }
}
