// The client protocol parser: a byte-level state machine over one Buffer per read.
// Control lines are scanned in place; payloads are skipped by length and handed to the
// handler as (buffer, start, end) views, so a PUB costs no string and no copy unless it is
// split across reads. Split control lines are copied to a scratch buffer, split payloads to
// a buffer of exactly the announced size.
//
// Error classes follow nats-server 2.9.10's parser: an unknown operation (or a bad byte
// where a separator or the payload's trailing CRLF should be) is 'op' -> -ERR 'Unknown
// Protocol Operation'; argument-level errors are 'args' -> close with no -ERR.

import { SUBJECT_ENCODING } from './bytes.ts';
import { ArgList, CR, LF, SP, TAB, argsEnd, parseSize, snippet, upper } from './scan.ts';
import { MsgView } from './msg-view.ts';

/** `PUB ` and CR LF read as little-endian words (fastPubs compares them whole). */
const PUB_SP = 0x20425550;
const CRLF = 0x0a0d;

export const ParseError = {
  unknownOp: 'op',
  args: 'args',
  controlLine: 'ctl',
  maxPayload: 'payload',
  auth: 'auth',
  headers: 'headers',
} as const;
export type ParseErrorKind = (typeof ParseError)[keyof typeof ParseError];

export interface ProtocolHandler {
  /** Set once the connection is closing; the parser stops at the next operation. */
  readonly closing: boolean;
  /** Auth is required and no CONNECT has been processed yet. */
  readonly awaitingConnect: boolean;
  readonly headersEnabled: boolean;
  /** Whether onPubArgs has anything to check (the fast path skips the call otherwise). */
  readonly pedantic: boolean;
  readonly maxPayload: number;
  readonly maxControlLine: number;
  onConnect(json: string): void;
  /**
   * PUB / HPUB, as a view valid during the call: subject and reply in `m.sb`, payload (headers
   * included) in `m.pb`; `m.hdr` < 0 for PUB. `m.ts` >= 0 when `m.tb[ts, te)` is exactly the
   * canonical ` [reply ]size\r\n<payload>\r\n` (single spaces), the end of the MSG to deliver.
   */
  onPub(m: MsgView): void;
  /** Subject, queue and sid as byte strings (SUBJECT_ENCODING). */
  onSub(subject: string, queue: string | null, sid: string): void;
  onUnsub(sid: string, max: number): void;
  onPing(): void;
  onPong(): void;
  onClientErr(text: string): void;
  onProtocolError(kind: ParseErrorKind, detail: string): void;
  /** Pedantic check, called before the payload arrives (nats-server sends the -ERR at that point). */
  onPubArgs(sb: Buffer, ss: number, se: number): void;
  /**
   * Called before a PING or UNSUB is acted on: false means "not yet" (messages it must not
   * overtake are still on their way), and the parser keeps the input from that operation on
   * until resume().
   */
  barrier?(): boolean;
}

// Operation codes.
const OP_PUB = 1;
const OP_HPUB = 2;
const OP_SUB = 3;
const OP_UNSUB = 4;
const OP_PING = 5;
const OP_PONG = 6;
const OP_CONNECT = 7;
const OP_INFO = 8;
const OP_OK = 9;
const OP_ERR = 10;

const NEED_MORE = -1;
const BAD_OP = -2;

// Keyword bytes (upper case) and whether a space/tab must follow the keyword.
const KEYWORDS: { op: number; word: Uint8Array; needsSpace: boolean; hasArgs: boolean }[] = [
  { op: OP_PUB, word: Buffer.from('PUB'), needsSpace: true, hasArgs: true },
  { op: OP_HPUB, word: Buffer.from('HPUB'), needsSpace: true, hasArgs: true },
  { op: OP_SUB, word: Buffer.from('SUB'), needsSpace: true, hasArgs: true },
  { op: OP_UNSUB, word: Buffer.from('UNSUB'), needsSpace: true, hasArgs: true },
  { op: OP_PING, word: Buffer.from('PING'), needsSpace: false, hasArgs: false },
  { op: OP_PONG, word: Buffer.from('PONG'), needsSpace: false, hasArgs: false },
  { op: OP_CONNECT, word: Buffer.from('CONNECT'), needsSpace: false, hasArgs: true },
  { op: OP_INFO, word: Buffer.from('INFO'), needsSpace: false, hasArgs: true },
  { op: OP_OK, word: Buffer.from('+OK'), needsSpace: false, hasArgs: false },
  { op: OP_ERR, word: Buffer.from('-ERR'), needsSpace: true, hasArgs: true },
];
const KW_BY_OP: (typeof KEYWORDS)[number][] = [];
for (const k of KEYWORDS) KW_BY_OP[k.op] = k;

