// Single-producer single-consumer byte rings in SharedArrayBuffers, and the per-thread
// doorbell that wakes a consumer. Records are [u32 length][body], 4-byte aligned, never
// split across the end of the ring (a zero length marks "skip to the start").
//
// Wake protocol (see ../shared/feasibility.md, D): the producer publishes its tail with one
// Atomics.store per batch and rings the consumer's doorbell only if the consumer said it is
// sleeping; the consumer sets "sleeping", re-checks every ring, then Atomics.waitAsync's on
// the doorbell. Nobody ever blocks with Atomics.wait: every thread here owns sockets.

const HEAD = 0; // consumer position (bytes, wraps at 2^32)
const TAIL = 1; // producer position
const PRODUCER_WAITING = 2; // producer is out of space and wants a doorbell when head moves
export const RING_HEADER_BYTES = 64;

export class Ring {
  readonly sab: SharedArrayBuffer;
  readonly capacity: number;
  readonly data: Buffer;
  private readonly hdr: Int32Array;
  private readonly mask: number;
  /** Producer-local tail, published by commit(). */
  private localTail: number;

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.capacity = sab.byteLength - RING_HEADER_BYTES;
    this.mask = this.capacity - 1;
    this.hdr = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
    this.data = Buffer.from(sab, RING_HEADER_BYTES, this.capacity);
    this.localTail = Atomics.load(this.hdr, TAIL) >>> 0;
  }

  static create(capacityBytes: number): SharedArrayBuffer {
    if ((capacityBytes & (capacityBytes - 1)) !== 0) throw new Error('ring capacity must be a power of two');
    return new SharedArrayBuffer(RING_HEADER_BYTES + capacityBytes);
  }

  // ---- producer side (runs on the producing thread only) ----

  /**
   * Reserve `bodyBytes` for one record; returns the offset in `data` of the body, or -1 if
   * the ring lacks space. The record becomes visible at the next commit().
   */
  reserve(bodyBytes: number): number {
    const total = (bodyBytes + 4 + 3) & ~3;
    if (total > this.capacity >>> 1) throw new Error(`record of ${bodyBytes} bytes exceeds ring capacity`);
    const head = Atomics.load(this.hdr, HEAD) >>> 0;
    let tail = this.localTail;
    const free = this.capacity - ((tail - head) >>> 0);
    let off = tail & this.mask;
    const toEnd = this.capacity - off;
    if (total > toEnd) {
      if (free < toEnd + total) return -1;
      this.data.writeUInt32LE(0, off); // skip marker
      tail = (tail + toEnd) >>> 0;
      off = 0;
    } else if (free < total) {
      return -1;
    }
    this.data.writeUInt32LE(total, off);
    this.localTail = (tail + total) >>> 0;
    return off + 4;
  }

  /** Publish everything reserved so far. Returns true if anything new was published. */
  commit(): boolean {
    const published = Atomics.load(this.hdr, TAIL) >>> 0;
    if (published === this.localTail) return false;
    Atomics.store(this.hdr, TAIL, this.localTail | 0);
    return true;
  }

  /** Would reserve(bodyBytes) succeed now? (Used after wantSpace() to close the wake-up race.) */
  canReserve(bodyBytes: number): boolean {
    const total = (bodyBytes + 4 + 3) & ~3;
    const head = Atomics.load(this.hdr, HEAD) >>> 0;
    const free = this.capacity - ((this.localTail - head) >>> 0);
    const toEnd = this.capacity - (this.localTail & this.mask);
    return total > toEnd ? free >= toEnd + total : free >= total;
  }

  /** Ask the consumer to ring our doorbell when it frees space. */
  wantSpace(): void {
    Atomics.store(this.hdr, PRODUCER_WAITING, 1);
  }

  /** Re-sync the producer position after the previous producer thread died. */
  adoptProducer(): void {
    this.localTail = Atomics.load(this.hdr, TAIL) >>> 0;
  }

  // ---- consumer side (runs on the consuming thread only) ----

  /** The producer's published position (for draining up to a snapshot). */
  tailPosition(): number {
    return Atomics.load(this.hdr, TAIL) >>> 0;
  }

  /** Bytes published and not yet consumed (any thread may ask: monitoring). */
  backlogBytes(): number {
    return (Atomics.load(this.hdr, TAIL) - Atomics.load(this.hdr, HEAD)) >>> 0;
  }

  hasData(): boolean {
    return Atomics.load(this.hdr, HEAD) !== Atomics.load(this.hdr, TAIL);
  }

  /**
   * Visit published records: fn(data, bodyOffset, bodyLength), up to `maxRecords` records or
   * `maxBytes` bytes, or until `stop()` says so (the consumer's own output is backed up).
   * Returns the number of records, and whether the producer asked for a doorbell (it is
   * waiting for space).
   */
  drain(fn: (data: Buffer, off: number, len: number) => void, maxRecords: number, maxBytes = 0x7fffffff, stop?: () => boolean, upTo?: number): { count: number; producerWaiting: boolean } {
    let head = Atomics.load(this.hdr, HEAD) >>> 0;
    const start = head;
    const tail = upTo ?? Atomics.load(this.hdr, TAIL) >>> 0;
    let count = 0;
    while (head !== tail && count < maxRecords && ((head - start) >>> 0) < maxBytes && (stop === undefined || !stop())) {
      const off = head & this.mask;
      const total = this.data.readUInt32LE(off);
      if (total === 0) {
        head = (head + (this.capacity - off)) >>> 0;
        continue;
      }
      fn(this.data, off + 4, total - 4);
      head = (head + total) >>> 0;
      count++;
    }
    Atomics.store(this.hdr, HEAD, head | 0);
    let producerWaiting = false;
    if (Atomics.load(this.hdr, PRODUCER_WAITING) === 1) {
      Atomics.store(this.hdr, PRODUCER_WAITING, 0);
      producerWaiting = true;
    }
    return { count, producerWaiting };
  }

  /** Drop everything published (a consumer taking over after its predecessor died). */
  skipAll(): void {
    Atomics.store(this.hdr, HEAD, Atomics.load(this.hdr, TAIL));
  }
}

const SEQ = 0;
const SLEEPING = 1;

/** One per thread: every producer that feeds the thread rings it. Int32 pair [seq, sleeping]. */
export class Doorbell {
  private readonly cell: Int32Array;

  constructor(sab: SharedArrayBuffer, index: number) {
    this.cell = new Int32Array(sab, index * 8, 2);
  }

  ring(): void {
    if (Atomics.load(this.cell, SLEEPING) === 1) {
      Atomics.add(this.cell, SEQ, 1);
      Atomics.notify(this.cell, SEQ);
    }
  }

  /** Unconditional wake (control-plane events). */
  ringAlways(): void {
    Atomics.add(this.cell, SEQ, 1);
    Atomics.notify(this.cell, SEQ);
  }

  /**
   * Sleep until rung. `stillEmpty` is re-checked after announcing sleep, closing the race
   * with a producer that published just before.
   */
  async sleep(stillEmpty: () => boolean, timeoutMs: number): Promise<void> {
    const seq = Atomics.load(this.cell, SEQ);
    Atomics.store(this.cell, SLEEPING, 1);
    try {
      if (!stillEmpty()) return;
      const r = Atomics.waitAsync(this.cell, SEQ, seq, timeoutMs);
      if (r.async) await r.value;
    } finally {
      Atomics.store(this.cell, SLEEPING, 0);
    }
  }
}
