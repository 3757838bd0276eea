// One route connection: what a route does on top of every connection's base (conn/base.ts):
// it parses the server-to-server protocol (protocol/peer-parser.ts) and writes RMSG/HMSG.
// What a route *means* (registration, interest, forwarding) is the cluster's job
// (cluster/route-control.ts, cluster/bridge.ts); this file turns bytes into calls on a RouteHost and back.
//
// Runs on the route thread only.

import type { Socket } from 'node:net';
import type { Options, TlsOptions } from '../config/options.ts';
import type { ServerInfo } from '../protocol/peer-info.ts';
import type { BridgePeer, PeerSub } from '../cluster/bridge.ts';
import { log, isTrace } from '../log.ts';
import { put, sizesLength, putSizes } from '../protocol/bytes.ts';
import { Conn, ConnKind, CloseReason, type CloseReasonText } from './base.ts';
import { PeerParser, PeerOp, peerOpName, type PeerOpCode, type PeerParserHandler } from '../protocol/peer-parser.ts';
import { putSubjectTail, type MsgView } from '../protocol/msg-view.ts';

// ---------------------------------------------------------------------------------------
// The route connection

const PONG = Buffer.from('PONG\r\n');
const OK = Buffer.from('+OK\r\n');
const RMSG_G = Buffer.from('RMSG $G ');
const HMSG_G = Buffer.from('HMSG $G ');

/** What a route connection needs from the cluster that owns it. */
export interface RouteHost {
  markDirty(r: RouteConn): void;
  onRouteControl(r: RouteConn, op: PeerOpCode, line: Buffer, as: number, ae: number): void;
  onRoutedMsg(r: RouteConn, m: MsgView): void;
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

export class RouteConn extends Conn implements PeerParserHandler, BridgePeer<RouteConn> {
  readonly host: RouteHost;
  readonly parser: PeerParser;
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
  remoteInfo: ServerInfo | null = null;
  connectUrls: string[] = [];
  /** Peer understands HMSG (its INFO/CONNECT said headers:true). */
  headers = false;
  verbose = false;
  connectReceived = false;
  infoReceived = false;
  registered = false;
  /** Peer interest, keyed by `subject` or `subject queue` (account $G only). */
  readonly subs = new Map<string, PeerSub<RouteConn>>();
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
    this.parser = new PeerParser(this, ConnKind.route);
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

  onControl(op: PeerOpCode, line: Buffer, as: number, ae: number): void {
    if (isTrace()) this.traceIn(peerOpName(op), ae > as ? line.toString('utf8', as, ae) : undefined);
    switch (op) {
      case PeerOp.ping:
        this.lastPeerPingAt = Date.now();
        this.queue(PONG);
        return;
      case PeerOp.pong:
        this.gotPong();
        return;
      case PeerOp.ok:
        return;
      default:
        this.host.onRouteControl(this, op, line, as, ae);
    }
  }

  onMsg(m: MsgView): void {
    this.inMsgs++;
    this.inBytes += m.pe - m.ps;
    if (isTrace()) log.trace(`${this.logPrefix()} - <<- [${m.hdr >= 0 ? 'HMSG' : 'RMSG'} ${m.sb.toString('utf8', m.accountStart, m.se)} ${m.pe - m.ps}]`);
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
   * Append `RMSG $G <subject>` (or HMSG) and the canonical tail ` [reply ][hdr ]size\r\n
   * <payload>\r\n` taken as is from a worker's ring record: the common forward, two copies.
   */
  writeTail(m: MsgView): void {
    if (this.closing) return;
    const ss = m.ss;
    const se = m.se;
    const out = this.reserve(8 + (se - ss) + (m.te - m.ts));
    this.outPos = putSubjectTail(out, this.outView, put(out, this.outPos, m.hdr > 0 ? HMSG_G : RMSG_G, 0, 8), m);
  }

  /**
   * Append one RMSG/HMSG with `qCount` queue names, [start, end) pairs in `m.sb`. Headers are
   * stripped for a peer that did not announce header support (nats-server does the same).
   */
  writeMsg(m: MsgView, queues: number[], qCount: number): void {
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
    const replyLen = m.rs >= 0 ? m.re - m.rs : -1;
    const need = 8 + (m.se - m.ss) + (qCount > 0 ? 2 + (replyLen >= 0 ? replyLen + 1 : 0) + qBytes : replyLen + 1) + sizesLength(hdr, total);
    const out = this.reserve(need);
    let o = this.outPos;
    o = put(out, o, hdr >= 0 ? HMSG_G : RMSG_G, 0, 8);
    o = put(out, o, sb, m.ss, m.se);
    if (qCount > 0) {
      out[o++] = 32;
      if (replyLen >= 0) {
        out[o++] = 43; // '+'
        out[o++] = 32;
        o = put(out, o, sb, m.rs, m.re);
      } else {
        out[o++] = 124; // '|'
      }
      for (let i = 0; i < qCount; i++) {
        out[o++] = 32;
        o = put(out, o, sb, queues[2 * i], queues[2 * i + 1]);
      }
    } else if (replyLen >= 0) {
      out[o++] = 32;
      o = put(out, o, sb, m.rs, m.re);
    }
    this.outPos = putSizes(out, o, hdr, m.pb, body, pe);
  }
}

/** route.go urlsAreEqual: the same route URL once parsed (config reload adds and removes routes by it). */
export function sameRoute(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}
