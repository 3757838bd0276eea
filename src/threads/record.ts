// The record a thread sends another thread for one message (or one control event). Client
// workers and the server-to-server threads both read and write it, so its layout, its one
// writer and its reader live here only.
//
//   [kind u8][flags u8][0 u16][cid u32][groups u32][subjLen u32][replyLen u32][hdrLen i32]
//   [payLen u32][tailLen u32] subject, group names ([u32 length][bytes] each), with
//   FLAG_ORIGIN the leaf origin cluster ([u32 length][bytes]), then the canonical MSG tail
//   ` [reply ][hdr ]size\r\n<payload>\r\n`, so a receiver delivers with two copies.
// Little-endian. Every length is 32 bits: a subject, a queue name or a group count of any size
// a client may legally send fits (issue 10 §2). hdrLen < 0: no headers (PUB). FLAG_PLAIN:
// deliver to plain subscribers; each group name: deliver to one member of that queue group.
// FLAG_ORIGIN: the message came from a leaf connection of that cluster (MsgView.os); only the
// route and leaf threads are sent it (bridge.ts), so a client worker's records never carry it.
// `cid` is the publishing connection (0 for a route): a consumer that finds a subscriber
// backed up asks the publisher's thread to stall that connection (RecordKind.stall).
//
// A run (RecordKind.run, between client workers only) is a plain message record without a
// reply followed by more messages of the same publisher to the same subject, staged in the
// same read. Each further message is a frame: either `PUB <subject><tail>` exactly as the
// client sent it (a canonical PUB; the subject is the record's), or a 0 byte and the tail;
// the tail is ` [hdr ]size\r\n<payload>\r\n`. A stream pays for the header, the subject and
// the receiver's route look-up once per read, not per message, and the publisher's PUB frames
// that follow each other in its read are copied once, in one piece, not one by one.

import type { MsgView } from '../protocol/msg-view.ts';
import { put, putDV, msgTailLength, putMsgTail } from '../protocol/bytes.ts';

export const REC_HDR = 32;
export const FLAG_PLAIN = 1;
export const FLAG_ORIGIN = 2;

export const RecordKind = {
  msg: 1,
  /** Control: stall connection `cid` of the receiving thread for `payLen` ms (fast-producer stall). */
  stall: 2,
  /** A msg record (plain, no groups, no reply) followed by more messages to its subject (see above). */
  run: 3,
  /**
   * MSG frames a publisher meant to write into a subscriber's socket itself and could not (all
   * or, with flag DIRECT_SPILL, the rest of them): broker/direct.ts. Its own layout:
   * [kind u8][flags u8][0 u16][cid u32][slot u32][gen i32][frames...].
   */
  direct: 4,
} as const;

/** `PUB ` (little-endian): a run's frame as the client sent it. */
const PUB_SP = 0x20425550;
/** A run takes messages whose tail is at most this long, up to RUN_MAX_BYTES in all. */
const RUN_TAIL_MAX = 2048;
const RUN_MAX_BYTES = 32 * 1024;

/** Where records are written: a thread's mesh endpoint (mesh.ts), which stages them per destination. */
export interface RecordSink {
  /** Space for one record body of `bytes` to thread `t`; returns its offset in `dst`. */
  reserve(t: number, bytes: number): number;
  /** The number of the record reserve() gave last (see extend). */
  readonly reserved: number;
  /**
   * `bytes` more for record number `serial`, if it is still the last one staged for `t` and
   * not committed yet: returns where they go in `dst` (and `dst` is that record's buffer), or -1.
   */
  extend(t: number, serial: number, bytes: number): number;
  /** How many bytes extend(t, serial, ...) could still take (-1: none, the record no longer grows); if any, `dst` is that record's buffer. */
  room(t: number, serial: number): number;
  readonly dst: Buffer;
  /** A DataView spanning `dst`. */
  readonly dstView: DataView;
  /**
   * A writer with frames kept aside, neither reserved nor copied yet (a range of its
   * publisher's read, see plain): the sink has it add them before it stages anything else or
   * commits.
   */
  pendingCopy: PendingCopy | null;
}

