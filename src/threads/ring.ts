// Each thread's inbox: one multi-producer single-consumer byte ring in shared memory, and the
// per-thread doorbell that wakes a consumer. Memory grows with the number of threads, not
// with its square: a producer stages its records per destination while it handles a read and
// reserves one block per destination when it flushes (a compare-and-swap on the ring's
// reservation cursor), copies the block in, and publishes it with one store.
//
// The ring is cut into 64-byte slots. A block starts at a slot boundary; its length (a
// multiple of 64, low bit set for padding at the end of the ring) is published in a state
// word of the block's first slot, kept apart from the data: a state word is written only by
// the block's producer (commit) and cleared only by the consumer (when it has taken the
// block), so no stale byte in the data can ever pass for a committed block. The consumer
// takes committed blocks in reservation order; one producer's blocks arrive in its order.
//
// Wake protocol (see ../shared/feasibility.md, D): a producer rings the consumer's doorbell
// after a commit only if the consumer said it is sleeping; the consumer sets "sleeping",
// re-checks its inbox, then Atomics.waitAsync's on the doorbell. A producer out of space sets
// its bit in the ring's waiter bitmap and is rung when the consumer frees space. Nobody ever
// blocks with Atomics.wait: every thread here owns sockets.

import { put } from '../protocol/bytes.ts';

/** Int32 words of a ring's header: the consumer's cursor and the reservation cursor on their
 * own cache lines, then the waiter flag and bitmap. */
const HEAD = 0;
/** Where the consumer's output for what it took is written (see markDone): HEAD's cache line. */
const DONE = 8;
const RESERVE = 16;
const ANY_WAITER = 32;
const WAITERS = 33;
export const SLOT_BYTES = 64;
const SLOT_SHIFT = 6;
const PAD = 1;
/** Block header in the data: [u32 producer][u32 kind][u32 bodyBytes][u32 0]. */
export const BLOCK_HDR = 16;

export const BlockKind = {
  /** A run of whole records, each [u32 length][body]. */
  records: 1,
  /** One piece of a record larger than a block: [u32 recordBytes][u32 offset] + bytes. */
  fragment: 2,
} as const;

function headerBytes(producers: number): number {
  return (((WAITERS + ((producers + 31) >>> 5)) * 4 + 63) >>> 6) << 6;
}

/** Bytes of shared memory for one inbox of `capacity` data bytes with `producers` producers. */
export function inboxBytes(capacity: number, producers: number): number {
  return headerBytes(producers) + (capacity / SLOT_BYTES) * 4 + capacity;
}

export class Inbox {
  readonly capacity: number;
  readonly data: Buffer;
  /** Largest block body: a quarter of the ring, so padding never wastes more than that. */
  readonly maxBlockBody: number;
  private readonly hdr: Int32Array;
  private readonly state: Int32Array;
  private readonly mask: number;
  /** Spans `data` (same offsets): records are read through it. */
  readonly view: DataView;
  /** Consumer-local copy of HEAD (only the consumer moves it). */
  private head: number;
  /** Producer side: where this producer's last block in this ring ends. */
  lastEnd = 0;

  /** The inbox at `offset` of `sab` (see inboxBytes). */
  constructor(sab: SharedArrayBuffer, offset: number, capacity: number, producers: number) {
    if ((capacity & (capacity - 1)) !== 0 || capacity < 4096) throw new Error('inbox capacity must be a power of two of at least 4 KiB');
    this.capacity = capacity;
    this.mask = capacity - 1;
    const hb = headerBytes(producers);
    this.hdr = new Int32Array(sab, offset, hb / 4);
    this.state = new Int32Array(sab, offset + hb, capacity / SLOT_BYTES);
    this.data = Buffer.from(sab, offset + hb + (capacity / SLOT_BYTES) * 4, capacity);
    this.view = new DataView(this.data.buffer, this.data.byteOffset, capacity);
    this.maxBlockBody = (capacity >>> 2) - BLOCK_HDR;
    this.head = Atomics.load(this.hdr, HEAD) >>> 0;
  }

  // ---- producer side (any thread; several at once) ----

