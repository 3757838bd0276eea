// The gateway control plane: how this server's gateways come to be and go, as nats-server
// 2.9.10 runs them (gateway.go): one outbound per remote gateway (cluster) name and any number
// of inbounds, the handshake (INFO, CONNECT + INFO), authorization, names and duplicates,
// gossip (from inbounds, cmd 1, and through the route thread), dialling with retries, the
// interest modes of both sides (the receiver's cmd 2 / RS+ / cmd 3 burst, A-/A+, RS- per
// subject in optimistic mode; the sender honouring either), the `_GR_.` reply mapping and
// RTT-ordered queue delivery. What gateways carry to and from the other threads is the
// bridge's (bridge.ts), as for routes.
//
// Runs on the gateway thread only.

import net from 'node:net';
import os from 'node:os';
import dns from 'node:dns';
import { createHash } from 'node:crypto';
import { nextConnectionId, type SharedLayout } from '../threads/shared.ts';
import type { GatewayOptions, Options, TlsOptions } from '../config/options.ts';
import type { ServerIdentity } from '../protocol/info.ts';
import { PROTOCOL_VERSION } from '../protocol/info.ts';
import type { ControlMessage } from '../threads/control.ts';
import { isValidSubscribeSubject, subjectMatches } from '../protocol/subject.ts';
import { GatewayConn, InterestMode, INTEREST_MODE_NAMES, type GatewayHost } from '../conn/gateway.ts';
import { PeerOp, type PeerOpCode } from '../protocol/peer-parser.ts';
import type { MsgView } from '../protocol/msg-view.ts';
import { decodePeerConnect, decodeServerInfo, serverInfoJson, type PeerConnect, type ServerInfo } from '../protocol/peer-info.ts';
import { JsonSyntaxError, JsonTypeError, type JsonDecodeError } from '../protocol/gojson.ts';
import { CloseReason, type CloseReasonText } from '../conn/base.ts';
import { log } from '../log.ts';
import { SUBJECT_ENCODING } from '../protocol/bytes.ts';
import { joinHostPort, splitHostPort, urlHostname } from '../protocol/hostport.ts';
import { comparePasswords, isBcrypt } from '../conn/auth.ts';
import { Bridge } from './bridge.ts';
import { PeerControl } from './peer-control.ts';
import { Sublist } from '../broker/sublist.ts';
import { rfc3339, rttString, uptimeString } from '../monitor/gofmt.ts';

/** What main hands the gateway thread (plus its MessagePort). */
export interface GatewayTask {
  thread: number;
  layout: SharedLayout;
  options: Options;
  identity: ServerIdentity;
  /** The resolved gateway listen port (a random port already picked). */
  gatewayPort: number;
  replacement: boolean;
}

// gateway.go timings.
const GATEWAY_CONNECT_DELAY_MS = 1000; // between passes over a remote's URLs
const GATEWAY_RECONNECT_DELAY_MS = 1000; // before re-dialling after a disconnect
const GATEWAY_DIAL_TIMEOUT_MS = 1000;
const GATEWAY_FIRST_DIAL_DELAY_MS = 1000;
const CONNECT_ERROR_REPORTS = 3600;
/** gateway.go defaultGatewayMaxRUnsubBeforeSwitch: RS- sent before an account goes interest-only. */
const INTEREST_ONLY_THRESHOLD = 1000;
/** A reply subscription this young gets its reply mapped (gateway.go gwReplyMapping, 2 s). */
const REPLY_MAPPING_MS = 2000;
const GW_REPLY_PREFIX = '_GR_.';
const OLD_GW_REPLY_PREFIX = '$GR.';
/** `_GR_.` + 6 + `.` + 6 + `.` */
const GW_REPLY_PREFIX_LEN = 19;
/** `$GR.` + 4 + `.` */
const OLD_GW_REPLY_PREFIX_LEN = 9;
const HASH_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** gateway.go getHash: 6 characters of sha256(name), alphabet[b % 62] over the first 6 bytes. */
export function gatewayHash(name: string): string {
  const d = createHash('sha256').update(name).digest();
  let s = '';
  for (let i = 0; i < 6; i++) s += HASH_ALPHABET[d[i] % 62];
  return s;
}

/** gateway.go getOldHash: the first 4 hex characters of sha256(name). */
export function gatewayOldHash(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 4);
}

/** A local plain subscription seen lately (its replies are mapped, gateway.go: 2 s). */
interface RecentSub {
  readonly subject: string;
  readonly queue: null;
  readonly at: number;
}

/** A remote gateway (cluster) this server knows: configured, or learned by gossip. */
interface RemoteGateway {
  readonly name: string;
  /** host:port → the URL to dial (with the configured credentials, if any). */
  readonly urls: Map<string, URL>;
  /** Listed in the config (explicit: dialled forever). */
  readonly configured: boolean;
  readonly tls: TlsOptions | undefined;
  /** A dial series runs (or an outbound exists). */
  dialing: boolean;
  /** Its cluster hash (for `_GR_.` replies coming back). */
  readonly hash: string;
}

function isDecoded<T extends object>(v: T | JsonDecodeError): v is T {
  return !(v instanceof JsonSyntaxError) && !(v instanceof JsonTypeError);
}

/** A command INFO (gateway.go: empty id, zero values, the account as base64 bytes). */
function cmdInfoLine(gateway: string, cmd: number, account: string): string {
  return `INFO ${serverInfoJson({
    server_id: '',
    server_name: '',
    version: '',
    proto: 0,
    go: '',
    host: '',
    port: 0,
    headers: false,
    max_payload: 0,
    gateway,
    gateway_cmd: cmd,
    gateway_cmd_payload: Buffer.from(account).toString('base64'),
  })}\r\n`;
}

/** A gossip INFO (cmd 1) about gateway `name`; `serverId` is ours (`GW<id>` on routes). */
export function gossipInfoLine(serverId: string, name: string, urls: string[]): string {
  return `INFO ${serverInfoJson({
    server_id: serverId,
    server_name: '',
    version: '',
    proto: 0,
    go: '',
    host: '',
    port: 0,
    headers: false,
    max_payload: 0,
    gateway: name,
    gateway_urls: urls,
    gateway_cmd: 1,
  })}\r\n`;
}

