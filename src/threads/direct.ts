// The shared table behind direct delivery (broker/direct.ts): one slot per client connection
// that other workers may write MSG frames to, in shared memory, so a publishing worker can
// write a subscriber's socket itself instead of waking the subscriber's worker. Linear in
// the number of workers; pages of slots never used are never touched.
//
// A slot (Int32 words): [lock][state][gen][fd][out msgs][out bytes] .. [per-subscription
// message counts at SUB0 + index]. The lock is held for one write(2) at most: by the owner
// around each write of its own (it spins briefly, then sleeps on the word), by a publisher
// around each direct write (it tries a few times, then sends through the inbox).
// state: OPEN (fd is the connection's socket), BUSY (the owner has output the kernel has not
// taken yet, or messages waiting aside: a direct write would overtake them), SPILL (a
// publisher's write was cut short: the rest comes to the owner through its inbox, and until
// it is written nobody else writes). gen: bumped under the lock whenever a subscription of
// the connection stops taking direct deliveries or the connection closes; a publisher
// writes only for the gen it was told (its entries are stale otherwise). The counters are
// what publishers delivered; the owner takes them (exchange) into its own.
//
// Anyone may read the table; only the slot's owner opens, bumps and closes it (a thread
// dying of an uncaught exception closes its own first), and the main thread clears a dead
// worker's slots.

export const DIRECT_SLOTS = 1024;
/** Subscriptions of one connection that take direct deliveries. */
export const DIRECT_SUBS = 16;
const SLOT_WORDS = 32;
const LOCK = 0;
const STATE = 1;
const GEN = 2;
const FD = 3;
const MSGS = 4;
const BYTES = 5;
const SUB0 = 16;

export const OPEN = 1;
export const BUSY = 2;
export const SPILL = 4;

/** Bytes of shared memory for `workers` client workers' slots. */
export function directTableBytes(workers: number): number {
  return workers * DIRECT_SLOTS * SLOT_WORDS * 4;
}

/** Lock word: 0 free, LOCKED, or CONTENDED (held, and an owner may sleep on it). */
const LOCKED = 1;
const CONTENDED = 2;
const LOCK_SPINS = 200;
const LOCK_WAIT_MS = 5;

