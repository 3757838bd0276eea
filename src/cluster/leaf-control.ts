// The leaf-node control plane, as nats-server 2.9.10 runs it (leafnode.go): the hub side
// (INFO at once, CONNECT with authorization, cluster-name and duplicate checks, the connect_info
// INFO and the interest dump), the leaf side (remotes dialled and redialled with nats-server's
// timing, the hub's INFO checked, CONNECT, URL lists rebuilt from every INFO), loop detection
// with the `$LDS.` subject, and the per-connection interest rules (which side is the hub decides
// who hears whose interest and messages). What leaf connections carry to and from the other
// threads is the bridge's (bridge.ts), shared with routes; this file is the bridge's scope.
//
// Runs on the leaf thread only.

import net from 'node:net';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { nextConnectionId, type SharedLayout } from '../threads/shared.ts';
import type { LeafNodeOptions, LeafRemoteOptions, Options, TlsOptions } from '../config/options.ts';
import { DEFAULT_LEAFNODE_PORT, DEFAULT_TLS_TIMEOUT_MS } from '../config/options.ts';
import type { ServerIdentity } from '../protocol/info.ts';
import { PROTOCOL_VERSION, SKEIN_VERSION } from '../protocol/info.ts';
import { ThreadRole } from '../threads/roles.ts';
import { isValidSubscribeSubject } from '../protocol/subject.ts';
import { LeafConn, type LeafHost } from '../conn/leaf.ts';
import { PeerOp, type PeerOpCode } from '../protocol/peer-parser.ts';
import type { MsgView } from '../protocol/msg-view.ts';
import { decodeServerInfo, serverInfoJson, type ServerInfo } from '../protocol/peer-info.ts';
import { CloseReason, type CloseReasonText } from '../conn/base.ts';
import { log } from '../log.ts';
import { bytesEqual, SUBJECT_ENCODING } from '../protocol/bytes.ts';
import { joinHostPort, redactedUrl, splitAdvertise, urlHostname } from '../protocol/hostport.ts';
import { comparePasswords, isBcrypt } from '../conn/auth.ts';
import { PeerControl, type InterestSnapshot } from './peer-control.ts';
import { Bridge, pickWhere, type BridgeScope } from './bridge.ts';

/** What main hands the leaf thread (plus its MessagePort). */
export interface LeafTask {
  thread: number;
  layout: SharedLayout;
  options: Options;
  identity: ServerIdentity;
  /** The resolved leaf listen port (0: this server does not accept leafs). */
  leafPort: number;
  replacement: boolean;
}

// leafnode.go / const.go timings.
const LEAF_DIAL_TIMEOUT_MS = 1000;
/** A dialled leaf waits this long for the hub's INFO (leafnode.go: 1s). */
const LEAF_INFO_WAIT_MS = 1000;
/** ... and this long for the connect_info INFO after its CONNECT (Stale Leaf Node Connection). */
const LEAF_CONNECT_INFO_WAIT_MS = 2000;
/** After a loop or a same-cluster-name rejection a leaf waits this long before dialling again. */
const LEAF_LOOP_DELAY_MS = 30_000;
/** Log a failed dial at error level on attempt 1 and every this many attempts. */
const CONNECT_ERROR_REPORTS = 3600;
const NUID_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const NONCE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Every 2.9.10 server without a shared JetStream domain denies these on leaf connections, both ways. */
const JS_DENIED_PREFIXES = ['$JS.API.', '$KV.', '$OBJ.'];
const LDS_PREFIX = '$LDS.';
/** A gateway-routed reply subject (gateway.go gwReplyPrefix). */
const GW_REPLY_PREFIX = Buffer.from('_GR_.');
/** What a hub with gateways announces to its leafs for routed replies (gateway.go oldGWReplyPrefix, gwReplyPrefix). */
const OLD_GW_REPLY_SUBJECT = '$GR.*.>';
const GW_REPLY_SUBJECT = '_GR_.>';

function nuid22(): string {
  let s = '';
  for (const b of randomBytes(22)) s += NUID_CHARS[b % NUID_CHARS.length];
  return s;
}

function newNonce(): string {
  let s = '';
  for (const b of randomBytes(15)) s += NONCE_CHARS[b & 63];
  return s;
}

const JS_DENIED_PREFIX_BYTES = JS_DENIED_PREFIXES.map((p) => Buffer.from(p));

/** A subject JetStream's leaf denies cover (never announced, a literal LS+ for one is refused). */
function jsDenied(subject: string): boolean {
  if (subject.charCodeAt(0) !== 36) return false; // '$'
  for (const p of JS_DENIED_PREFIXES) if (subject.startsWith(p)) return true;
  return false;
}

/** Is the literal subject b[s, e) one the denies cover (a message nats-server does not deliver over a leaf connection)? */
function jsDeniedBytes(b: Uint8Array, s: number, e: number): boolean {
  if (b[s] !== 36) return false; // '$'
  for (const p of JS_DENIED_PREFIX_BYTES) if (e - s > p.length && bytesEqual(b, s, s + p.length, p, 0, p.length)) return true;
  return false;
}

/** The leaf CONNECT fields skein reads (leafnode.go leafConnectInfo), Go's zero values when absent. */
interface LeafConnect {
  version: string;
  user: string;
  pass: string;
  name: string;
  server_id: string;
  cluster: string;
  headers: boolean;
  is_hub: boolean;
  lang: string;
  gateway: string;
}