/** Which operation starts at `s`; NEED_MORE if the bytes up to `e` are a valid prefix only. */
function opAt(b: Buffer, s: number, e: number): number {
  if (s >= e) return NEED_MORE;
  const c0 = upper(b[s]);
  let op: number;
  switch (c0) {
    case 80: {
      // P
      if (s + 1 >= e) return NEED_MORE;
      const c1 = upper(b[s + 1]);
      if (c1 === 85) op = OP_PUB;
      else if (c1 === 73) op = OP_PING;
      else if (c1 === 79) op = OP_PONG;
      else return BAD_OP;
      break;
    }
    case 72:
      op = OP_HPUB;
      break; // H
    case 83:
      op = OP_SUB;
      break; // S
    case 85:
      op = OP_UNSUB;
      break; // U
    case 67:
      op = OP_CONNECT;
      break; // C
    case 73:
      op = OP_INFO;
      break; // I
    case 43:
      op = OP_OK;
      break; // +
    case 45:
      op = OP_ERR;
      break; // -
    default:
      return BAD_OP;
  }
  const kw = KW_BY_OP[op];
  const w = kw.word;
  for (let k = 1; k < w.length; k++) {
    if (s + k >= e) return NEED_MORE;
    if (upper(b[s + k]) !== w[k]) return BAD_OP;
  }
  if (kw.needsSpace) {
    const p = s + w.length;
    if (p >= e) return NEED_MORE;
    const c = b[p];
    if (c !== SP && c !== TAB) return BAD_OP;
  }
  return op;
}

const MAX_ARGS = 5;
/**
 * Argument positions: one list per thread, shared by every connection's parser, since a line's
 * arguments are used before the next line is split (parsing is synchronous and never
 * re-entered). Saves two typed arrays per connection.
 */
const ARGS = new ArgList(MAX_ARGS, false);
/** The view of the message being published: one per thread, shared as ARGS is. */
const VIEW = new MsgView();

export class Parser {
  private readonly h: ProtocolHandler;
  // A control line split across reads, kept until its '\n' arrives.
  private line: Buffer | null = null;
  private lineLen = 0;
  // A payload split across reads.
  private payload: Buffer | null = null;
  private payloadHave = 0;
  private pendSubject: Buffer | null = null; // subject + reply, copied out of the read buffer
  private pendSubjectEnd = 0;
  private pendReplyStart = -1;
  private pendReplyEnd = -1;
  private pendHdr = -1;
  private readonly args = ARGS;
  private readonly view = VIEW;
  // Input from a PING/UNSUB on, kept while the handler's barrier() says "not yet".
  private heldInput: Buffer | null = null;

  constructor(handler: ProtocolHandler) {
    this.h = handler;
  }

  /** Input is held at a PING/UNSUB until resume(). */
  get held(): boolean {
    return this.heldInput !== null;
  }

  /** Parse the held input (the barrier is asked again at its first operation). */
  resume(): void {
    const b = this.heldInput;
    if (b === null) return;
    this.heldInput = null;
    this.parse(b);
  }

  parse(buf: Buffer): void {
    if (this.heldInput !== null) {
      // A read that was already under way when the input was held: keep it behind.
      this.heldInput = Buffer.concat([this.heldInput, buf]);
      return;
    }
    let i = 0;
    const n = buf.length;
    if (this.payload !== null) {
      i = this.fillPayload(buf);
      if (i < 0) return;
    }
    if (this.line !== null) {
      i = this.continueLine(buf);
      if (i < 0) return;
    }
    const h = this.h;
    // Only a CONNECT (processLine) changes this while a read is parsed.
    let awaitingConnect = h.awaitingConnect;
    while (i < n) {
      if (h.closing) return;
      // Fast path: canonical PUB frames wholly inside this buffer, one after the other.
      if (buf[i] === 80 && !awaitingConnect) {
        i = this.fastPubs(buf, i, n);
        if (i >= n || h.closing) return;
      }
      // nats-server checks the first byte of every operation while auth is pending.
      if (awaitingConnect && upper(buf[i]) !== 67) return h.onProtocolError(ParseError.auth, '');
      const op = opAt(buf, i, n);
      if (op === BAD_OP) return h.onProtocolError(ParseError.unknownOp, snippet(buf, i));
      const nl = buf.indexOf(LF, i);
      if (nl < 0) {
        this.saveLine(buf, i, n);
        return;
      }
      const next = this.processLine(buf, i, nl, op, buf, nl + 1);
      if (next < 0) return;
      i = next;
      awaitingConnect = h.awaitingConnect;
    }
  }

