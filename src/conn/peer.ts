// What every server-to-server connection (route, gateway, leaf node) does on top of every
// connection's base (conn/base.ts): it parses the server-to-server protocol
// (protocol/peer-parser.ts), answers PING, logs parser errors, and writes RMSG/LMSG/HMSG.
// What differs between the roles is a row of PEER_ROLES (the verb, the id tag, the words of
// the log lines) or a small hook a role overrides; the role files (conn/route.ts,
// conn/gateway.ts, conn/leaf.ts) keep only what is their own, as nats-server's one client
// struct switches on its kind only where an operation differs (client.go, parser.go).
// What a connection *means* is its control plane's (cluster/*-control.ts), reached through a
// PeerHost.
//
// Runs on the thread that owns the role (route, gateway or leaf thread) only.

import type { Socket } from 'node:net';
import type { Options, TlsOptions } from '../config/options.ts';
import type { BridgePeer, PeerSub } from '../cluster/bridge.ts';
import { log, isTrace } from '../log.ts';
import { put, putDV, sizesLength, putSizes, viewOf } from '../protocol/bytes.ts';
import { Conn, ConnKind, CloseReason, type CloseReasonText } from './base.ts';
import { PeerParser, PeerOp, peerOpName, type PeerOpCode, type PeerParserHandler } from '../protocol/peer-parser.ts';
import { putSubjectTail, type MsgView } from '../protocol/msg-view.ts';

/** What differs between the server-to-server roles, as data. */
export interface PeerRole {
  readonly kind: typeof ConnKind.route | typeof ConnKind.gateway | typeof ConnKind.leaf;
  /** The id in log lines: `rid:`, `gid:`, `lid:`. */
  readonly idTag: string;
  /** `<name> parser ERROR, proto=...` (nats-server's words for the role). */
  readonly parserName: string;
  /** `internal error processing <name> input` (skein's own line). */
  readonly inputName: string;
  /** The message verb and its header form, the same length: `RMSG $G ` / `HMSG $G `, `LMSG ` / `HMSG `. */
  readonly msgOp: Buffer;
  readonly hmsgOp: Buffer;
  /** DataViews spanning msgOp and hmsgOp (copied word-wise per message: putDV). */
  readonly msgOpView: DataView;
  readonly hmsgOpView: DataView;
  /** The verb in a `<<- [RMSG ...]` trace line. */
  readonly traceOp: string;
  /** The trace shows the account before the subject (RMSG carries one, LMSG does not). */
  readonly traceAccount: boolean;
}

/** A role's message verbs and their views. */
function msgVerbs(msg: string, hmsg: string): Pick<PeerRole, 'msgOp' | 'hmsgOp' | 'msgOpView' | 'hmsgOpView'> {
  const msgOp = Buffer.from(msg);
  const hmsgOp = Buffer.from(hmsg);
  return { msgOp, hmsgOp, msgOpView: viewOf(msgOp), hmsgOpView: viewOf(hmsgOp) };
}
const ACCOUNT_VERBS = msgVerbs('RMSG $G ', 'HMSG $G ');

export const PEER_ROLES = {
  route: {
    kind: ConnKind.route,
    idTag: 'rid',
    parserName: 'Router',
    inputName: 'route',
    ...ACCOUNT_VERBS,
    traceOp: 'RMSG',
    traceAccount: true,
  },
  gateway: {
    kind: ConnKind.gateway,
    idTag: 'gid',
    parserName: 'Gateway',
    inputName: 'gateway',
    ...ACCOUNT_VERBS,
    traceOp: 'RMSG',
    traceAccount: true,
  },
  leaf: {
    kind: ConnKind.leaf,
    idTag: 'lid',
    parserName: 'Leafnode',
    inputName: 'leafnode',
    ...msgVerbs('LMSG ', 'HMSG '),
    traceOp: 'LMSG',
    traceAccount: false,
  },
} as const satisfies Record<string, PeerRole>;

