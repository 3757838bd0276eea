// The replicated interest graph. Each thread that owns subscriptions writes its interest
// changes, aggregated per (subject, queue) like the route protocol's RS+/RS- with queue
// weights, into its own log in a SharedArrayBuffer. Every other thread replays those logs
// into its own sublist, so a publishing thread knows, without asking anyone, which threads
// have interest in a subject. A reader applies pending records before it routes anything
// from a read, so a SUB answered with PONG on one thread is seen by a PUB that another
// thread reads afterwards.
//
// Layout: Int32 header [tail, readerPos[0..MAX_THREADS), readerActive[0..MAX_THREADS)],
// then a byte ring of records [u32 len][u8 op][u8 0][u16 subjLen][u16 queueLen][u16 0]
// [i32 weight][subject][queue]. Single writer, one cursor per reader.

export const MAX_THREADS = 64;
const TAIL = 0;
const POS = 1;
const ACTIVE = 1 + MAX_THREADS;
const HEADER_INTS = 1 + 2 * MAX_THREADS;
const HEADER_BYTES = ((HEADER_INTS * 4 + 63) >> 6) << 6;

export const InterestOp = { set: 1, reset: 2 } as const;

export interface InterestRecord {
  op: number;
  subject: string;
  queue: string | null;
  weight: number;
}

export class InterestLog {
  readonly sab: SharedArrayBuffer;
  private readonly hdr: Int32Array;
  private readonly data: Buffer;
  private readonly capacity: number;
  private readonly mask: number;
  private localTail: number;
  /** Records that did not fit yet (writer side); flushed in order as readers catch up. */
  private backlog: Buffer[] = [];

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.hdr = new Int32Array(sab, 0, HEADER_INTS);
    this.capacity = sab.byteLength - HEADER_BYTES;
    this.mask = this.capacity - 1;
    this.data = Buffer.from(sab, HEADER_BYTES, this.capacity);
    this.localTail = Atomics.load(this.hdr, TAIL) >>> 0;
  }

  static create(capacityBytes: number): SharedArrayBuffer {
    return new SharedArrayBuffer(HEADER_BYTES + capacityBytes);
  }

  // ---- writer ----

  /** Take over as writer (a replacement thread, or main writing for a dead thread). */
  adoptWriter(): void {
    this.localTail = Atomics.load(this.hdr, TAIL) >>> 0;
    this.backlog = [];
  }

  append(op: number, subject: string, queue: string | null, weight: number): void {
    const sLen = Buffer.byteLength(subject);
    const qLen = queue === null ? 0 : Buffer.byteLength(queue);
    const body = 12 + sLen + qLen;
    const rec = Buffer.allocUnsafe(body);
    rec[0] = op;
    rec[1] = 0;
    rec.writeUInt16LE(sLen, 2);
    rec.writeUInt16LE(qLen, 4);
    rec.writeUInt16LE(0, 6);
    rec.writeInt32LE(weight, 8);
    rec.write(subject, 12, 'utf8');
    if (queue !== null) rec.write(queue, 12 + sLen, 'utf8');
    this.backlog.push(rec);
    this.flushBacklog();
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
    }
    return this.backlog.length === 0;
  }

  get hasBacklog(): boolean {
    return this.backlog.length > 0;
  }

  private tryWrite(rec: Buffer): boolean {
    const total = (rec.length + 4 + 3) & ~3;
    let slowest = this.localTail;
    for (let r = 0; r < MAX_THREADS; r++) {
      if (Atomics.load(this.hdr, ACTIVE + r) !== 1) continue;
      const pos = Atomics.load(this.hdr, POS + r) >>> 0;
      if (((this.localTail - pos) >>> 0) > ((this.localTail - slowest) >>> 0)) slowest = pos;
    }
    const free = this.capacity - ((this.localTail - slowest) >>> 0);
    let off = this.localTail & this.mask;
    const toEnd = this.capacity - off;
    let tail = this.localTail;
    if (total > toEnd) {
      if (free < toEnd + total) return false;
      this.data.writeUInt32LE(0, off);
      tail = (tail + toEnd) >>> 0;
      off = 0;
    } else if (free < total) {
      return false;
    }
    this.data.writeUInt32LE(total, off);
    rec.copy(this.data, off + 4);
    this.localTail = (tail + total) >>> 0;
    return true;
  }

  // ---- readers ----

  /** Register reader `r` starting at the current end of the log. */
  openReader(r: number, atPosition?: number): void {
    Atomics.store(this.hdr, POS + r, atPosition ?? Atomics.load(this.hdr, TAIL));
    Atomics.store(this.hdr, ACTIVE + r, 1);
  }

  closeReader(r: number): void {
    Atomics.store(this.hdr, ACTIVE + r, 0);
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
    while (pos !== tail) {
      const off = pos & this.mask;
      const total = this.data.readUInt32LE(off);
      if (total === 0) {
        pos = (pos + (this.capacity - off)) >>> 0;
        continue;
      }
      const b = off + 4;
      const sLen = this.data.readUInt16LE(b + 2);
      const qLen = this.data.readUInt16LE(b + 4);
      fn({
        op: this.data[b],
        weight: this.data.readInt32LE(b + 8),
        subject: this.data.toString('utf8', b + 12, b + 12 + sLen),
        queue: qLen === 0 ? null : this.data.toString('utf8', b + 12 + sLen, b + 12 + sLen + qLen),
      });
      pos = (pos + total) >>> 0;
      n++;
    }
    Atomics.store(this.hdr, POS + r, pos | 0);
    return n;
  }
}
