// One gateway connection: what a gateway does on top of every connection's base (conn/base.ts).
// It parses the server-to-server protocol (protocol/peer-parser.ts, the gateway row) and writes
// RMSG/HMSG, with the `_GR_.` reply prefix where the control plane asks for it. Connections are
// one-way as in nats-server 2.9.10: an outbound (we dialled) carries our messages and brings the
// remote cluster's interest; an inbound (we accepted) brings messages and carries our interest.
// What a gateway *means* (handshake, names, gossip, interest modes) is the gateway control
// plane's (cluster/gateway-control.ts); this file turns bytes into calls on a GatewayHost and back.
//
// Runs on the gateway thread only.

import type { Socket } from 'node:net';
import type { Options, TlsOptions } from '../config/options.ts';
import type { ServerInfo } from '../protocol/peer-info.ts';
import type { BridgePeer, PeerSub } from '../cluster/bridge.ts';
import { log, isTrace } from '../log.ts';
import { put, sizesLength, putSizes } from '../protocol/bytes.ts';
import { Conn, ConnKind, CloseReason, type CloseReasonText } from './base.ts';
import { PeerParser, PeerOp, peerOpName, type PeerOpCode, type PeerParserHandler } from '../protocol/peer-parser.ts';
import { putSubjectTail, type MsgView } from '../protocol/msg-view.ts';

const PONG = Buffer.from('PONG\r\n');
const RMSG_G = Buffer.from('RMSG $G ');
const HMSG_G = Buffer.from('HMSG $G ');

/** What a gateway connection needs from the control plane that owns it. */
export interface GatewayHost {
  markDirty(g: GatewayConn): void;
  onGatewayControl(g: GatewayConn, op: PeerOpCode, line: Buffer, as: number, ae: number): void;
  onGatewayMsg(g: GatewayConn, m: MsgView): void;
  onGatewayClosed(g: GatewayConn, reason: CloseReasonText): void;
  onGatewayDrained(g: GatewayConn): void;
  beforeGatewayRead(g: GatewayConn): void;
  afterGatewayRead(g: GatewayConn): void;
  /** A PING arrived: everything the workers handed this thread goes out before its PONG. */
  beforePong(g: GatewayConn): void;
  /** An inbound's first bytes are not a CONNECT (parser.go: authorization error). */
  earlyOperation(g: GatewayConn): void;
  /** The reply prefix (`_GR_.<c>.<s>.` or `$GR.<h>.`) for this message's reply, or null. */
  replyPrefix(g: GatewayConn, m: MsgView): Buffer | null;
}

/** How an outbound sends an account's messages (gateway.go GatewayInterestMode). */
export const InterestMode = {
  optimistic: 0,
  transitioning: 1,
  interestOnly: 2,
} as const;
export type InterestModeCode = (typeof InterestMode)[keyof typeof InterestMode];
export const INTEREST_MODE_NAMES = ['Optimistic', 'Transitioning', 'Interest-Only'] as const;

/** First PING on a gateway: about 1 s after CONNECT (nats-server firstPingInterval). */
const FIRST_PING_MS = 1000;
/** gateway.go: gateways PING at most this far apart, whatever ping_interval says. */
const GATEWAY_MAX_PING_INTERVAL_MS = 15_000;

export class GatewayConn extends Conn implements PeerParserHandler, BridgePeer<GatewayConn> {
  readonly host: GatewayHost;
  readonly parser: PeerParser;
  /** We dialled it: it carries our messages. */
  readonly outbound: boolean;
  /** The remote gateway (cluster) name: the one we dialled, or the one an inbound's INFO gave. */
  name: string;
  /** The URL we dialled (outbound). */
  readonly url: URL | null;
  /** Plaintext, or its TLS handshake completed. */
  secured = false;
  remoteId = '';
  remoteServerName = '';
  remoteInfo: ServerInfo | null = null;
  headers = false;
  connectReceived = false;
  infoReceived = false;
  registered = false;
  /** Do not re-dial after this connection closes (a second outbound to the same name). */
  noReconnect = false;
  /** The remote interest (outbound), keyed by `subject` or `subject queue` ($G only). */
  readonly subs = new Map<string, PeerSub<GatewayConn>>();
  /** Outbound: the peer said gateway_iom (sends nothing for an account without an entry). */
  peerIom = false;
  /** Outbound: the peer understands `_GR_.` (else the old `$GR.` prefix). */
  nrp = true;
  /** Outbound, $G: no entry yet (null), or the mode of its entry. */
  mode: InterestModeCode | null = null;
  /** Outbound, optimistic $G: subjects the peer said RS- for. */
  readonly noInterest = new Set<string>();
  /** Outbound: interest received between cmd 2 and cmd 3 (applied at cmd 3). */
  pendingInterest: [string, boolean][] = [];
  /** Outbound: A- received for $G (nothing goes until A+). */
  accountRefused = false;
  /** Outbound: the bridge sends through `refuses` (optimistic $G, or A-). */
  filtered = false;
  /** Inbound: we sent A- for $G (an A+ is owed when interest appears). */
  sentAMinus = false;
  /** Inbound, optimistic receiver: subjects we sent RS- for. */
  readonly sentNoInterest = new Set<string>();
  /** Inbound, optimistic receiver: $G switched to interest-only. */
  receiverInterestOnly = false;
  private readonly parseChunk = (b: Buffer): void => this.parser.parse(b);
  private readonly isAuthGated = (): boolean => this.authGated;
  private sawInput = false;
  /** An inbound whose CONNECT is checked off this thread: input goes line by line. */
  authGated = false;