  /**
   * Reserve, fill and commit one block: `fill(data, offset)` writes `bodyBytes` at
   * data[offset, offset + bodyBytes). Returns false (and registers `producer` as a waiter)
   * when the ring lacks space; the caller keeps the bytes and retries when rung.
   */
  put(producer: number, kind: number, bodyBytes: number, src: Uint8Array, srcStart: number, prefix0 = -1, prefix1 = -1): boolean {
    const extra = prefix0 >= 0 ? 8 : 0;
    const total = (BLOCK_HDR + extra + bodyBytes + SLOT_BYTES - 1) & ~(SLOT_BYTES - 1);
    if (total > this.capacity >>> 2)
      throw new RangeError(`block of ${bodyBytes} bytes exceeds the inbox's largest block (${this.maxBlockBody})`);
    const hdr = this.hdr;
    let res = 0;
    let off = 0;
    let pad = 0;
    for (;;) {
      res = Atomics.load(hdr, RESERVE) >>> 0;
      const head = Atomics.load(hdr, HEAD) >>> 0;
      off = res & this.mask;
      const toEnd = this.capacity - off;
      pad = total > toEnd ? toEnd : 0;
      if (((res - head) >>> 0) + pad + total > this.capacity) {
        if (!this.waitForSpace(producer, pad + total)) return false;
        continue;
      }
      if (Atomics.compareExchange(hdr, RESERVE, res | 0, (res + pad + total) | 0) === (res | 0)) break;
    }
    this.lastEnd = (res + pad + total) | 0;
    if (pad > 0) {
      Atomics.store(this.state, off >>> SLOT_SHIFT, pad | PAD);
      off = 0;
    }
    const v = this.view;
    v.setUint32(off, producer, true);
    v.setUint32(off + 4, kind, true);
    v.setUint32(off + 8, extra + bodyBytes, true);
    let o = off + BLOCK_HDR;
    if (extra > 0) {
      v.setUint32(o, prefix0, true);
      v.setUint32(o + 4, prefix1, true);
      o += 8;
    }
    put(this.data, o, src, srcStart, srcStart + bodyBytes);
    Atomics.store(this.state, off >>> SLOT_SHIFT, total);
    return true;
  }

  /** Out of space: ask to be rung, then look once more (closing the race with the consumer). */
  private waitForSpace(producer: number, need: number): boolean {
    const w = WAITERS + (producer >>> 5);
    Atomics.or(this.hdr, w, 1 << (producer & 31));
    Atomics.store(this.hdr, ANY_WAITER, 1);
    const res = Atomics.load(this.hdr, RESERVE) >>> 0;
    const head = Atomics.load(this.hdr, HEAD) >>> 0;
    return ((res - head) >>> 0) + need <= this.capacity;
  }

  /**
   * Ask to be rung when the consumer next takes blocks (a producer holding back on its own,
   * see Mesh.crowded). Returns whether the backlog is already at most `bytes` (then no need).
   */
  ringWhenBelow(producer: number, bytes: number): boolean {
    const w = WAITERS + (producer >>> 5);
    Atomics.or(this.hdr, w, 1 << (producer & 31));
    Atomics.store(this.hdr, ANY_WAITER, 1);
    return this.backlogBytes() <= bytes;
  }

  /** Would a block of `bodyBytes` (plus possible padding) fit now? */
  hasRoomFor(bodyBytes: number): boolean {
    const total = (BLOCK_HDR + 8 + bodyBytes + SLOT_BYTES - 1) & ~(SLOT_BYTES - 1);
    const res = Atomics.load(this.hdr, RESERVE) >>> 0;
    const head = Atomics.load(this.hdr, HEAD) >>> 0;
    return ((res - head) >>> 0) + 2 * total <= this.capacity;
  }

  // ---- consumer side (the owning thread only) ----

  /** Bytes reserved and not yet taken (any thread may ask: monitoring). */
  backlogBytes(): number {
    return (Atomics.load(this.hdr, RESERVE) - Atomics.load(this.hdr, HEAD)) >>> 0;
  }

  /** A committed block waits at the head. */
  hasData(): boolean {
    return Atomics.load(this.state, (this.head & this.mask) >>> SLOT_SHIFT) !== 0;
  }

  /** Everything reserved so far has been taken. */
  get caughtUp(): boolean {
    return Atomics.load(this.hdr, RESERVE) >>> 0 === this.head;
  }