export class GatewayControl extends PeerControl<GatewayConn> implements GatewayHost {
  private readonly identity: ServerIdentity;
  private readonly notify: (m: ControlMessage) => void;
  private readonly layout: SharedLayout;
  private readonly gw: GatewayOptions;

  // Identity.
  readonly name: string;
  private readonly hash: string;
  private readonly oldHash: string;
  private readonly ownUrl: string;
  private readonly infoHost: string;
  private readonly infoPort: number;
  /** `_GR_.<cluster hash>.<server hash>.` for replies we send out. */
  private readonly replyPrefixBytes: Buffer;
  private readonly oldReplyPrefixBytes: Buffer;
  /** Every gateway URL of this cluster (ours plus what routes told us), host:port. */
  private readonly clusterUrls = new Map<string, number>();
  /** Route peers' server names (nats-server's duplicate name check covers the cluster). */
  private readonly clusterNames = new Map<string, number>();
  /** Route peers' server hashes (a `_GR_.` reply for one of them goes on over the route). */
  private readonly clusterServerHashes = new Map<string, number>();
  private readonly serverHash: string;

  // Reloadable.
  private authUser: string | undefined;
  private authPass: string | undefined;
  private readonly tls: TlsOptions | undefined;
  private readonly optimisticReceiver: boolean;

  private readonly remotes = new Map<string, RemoteGateway>();
  private readonly outbounds = new Map<string, GatewayConn>();
  private readonly inbounds = new Map<string, GatewayConn[]>();
  /** Inbounds that sent an unknown account's message: the accounts we said A- for. */
  private readonly refusedAccounts = new WeakMap<GatewayConn, Set<string>>();
  /** Inbounds with an optimistic receiver ($G not yet interest-only). */
  private readonly optimisticInbounds = new Set<GatewayConn>();
  /** Local plain subjects first seen in the last REPLY_MAPPING_MS, by subject and as a sublist. */
  private readonly recentPlain = new Map<string, RecentSub>();
  private readonly recentList = new Sublist<RecentSub>();
  private housekeeping: NodeJS.Timeout | null = null;

  readonly bridge: Bridge<GatewayConn>;

  constructor(task: GatewayTask, notify: (m: ControlMessage) => void) {
    const o = task.options;
    const g = o.gateway!;
    super(o, task.thread, 'gateway thread');
    this.gw = g;
    this.layout = task.layout;
    this.identity = task.identity;
    this.notify = notify;
    this.name = g.name;
    this.hash = gatewayHash(g.name);
    this.oldHash = gatewayOldHash(g.name);
    this.serverHash = gatewayHash(task.identity.serverId);
    this.replyPrefixBytes = Buffer.from(`${GW_REPLY_PREFIX}${this.hash}.${this.serverHash}.`);
    this.oldReplyPrefixBytes = Buffer.from(`${OLD_GW_REPLY_PREFIX}${this.oldHash}.`);
    this.authUser = g.authorization?.user;
    this.authPass = g.authorization?.password;
    if (this.authPass !== undefined && isBcrypt(this.authPass)) this.checker.warm();
    this.tls = g.tls;
    this.optimisticReceiver = g.interestMode === 'optimistic';
    [this.infoHost, this.infoPort] = gatewayInfoAddress(g, task.gatewayPort);
    this.ownUrl = joinHostPort(this.infoHost, this.infoPort);
    this.clusterUrls.set(this.ownUrl, 1);
    for (const r of g.gateways) {
      // An entry for our own name is ignored (gateway.go: its URLs are only reported).
      if (r.name === this.name) continue;
      const remote = this.remote(r.name, true, r.tls ?? g.tls);
      for (const text of r.urls) {
        try {
          const u = new URL(text.includes('://') ? text : `nats://${text}`);
          remote.urls.set(u.host, u);
        } catch {
          log.error(`Error parsing gateway URL ${JSON.stringify(text)}`);
        }
      }
    }
    this.bridge = new Bridge(o, task.layout, task.thread, task.replacement, {
      verb: 'RS',
      noun: 'gateway',
      queueWeightOne: true,
      noBounce: true,
      nearestQueuePeer: true,
      filtering: true,
      onLocalPlain: (subject, has) => this.localPlainChanged(subject, has),
      interceptRecord: (_from, m) => this.replyBack(m),
    });
    if (this.tls?.insecure)
      log.warn('TLS certificate chain and hostname of solicited gateways will not be verified. DO NOT USE IN PRODUCTION!');
  }

  private remote(name: string, configured: boolean, tls: TlsOptions | undefined): RemoteGateway {
    let r = this.remotes.get(name);
    if (r === undefined) {
      r = { name, urls: new Map(), configured, tls, dialing: false, hash: gatewayHash(name) };
      this.remotes.set(name, r);
    }
    return r;
  }

  start(): void {
    this.running = true;
    this.bridge.start();
    this.housekeeping = setInterval(() => this.expire(Date.now()), 250);
    // A responder that got a `_GR_.` reply over a route (a nats-server peer hands it on as it
    // is) publishes to it: such a publish comes here and goes back to that cluster (replyBack).
    this.bridge.extraInterest(`${GW_REPLY_PREFIX}>`, null, 1);
    // gateway.go: dialling starts about a second after start-up, to let the cluster form.
    this.later(GATEWAY_FIRST_DIAL_DELAY_MS, () => {
      for (const r of this.remotes.values()) if (r.configured) this.solicit(r, true);
    });
    this.publishOutbounds();
  }

  // ====================================================================== identity

  private gatewayInfo(): string {
    return `INFO ${serverInfoJson({
      server_id: this.identity.serverId,
      // The configured name only (gateway.go: it does not fall back to the id).
      server_name: this.opts.serverName ?? '',
      version: PROTOCOL_VERSION,
      proto: 0,
      go: '',
      host: this.infoHost,
      port: this.infoPort,
      headers: true,
      auth_required: this.authUser !== undefined,
      tls_required: this.tls !== undefined,
      tls_verify: this.tls !== undefined,
      max_payload: this.opts.maxPayload,
      gateway: this.name,
      gateway_urls: [...this.clusterUrls.keys()],
      gateway_url: this.ownUrl,
      gateway_nrp: true,
      gateway_iom: !this.optimisticReceiver,
    })}\r\n`;
  }