  // Forwarding scratch, used by the bridge while routing one message.
  targetPlain = false;
  targetQueued = false;
  readonly targetGroups: number[] = [];

  constructor(host: GatewayHost, opts: Options, socket: Socket, cid: number, name: string, url: URL | null) {
    super(ConnKind.gateway, socket, cid, opts);
    this.host = host;
    this.outbound = url !== null;
    this.name = name;
    this.url = url;
    this.parser = new PeerParser(this, ConnKind.gateway);
    this.alwaysPing = true;
    // No PING before the handshake: the outbound starts after its CONNECT, the inbound after the peer's.
    this.nextPingAt = Infinity;
  }

  protected pingIntervalMs(): number {
    return Math.min(this.opts.pingIntervalMs, GATEWAY_MAX_PING_INTERVAL_MS);
  }

  /** Start pinging (about 1 s from now). */
  startPinging(): void {
    this.schedulePing(FIRST_PING_MS);
  }

  logPrefix(): string {
    const a = this.remoteAddr.includes(':') ? `[${this.remoteAddr}]` : this.remoteAddr;
    return `${a}:${this.remotePort} - gid:${this.cid}`;
  }

  protected onRead(chunk: Buffer): void {
    this.input(chunk);
  }

  protected markDirty(): void {
    this.host.markDirty(this);
  }

  protected onUnstall(): void {
    this.host.onGatewayDrained(this);
  }

  protected onClose(reason: CloseReasonText): void {
    this.host.onGatewayClosed(this, reason);
  }

  /** Plaintext: read from the socket now. */
  start(): void {
    const s = this.socket;
    s.setNoDelay(true);
    this.watch(s);
    this.begin(s);
  }

  /** TLS first, before any INFO; both sides present a certificate and verify the peer's (as routes). */
  startTls(t: TlsOptions, dialHost: string | null, onSecure: () => void): void {
    this.startTlsHandshake(t, dialHost, true, (s) => {
      this.peerCert = s.getPeerX509Certificate()?.raw ?? null;
      onSecure();
      this.begin(s);
    });
  }

  private begin(s: Socket): void {
    this.secured = true;
    this.startedAt = Date.now();
    this.lastInboundAt = this.startedAt;
    this.listen(s);
    s.resume();
  }

  /** One read from the socket (or a chunk held while a CONNECT was checked). */
  input(chunk: Buffer): void {
    if (this.closed) return;
    if (this.gate.waiting) {
      this.gate.feed(chunk, this.parseChunk, this.isAuthGated);
      return;
    }
    this.lastInboundAt = Date.now();
    if (!this.outbound && !this.sawInput) {
      this.sawInput = true;
      // parser.go: before CONNECT an operation that does not start with C is refused.
      if (chunk.length > 0 && chunk[0] !== 67 && chunk[0] !== 99) {
        this.host.earlyOperation(this);
        this.host.afterGatewayRead(this);
        return;
      }
    }
    this.host.beforeGatewayRead(this);
    try {
      if (this.authGated) this.gate.feed(chunk, this.parseChunk, this.isAuthGated);
      else this.parser.parse(chunk);
    } catch (err) {
      log.error(`${this.logPrefix()} - internal error processing gateway input: ${(err as Error).stack}`);
      this.close(CloseReason.internalError, false);
    }
    this.host.afterGatewayRead(this);
  }

  // -------------------------------------------------------------- parser callbacks