  /** The reservation cursor now (what was reserved before this moment ends there). */
  reservedTo(): number {
    return Atomics.load(this.hdr, RESERVE) >>> 0;
  }

  /** The consumer's cursor. */
  position(): number {
    return this.head;
  }

  /**
   * Take committed blocks in order, up to `maxBytes` (at least one block) or until `upTo` is
   * reached: fn(producer, kind, data, bodyOffset, bodyBytes) for each. Stops at the first
   * block that is reserved but not committed yet. Returns the bytes taken.
   */
  drain(fn: (producer: number, kind: number, data: Buffer, off: number, len: number) => void, maxBytes: number, upTo = -1): number {
    let head = this.head;
    const start = head;
    const v = this.view;
    while ((head - start) >>> 0 < maxBytes && head !== upTo) {
      const slot = (head & this.mask) >>> SLOT_SHIFT;
      const st = Atomics.load(this.state, slot);
      if (st === 0) break;
      const total = st & ~(SLOT_BYTES - 1);
      if ((st & PAD) === 0) {
        const off = head & this.mask;
        fn(v.getUint32(off, true), v.getUint32(off + 4, true), this.data, off + BLOCK_HDR, v.getUint32(off + 8, true));
      }
      Atomics.store(this.state, slot, 0);
      head = (head + total) >>> 0;
      // Publish progress block by block: a producer waiting for space can go on at once.
      this.head = head;
      Atomics.store(this.hdr, HEAD, head | 0);
    }
    return (head - start) >>> 0;
  }

  /**
   * Consumer: everything taken so far has been handled and its output handed to the sockets
   * (or queued where the sockets' owners see it). A producer compares its lastEnd with it
   * (handled()) before it writes a subscriber's socket itself (broker/direct.ts).
   */
  markDone(): void {
    Atomics.store(this.hdr, DONE, this.head | 0);
  }

  /** Producer: has the consumer handled every block this producer put in? */
  handled(): boolean {
    return ((Atomics.load(this.hdr, DONE) - this.lastEnd) | 0) >= 0;
  }

  /** Producers waiting for space, cleared: fn(producer) for each. */
  takeWaiters(fn: (producer: number) => void): void {
    if (Atomics.load(this.hdr, ANY_WAITER) === 0) return;
    Atomics.store(this.hdr, ANY_WAITER, 0);
    for (let w = WAITERS; w < this.hdr.length; w++) {
      let bits = Atomics.exchange(this.hdr, w, 0);
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits);
        bits &= ~(1 << b);
        fn(((w - WAITERS) << 5) + b);
      }
    }
  }
}

const SEQ = 0;
const SLEEPING = 1;

/** One per thread: every producer that feeds the thread rings it. Int32 pair [seq, sleeping]. */
export class Doorbell {
  private readonly cell: Int32Array;

  /**
   * The promise of the wait in progress. V8 holds an async waiter's promise weakly: with no
   * timeout and nothing else referring to it, a garbage collection drops the waiter, and the
   * loop awaiting it with it. Keeping it here keeps the wait alive. (Not `private`: written,
   * never read, so noUnusedLocals would call a private one unused.)
   */
  waiting: Promise<unknown> | null = null;

  constructor(sab: SharedArrayBuffer, index: number) {
    this.cell = new Int32Array(sab, index * 8, 2);
  }

  /** Wake the owner if it sleeps (after publishing something it will look for). */
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

  get sleeping(): boolean {
    return Atomics.load(this.cell, SLEEPING) === 1;
  }

  /**
   * Sleep until rung. `stillEmpty` is re-checked after announcing sleep, closing the race
   * with a producer that published just before. No timeout: nothing is allocated per sleep
   * but the wait itself.
   */
  async sleep(stillEmpty: () => boolean): Promise<void> {
    const seq = Atomics.load(this.cell, SEQ);
    Atomics.store(this.cell, SLEEPING, 1);
    try {
      if (!stillEmpty()) return;
      const r = Atomics.waitAsync(this.cell, SEQ, seq);
      if (r.async) {
        this.waiting = r.value;
        try {
          await r.value;
        } finally {
          this.waiting = null;
        }
      }
    } finally {
      Atomics.store(this.cell, SLEEPING, 0);
    }
  }
}
