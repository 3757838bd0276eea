// The route control plane: how this server's routes come to be and go, as nats-server 2.9.10
// runs it (route.go): handshake, authorization, cluster-name negotiation, first-registered-wins
// duplicates, gossip of new peers and implicit routes, solicitation with retries, client URLs,
// reload and lame duck mode. What routes carry (interest and messages to and from the other
// threads) is the bridge's (bridge.ts), which a gateway or leaf thread reuses.
//
// Runs on the route thread only.

import net from 'node:net';
import os from 'node:os';
import dns from 'node:dns';
import { randomBytes } from 'node:crypto';
import { nextConnectionId, type SharedLayout } from '../threads/shared.ts';
import type { Options, TlsOptions } from '../config/options.ts';
import type { ServerIdentity } from '../protocol/info.ts';
import { PROTOCOL_VERSION, SKEIN_VERSION } from '../protocol/info.ts';
import type { ControlMessage } from '../threads/control.ts';
import { isValidSubscribeSubject } from '../protocol/subject.ts';
import { RouteConn, sameRoute } from '../conn/route.ts';
import { PeerOp, type PeerOpCode } from '../protocol/peer-parser.ts';
import type { MsgView } from '../protocol/msg-view.ts';
import {
  decodePeerConnect,
  decodeServerInfo,
  routeConnectJson,
  serverInfoJson,
  type PeerConnect,
  type ServerInfo,
} from '../protocol/peer-info.ts';
import { JsonSyntaxError, JsonTypeError, type JsonDecodeError } from '../protocol/gojson.ts';
import { CloseReason, type CloseReasonText } from '../conn/base.ts';
import { log } from '../log.ts';
import { SUBJECT_ENCODING } from '../protocol/bytes.ts';
import { joinHostPort, redactedUrl, splitAdvertise, splitHostPort, urlHostname } from '../protocol/hostport.ts';
import { mapCertificateToUser } from '../conn/tls.ts';
import { comparePasswords, isBcrypt } from '../conn/auth.ts';
import { Bridge } from './bridge.ts';
import { PeerControl } from './peer-control.ts';
import { gatewayHash, gossipInfoLine } from './gateway-control.ts';

/** What main hands the route thread (plus its MessagePort). */
export interface ClusterTask {
  thread: number;
  layout: SharedLayout;
  options: Options;
  identity: ServerIdentity;
  clusterName: string;
  clusterDynamic: boolean;
  /** The resolved cluster listen port (a random port already picked). */
  clusterPort: number;
  /** This server's client URLs (`host:port`), first in every connect_urls. */
  clientUrls: string[];
  /** This server's gateway URL (route INFO `gateway_url`), with gateways. */
  gatewayUrl?: string;
  /** The gateways this server has an outbound to (a replacement route thread's start). */
  gatewayOutbounds?: { name: string; urls: string[] }[];
  /** This server's leaf URL (`host:port`) for route peers to give their leafs, if it accepts leafs and advertises. */
  leafUrl?: string;
  replacement: boolean;
}

// route.go / const.go timings.
const ROUTE_CONNECT_DELAY_MS = 1000; // between dial attempts
const ROUTE_RECONNECT_DELAY_MS = 1000; // before re-dialling an explicit route after a disconnect
const ROUTE_DIAL_TIMEOUT_MS = 1000;
const CONNECT_ERROR_REPORTS = 3600; // first connection: log an error every N failures
// nats-server 2.9.10 re-dials a route rejected for its cluster name every second, forever,
// and logs the rejection each time on both sides. skein logs a given mismatch once (repeats
// at debug level) and doubles the re-dial delay up to this cap until a route registers.
const NAME_CONFLICT_MAX_DELAY_MS = 30_000;
const NONCE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function newNonce(): string {
  let s = '';
  for (const b of randomBytes(15)) s += NONCE_CHARS[b & 63];
  return s;
}

export class RouteControl extends PeerControl<RouteConn> {
  private readonly identity: ServerIdentity;
  private readonly notify: (m: ControlMessage) => void;
  private readonly layout: SharedLayout;

  // Cluster identity.
  private clusterName: string;
  private dynamic: boolean;
  private readonly infoHost: string;
  private readonly infoPort: number;
  private readonly infoIp: string | undefined;
  // Reloadable (SIGHUP).
  private authUser: string | undefined;
  private authPass: string | undefined;
  private authTimeoutMs: number;
  /** cluster.tls: both sides of every route present a certificate and verify the peer's. */
  private tls: TlsOptions | undefined;
  /** The first host name among the configured routes: the name to verify a peer dialled by IP against (route.go saveRouteTLSName). */
  private readonly routeTlsName: string | undefined;
  /** Cluster passwords that are bcrypt hashes are compared on a hashing thread (conn/auth.ts). */
  // Reloadable (SIGHUP).
  private clientUrls: string[];
  private noAdvertise: boolean;
  /** The CONNECT each accepted route authenticated with, to check it again on reload. */
  private readonly routeConnects = new WeakMap<RouteConn, PeerConnect>();
  private readonly selfAddresses = new Set<string>();
  private readonly explicitRoutes: URL[] = [];