  /** Our gateway URL, for the route thread's INFO (`gateway_url`). */
  get url(): string {
    return this.ownUrl;
  }

  // ====================================================================== connections

  /** An accepted gateway socket handed over by main. */
  addInbound(socket: net.Socket, cid: number): void {
    if (!this.running) {
      socket.destroy();
      return;
    }
    const g = new GatewayConn(this, this.opts, socket, cid, '', null);
    this.bridge.attach(g);
    log.info(`${g.logPrefix()} - Processing inbound gateway connection`);
    const begin = (): void => {
      g.queueString(this.gatewayInfo());
      // gateway.go: the auth timer runs whether or not authorization is configured.
      g.authDeadline = Date.now() + this.gw.authTimeoutMs;
      if (this.authUser !== undefined && this.authPass !== undefined && isBcrypt(this.authPass)) g.authGated = true;
    };
    if (this.tls === undefined) {
      begin();
      g.start();
      this.bridge.flushPeers();
      return;
    }
    g.startTls(this.tls, null, () => {
      begin();
      this.bridge.flushPeers();
    });
  }

  private createOutbound(remote: RemoteGateway, url: URL, socket: net.Socket, onFailure: (err: Error) => void): void {
    const g = new GatewayConn(this, this.opts, socket, nextConnectionId(this.layout.ids), remote.name, url);
    this.bridge.attach(g);
    log.info(`${g.logPrefix()} - Creating outbound gateway connection to ${JSON.stringify(remote.name)}`);
    const tls = remote.tls ?? this.tls;
    if (tls === undefined) {
      g.start();
      return;
    }
    failures.set(g, onFailure);
    const host = urlHostname(url);
    g.startTls(tls, host, () => this.bridge.flushPeers());
  }

  beforePong(_g: GatewayConn): void {
    this.bridge.barrier();
  }

  onPeerControl(g: GatewayConn, op: PeerOpCode, line: Buffer, as: number, ae: number): void {
    if (!g.outbound && !g.connectReceived && op !== PeerOp.connect) {
      this.authViolation(g);
      return;
    }
    switch (op) {
      case PeerOp.connect:
        this.processConnect(g, line.toString('utf8', as, ae));
        return;
      case PeerOp.info:
        this.processInfo(g, line.toString('utf8', as, ae));
        return;
      case PeerOp.rsPlus:
        this.remoteSub(g, line.toString(SUBJECT_ENCODING, as, ae));
        return;
      case PeerOp.rsMinus:
        this.remoteUnsub(g, line.toString(SUBJECT_ENCODING, as, ae));
        return;
      case PeerOp.aPlus:
      case PeerOp.aMinus:
        this.accountInterest(g, op === PeerOp.aPlus, line.toString('latin1', as, ae).trim());
        return;
      case PeerOp.err: {
        // Any -ERR from a gateway closes it (client.go processErr).
        log.error(`${g.logPrefix()} - Gateway Error ${line.toString('utf8', as, ae)}`);
        g.close(CloseReason.parseError, false);
        return;
      }
      default:
        // LS+/LS-/LMSG are not in the gateway row: the parser refused them already.
        return;
    }
  }

  /** An inbound whose first operation is not CONNECT (parser.go authErr). */
  earlyOperation(g: GatewayConn): void {
    this.authViolation(g);
  }

  private authViolation(g: GatewayConn): void {
    if (g.closing) return;
    log.error(`${g.logPrefix()} - authentication error`);
    g.sendErr('Authorization Violation');
    g.close(CloseReason.authenticationViolation, true);
  }

  private processConnect(g: GatewayConn, json: string): void {
    if (g.outbound || g.connectReceived) return;
    const c = decodePeerConnect(json);
    if (!isDecoded(c)) {
      log.error(`${g.logPrefix()} - ${c instanceof JsonSyntaxError ? `invalid CONNECT ${JSON.stringify(json.slice(0, 64))}` : c.message}`);
      g.close(CloseReason.protocolViolation, false);
      return;
    }
    if (c.gateway === '') {
      log.error(`${g.logPrefix()} - attempted to connect to gateway port`);
      g.sendErr('attempted to connect to gateway port');
      g.close(CloseReason.wrongPort, true);
      return;
    }
    if (this.gw.rejectUnknown === true && !this.remotes.has(c.gateway)) {
      log.error(`${g.logPrefix()} - Rejecting connection from gateway ${JSON.stringify(c.gateway)}`);
      g.sendErr(`Connection to gateway ${JSON.stringify(this.name)} rejected`);
      g.close(CloseReason.wrongGateway, true);
      return;
    }
    const ok = this.authUser === undefined ? true : c.user === this.authUser && comparePasswords(this.checker, this.authPass ?? '', c.pass);
    this.decideConnect(
      g,
      ok,
      () => this.acceptConnect(g, c),
      () => this.authViolation(g),
    );
  }

  private acceptConnect(g: GatewayConn, _c: PeerConnect): void {
    g.authGated = false;
    g.connectReceived = true;
    g.authDeadline = 0;
    g.startPinging();
  }

  private processInfo(g: GatewayConn, json: string): void {
    const info = decodeServerInfo(json);
    if (!isDecoded(info)) {
      log.error(
        `${g.logPrefix()} - ${info instanceof JsonSyntaxError ? `invalid INFO ${JSON.stringify(json.slice(0, 64))}` : info.message}`,
      );
      g.close(CloseReason.protocolViolation, false);
      return;
    }
    const first = !g.infoReceived;
    g.infoReceived = true;
    if (g.outbound) this.outboundInfo(g, info, first);
    else if (first) this.inboundInfo(g, info);
  }

  private isDuplicateServerName(name: string): boolean {
    if (name === '') return false;
    return name === (this.opts.serverName ?? '') || this.clusterNames.has(name);
  }