  /**
   * Canonical PUB frames, `PUB subject [reply] size\r\n<payload>\r\n` with single spaces, as
   * many as follow each other wholly inside `b` from `i` (one call per run of them, not per
   * message). Returns the index of the first frame not taken: another operation, a frame cut
   * by the end of the read, or a PUB the general path must look at (and report any error in);
   * `n` when all were taken or the connection is closing.
   */
  private fastPubs(b: Buffer, i: number, n: number): number {
    const h = this.h;
    const m = this.view;
    // (CONNECT and config reloads change these, never while a run of PUBs is parsed.)
    const maxControlLine = h.maxControlLine;
    const maxPayload = h.maxPayload;
    const pedantic = h.pedantic;
    // The read's DataView, to scan tokens four bytes at a time (the tail is set per message).
    if (m.tb !== b) m.setTail(b, -1, -1);
    const v = m.tv;
    while (i + 4 < n && v.getUint32(i, true) === PUB_SP) {
      // Tokens are bytes above SP; any other byte before the CR (a TAB, a control byte) leaves
      // the frame to the general path, which knows every rule.
      const ss = i + 4;
      let j = tokenEnd(b, v, ss, n);
      if (j >= n || b[j] !== SP || j === ss) return i;
      const se = j;
      const t1 = ++j;
      j = tokenEnd(b, v, j, n);
      if (j >= n || j === t1) return i;
      const c = b[j];
      let rs = -1;
      let re = -1;
      let sizeStart = t1;
      if (c === SP) {
        rs = t1;
        re = j;
        sizeStart = ++j;
        j = tokenEnd(b, v, j, n);
        if (j >= n) return i;
      }
      if (j + 1 >= n || v.getUint16(j, true) !== CRLF || j - ss > maxControlLine) return i;
      const size = parseSize(b, sizeStart, j);
      if (size < 0 || size > maxPayload) return i;
      const p = j + 2;
      const end = p + size;
      if (end + 2 > n || v.getUint16(end, true) !== CRLF) return i;
      if (pedantic) {
        h.onPubArgs(b, ss, se);
        if (h.closing) return n;
      }
      // Subject, reply and payload all in `b`; the canonical tail follows the subject as sent.
      // (Pointers stored only when they change: each store costs a write barrier. Every
      // message of a read shares the buffer.)
      if (m.sb !== b) m.sb = b;
      m.ss = ss;
      m.se = se;
      m.rs = rs;
      m.re = re;
      if (m.pb !== b) m.pb = b;
      m.ps = p;
      m.pe = end;
      m.hdr = -1;
      m.ts = se;
      m.te = end + 2;
      h.onPub(m);
      i = end + 2;
      if (h.closing) return n;
    }
    return i;
  }

  /** True when nothing partial is buffered (used by tests). */
  get idle(): boolean {
    return this.line === null && this.payload === null;
  }

  private saveLine(buf: Buffer, s: number, e: number, check = true): void {
    const len = e - s;
    if (this.line === null || this.line.length < this.lineLen + len) {
      const grown = Buffer.allocUnsafe(Math.max(256, (this.lineLen + len) * 2));
      if (this.line !== null) this.line.copy(grown, 0, 0, this.lineLen);
      this.line = grown;
    }
    buf.copy(this.line, this.lineLen, s, e);
    this.lineLen += len;
    if (check) this.checkPartialLine();
  }

  /** A control line still waiting for its '\n': enforce the control-line limit early. */
  private checkPartialLine(): void {
    const line = this.line!;
    const op = opAt(line, 0, this.lineLen);
    if (op === NEED_MORE) return;
    if (op === BAD_OP) {
      this.line = null;
      this.h.onProtocolError(ParseError.unknownOp, snippet(line, 0));
      return;
    }
    const kw = KW_BY_OP[op];
    if (!kw.hasArgs) {
      // PING/PONG/+OK ignore everything up to '\n'; keep only the keyword.
      this.lineLen = Math.min(this.lineLen, kw.word.length + 1);
      return;
    }
    let s = kw.word.length;
    while (s < this.lineLen && (line[s] === SP || line[s] === TAB)) s++;
    let e = this.lineLen;
    if (e > s && line[e - 1] === CR) e--;
    if (e - s > this.h.maxControlLine || this.lineLen > this.h.maxControlLine + 1024) {
      this.line = null;
      this.h.onProtocolError(ParseError.controlLine, '');
    }
  }