  // Routes: every connection is the bridge's (bridge.conns); registered ones by server id here.
  private readonly remotes = new Map<string, RouteConn>();
  private readonly peerUrls = new Map<string, number>();
  /** Route peers' leaf URLs (their INFO `leafnode_urls`), by peer server id, for our leafs' INFO. */
  private readonly peerLeafUrls = new Map<string, string[]>();
  private readonly leafUrl: string | undefined;
  /** Cluster-name mismatches already logged: peer server id or dialled host:port → their name. */
  private readonly nameConflicts = new Map<string, string>();
  /** Re-dials in a row that ended in a cluster-name mismatch, by dialled host:port. */
  private readonly conflictRedials = new Map<string, number>();
  /** Routes closed for a mismatch already logged: their close line goes to debug. */
  private readonly quietRoutes = new WeakSet<RouteConn>();
  /** Accepted routes whose "Route connection created" line waits for their CONNECT. */
  private readonly unannounced = new WeakSet<RouteConn>();

  /** What the routes carry, to and from the other threads. */
  readonly bridge: Bridge<RouteConn>;
  private readonly gatewayUrl: string | undefined;
  /** `_GR_.<our cluster hash>.<our server hash>.`, with gateways. */
  private readonly gatewayReplyPrefix: Buffer | null;
  /** Gateways this server has an outbound to: name → the cmd 1 INFO every route peer gets (gateway.go). */
  private readonly gatewayGossip = new Map<string, string>();

  constructor(task: ClusterTask, notify: (m: ControlMessage) => void) {
    const o = task.options;
    const c = o.cluster!;
    super(o, task.thread, 'route thread');
    this.layout = task.layout;
    this.identity = task.identity;
    this.notify = notify;
    this.clusterName = task.clusterName;
    this.dynamic = task.clusterDynamic;
    this.clientUrls = task.clientUrls;
    this.leafUrl = task.leafUrl;
    this.noAdvertise = c.noAdvertise;
    this.authUser = c.authorization?.user;
    this.authPass = c.authorization?.password;
    this.authTimeoutMs = c.authorization?.timeoutMs ?? 2000;
    this.tls = c.tls;
    if (this.authPass !== undefined && isBcrypt(this.authPass)) this.checker.warm();
    this.routeTlsName = c.routes
      .map((r) => {
        try {
          return urlHostname(new URL(r));
        } catch {
          return '';
        }
      })
      .find((h) => h !== '' && net.isIP(h) === 0);
    if (this.tls?.insecure)
      log.warn('TLS certificate chain and hostname of solicited routes will not be verified. DO NOT USE IN PRODUCTION!');
    if (c.advertise !== undefined && c.advertise !== '') {
      const [h, p] = splitAdvertise(c.advertise, task.clusterPort);
      this.infoHost = h;
      this.infoPort = p;
      this.infoIp = `nats-route://${joinHostPort(h, p)}/`;
    } else {
      this.infoHost = c.host;
      this.infoPort = task.clusterPort;
      this.infoIp = undefined;
    }
    // Every ip:port that reaches this server's route listener: never dial those.
    for (const addrs of Object.values(os.networkInterfaces())) {
      for (const a of addrs ?? []) {
        for (const p of new Set([this.infoPort, task.clusterPort])) this.selfAddresses.add(joinHostPort(a.address, p));
      }
    }
    for (const r of c.routes) {
      try {
        this.explicitRoutes.push(new URL(r));
      } catch {
        log.error(`Error parsing route URL ${JSON.stringify(r)}`);
      }
    }

    this.bridge = new Bridge(o, task.layout, task.thread, task.replacement, {
      verb: 'RS',
      noun: 'route',
      // With gateways: a `_GR_.` reply for another server of the cluster, from the gateway thread.
      interceptRecord: o.gateway !== undefined ? (_from, m) => this.routeGatewayReply(m) : undefined,
    });
    this.gatewayReplyPrefix =
      o.gateway !== undefined ? Buffer.from(`_GR_.${gatewayHash(o.gateway.name)}.${gatewayHash(task.identity.serverId)}.`) : null;
    this.gatewayUrl = task.gatewayUrl;
    if (task.gatewayOutbounds !== undefined) this.setGatewayOutbounds(task.gatewayOutbounds);
  }

  start(): void {
    this.running = true;
    this.bridge.start();
    for (const u of this.explicitRoutes) this.connectToRoute(u, true, true);
  }

  // ====================================================================== identity

  private routeInfo(nonce: boolean): Record<string, unknown> {
    const info: Record<string, unknown> = {
      server_id: this.identity.serverId,
      server_name: this.identity.serverName,
      version: PROTOCOL_VERSION,
      proto: 2,
      go: `skein ${SKEIN_VERSION} (node ${process.version})`,
      host: this.infoHost,
      port: this.infoPort,
      headers: true,
      auth_required: this.authUser !== undefined,
      tls_required: this.tls !== undefined,
      tls_verify: this.tls !== undefined,
      max_payload: this.opts.maxPayload,
      ip: this.infoIp,
      nonce: nonce ? newNonce() : undefined,
      cluster: this.clusterName,
      cluster_dynamic: this.dynamic,
      connect_urls: this.noAdvertise ? undefined : this.clientUrls,
      gateway_url: this.gatewayUrl,
      leafnode_urls: this.leafUrl === undefined ? undefined : [this.leafUrl],
      // We speak LS+/LS-/LMSG with the leaf origin cluster (route.go: always true).
      lnoc: true,
    };
    return info;
  }

  private setClusterName(name: string): void {
    this.clusterName = name;
    log.info(`Cluster name updated to ${name}`);
    this.publishClientInfo();
  }

