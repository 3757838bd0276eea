// One leaf-node connection: a server-to-server connection (conn/peer.ts: the leafnode row of
// the parser, LS+/LS-, LMSG/HMSG without an account, PING) with what only a leaf connection
// has: TLS after the INFO, the handshake deadlines, and its remote's bookkeeping. What the
// connection *means* (handshake, which side is the hub, interest, forwarding) is the leaf
// control plane's (cluster/leaf-control.ts) and the bridge's (cluster/bridge.ts); this file
// turns bytes into calls on a LeafHost and back.
//
// Runs on the leaf thread only.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Options, TlsOptions } from '../config/options.ts';
import { log } from '../log.ts';
import { CloseReason } from './base.ts';
import { PeerConn, PEER_ROLES, type PeerHost } from './peer.ts';

/** What a leaf connection needs from the leaf control plane that owns it. */
export interface LeafHost extends PeerHost<LeafConn> {
  /** A deadline of the handshake passed (no INFO from the hub, no connect_info INFO). */
  onLeafDeadline(c: LeafConn): void;
}

/** First PING: about 1s after CONNECT (hub side, + 0-20%) or after registering (leaf side). */
export const LEAF_FIRST_PING_MS = 1000;

export class LeafConn extends PeerConn<LeafConn, LeafHost> {
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
  private cluster = '';
  /**
   * The peer's `cluster` as bytes, or null: the origin of every message it sends (MsgView.ob),
   * which routes carry on (`LMSG <origin> ...`) and which keeps a routed copy from coming back
   * down another connection of that cluster.
   */
  origin: Buffer | null = null;
  remoteName = '';
  /** CONNECT sent (solicited side). */
  connectSent = false;
  /** The peer's INFO said info_on_connect: it answers our CONNECT with a connect_info INFO. */
  awaitingConnectInfo = false;
  /** A handshake deadline (ms): no INFO within 1s, no connect_info INFO within 2s; 0: none. */
  handshakeDeadline = 0;
  /**
   * What this peer was told (nats-server's leaf smap): `subject` or `subject queue` → count
   * (plain: how many sources have interest; queue: the summed weight).
   */
  readonly smap = new Map<string, number>();

  get remoteCluster(): string {
    return this.cluster;
  }

  set remoteCluster(name: string) {
    this.cluster = name;
    this.origin = name === '' ? null : Buffer.from(name, 'utf8');
  }

  constructor(host: LeafHost, opts: Options, socket: Socket, lid: number, url: URL | null, remoteIndex: number) {
    super(PEER_ROLES.leaf, host, opts, socket, lid);
    this.didSolicit = url !== null;
    this.url = url;
    this.remoteIndex = remoteIndex;
    // No PING before the handshake is done (TestLeafNodeNoPingBeforeConnect).
    this.nextPingAt = Infinity;
  }

  /** Plaintext: read from the socket now (the connection's start time stays its creation). */
  protected override begin(s: Socket): void {
    this.secured = true;
    this.listen(s, !this.mayStartTlsLater());
    s.resume();
  }

  /** A leaf that dialled its hub starts TLS when the hub's INFO asks for it (startTls). */
  protected override mayStartTlsLater(): boolean {
    return this.didSolicit;
  }

  /** The hub's INFO left this dialled leaf in plaintext: it reads into the thread's buffer from now on. */
  staysPlaintext(): void {
    this.reuseReadBuffer();
  }

  /**
   * TLS after the INFO (leafnode.go): the hub sends its INFO in plaintext and accepts the
   * handshake; the leaf starts it once the INFO (or its remote's `tls` block) says so. Input
   * read before the handshake is over is a protocol error on the plaintext socket, so the
   * plain socket is not read meanwhile.
   */
  override startTls(t: TlsOptions, dialHost: string | null, onSecure: () => void): void {
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

  override tick(now: number): void {
    if (!this.closing && this.handshakeDeadline !== 0 && now >= this.handshakeDeadline) {
      this.handshakeDeadline = 0;
      this.host.onLeafDeadline(this);
      return;
    }
    super.tick(now);
  }

  /** On the hub side nothing but CONNECT comes first (the control plane refuses the rest). */
  protected override awaitingConnect(): boolean {
    return !this.didSolicit && !this.connectReceived;
  }

  override onParseError(kind: 'op' | 'args', detail: string): void {
    if (!this.closing && kind === 'op' && this.awaitingConnect()) {
      // Anything but CONNECT first on the hub side (nats-server parses SUB/PUB there too).
      log.error(`${this.logPrefix()} - authentication error`);
      this.fatal('Authorization Violation', CloseReason.authenticationViolation);
      return;
    }
    super.onParseError(kind, detail);
  }
}