/** What a server-to-server connection needs from the control plane that owns it. */
export interface PeerHost<C> {
  markDirty(c: C): void;
  /** A non-message operation the connection does not answer itself (CONNECT, INFO, RS+, -ERR, ...). */
  onPeerControl(c: C, op: PeerOpCode, line: Buffer, as: number, ae: number): void;
  onPeerMsg(c: C, m: MsgView): void;
  onPeerClosed(c: C, reason: CloseReasonText): void;
  /** The connection's output drained below half of max_pending (after it stalled producers). */
  onPeerDrained(c: C): void;
  /** Bytes arrived, about to be parsed. */
  beforePeerRead(c: C): void;
  /** One read was parsed: flush what it produced (once per read, never per message). */
  afterPeerRead(c: C): void;
}

const PONG = Buffer.from('PONG\r\n');
/** `LMSG <origin> $G <subject> ...` to an lnoc route: the verb, then (after the origin) the account. */
const LMSG_ORIGIN = Buffer.from('LMSG ');
const ACCOUNT_G = Buffer.from(' $G ');

export abstract class PeerConn<C extends PeerConn<C, H>, H extends PeerHost<C>> extends Conn implements PeerParserHandler, BridgePeer<C> {
  readonly host: H;
  readonly role: PeerRole;
  readonly parser: PeerParser;
  /** Plaintext, or its TLS handshake completed: the connection exists for its control plane. */
  secured = false;
  remoteId = '';
  /** Peer takes HMSG (its INFO/CONNECT said headers:true). */
  headers = false;
  /**
   * A route peer that said `lnoc: true` (INFO or CONNECT): a message from a leaf goes to it as
   * `LMSG <origin> $G ...` (route.go msgHeaderForRouteOrLeaf). Never set on other roles.
   */
  lnoc = false;
  connectReceived = false;
  infoReceived = false;
  registered = false;
  /** Peer interest, keyed by `subject` or `subject queue`. */
  readonly subs = new Map<string, PeerSub<C>>();
  /** An accepted connection that must authenticate and has not: input goes line by line through `gate`. */
  authGated = false;

  // Forwarding scratch, used by the bridge while routing one message.
  targetPlain = false;
  targetQueued = false;
  readonly targetGroups: number[] = [];

  private readonly self: C;
  private readonly parseChunk = (b: Buffer): void => this.parser.parse(b);
  private readonly isAuthGated = (): boolean => this.authGated;

  constructor(role: PeerRole, host: H, opts: Options, socket: Socket, cid: number) {
    super(role.kind, socket, cid, opts);
    this.role = role;
    this.host = host;
    this.self = this as unknown as C;
    this.parser = new PeerParser(this, role.kind);
  }

  logPrefix(): string {
    const a = this.remoteAddr.includes(':') ? `[${this.remoteAddr}]` : this.remoteAddr;
    return `${a}:${this.remotePort} - ${this.role.idTag}:${this.cid}`;
  }

  protected onRead(chunk: Buffer): void {
    this.input(chunk);
  }

  protected markDirty(): void {
    this.host.markDirty(this.self);
  }

  protected onUnstall(): void {
    this.host.onPeerDrained(this.self);
  }

  protected onClose(reason: CloseReasonText): void {
    this.host.onPeerClosed(this.self, reason);
  }

  // ----------------------------------------------------------------- role hooks

  /** Before its CONNECT, an accepted connection hands every operation to its control plane. */
  protected awaitingConnect(): boolean {
    return false;
  }

  /** An accepted connection's first read, seen before parsing: true if the role consumed it. */
  protected refusesFirstRead(_chunk: Buffer): boolean {
    return false;
  }

  /** A PING arrived: what must go out before its PONG. */
  protected beforePong(): void {}

  /** The prefix this message's reply is sent behind (gateways' `_GR_.`), or null. */
  protected replyPrefix(_m: MsgView): Buffer | null {
    return null;
  }

  // ---------------------------------------------------------------------- start

  /** Plaintext: read from the socket now. */
  start(): void {
    const s = this.socket;
    s.setNoDelay(true);
    this.watch(s);
    this.begin(s);
  }