  /** gateway.go processGatewayInfo, outbound side. */
  private outboundInfo(g: GatewayConn, info: ServerInfo, first: boolean): void {
    const name = g.name;
    if (info.gateway === '') {
      const text = `Attempt to connect to gateway ${JSON.stringify(name)} using wrong port`;
      log.error(`${g.logPrefix()} - ${text}`);
      g.sendErr(text);
      g.close(CloseReason.wrongPort, true);
      return;
    }
    if (info.gateway !== name) {
      if (!first && info.gateway_cmd === 1) {
        if (this.gw.rejectUnknown === true && !this.remotes.has(info.gateway)) return;
        this.implicitGateway(info.gateway, info.gateway_urls);
        return;
      }
      log.error(
        `${g.logPrefix()} - Failing connection to gateway ${JSON.stringify(name)}, remote gateway name is ${JSON.stringify(info.gateway)}`,
      );
      g.sendErr(
        `Connection from ${JSON.stringify(this.name)} rejected, wanted to connect to ${JSON.stringify(name)}, this is ${JSON.stringify(info.gateway)}`,
      );
      g.close(CloseReason.wrongGateway, true);
      return;
    }
    if (first && this.isDuplicateServerName(info.server_name)) {
      log.error(`${g.logPrefix()} - Remote server has a duplicate name: ${JSON.stringify(info.server_name)}`);
      g.close(CloseReason.duplicateServerName, false);
      return;
    }
    const remote = this.remotes.get(name);
    if (remote !== undefined && info.gateway_urls.length > 0) this.mergeUrls(remote, info.gateway_urls);
    if (first) {
      g.remoteId = info.server_id;
      g.remoteServerName = info.server_name;
      g.remoteInfo = info;
      g.peerIom = info.gateway_iom;
      g.nrp = info.gateway_nrp;
      g.headers = info.headers;
      const url = g.url!;
      // The URL's credentials, else our own gateway user and password (sendGatewayConnect).
      const user = url.username !== '' ? decodeURIComponent(url.username) : this.authUser;
      const pass = url.username !== '' ? decodeURIComponent(url.password) : this.authPass;
      const connect: Record<string, unknown> = { echo: false, verbose: false, pedantic: false };
      if (user) connect.user = user;
      if (pass) connect.pass = pass;
      connect.tls_required = (remote?.tls ?? this.tls) !== undefined;
      connect.headers = false;
      connect.name = this.identity.serverId;
      connect.cluster = '';
      connect.gateway = this.name;
      g.queueString(`CONNECT ${JSON.stringify(connect)}\r\n`);
      log.debug(`${g.logPrefix()} - Gateway connect protocol sent to ${JSON.stringify(name)}`);
      g.queueString(this.gatewayInfo());
      const existing = this.outbounds.get(name);
      if (existing !== undefined && !existing.closed) {
        g.noReconnect = true;
        g.close(CloseReason.wrongGateway, false);
        return;
      }
      this.outbounds.set(name, g);
      g.registered = true;
      log.info(`${g.logPrefix()} - Outbound gateway connection to ${JSON.stringify(name)} (${info.server_id}) registered`);
      g.startPinging();
      if (!g.peerIom) this.setOptimistic(g);
      this.publishOutbounds();
      return;
    }
    if (info.gateway_cmd > 0) {
      const account = info.gateway_cmd_payload === '' ? '' : Buffer.from(info.gateway_cmd_payload, 'base64').toString('latin1');
      if (info.gateway_cmd === 2 || info.gateway_cmd === 3) {
        if (account === '') {
          const text = `Account absent from receive-all-subscriptions-${info.gateway_cmd === 2 ? 'start' : 'complete'} command`;
          log.error(`${g.logPrefix()} - ${text}`);
          g.sendErr(text);
          g.close(CloseReason.protocolViolation, true);
          return;
        }
        if (account !== '$G') return;
        if (info.gateway_cmd === 2) this.allSubsStart(g);
        else this.allSubsComplete(g);
        return;
      }
      if (info.gateway_cmd !== 1) {
        log.warn(`Received unknown command ${info.gateway_cmd} from gateway ${JSON.stringify(name)}`);
        return;
      }
    }
    this.publishOutbounds();
  }

  /** An optimistic peer: every $G message goes out unless RS- said otherwise. */
  private setOptimistic(g: GatewayConn): void {
    g.mode = InterestMode.optimistic;
    g.filtered = true;
    // One `>` in our interest log: the workers hand this thread every message, as nats-server
    // sends optimistically; GatewayConn.refuses filters the RS- subjects.
    this.bridge.peerSubscribed(g, '>', null, 1);
  }

  /** cmd 2: the peer is switching $G to interest-only; RS+/RS- are kept until cmd 3. */
  private allSubsStart(g: GatewayConn): void {
    log.debug(`${g.logPrefix()} - Gateway ${JSON.stringify(g.name)}: switching account "$G" to Interest-Only mode`);
    if (g.mode === null) g.mode = InterestMode.optimistic; // nothing was sent yet either way
    g.mode = InterestMode.transitioning;
    g.pendingInterest = [];
  }

  /** cmd 3: $G is interest-only: only the RS+ subjects go from now on. */
  private allSubsComplete(g: GatewayConn): void {
    log.debug(`${g.logPrefix()} - Gateway ${JSON.stringify(g.name)}: switching account "$G" to Interest-Only mode complete`);
    for (const [key, sub] of [...g.subs]) if (sub.queue === null) this.bridge.peerUnsubscribed(g, key);
    g.noInterest.clear();
    g.mode = InterestMode.interestOnly;
    g.filtered = g.accountRefused;
    for (const [subject, plus] of g.pendingInterest) {
      if (plus) this.bridge.peerSubscribed(g, subject, null, 1);
      else this.bridge.peerUnsubscribed(g, subject);
    }
    g.pendingInterest = [];
  }

