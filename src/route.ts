// One route connection: the route protocol's byte parser, the connection's output buffer,
// its timers (auth timeout, pings) and the wire formats it writes (INFO, CONNECT, RS+/RS-,
// RMSG/HMSG). What a route *means* (registration, interest, forwarding) is the cluster's
// job (cluster.ts); this file turns bytes into calls on a RouteHost and back.
//
// Runs on the route thread only.
//
// Parsing follows nats-server 2.9.10 (parser.go, route.go processRoutedMsgArgs and
// processRemoteSub): keywords are case-insensitive; RMSG has 3 or 4 arguments, or more with
// a `+`/`|` reply indicator in the third place; there is no control-line or payload limit
// on routes in nats-server (we cap both so that a garbage stream cannot exhaust memory).

import type { Socket } from 'node:net';
import type { Options, TlsOptions } from './options.ts';
import { log, isTrace } from './log.ts';
import { put, sizesLength, putSizes, SUBJECT_ENCODING } from './bytes.ts';
import { Conn, ConnKind, CloseReason, type CloseReasonText } from './conn/base.ts';

/** Operations on a route other than routed messages. */
export const RouteOp = {
  rsPlus: 1,
  rsMinus: 2,
  lsPlus: 3,
  lsMinus: 4,
  ping: 5,
  pong: 6,
  info: 7,
  connect: 8,
  ok: 9,
  err: 10,
} as const;
export type RouteOpCode = (typeof RouteOp)[keyof typeof RouteOp];

const MSG_RMSG = 1;
const MSG_HMSG = 2;
const MSG_LMSG = 3;

/**
 * A routed message as parsed, by position: control-line fields live in `buf`, the payload
 * (header block included) in `pbuf[ps, pe)`. Valid only during the onMsg call.
 */
export class RoutedMsg {
  buf: Buffer = Buffer.alloc(0);
  accS = 0;
  accE = 0;
  subjS = 0;
  subjE = 0;
  /** -1 when there is no reply. */
  replyS = -1;
  replyE = -1;
  /** Queue names: [start, end) pairs in `buf`. */
  queues: number[] = [];
  queueCount = 0;
  /** -1 for RMSG (no header block). */
  hdrLen = -1;
  size = 0;
  pbuf: Buffer = Buffer.alloc(0);
  ps = 0;
  pe = 0;

  isGlobalAccount(): boolean {
    const b = this.buf;
    return this.accE - this.accS === 2 && b[this.accS] === 36 && b[this.accS + 1] === 71; // "$G"
  }

  subject(): string {
    return this.buf.toString(SUBJECT_ENCODING, this.subjS, this.subjE);
  }

  rebase(delta: number, buf: Buffer): void {
    this.buf = buf;
    this.accS += delta;
    this.accE += delta;
    this.subjS += delta;
    this.subjE += delta;
    if (this.replyS >= 0) {
      this.replyS += delta;
      this.replyE += delta;
    }
    for (let i = 0; i < this.queueCount * 2; i++) this.queues[i] += delta;
  }
}

export interface RouteParserHandler {
  readonly closing: boolean;
  /** A non-message operation; its arguments are `line[as, ae)` (may be empty). */
  onControl(op: RouteOpCode, line: Buffer, as: number, ae: number): void;
  onMsg(m: RoutedMsg): void;
  /** 'op': unknown operation (-ERR 'Unknown Protocol Operation'); 'args': bad arguments (close). */
  onParseError(kind: 'op' | 'args', detail: string): void;
}

const ST_LINE = 0;
const ST_PAYLOAD = 1;
const SP = 32;
const TAB = 9;
const CR = 13;
const LF = 10;
/** Longest control line we buffer; nats-server has no limit on routes. */
export const ROUTE_MAX_CONTROL_LINE = 1024 * 1024;
/** Largest routed message we accept; nats-server's hard ceiling for max_payload is 64 MiB. */
export const ROUTE_MAX_MESSAGE = 64 * 1024 * 1024;

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

function isSpace(c: number): boolean {
  return c === SP || c === TAB;
}