  /**
   * route.go createRoute, gateway.go: with TLS the handshake comes first, before any INFO;
   * both sides present a certificate and verify the peer's (nats-server forces
   * RequireAndVerifyClientCert on routes and gateways). `dialHost`: the name to verify a
   * dialled peer by.
   */
  startTls(t: TlsOptions, dialHost: string | null, onSecure: () => void): void {
    this.startTlsHandshake(t, dialHost, true, (s) => {
      this.peerCert = s.getPeerX509Certificate()?.raw ?? null;
      onSecure();
      this.begin(s);
    });
  }

  /** The connection starts now (after a TLS handshake): read from `s`. */
  protected begin(s: Socket): void {
    this.secured = true;
    this.startedAt = Date.now();
    this.lastInboundAt = this.startedAt;
    this.listen(s, !this.mayStartTlsLater());
    s.resume();
  }

  /**
   * Could this connection, once read in plaintext, still switch to TLS (a leaf that dialled its
   * hub, on the hub's INFO)? If not, its plain socket reads into the thread's reused read buffer (listen).
   */
  protected mayStartTlsLater(): boolean {
    return false;
  }

  // ---------------------------------------------------------------------- input

  /** One read from the socket (or a chunk held while a CONNECT was checked). */
  input(chunk: Buffer): void {
    if (this.closed) return;
    if (this.gate.waiting) {
      this.gate.feed(chunk, this.parseChunk, this.isAuthGated);
      return;
    }
    this.lastInboundAt = Date.now();
    if (this.refusesFirstRead(chunk)) {
      this.host.afterPeerRead(this.self);
      return;
    }
    this.host.beforePeerRead(this.self);
    try {
      if (this.authGated) this.gate.feed(chunk, this.parseChunk, this.isAuthGated);
      else this.parser.parse(chunk);
    } catch (err) {
      log.error(`${this.logPrefix()} - internal error processing ${this.role.inputName} input: ${(err as Error).stack}`);
      this.close(CloseReason.internalError, false);
    }
    this.host.afterPeerRead(this.self);
  }

  // ------------------------------------------------------------ parser callbacks

  onControl(op: PeerOpCode, line: Buffer, as: number, ae: number): void {
    if (isTrace()) this.traceIn(peerOpName(op), ae > as ? line.toString('utf8', as, ae) : undefined);
    if (op !== PeerOp.connect && this.awaitingConnect()) {
      this.host.onPeerControl(this.self, op, line, as, ae);
      return;
    }
    switch (op) {
      case PeerOp.ping:
        this.lastPeerPingAt = Date.now();
        this.beforePong();
        this.queue(PONG);
        return;
      case PeerOp.pong:
        this.gotPong();
        return;
      case PeerOp.ok:
        return;
      default:
        this.host.onPeerControl(this.self, op, line, as, ae);
    }
  }

  onMsg(m: MsgView): void {
    this.inMsgs++;
    this.inBytes += m.pe - m.ps;
    if (isTrace()) {
      const subject = m.sb.toString('utf8', this.role.traceAccount ? m.accountStart : m.ss, m.se);
      log.trace(`${this.logPrefix()} - <<- [${m.hdr >= 0 ? 'HMSG' : this.role.traceOp} ${subject} ${m.pe - m.ps}]`);
    }
    this.host.onPeerMsg(this.self, m);
  }

  onParseError(kind: 'op' | 'args', detail: string): void {
    if (this.closing) return;
    if (kind === 'op') {
      log.error(`${this.logPrefix()} - ${this.role.parserName} parser ERROR, proto=${detail}`);
      this.sendErr('Unknown Protocol Operation');
      this.close(CloseReason.protocolViolation, true);
      return;
    }
    log.error(`${this.logPrefix()} - ${detail}`);
    this.close(CloseReason.protocolViolation, true);
  }

  // --------------------------------------------------------------------- output