  /** gateway.go processGatewayInfo, inbound side: register, then queue interest, gossip and the burst. */
  private inboundInfo(g: GatewayConn, info: ServerInfo): void {
    g.name = info.gateway;
    g.remoteId = info.server_id;
    g.remoteServerName = info.server_name;
    g.remoteInfo = info;
    g.headers = info.headers;
    if (this.isDuplicateServerName(info.server_name)) {
      log.error(`${g.logPrefix()} - Remote server has a duplicate name: ${JSON.stringify(info.server_name)}`);
      g.close(CloseReason.duplicateServerName, false);
      return;
    }
    let list = this.inbounds.get(g.name);
    if (list === undefined) this.inbounds.set(g.name, (list = []));
    list.push(g);
    g.registered = true;
    log.info(`${g.logPrefix()} - Inbound gateway connection from ${JSON.stringify(info.gateway)} (${info.server_id}) registered`);
    // What the workers and the route thread have logged so far is announced first.
    this.bridge.barrier();
    let lines = '';
    for (const [qkey] of this.bridge.announcedQueues()) lines += `RS+ $G ${qkey} 1\r\n`;
    if (lines !== '') g.queueString(lines, SUBJECT_ENCODING);
    log.debug(`${g.logPrefix()} - Sent queue subscriptions to gateway`);
    // Dial back the gateway this inbound comes from, if we have no outbound to it.
    if (info.gateway !== this.name) this.implicitGateway(info.gateway, info.gateway_urls);
    // Gossip: every other gateway we know, connected or still being dialled
    // (gossipGatewaysToInboundGateway).
    for (const [name, remote] of this.remotes) {
      if (name === info.gateway || remote.urls.size === 0) continue;
      g.queueString(gossipInfoLine(this.identity.serverId, name, [...remote.urls.keys()]));
    }
    if (this.optimisticReceiver) {
      this.optimisticInbounds.add(g);
      return;
    }
    this.switchToInterestOnly(g);
  }

  /** The cmd 2 / RS+ ... / cmd 3 burst for $G; from then on every 0↔1 change goes as RS+/RS-. */
  private switchToInterestOnly(g: GatewayConn): void {
    let lines = cmdInfoLine(this.name, 2, '$G');
    for (const subject of this.bridge.announcedPlain()) lines += `RS+ $G ${subject}\r\n`;
    lines += cmdInfoLine(this.name, 3, '$G');
    g.queueString(lines, SUBJECT_ENCODING);
    g.receiverInterestOnly = true;
    this.optimisticInbounds.delete(g);
    this.bridge.register(g, false);
  }

  private mergeUrls(remote: RemoteGateway, urls: string[]): void {
    for (const hp of urls) {
      if (remote.urls.has(hp)) continue;
      try {
        const u = new URL(`nats://${hp}`);
        remote.urls.set(u.host, u);
      } catch {
        // not a host:port
      }
    }
  }

  /** gateway.go processImplicitGateway: a gateway heard of by gossip (or an inbound's own). */
  private implicitGateway(name: string, urls: string[]): void {
    if (name === this.name || name === '') return;
    const known = this.remotes.get(name);
    if (known !== undefined) {
      this.mergeUrls(known, urls);
      return;
    }
    const remote = this.remote(name, false, this.tls);
    this.mergeUrls(remote, urls);
    this.solicit(remote, true);
    // Beyond 2.9.10, which gossips only to an inbound as it registers: the inbounds already
    // here hear of it too (a 2.9.10 outbound takes a later cmd 1 the same way). Two clusters that
    // register at two servers of this cluster at the same moment otherwise never meet.
    if (remote.urls.size === 0) return;
    const line = gossipInfoLine(this.identity.serverId, name, [...remote.urls.keys()]);
    for (const [from, list] of this.inbounds) {
      if (from === name) continue;
      for (const g of list) if (g.registered && !g.closing) g.queueString(line);
    }
    this.bridge.flushPeers();
  }

  /**
   * Route gossip (cmd 1 from a route peer): make sure we have an outbound to that gateway.
   * As in nats-server, route gossip bypasses reject_unknown_cluster (it guards inbounds only).
   */
  fromRoute(name: string, urls: string[]): void {
    this.implicitGateway(name, urls);
  }

  /** A route peer registered (add) or went (remove): its gateway URL and server name. */
  routePeer(add: boolean, gatewayUrl: string, serverName: string, serverId: string): void {
    const bump = (m: Map<string, number>, key: string): boolean => {
      if (key === '') return false;
      const n = m.get(key) ?? 0;
      if (add) m.set(key, n + 1);
      else if (n <= 1) m.delete(key);
      else m.set(key, n - 1);
      return add ? n === 0 : n === 1;
    };
    bump(this.clusterNames, serverName);
    bump(this.clusterServerHashes, serverId === '' ? '' : gatewayHash(serverId));
    if (gatewayUrl !== '' && gatewayUrl !== this.ownUrl && bump(this.clusterUrls, gatewayUrl)) {
      // gateway.go addGatewayURL: every inbound hears the cluster's new URL list.
      const line = this.gatewayInfo();
      for (const list of this.inbounds.values()) for (const g of list) if (!g.closing) g.queueString(line);
      this.bridge.flushPeers();
    }
  }

  /** Tell main (for the route thread) every gateway we have an outbound to, with its URLs. */
  private publishOutbounds(): void {
    const list: { name: string; urls: string[] }[] = [];
    for (const [name, g] of this.outbounds) {
      if (!g.registered) continue;
      list.push({ name, urls: [...(this.remotes.get(name)?.urls.keys() ?? [])] });
    }
    this.notify({ type: 'gateway-outbounds', gatewayUrl: this.ownUrl, outbounds: list });
  }

  onPeerClosed(g: GatewayConn, reason: CloseReasonText): void {
    this.bridge.detach(g);
    if (!g.secured) {
      const fail = failures.get(g);
      failures.delete(g);
      if (this.running && fail !== undefined)
        fail(new Error(g.tlsError !== '' ? g.tlsError : 'connection closed during the TLS handshake'));
      return;
    }
    log.info(`${g.logPrefix()} - Gateway connection closed: ${reason}`);
    this.optimisticInbounds.delete(g);
    if (g.registered) {
      g.registered = false;
      if (g.outbound) {
        if (this.outbounds.get(g.name) === g) {
          this.outbounds.delete(g.name);
          this.publishOutbounds();
        }
      } else {
        const list = this.inbounds.get(g.name);
        if (list !== undefined) {
          const i = list.indexOf(g);
          if (i >= 0) list.splice(i, 1);
          if (list.length === 0) this.inbounds.delete(g.name);
        }
      }
    }
    this.bridge.unregister(g);
    if (!this.running) return;
    this.bridge.flushMesh();
    if (!g.outbound) return;
    const remote = this.remotes.get(g.name);
    if (remote === undefined) return;
    if (g.noReconnect || this.outbounds.has(remote.name)) return;
    // The series stays this remote's (dialing): nothing else starts another meanwhile.
    remote.dialing = true;
    // gateway.go reconnectGateway: 0-100 ms, plus 1 s for an explicit gateway. skein waits the
    // second for implicit ones too: 2.9.10 re-dials a gossiped gateway that refuses us (wrong
    // name, wrong credentials) every 0-100 ms, forever.
    const delay = GATEWAY_RECONNECT_DELAY_MS + Math.floor(Math.random() * 100);
    this.later(delay, () => this.solicit(remote, false, true));
  }