function readLeafConnect(json: string): LeafConnect | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const str = (k: string): string => (typeof o[k] === 'string' ? o[k] : '');
  return {
    version: str('version'),
    user: str('user'),
    pass: str('pass'),
    name: str('name'),
    server_id: str('server_id'),
    cluster: str('cluster'),
    headers: o.headers === true,
    is_hub: o.is_hub === true,
    lang: str('lang'),
    gateway: str('gateway'),
  };
}

/** One `leafnodes.remotes` entry as it is dialled: its URL list and the connection it keeps. */
interface Remote {
  readonly index: number;
  readonly opts: LeafRemoteOptions;
  /** The configured URLs (kept at the end of `urls`). */
  readonly configured: URL[];
  /** What is dialled, head first (leafnode.go pickNextURL). */
  urls: URL[];
  current: URL | null;
  conn: LeafConn | null;
  /** A longer wait before the next dial (a loop, a same-cluster-name rejection); 0: none. */
  connectDelayMs: number;
  attempts: number;
  /** The userinfo of the first configured URL, reused for URLs learned from the hub. */
  readonly username: string;
  readonly password: string;
}

export class LeafControl extends PeerControl<LeafConn> implements LeafHost, BridgeScope<LeafConn> {
  private readonly layout: SharedLayout;
  private readonly identity: ServerIdentity;
  private leaf: LeafNodeOptions;
  /** This server's `$LDS.` subject: a leaf connection announcing it back is a loop. */
  readonly lds = `${LDS_PREFIX}${nuid22()}`;
  /** This server's cluster name as a leaf peer sees it (its cluster, or its server_name when standalone with remotes). */
  private clusterName: string;
  private readonly clustered: boolean;
  /** This server has a gateway block (nats-server's s.gateway.enabled). */
  private readonly gatewaysEnabled: boolean;
  /** `host:port` leafs dial this server on (our own entry in leafnode_urls). */
  private readonly leafUrl: string;
  private readonly infoHost: string;
  private readonly infoPort: number;
  /** Leaf URLs of route peers (the rest of leafnode_urls). */
  private peerLeafUrls: string[] = [];
  private readonly remotes: Remote[] = [];
  /** Scratch for relay(): the peers one message goes to. */
  private readonly relayTargets: LeafConn[] = [];
  /** Per thread: is it a client worker (its interest and messages reach every leaf connection)? */
  private readonly isWorker: boolean[] = [];

  /** What leaf connections carry, to and from the other threads. */
  readonly bridge: Bridge<LeafConn>;

  constructor(task: LeafTask) {
    const o = task.options;
    super(o, task.thread, 'leaf thread');
    this.layout = task.layout;
    this.identity = task.identity;
    this.leaf = o.leafNodes!;
    this.clustered = o.cluster !== undefined;
    this.gatewaysEnabled = o.gateway !== undefined;
    // The identity's cluster is the gateway's name when no cluster block names one (server.ts,
    // server.go validateCluster); leafnode.go: a standalone server with remotes takes its
    // server_name as cluster name.
    this.clusterName = task.identity.cluster ?? (this.leaf.remotes.length > 0 && o.serverName !== undefined ? o.serverName : '');
    for (let t = 0; t < task.layout.threads; t++) this.isWorker.push(task.layout.roles[t] === ThreadRole.worker);
    const l = this.leaf;
    [this.infoHost, this.infoPort] = leafInfoAddress(l, task.leafPort);
    this.leafUrl = joinHostPort(this.infoHost, this.infoPort);
    const a = l.authorization;
    if ((a?.password !== undefined && isBcrypt(a.password)) || a?.users?.some((u) => isBcrypt(u.password))) this.checker.warm();
    l.remotes.forEach((r, index) => {
      const configured: URL[] = [];
      for (const text of r.urls) {
        try {
          configured.push(new URL(text));
        } catch {
          log.error(`Error parsing leafnode remote URL ${JSON.stringify(text)}`);
        }
      }
      // nats-server shuffles the configured URLs (no_randomize is not supported by skein).
      for (let i = configured.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [configured[i], configured[j]] = [configured[j], configured[i]];
      }
      const first = configured.find((u) => u.username !== '');
      this.remotes.push({
        index,
        opts: r,
        configured,
        urls: [...configured],
        current: null,
        conn: null,
        connectDelayMs: 0,
        attempts: 0,
        username: first ? decodeURIComponent(first.username) : '',
        password: first ? decodeURIComponent(first.password) : '',
      });
    });
    this.bridge = new Bridge(
      o,
      task.layout,
      task.thread,
      task.replacement,
      {
        verb: 'LS',
        noun: 'leafnode',
        interceptRecord: (from, m) => this.interceptRecord(from, m),
      },
      this,
    );
  }

  start(): void {
    this.running = true;
    this.bridge.start();
    // Our `$LDS.` subject, logged for the client workers. Not for routes: nats-server's acc.lds
    // is no subscription (only each leaf connection's smap holds it), so a route peer never
    // passes it to its own leafs; a leaf's `$LDS.` does cross routes, as that leaf's interest.
    this.bridge.logOwnInterest(this.lds, 1);
    this.bridge.flushMesh();
    for (const r of this.remotes) if (r.urls.length > 0) this.connectToRemote(r, true);
  }