export interface PendingCopy {
  copyPending(): void;
}

/** How a copy is made: word-wise through DataViews below this size, natively above it. */
const SHORT_COPY = 256;

/**
 * The one writer of message records, for client workers (what their clients publish) and the
 * server-to-server threads (what their peers send). A record without queue groups is written
 * whole by msg(); one with groups by begin(), name() per group, end().
 */
export class RecordWriter implements PendingCopy {
  private readonly sink: RecordSink;

  /**
   * The run being staged (see plain): the record's number (which also names its thread: the
   * sink extends it only for that one) and offset, its subject's key, publisher, and bytes.
   */
  private runSerial = 0;
  private runAt = 0;
  private runKey: object | null = null;
  private runCid = -1;
  private runBytes = 0;
  private runMarked = false;

  /**
   * PUB frames of the publisher's read, src[copyFrom, copyTo), that belong at the end of the
   * run for thread `copyThread` and are neither reserved nor copied yet: copyPending does both
   * at once (the sink has us do it before it stages or commits anything else, while the read
   * buffer is still this read's). They fit in `copyRoom` bytes, what the run could take.
   */
  private copySrc: Uint8Array | null = null;
  private copyFrom = 0;
  private copyTo = 0;
  private copyThread = 0;
  private copyRoom = 0;

  constructor(sink: RecordSink) {
    this.sink = sink;
  }

  /** One message record for thread `t`, without queue groups; returns the body's offset in `dst`. */
  msg(t: number, m: MsgView, flags: number, cid: number): number {
    const sink = this.sink;
    const subjLen = m.se - m.ss;
    const tailLen = tailLength(m);
    const o = sink.reserve(t, REC_HDR + subjLen + tailLen);
    writeHeader(sink.dstView, o, flags, cid, 0, m, tailLen);
    if (m.ts === m.se && m.tb === m.sb) {
      // A PUB read in one piece: its subject and the MSG tail follow each other in the read
      // buffer, as in the record: one copy.
      if (subjLen + tailLen > SHORT_COPY) put(sink.dst, o + REC_HDR, m.sb, m.ss, m.te);
      else putDV(sink.dstView, o + REC_HDR, m.tv, m.ss, m.te);
      return o;
    }
    this.end(put(sink.dst, o + REC_HDR, m.sb, m.ss, m.se), m);
    return o;
  }

  /**
   * A plain message for client worker `t` (no queue group), from publisher `cid`; `key` stands
   * for its subject (the same object for the same subject bytes). Joins the run staged for the
   * same subject and publisher when there is one, else starts a record that may become one.
   */
  plain(t: number, m: MsgView, cid: number, key: object): void {
    const tailLen = tailLength(m);
    const runnable = m.rs < 0 && tailLen <= RUN_TAIL_MAX;
    if (runnable && key === this.runKey && cid === this.runCid) {
      // A canonical PUB whose tail follows its subject in the read: the frame as sent.
      const frame = m.ts === m.se && m.tb === m.sb && m.hdr < 0 && m.ss >= 4 && m.tv.getUint32(m.ss - 4, true) === PUB_SP;
      const bytes = frame ? m.te - m.ss + 4 : tailLen + 1;
      if (this.runBytes + bytes <= RUN_MAX_BYTES) {
        const from = m.ss - 4;
        if (frame && this.copySrc === m.sb && this.copyTo === from && t === this.copyThread && m.te - this.copyFrom <= this.copyRoom) {
          this.copyTo = m.te; // the next frame of the read, after the last: copied with it
          this.runBytes += bytes;
          return;
        }
        this.copyPending();
        const sink = this.sink;
        const room = sink.room(t, this.runSerial);
        if (room >= bytes) {
          this.runBytes += bytes;
          if (!this.runMarked) {
            sink.dstView.setUint32(this.runAt, RecordKind.run | (FLAG_PLAIN << 8), true);
            this.runMarked = true;
          }
          if (frame) {
            this.copySrc = m.sb;
            this.copyFrom = from;
            this.copyTo = m.te;
            this.copyThread = t;
            this.copyRoom = room;
            sink.pendingCopy = this;
            return;
          }
          const p = sink.extend(t, this.runSerial, bytes);
          sink.dst[p] = 0;
          this.end(p + 1, m);
          return;
        }
      }
    }
    const o = this.msg(t, m, FLAG_PLAIN, cid);
    if (!runnable) {
      this.runKey = null;
      return;
    }
    this.runSerial = this.sink.reserved;
    this.runAt = o;
    this.runKey = key;
    this.runCid = cid;
    this.runBytes = REC_HDR + tailLen;
    this.runMarked = false;
  }

