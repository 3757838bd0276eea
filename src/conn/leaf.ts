// One leaf-node connection: what a leaf connection does on top of every connection's base
// (conn/base.ts): it parses the server-to-server protocol as a leafnode (protocol/peer-parser.ts:
// LS+/LS-, LMSG/HMSG without an account) and writes LMSG/HMSG. What the connection *means*
// (handshake, which side is the hub, interest, forwarding) is the leaf control plane's
// (cluster/leaf-control.ts) and the bridge's (cluster/bridge.ts); this file turns bytes into
// calls on a LeafHost and back.
//
// Runs on the leaf thread only.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Options, TlsOptions } from '../config/options.ts';
import type { BridgePeer, PeerSub } from '../cluster/bridge.ts';
import { log, isTrace } from '../log.ts';
import { put, sizesLength, putSizes } from '../protocol/bytes.ts';
import { Conn, ConnKind, CloseReason, type CloseReasonText } from './base.ts';
import { PeerParser, PeerOp, peerOpName, type PeerOpCode, type PeerParserHandler } from '../protocol/peer-parser.ts';
import { putSubjectTail, type MsgView } from '../protocol/msg-view.ts';

const PONG = Buffer.from('PONG\r\n');
const LMSG = Buffer.from('LMSG ');
const HMSG = Buffer.from('HMSG ');

/** What a leaf connection needs from the leaf control plane that owns it. */
export interface LeafHost {
  markDirty(c: LeafConn): void;
  onLeafControl(c: LeafConn, op: PeerOpCode, line: Buffer, as: number, ae: number): void;
  onLeafMsg(c: LeafConn, m: MsgView): void;
  onLeafClosed(c: LeafConn, reason: CloseReasonText): void;
  onLeafDrained(c: LeafConn): void;
  beforeLeafRead(c: LeafConn): void;
  afterLeafRead(c: LeafConn): void;
  /** A deadline of the handshake passed (no INFO from the hub, no connect_info INFO). */
  onLeafDeadline(c: LeafConn): void;
}

/** First PING: about 1s after CONNECT (hub side, + 0-20%) or after registering (leaf side). */
export const LEAF_FIRST_PING_MS = 1000;

export class LeafConn extends Conn implements PeerParserHandler, BridgePeer<LeafConn> {
  readonly host: LeafHost;
  readonly parser: PeerParser;
  /** We dialled this connection (a `remotes` entry), as opposed to accepting it. */
  readonly didSolicit: boolean;
  /** The remote entry (index in leafnodes.remotes) this connection was dialled for, or -1. */
  readonly remoteIndex: number;
  /** The URL dialled (solicited only). */
  readonly url: URL | null;
  /**
   * This server is the spoke on this connection: the peer is our hub (we dialled without
   * `hub: true`, or the dialler said `is_hub`). nats-server's isSpokeLeafNode.
   */
  toHub = false;
  /** The peer's `cluster` (CONNECT on the hub side, INFO on the leaf side); '' if none. */
  remoteCluster = '';
  remoteName = '';
  remoteId = '';
  /** Peer takes HMSG (its CONNECT/INFO said headers:true). */
  headers = false;
  connectReceived = false;
  infoReceived = false;
  /** CONNECT sent (solicited side). */
  connectSent = false;
  registered = false;
  /** The peer's INFO said info_on_connect: it answers our CONNECT with a connect_info INFO. */
  awaitingConnectInfo = false;
  /** A handshake deadline (ms): no INFO within 1s, no connect_info INFO within 2s; 0: none. */
  handshakeDeadline = 0;
  /** Plaintext, or its TLS handshake completed. */
  secured = false;
  /** Peer interest, keyed by `subject` or `subject queue`. */
  readonly subs = new Map<string, PeerSub<LeafConn>>();
  /**
   * What this peer was told (nats-server's leaf smap): `subject` or `subject queue` → count
   * (plain: how many sources have interest; queue: the summed weight).
   */
  readonly smap = new Map<string, number>();

  // Forwarding scratch, used by the bridge while routing one message.
  targetPlain = false;
  targetQueued = false;
  readonly targetGroups: number[] = [];

  constructor(host: LeafHost, opts: Options, socket: Socket, lid: number, url: URL | null, remoteIndex: number) {
    super(ConnKind.leaf, socket, lid, opts);
    this.host = host;
    this.didSolicit = url !== null;
    this.url = url;
    this.remoteIndex = remoteIndex;
    this.parser = new PeerParser(this, ConnKind.leaf);
    // No PING before the handshake is done (TestLeafNodeNoPingBeforeConnect).
    this.nextPingAt = Infinity;
  }

  logPrefix(): string {
    const a = this.remoteAddr.includes(':') ? `[${this.remoteAddr}]` : this.remoteAddr;
    return `${a}:${this.remotePort} - lid:${this.cid}`;
  }

  protected onRead(chunk: Buffer): void {
    this.input(chunk);
  }

  protected markDirty(): void {
    this.host.markDirty(this);
  }