  /** Tell main (and so every client) the cluster name and the client URLs. */
  private publishClientInfo(): void {
    let urls: string[] | undefined;
    if (!this.noAdvertise && this.peerUrls.size > 0) urls = [...this.clientUrls, ...this.peerUrls.keys()];
    else if (!this.noAdvertise && this.urlsPublished) urls = [...this.clientUrls];
    if (urls !== undefined) this.urlsPublished = true;
    this.notify({ type: 'cluster-info', cluster: this.clusterName, connectUrls: urls });
  }

  private urlsPublished = false;

  /** Tell the leaf thread (through main) the route peers' leaf URLs: its leafs get them in INFO leafnode_urls. */
  private publishLeafUrls(): void {
    this.notify({ type: 'leaf-urls', urls: [...new Set([...this.peerLeafUrls.values()].flat())] });
  }

  private addPeerUrls(urls: string[]): void {
    let changed = false;
    for (const u of urls) {
      const n = this.peerUrls.get(u) ?? 0;
      this.peerUrls.set(u, n + 1);
      if (n === 0) changed = true;
    }
    if (changed) this.publishClientInfo();
  }

  private removePeerUrls(urls: string[]): void {
    let changed = false;
    for (const u of urls) {
      const n = this.peerUrls.get(u) ?? 0;
      if (n <= 1) {
        if (n === 1) changed = true;
        this.peerUrls.delete(u);
      } else {
        this.peerUrls.set(u, n - 1);
      }
    }
    if (changed) this.publishClientInfo();
  }

  // ====================================================================== connections

  /** An accepted route socket handed over by main. */
  addInbound(socket: net.Socket, rid: number): void {
    if (!this.running) {
      socket.destroy();
      return;
    }
    this.openRoute(socket, rid, null, false, null);
  }

  /**
   * route.go createRoute: a route on an accepted or a dialled socket. With cluster.tls the
   * handshake comes first, before any INFO (conn/base.ts); a dialled route whose handshake
   * fails is retried as after any failed dial (`onDialFailure`).
   */
  private openRoute(
    socket: net.Socket,
    rid: number,
    url: URL | null,
    explicit: boolean,
    onDialFailure: ((err: Error) => void) | null,
  ): void {
    const r = new RouteConn(this, this.opts, socket, rid, url, explicit);
    this.bridge.attach(r);
    if (this.tls === undefined) {
      this.createRoute(r);
      r.start();
      this.bridge.flushPeers();
      return;
    }
    r.onTlsFailure = onDialFailure;
    let dialHost: string | null = null;
    if (url !== null) {
      const host = urlHostname(url);
      dialHost = net.isIP(host) !== 0 && this.routeTlsName !== undefined ? this.routeTlsName : host;
    }
    r.startTls(this.tls, dialHost, () => {
      this.createRoute(r);
      this.bridge.flushPeers();
    });
  }

  /** The route exists (plaintext, or its TLS handshake completed): CONNECT and INFO go out. */
  private createRoute(r: RouteConn): void {
    const url = r.url;
    // An accepted route's input before its CONNECT goes line by line, so a CONNECT whose
    // bcrypt password is checked off this thread holds what follows (conn/auth.ts InputGate).
    if (url === null && this.authUser !== undefined) r.authGated = true;
    if (url !== null) {
      // The solicitor sends CONNECT and its INFO at once, without waiting for the peer's.
      log.debug(`${r.logPrefix()} - Route connect msg sent`);
      r.queueString(
        `CONNECT ${routeConnectJson({
          user: url.username ? decodeURIComponent(url.username) : undefined,
          pass: url.password ? decodeURIComponent(url.password) : undefined,
          name: this.identity.serverId,
          cluster: this.clusterName,
          dynamic: this.dynamic,
          tls: this.tls !== undefined,
        })}\r\n`,
      );
    } else if (this.authUser !== undefined) {
      r.authDeadline = Date.now() + this.authTimeoutMs;
    }
    r.queueString(`INFO ${serverInfoJson(this.routeInfo(true))} \r\n`);
    if (url === null)
      this.unannounced.add(r); // logged once its CONNECT says who it is
    else if (this.conflictRedials.has(url.host)) log.debug(`${r.logPrefix()} - Route connection created`);
    else log.info(`${r.logPrefix()} - Route connection created`);
  }

  onPeerControl(r: RouteConn, op: PeerOpCode, line: Buffer, as: number, ae: number): void {
    // With route authorization on, an accepted route must start with CONNECT.
    if (op !== PeerOp.connect && !r.didSolicit && !r.connectReceived && this.authUser !== undefined) {
      this.authViolation(r);
      return;
    }
    switch (op) {
      case PeerOp.connect:
        this.processConnect(r, line.toString('utf8', as, ae));
        return;
      case PeerOp.info:
        this.processInfo(r, line.toString('utf8', as, ae));
        return;
      case PeerOp.rsPlus:
      case PeerOp.lsPlus:
        this.remoteSub(r, line.toString(SUBJECT_ENCODING, as, ae), op === PeerOp.lsPlus);
        return;
      case PeerOp.rsMinus:
      case PeerOp.lsMinus:
        this.remoteUnsub(r, line.toString(SUBJECT_ENCODING, as, ae));
        return;
      case PeerOp.err: {
        // Any -ERR from a route closes it (client.go processErr).
        const text = line.toString('utf8', as, ae);
        const theirs = /^'Rejecting connection, cluster name "[^"]*" does not match "([^"]*)"'$/.exec(text);
        if (theirs !== null && r.url !== null) {
          this.nameConflict(r, r.url.host, theirs[1], `${r.logPrefix()} - Route Error ${text}`);
          r.close(CloseReason.clusterNameConflict, false);
          return;
        }
        log.error(`${r.logPrefix()} - Route Error ${text}`);
        r.close(CloseReason.parseError, false);
        return;
      }
      default:
        return;
    }
  }