/** Parses a non-negative decimal; -1 if empty, not all digits, or too long. */
function parseSize(b: Buffer, s: number, e: number): number {
  if (s >= e || e - s > 10) return -1;
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = b[i];
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n;
}

/** The route protocol parser: a byte state machine over each read chunk. */
export class RouteParser {
  private readonly h: RouteParserHandler;
  private state = ST_LINE;
  private lineBuf: Buffer = Buffer.allocUnsafe(512);
  private lineLen = 0;
  private msgBuf: Buffer = Buffer.alloc(0);
  private msgHave = 0;
  private readonly msg = new RoutedMsg();
  /** Argument positions of the control line being parsed: start, end pairs. */
  private args = new Int32Array(64);

  constructor(handler: RouteParserHandler) {
    this.h = handler;
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
        if (buf[m.size] !== CR || buf[m.size + 1] !== LF) {
          this.lineLen = 0;
          this.h.onParseError('op', 'missing CRLF after routed message payload');
          return;
        }
        m.pbuf = buf;
        m.ps = 0;
        m.pe = m.size;
        this.h.onMsg(m);
        this.lineLen = 0;
        continue;
      }
      const nl = chunk.indexOf(LF, i);
      if (nl < 0) {
        this.appendLine(chunk, i, n);
        if (this.lineLen > ROUTE_MAX_CONTROL_LINE) this.h.onParseError('args', `control line longer than ${ROUTE_MAX_CONTROL_LINE} bytes`);
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
      const kind = this.messageKind(line, ls, le);
      if (kind === 0) {
        this.control(line, ls, le);
        this.lineLen = 0;
        continue;
      }
      if (kind < 0) {
        this.lineLen = 0;
        return;
      }
      if (!this.msgArgs(kind, line, ls, le)) {
        this.lineLen = 0;
        return;
      }
      const m = this.msg;
      const total = m.size + 2;
      if (n - i >= total) {
        if (chunk[i + m.size] !== CR || chunk[i + m.size + 1] !== LF) {
          this.lineLen = 0;
          this.h.onParseError('op', 'missing CRLF after routed message payload');
          return;
        }
        m.pbuf = chunk;
        m.ps = i;
        m.pe = i + m.size;
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

  /** RMSG/HMSG/LMSG → their kind; 0 for another operation; -1 after reporting an empty line. */
  private messageKind(b: Buffer, s: number, e: number): number {
    if (e - s < 5 || !isSpace(b[s + 4])) return 0;
    const c1 = lower(b[s + 1]);
    const c2 = lower(b[s + 2]);
    const c3 = lower(b[s + 3]);
    if (c1 !== 109 || c2 !== 115 || c3 !== 103) return 0; // "msg"
    const c0 = lower(b[s]);
    if (c0 === 114) return MSG_RMSG;
    if (c0 === 104) return MSG_HMSG;
    if (c0 === 108) return MSG_LMSG;
    return 0;
  }

  /** Splits `b[s, e)` on spaces and tabs into this.args (start, end pairs). */
  private split(b: Buffer, s: number, e: number): number {
    let a = this.args;
    let n = 0;
    let i = s;
    while (i < e) {
      let c = b[i];
      while (c === SP || c === TAB) {
        if (++i >= e) return n >> 1;
        c = b[i];
      }
      if (n === a.length) {
        const grown = new Int32Array(a.length * 2); // many queue names
        grown.set(a);
        this.args = a = grown;
      }
      a[n++] = i;
      while (i < e && (c = b[i]) !== SP && c !== TAB) i++;
      a[n++] = i;
    }
    return n >> 1;
  }

  /** Report a bad RMSG/HMSG/LMSG argument list the way nats-server words it. */
  private msgArgsError(kind: number, what: string, b: Buffer, s: number, e: number): false {
    const where = kind === MSG_RMSG ? 'processRoutedMsgArgs' : kind === MSG_HMSG ? 'processRoutedHeaderMsgArgs' : 'processRoutedOriginClusterMsgArgs';
    this.h.onParseError('args', `${where} ${what}: '${b.toString('utf8', s, e)}'`);
    return false;
  }

  private msgArgs(kind: number, b: Buffer, s: number, e: number): boolean {
    const n = this.split(b, s + 5, e);
    const a = this.args;
    const m = this.msg;
    m.buf = b;
    m.replyS = -1;
    m.replyE = -1;
    m.queueCount = 0;
    m.queues.length = 0;
    // LMSG carries the origin cluster first; we accept and ignore it.
    const off = kind === MSG_LMSG ? 1 : 0;
    const sizes = kind === MSG_RMSG ? 1 : 2; // trailing size fields
    const minArgs = off + 2 + sizes;
    if (n < minArgs) return this.msgArgsError(kind, 'Parse Error', b, s + 5, e);
    m.accS = a[2 * off];
    m.accE = a[2 * off + 1];
    m.subjS = a[2 * off + 2];
    m.subjE = a[2 * off + 3];
    const mid = n - minArgs; // fields between the subject and the sizes
    if (mid === 1) {
      m.replyS = a[2 * (off + 2)];
      m.replyE = a[2 * (off + 2) + 1];
    } else if (mid > 1) {
      const is = a[2 * (off + 2)];
      const ie = a[2 * (off + 2) + 1];
      const indicator = ie - is === 1 ? b[is] : 0;
      let q = off + 3;
      if (indicator === 43) { // '+': reply, then queues
        m.replyS = a[2 * q];
        m.replyE = a[2 * q + 1];
        q++;
      } else if (indicator !== 124) { // '|': queues only
        return this.msgArgsError(kind, 'Bad or Missing Reply Indicator', b, is, ie);
      }
      for (; q < n - sizes; q++) {
        m.queues.push(a[2 * q], a[2 * q + 1]);
        m.queueCount++;
      }
    }
    const sizeArg = 2 * (n - 1);
    m.size = parseSize(b, a[sizeArg], a[sizeArg + 1]);
    if (m.size < 0) return this.msgArgsError(kind, 'Bad or Missing Size', b, s + 5, e);
    if (sizes === 2) {
      const hs = 2 * (n - 2);
      m.hdrLen = parseSize(b, a[hs], a[hs + 1]);
      if (m.hdrLen < 0) return this.msgArgsError(kind, 'Bad or Missing Header Size', b, s + 5, e);
      if (m.hdrLen > m.size) return this.msgArgsError(kind, 'Header Size larger then TotalSize', b, s + 5, e);
    } else {
      m.hdrLen = -1;
    }
    if (m.size > ROUTE_MAX_MESSAGE) return this.msgArgsError(kind, `message of ${m.size} bytes exceeds ${ROUTE_MAX_MESSAGE}`, b, s + 5, e);
    return true;
  }

  /** Recognise a non-message keyword and hand over its argument range. */
  private control(b: Buffer, s: number, e: number): void {
    let k = s;
    while (k < e && !isSpace(b[k])) k++;
    const kw = b.toString('latin1', s, k).toUpperCase();
    let as = k;
    while (as < e && isSpace(b[as])) as++;
    let op: RouteOpCode;
    switch (kw) {
      case 'RS+': op = RouteOp.rsPlus; break;
      case 'RS-': op = RouteOp.rsMinus; break;
      case 'LS+': op = RouteOp.lsPlus; break;
      case 'LS-': op = RouteOp.lsMinus; break;
      case 'PING': op = RouteOp.ping; break;
      case 'PONG': op = RouteOp.pong; break;
      case 'INFO': op = RouteOp.info; break;
      case 'CONNECT': op = RouteOp.connect; break;
      case '+OK': op = RouteOp.ok; break;
      case '-ERR': op = RouteOp.err; break;
      default:
        if (s === e) return; // a bare CRLF is tolerated
        this.h.onParseError('op', JSON.stringify(b.toString('latin1', s, Math.min(e, s + 32))));
        return;
    }
    this.h.onControl(op, b, as, e);
  }
}

// ---------------------------------------------------------------------------------------
// The route connection

const PONG = Buffer.from('PONG\r\n');
const OK = Buffer.from('+OK\r\n');
const RMSG_G = Buffer.from('RMSG $G ');
const HMSG_G = Buffer.from('HMSG $G ');

/** What a route connection needs from the cluster that owns it. */
export interface RouteHost {
  markDirty(r: RouteConn): void;
  onRouteControl(r: RouteConn, op: RouteOpCode, line: Buffer, as: number, ae: number): void;
  onRoutedMsg(r: RouteConn, m: RoutedMsg): void;
  onRouteClosed(r: RouteConn, reason: CloseReasonText): void;
  /** The route's output drained below half of max_pending (after it stalled producers). */
  onRouteDrained(r: RouteConn): void;
  /** Bytes arrived from a route, about to be parsed. */
  beforeRouteRead(r: RouteConn): void;
  /** One read was parsed: flush what it produced (once per read, never per message). */
  afterRouteRead(r: RouteConn): void;
}

/** First PING on a route: about 1s after creation (nats-server firstPingInterval + 0-20%). */
const FIRST_PING_MS = 1000;

export class RouteConn extends Conn implements RouteParserHandler {
  readonly host: RouteHost;
  readonly parser: RouteParser;
  /** We dialled this connection. */
  didSolicit: boolean;
  /** The URL we dialled (or, for an accepted route, one built from the peer's INFO). */
  url: URL | null;
  /** An explicitly configured route (re-dialled forever), as opposed to a gossiped one. */
  explicit: boolean;
  /** Re-dial after a disconnect even when accepted (nats-server's route.retry, set on duplicates). */
  retry = false;
  /** Plaintext, or its TLS handshake completed: the route exists for the cluster. */
  secured = false;
  /** A dialled route whose TLS handshake failed: retried as after a failed dial. */
  onTlsFailure: ((err: Error) => void) | null = null;
  remoteId = '';
  remoteName = '';
  remoteInfo: Record<string, unknown> | null = null;
  connectUrls: string[] = [];
  /** Peer understands HMSG (its INFO/CONNECT said headers:true). */
  headers = false;
  verbose = false;
  connectReceived = false;
  infoReceived = false;
  registered = false;
  /** Peer interest, keyed by `subject` or `subject queue` (account $G only). */
  readonly subs = new Map<string, { subject: string; queue: string | null; weight: number; route: RouteConn }>();
  /** An accepted route that must authenticate and has not: input goes line by line through `gate`. */
  authGated = false;
  private readonly parseChunk = (b: Buffer): void => this.parser.parse(b);
  private readonly isAuthGated = (): boolean => this.authGated;

  // Forwarding scratch, used by the cluster while routing one message.
  targetPlain = false;
  targetQueued = false;
  readonly targetGroups: number[] = [];

  constructor(host: RouteHost, opts: Options, socket: Socket, rid: number, solicitUrl: URL | null, explicit: boolean) {
    super(ConnKind.route, socket, rid, opts);
    this.host = host;
    this.didSolicit = solicitUrl !== null;
    this.url = solicitUrl;
    this.explicit = explicit;
    this.parser = new RouteParser(this);
    this.schedulePing(FIRST_PING_MS);
  }

  logPrefix(): string {
    const a = this.remoteAddr.includes(':') ? `[${this.remoteAddr}]` : this.remoteAddr;
    return `${a}:${this.remotePort} - rid:${this.cid}`;
  }

  protected onRead(chunk: Buffer): void {
    this.input(chunk);
  }

  protected markDirty(): void {
    this.host.markDirty(this);
  }

  protected onUnstall(): void {
    this.host.onRouteDrained(this);
  }

  protected onClose(reason: CloseReasonText): void {
    this.host.onRouteClosed(this, reason);
  }

  /** Plaintext: read from the socket now. */
  start(): void {
    const s = this.socket;
    s.setNoDelay(true);
    this.watch(s);
    this.begin(s);
  }

  /**
   * route.go createRoute with TLS: the handshake comes first, before any INFO; both sides
   * present our certificate and verify the peer's (nats-server forces
   * RequireAndVerifyClientCert on routes). `dialHost`: the name to verify a dialled peer by.
   */
  startTls(t: TlsOptions, dialHost: string | null, onSecure: () => void): void {
    this.startTlsHandshake(t, dialHost, true, (s) => {
      this.peerCert = s.getPeerX509Certificate()?.raw ?? null;
      onSecure();
      this.begin(s);
    });
  }

  private begin(s: Socket): void {
    this.secured = true;
    // The route starts now (after a TLS handshake): its first PING about 1s from here.
    this.startedAt = Date.now();
    this.lastInboundAt = this.startedAt;
    this.schedulePing(FIRST_PING_MS);
    this.listen(s);
    s.resume();
  }

  /** One read from the socket (or a chunk held while the route's CONNECT was checked). */
  input(chunk: Buffer): void {
    if (this.closed) return;
    if (this.gate.waiting) {
      this.gate.feed(chunk, this.parseChunk, this.isAuthGated);
      return;
    }
    this.lastInboundAt = Date.now();
    this.host.beforeRouteRead(this);
    try {
      if (this.authGated) this.gate.feed(chunk, this.parseChunk, this.isAuthGated);
      else this.parser.parse(chunk);
    } catch (err) {
      log.error(`${this.logPrefix()} - internal error processing route input: ${(err as Error).stack}`);
      this.close(CloseReason.internalError, false);
    }
    this.host.afterRouteRead(this);
  }

  // -------------------------------------------------------------- parser callbacks

  onControl(op: RouteOpCode, line: Buffer, as: number, ae: number): void {
    if (isTrace()) this.traceIn(opName(op), ae > as ? line.toString('utf8', as, ae) : undefined);
    switch (op) {
      case RouteOp.ping:
        this.lastPeerPingAt = Date.now();
        this.queue(PONG);
        return;
      case RouteOp.pong:
        this.gotPong();
        return;
      case RouteOp.ok:
        return;
      default:
        this.host.onRouteControl(this, op, line, as, ae);
    }
  }

  onMsg(m: RoutedMsg): void {
    this.inMsgs++;
    this.inBytes += m.size;
    if (isTrace()) log.trace(`${this.logPrefix()} - <<- [${m.hdrLen >= 0 ? 'HMSG' : 'RMSG'} ${m.buf.toString('utf8', m.accS, m.subjE)} ${m.size}]`);
    this.host.onRoutedMsg(this, m);
    if (this.verbose) this.queue(OK);
  }

  onParseError(kind: 'op' | 'args', detail: string): void {
    if (this.closing) return;
    if (kind === 'op') {
      log.error(`${this.logPrefix()} - Router parser ERROR, proto=${detail}`);
      this.sendErr('Unknown Protocol Operation');
      this.close(CloseReason.protocolViolation, true);
      return;
    }
    log.error(`${this.logPrefix()} - ${detail}`);
    this.close(CloseReason.protocolViolation, true);
  }

  // -------------------------------------------------------------------- output

  /**
   * Append `RMSG $G <subject>` (or HMSG) and a canonical tail ` [reply ][hdr ]size\r\n
   * <payload>\r\n` taken as is from a worker's ring record: the common forward, two copies.
   */
  writeTail(sb: Uint8Array, ss: number, se: number, tb: Uint8Array, ts: number, te: number, headers: boolean): void {
    if (this.closing) return;
    const out = this.reserve(8 + (se - ss) + (te - ts));
    let o = put(out, this.outPos, headers ? HMSG_G : RMSG_G, 0, 8);
    o = put(out, o, sb, ss, se);
    this.outPos = put(out, o, tb, ts, te);
  }

  /**
   * Append one RMSG/HMSG. Queue names are `[start, end)` pairs in `qb`. Headers are
   * stripped for a peer that did not announce header support (nats-server does the same).
   */
  writeMsg(sb: Uint8Array, ss: number, se: number, rs: number, re: number, qb: Uint8Array, queues: number[], qStart: number, qCount: number, pb: Uint8Array, ps: number, pe: number, hdrLen: number): void {
    if (this.closing) return;
    let hdr = hdrLen;
    let body = ps;
    if (hdr > 0 && !this.headers) {
      body = ps + hdr;
      hdr = -1;
    } else if (hdr === 0) {
      hdr = -1;
    }
    const total = pe - body;
    let qBytes = 0;
    for (let i = 0; i < qCount; i++) qBytes += 1 + queues[qStart + 2 * i + 1] - queues[qStart + 2 * i];
    const replyLen = rs >= 0 ? re - rs : -1;
    const need = 8 + (se - ss) + (qCount > 0 ? 2 + (replyLen >= 0 ? replyLen + 1 : 0) + qBytes : replyLen + 1) + sizesLength(hdr, total);
    const out = this.reserve(need);
    let o = this.outPos;
    o = put(out, o, hdr >= 0 ? HMSG_G : RMSG_G, 0, 8);
    o = put(out, o, sb, ss, se);
    if (qCount > 0) {
      out[o++] = 32;
      if (replyLen >= 0) {
        out[o++] = 43; // '+'
        out[o++] = 32;
        o = put(out, o, sb, rs, re);
      } else {
        out[o++] = 124; // '|'
      }
      for (let i = 0; i < qCount; i++) {
        out[o++] = 32;
        o = put(out, o, qb, queues[qStart + 2 * i], queues[qStart + 2 * i + 1]);
      }
    } else if (replyLen >= 0) {
      out[o++] = 32;
      o = put(out, o, sb, rs, re);
    }
    this.outPos = putSizes(out, o, hdr, pb, body, pe);
  }
}

function opName(op: RouteOpCode): string {
  switch (op) {
    case RouteOp.rsPlus: return 'RS+';
    case RouteOp.rsMinus: return 'RS-';
    case RouteOp.lsPlus: return 'LS+';
    case RouteOp.lsMinus: return 'LS-';
    case RouteOp.ping: return 'PING';
    case RouteOp.pong: return 'PONG';
    case RouteOp.info: return 'INFO';
    case RouteOp.connect: return 'CONNECT';
    case RouteOp.ok: return '+OK';
    case RouteOp.err: return '-ERR';
  }
}

// ---------------------------------------------------------------------------------------
// INFO and CONNECT JSON, in nats-server's field order (Go marshals struct fields in order)

/** server.go Info, route-relevant fields in declaration order; `true` marks omitempty. */
const INFO_FIELDS: [string, boolean][] = [
  ['server_id', false], ['server_name', false], ['version', false], ['proto', false], ['git_commit', true],
  ['go', false], ['host', false], ['port', false], ['headers', false], ['auth_required', true],
  ['tls_required', true], ['tls_verify', true], ['tls_available', true], ['max_payload', false],
  ['jetstream', true], ['ip', true], ['nonce', true], ['cluster', true], ['cluster_dynamic', true],
  ['domain', true], ['connect_urls', true], ['ws_connect_urls', true], ['ldm', true], ['import', true],
  ['export', true], ['lnoc', true], ['info_on_connect', true], ['connect_info', true], ['gateway', true],
  ['gateway_urls', true], ['gateway_url', true], ['leafnode_urls', true],
];

function isEmptyValue(v: unknown): boolean {
  return v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0);
}

/** Re-serialise a route INFO the way nats-server would marshal it (unknown fields dropped). */
export function routeInfoJson(info: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const [key, omitEmpty] of INFO_FIELDS) {
    const v = info[key];
    if (omitEmpty ? isEmptyValue(v) : v === undefined) continue;
    out[key] = v;
  }
  return JSON.stringify(out);
}

export interface RouteConnectInfo {
  user?: string;
  pass?: string;
  name: string;
  cluster: string;
  dynamic: boolean;
  tls?: boolean; // cluster.tls is configured
}

/** route.go connectInfo, in field order. We leave `lnoc` out: we do not speak LS+/LMSG. */
export function routeConnectJson(c: RouteConnectInfo): string {
  const o: Record<string, unknown> = { echo: true, verbose: false, pedantic: false };
  if (c.user) o.user = c.user;
  if (c.pass) o.pass = c.pass;
  o.tls_required = c.tls === true;
  o.headers = true;
  o.name = c.name;
  o.cluster = c.cluster;
  if (c.dynamic) o.cluster_dynamic = true;
  return JSON.stringify(o);
}

/** route.go urlsAreEqual: the same route URL once parsed (config reload adds and removes routes by it). */
export function sameRoute(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}