  private continueLine(buf: Buffer): number {
    const nl = buf.indexOf(LF);
    if (nl < 0) {
      this.saveLine(buf, 0, buf.length);
      return -1;
    }
    this.saveLine(buf, 0, nl + 1, false);
    const line = this.line!;
    const len = this.lineLen;
    this.line = null;
    this.lineLen = 0;
    const op = opAt(line, 0, len);
    if (op < 0) {
      this.h.onProtocolError(ParseError.unknownOp, snippet(line, 0));
      return -1;
    }
    return this.processLine(line, 0, len - 1, op, buf, nl + 1);
  }

  /**
   * One complete control line `lb[s..nl)` ('\n' at nl). The payload, if any, starts at
   * `buf[p]`. Returns the index in `buf` after the frame, or -1 to stop (error, or the
   * payload is incomplete and has been saved).
   */
  private processLine(lb: Buffer, s: number, nl: number, op: number, buf: Buffer, p: number): number {
    const h = this.h;
    const kw = KW_BY_OP[op];
    let a = s + kw.word.length;
    if (!kw.hasArgs) {
      if (op === OP_PING) {
        if (h.barrier !== undefined && !h.barrier()) return this.hold(lb, s, buf, p);
        h.onPing();
      } else if (op === OP_PONG) h.onPong();
      return p;
    }
    while (a < nl && (lb[a] === SP || lb[a] === TAB)) a++;
    const e = argsEnd(lb, a, nl);
    if (e - a > h.maxControlLine) {
      h.onProtocolError(ParseError.controlLine, '');
      return -1;
    }
    switch (op) {
      case OP_PUB:
      case OP_HPUB:
        return this.processPub(lb, a, e, op === OP_HPUB, buf, p);
      case OP_SUB: {
        const argc = this.args.split(lb, a, e, true);
        if (argc !== 2 && argc !== 3) return this.argError(lb, a, e);
        const { starts, ends } = this.args;
        const subject = lb.toString(SUBJECT_ENCODING, starts[0], ends[0]);
        const queue = argc === 3 ? lb.toString(SUBJECT_ENCODING, starts[1], ends[1]) : null;
        const sid = lb.toString(SUBJECT_ENCODING, starts[argc - 1], ends[argc - 1]);
        h.onSub(subject, queue, sid);
        return p;
      }
      case OP_UNSUB: {
        if (h.barrier !== undefined && !h.barrier()) return this.hold(lb, s, buf, p);
        const argc = this.args.split(lb, a, e, true);
        if (argc !== 1 && argc !== 2) return this.argError(lb, a, e);
        const { starts, ends } = this.args;
        const sid = lb.toString(SUBJECT_ENCODING, starts[0], ends[0]);
        const max = argc === 2 ? parseSize(lb, starts[1], ends[1]) : 0;
        h.onUnsub(sid, max);
        return p;
      }
      case OP_CONNECT:
        h.onConnect(lb.toString('utf8', a, e));
        return p;
      case OP_INFO:
        return p; // a client's INFO is ignored
      case OP_ERR:
        h.onClientErr(lb.toString('utf8', a, e));
        return -1;
    }
    return p;
  }

  /** Keep the operation starting at lb[s] and everything after it (buf from p) for resume(). */
  private hold(lb: Buffer, s: number, buf: Buffer, p: number): number {
    this.heldInput = lb === buf ? Buffer.from(buf.subarray(s)) : Buffer.concat([lb.subarray(s, lb.indexOf(LF, s) + 1), buf.subarray(p)]);
    return -1;
  }

  private argError(lb: Buffer, a: number, e: number): number {
    this.h.onProtocolError(ParseError.args, lb.toString('utf8', a, Math.min(e, a + 64)));
    return -1;
  }