  private authViolation(r: RouteConn): void {
    this.announce(r, false);
    log.error(`${r.logPrefix()} - authentication error`);
    r.sendErr('Authorization Violation');
    r.close(CloseReason.authenticationViolation, true);
  }

  private processConnect(r: RouteConn, json: string): void {
    const c = decodePeerConnect(json);
    if (!isDecoded(c)) {
      this.announce(r, false);
      this.badJson(r, 'CONNECT', json, c);
      return;
    }
    const ok = this.authUser !== undefined && !r.didSolicit && !r.connectReceived ? this.routeAuthorized(r, c) : true;
    this.decideConnect(
      r,
      ok,
      () => this.acceptConnect(r, c),
      () => this.authViolation(r),
    );
  }

  /** auth.go isRouterAuthorized: the peer's certificate names the route user (verify_and_map), or user and password match. */
  private routeAuthorized(r: RouteConn, c: PeerConnect): boolean | Promise<boolean> {
    if (this.tls?.map) return r.peerCert !== null && mapCertificateToUser(r.peerCert, [this.authUser!]) !== null;
    if (c.user !== this.authUser) return false;
    return comparePasswords(this.checker, this.authPass ?? '', c.pass);
  }

  /**
   * A CONNECT or INFO nats-server could not unmarshal: a field of the wrong type is logged in
   * Go's words, as nats-server logs it; text that is not JSON as skein always has.
   */
  private badJson(r: RouteConn, what: 'CONNECT' | 'INFO', json: string, err: JsonDecodeError): void {
    if (err instanceof JsonSyntaxError)
      log.error(`${r.logPrefix()} - Router parser ERROR: invalid ${what} ${JSON.stringify(json.slice(0, 64))}`);
    else log.error(`${r.logPrefix()} - ${err.message}`);
    r.close(CloseReason.protocolViolation, false);
  }

  /** The rest of a route CONNECT, once it is authorized. */
  private acceptConnect(r: RouteConn, c: PeerConnect): void {
    r.authGated = false;
    this.routeConnects.set(r, c);
    // A client that dialled the route port: clients send `lang`, routes never do.
    if (c.lang !== '') {
      this.announce(r, false);
      log.error(`${r.logPrefix()} - attempted to connect to route port`);
      r.sendErr('attempted to connect to route port');
      r.close(CloseReason.wrongPort, true);
      return;
    }
    if (c.gateway !== '') {
      const text = `Rejecting connection from gateway ${JSON.stringify(c.gateway)} on the Route port`;
      this.announce(r, false);
      log.error(`${r.logPrefix()} - ${text}`);
      r.sendErr(text);
      r.close(CloseReason.wrongGateway, true);
      return;
    }
    const theirs = c.cluster;
    if (theirs !== this.clusterName) {
      const theirDynamic = c.cluster_dynamic;
      // Adopt their name when ours was generated and theirs is configured or sorts higher.
      // An empty name is never adopted (nats-server would; that only hides a broken peer).
      if (theirs !== '' && this.dynamic && (!theirDynamic || this.clusterName < theirs)) {
        if (!theirDynamic) this.dynamic = false;
        this.setClusterName(theirs);
        this.removeAllRoutesExcept(r);
      } else {
        const text = `Rejecting connection, cluster name ${JSON.stringify(theirs)} does not match ${JSON.stringify(this.clusterName)}`;
        this.nameConflict(r, c.name !== '' ? c.name : r.remoteAddr, theirs, `${r.logPrefix()} - ${text}`);
        r.sendErr(text);
        r.close(CloseReason.clusterNameConflict, true);
        return;
      }
    }
    this.announce(r, false);
    r.connectReceived = true;
    r.authDeadline = 0;
    if (r.remoteId === '') r.remoteId = c.name;
    r.headers = c.headers;
    r.verbose = c.verbose;
    r.lnoc = c.lnoc;
  }

  /**
   * A route refused for its cluster name: the first time for this peer and name at error
   * level, repeats at debug level with the route's created/closed lines, so a persistent
   * mismatch (two configs that disagree) logs once instead of every second.
   */
  private nameConflict(r: RouteConn, peer: string, theirName: string, text: string): void {
    if (this.nameConflicts.get(peer) === theirName) {
      this.announce(r, true);
      log.debug(text);
      this.quietRoutes.add(r);
      return;
    }
    this.nameConflicts.set(peer, theirName);
    this.announce(r, false);
    log.error(`${text} (logged once while it lasts; re-dials back off up to ${NAME_CONFLICT_MAX_DELAY_MS / 1000}s)`);
  }

  /** The "Route connection created" line of an accepted route, once. */
  private announce(r: RouteConn, quiet: boolean): void {
    if (!this.unannounced.delete(r)) return;
    if (quiet) log.debug(`${r.logPrefix()} - Route connection created`);
    else log.info(`${r.logPrefix()} - Route connection created`);
  }

  private removeAllRoutesExcept(keep: RouteConn): void {
    for (const r of [...this.bridge.conns]) if (r !== keep) r.close(CloseReason.clusterNameConflict, false);
  }

