// The one view of a message, whoever produced it: the client parser (PUB, HPUB), the
// server-to-server parser (RMSG, HMSG, LMSG) or a ring record from another thread
// (threads/record.ts readRecord). It names positions in the buffers the message already lives
// in, so routing and delivery copy bytes straight from there. Each reader keeps one instance
// and reuses it for every message (no allocation per message); a view is valid only during
// the call it is handed to.

import { SUBJECT_ENCODING, put, putDV, viewOf } from './bytes.ts';

const EMPTY = Buffer.alloc(0);
const EMPTY_VIEW = viewOf(EMPTY);

export class MsgView {
  /** Subject: sb[ss, se). The reply, account and queue names live in `sb` too. */
  sb: Buffer = EMPTY;
  ss = 0;
  se = 0;
  /** Reply: sb[rs, re); rs = -1 when there is none. */
  rs = -1;
  re = -1;
  /** Account of a routed message: sb[accountStart, accountEnd); -1 when it carries none. */
  accountStart = -1;
  accountEnd = -1;
  /**
   * The leaf origin cluster of a message that came from a leaf connection (route `LMSG <origin>
   * ...`, or the leaf's own `cluster`): ob[os, oe); os = -1 for any other message. A hub sends
   * such a message down no leaf connection of that cluster (client.go processMsgResults).
   */
  ob: Buffer = EMPTY;
  os = -1;
  oe = -1;
  /** Queue names of a routed message: [start, end) pairs in `sb`, `queueCount` of them. */
  readonly queues: number[] = [];
  queueCount = 0;
  /** Payload, header block included: pb[ps, pe). */
  pb: Buffer = EMPTY;
  ps = 0;
  pe = 0;
  /** Header bytes at the payload's start; -1 for a message without headers (PUB, RMSG). */
  hdr = -1;
  /**
   * The canonical MSG tail ` [reply ][hdr ]size\r\n<payload>\r\n`, the end of every delivery,
   * when the message already has it: tb[ts, te), with `tv` a DataView over `tb`. ts = -1 otherwise.
   */
  tb: Buffer = EMPTY;
  tv: DataView = EMPTY_VIEW;
  ts = -1;
  te = 0;

  // A ring record's own fields (threads/record.ts).
  /** RecordKind: a message, or a control record (a stall request). */
  kind = 0;
  flags = 0;
  /** The publishing connection (0 for a message read from a server peer). */
  cid = 0;
  /** Queue-group names after the subject, as [u32 length][bytes] each. */
  nGroups = 0;
  /** A stall record's milliseconds. */
  stallMs = 0;

  /** Payload bytes, headers included. */
  get size(): number {
    return this.pe - this.ps;
  }

  /** The canonical tail is tb[ts, te); its DataView is made once per buffer, not per message. */
  setTail(b: Buffer, ts: number, te: number): void {
    // (Pointers stored only when they change: each store costs a write barrier.)
    if (b !== this.tb) {
      this.tb = b;
      this.tv = viewOf(b);
    }
    this.ts = ts;
    this.te = te;
  }

  /** As setTail, for bytes that come with their DataView (inbox records). */
  setTailView(b: Buffer, v: DataView, ts: number, te: number): void {
    if (b !== this.tb) {
      this.tb = b;
      this.tv = v;
    }
    this.ts = ts;
    this.te = te;
  }

  /** The routed message is for the global account `$G`. */
  isGlobalAccount(): boolean {
    const b = this.sb;
    const s = this.accountStart;
    return this.accountEnd - s === 2 && b[s] === 36 && b[s + 1] === 71; // "$G"
  }

  account(): string {
    return this.sb.toString('latin1', this.accountStart, this.accountEnd);
  }

  /** The subject as a byte string (SUBJECT_ENCODING), for logs and slow paths. */
  subject(): string {
    return this.sb.toString(SUBJECT_ENCODING, this.ss, this.se);
  }

  /** The control-line fields moved by `delta` into `buf` (a split message's line was copied). */
  rebase(delta: number, buf: Buffer): void {
    const line = this.sb;
    this.sb = buf;
    if (this.accountStart >= 0) {
      this.accountStart += delta;
      this.accountEnd += delta;
    }
    this.ss += delta;
    this.se += delta;
    if (this.rs >= 0) {
      this.rs += delta;
      this.re += delta;
    }
    if (this.os >= 0 && this.ob === line) {
      this.ob = buf;
      this.os += delta;
      this.oe += delta;
    }
    for (let i = 0; i < this.queueCount * 2; i++) this.queues[i] += delta;
  }
}

/** Below this many bytes a copy goes word by word through DataViews, above it natively. */
const SHORT_COPY = 256;

/**
 * Append m's subject and its canonical tail at `o` of `out` (`ov` spans `out`): one copy where
 * the tail follows the subject (a plain ring record, an RMSG as read), else two. Returns the
 * new offset. The peer connections' writeTail.
 */
export function putSubjectTail(out: Buffer, ov: DataView, o: number, m: MsgView): number {
  if (m.ts === m.se && m.tb === m.sb) return m.te - m.ss > SHORT_COPY ? put(out, o, m.sb, m.ss, m.te) : putDV(ov, o, m.tv, m.ss, m.te);
  o = put(out, o, m.sb, m.ss, m.se);
  return m.te - m.ts > SHORT_COPY ? put(out, o, m.tb, m.ts, m.te) : putDV(ov, o, m.tv, m.ts, m.te);
}
