// Direct delivery: the worker that reads a PUB writes the MSG frames for subscribers on other
// workers straight into their sockets, as nats-server's publishing goroutine writes its
// subscribers' sockets itself. Through the subscriber's inbox, a read of a few messages costs
// a wake-up of the subscriber's worker (an eventfd write, an epoll return and read, another
// event-loop turn: on a 2-core VM as much CPU as the whole one-worker path). Written
// directly, a stream across workers costs what it costs on one.
//
// Owner side (the subscriber's worker): a client connection on a plain TCP socket, without
// permissions or tracing, takes a slot in the shared table (threads/direct.ts) at its first
// subscription, and each subscription without a max gets a counter index (16 at most). Per
// subject, and per subject and queue group, the worker logs (interest.ts, op direct) the list
// of its subscriptions (slot, index, gen, sid) when all of them take direct deliveries, or
// that none do. A subscription that leaves, gets a max or stops qualifying bumps its
// connection's gen (stale lists fail the checks below) and its connection's lists are logged
// again. Every write of the owner's to such a socket holds the slot's lock and leaves BUSY set
// while anything of the owner's is unwritten or waits aside.
//
// Publisher side: a message (PUB, no headers, in a read of at most 16 KiB) to a thread whose
// every matching plain subscription is in such lists, and whose group members picked there
// are (the publisher picks one member of the list), goes to per-slot batches instead of the
// thread's inbox, if nothing of ours for that thread is staged or unhandled (Mesh.quiet) and
// each slot is open, not BUSY and of the listed gen. At the end of the event loop's pass over
// the sockets that were ready (Broker.endRead; when a batch is full; or before anything else
// is staged for that thread, so nothing overtakes them) each batch is written with one write(2)
// under the slot's lock after the same checks. Whatever is not written goes to the
// owner through its inbox as a direct record: all of it (the owner delivers each frame whose
// sid is still subscribed to that subject; a queue member's frame whose member left goes to
// another member there, as an inbox record would have), or, after a write cut short, the rest
// (SPILL: nobody writes the socket until the owner has written it). So per-publisher order
// holds (a message never overtakes one of the same publisher still on its way through the
// inbox), nothing is delivered to a subscription after its UNSUB was handled (the gen), and
// nothing is written to a socket that closed (the slot is closed under its lock before the
// socket is: our close, or Node's).

import { writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { plainFd } from '../conn/base.ts';
import type { ClientConn, Sub } from '../conn/client.ts';
import type { Mesh } from '../threads/mesh.ts';
import { MsgView } from '../protocol/msg-view.ts';
import { isGatewayRouted, subjectMatches } from '../protocol/subject.ts';
import type { InterestRecord } from '../threads/interest.ts';
import { RecordKind } from '../threads/record.ts';
import {
  BUSY,
  DIRECT_SLOTS,
  DIRECT_SUBS,
  DirectTable,
  OPEN,
  OwnedSlot,
  SPILL,
  decodeTargets,
  encodeTargets,
  type DirectTarget,
} from '../threads/direct.ts';

/** Subscriptions of one subject on one worker that may take direct deliveries (more: through the inbox). */
const LIST_MAX = 8;
/**
 * A batch's bytes (a full one is written at once), and the largest read whose messages go
 * directly: a larger one (a saturated stream) goes through the inbox, so both workers share
 * the work.
 */
const BATCH_BYTES = 16 * 1024;
/** Tries for a slot's lock before the batch goes through the inbox instead. */
const LOCK_TRIES = 64;
const RAW_HDR = 16;
const DIRECT_SPILL = 1;
/** Off for A/B runs: SKEIN_DIRECT=0. */
const ENABLED = process.env.SKEIN_DIRECT !== '0';

const EMPTY: Buffer = Buffer.alloc(0);
/** Batch buffers kept for reuse (a read writes to few subscribers; their buffers go back after it). */
const POOL_MAX = 64;

/** What a worker logs its direct subscriptions under: the subject, or `subject\0queue` for a queue group's members. */
function keyOf(sub: Sub): string {
  return sub.queue === null ? sub.subject : `${sub.subject}\u0000${sub.queue}`;
}

/** The frames for one slot in the read being handled. */
class Batch {
  readonly b: number;
  readonly t: number;
  readonly slot: number;
  gen = 0;
  cid = 0;
  /** From the pool while active. */
  buf: Buffer = EMPTY;
  /** Frames for queue group members: where each starts in `buf`, and its group. */
  readonly qOffs: number[] = [];
  readonly qNames: Buffer[] = [];
  n = 0;
  msgs = 0;
  bytes = 0;
  readonly perSub = new Int32Array(DIRECT_SUBS);
  active = false;

  constructor(b: number, t: number, slot: number) {
    this.b = b;
    this.t = t;
    this.slot = slot;
  }

  reset(): void {
    this.n = 0;
    this.msgs = 0;
    this.bytes = 0;
    this.perSub.fill(0);
    this.qOffs.length = 0;
    this.qNames.length = 0;
  }
}

export interface DirectHost {
  /** Output was queued for `conn` (it is written at the end of the batch). */
  markDirty(conn: ClientConn): void;
  /** Cached routes must be resolved again (a direct list changed). */
  routesChanged(): void;
  /** Messages written to other workers' subscribers, for this thread's totals. */
  countOut(msgs: number, bytes: number): void;
  /** Deliver `m` to one local member of queue group q[qs, qe) of its subject, if any. */
  toGroup(m: MsgView, q: Buffer, qs: number, qe: number): void;
  /** Bytes were appended to `c`'s output from `startRel` (past outStart) on: they wait aside if its messages do. */
  appended(c: ClientConn, startRel: number): void;
}

export class DirectDelivery {
  private readonly table: DirectTable;
  private readonly thread: number;
  private readonly workers: number;
  private readonly mesh: Mesh;
  private readonly host: DirectHost;

  // Owner side.
  /** Local subscriptions by subject (plain) or `subject\0queue` (a queue group's members). */
  private readonly byKey = new Map<string, Set<Sub>>();
  /** What was last logged per subject (absent: nothing, or none). */
  private readonly announced = new Map<string, string>();
  private readonly slotConns: (ClientConn | null)[] = new Array<ClientConn | null>(DIRECT_SLOTS).fill(null);
  private readonly freeSlots: number[] = [];

  // Publisher side.
  private readonly lists = new Map<string, DirectTarget[]>();
  private readonly batches = new Map<number, Batch>();
  private readonly active: Batch[] = [];
  private readonly heldThreads: number[] = [];
  private readonly pool: Buffer[] = [];
  /** The view of a frame given to another member (onRecord). */
  private readonly requeued = new MsgView();
  /** The read being handled is small enough (see read). */
  private allowed = true;

  static create(mesh: Mesh, thread: number, workers: number, sab: SharedArrayBuffer, host: DirectHost): DirectDelivery | null {
    if (!ENABLED || workers < 2 || thread >= workers) return null;
    return new DirectDelivery(mesh, thread, workers, sab, host);
  }

  private constructor(mesh: Mesh, thread: number, workers: number, sab: SharedArrayBuffer, host: DirectHost) {
    this.table = new DirectTable(sab);
    this.thread = thread;
    this.workers = workers;
    this.mesh = mesh;
    this.host = host;
    for (let s = DIRECT_SLOTS - 1; s >= 0; s--) this.freeSlots.push(s);
    mesh.onStage = (t) => this.release(t);
  }

  // ------------------------------------------------------------ owner side

  /** A local subscription was added. */
  subscribed(sub: Sub): void {
    const key = keyOf(sub);
    const set = this.byKey.get(key);
    if (set === undefined) this.byKey.set(key, new Set([sub]));
    else set.add(sub);
    const c = sub.conn!;
    const os = sub.max === 0 && sub.denyFilter === null ? this.slotOf(c) : null;
    if (os !== null) {
      const idx = os.freeIndex();
      if (idx >= 0) {
        sub.directIndex = idx;
        os.subs[idx] = sub;
      }
    }
    this.announce(key);
  }

  /** A local subscription was removed. */
  unsubscribed(sub: Sub): void {
    const key = keyOf(sub);
    const set = this.byKey.get(key);
    if (set !== undefined && set.delete(sub) && set.size === 0) this.byKey.delete(key);
    if (sub.directIndex >= 0) this.detach(sub);
    this.announce(key);
  }

  /** Before `sub.delivered` is looked at (an UNSUB with a max): count what was delivered directly, and stop. */
  settle(sub: Sub): void {
    if (sub.directIndex < 0) return;
    this.detach(sub);
    this.announce(keyOf(sub));
  }

  /** The connection no longer qualifies (permissions, tracing): no direct deliveries for it from now on. */
  disable(c: ClientConn): void {
    c.directOff = true;
    const os = c.direct;
    if (os === null) return;
    os.gen = this.table.bump(os.b);
    const keys: string[] = [];
    for (let i = 0; i < DIRECT_SUBS; i++) {
      const s = os.subs[i] as Sub | null;
      if (s === null) continue;
      s.delivered += this.table.takeSub(os.b, i);
      s.directIndex = -1;
      os.subs[i] = null;
      keys.push(keyOf(s));
    }
    for (const key of keys) this.announce(key);
  }

  /** The connection is closing: before its socket is. */
  closed(c: ClientConn): void {
    const os = c.direct;
    if (os === null) return;
    os.close();
    this.fold(c);
    for (let i = 0; i < DIRECT_SUBS; i++) {
      const s = os.subs[i] as Sub | null;
      if (s !== null) s.directIndex = -1;
    }
    c.direct = null;
    this.slotConns[os.slot] = null;
    this.freeSlots.push(os.slot);
  }

  /**
   * This thread is dying (an uncaught exception): close every slot now. Node closes the
   * sockets as the thread goes, without our close hook, before main hears of it; a
   * descriptor freed then may be reused for a new connection at once, which a publisher
   * elsewhere must not write into.
   */
  abandonAll(): void {
    for (const c of this.slotConns) c?.direct?.abandon();
  }

  /** Take what publishers delivered into the connection's and its subscriptions' counters. */
  fold(c: ClientConn): void {
    const os = c.direct;
    if (os === null) return;
    const t = this.table;
    const msgs = t.takeMsgs(os.b);
    if (msgs !== 0) {
      const bytes = t.takeBytes(os.b);
      // (The publishers' threads counted them in their own totals already.)
      c.outMsgs += msgs;
      c.outMsgsCounted += msgs;
      c.outBytes += bytes;
      c.outBytesCounted += bytes;
    }
    for (let i = 0; i < DIRECT_SUBS; i++) {
      const s = os.subs[i] as Sub | null;
      if (s !== null) s.delivered += t.takeSub(os.b, i);
    }
  }

  /** fold() for every connection with a slot (monitoring, the sweep). */
  foldAll(): void {
    for (const c of this.slotConns) if (c !== null) this.fold(c);
  }

  private eligible(c: ClientConn): boolean {
    if (c.directOff || c.perms !== null || c.tracing || c.closing) return false;
    return plainFd(c.socket) >= 0;
  }

  private slotOf(c: ClientConn): OwnedSlot | null {
    if (c.directOff) return null;
    if (c.direct !== null) return c.direct;
    if (!this.eligible(c)) return null;
    const slot = this.freeSlots.pop();
    if (slot === undefined) {
      c.directOff = true;
      return null;
    }
    const s = c.socket as Socket & { _handle: { fd: number; close: (cb?: () => void) => unknown } };
    const h = s._handle;
    const b = this.table.base(this.thread, slot);
    const os = new OwnedSlot(this.table, b, slot, this.table.open(b, h.fd));
    // Node closes the socket by itself too (a read error, the peer's FIN): the slot first.
    const close = h.close;
    h.close = function (this: unknown, cb?: () => void) {
      os.close();
      return close.call(this, cb);
    };
    c.direct = os;
    this.slotConns[slot] = c;
    return os;
  }

  /** `sub` stops taking direct deliveries: its connection's lists become stale and are logged again. */
  private detach(sub: Sub): void {
    const c = sub.conn!;
    const os = c.direct;
    const idx = sub.directIndex;
    sub.directIndex = -1;
    if (os === null) return;
    os.gen = this.table.bump(os.b);
    sub.delivered += this.table.takeSub(os.b, idx);
    os.subs[idx] = null;
    for (let i = 0; i < DIRECT_SUBS; i++) {
      const s = os.subs[i] as Sub | null;
      if (s !== null) this.announce(keyOf(s));
    }
  }

  /** Log who takes `key` (a subject, or `subject\0queue`) directly here, if that changed. */
  private announce(key: string): void {
    const list = this.byKey.get(key);
    let enc: string | null = null;
    if (list !== undefined && list.size <= LIST_MAX) {
      const entries: { slot: number; idx: number; gen: number; sid: string }[] = [];
      for (const s of list) {
        const os = s.conn!.direct;
        if (s.directIndex < 0 || os === null || os.closed) {
          entries.length = 0;
          break;
        }
        entries.push({ slot: os.slot, idx: s.directIndex, gen: os.gen, sid: s.sid });
      }
      if (entries.length > 0) enc = encodeTargets(entries);
      if (enc !== null && !this.mesh.interestFits(key.length, enc.length)) enc = null;
    }
    const prev = this.announced.get(key) ?? null;
    if (prev === enc) return;
    if (enc === null) this.announced.delete(key);
    else this.announced.set(key, enc);
    this.mesh.publishDirect(key, enc, list?.size ?? 0);
  }

  /** A direct record: deliver what a publisher could not write. */
  onRecord(d: Buffer, v: DataView, o: number, len: number): void {
    const flags = d[o + 1];
    const slot = v.getUint32(o + 8, true);
    const gen = v.getInt32(o + 12, true);
    let c = slot < DIRECT_SLOTS ? this.slotConns[slot] : null;
    const os = c?.direct ?? null;
    // Gone, or a record for the connection that had the slot before it.
    if (c === null || os === null || os.closed || c.closed || ((gen - os.openGen) | 0) < 0) c = null;
    const nq = v.getUint32(o + RAW_HDR, true);
    let q = o + RAW_HDR + 4;
    let p = q;
    for (let i = 0; i < nq; i++) p += 6 + v.getUint16(p + 4, true);
    const frames = p;
    const end = o + len;
    if ((flags & DIRECT_SPILL) !== 0) {
      if (c === null) return;
      // The rest of a cut-short write (its publisher counted it): it goes first, whole.
      const t = this.table;
      os!.lockForRest();
      t.setState(os!.b, t.state(os!.b) & ~SPILL);
      c.writeRest(Buffer.from(d.subarray(p, end)));
      os!.unlockAfterWrite(c.socket.writableLength > 0 || c.outputAside);
      this.host.markDirty(c); // what was queued meanwhile
      return;
    }
    // Frame by frame, `MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n`: its subscription
    // may have left since (or its sid now names another), or got a max.
    let qi = 0;
    while (p < end) {
      const cr = d.indexOf(13, p);
      if (cr < 0 || cr >= end) return;
      const subjEnd = d.indexOf(32, p + 4);
      const sidEnd = d.indexOf(32, subjEnd + 1);
      let k = cr;
      while (d[k - 1] !== 32) k--;
      const sizeStart = k;
      let size = 0;
      for (; k < cr; k++) size = size * 10 + d[k] - 48;
      const frameEnd = cr + 2 + size + 2;
      // The frame's queue group, if it was for a member of one.
      let qs = -1;
      let qe = -1;
      if (qi < nq && v.getUint32(q, true) === p - frames) {
        qs = q + 6;
        qe = qs + v.getUint16(q + 4, true);
        q = qe;
        qi++;
      }
      const subject = d.toString('latin1', p + 4, subjEnd);
      const sub = c === null ? undefined : c.subs.get(d.toString('latin1', subjEnd + 1, sidEnd));
      if (
        c !== null &&
        sub !== undefined &&
        !sub.removed &&
        (qs < 0 ? sub.queue === null : sub.queue === d.toString('latin1', qs, qe)) &&
        subjectMatches(sub.subject, subject)
      ) {
        const n = frameEnd - p;
        const out = c.reserve(n);
        const startRel = c.outPos - c.outStart;
        d.copy(out, c.outPos, p, frameEnd);
        c.outPos += n;
        c.outMsgs++;
        c.outBytes += size;
        this.host.appended(c, startRel);
        if (++sub.delivered === sub.max) c.removeSub(sub);
      } else if (qs >= 0) {
        // The member left: another of its group here takes it, as the publisher's worker
        // would have had it go through our inbox.
        const m = this.requeued;
        m.sb = d;
        m.ss = p + 4;
        m.se = subjEnd;
        m.rs = sizeStart - 1 > sidEnd ? sidEnd + 1 : -1;
        m.re = m.rs < 0 ? -1 : sizeStart - 1;
        m.pb = d;
        m.ps = cr + 2;
        m.pe = cr + 2 + size;
        m.hdr = -1;
        m.setTail(d, sidEnd, frameEnd);
        this.host.toGroup(m, d, qs, qe);
      }
      p = frameEnd;
    }
  }

  // -------------------------------------------------------- publisher side

  /** A direct record logged by thread `t` (see announce). */
  onDirect(t: number, rec: InterestRecord): void {
    const key = `${t}\u0000${rec.subject}`;
    if (rec.queue === null || t >= this.workers) this.lists.delete(key);
    else this.lists.set(key, decodeTargets(this.table, t, rec.queue));
    this.host.routesChanged();
  }

  /** Thread `t`'s interest was reset (it died): none of its lists hold. */
  dropThread(t: number): void {
    const prefix = `${t}\u0000`;
    for (const key of this.lists.keys()) if (key.startsWith(prefix)) this.lists.delete(key);
  }

  /**
   * For a route: per thread of `threads`, the direct targets of every subscription it has that
   * matches (`patterns[i]`: the subjects its matching interest is under), or null.
   */
  targetsFor(t: number, patterns: string[], queue: string | null = null): DirectTarget[] | null {
    if (t >= this.workers || patterns.length === 0) return null;
    let out: DirectTarget[] | null = null;
    for (const p of patterns) {
      const l = this.lists.get(queue === null ? `${t}\u0000${p}` : `${t}\u0000${p}\u0000${queue}`);
      if (l === undefined) return null;
      out = out === null ? l : out.concat(l);
    }
    return out;
  }

  /**
   * A read of `bytes` is about to be handled. Only a small one is written directly: a larger
   * one (a saturated stream) goes through the inbox, where the subscriber's worker shares the
   * work instead of waiting (measured: writing the first 16 KiB of each read directly cost a
   * saturated 16 B stream across two workers 8-10% more CPU per message).
   */
  read(bytes: number): void {
    this.allowed = bytes <= BATCH_BYTES;
  }

  /** Take `m` for thread `t`'s subscribers `list` directly; false: send it through the inbox. */
  send(from: ClientConn, t: number, list: DirectTarget[], m: MsgView): boolean {
    if (!this.begin(t, m)) return false;
    for (let k = 0; k < list.length; k++) if (!this.check(t, list[k], m)) return false;
    for (let k = 0; k < list.length; k++) this.add(from, t, list[k], m, null);
    this.commit(t);
    return true;
  }

  /**
   * May `m` go to thread `t` directly at all: a small read's plain PUB, nothing of ours on
   * its way to `t`. Then check() each target, add() each, and commit(t); or, at the first
   * false, send it all through the inbox.
   */
  begin(t: number, m: MsgView): boolean {
    if (!this.allowed || m.hdr >= 0 || m.ts < 0) return false;
    // A reply that gateways map is stripped by the receiving worker (Broker.onRecord).
    if (m.rs >= 0 && m.sb[m.rs] === 95 && isGatewayRouted(m.sb, m.rs, m.re)) return false;
    const mesh = this.mesh;
    return mesh.directHeld[t] !== 0 || (mesh.quiet(t) && mesh.isAlive(t));
  }

  /** May `e` take `m` now? (A batch that is full, or for another gen, is written first.) */
  check(t: number, e: DirectTarget, m: MsgView): boolean {
    if (!this.writable(e.b, e.gen)) return false;
    const need = 5 + (m.se - m.ss) + e.sid.length + (m.te - m.ts);
    if (need > BATCH_BYTES) return false;
    const bt = this.batches.get(e.b);
    if (bt !== undefined && bt.active && (bt.gen !== e.gen || bt.n + need > bt.buf.length)) {
      // What it holds goes first (batches live for a pass of the event loop, several reads);
      // then this message goes directly too unless that write left something to the owner.
      this.release(t);
      return this.begin(t, m) && this.writable(e.b, e.gen);
    }
    return true;
  }

  /** May slot `b` take a direct write for `gen`: open, not BUSY, not SPILL, and still of that gen? */
  private writable(b: number, gen: number): boolean {
    const tb = this.table;
    return (tb.state(b) & (OPEN | BUSY | SPILL)) === OPEN && tb.gen(b) === gen;
  }

  /** `m` for `e` (a queue group's member when `queue` names the group). */
  add(from: ClientConn, t: number, e: DirectTarget, m: MsgView, queue: Buffer | null): void {
    let bt = this.batches.get(e.b);
    if (bt === undefined) this.batches.set(e.b, (bt = new Batch(e.b, t, e.slot)));
    if (!bt.active) {
      bt.active = true;
      bt.gen = e.gen;
      bt.buf = this.pool.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
      this.active.push(bt);
    }
    const need = 5 + (m.se - m.ss) + e.sid.length + (m.te - m.ts);
    if (bt.n + need > bt.buf.length) {
      // (Checked one by one, two targets on one connection may overfill it.)
      const bigger = Buffer.allocUnsafe(2 * (bt.n + need));
      bt.buf.copy(bigger, 0, 0, bt.n);
      bt.buf = bigger;
    }
    bt.cid = from.cid;
    const buf = bt.buf;
    let o = bt.n;
    if (queue !== null) {
      bt.qOffs.push(o);
      bt.qNames.push(queue);
    }
    buf[o] = 77; // "MSG "
    buf[o + 1] = 83;
    buf[o + 2] = 71;
    buf[o + 3] = 32;
    o += 4;
    o += m.sb.copy(buf, o, m.ss, m.se);
    buf[o++] = 32;
    o += e.sid.copy(buf, o);
    o += m.tb.copy(buf, o, m.ts, m.te);
    bt.n = o;
    bt.msgs++;
    bt.bytes += m.pe - m.ps;
    bt.perSub[e.idx]++;
  }

  commit(t: number): void {
    const mesh = this.mesh;
    if (mesh.directHeld[t] === 0) {
      mesh.directHeld[t] = 1;
      this.heldThreads.push(t);
    }
  }

  /** Write thread `t`'s batches now (something else is about to be staged for it, or the read ends). */
  release(t: number): void {
    this.mesh.directHeld[t] = 0;
    const active = this.active;
    let keep = 0;
    for (let i = 0; i < active.length; i++) {
      const bt = active[i];
      if (bt.t === t) this.write(bt);
      else active[keep++] = bt;
    }
    active.length = keep;
  }

  /** The end of a read: write every batch. */
  flush(): void {
    const held = this.heldThreads;
    for (let i = 0; i < held.length; i++) if (this.mesh.directHeld[held[i]] !== 0) this.release(held[i]);
    held.length = 0;
  }

  get pending(): boolean {
    return this.heldThreads.length > 0;
  }

  private write(bt: Batch): void {
    bt.active = false;
    const tb = this.table;
    const b = bt.b;
    let wrote = 0;
    let locked = false;
    for (let k = 0; k < LOCK_TRIES && !(locked = tb.tryLock(b)); k++);
    if (locked) {
      if (this.writable(b, bt.gen)) {
        try {
          wrote = writeSync(tb.fd(b), bt.buf, 0, bt.n);
        } catch {
          wrote = 0; // EAGAIN (the socket is full), or it is failing: the owner finds out
        }
        if (wrote > 0) {
          if (wrote < bt.n) tb.setState(b, tb.state(b) | SPILL);
          tb.count(b, bt.msgs, bt.bytes, bt.perSub);
        }
      }
      tb.unlock(b);
    }
    if (wrote > 0) this.host.countOut(bt.msgs, bt.bytes);
    if (wrote < bt.n) this.stageRecord(bt, wrote);
    bt.reset();
    if (this.pool.length < POOL_MAX && bt.buf.length === BATCH_BYTES) this.pool.push(bt.buf);
    bt.buf = EMPTY;
  }

  /**
   * What a batch could not write goes to the owner through its inbox (from `from` on; from > 0:
   * the rest of a cut-short write). A whole batch lists its frames for queue members, so the
   * owner can give one whose member left to another: [u32 count] + per frame [u32 offset]
   * [u16 name length][name], before the frames.
   */
  private stageRecord(bt: Batch, from: number): void {
    const mesh = this.mesh;
    const bytes = bt.n - from;
    const nq = from > 0 ? 0 : bt.qOffs.length;
    let table = 4;
    for (let i = 0; i < nq; i++) table += 6 + bt.qNames[i].length;
    const o = mesh.reserve(bt.t, RAW_HDR + table + bytes);
    const d = mesh.dst;
    const v = mesh.dstView;
    d[o] = RecordKind.direct;
    d[o + 1] = from > 0 ? DIRECT_SPILL : 0;
    v.setUint16(o + 2, 0, true);
    v.setUint32(o + 4, bt.cid, true);
    v.setUint32(o + 8, bt.slot, true);
    v.setInt32(o + 12, bt.gen, true);
    let p = o + RAW_HDR;
    v.setUint32(p, nq, true);
    p += 4;
    for (let i = 0; i < nq; i++) {
      const name = bt.qNames[i];
      v.setUint32(p, bt.qOffs[i], true);
      v.setUint16(p + 4, name.length, true);
      p += 6 + name.copy(d, p + 6);
    }
    bt.buf.copy(d, p, from, bt.n);
    // (A backed-up inbox: the publisher's next message through it pauses it.)
    mesh.full = false;
  }
}