  /**
   * Append `RMSG $G <subject>` (LMSG, or HMSG) and the canonical tail ` [reply ][hdr ]size\r\n
   * <payload>\r\n` taken as is from a worker's ring record: the common forward, one copy of
   * subject and tail (putSubjectTail).
   * A reply the role sends behind a prefix is written field by field instead.
   */
  writeTail(m: MsgView): void {
    if (this.closing) return;
    if (m.rs >= 0) {
      const prefix = this.replyPrefix(m);
      if (prefix !== null) {
        this.writeFull(m, null, prefix, m.queues, 0);
        return;
      }
    }
    const role = this.role;
    const opView = m.hdr > 0 ? role.hmsgOpView : role.msgOpView;
    const opLen = opView.byteLength;
    const out = this.reserve(opLen + (m.se - m.ss) + (m.te - m.ts));
    const ov = this.outView;
    this.outPos = putSubjectTail(out, ov, putDV(ov, this.outPos, opView, 0, opLen), m);
  }

  /** Append one message with `qCount` queue names, [start, end) pairs in `m.sb`. */
  writeMsg(m: MsgView, queues: number[], qCount: number): void {
    if (this.closing) return;
    this.writeFull(m, null, m.rs >= 0 ? this.replyPrefix(m) : null, queues, qCount);
  }

  /**
   * One message built field by field: `subject` instead of the message's own when given, the
   * reply behind `replyPrefix` when given, headers stripped for a peer that did not announce
   * header support (nats-server does the same). A message from a leaf goes to an `lnoc` route
   * as `LMSG <origin> $G subject ... <hdr> <size>`, the header size always there (0: none).
   */
  writeFull(m: MsgView, subject: Buffer | null, replyPrefix: Buffer | null, queues: number[], qCount: number): void {
    if (this.closing) return;
    const sb = m.sb;
    const pe = m.pe;
    let hdr = m.hdr;
    let body = m.ps;
    const origin = m.os >= 0 && this.lnoc;
    if (origin) {
      if (hdr < 0) hdr = 0;
    } else if (hdr > 0 && !this.headers) {
      body = m.ps + hdr;
      hdr = -1;
    } else if (hdr === 0) {
      hdr = -1;
    }
    const total = pe - body;
    let qBytes = 0;
    for (let i = 0; i < qCount; i++) qBytes += 1 + queues[2 * i + 1] - queues[2 * i];
    const prefixLen = replyPrefix === null ? 0 : replyPrefix.length;
    const replyLen = m.rs >= 0 ? prefixLen + m.re - m.rs : -1;
    const subjectLen = subject === null ? m.se - m.ss : subject.length;
    const op = origin ? LMSG_ORIGIN : hdr >= 0 ? this.role.hmsgOp : this.role.msgOp;
    const originBytes = origin ? m.oe - m.os + ACCOUNT_G.length : 0;
    const need =
      op.length +
      originBytes +
      subjectLen +
      (qCount > 0 ? 2 + (replyLen >= 0 ? replyLen + 1 : 0) + qBytes : replyLen + 1) +
      sizesLength(hdr, total);
    const out = this.reserve(need);
    let o = this.outPos;
    o = put(out, o, op, 0, op.length);
    if (origin) {
      o = put(out, o, m.ob, m.os, m.oe);
      o = put(out, o, ACCOUNT_G, 0, ACCOUNT_G.length);
    }
    o = subject === null ? put(out, o, sb, m.ss, m.se) : put(out, o, subject, 0, subject.length);
    if (qCount > 0) {
      out[o++] = 32;
      if (replyLen >= 0) {
        out[o++] = 43; // '+'
        out[o++] = 32;
        o = putReply(out, o, replyPrefix, m);
      } else {
        out[o++] = 124; // '|'
      }
      for (let i = 0; i < qCount; i++) {
        out[o++] = 32;
        o = put(out, o, sb, queues[2 * i], queues[2 * i + 1]);
      }
    } else if (replyLen >= 0) {
      out[o++] = 32;
      o = putReply(out, o, replyPrefix, m);
    }
    this.outPos = putSizes(out, o, hdr, m.pb, body, pe);
  }
}

function putReply(out: Buffer, o: number, replyPrefix: Buffer | null, m: MsgView): number {
  if (replyPrefix !== null) o = put(out, o, replyPrefix, 0, replyPrefix.length);
  return put(out, o, m.sb, m.rs, m.re);
}