  /** Reserve and copy the frames plain() kept aside (the sink calls this before it stages or commits anything else). */
  copyPending(): void {
    const src = this.copySrc;
    if (src === null) return;
    this.copySrc = null;
    const sink = this.sink;
    sink.pendingCopy = null;
    // (Room was checked and nothing was staged since: the run still takes them.)
    const p = sink.extend(this.copyThread, this.runSerial, this.copyTo - this.copyFrom);
    if (p < 0) throw new Error('a run lost the room its frames were kept aside for');
    put(sink.dst, p, src, this.copyFrom, this.copyTo);
  }

  /**
   * A message record for thread `t` with `nGroups` queue-group names of `nameBytes` bytes in
   * all: writes the header and the subject, and returns where the first name goes.
   */
  begin(t: number, m: MsgView, flags: number, cid: number, nGroups: number, nameBytes: number): number {
    const sink = this.sink;
    const subjLen = m.se - m.ss;
    const tailLen = tailLength(m);
    const o = sink.reserve(t, REC_HDR + subjLen + 4 * nGroups + nameBytes + tailLen);
    writeHeader(sink.dstView, o, flags, cid, nGroups, m, tailLen);
    return put(sink.dst, o + REC_HDR, m.sb, m.ss, m.se);
  }

  /** One queue-group name, b[s, e), at `p`; returns where the next goes. */
  name(p: number, b: Uint8Array, s: number, e: number): number {
    this.sink.dstView.setUint32(p, e - s, true);
    return put(this.sink.dst, p + 4, b, s, e);
  }

  /** The origin cluster b[s, e) at `p`, after the last name (FLAG_ORIGIN; counted in begin's nameBytes, plus 4); returns where the tail goes. */
  origin(p: number, b: Uint8Array, s: number, e: number): number {
    return this.name(p, b, s, e);
  }

  /** The canonical tail at `p`, after the last name: the record is complete. */
  end(p: number, m: MsgView): void {
    const sink = this.sink;
    if (m.ts < 0) putMsgTail(sink.dst, p, m.sb, m.rs, m.re, m.hdr, m.pb, m.ps, m.pe);
    else if (m.te - m.ts > SHORT_COPY) put(sink.dst, p, m.tb, m.ts, m.te);
    else putDV(sink.dstView, p, m.tv, m.ts, m.te);
  }
}

/** The length of the canonical tail the record carries. */
function tailLength(m: MsgView): number {
  return m.ts >= 0 ? m.te - m.ts : msgTailLength(m.rs >= 0 ? m.re - m.rs : 0, m.hdr, m.pe - m.ps);
}

/** Header of a message record; every field is checked to fit its 32 bits. */
function writeHeader(dst: DataView, o: number, flags: number, cid: number, nGroups: number, m: MsgView, tailLen: number): void {
  const subjLen = m.se - m.ss;
  const replyLen = m.rs >= 0 ? m.re - m.rs : 0;
  const payLen = m.pe - m.ps;
  // One check covers every field: the tail holds the payload (and the headers) and the reply.
  if (subjLen + tailLen + nGroups > 0xffffffff) {
    throw new RangeError(`record field out of range (subject ${subjLen}, reply ${replyLen}, groups ${nGroups}, payload ${payLen})`);
  }
  dst.setUint32(o, RecordKind.msg | (flags << 8), true);
  dst.setUint32(o + 4, cid, true);
  dst.setUint32(o + 8, nGroups, true);
  dst.setUint32(o + 12, subjLen, true);
  dst.setUint32(o + 16, replyLen, true);
  dst.setInt32(o + 20, m.hdr, true);
  dst.setUint32(o + 24, payLen, true);
  dst.setUint32(o + 28, tailLen, true);
}