  onControl(op: PeerOpCode, line: Buffer, as: number, ae: number): void {
    if (isTrace()) this.traceIn(peerOpName(op), ae > as ? line.toString('utf8', as, ae) : undefined);
    if (!this.outbound && !this.connectReceived && op !== PeerOp.connect) {
      // gateway.go: an inbound's first operation must be CONNECT.
      this.host.onGatewayControl(this, op, line, as, ae);
      return;
    }
    switch (op) {
      case PeerOp.ping:
        this.lastPeerPingAt = Date.now();
        this.host.beforePong(this);
        this.queue(PONG);
        return;
      case PeerOp.pong:
        this.gotPong();
        return;
      case PeerOp.ok:
        return;
      default:
        this.host.onGatewayControl(this, op, line, as, ae);
    }
  }

  onMsg(m: MsgView): void {
    this.inMsgs++;
    this.inBytes += m.pe - m.ps;
    if (isTrace()) log.trace(`${this.logPrefix()} - <<- [${m.hdr >= 0 ? 'HMSG' : 'RMSG'} ${m.sb.toString('utf8', m.accountStart, m.se)} ${m.pe - m.ps}]`);
    this.host.onGatewayMsg(this, m);
  }

  onParseError(kind: 'op' | 'args', detail: string): void {
    if (this.closing) return;
    if (kind === 'op') {
      log.error(`${this.logPrefix()} - Gateway parser ERROR, proto=${detail}`);
      this.sendErr('Unknown Protocol Operation');
      this.close(CloseReason.protocolViolation, true);
      return;
    }
    log.error(`${this.logPrefix()} - ${detail}`);
    this.close(CloseReason.protocolViolation, true);
  }

  /**
   * The bridge asks before sending a plain message on this outbound (only while `filtered`):
   * true when the peer does not want it (A- for the account, or RS- for the subject while
   * optimistic).
   */
  refuses(b: Uint8Array, s: number, e: number): boolean {
    if (this.accountRefused) return true;
    if (this.noInterest.size === 0) return false;
    return this.noInterest.has(Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('latin1'));
  }

  // -------------------------------------------------------------------- output

  /** RMSG $G <subject> and the record's canonical tail, unless the reply is mapped. */
  writeTail(m: MsgView): void {
    if (this.closing) return;
    if (m.rs >= 0) {
      const prefix = this.host.replyPrefix(this, m);
      if (prefix !== null) {
        this.writeFull(m, null, prefix, m.queues, 0);
        return;
      }
    }
    const ss = m.ss;
    const se = m.se;
    const out = this.reserve(8 + (se - ss) + (m.te - m.ts));
    this.outPos = putSubjectTail(out, this.outView, put(out, this.outPos, m.hdr > 0 ? HMSG_G : RMSG_G, 0, 8), m);
  }

  /** One RMSG/HMSG with `qCount` queue names, [start, end) pairs in `m.sb`. */
  writeMsg(m: MsgView, queues: number[], qCount: number): void {
    if (this.closing) return;
    const prefix = m.rs >= 0 ? this.host.replyPrefix(this, m) : null;
    this.writeFull(m, null, prefix, queues, qCount);
  }

  /**
   * One RMSG/HMSG built field by field: `subject` instead of the message's own when given, the
   * reply behind `replyPrefix` when given, headers stripped for a peer without header support.
   */
  writeFull(m: MsgView, subject: Buffer | null, replyPrefix: Buffer | null, queues: number[], qCount: number): void {
    if (this.closing) return;
    const sb = m.sb;
    const pe = m.pe;
    let hdr = m.hdr;
    let body = m.ps;
    if (hdr > 0 && !this.headers) {
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
    const need = 8 + subjectLen + (qCount > 0 ? 2 + (replyLen >= 0 ? replyLen + 1 : 0) + qBytes : replyLen + 1) + sizesLength(hdr, total);
    const out = this.reserve(need);
    let o = this.outPos;
    o = put(out, o, hdr >= 0 ? HMSG_G : RMSG_G, 0, 8);
    o = subject === null ? put(out, o, sb, m.ss, m.se) : put(out, o, subject, 0, subject.length);
    const putReply = (): void => {
      if (replyPrefix !== null) o = put(out, o, replyPrefix, 0, replyPrefix.length);
      o = put(out, o, sb, m.rs, m.re);
    };
    if (qCount > 0) {
      out[o++] = 32;
      if (replyLen >= 0) {
        out[o++] = 43; // '+'
        out[o++] = 32;
        putReply();
      } else {
        out[o++] = 124; // '|'
      }
      for (let i = 0; i < qCount; i++) {
        out[o++] = 32;
        o = put(out, o, sb, queues[2 * i], queues[2 * i + 1]);
      }
    } else if (replyLen >= 0) {
      out[o++] = 32;
      putReply();
    }
    this.outPos = putSizes(out, o, hdr, m.pb, body, pe);
  }
}