  protected onUnstall(): void {
    this.host.onLeafDrained(this);
  }

  protected onClose(reason: CloseReasonText): void {
    this.host.onLeafClosed(this, reason);
  }

  /** Read from the socket now (plaintext). */
  start(): void {
    const s = this.socket;
    s.setNoDelay(true);
    this.watch(s);
    this.secured = true;
    this.listen(s);
    s.resume();
  }

  /**
   * TLS after the INFO (leafnode.go): the hub sends its INFO in plaintext and accepts the
   * handshake; the leaf starts it once the INFO (or its remote's `tls` block) says so. Input
   * read before the handshake is over is a protocol error on the plaintext socket, so the
   * plain socket is not read meanwhile.
   */
  startTls(t: TlsOptions, dialHost: string | null, onSecure: () => void): void {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    this.secured = false;
    this.startTlsHandshake(t, dialHost, dialHost === null && t.verify, (s: TLSSocket) => {
      this.secured = true;
      this.listen(s);
      onSecure();
    });
  }

  /** The handshake is done (registered): pings start about a second from now. */
  startPings(): void {
    this.schedulePing(LEAF_FIRST_PING_MS);
    // The leaf side pings every interval whether or not there is traffic (leafnode.go), as
    // if it always wanted a round-trip sample.
    if (this.toHub) this.rttRefreshMs = 0;
  }

  /** One read from the socket. */
  input(chunk: Buffer): void {
    if (this.closed) return;
    this.lastInboundAt = Date.now();
    this.host.beforeLeafRead(this);
    try {
      this.parser.parse(chunk);
    } catch (err) {
      log.error(`${this.logPrefix()} - internal error processing leafnode input: ${(err as Error).stack}`);
      this.close(CloseReason.internalError, false);
    }
    this.host.afterLeafRead(this);
  }

  override tick(now: number): void {
    if (!this.closing && this.handshakeDeadline !== 0 && now >= this.handshakeDeadline) {
      this.handshakeDeadline = 0;
      this.host.onLeafDeadline(this);
      return;
    }
    super.tick(now);
  }

  // -------------------------------------------------------------- parser callbacks

  onControl(op: PeerOpCode, line: Buffer, as: number, ae: number): void {
    if (isTrace()) this.traceIn(peerOpName(op), ae > as ? line.toString('utf8', as, ae) : undefined);
    // On the hub side nothing but CONNECT comes first (the control plane refuses the rest).
    if (!this.didSolicit && !this.connectReceived) {
      this.host.onLeafControl(this, op, line, as, ae);
      return;
    }
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
        this.host.onLeafControl(this, op, line, as, ae);
    }
  }

  onMsg(m: MsgView): void {
    this.inMsgs++;
    this.inBytes += m.pe - m.ps;
    if (isTrace()) log.trace(`${this.logPrefix()} - <<- [${m.hdr >= 0 ? 'HMSG' : 'LMSG'} ${m.sb.toString('utf8', m.ss, m.se)} ${m.pe - m.ps}]`);
    this.host.onLeafMsg(this, m);
  }

  onParseError(kind: 'op' | 'args', detail: string): void {
    if (this.closing) return;
    if (kind === 'op' && !this.didSolicit && !this.connectReceived) {
      // Anything but CONNECT first on the hub side (nats-server parses SUB/PUB there too).
      log.error(`${this.logPrefix()} - authentication error`);
      this.fatal('Authorization Violation', CloseReason.authenticationViolation);
      return;
    }
    if (kind === 'op') {
      log.error(`${this.logPrefix()} - Leafnode parser ERROR, proto=${detail}`);
      this.sendErr('Unknown Protocol Operation');
      this.close(CloseReason.protocolViolation, true);
      return;
    }
    log.error(`${this.logPrefix()} - ${detail}`);
    this.close(CloseReason.protocolViolation, true);
  }

  // -------------------------------------------------------------------- output

  /**
   * Append `LMSG <subject>` (or HMSG) and the canonical tail ` [reply ][hdr ]size\r\n
   * <payload>\r\n` taken as is from a worker's ring record: two copies.
   */
  writeTail(m: MsgView): void {
    if (this.closing) return;
    const ss = m.ss;
    const se = m.se;
    const out = this.reserve(5 + (se - ss) + (m.te - m.ts));
    this.outPos = putSubjectTail(out, this.outView, put(out, this.outPos, m.hdr > 0 ? HMSG : LMSG, 0, 5), m);
  }

  /**
   * Append one LMSG/HMSG with `qCount` queue names, [start, end) pairs in `m.sb`. Headers are
   * stripped for a peer that did not say headers:true (nats-server does the same).
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
    const need = 5 + (m.se - m.ss) + (qCount > 0 ? 2 + (replyLen >= 0 ? replyLen + 1 : 0) + qBytes : replyLen + 1) + sizesLength(hdr, total);
    const out = this.reserve(need);
    let o = this.outPos;
    o = put(out, o, hdr >= 0 ? HMSG : LMSG, 0, 5);
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