  private processInfo(r: RouteConn, json: string): void {
    this.announce(r, false);
    const info = decodeServerInfo(json);
    if (!isDecoded(info)) {
      this.badJson(r, 'INFO', json, info);
      return;
    }
    const id = info.server_id;
    if (id === this.identity.serverId) {
      // A route to ourselves (a config listing every member): drop it, never re-dial it.
      r.remoteId = id;
      r.close(CloseReason.duplicateRoute, false);
      return;
    }
    const theirCluster = info.cluster;
    if (theirCluster !== '' && theirCluster !== this.clusterName) {
      if (this.dynamic && (!info.cluster_dynamic || this.clusterName < theirCluster)) {
        this.setClusterName(theirCluster);
        this.removeAllRoutesExcept(r);
      } else {
        if (!r.infoReceived) {
          this.nameConflict(
            r,
            id,
            theirCluster,
            `${r.logPrefix()} - Cluster name ${JSON.stringify(theirCluster)} ` +
              `of remote server ${JSON.stringify(id)} does not match ${JSON.stringify(this.clusterName)}`,
          );
        }
        r.close(CloseReason.clusterNameConflict, false);
        return;
      }
    }
    if (r.infoReceived) {
      if (info.gateway !== '') {
        this.gatewayFromRoute(r, info);
        return;
      }
      if (r.remoteId !== '' && r.remoteId !== id) {
        this.processImplicitRoute(info);
        return;
      }
      if (info.ldm && r.connectUrls.length > 0 && !this.noAdvertise) {
        // The peer is entering lame-duck mode: stop offering its URLs to clients.
        const urls = r.connectUrls;
        r.connectUrls = [];
        this.removePeerUrls(urls);
      }
      return;
    }
    const name = info.server_name;
    if (!r.didSolicit && name !== '' && name === this.identity.serverName) {
      log.error(`${r.logPrefix()} - Remote server has a duplicate name: ${JSON.stringify(name)}`);
      r.close(CloseReason.duplicateServerName, false);
      return;
    }
    r.infoReceived = true;
    r.remoteId = id;
    r.remoteName = name;
    r.remoteInfo = info;
    r.headers = info.headers;
    // The peer takes `LMSG <origin> ...` and `LS+ <origin> ...` (route.go: route.lnoc).
    r.lnoc = info.lnoc;
    r.connectUrls = info.connect_urls;
    const port = info.port;
    if (r.url === null) {
      // Where to re-dial this peer if we ever must (duplicate-route retry): its advertised
      // `ip`, else its TCP source address with the route port from its INFO.
      try {
        r.url = new URL(info.ip !== '' ? info.ip : `nats-route://${joinHostPort(r.remoteAddr, port)}/`);
      } catch {
        r.url = null;
      }
    }

    const existing = this.remotes.get(id);
    let displaced: RouteConn | null = null;
    if (existing !== undefined && !existing.closed && this.keepsNewRoute(existing, r, id, info)) {
      displaced = existing;
    } else if (existing !== undefined && !existing.closed) {
      // First registered wins (2.9.10). If the loser was the one we dialled, the winner
      // inherits its solicited state so the peer is re-dialled if the winner drops; both
      // sides may keep opposite sockets and close both, so the winner retries anyway.
      if (r.didSolicit) {
        existing.didSolicit = true;
        existing.url = r.url;
        existing.explicit = r.explicit;
      }
      existing.retry = true;
      log.debug(`${r.logPrefix()} - Detected duplicate remote route ${JSON.stringify(id)}`);
      r.close(CloseReason.duplicateRoute, false);
      return;
    }
    this.remotes.set(id, r);
    r.registered = true;
    // A route that registers ends any name mismatch with this peer: log the next one again.
    this.nameConflicts.delete(id);
    if (r.url !== null) {
      this.nameConflicts.delete(r.url.host);
      this.conflictRedials.delete(r.url.host);
    }
    log.debug(`${r.logPrefix()} - Registering remote route ${JSON.stringify(id)}`);
    this.bridge.register(r);
    // gateway.go: a new route hears of every gateway we have an outbound to; the gateway
    // thread learns the peer's gateway URL (and server name, for its duplicate check).
    for (const line of this.gatewayGossip.values()) r.queueString(line);
    if (this.gatewayUrl !== undefined)
      this.notify({ type: 'gateway-route-peer', add: true, gatewayUrl: info.gateway_url, serverName: name, serverId: id });
    if (displaced !== null) {
      // r takes over from the route it displaces (already announced to the other peers).
      log.debug(
        `${displaced.logPrefix()} - Detected duplicate remote route ${JSON.stringify(id)}, keeping the one ` +
          `${r.didSolicit ? 'this server' : 'the remote server'} dialled`,
      );
      if (displaced.didSolicit) {
        r.didSolicit = true;
        r.url = displaced.url;
        r.explicit = displaced.explicit;
      }
      r.retry = true;
    } else if (this.remotes.size > 1) {
      // Gossip: every other peer learns about the newcomer and dials it.
      const ip = info.ip !== '' ? info.ip : `nats-route://${joinHostPort(r.remoteAddr, port)}/`;
      const line = `INFO ${serverInfoJson({ ...info, nonce: '', ip })}\r\n`;
      for (const other of this.remotes.values()) if (other !== r) other.queueString(line);
    }
    if (!this.noAdvertise) this.addPeerUrls(r.connectUrls);
    if (info.leafnode_urls.length > 0) {
      this.peerLeafUrls.set(id, info.leafnode_urls);
      this.publishLeafUrls();
    }
    displaced?.close(CloseReason.duplicateRoute, false);
  }