export class DirectTable {
  readonly w: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    this.w = new Int32Array(sab);
  }

  /** The first word of worker `thread`'s slot `slot`. */
  base(thread: number, slot: number): number {
    return (thread * DIRECT_SLOTS + slot) * SLOT_WORDS;
  }

  tryLock(b: number): boolean {
    return Atomics.compareExchange(this.w, b + LOCK, 0, LOCKED) === 0;
  }

  /**
   * The owner's lock: a publisher holds it for one write(2) at most, which on loopback takes
   * as long as the kernel's delivery to the reader (tens of microseconds). After a short spin
   * the owner sleeps on the word (a futex) and the holder wakes it: spinning for a holder the
   * OS took off its core would burn the core it needs.
   */
  lock(b: number): void {
    const w = this.w;
    const at = b + LOCK;
    let c = Atomics.compareExchange(w, at, 0, LOCKED);
    if (c === 0) return;
    for (let k = 0; k < LOCK_SPINS; k++) {
      if (Atomics.load(w, at) === 0 && (c = Atomics.compareExchange(w, at, 0, LOCKED)) === 0) return;
    }
    // Contended from here on: whoever unlocks wakes a sleeper (the timeout is only a backstop for
    // a missed wake-up). A holder never dies inside its write short of its thread being
    // terminated (shutdown, which ends the sleeper too): main clears only a dead thread's own slots.
    if (c !== CONTENDED) c = Atomics.exchange(w, at, CONTENDED);
    while (c !== 0) {
      // eslint-disable-next-line no-restricted-properties -- for one write(2) of the holder's, which it would otherwise spin through
      Atomics.wait(w, at, CONTENDED, LOCK_WAIT_MS);
      c = Atomics.exchange(w, at, CONTENDED);
    }
  }

  unlock(b: number): void {
    if (Atomics.exchange(this.w, b + LOCK, 0) === CONTENDED) Atomics.notify(this.w, b + LOCK, 1);
  }

  state(b: number): number {
    return Atomics.load(this.w, b + STATE);
  }

  setState(b: number, s: number): void {
    Atomics.store(this.w, b + STATE, s);
  }

  gen(b: number): number {
    return Atomics.load(this.w, b + GEN);
  }

  fd(b: number): number {
    return Atomics.load(this.w, b + FD);
  }

  /** Publisher, under the lock: `msgs` messages of `bytes` payload went out, `perSub[i]` of them for index i. */
  count(b: number, msgs: number, bytes: number, perSub: Int32Array): void {
    const w = this.w;
    Atomics.add(w, b + MSGS, msgs);
    Atomics.add(w, b + BYTES, bytes);
    for (let i = 0; i < DIRECT_SUBS; i++) if (perSub[i] !== 0) Atomics.add(w, b + SUB0 + i, perSub[i]);
  }

  takeMsgs(b: number): number {
    return Atomics.exchange(this.w, b + MSGS, 0);
  }

  takeBytes(b: number): number {
    return Atomics.exchange(this.w, b + BYTES, 0) >>> 0;
  }

  takeSub(b: number, i: number): number {
    return Atomics.exchange(this.w, b + SUB0 + i, 0);
  }

  /** Owner: the slot is the socket `fd`'s from now on; returns its gen. */
  open(b: number, fd: number): number {
    this.lock(b);
    const gen = Atomics.add(this.w, b + GEN, 1) + 1;
    Atomics.store(this.w, b + FD, fd);
    Atomics.store(this.w, b + STATE, OPEN);
    this.unlock(b);
    return gen;
  }

  /** Owner: entries published so far are stale; returns the new gen. */
  bump(b: number): number {
    this.lock(b);
    const gen = Atomics.add(this.w, b + GEN, 1) + 1;
    this.unlock(b);
    return gen;
  }

  /** Owner (or main for a dead worker): nobody writes this socket from elsewhere again. `held`: the caller holds the lock. */
  close(b: number, held = false): void {
    if (!held) this.lock(b);
    Atomics.store(this.w, b + STATE, 0);
    Atomics.add(this.w, b + GEN, 1);
    Atomics.store(this.w, b + FD, -1);
    if (!held) this.unlock(b);
  }

  /** Main, for a worker that died (it may have died holding a lock). */
  clearWorker(thread: number): void {
    for (let s = 0; s < DIRECT_SLOTS; s++) {
      const b = this.base(thread, s);
      if (Atomics.load(this.w, b + STATE) === 0 && Atomics.load(this.w, b + LOCK) === 0) continue;
      this.close(b, true);
      this.unlock(b);
    }
  }
}

/** One subscription that takes direct deliveries, as a publishing worker knows it. */
export interface DirectTarget {
  /** The slot's first word (DirectTable.base). */
  readonly b: number;
  readonly slot: number;
  /** Index of the subscription's counter in the slot. */
  readonly idx: number;
  readonly gen: number;
  readonly sid: Buffer;
}

/**
 * The subscriptions of a subject on one worker, for its interest log (latin1 characters):
 * per subscription [slot u16][idx u8][gen i32][sid length u16][sid].
 */
export function encodeTargets(list: { slot: number; idx: number; gen: number; sid: string }[]): string {
  let s = '';
  for (const e of list) {
    const g = e.gen >>> 0;
    s += String.fromCharCode(e.slot >>> 8, e.slot & 255, e.idx);
    s += String.fromCharCode(g >>> 24, (g >>> 16) & 255, (g >>> 8) & 255, g & 255);
    s += String.fromCharCode(e.sid.length >>> 8, e.sid.length & 255) + e.sid;
  }
  return s;
}