  // ====================================================================== dialling

  /** gateway.go solicitGateway: passes over the remote's URLs until one connects. */
  private solicit(remote: RemoteGateway, firstConnect: boolean, resume = false): void {
    if ((remote.dialing && !resume) || !this.running) return;
    remote.dialing = true;
    const typ = remote.configured ? 'explicit' : 'implicit';
    let attempts = 0;
    const pass = (): void => {
      if (!this.running || this.remotes.get(remote.name) !== remote) return;
      if (this.outbounds.has(remote.name)) {
        remote.dialing = false;
        return;
      }
      const urls = shuffle([...remote.urls.values()]);
      if (urls.length === 0) {
        remote.dialing = false;
        return;
      }
      attempts++;
      const report = firstConnect ? attempts === 1 || attempts % CONNECT_ERROR_REPORTS === 0 : true;
      const tryUrl = (i: number): void => {
        if (!this.running) return;
        if (i >= urls.length) {
          afterPass();
          return;
        }
        const u = urls[i];
        void resolve(u).then((address) => {
          if (!this.running) return;
          if (address instanceof Error) {
            log.error(`Error getting IP for ${typ} gateway ${JSON.stringify(remote.name)} (${u.host}): ${address.message}`);
            tryUrl(i + 1);
            return;
          }
          const text = `Connecting to ${typ} gateway ${JSON.stringify(remote.name)} (${u.host}) at ${address} (attempt ${attempts})`;
          if (report) log.info(text);
          else log.debug(text);
          const { host, port } = splitHostPort(address)!;
          const failed = (err: Error): void => {
            const etext = `Error connecting to ${typ} gateway ${JSON.stringify(remote.name)} (${u.host}) at ${address} (attempt ${attempts}): ${err.message}`;
            if (report) log.error(etext);
            else log.debug(etext);
            tryUrl(i + 1);
          };
          this.dial(
            host,
            Number(port),
            address,
            GATEWAY_DIAL_TIMEOUT_MS,
            () => true,
            (socket) => this.createOutbound(remote, u, socket, failed),
            failed,
          );
        });
      };
      tryUrl(0);
    };
    const afterPass = (): void => {
      if (!remote.configured) {
        const retries = this.gw.connectRetries ?? 0;
        if (retries === 0 || attempts > retries) {
          if (this.inbounds.has(remote.name)) {
            this.later(GATEWAY_CONNECT_DELAY_MS, pass);
            return;
          }
          if (this.remotes.get(remote.name) === remote) this.remotes.delete(remote.name);
          remote.dialing = false;
          return;
        }
      }
      this.later(GATEWAY_CONNECT_DELAY_MS, pass);
    };
    pass();
  }

  // ====================================================================== interest

  /** RS+ from a gateway: only on an outbound (the remote cluster's interest). */
  private remoteSub(g: GatewayConn, args: string): void {
    if (!g.outbound) {
      log.error(`${g.logPrefix()} - Received RS+ from gateway on inbound connection`);
      g.close(CloseReason.protocolViolation, true);
      return;
    }
    const a = args.split(/[ \t]+/).filter((x) => x !== '');
    if (a.length !== 2 && a.length !== 4) {
      log.error(`${g.logPrefix()} - processGatewaySubjectSub Parse Error: '${args}'`);
      g.close(CloseReason.protocolViolation, true);
      return;
    }
    if (a[0] !== '$G') return; // skein has the global account only ($SYS interest is noise)
    const subject = a[1];
    if (!isValidSubscribeSubject(subject)) return;
    if (a.length === 4) {
      this.bridge.peerSubscribed(g, subject, a[2], 1);
      return;
    }
    switch (g.mode) {
      case null:
        // Interest-only peer, no cmd 2 yet: a plain RS+ is ignored (gateway.go).
        return;
      case InterestMode.optimistic:
        this.clearNoInterest(g, subject);
        return;
      case InterestMode.transitioning:
        this.clearNoInterest(g, subject);
        g.pendingInterest.push([subject, true]);
        return;
      default:
        this.bridge.peerSubscribed(g, subject, null, 1);
    }
  }

  private clearNoInterest(g: GatewayConn, subject: string): void {
    if (g.noInterest.delete(subject)) return;
    if (!subject.includes('*') && !subject.includes('>')) return;
    for (const s of [...g.noInterest]) if (subjectMatches(subject, s)) g.noInterest.delete(s);
  }

  /** RS- from a gateway: only on an outbound. */
  private remoteUnsub(g: GatewayConn, args: string): void {
    if (!g.outbound) {
      log.error(`${g.logPrefix()} - Received RS- from gateway on inbound connection`);
      g.close(CloseReason.protocolViolation, true);
      return;
    }
    const a = args.split(/[ \t]+/).filter((x) => x !== '');
    if (a.length !== 2 && a.length !== 3) {
      log.error(`${g.logPrefix()} - processGatewaySubjectUnsub parse error: '${args}'`);
      g.close(CloseReason.protocolViolation, true);
      return;
    }
    if (a[0] !== '$G') return;
    if (a.length === 3) {
      this.bridge.peerUnsubscribed(g, `${a[1]} ${a[2]}`);
      return;
    }
    const subject = a[1];
    switch (g.mode) {
      case null:
        return;
      case InterestMode.optimistic:
        g.noInterest.add(subject);
        return;
      case InterestMode.transitioning:
        g.noInterest.add(subject);
        g.pendingInterest.push([subject, false]);
        return;
      default:
        this.bridge.peerUnsubscribed(g, subject);
    }
  }

