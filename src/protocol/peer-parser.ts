// The parser of every server-to-server connection (routes now; gateways and leafnodes are rows
// of the same table): a byte state machine over each read, one operation per line, payloads
// taken by length. An operation table says which keyword each connection kind accepts and how a
// message's arguments are laid out for that kind, the way nats-server's parser.go switches on
// the kind only where an operation differs (`case ROUTER, GATEWAY:`). Low-level scanning is
// shared with the client parser (scan.ts).
//
// Follows nats-server 2.9.10 (parser.go, route.go processRoutedMsgArgs, processRemoteSub):
// keywords are case-insensitive; RMSG has 3 or 4 arguments, or more with a `+`/`|` reply
// indicator in the third place; nats-server has no control-line limit on these connections and
// no payload limit but its own ceiling (we cap both so that a garbage stream cannot exhaust
// memory).

import { MsgView } from './msg-view.ts';
import { ConnKind, type ConnKindCode } from '../conn/base.ts';
import { ArgList, CR, LF, PEER_MAX_CONTROL_LINE, SP, TAB, isSpace, lower, parseSize, snippet } from './scan.ts';

/** The operations of the server-to-server protocols. */
export const PeerOp = {
  rsPlus: 1,
  rsMinus: 2,
  lsPlus: 3,
  lsMinus: 4,
  aPlus: 5,
  aMinus: 6,
  ping: 7,
  pong: 8,
  info: 9,
  connect: 10,
  ok: 11,
  err: 12,
  rmsg: 13,
  hmsg: 14,
  lmsg: 15,
} as const;
export type PeerOpCode = (typeof PeerOp)[keyof typeof PeerOp];

/** How a message operation's arguments are laid out for one connection kind. */
interface MsgLayout {
  /** nats-server's function name, which its error lines carry. */
  readonly where: string;
  /** The origin cluster comes first (LMSG on a route, which always has both sizes: route.go processRoutedOriginClusterMsgArgs). */
  readonly origin: boolean;
  /** An account precedes the subject (routes and gateways; leafnodes bind one account). */
  readonly account: boolean;
  /** Two sizes at the end: header bytes, then total bytes. */
  readonly headers: boolean;
}

const ROUTED: MsgLayout = { where: 'processRoutedMsgArgs', origin: false, account: true, headers: false };
const ROUTED_HEADERS: MsgLayout = { where: 'processRoutedHeaderMsgArgs', origin: false, account: true, headers: true };
const ROUTED_ORIGIN: MsgLayout = { where: 'processRoutedOriginClusterMsgArgs', origin: true, account: true, headers: true };
const LEAF: MsgLayout = { where: 'processLeafMsgArgs', origin: false, account: false, headers: false };
const LEAF_HEADERS: MsgLayout = { where: 'processLeafHeaderMsgArgs', origin: false, account: false, headers: true };

/** One row of the operation table: the keyword and, per kind that accepts it, its meaning. */
interface OpRow {
  readonly op: PeerOpCode;
  readonly word: Uint8Array;
  /** A kind missing here gets "Unknown Protocol Operation"; messages carry their layout. */
  readonly kinds: Partial<Record<ConnKindCode, true | MsgLayout>>;
}

const { route: ROUTE, gateway: GATEWAY, leaf: LEAFNODE } = ConnKind;

/**
 * Which kind accepts which operation, from nats-server's parser.go: `R...` (RS+, RS-, RMSG) on
 * any server-to-server kind, `L...` (LS+, LS-, LMSG) on routes and leafnodes, `A+`/`A-` on
 * any of them (only gateways act on them). Rows that share a first byte are tried in order:
 * the message rows come first, they are what a busy connection reads.
 */