  /**
   * Two servers that dial each other at the same moment each register the route they
   * dialled and close the other's as a duplicate, so both routes close and the pair is
   * re-dialled a second later: nats-server 2.9.10 flaps like that on every simultaneous
   * start. Between skein servers both ends keep the route dialled by the server with the
   * smaller server id instead, so they keep the same socket. With any other peer the first
   * registered route wins, as in 2.9.10 (the peer decides the same way).
   */
  private keepsNewRoute(existing: RouteConn, r: RouteConn, peerId: string, info: ServerInfo): boolean {
    const peerIsSkein = info.go.startsWith('skein ');
    if (!peerIsSkein || r.didSolicit === existing.didSolicit) return false;
    const dialler = (x: RouteConn): string => (x.didSolicit ? this.identity.serverId : peerId);
    return dialler(r) < dialler(existing);
  }

  /** A route peer's gateway gossip (cmd 1): the gateway thread makes sure it has an outbound there. */
  private gatewayFromRoute(r: RouteConn, info: ServerInfo): void {
    if (info.gateway_cmd !== 1) return;
    if (this.gatewayUrl === undefined) {
      log.error(`Received information about gateway ${JSON.stringify(info.gateway)} from ${r.remoteId}, but gateway is not configured`);
      return;
    }
    this.notify({ type: 'gateway-gossip', gateway: info.gateway, urls: info.gateway_urls });
  }

  /** The gateway thread's outbounds changed: route peers hear of each new one (or its new URLs). */
  setGatewayOutbounds(outbounds: { name: string; urls: string[] }[]): void {
    const id = `GW${this.identity.serverId}`;
    for (const { name, urls } of outbounds) {
      const line = gossipInfoLine(id, name, urls);
      if (this.gatewayGossip.get(name) === line) continue;
      this.gatewayGossip.set(name, line);
      for (const r of this.remotes.values()) if (!r.closing) r.queueString(line);
    }
    const names = new Set(outbounds.map((o) => o.name));
    for (const name of [...this.gatewayGossip.keys()]) if (!names.has(name)) this.gatewayGossip.delete(name);
    this.bridge.flushPeers();
  }

  /** Gossip about a server we may not know: dial it unless known, ourselves or configured. */
  private processImplicitRoute(info: ServerInfo): void {
    const id = info.server_id;
    if (id === '' || id === this.identity.serverId || this.remotes.has(id)) return;
    const hp = joinHostPort(info.host, info.port).toLowerCase();
    for (const u of this.explicitRoutes) if (u.host.toLowerCase() === hp) return;
    if (info.ip === '') return;
    let url: URL;
    try {
      url = new URL(info.ip);
    } catch {
      log.error(`Error parsing URL from INFO: ${JSON.stringify(info.ip)}`);
      return;
    }
    if (info.auth_required && this.authUser !== undefined) {
      url.username = encodeURIComponent(this.authUser);
      url.password = encodeURIComponent(this.authPass ?? '');
    }
    this.connectToRoute(url, false, true);
  }

  onPeerClosed(r: RouteConn, reason: CloseReasonText): void {
    if (!r.secured) {
      // Its TLS handshake did not complete: the route never existed (the handshake error is
      // logged); a dialled one is tried again as after a failed dial.
      this.bridge.detach(r);
      if (this.running) r.onTlsFailure?.(new Error(r.tlsError !== '' ? r.tlsError : 'connection closed during the TLS handshake'));
      return;
    }
    this.announce(r, this.quietRoutes.has(r));
    this.bridge.detach(r);
    if (this.quietRoutes.has(r)) log.debug(`${r.logPrefix()} - Router connection closed: ${reason}`);
    else log.info(`${r.logPrefix()} - Router connection closed: ${reason}`);
    if (r.registered) {
      r.registered = false;
      if (this.remotes.get(r.remoteId) === r) this.remotes.delete(r.remoteId);
      if (this.gatewayUrl !== undefined)
        this.notify({
          type: 'gateway-route-peer',
          add: false,
          gatewayUrl: r.remoteInfo?.gateway_url ?? '',
          serverName: r.remoteName,
          serverId: r.remoteId,
        });
      if (!this.noAdvertise && r.connectUrls.length > 0) this.removePeerUrls(r.connectUrls);
      if (this.remotes.get(r.remoteId) === undefined && this.peerLeafUrls.delete(r.remoteId)) this.publishLeafUrls();
    }
    this.bridge.unregister(r);
    if (!this.running) return;
    this.bridge.flushMesh();
    // client.go reconnect(): re-dial what we dialled (and duplicates' survivors).
    const retryImplicit = r.retry || (r.didSolicit && !r.explicit);
    if (!(r.didSolicit || retryImplicit) || r.url === null) return;
    if (r.remoteId !== '' && this.remotes.has(r.remoteId)) {
      log.debug(`Not attempting reconnect for solicited route, already connected to ${JSON.stringify(r.remoteId)}`);
      return;
    }
    if (r.remoteId === this.identity.serverId) {
      log.debug(`Detected route to self, ignoring ${JSON.stringify(redactedUrl(r.url))}`);
      return;
    }
    log.debug(`Attempting reconnect for solicited route ${JSON.stringify(redactedUrl(r.url))}`);
    const url = r.url;
    const explicit = r.explicit;
    let delay = Math.floor(Math.random() * 100) + (explicit ? ROUTE_RECONNECT_DELAY_MS : 0);
    if (reason === CloseReason.clusterNameConflict) {
      const inARow = (this.conflictRedials.get(url.host) ?? 0) + 1;
      this.conflictRedials.set(url.host, inARow);
      delay = Math.min(ROUTE_RECONNECT_DELAY_MS * 2 ** (inARow - 1), NAME_CONFLICT_MAX_DELAY_MS) + Math.floor(Math.random() * 100);
      log.debug(`Cluster name mismatch with ${JSON.stringify(redactedUrl(url))}: re-dialling in ${delay} ms`);
    }
    this.later(delay, () => this.connectToRoute(url, explicit, false));
  }