  /** A+ / A- from a gateway (outbound): the whole account wanted again, or not at all. */
  private accountInterest(g: GatewayConn, plus: boolean, account: string): void {
    if (!g.outbound || account !== '$G') return;
    g.accountRefused = !plus;
    if (!plus) g.filtered = true;
    else g.filtered = g.mode === InterestMode.optimistic || g.mode === InterestMode.transitioning;
  }

  /**
   * Local plain interest appeared or went (bridge hook, replayed from the other threads' logs):
   * remembered for the reply mapping, and owed to optimistic inbounds as A+ or RS+.
   */
  private localPlainChanged(subject: string, has: boolean): void {
    if (!has) return;
    const old = this.recentPlain.get(subject);
    if (old !== undefined) this.recentList.remove(old);
    const recent: RecentSub = { subject, queue: null, at: Date.now() };
    this.recentPlain.set(subject, recent);
    this.recentList.insert(recent);
    if (this.optimisticInbounds.size === 0) return;
    const wild = subject.includes('*') || subject.includes('>');
    for (const g of this.optimisticInbounds) {
      if (g.sentAMinus) {
        g.sentAMinus = false;
        g.queueString('A+ $G\r\n');
      }
      if (g.sentNoInterest.size === 0) continue;
      if (g.sentNoInterest.delete(subject)) {
        g.queueString(`RS+ $G ${subject}\r\n`, SUBJECT_ENCODING);
        continue;
      }
      if (!wild) continue;
      let covered = false;
      for (const s of [...g.sentNoInterest]) {
        if (!subjectMatches(subject, s)) continue;
        g.sentNoInterest.delete(s);
        covered = true;
      }
      if (covered) g.queueString(`RS+ $G ${subject}\r\n`, SUBJECT_ENCODING);
    }
  }

  // ====================================================================== messages

  /** A message read from a gateway: only inbounds carry them; to the bridge after the `_GR_.` rules. */
  onPeerMsg(g: GatewayConn, m: MsgView): void {
    if (g.outbound || !g.registered) return;
    if (!m.isGlobalAccount()) {
      const account = m.account();
      let refused = this.refusedAccounts.get(g);
      if (refused === undefined) this.refusedAccounts.set(g, (refused = new Set()));
      if (!refused.has(account)) {
        refused.add(account);
        log.debug(
          `${g.logPrefix()} - Unknown account ${JSON.stringify(account)} for gateway message on subject: ${JSON.stringify(m.subject())}`,
        );
        g.queueString(`A- ${account}\r\n`, SUBJECT_ENCODING);
      }
      return;
    }
    const b = m.sb;
    // A routed reply coming back: for this cluster, delivered without the prefix; else dropped.
    if (startsWith(b, m.ss, m.se, GW_REPLY_PREFIX)) {
      if (m.se - m.ss <= GW_REPLY_PREFIX_LEN || b.toString('latin1', m.ss + 5, m.ss + 11) !== this.hash) return;
      const serverHash = b.toString('latin1', m.ss + 12, m.ss + 18);
      if (serverHash !== this.serverHash && this.clusterServerHashes.has(serverHash) && this.layout.routeThread >= 0) {
        // For another server of this cluster (the requester is there): over the route, as it is.
        this.bridge.handTo(g, this.layout.routeThread, m);
        return;
      }
      m.ss += GW_REPLY_PREFIX_LEN;
    } else if (startsWith(b, m.ss, m.se, OLD_GW_REPLY_PREFIX)) {
      if (m.se - m.ss <= OLD_GW_REPLY_PREFIX_LEN || b.toString('latin1', m.ss + 4, m.ss + 8) !== this.oldHash) return;
      m.ss += OLD_GW_REPLY_PREFIX_LEN;
    }
    // A request from another cluster keeps its `_GR_.` reply on its way to the workers and the
    // routes: the worker that delivers it strips it for its client and sends the answer back
    // under it (broker.ts stripGatewayReply), as nats-server does per client connection.
    if (this.optimisticInbounds.has(g) && !this.optimisticCheck(g, m)) return;
    this.bridge.fromPeer(g, m);
  }

  /**
   * The optimistic receiver (interest_mode: optimistic): A- for an account without any
   * interest, RS- once per subject without plain interest, and the switch to interest-only
   * after INTEREST_ONLY_THRESHOLD of them. False when the message has nowhere to go.
   */
  private optimisticCheck(g: GatewayConn, m: MsgView): boolean {
    this.bridge.refreshInterest();
    if (!this.bridge.hasLocalInterest()) {
      if (!g.sentAMinus) {
        g.sentAMinus = true;
        g.queueString('A- $G\r\n');
      }
      return false;
    }
    if (m.queueCount > 0 || this.bridge.hasLocalPlainMatch(m.sb, m.ss, m.se)) return true;
    const subject = m.subject();
    if (g.sentNoInterest.has(subject)) return false;
    if (g.sentNoInterest.size >= INTEREST_ONLY_THRESHOLD) {
      log.debug(`${g.logPrefix()} - Gateway ${JSON.stringify(g.name)}: switching account "$G" to Interest-Only mode`);
      g.sentNoInterest.clear();
      this.switchToInterestOnly(g);
      return false;
    }
    g.sentNoInterest.add(subject);
    g.queueString(`RS- $G ${subject}\r\n`, SUBJECT_ENCODING);
    return false;
  }

  /**
   * A record from a worker, before it is routed (bridge hook): an answer to a request from
   * another cluster (its `_GR_...` subject, broker.ts publishGatewayReply) goes back to that
   * cluster's gateway only.
   */
  private replyBack(m: MsgView): boolean {
    if (startsWith(m.sb, m.ss, m.se, GW_REPLY_PREFIX)) {
      if (m.se - m.ss > GW_REPLY_PREFIX_LEN) this.sendToCluster(m.sb.toString('latin1', m.ss + 5, m.ss + 11), m, null);
      return true;
    }
    return false;
  }

  /** `m` (under `subject` if given) to the outbound of the cluster whose hash is `hash`, if any. */
  private sendToCluster(hash: string, m: MsgView, subject: Buffer | null): void {
    for (const [name, g] of this.outbounds) {
      if (!g.registered || this.remotes.get(name)?.hash !== hash) continue;
      g.outMsgs++;
      g.outBytes += m.pe - m.ps;
      g.writeFull(m, subject, null, m.queues, 0);
      return;
    }
  }