const OP_TABLE: OpRow[] = [
  { op: PeerOp.rmsg, word: Buffer.from('RMSG'), kinds: { [ROUTE]: ROUTED, [GATEWAY]: ROUTED, [LEAFNODE]: LEAF } },
  { op: PeerOp.hmsg, word: Buffer.from('HMSG'), kinds: { [ROUTE]: ROUTED_HEADERS, [GATEWAY]: ROUTED_HEADERS, [LEAFNODE]: LEAF_HEADERS } },
  { op: PeerOp.lmsg, word: Buffer.from('LMSG'), kinds: { [ROUTE]: ROUTED_ORIGIN, [LEAFNODE]: LEAF } },
  { op: PeerOp.rsPlus, word: Buffer.from('RS+'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.rsMinus, word: Buffer.from('RS-'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.lsPlus, word: Buffer.from('LS+'), kinds: { [ROUTE]: true, [LEAFNODE]: true } },
  { op: PeerOp.lsMinus, word: Buffer.from('LS-'), kinds: { [ROUTE]: true, [LEAFNODE]: true } },
  { op: PeerOp.aPlus, word: Buffer.from('A+'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.aMinus, word: Buffer.from('A-'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.ping, word: Buffer.from('PING'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.pong, word: Buffer.from('PONG'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.info, word: Buffer.from('INFO'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.connect, word: Buffer.from('CONNECT'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.ok, word: Buffer.from('+OK'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
  { op: PeerOp.err, word: Buffer.from('-ERR'), kinds: { [ROUTE]: true, [GATEWAY]: true, [LEAFNODE]: true } },
];

/** Rows by the lower-cased first byte of their keyword. */
const BY_FIRST_BYTE: OpRow[][] = Array.from({ length: 256 }, () => []);
for (const row of OP_TABLE) BY_FIRST_BYTE[lower(row.word[0])].push(row);

const OP_NAMES = new Map<PeerOpCode, string>(OP_TABLE.map((r) => [r.op, Buffer.from(r.word).toString('latin1')]));

/** The keyword of an operation, for trace lines. */
export function peerOpName(op: PeerOpCode): string {
  return OP_NAMES.get(op)!;
}

/** The row whose keyword starts line b[s, e), followed by a space, a tab or the line's end. */
function rowAt(b: Buffer, s: number, e: number): OpRow | null {
  const rows = BY_FIRST_BYTE[lower(b[s])];
  next: for (let r = 0; r < rows.length; r++) {
    const w = rows[r].word;
    const end = s + w.length;
    if (end > e || (end < e && !isSpace(b[end]))) continue;
    for (let k = 1; k < w.length; k++) if (lower(b[s + k]) !== lower(w[k])) continue next;
    return rows[r];
  }
  return null;
}

/** What the parser reports to the connection that owns it. */
export interface PeerParserHandler {
  readonly closing: boolean;
  /** A non-message operation; its arguments are `line[as, ae)` (may be empty). */
  onControl(op: PeerOpCode, line: Buffer, as: number, ae: number): void;
  /** A message (RMSG, HMSG, LMSG): its view is valid only during the call. */
  onMsg(m: MsgView): void;
  /** 'op': unknown operation (-ERR 'Unknown Protocol Operation'); 'args': bad arguments (close). */
  onParseError(kind: 'op' | 'args', detail: string): void;
}

const [UPPER_R, UPPER_H, UPPER_L, UPPER_M, UPPER_S, UPPER_G] = Buffer.from('RHLMSG');

const ST_LINE = 0;
const ST_PAYLOAD = 1;
/** Largest message we accept; nats-server's hard ceiling for max_payload is 64 MiB. */
export const PEER_MAX_MESSAGE = 64 * 1024 * 1024;

/** The server-to-server protocol parser for one connection of kind `kind`. */
export class PeerParser {
  private readonly h: PeerParserHandler;
  private readonly kind: ConnKindCode;
  private state = ST_LINE;
  private lineBuf: Buffer = Buffer.allocUnsafe(512);
  private lineLen = 0;
  private msgBuf: Buffer = Buffer.alloc(0);
  private msgHave = 0;
  private readonly msg = new MsgView();
  /** The announced payload size of the message being parsed. */
  private size = 0;
  /** Argument positions of the control line being parsed (many queue names: it grows). */
  private readonly args = new ArgList(32, true);
  /** Field positions of a message line on the fast path (fastMsgArgs): at most 5 [start, end) pairs. */
  private readonly fields = new Int32Array(10);

  /** This kind's layouts of RMSG, HMSG and LMSG for fastFrame (null: not on the fast path). */
  private readonly rmsgLayout: MsgLayout | null;
  private readonly hmsgLayout: MsgLayout | null;
  private readonly lmsgLayout: MsgLayout | null;

  constructor(handler: PeerParserHandler, kind: ConnKindCode) {
    this.h = handler;
    this.kind = kind;
    const fastLayout = (op: PeerOpCode): MsgLayout | null => {
      const meaning = OP_TABLE.find((r) => r.op === op)!.kinds[kind];
      return typeof meaning === 'object' && !meaning.origin ? meaning : null;
    };
    this.rmsgLayout = fastLayout(PeerOp.rmsg);
    this.hmsgLayout = fastLayout(PeerOp.hmsg);
    this.lmsgLayout = fastLayout(PeerOp.lmsg);
  }

  parse(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n && !this.h.closing) {
      if (this.state === ST_PAYLOAD) {
        const need = this.msgBuf.length - this.msgHave;
        const take = Math.min(need, n - i);
        chunk.copy(this.msgBuf, this.msgHave, i, i + take);
        this.msgHave += take;
        i += take;
        if (this.msgHave < this.msgBuf.length) return;
        this.state = ST_LINE;
        const m = this.msg;
        const buf = this.msgBuf;
        this.msgBuf = Buffer.alloc(0);
        if (buf[this.size] !== CR || buf[this.size + 1] !== LF) {
          this.lineLen = 0;
          this.h.onParseError('op', 'missing CRLF after routed message payload');
          return;
        }
        m.pb = buf;
        m.ps = 0;
        m.pe = this.size;
        this.h.onMsg(m);
        this.lineLen = 0;
        continue;
      }
      if (this.lineLen === 0) {
        const next = this.fastFrame(chunk, i, n);
        if (next > 0) {
          i = next;
          continue;
        }
      }
      const nl = chunk.indexOf(LF, i);
      if (nl < 0) {
        this.appendLine(chunk, i, n);
        if (this.lineLen > PEER_MAX_CONTROL_LINE) this.h.onParseError('args', `control line longer than ${PEER_MAX_CONTROL_LINE} bytes`);
        return;
      }
      let line: Buffer;
      let ls: number;
      let le: number;
      if (this.lineLen > 0) {
        this.appendLine(chunk, i, nl + 1);
        line = this.lineBuf;
        ls = 0;
        le = this.lineLen - 1;
      } else {
        line = chunk;
        ls = i;
        le = nl;
      }
      if (le > ls && line[le - 1] === CR) le--;
      i = nl + 1;
      if (ls === le) {
        this.lineLen = 0; // a bare CRLF is tolerated
        continue;
      }
      const row = rowAt(line, ls, le);
      const meaning = row?.kinds[this.kind];
      if (row === null || meaning === undefined || (meaning !== true && le === ls + row.word.length)) {
        this.lineLen = 0;
        this.h.onParseError('op', snippet(line, ls, le));
        return;
      }
      let as = ls + row.word.length;
      if (meaning === true) {
        while (as < le && isSpace(line[as])) as++;
        this.h.onControl(row.op, line, as, le);
        this.lineLen = 0;
        continue;
      }
      const fast = this.fastMsgArgs(meaning, line, as, le);
      if (!fast && !this.msgArgs(meaning, line, as, le)) {
        this.lineLen = 0;
        return;
      }
      const m = this.msg;
      const size = this.size;
      const total = size + 2;
      if (n - i >= total) {
        if (chunk[i + size] !== CR || chunk[i + size + 1] !== LF) {
          this.lineLen = 0;
          this.h.onParseError('op', 'missing CRLF after routed message payload');
          return;
        }
        // (Pointers stored only when they change: each store costs a write barrier.)
        if (m.pb !== chunk) m.pb = chunk;
        m.ps = i;
        m.pe = i + size;
        // Single spaces, no queue names, CRLF, all in this read: from the end of the subject on,
        // the bytes are the canonical tail ` [reply ][hdr ]size\r\n<payload>\r\n` that records and
        // deliveries carry, so the message crosses to a worker with one copy.
        if (fast && line === chunk && le + 1 === nl) m.setTail(chunk, m.se, i + total);
        this.h.onMsg(m);
        i += total;
        this.lineLen = 0;
        continue;
      }
      // The payload continues in a later read: keep the control line (it may live in
      // `chunk`, which the caller reuses) and collect the payload at its exact size.
      if (line === chunk) {
        this.lineLen = 0;
        this.appendLine(chunk, ls, le);
        m.rebase(-ls, this.lineBuf);
      }
      this.msgBuf = Buffer.allocUnsafe(total);
      this.msgHave = n - i;
      chunk.copy(this.msgBuf, 0, i, n);
      this.state = ST_PAYLOAD;
      return;
    }
  }

  private appendLine(src: Buffer, s: number, e: number): void {
    const len = e - s;
    if (this.lineLen + len > this.lineBuf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.lineBuf.length * 2, this.lineLen + len));
      this.lineBuf.copy(grown, 0, 0, this.lineLen);
      this.lineBuf = grown;
    }
    src.copy(this.lineBuf, this.lineLen, s, e);
    this.lineLen += len;
  }

  /**
   * A message whose keyword is upper case and whose line and payload are wholly in this read:
   * parsed in one pass over the line, without the native line search and the keyword table (a
   * busy peer sends little else). Returns the index after it, or 0 to let the general path
   * take it (and report any error in it).
   */
  private fastFrame(b: Buffer, s: number, n: number): number {
    const c = b[s];
    const layout = c === UPPER_R ? this.rmsgLayout : c === UPPER_H ? this.hmsgLayout : c === UPPER_L ? this.lmsgLayout : null;
    if (layout === null || s + 5 >= n || b[s + 1] !== UPPER_M || b[s + 2] !== UPPER_S || b[s + 3] !== UPPER_G) return 0;
    let j = s + 4;
    for (; j < n; j++) {
      const x = b[j];
      if (x === CR) break;
      if (x === LF) return 0;
    }
    if (j + 1 >= n || b[j + 1] !== LF || !this.fastMsgArgs(layout, b, s + 4, j)) return 0;
    const p = j + 2;
    const size = this.size;
    const end = p + size;
    if (end + 2 > n || b[end] !== CR || b[end + 1] !== LF) return 0;
    const m = this.msg;
    // (Pointers stored only when they change: each store costs a write barrier.)
    if (m.pb !== b) m.pb = b;
    m.ps = p;
    m.pe = end;
    m.setTail(b, m.se, end + 2);
    this.h.onMsg(m);
    return end + 2;
  }

  /**
   * The common message line, `[account ]subject[ reply][ hdr] size` after one space, single
   * spaces between fields and no queue names, scanned once without the general split; false
   * (nothing decided) for anything else, which msgArgs then parses and reports.
   */
  private fastMsgArgs(layout: MsgLayout, b: Buffer, s: number, e: number): boolean {
    if (layout.origin || b[s] !== SP) return false;
    const f = this.fields;
    let n = 0;
    let start = s + 1;
    for (let i = start; i < e; i++) {
      const c = b[i];
      if (c === SP) {
        if (i === start || n === 8) return false;
        f[n++] = start;
        f[n++] = i;
        start = i + 1;
      } else if (c === TAB) {
        return false;
      }
    }
    if (start === e) return false;
    f[n++] = start;
    f[n++] = e;
    const fields = n >> 1;
    const fixed = (layout.account ? 1 : 0) + (layout.headers ? 3 : 2);
    if (fields !== fixed && fields !== fixed + 1) return false;
    const size = parseSize(b, f[n - 2], f[n - 1]);
    if (size < 0 || size > PEER_MAX_MESSAGE) return false;
    let hdr = -1;
    if (layout.headers) {
      hdr = parseSize(b, f[n - 4], f[n - 3]);
      if (hdr < 0 || hdr > size) return false;
    }
    const m = this.msg;
    if (m.sb !== b) m.sb = b;
    let k = 0;
    if (layout.account) {
      m.accountStart = f[0];
      m.accountEnd = f[1];
      k = 2;
    } else {
      m.accountStart = -1;
      m.accountEnd = -1;
    }
    m.ss = f[k];
    m.se = f[k + 1];
    if (fields > fixed) {
      m.rs = f[k + 2];
      m.re = f[k + 3];
    } else {
      m.rs = -1;
      m.re = -1;
    }
    m.ts = -1;
    m.os = -1;
    m.queueCount = 0;
    if (m.queues.length !== 0) m.queues.length = 0;
    m.hdr = hdr;
    this.size = size;
    return true;
  }

  /** Report a bad message argument list the way nats-server words it. */
  private msgArgsError(layout: MsgLayout, what: string, b: Buffer, s: number, e: number): false {
    this.h.onParseError('args', `${layout.where} ${what}: '${b.toString('utf8', s, e)}'`);
    return false;
  }

  /** The arguments of a message operation, b[s, e) (s is right after the keyword). */
  private msgArgs(layout: MsgLayout, b: Buffer, s: number, e: number): boolean {
    const n = this.args.split(b, s, e, false);
    const { starts, ends } = this.args;
    const m = this.msg;
    if (m.sb !== b) m.sb = b;
    m.accountStart = -1;
    m.accountEnd = -1;
    m.rs = -1;
    m.re = -1;
    m.ts = -1;
    m.os = -1;
    m.queueCount = 0;
    if (m.queues.length !== 0) m.queues.length = 0;
    // LMSG on a route carries the origin cluster first (set once the line is known good).
    let k = layout.origin ? 1 : 0;
    const sizes = layout.headers ? 2 : 1; // trailing size fields
    const minArgs = k + (layout.account ? 1 : 0) + 1 + sizes;
    while (s < e && isSpace(b[s])) s++;
    if (n < minArgs) return this.msgArgsError(layout, 'Parse Error', b, s, e);
    if (layout.account) {
      m.accountStart = starts[k];
      m.accountEnd = ends[k];
      k++;
    }
    m.ss = starts[k];
    m.se = ends[k];
    k++;
    const mid = n - minArgs; // fields between the subject and the sizes
    if (mid === 1) {
      m.rs = starts[k];
      m.re = ends[k];
    } else if (mid > 1) {
      const is = starts[k];
      const ie = ends[k];
      const indicator = ie - is === 1 ? b[is] : 0;
      let q = k + 1;
      if (indicator === 43) {
        // '+': reply, then queues
        m.rs = starts[q];
        m.re = ends[q];
        q++;
      } else if (indicator !== 124) {
        // '|': queues only
        return this.msgArgsError(layout, 'Bad or Missing Reply Indicator', b, is, ie);
      }
      for (; q < n - sizes; q++) {
        m.queues.push(starts[q], ends[q]);
        m.queueCount++;
      }
    }
    const size = (this.size = parseSize(b, starts[n - 1], ends[n - 1]));
    if (size < 0) return this.msgArgsError(layout, 'Bad or Missing Size', b, s, e);
    if (layout.headers) {
      m.hdr = parseSize(b, starts[n - 2], ends[n - 2]);
      if (m.hdr < 0) return this.msgArgsError(layout, 'Bad or Missing Header Size', b, s, e);
      if (m.hdr > size) return this.msgArgsError(layout, 'Header Size larger then TotalSize', b, s, e);
    } else {
      m.hdr = -1;
    }
    if (size > PEER_MAX_MESSAGE) return this.msgArgsError(layout, `message of ${size} bytes exceeds ${PEER_MAX_MESSAGE}`, b, s, e);
    if (layout.origin) {
      // An origin LMSG always has a header size, 0 without headers: a message without any
      // (client.go msgHeader: headers only when hdr > 0).
      if (m.hdr === 0) m.hdr = -1;
      if (m.ob !== b) m.ob = b;
      m.os = starts[0];
      m.oe = ends[0];
    }
    return true;
  }
}