  // ====================================================================== identity

  /** The leaf INFO (leafnode.go): the first one with a nonce, the connect_info answer, or an async update. */
  private leafInfo(c: LeafConn | null, kind: 'first' | 'connect' | 'update'): string {
    const tls = this.leaf.tls;
    const info: Partial<ServerInfo> = {
      server_id: this.identity.serverId,
      server_name: this.identity.serverName,
      version: PROTOCOL_VERSION,
      proto: 1,
      go: `skein ${SKEIN_VERSION} (node ${process.version})`,
      host: this.infoHost,
      port: this.infoPort,
      headers: true,
      auth_required: true, // always, as nats-server's
      tls_required: tls !== undefined,
      tls_verify: tls?.verify === true,
      max_payload: this.opts.maxPayload,
      ip: this.leafUrl,
      client_id: kind === 'update' || c === null ? undefined : c.cid,
      nonce: kind === 'first' ? newNonce() : undefined,
      // The cluster name; a standalone server with remotes names its server_name (leafnode.go).
      cluster: this.clusterName !== '' ? this.clusterName : undefined,
      info_on_connect: true,
      connect_info: kind === 'connect',
      leafnode_urls: [this.leafUrl, ...this.peerLeafUrls],
      remote_account: kind === 'connect' ? '$G' : undefined,
    };
    return `INFO ${serverInfoJson(info)} \r\n`;
  }

  // ====================================================================== connections

  /** An accepted leaf socket handed over by main: the hub side. */
  addInbound(socket: net.Socket, lid: number): void {
    if (!this.running) {
      socket.destroy();
      return;
    }
    const c = new LeafConn(this, this.opts, socket, lid, null, -1);
    this.bridge.attach(c);
    log.info(`${c.logPrefix()} - Leafnode connection created`);
    // The auth timer always runs on the hub side, credentials configured or not.
    c.authDeadline = Date.now() + this.leaf.authTimeoutMs;
    c.queueString(this.leafInfo(c, 'first'));
    const tls = this.leaf.tls;
    if (tls === undefined) {
      c.start();
      this.bridge.flushPeers();
      return;
    }
    // The INFO goes out in plaintext; then the leaf starts the TLS handshake.
    c.flush();
    c.startTls(tls, null, () => this.bridge.flushPeers());
  }