  // ====================================================================== soliciting

  /**
   * route.go connectToRoute: explicit routes are dialled until they connect; gossiped ones
   * once plus `connect_retries`. Addresses that reach this server are skipped quietly.
   */
  private connectToRoute(url: URL, tryForever: boolean, firstConnect: boolean): void {
    let attempts = 0;
    const attempt = (): void => {
      if (!this.running) return;
      // A configured route removed by a reload is not dialled any more.
      if (tryForever && !this.explicitRoutes.some((u) => sameRoute(u.href, url.href))) return;
      void this.resolveRoute(url).then((address) => {
        if (!this.running) return;
        if (address === null) {
          log.debug(`Not dialling route ${JSON.stringify(redactedUrl(url))}: it resolves to this server`);
          return;
        }
        if (typeof address !== 'string') {
          failed(address);
          return;
        }
        log.debug(`Trying to connect to route on ${url.host} (${address})`);
        const { host, port } = splitHostPort(address)!; // joinHostPort made it
        this.dial(
          host,
          Number(port),
          address,
          ROUTE_DIAL_TIMEOUT_MS,
          () => true,
          (socket) => {
            this.openRoute(socket, nextConnectionId(this.layout.ids), url, tryForever, failed);
          },
          failed,
        );
      });
    };
    const failed = (err: Error): void => {
      attempts++;
      const text = `Error trying to connect to route (attempt ${attempts}): ${err.message}`;
      const report = firstConnect ? attempts === 1 || attempts % CONNECT_ERROR_REPORTS === 0 : true;
      if (report) log.error(text);
      else log.debug(text);
      if (!tryForever) {
        const retries = this.opts.cluster?.connectRetries ?? 0;
        if (retries <= 0 || attempts > retries) return;
      }
      this.later(ROUTE_CONNECT_DELAY_MS, attempt);
    };
    attempt();
  }

  /** One address to dial, null when every address is this server, or the lookup error. */
  private async resolveRoute(url: URL): Promise<string | null | Error> {
    const host = urlHostname(url);
    const port = url.port;
    let ips: string[];
    if (net.isIP(host) !== 0) {
      ips = [host];
    } else {
      try {
        ips = (await dns.promises.lookup(host, { all: true })).map((a) => a.address);
      } catch (err) {
        return new Error(`lookup for host ${JSON.stringify(host)}: ${(err as Error).message}`);
      }
    }
    ips = ips.filter((ip) => !this.selfAddresses.has(joinHostPort(ip, port)));
    if (ips.length === 0) return null;
    return joinHostPort(ips[Math.floor(Math.random() * ips.length)], port);
  }

  // ====================================================================== interest

  /** RS+ / LS+ from a peer. */
  private remoteSub(r: RouteConn, args: string, hasOrigin: boolean): void {
    const a = args.split(/[ \t]+/).filter((x) => x !== '');
    const off = hasOrigin ? 1 : 0;
    if (a.length !== 2 + off && a.length !== 4 + off) {
      log.error(`${r.logPrefix()} - processRemoteSub Parse Error: '${args}'`);
      r.close(CloseReason.protocolViolation, true);
      return;
    }
    if (!r.registered) return;
    const acc = a[off];
    const subject = a[off + 1];
    if (acc !== '$G') {
      // skein has only the global account; nats-server's $SYS interest is expected noise.
      log.debug(`${r.logPrefix()} - Unknown account ${JSON.stringify(acc)} for remote subject ${JSON.stringify(subject)}`);
      return;
    }
    if (!isValidSubscribeSubject(subject)) {
      log.error(`${r.logPrefix()} - Could not insert subscription: invalid subject ${JSON.stringify(subject)}`);
      r.sendErr('Invalid Subscription');
      return;
    }
    const queue = a.length === 4 + off ? a[off + 2] : null;
    const parsed = queue === null ? 1 : Number.parseInt(a[off + 3], 10);
    const weight = Number.isFinite(parsed) && parsed > 0 ? parsed : 1;
    // `LS+ <origin>`: a leaf cluster's interest; its leafs will not hear it from us (leafnode.go updateLeafNodes).
    if (!this.bridge.peerSubscribed(r, subject, queue, weight, hasOrigin ? a[0] : null)) return;
    if (r.verbose) r.queueString('+OK\r\n');
  }

  /** RS- / LS- from a peer: the arguments are exactly the subscription's key. */
  private remoteUnsub(r: RouteConn, args: string): void {
    const a = args.split(/[ \t]+/).filter((x) => x !== '');
    if (a.length !== 2 && a.length !== 3) {
      log.error(`${r.logPrefix()} - processRemoteUnsub parse error: '${args}'`);
      r.close(CloseReason.protocolViolation, true);
      return;
    }
    if (a[0] !== '$G') return;
    this.bridge.peerUnsubscribed(r, a.length === 2 ? a[1] : `${a[1]} ${a[2]}`);
    if (r.verbose) r.queueString('+OK\r\n');
  }

  // ====================================================================== messages