  /** GatewayHost: the prefix for a reply that must be mapped on this outbound (a subscription under 2 s old). */
  replyPrefix(g: GatewayConn, m: MsgView): Buffer | null {
    if (this.recentPlain.size === 0) return null;
    const b = m.sb;
    if (startsWith(b, m.rs, m.re, GW_REPLY_PREFIX)) return null;
    const now = Date.now();
    for (const sub of this.recentList.match(b.toString(SUBJECT_ENCODING, m.rs, m.re)).psubs) {
      if (now - sub.at <= REPLY_MAPPING_MS) return g.nrp ? this.replyPrefixBytes : this.oldReplyPrefixBytes;
    }
    return null;
  }

  /** Mappings and recent subscriptions past their 2 s. */
  private expire(now: number): void {
    for (const [subject, sub] of this.recentPlain) {
      if (now - sub.at <= REPLY_MAPPING_MS) continue;
      this.recentPlain.delete(subject);
      this.recentList.remove(sub);
    }
  }

  // ====================================================================== monitoring

  /** /gatewayz (monitor.go Gatewayz), built here where the connections are. */
  gatewayz(accs: boolean, gwName: string): Record<string, unknown> {
    const now = Date.now();
    const conn = (g: GatewayConn): Record<string, unknown> => ({
      cid: g.cid,
      kind: 'Gateway',
      ip: g.remoteAddr,
      port: g.remotePort,
      start: rfc3339(g.startedAt),
      last_activity: rfc3339(g.lastInboundAt),
      rtt: rttString(g.rttMs),
      uptime: uptimeString(now - g.startedAt),
      idle: uptimeString(now - g.lastInboundAt),
      pending_bytes: g.pendingBytes,
      in_msgs: g.inMsgs,
      out_msgs: g.outMsgs,
      in_bytes: g.inBytes,
      out_bytes: g.outBytes,
      subscriptions: g.subs.size,
      name: g.remoteId,
    });
    const accounts = (g: GatewayConn): Record<string, unknown>[] => {
      const mode = g.outbound
        ? (g.mode ?? InterestMode.interestOnly)
        : g.receiverInterestOnly
          ? InterestMode.interestOnly
          : InterestMode.optimistic;
      const acc: Record<string, unknown> = {
        name: '$G',
        interest_mode: INTEREST_MODE_NAMES[mode],
        interest_only_threshold: INTEREST_ONLY_THRESHOLD,
      };
      if (g.outbound) acc.num_subs = g.mode === InterestMode.optimistic ? g.subs.size - 1 : g.subs.size;
      if (!g.outbound && !g.receiverInterestOnly) acc.no_interest_count = g.sentNoInterest.size;
      return [acc];
    };
    const outbound: Record<string, unknown> = {};
    for (const name of [...this.outbounds.keys()].sort()) {
      if (gwName !== '' && name !== gwName) continue;
      const g = this.outbounds.get(name)!;
      if (!g.registered) continue;
      const o: Record<string, unknown> = { configured: this.remotes.get(name)?.configured === true, connection: conn(g) };
      if (accs) o.accounts = accounts(g);
      outbound[name] = o;
    }
    const inbound: Record<string, unknown> = {};
    for (const name of [...this.inbounds.keys()].sort()) {
      if (gwName !== '' && name !== gwName) continue;
      inbound[name] = this.inbounds
        .get(name)!
        .filter((g) => g.registered)
        .map((g) => {
          const o: Record<string, unknown> = { configured: false, connection: conn(g) };
          if (accs) o.accounts = accounts(g);
          return o;
        });
    }
    return { name: this.name, host: this.infoHost, port: this.infoPort, outbound_gateways: outbound, inbound_gateways: inbound };
  }

  /** For the live page and /varz: the remote gateways with their connection counts. */
  summary(): { name: string; outbound: string[]; inbound: Record<string, number> } {
    const inbound: Record<string, number> = {};
    for (const [name, list] of this.inbounds) inbound[name] = list.length;
    return { name: this.name, outbound: [...this.outbounds.keys()], inbound };
  }

  // ====================================================================== operations

  reload(next: Options): void {
    this.reloadOptions(next);
    const g = next.gateway;
    if (g === undefined) return;
    this.authUser = g.authorization?.user;
    this.authPass = g.authorization?.password;
  }

  override shutdown(): void {
    if (this.housekeeping !== null) clearInterval(this.housekeeping);
    super.shutdown();
  }
}

/** Dialled outbounds whose TLS handshake may fail: how to go on dialling. */
const failures = new WeakMap<GatewayConn, (err: Error) => void>();

function startsWith(b: Buffer, s: number, e: number, prefix: string): boolean {
  if (s < 0 || e - s < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[s + i] !== prefix.charCodeAt(i)) return false;
  return true;
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

async function resolve(u: URL): Promise<string | Error> {
  const host = urlHostname(u);
  const port = u.port !== '' ? u.port : '7222';
  if (net.isIP(host) !== 0) return joinHostPort(host, port);
  try {
    const ips = (await dns.promises.lookup(host, { all: true })).map((a) => a.address);
    return joinHostPort(ips[Math.floor(Math.random() * ips.length)], port);
  } catch (err) {
    return new Error(`lookup for host ${JSON.stringify(host)}: ${(err as Error).message}`);
  }
}

/** The host and port a gateway INFO names: `advertise`, else the listen address (0.0.0.0: the first non-local IP). */
export function gatewayInfoAddress(g: GatewayOptions, port: number): [string, number] {
  if (g.advertise !== undefined && g.advertise !== '') {
    const hp = splitHostPort(g.advertise.replace(/^[a-z-]+:\/\//i, '').replace(/\/$/, ''));
    return hp !== undefined ? [hp.host, Number(hp.port)] : [g.advertise, port];
  }
  const host = g.host === '0.0.0.0' || g.host === '::' ? (firstNonLocalIp() ?? g.host) : g.host;
  return [host, port];
}

function firstNonLocalIp(): string | undefined {
  const ifaces = os.networkInterfaces();
  for (const list of Object.values(ifaces)) for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  return undefined;
}