  onPeerControl(c: LeafConn, op: PeerOpCode, line: Buffer, as: number, ae: number): void {
    // The hub side: the first operation must be CONNECT.
    if (!c.didSolicit && !c.connectReceived && op !== PeerOp.connect) {
      log.error(`${c.logPrefix()} - authentication error`);
      c.fatal('Authorization Violation', CloseReason.authenticationViolation);
      return;
    }
    switch (op) {
      case PeerOp.connect:
        if (c.didSolicit) return;
        this.processConnect(c, line.toString('utf8', as, ae));
        return;
      case PeerOp.info:
        this.processInfo(c, line.toString('utf8', as, ae));
        return;
      case PeerOp.lsPlus:
      case PeerOp.rsPlus:
        this.leafSub(c, line.toString(SUBJECT_ENCODING, as, ae));
        return;
      case PeerOp.lsMinus:
      case PeerOp.rsMinus:
        this.leafUnsub(c, line.toString(SUBJECT_ENCODING, as, ae));
        return;
      case PeerOp.err:
        this.processErr(c, line.toString('utf8', as, ae));
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- hub side

  private processConnect(c: LeafConn, json: string): void {
    if (c.connectReceived) return;
    const cc = readLeafConnect(json);
    if (cc === null) {
      // nats-server closes silently on a CONNECT it cannot unmarshal.
      log.error(`${c.logPrefix()} - Leafnode parser ERROR: invalid CONNECT ${JSON.stringify(json.slice(0, 64))}`);
      c.close(CloseReason.protocolViolation, false);
      return;
    }
    const ok = this.authorized(cc);
    if (ok instanceof Promise) {
      c.socket.pause();
      void ok.then((yes) => {
        if (c.closed) return;
        this.acceptConnect(c, cc, yes);
        this.bridge.flushAll();
        if (!c.closing) c.socket.resume();
      });
      return;
    }
    this.acceptConnect(c, cc, ok);
  }

  /**
   * auth.go isLeafNodeAuthorized: without a leafnodes authorization block anyone may attach
   * (client auth is not used on the leaf port); a single user, or a users list.
   */
  private authorized(cc: LeafConnect): boolean | Promise<boolean> {
    const a = this.leaf.authorization;
    if (a === undefined) return true;
    if (a.users !== undefined && a.users.length > 0) {
      const u = a.users.find((x) => x.user === cc.user);
      if (u === undefined) return false;
      return comparePasswords(this.checker, u.password, cc.pass);
    }
    if (a.user === undefined) return true;
    if (cc.user !== a.user) return false;
    return comparePasswords(this.checker, a.password ?? '', cc.pass);
  }

  private acceptConnect(c: LeafConn, cc: LeafConnect, authorized: boolean): void {
    if (cc.lang !== '') {
      log.error(`${c.logPrefix()} - attempted to connect to leaf node port`);
      c.fatal('attempted to connect to leaf node port', CloseReason.wrongPort);
      return;
    }
    if (cc.gateway !== '') {
      const text = `Rejecting connection from gateway ${JSON.stringify(cc.gateway)} on the leafnode port`;
      log.error(`${c.logPrefix()} - ${text}`);
      c.fatal(text, CloseReason.wrongGateway);
      return;
    }
    if (!authorized) {
      log.error(`${c.logPrefix()} - authentication error`);
      c.fatal('Authorization Violation', CloseReason.authenticationViolation);
      return;
    }
    if (cc.cluster !== '' && this.clusterName !== '' && cc.cluster === this.clusterName) {
      log.error(`${c.logPrefix()} - remote leafnode has same cluster name`);
      c.fatal('remote leafnode has same cluster name', CloseReason.clusterNamesIdentical);
      return;
    }
    c.connectReceived = true;
    c.authDeadline = 0;
    c.remoteName = cc.name;
    c.remoteId = cc.server_id;
    c.remoteCluster = cc.cluster;
    c.headers = cc.headers;
    // `is_hub`: the dialler is the hub, this server the spoke.
    c.toHub = cc.is_hub;
    // leafnode.go: a new connection with the same name, cluster and account replaces the older.
    if (cc.name !== '') {
      for (const other of this.bridge.peers) {
        if (other === c || other.didSolicit || other.remoteName !== cc.name || other.remoteCluster !== cc.cluster) continue;
        log.warn(`${c.logPrefix()} - Replacing connection from same server`);
        other.fatal('Duplicate Remote LeafNode Connection', CloseReason.duplicateRemoteLeafnodeConnection);
      }
    }
    // The connect_info INFO and the interest dump, in one write.
    c.queueString(this.leafInfo(c, 'connect'));
    this.register(c);
  }

  // ---------------------------------------------------------------- leaf side

  private processInfo(c: LeafConn, json: string): void {
    const info = decodeServerInfo(json);
    if (!('server_id' in info)) {
      log.error(`${c.logPrefix()} - Leafnode parser ERROR: invalid INFO ${JSON.stringify(json.slice(0, 64))}`);
      c.close(CloseReason.protocolViolation, false);
      return;
    }
    if (!c.didSolicit) {
      // An accepted leaf's INFO (pre-2.2 leafs): nothing we need.
      return;
    }
    const remote = this.remotes[c.remoteIndex];
    if (!c.infoReceived) {
      // leafnode.go: a hub's first INFO has a client id and leafnode_urls; anything else is
      // another kind of port.
      if (info.client_id === 0 || !/"leafnode_urls"\s*:/.test(json)) {
        log.error(`${c.logPrefix()} - attempted to connect to wrong port`);
        c.close(CloseReason.wrongPort, false);
        return;
      }
      c.infoReceived = true;
      c.handshakeDeadline = 0;
      c.remoteId = info.server_id;
      c.remoteName = info.server_name;
      c.remoteCluster = info.cluster;
      c.headers = info.headers;
      this.updateUrls(remote, info.leafnode_urls);
      const send = (): void => {
        this.sendConnect(c, remote);
        if (info.info_on_connect) {
          c.awaitingConnectInfo = true;
          c.handshakeDeadline = Date.now() + LEAF_CONNECT_INFO_WAIT_MS;
        } else {
          this.register(c); // a pre-2.2 hub: CONNECT and our dump together
        }
        this.bridge.flushPeers();
      };
      // TLS when the remote has a `tls` block or the hub requires it (then with the system's roots).
      if (remote.opts.tls !== undefined || info.tls_required) {
        const t: TlsOptions = remote.opts.tls ?? { verify: false, map: false, insecure: false, timeoutMs: DEFAULT_TLS_TIMEOUT_MS };
        c.startTls(t, urlHostname(c.url!), send);
        return;
      }
      c.staysPlaintext();
      send();
      return;
    }
    if (info.leafnode_urls.length > 0) this.updateUrls(remote, info.leafnode_urls);
    if (info.cluster !== '') c.remoteCluster = info.cluster;
    if (info.connect_info && c.awaitingConnectInfo) {
      c.awaitingConnectInfo = false;
      c.handshakeDeadline = 0;
      this.register(c);
    }
  }

  /** leafnode.go sendLeafConnect. */
  private sendConnect(c: LeafConn, remote: Remote): void {
    const url = c.url!;
    const user = url.username !== '' ? decodeURIComponent(url.username) : remote.username;
    const pass = url.username !== '' ? decodeURIComponent(url.password) : remote.password;
    const o: Record<string, unknown> = { version: PROTOCOL_VERSION };
    if (user !== '') o.user = user;
    if (pass !== '') o.pass = pass;
    o.tls_required = c.socket !== null && 'encrypted' in c.socket;
    o.server_id = this.identity.serverId;
    o.name = this.identity.serverName;
    if (remote.opts.hub) o.is_hub = true;
    if (this.clusterName !== '') o.cluster = this.clusterName;
    o.headers = true;
    c.connectSent = true;
    c.queueString(`CONNECT ${JSON.stringify(o)}\r\n`);
  }

  /** leafnode.go updateLeafNodeURLs: [advertised URLs we were not configured with] + [configured URLs]. */
  private updateUrls(r: Remote, advertised: string[]): void {
    const configured = new Set(r.configured.map((u) => u.host.toLowerCase()));
    const learned: URL[] = [];
    for (const hp of advertised) {
      if (configured.has(hp.toLowerCase())) continue;
      try {
        const u = new URL(`nats-leaf://${hp}`);
        learned.push(u);
      } catch {
        log.error(`Error parsing url ${JSON.stringify(hp)}`);
      }
    }
    r.urls = [...learned, ...r.configured];
  }

  /** leafnode.go pickNextURL: the head of the list, rotated when the current one is the head. */
  private pickNextUrl(r: Remote): URL {
    if (r.current !== null && r.urls.length > 1 && r.urls[0].host === r.current.host) r.urls.push(r.urls.shift()!);
    r.current = r.urls[0];
    return r.current;
  }

  /** Dial a remote (at start, or after its connection went away), retrying every reconnect interval. */
  private connectToRemote(r: Remote, firstConnect: boolean): void {
    const attempt = (): void => {
      if (!this.running || r.conn !== null) return;
      const url = this.pickNextUrl(r);
      const host = urlHostname(url);
      const port = url.port === '' ? DEFAULT_LEAFNODE_PORT : Number(url.port);
      const hp = joinHostPort(host, port);
      log.debug(`Trying to connect as leafnode to remote server on ${JSON.stringify(hp)}`);
      const wanted = (): boolean => r.conn === null;
      const connected = (socket: net.Socket): void => {
        r.attempts = 0;
        this.openSolicited(r, socket, url);
      };
      this.dial(host, port, hp, LEAF_DIAL_TIMEOUT_MS, wanted, connected, (err) => {
        r.attempts++;
        const text = `Error trying to connect as leafnode to remote server ${JSON.stringify(hp)} (attempt ${r.attempts}): ${err.message}`;
        if (!firstConnect || r.attempts === 1 || r.attempts % CONNECT_ERROR_REPORTS === 0) log.error(text);
        else log.debug(text);
        this.later(this.leaf.reconnectIntervalMs, attempt);
      });
    };
    attempt();
  }

  private openSolicited(r: Remote, socket: net.Socket, url: URL): void {
    const c = new LeafConn(this, this.opts, socket, nextConnectionId(this.layout.ids), url, r.index);
    r.conn = c;
    c.toHub = !r.opts.hub;
    this.bridge.attach(c);
    log.info(`${c.logPrefix()} - Leafnode connection created for account: $G`);
    c.handshakeDeadline = Date.now() + LEAF_INFO_WAIT_MS;
    c.start();
  }

  /** Handshake done on either side: the peer gets our dump and every interest change from now on. */
  private register(c: LeafConn): void {
    c.registered = true;
    c.startPings();
    this.bridge.register(c);
    if (c.didSolicit) log.debug(`${c.logPrefix()} - Registered leafnode with hub ${JSON.stringify(c.remoteName)}`);
  }

  onLeafDeadline(c: LeafConn): void {
    if (!c.infoReceived) {
      // No INFO from the hub within 1s.
      log.debug(`${c.logPrefix()} - no INFO from the leafnode hub within ${LEAF_INFO_WAIT_MS}ms`);
      c.close(CloseReason.readError, false);
    } else if (c.awaitingConnectInfo) {
      log.debug(`${c.logPrefix()} - Stale Leaf Node Connection - Closing`);
      c.fatal('Stale Leaf Node Connection - Closing', CloseReason.staleConnection);
    }
    this.bridge.flushPeers();
  }

  private processErr(c: LeafConn, text: string): void {
    // client.go processErr: a leaf connection only logs a -ERR, except a loop (leafProcessErr).
    log.error(`${c.logPrefix()} - Leafnode Error ${text}`);
    if (text.includes('remote leafnode has same cluster name')) {
      if (c.didSolicit) this.remotes[c.remoteIndex].connectDelayMs = LEAF_LOOP_DELAY_MS;
      log.error(
        `${c.logPrefix()} - Leafnode connection dropped with same cluster name error. Delaying attempt to reconnect for ${LEAF_LOOP_DELAY_MS / 1000}s`,
      );
      return;
    }
    if (text.includes('Loop detected')) this.loopDetected(c, false);
  }

  /** leafnode.go handleLeafNodeLoop: -ERR (when we found it), log, close; a dialled one waits 30s. */
  private loopDetected(c: LeafConn, sendErr: boolean): void {
    if (c.didSolicit) this.remotes[c.remoteIndex].connectDelayMs = LEAF_LOOP_DELAY_MS;
    const text = `Loop detected for leafnode account="$G". Delaying attempt to reconnect for ${LEAF_LOOP_DELAY_MS / 1000}s`;
    if (sendErr) c.sendErr(text);
    log.error(`${c.logPrefix()} - ${text}`);
    c.close(CloseReason.protocolViolation, true);
  }

  onPeerClosed(c: LeafConn, reason: CloseReasonText): void {
    this.bridge.detach(c);
    log.info(`${c.logPrefix()} - Leafnode connection closed: ${reason}${c.registered || c.didSolicit ? ' account: $G' : ''}`);
    if (c.registered) {
      c.registered = false;
      this.bridge.unregister(c);
      c.smap.clear();
    }
    if (this.running) this.bridge.flushMesh();
    if (!c.didSolicit) return;
    const r = this.remotes[c.remoteIndex];
    if (r.conn === c) r.conn = null;
    if (!this.running) return;
    const delay = r.connectDelayMs + this.leaf.reconnectIntervalMs;
    r.connectDelayMs = 0;
    log.debug(`Will try to reconnect to leafnode remote in ${delay}ms`);
    this.later(delay, () => this.connectToRemote(r, false));
  }

  // ====================================================================== interest

  /** LS+ from a peer (leafnode.go processLeafSub). */
  private leafSub(c: LeafConn, args: string): void {
    const a = args.split(/[ \t]+/).filter((x) => x !== '');
    if (a.length !== 1 && a.length !== 3) {
      log.error(`${c.logPrefix()} - processLeafSub Parse Error: '${args}'`);
      c.close(CloseReason.protocolViolation, true);
      return;
    }
    if (!c.registered) return;
    const subject = a[0];
    if (subject === this.lds) {
      // Our own loop-detection subject came back: this connection closes a cycle.
      this.loopDetected(c, true);
      return;
    }
    if (!isValidSubscribeSubject(subject)) {
      log.error(`${c.logPrefix()} - Could not insert subscription: invalid subject ${JSON.stringify(subject)}`);
      c.sendErr('Invalid Subscription');
      return;
    }
    if (jsDenied(subject)) {
      if (!subject.includes('*') && !subject.includes('>')) {
        log.error(`${c.logPrefix()} - Permissions Violation for Subscription to ${JSON.stringify(subject)}`);
        c.fatal(`Permissions Violation for Subscription to ${JSON.stringify(subject)}`, CloseReason.protocolViolation);
      }
      return;
    }
    const queue = a.length === 3 ? a[1] : null;
    const parsed = queue === null ? 1 : Number.parseInt(a[2], 10);
    const weight = Number.isFinite(parsed) && parsed > 0 ? parsed : 1;
    // The leaf's cluster is its interest's origin (for lnoc routes: LS+ <origin>).
    this.bridge.peerSubscribed(c, subject, queue, weight, c.remoteCluster !== '' ? c.remoteCluster : null);
  }

  /** LS- from a peer: the arguments are exactly the subscription's key. */
  private leafUnsub(c: LeafConn, args: string): void {
    const a = args.split(/[ \t]+/).filter((x) => x !== '');
    if (a.length !== 1 && a.length !== 2) {
      log.error(`${c.logPrefix()} - processLeafUnsub Parse Error: '${args}'`);
      c.close(CloseReason.protocolViolation, true);
      return;
    }
    if (!c.registered) return;
    this.bridge.peerUnsubscribed(c, a.length === 1 ? a[0] : `${a[0]} ${a[1]}`);
  }

  /** Does connection `c` hear thread `t`'s interest (and get its messages)? Routes' and gateways' only when we are c's hub. */
  private sees(c: LeafConn, t: number): boolean {
    return this.isWorker[t] || !c.toHub;
  }

  /**
   * Does connection `c` hear peer `p`'s interest (and get its messages)? Not its own; between
   * two connections to hubs of ours never (a leaf announces only local interest, and a hub's
   * messages go down, not up to another hub); not within one leaf cluster (nats-server's
   * origin-cluster check), except `$LDS.` subjects, which must travel to find loops.
   */
  private hears(c: LeafConn, p: LeafConn, subject: string | null): boolean {
    if (c === p || (c.toHub && p.toHub)) return false;
    if (p.remoteCluster !== '' && p.remoteCluster === c.remoteCluster) return subject !== null && subject.startsWith(LDS_PREFIX);
    return true;
  }

  /** Fold one change into what `c` was told, and tell it (leafnode.go updateSmap). */
  private update(c: LeafConn, subject: string, queue: string | null, delta: number): void {
    if (delta === 0 || jsDenied(subject)) return;
    const key = queue === null ? subject : `${subject} ${queue}`;
    const n = c.smap.get(key) ?? 0;
    const m = n + delta;
    if (m > 0) c.smap.set(key, m);
    else c.smap.delete(key);
    if (queue === null) {
      if (n <= 0 && m > 0) c.queueString(`LS+ ${subject}\r\n`, SUBJECT_ENCODING);
      else if (n > 0 && m <= 0) c.queueString(`LS- ${subject}\r\n`, SUBJECT_ENCODING);
      return;
    }
    if (m > 0) c.queueString(`LS+ ${key} ${m}\r\n`, SUBJECT_ENCODING);
    else if (n > 0) c.queueString(`LS- ${key}\r\n`, SUBJECT_ENCODING);
  }

  /**
   * BridgeScope: a thread's interest changed. A leaf of a cluster that has a share of it (the
   * route thread's `LS+ <origin>` interest) hears its weight without that share, which this
   * change does not move (leafnode.go updateLeafNodes: no subscription of the leaf's own origin);
   * `$LDS.` updates go to every leaf, whatever their origin.
   */
  localChanged(t: number, subject: string, queue: string | null, was: number, now: number): void {
    const lds = subject.startsWith(LDS_PREFIX);
    for (const c of this.bridge.peers) {
      if (!this.sees(c, t)) continue;
      if (!lds && c.remoteCluster !== '' && this.bridge.localWithoutOrigin(t, subject, queue, c.remoteCluster) !== undefined) continue;
      this.update(c, subject, queue, now - was);
    }
  }

  /** BridgeScope: thread `t`'s weight without leaf cluster `origin`'s share changed: that cluster's leafs hear it. */
  localOriginChanged(t: number, subject: string, queue: string | null, origin: string, was: number | null, now: number | null): void {
    if (subject.startsWith(LDS_PREFIX)) return;
    const base = this.bridge.localWeight(t, subject, queue);
    const delta = (now ?? base) - (was ?? base);
    if (delta === 0) return;
    for (const c of this.bridge.peers) if (c.remoteCluster === origin && this.sees(c, t)) this.update(c, subject, queue, delta);
  }

  /** BridgeScope: a peer's interest changed: the other leafs that hear it are told. */
  peerChanged(p: LeafConn, subject: string, queue: string | null, was: number, now: number): void {
    for (const c of this.bridge.peers) if (this.hears(c, p, subject)) this.update(c, subject, queue, now - was);
  }

  /** BridgeScope: a newly registered peer's dump (leafnode.go initLeafNodeSmap and sendAllLeafSubs). */
  dumpTo(c: LeafConn): void {
    c.smap.clear();
    const add = (subject: string, queue: string | null, weight: number): void => {
      if (jsDenied(subject)) return;
      const key = queue === null ? subject : `${subject} ${queue}`;
      c.smap.set(key, (c.smap.get(key) ?? 0) + (queue === null ? 1 : weight));
    };
    add(this.lds, null, 1);
    // A server with gateways, hub or leaf: replies to requests routed through a gateway
    // (leafnode.go applyGlobalRouting: the old `$GR.` form and `_GR_.`), whatever the gateway
    // thread logged.
    if (this.gatewaysEnabled) {
      add(OLD_GW_REPLY_SUBJECT, null, 1);
      add(GW_REPLY_SUBJECT, null, 1);
    }
    // A thread's interest without the share of c's own cluster, where it has one (initLeafNodeSmap:
    // no subscription whose origin is the leaf's cluster, `$LDS.` subjects included).
    const cluster = c.remoteCluster;
    for (let t = 0; t < this.layout.threads; t++) {
      if (t === this.thread || !this.sees(c, t)) continue;
      this.bridge.forEachLocal(t, (subject, queue, weight) => {
        const without = cluster !== '' ? this.bridge.localWithoutOrigin(t, subject, queue, cluster) : undefined;
        if (without === undefined) add(subject, queue, weight);
        else if (without > 0) add(subject, queue, without);
      });
    }
    // The dump leaves out a same-cluster peer's `$LDS.` subject too (initLeafNodeSmapAndSendSubs
    // has no exception for it; only later updates do, updateLeafNodes).
    for (const p of this.bridge.peers) {
      if (p === c || !this.hears(c, p, null)) continue;
      for (const sub of p.subs.values()) add(sub.subject, sub.queue, sub.weight);
    }
    let lines = '';
    for (const [key, n] of c.smap) lines += key.includes(' ') ? `LS+ ${key} ${n}\r\n` : `LS+ ${key}\r\n`;
    c.queueString(lines, SUBJECT_ENCODING);
    log.debug(`${c.logPrefix()} - Sent local subscriptions to leafnode`);
  }

  /** BridgeScope: a leaf's interest is local (routes and gateways hear it); our hub's is not. */
  sharesWithRoutes(c: LeafConn): boolean {
    return !c.toHub;
  }

  /**
   * BridgeScope: may message `m` from thread `t` go down/up connection `c`? Not a routed
   * message from a leaf of c's own cluster (`m.os`, the route's LMSG origin): that cluster had it
   * already (client.go processMsgResults, cluster-wide no echo).
   */
  acceptsFrom(c: LeafConn, t: number, m: MsgView): boolean {
    if (m.os >= 0) {
      const o = c.origin;
      if (o !== null && bytesEqual(m.ob, m.os, m.oe, o, 0, o.length)) return false;
    }
    return this.sees(c, t);
  }

  /** BridgeScope: a message from our hub goes to local subscribers, never to the routes (queue groups may be served there). */
  handsPlainTo(p: LeafConn, t: number): boolean {
    return this.isWorker[t] || !p.toHub;
  }

  /** BridgeScope: a message from leaf `from` to the other leafs that hear it (and the queue groups no thread served). */
  relay(from: LeafConn, m: MsgView, groups: number[]): void {
    if (this.bridge.peers.size < 2 || jsDeniedBytes(m.sb, m.ss, m.se)) return;
    const res = this.bridge.peerMatches(m.sb, m.ss, m.se);
    // Counted, not pushed and truncated (as the bridge's targets): no allocation per message.
    const targets = this.relayTargets;
    let nt = 0;
    for (const q of res.plain) {
      if (q.targetPlain || !this.hears(q, from, null)) continue;
      q.targetPlain = true;
      targets[nt++] = q;
    }
    for (let i = 0; i < groups.length; i += 2) {
      const qs = groups[i];
      const qe = groups[i + 1];
      const len = qe - qs;
      for (const g of res.groups) {
        if (g.nameBytes.length !== len || g.nameBytes.compare(m.sb, qs, qe) !== 0) continue;
        const member = pickWhere(g, (s) => this.hears(s.peer, from, null));
        if (member === null) break;
        const q = member.peer;
        if (!q.targetPlain && !q.targetQueued) targets[nt++] = q;
        q.targetQueued = true;
        q.targetGroups.push(qs, qe);
        break;
      }
    }
    const size = m.pe - m.ps;
    for (let i = 0; i < nt; i++) {
      const q = targets[i];
      q.outMsgs++;
      q.outBytes += size;
      q.writeMsg(m, q.targetGroups, q.targetGroups.length >> 1);
      q.targetPlain = false;
      q.targetQueued = false;
      if (q.targetGroups.length !== 0) q.targetGroups.length = 0;
    }
  }

  /** Our logged interest (the peers' union) and, for a client worker, our `$LDS.` subject, for replacement thread `to`. */
  override interestSnapshot(to: number): InterestSnapshot {
    const snap = super.interestSnapshot(to);
    if (to < 0 || this.isWorker[to]) snap.entries.push([this.lds, null, 1]);
    return snap;
  }

  // ====================================================================== messages

  onPeerMsg(c: LeafConn, m: MsgView): void {
    if (!c.registered) {
      if (!c.didSolicit && !c.connectReceived) {
        log.error(`${c.logPrefix()} - authentication error`);
        c.fatal('Authorization Violation', CloseReason.authenticationViolation);
      }
      return;
    }
    // The leaf's cluster is the message's origin, for the routes (LMSG) and their leafs.
    const o = c.origin;
    if (o === null) {
      m.os = -1;
    } else {
      if (m.ob !== o) m.ob = o;
      m.os = 0;
      m.oe = o.length;
    }
    this.bridge.fromPeer(c, m);
  }

  /**
   * A record from another thread, before the bridge routes it by interest (bridge hook): true
   * when it is taken here. A JetStream subject goes down no leaf connection (2.9.10's default
   * denies filter delivery, a `>` of the leaf's included). A worker's record on a
   * gateway-routed reply subject (`_GR_.`: a client answered a request that came from another
   * cluster through our hub, broker.ts publishGatewayReply) goes up every connection to a hub,
   * whatever it announced, and nowhere else (leafnode.go gwLeafSubs: a spoke's `_GR_.>`
   * subscription of its own); the hub sends it on to that cluster.
   */
  private interceptRecord(from: number, m: MsgView): boolean {
    const b = m.sb;
    const s = m.ss;
    if (b[s] === 36) return jsDeniedBytes(b, s, m.se);
    if (
      m.se - s <= GW_REPLY_PREFIX.length ||
      b[s] !== 95 ||
      !this.isWorker[from] ||
      !bytesEqual(b, s, s + GW_REPLY_PREFIX.length, GW_REPLY_PREFIX, 0, GW_REPLY_PREFIX.length)
    )
      return false;
    const size = m.pe - m.ps;
    for (const c of this.bridge.peers) {
      if (!c.toHub) continue;
      c.outMsgs++;
      c.outBytes += size;
      c.writeMsg(m, [], 0);
    }
    return true;
  }

  // ====================================================================== cluster

  /** Route peers' leaf URLs changed (route thread → main → here): every accepted leaf gets the new INFO. */
  setPeerLeafUrls(urls: string[]): void {
    const next = urls.filter((u) => u !== this.leafUrl);
    if (next.join() === this.peerLeafUrls.join()) return;
    this.peerLeafUrls = next;
    const line = this.leafInfo(null, 'update');
    for (const c of this.bridge.peers) if (!c.didSolicit) c.queueString(line);
    this.bridge.flushPeers();
  }

  /** The cluster name changed (a dynamic name adopted): what leafs are told from now on. */
  setClusterName(name: string | undefined): void {
    if (name !== undefined && this.clustered) this.clusterName = name;
  }

  // ====================================================================== monitoring

  /** Registered leaf connections, for monitoring. */
  registered(): IterableIterator<LeafConn> {
    return this.bridge.peers.values();
  }

  /** /varz `leaf`: what each remote dials. */
  remoteUrls(): { urls: string[] }[] {
    return this.remotes.map((r) => ({ urls: r.urls.map((u) => redactedUrl(u)) }));
  }

  // ====================================================================== operations

  /** Config reload: the leafnodes block itself cannot change (refused by reload.ts); logs and timers can. */
  reload(next: Options): void {
    this.reloadOptions(next);
    if (next.leafNodes !== undefined) this.leaf = next.leafNodes;
  }
}

/** The host and port a leaf INFO names (`advertise`, or the listener; a wildcard host as its first non-local IP). */
function leafInfoAddress(l: LeafNodeOptions, leafPort: number): [string, number] {
  if (l.advertise !== undefined && l.advertise !== '') return splitAdvertise(l.advertise, leafPort);
  return [l.host === '' || l.host === '0.0.0.0' || l.host === '::' ? firstNonLocalIp() : l.host, leafPort];
}

/** `host:port` of this server in leafnode_urls (route INFO gives it to the peers, which give it to their leafs). */
export function leafInfoUrl(l: LeafNodeOptions, leafPort: number): string {
  const [h, p] = leafInfoAddress(l, leafPort);
  return joinHostPort(h, p);
}

/** leafnode.go: with a listen host of 0.0.0.0, INFO names the first non-local IP. */
function firstNonLocalIp(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}