  /** A message read from a route: from a registered peer, for the global account, to the bridge. */
  onPeerMsg(r: RouteConn, m: MsgView): void {
    if (!r.registered) {
      if (this.authUser !== undefined && !r.didSolicit && !r.connectReceived) this.authViolation(r);
      return;
    }
    if (!m.isGlobalAccount()) {
      log.debug(
        `${r.logPrefix()} - Unknown account ${JSON.stringify(m.account())} for routed message on subject: ${JSON.stringify(m.subject())}`,
      );
      return;
    }
    // A reply that came back through a gateway to another server of this cluster, forwarded
    // here because it is ours (gateway.go handleGatewayReply): delivered without the prefix.
    if (
      this.gatewayReplyPrefix !== null &&
      m.se - m.ss > this.gatewayReplyPrefix.length &&
      m.sb[m.ss] === 95 /* _ */ &&
      m.sb.subarray(m.ss, m.ss + 5).toString('latin1') === '_GR_.'
    ) {
      const p = this.gatewayReplyPrefix;
      if (p.equals(m.sb.subarray(m.ss, m.ss + p.length))) m.ss += p.length;
    }
    this.bridge.fromPeer(r, m);
  }

  /**
   * A record from the gateway thread for a `_GR_.` reply that names another server of this
   * cluster: it goes to that server's route only, whatever the interest (bridge hook).
   */
  private routeGatewayReply(m: MsgView): boolean {
    if (this.gatewayReplyPrefix === null || m.se - m.ss < 19 || m.sb[m.ss] !== 95) return false;
    if (m.sb.subarray(m.ss, m.ss + 5).toString('latin1') !== '_GR_.') return false;
    const serverHash = m.sb.toString('latin1', m.ss + 12, m.ss + 18);
    for (const r of this.remotes.values()) {
      if (r.closing || gatewayHash(r.remoteId) !== serverHash) continue;
      r.outMsgs++;
      r.outBytes += m.pe - m.ps;
      r.writeMsg(m, m.queues, 0);
      break;
    }
    return true;
  }

  // ====================================================================== monitoring

  /** Registered routes (one per peer server), for monitoring. */
  registeredRoutes(): IterableIterator<RouteConn> {
    return this.remotes.values();
  }

  /** The cluster name as currently negotiated, for monitoring. */
  get name(): string {
    return this.clusterName;
  }

  // ====================================================================== operations

  /**
   * Config reload (control message from main; reload.go clusterOption, routesOption and the
   * route part of reloadAuthorization): pings, deadlines and route credentials apply at
   * once; an accepted route whose credentials no longer pass is closed; removed routes are
   * closed and not dialled again, added ones are dialled.
   */
  reload(next: Options, clientUrls: string[], added: string[], removed: string[]): void {
    this.reloadOptions(next);
    const c = next.cluster;
    if (c === undefined) return; // clustering cannot be turned off by a reload (refused before)
    this.authUser = c.authorization?.user;
    this.authPass = c.authorization?.password;
    this.authTimeoutMs = c.authorization?.timeoutMs ?? 2000;
    // Rotated route certificates: routes dialled or accepted from now on use the new block
    // (a secure context is built for it on first use); turning TLS on or off was refused.
    if (c.tls !== undefined) this.tls = c.tls;
    if (this.authUser !== undefined) {
      // reload.go reloadAuthorization: accepted routes are checked again (not the ones we
      // dialled: we do not know what the peer requires of us).
      for (const r of [...this.bridge.conns]) {
        if (r.didSolicit || !r.connectReceived || r.closing) continue;
        const connect = this.routeConnects.get(r);
        const ok = connect === undefined ? false : this.routeAuthorized(r, connect);
        const verdict = (yes: boolean): void => {
          if (yes || r.closing) return;
          r.retry = false;
          this.authViolation(r);
          this.bridge.flushAll();
        };
        if (ok instanceof Promise) void ok.then(verdict, () => verdict(false));
        else verdict(ok);
      }
    }
    const urlsChanged = this.noAdvertise !== c.noAdvertise || this.clientUrls.join() !== clientUrls.join();
    this.noAdvertise = c.noAdvertise;
    this.clientUrls = clientUrls;
    if (c.name !== undefined && c.name !== this.clusterName) {
      this.dynamic = false;
      this.setClusterName(c.name);
    } else if (urlsChanged) {
      this.publishClientInfo();
    }
    for (const text of removed) {
      const i = this.explicitRoutes.findIndex((u) => sameRoute(u.href, text));
      if (i >= 0) this.explicitRoutes.splice(i, 1);
      for (const r of [...this.bridge.conns]) {
        if (r.url === null || !sameRoute(r.url.href, text)) continue;
        // Not re-dialled (client.go setNoReconnect).
        r.didSolicit = false;
        r.retry = false;
        r.explicit = false;
        r.close(CloseReason.routeRemoved, true);
        log.info(`Removed route ${text}`);
      }
    }
    for (const text of added) {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        log.error(`Error parsing route URL ${JSON.stringify(text)}`);
        continue;
      }
      this.explicitRoutes.push(url);
      this.connectToRoute(url, true, true);
    }
    this.bridge.flushAll();
  }

  /** Lame duck mode (server.go sendLDMToRoutes): every route gets our INFO once with ldm:true. */
  lameDuck(): void {
    const line = `INFO ${serverInfoJson({ ...this.routeInfo(false), ldm: true })}\r\n`;
    for (const r of this.remotes.values()) if (!r.closing) r.queueString(line);
    this.bridge.flushPeers();
  }
}

/** A CONNECT or INFO that decoded (not the error that refused it). */
function isDecoded<T extends object>(v: T | JsonDecodeError): v is T {
  return !(v instanceof JsonSyntaxError) && !(v instanceof JsonTypeError);
}