/** A stall request for connection `cid` of the receiving thread. */
export const STALL_RECORD_BYTES = 12;
export function writeStallRecord(dst: DataView, o: number, cid: number, stallMs: number): void {
  dst.setUint32(o, RecordKind.stall, true);
  dst.setUint32(o + 4, cid, true);
  dst.setUint32(o + 8, stallMs, true);
}

/**
 * Decode the record at offset `o` of `d` (`v` spans `d` with the same offsets) into `m`: the
 * subject, reply, payload and canonical tail are positions in `d`, the group names follow the
 * subject. A control record fills only `kind`, `cid` and `stallMs`; a run is read as its
 * first message (the others follow its tail: `te`; readRunEntry reads each).
 */
export function readRecord(m: MsgView, d: Buffer, v: DataView, o: number): void {
  const k = v.getUint32(o, true);
  m.kind = k & 0xff;
  m.cid = v.getUint32(o + 4, true);
  if (m.kind !== RecordKind.msg && m.kind !== RecordKind.run) {
    m.stallMs = v.getUint32(o + 8, true);
    return;
  }
  m.flags = (k >>> 8) & 0xff;
  const nGroups = (m.nGroups = v.getUint32(o + 8, true));
  const subjLen = v.getUint32(o + 12, true);
  const replyLen = v.getUint32(o + 16, true);
  m.hdr = v.getInt32(o + 20, true);
  const payLen = v.getUint32(o + 24, true);
  const tailLen = v.getUint32(o + 28, true);
  // (Pointers stored only when they change: each store costs a write barrier.)
  if (m.sb !== d) m.sb = d;
  if (m.pb !== d) m.pb = d;
  m.ss = o + REC_HDR;
  m.se = m.ss + subjLen;
  let ts = m.se;
  for (let i = 0; i < nGroups; i++) ts += 4 + v.getUint32(ts, true);
  if ((m.flags & FLAG_ORIGIN) !== 0) {
    if (m.ob !== d) m.ob = d;
    m.os = ts + 4;
    ts = m.oe = m.os + v.getUint32(ts, true);
  } else {
    m.os = -1;
  }
  const te = ts + tailLen;
  m.setTailView(d, v, ts, te);
  m.rs = replyLen > 0 ? ts + 1 : -1;
  m.re = replyLen > 0 ? ts + 1 + replyLen : -1;
  m.pe = te - 2;
  m.ps = m.pe - payLen;
}

/**
 * The run entry at `p` of `d` (a record whose subject is `subjLen` bytes) into `m`'s tail,
 * headers and payload; returns where the next entry starts.
 */
export function readRunEntry(m: MsgView, d: Buffer, v: DataView, p: number, subjLen: number): number {
  const ts = d[p] === 0 ? p + 1 : p + 4 + subjLen;
  // ` [hdr ]size\r\n`, written by us: digits, one space or the CR.
  let j = ts + 1;
  let n = 0;
  let c = d[j];
  while (c >= 48) {
    n = n * 10 + c - 48;
    c = d[++j];
  }
  let hdr = -1;
  if (c === 32) {
    hdr = n;
    n = 0;
    c = d[++j];
    while (c >= 48) {
      n = n * 10 + c - 48;
      c = d[++j];
    }
  }
  const ps = j + 2;
  const te = ps + n + 2;
  m.setTailView(d, v, ts, te);
  m.hdr = hdr;
  m.ps = ps;
  m.pe = ps + n;
  return te;
}