export function decodeTargets(table: DirectTable, thread: number, s: string): DirectTarget[] {
  const out: DirectTarget[] = [];
  let p = 0;
  while (p + 9 <= s.length) {
    const slot = (s.charCodeAt(p) << 8) | s.charCodeAt(p + 1);
    const idx = s.charCodeAt(p + 2);
    const gen = (s.charCodeAt(p + 3) << 24) | (s.charCodeAt(p + 4) << 16) | (s.charCodeAt(p + 5) << 8) | s.charCodeAt(p + 6) | 0;
    const n = (s.charCodeAt(p + 7) << 8) | s.charCodeAt(p + 8);
    const sid = Buffer.from(s.slice(p + 9, p + 9 + n), 'latin1');
    p += 9 + n;
    out.push({ b: table.base(thread, slot), slot, idx, gen, sid });
  }
  return out;
}

/** What the owner keeps of a subscription in its slot (a broker Sub). */
export interface DirectSub {
  readonly subject: string;
  readonly sid: string;
  directIndex: number;
  delivered: number;
}

/** A slot as its owner (the connection's worker) holds it. */
export class OwnedSlot {
  readonly table: DirectTable;
  readonly b: number;
  readonly slot: number;
  /** The gen the slot was opened with: records older than it were for a connection before this one. */
  readonly openGen: number;
  /** The gen now (entries announced with another are stale). */
  gen: number;
  /** The connection's subscriptions that take direct deliveries, by counter index. */
  readonly subs: (DirectSub | null)[] = new Array<DirectSub | null>(DIRECT_SUBS).fill(null);
  /** Closed (by us or when Node closed the socket): the slot no longer names it. */
  closed = false;
  /**
   * The owner holds the lock (around a write of its own). Node may close the socket from
   * inside a write that fails: the close then must not wait for the lock it holds.
   */
  holding = false;

  constructor(table: DirectTable, b: number, slot: number, gen: number) {
    this.table = table;
    this.b = b;
    this.slot = slot;
    this.openGen = gen;
    this.gen = gen;
  }

  /** A free counter index, or -1. */
  freeIndex(): number {
    for (let i = 0; i < DIRECT_SUBS; i++) if (this.subs[i] === null) return i;
    return -1;
  }

  /** Before a write of the owner's: false (and unlocked) while a publisher's cut-short write waits to be completed. */
  lockForWrite(): boolean {
    if (this.closed) return true;
    const t = this.table;
    t.lock(this.b);
    if ((t.state(this.b) & SPILL) !== 0) {
      t.unlock(this.b);
      return false;
    }
    this.holding = true;
    return true;
  }

  /** The lock for a write that completes a publisher's cut-short one (see lockForWrite). */
  lockForRest(): void {
    this.table.lock(this.b);
    this.holding = true;
  }

  /** Close the slot (the owner's close, or Node's): nobody writes the socket from elsewhere again. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.table.close(this.b, this.holding);
  }

  /** The thread is dying: close the slot, and let go of the lock if the owner held it. */
  abandon(): void {
    this.close();
    if (!this.holding) return;
    this.holding = false;
    this.table.unlock(this.b);
  }

  /** After it: whether output of the owner's is still unwritten. */
  unlockAfterWrite(pending: boolean): void {
    if (!this.holding) return;
    this.holding = false;
    if (!this.closed) this.setBusy(pending);
    this.table.unlock(this.b);
  }

  /** Outside a write: whether output of the owner's is still unwritten. */
  settle(pending: boolean): void {
    if (this.closed || this.holding) return;
    const t = this.table;
    const s = t.state(this.b);
    if (((s & BUSY) !== 0) === pending) return;
    t.lock(this.b);
    this.setBusy(pending);
    t.unlock(this.b);
  }

  private setBusy(pending: boolean): void {
    const t = this.table;
    const s = t.state(this.b);
    const n = pending ? s | BUSY : s & ~BUSY;
    if (n !== s) t.setState(this.b, n);
  }
}
