// One route connection: a server-to-server connection (conn/peer.ts: parser, PING, RMSG/HMSG
// writers) with what only a route has: its dial bookkeeping, the first PING about 1 s after
// it starts, and +OK after each message to a verbose peer. What a route *means*
// (registration, interest, forwarding) is the cluster's job (cluster/route-control.ts,
// cluster/bridge.ts); this file turns bytes into calls on a RouteHost and back.
//
// Runs on the route thread only.

import type { Socket } from 'node:net';
import type { Options } from '../config/options.ts';
import type { ServerInfo } from '../protocol/peer-info.ts';
import type { MsgView } from '../protocol/msg-view.ts';
import { PeerConn, PEER_ROLES, type PeerHost } from './peer.ts';

// ---------------------------------------------------------------------------------------
// The route connection

const OK = Buffer.from('+OK\r\n');

/** What a route connection needs from the cluster that owns it. */
export type RouteHost = PeerHost<RouteConn>;

/** First PING on a route: about 1s after creation (nats-server firstPingInterval + 0-20%). */
const FIRST_PING_MS = 1000;

export class RouteConn extends PeerConn<RouteConn, RouteHost> {
  /** We dialled this connection. */
  didSolicit: boolean;
  /** The URL we dialled (or, for an accepted route, one built from the peer's INFO). */
  url: URL | null;
  /** An explicitly configured route (re-dialled forever), as opposed to a gossiped one. */
  explicit: boolean;
  /** Re-dial after a disconnect even when accepted (nats-server's route.retry, set on duplicates). */
  retry = false;
  /** A dialled route whose TLS handshake failed: retried as after a failed dial. */
  onTlsFailure: ((err: Error) => void) | null = null;
  remoteName = '';
  remoteInfo: ServerInfo | null = null;
  connectUrls: string[] = [];
  verbose = false;

  constructor(host: RouteHost, opts: Options, socket: Socket, rid: number, solicitUrl: URL | null, explicit: boolean) {
    super(PEER_ROLES.route, host, opts, socket, rid);
    this.didSolicit = solicitUrl !== null;
    this.url = solicitUrl;
    this.explicit = explicit;
    this.schedulePing(FIRST_PING_MS);
  }

  protected override begin(s: Socket): void {
    super.begin(s);
    // The route starts now (after a TLS handshake): its first PING about 1s from here.
    this.schedulePing(FIRST_PING_MS);
  }

  override onMsg(m: MsgView): void {
    super.onMsg(m);
    if (this.verbose) this.queue(OK);
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
