// One gateway connection: a server-to-server connection (conn/peer.ts: the gateway row of the
// parser, PING, RMSG/HMSG writers) with what only a gateway has: the `_GR_.` reply prefix where
// the control plane asks for it, PINGs at most 15 s apart, and the interest-mode state.
// Connections are one-way as in nats-server 2.9.10: an outbound (we dialled) carries our
// messages and brings the remote cluster's interest; an inbound (we accepted) brings messages
// and carries our interest. What a gateway *means* (handshake, names, gossip, interest modes)
// is the gateway control plane's (cluster/gateway-control.ts); this file turns bytes into
// calls on a GatewayHost and back.
//
// Runs on the gateway thread only.

import type { Socket } from 'node:net';
import type { Options } from '../config/options.ts';
import type { ServerInfo } from '../protocol/peer-info.ts';
import type { MsgView } from '../protocol/msg-view.ts';
import { PeerConn, PEER_ROLES, type PeerHost } from './peer.ts';

/** What a gateway connection needs from the control plane that owns it. */
export interface GatewayHost extends PeerHost<GatewayConn> {
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

export class GatewayConn extends PeerConn<GatewayConn, GatewayHost> {
  /** We dialled it: it carries our messages. */
  readonly outbound: boolean;
  /** The remote gateway (cluster) name: the one we dialled, or the one an inbound's INFO gave. */
  name: string;
  /** The URL we dialled (outbound). */
  readonly url: URL | null;
  remoteServerName = '';
  remoteInfo: ServerInfo | null = null;
  /** Do not re-dial after this connection closes (a second outbound to the same name). */
  noReconnect = false;
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
  private sawInput = false;

  constructor(host: GatewayHost, opts: Options, socket: Socket, cid: number, name: string, url: URL | null) {
    super(PEER_ROLES.gateway, host, opts, socket, cid);
    this.outbound = url !== null;
    this.name = name;
    this.url = url;
    this.alwaysPing = true;
    // No PING before the handshake: the outbound starts after its CONNECT, the inbound after the peer's.
    this.nextPingAt = Infinity;
  }

  protected override pingIntervalMs(): number {
    return Math.min(this.opts.pingIntervalMs, GATEWAY_MAX_PING_INTERVAL_MS);
  }

  /** Start pinging (about 1 s from now). */
  startPinging(): void {
    this.schedulePing(FIRST_PING_MS);
  }

  protected override refusesFirstRead(chunk: Buffer): boolean {
    if (this.outbound || this.sawInput) return false;
    this.sawInput = true;
    // parser.go: before CONNECT an operation that does not start with C is refused.
    if (chunk.length > 0 && chunk[0] !== 67 && chunk[0] !== 99) {
      this.host.earlyOperation(this);
      return true;
    }
    return false;
  }

  /** gateway.go: an inbound's first operation must be CONNECT. */
  protected override awaitingConnect(): boolean {
    return !this.outbound && !this.connectReceived;
  }

  protected override beforePong(): void {
    this.host.beforePong(this);
  }

  protected override replyPrefix(m: MsgView): Buffer | null {
    return this.host.replyPrefix(this, m);
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
}