  private processPub(lb: Buffer, a: number, e: number, headers: boolean, buf: Buffer, p: number): number {
    const h = this.h;
    if (headers && !h.headersEnabled) {
      h.onProtocolError(ParseError.headers, '');
      return -1;
    }
    const argc = this.args.split(lb, a, e, false);
    const as = this.args.starts;
    const ae = this.args.ends;
    let rs = -1;
    let re = -1;
    let size: number;
    let hdr = -1;
    if (!headers) {
      if (argc !== 2 && argc !== 3) return this.argError(lb, a, e);
      if (argc === 3) {
        rs = as[1];
        re = ae[1];
      }
      size = parseSize(lb, as[argc - 1], ae[argc - 1]);
      if (size < 0) return this.argError(lb, a, e);
    } else {
      if (argc !== 3 && argc !== 4) return this.argError(lb, a, e);
      if (argc === 4) {
        rs = as[1];
        re = ae[1];
      }
      hdr = parseSize(lb, as[argc - 2], ae[argc - 2]);
      if (hdr < 0) return this.argError(lb, a, e);
      size = parseSize(lb, as[argc - 1], ae[argc - 1]);
      if (size < 0 || hdr > size) return this.argError(lb, a, e);
    }
    if (size > h.maxPayload) {
      h.onProtocolError(ParseError.maxPayload, String(size));
      return -1;
    }
    const ss = as[0];
    const se = ae[0];
    h.onPubArgs(lb, ss, se);
    if (h.closing) return -1;
    const end = p + size;
    if (end + 2 <= buf.length) {
      if (buf[end] !== CR || buf[end + 1] !== LF) {
        h.onProtocolError(ParseError.unknownOp, snippet(buf, end));
        return -1;
      }
      this.publish(lb, ss, se, rs, re, buf, p, end, hdr);
      return end + 2;
    }
    // Payload split across reads: keep subject/reply and what we have of the payload.
    const slen = se - ss;
    const rlen = rs >= 0 ? re - rs : 0;
    const sr = Buffer.allocUnsafe(slen + rlen);
    lb.copy(sr, 0, ss, se);
    if (rs >= 0) lb.copy(sr, slen, rs, re);
    this.pendSubject = sr;
    this.pendSubjectEnd = slen;
    this.pendReplyStart = rs >= 0 ? slen : -1;
    this.pendReplyEnd = rs >= 0 ? slen + rlen : -1;
    this.pendHdr = hdr;
    this.payload = Buffer.allocUnsafe(size + 2);
    const have = Math.min(buf.length - p, size + 2);
    buf.copy(this.payload, 0, p, p + have);
    this.payloadHave = have;
    return -1;
  }

  /** Continue a split payload; returns the index in `buf` after it, or -1 if still incomplete. */
  private fillPayload(buf: Buffer): number {
    const pl = this.payload!;
    const want = pl.length - this.payloadHave;
    const take = Math.min(want, buf.length);
    buf.copy(pl, this.payloadHave, 0, take);
    this.payloadHave += take;
    if (this.payloadHave < pl.length) return -1;
    const size = pl.length - 2;
    this.payload = null;
    if (pl[size] !== CR || pl[size + 1] !== LF) {
      this.h.onProtocolError(ParseError.unknownOp, snippet(pl, size));
      return -1;
    }
    const sr = this.pendSubject!;
    this.pendSubject = null;
    this.publish(sr, 0, this.pendSubjectEnd, this.pendReplyStart, this.pendReplyEnd, pl, 0, size, this.pendHdr);
    return take;
  }

  /** A PUB/HPUB whose parts are where they are (no canonical tail to hand on). */
  private publish(sb: Buffer, ss: number, se: number, rs: number, re: number, pb: Buffer, ps: number, pe: number, hdr: number): void {
    const m = this.view;
    if (m.sb !== sb) m.sb = sb;
    m.ss = ss;
    m.se = se;
    m.rs = rs;
    m.re = re;
    if (m.pb !== pb) m.pb = pb;
    m.ps = ps;
    m.pe = pe;
    m.hdr = hdr;
    m.ts = -1;
    this.h.onPub(m);
  }
}

/**
 * The index of the first byte at or below SP in b[i, n) (the end of a token), or n. Reads four
 * bytes at a time through `v` (a view of all of `b`): in a word w, a byte below 0x21 sets the
 * top bit of its lane in (w - 0x21212121) & ~w & 0x80808080; a borrow can flag lanes after the
 * first such byte but never one before it, so the lowest flag is exact (bytes of 0x80 and above,
 * UTF-8, are never flagged: ~w clears their lane).
 */
function tokenEnd(b: Buffer, v: DataView, i: number, n: number): number {
  for (; i + 4 <= n; i += 4) {
    const w = v.getUint32(i, true);
    const below = (w - 0x21212121) & ~w & 0x80808080;
    if (below !== 0) return i + ((31 - Math.clz32(below & -below)) >> 3);
  }
  while (i < n && b[i] > SP) i++;
  return i;
}
