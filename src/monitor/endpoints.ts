// nats-server 2.9.10's monitoring documents (monitor.go), built from skein's numbers: the same
// field names, order, JSON types and omitempty rules, so nats-top, prometheus-nats-exporter and
// the Helm chart's probes read skein as they read nats-server. Where skein has no value for a
// field it gets nats-server's zero value, never a missing key.
//
// Runs on the main thread; per-connection facts come from the owning threads (collect.ts).

import os from 'node:os';
import type { Options } from '../config/options.ts';
import type { ServerIdentity } from '../protocol/info.ts';
import { PROTOCOL_VERSION, SKEIN_VERSION } from '../protocol/info.ts';
import { isValidLiteralSubject, subjectMatches } from '../protocol/subject.ts';
import { Stat, type StatsReader } from './stats.ts';
import type { ConnRecord, LeafRecord, RouteRecord, SubRecord, SubszReply, SubsModeValue } from './query.ts';
import { SubsMode } from './query.ts';
import { urlHostPort } from '../protocol/hostport.ts';
import { QueryError, decodeBool, decodeInt, decodeUint64, rfc3339, rttString, sortedMap, uptimeString, preciseNowMs } from './gofmt.ts';

/** monitor.go DefaultConnListSize / DefaultSubListSize. */
const DEFAULT_LIST_SIZE = 1024;
const GLOBAL_ACCOUNT = '$G';
/** nats-server's TLS_TIMEOUT and AUTH_TIMEOUT defaults, in seconds. */
const DEFAULT_TLS_TIMEOUT_S = 2;
const DEFAULT_AUTH_TIMEOUT_S = 2;

/** What the documents are built from; the main thread's Monitor provides it. */
export interface MonitorSource {
  readonly opts: Options;
  readonly identity: ServerIdentity;
  readonly stats: StatsReader;
  readonly startedAt: number;
  readonly configLoadedAt: number;
  readonly httpReqStats: Map<string, number>;
  readonly totalConnections: number;
  /** Client connections now (the main thread's per-worker counts). */
  connections(): number;
  /** The cluster listener's port (0 without a cluster). */
  clusterPort(): number;
  /** The gateway listener's port (0 without gateways). */
  gatewayPort?(): number;
  /** The leafnode listener's port (0: none). */
  leafPort(): number;
  /** Registered routes, and leaf connections (either direction), now. */
  routeCount(): number;
  leafCount(): number;
  /** Process memory (RSS) and CPU percentage of one core, sampled. */
  processUsage(): { rss: number; cpu: number };
  /** Whether every listener is bound and every thread is ready. */
  readyChecks(): { server: boolean; route: boolean };
}

export type Query = Map<string, string>;

// ------------------------------------------------------------------------------ varz

/** The auth timeout in seconds; without one configured nats-server's default, one second past the TLS timeout with TLS. */
function authTimeoutSeconds(ms: number | undefined, tls?: { timeoutMs: number }): number {
  if (ms !== undefined) return ms / 1000;
  return tls !== undefined ? tls.timeoutMs / 1000 + 1 : DEFAULT_AUTH_TIMEOUT_S;
}

function tlsTimeoutSeconds(tls: { timeoutMs: number } | undefined): number {
  return tls === undefined ? DEFAULT_TLS_TIMEOUT_S : tls.timeoutMs / 1000;
}

export function varz(src: MonitorSource): Record<string, unknown> {
  const o = src.opts;
  const id = src.identity;
  const s = src.stats;
  const now = preciseNowMs();
  const v: Record<string, unknown> = {
    server_id: id.serverId,
    server_name: id.serverName,
    version: PROTOCOL_VERSION,
    proto: 1,
    go: `skein ${SKEIN_VERSION} (node ${process.version})`,
    host: o.host,
    port: id.port,
  };
  if (o.authorization !== undefined) v.auth_required = true;
  if (o.tls !== undefined) {
    v.tls_required = true;
    if (o.tls.verify) v.tls_verify = true;
  }
  if (id.connectUrls !== undefined && id.connectUrls.length > 0) v.connect_urls = [...id.connectUrls];
  v.max_connections = o.maxConnections;
  if (o.maxSubscriptions > 0) v.max_subscriptions = o.maxSubscriptions;
  v.ping_interval = o.pingIntervalMs * 1e6;
  v.ping_max = o.pingMax;
  v.http_host = o.httpHost ?? o.host;
  v.http_port = o.httpPort ?? 0;
  v.http_base_path = o.httpBasePath ?? '';
  v.https_port = 0;
  v.auth_timeout = authTimeoutSeconds(o.authorization?.timeoutMs, o.tls);
  v.max_control_line = o.maxControlLine;
  v.max_payload = o.maxPayload;
  v.max_pending = o.maxPending;
  const cluster: Record<string, unknown> = {};
  // (A gateway without a cluster block names the cluster: nats-server shows its name alone.)
  if (o.cluster === undefined && id.cluster) cluster.name = id.cluster;
  if (o.cluster !== undefined) {
    const c = o.cluster;
    if (id.cluster) cluster.name = id.cluster;
    if (c.host) cluster.addr = c.host;
    if (src.clusterPort() !== 0) cluster.cluster_port = src.clusterPort();
    cluster.auth_timeout = authTimeoutSeconds(c.authorization?.timeoutMs, c.tls);
    if (c.routes.length > 0) cluster.urls = c.routes.map(urlHostPort);
    cluster.tls_timeout = tlsTimeoutSeconds(c.tls);
    if (c.tls !== undefined) {
      // nats-server always verifies route certificates.
      cluster.tls_required = true;
      cluster.tls_verify = true;
    }
  }
  v.cluster = cluster;
  const gateway: Record<string, unknown> = {};
  if (o.gateway !== undefined) {
    const g = o.gateway;
    gateway.name = g.name;
    if (g.host) gateway.host = g.host;
    // gateway.go: a random port (-1) is written back as the one picked.
    const port = src.gatewayPort?.() ?? 0;
    if (port > 0) gateway.port = port;
    else if (g.port > 0) gateway.port = g.port;
    gateway.auth_timeout = g.authTimeoutMs / 1000;
    gateway.tls_timeout = tlsTimeoutSeconds(g.tls);
    if (g.tls) {
      // Gateway TLS always verifies the peer (as routes), as nats-server reports it.
      gateway.tls_required = true;
      gateway.tls_verify = true;
    }
    if (g.advertise) gateway.advertise = g.advertise;
    if (g.connectRetries) gateway.connect_retries = g.connectRetries;
    if (g.gateways.length > 0) {
      gateway.gateways = g.gateways.map((r) => {
        const rv: Record<string, unknown> = { name: r.name };
        if (r.tls) rv.tls_timeout = r.tls.timeoutMs / 1000;
        if (r.urls.length > 0) rv.urls = r.urls.map(urlHostPort);
        return rv;
      });
    }
    if (g.rejectUnknown) gateway.reject_unknown = true;
  }
  v.gateway = gateway;
  v.leaf = leafVarz(src);
  v.mqtt = {};
  v.websocket = {};
  v.jetstream = {};
  v.tls_timeout = tlsTimeoutSeconds(o.tls);
  v.write_deadline = o.writeDeadlineMs * 1e6;
  v.start = rfc3339(src.startedAt);
  v.now = rfc3339(now);
  v.uptime = uptimeString(now - src.startedAt);
  const usage = src.processUsage();
  v.mem = usage.rss;
  v.cores = os.availableParallelism();
  v.gomaxprocs = o.workers;
  v.cpu = usage.cpu;
  v.connections = src.connections();
  v.total_connections = src.totalConnections;
  const routes = src.routeCount();
  v.routes = routes;
  v.remotes = routes;
  v.leafnodes = src.leafCount();
  v.in_msgs = s.sum(Stat.inMsgs);
  v.out_msgs = s.sum(Stat.outMsgs);
  v.in_bytes = s.sum(Stat.inBytes);
  v.out_bytes = s.sum(Stat.outBytes);
  v.slow_consumers = s.sum(Stat.slowConsumers);
  v.subscriptions = s.sum(Stat.subscriptions);
  v.http_req_stats = sortedMap(src.httpReqStats);
  v.config_load_time = rfc3339(src.configLoadedAt);
  return v;
}

// ------------------------------------------------------------------------------ connz

/** monitor_sort_opts.go: every key nats-server accepts. */
const SORT_KEYS = new Set([
  'cid',
  'start',
  'subs',
  'pending',
  'msgs_to',
  'msgs_from',
  'bytes_to',
  'bytes_from',
  'last',
  'idle',
  'uptime',
  'stop',
  'reason',
]);

export interface ConnzOptions {
  sort: string;
  auth: boolean;
  subs: SubsModeValue;
  offset: number;
  limit: number;
  cid: number;
  state: 'open' | 'closed' | 'any';
  user: string;
  acc: string;
  mqttClient: string;
}

/** monitor.go decodeSubs: `detail`, else a boolean. */
function decodeSubs(q: Query): SubsModeValue {
  if ((q.get('subs') ?? '').toLowerCase() === 'detail') return SubsMode.detail;
  return decodeBool(q, 'subs') ? SubsMode.subjects : SubsMode.none;
}

/** HandleConnz's decoding, in its order (the first bad value is the one reported). */
export function connzOptions(q: Query): ConnzOptions {
  const sort = q.get('sort') ?? '';
  const auth = decodeBool(q, 'auth');
  const subs = decodeSubs(q);
  const offset = decodeInt(q, 'offset');
  const limit = decodeInt(q, 'limit');
  const cid = decodeUint64(q, 'cid');
  const rawState = q.get('state') ?? '';
  let state: ConnzOptions['state'];
  switch (rawState.toLowerCase()) {
    case '':
    case 'open':
      state = 'open';
      break;
    case 'closed':
      state = 'closed';
      break;
    case 'any':
    case 'all':
      state = 'any';
      break;
    default:
      throw new QueryError(`Error decoding state for ${rawState}`);
  }
  // Server.Connz's own checks.
  if (sort !== '' && !SORT_KEYS.has(sort)) throw new QueryError(`invalid sorting option: ${sort}`);
  if (sort === 'stop' && state !== 'closed') throw new QueryError('sort by stop only valid on closed connections');
  if (sort === 'reason' && state !== 'closed') throw new QueryError('sort by reason only valid on closed connections');
  return {
    sort: sort === '' ? 'cid' : sort,
    auth,
    subs,
    offset: Math.max(offset, 0),
    limit: cid > 0 ? 1 : limit <= 0 ? DEFAULT_LIST_SIZE : limit,
    cid,
    state,
    user: q.get('user') ?? '',
    acc: q.get('acc') ?? '',
    mqttClient: q.get('mqtt_client') ?? '',
  };
}

function subDetail(s: SubRecord, account: boolean): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  if (account) d.account = GLOBAL_ACCOUNT;
  d.subject = s.subject;
  if (s.queue !== null && s.queue !== '') d.qgroup = s.queue;
  d.sid = s.sid;
  d.msgs = s.msgs;
  if (s.max > 0) d.max = s.max;
  d.cid = s.cid;
  return d;
}

function connInfo(c: ConnRecord, now: number, o: ConnzOptions): Record<string, unknown> {
  const closed = c.stop > 0;
  const at = closed ? c.stop : now;
  const ci: Record<string, unknown> = {
    cid: c.cid,
    kind: 'Client',
    type: 'nats',
    ip: c.ip,
    port: c.port,
    start: rfc3339(c.start),
    last_activity: rfc3339(c.last),
  };
  if (closed) {
    ci.stop = rfc3339(c.stop);
    if (c.reason !== '') ci.reason = c.reason;
  }
  ci.rtt = rttString(c.rttMs);
  ci.uptime = uptimeString(at - c.start);
  ci.idle = uptimeString(at - c.last);
  ci.pending_bytes = c.pending;
  ci.in_msgs = c.inMsgs;
  ci.out_msgs = c.outMsgs;
  ci.in_bytes = c.inBytes;
  ci.out_bytes = c.outBytes;
  ci.subscriptions = c.numSubs;
  if (c.name !== '') ci.name = c.name;
  if (c.lang !== '') ci.lang = c.lang;
  if (c.version !== '') ci.version = c.version;
  if (c.tlsVersion !== '') {
    ci.tls_version = c.tlsVersion;
    ci.tls_cipher_suite = c.tlsCipher;
  }
  if (o.auth) {
    // Open: getRawAuthUser (user, else token); closed: the CONNECT user only.
    const user = closed ? c.user : c.authUser;
    if (user !== '') ci.authorized_user = user;
  }
  if (c.subs !== undefined && c.subs.length > 0) {
    if (o.subs === SubsMode.detail) ci.subscriptions_list_detail = c.subs.map((s) => subDetail(s, closed));
    else if (o.subs === SubsMode.subjects) ci.subscriptions_list = c.subs.map((s) => s.subject);
  }
  return ci;
}

const byNumberDesc =
  (f: (c: ConnRecord) => number) =>
  (a: ConnRecord, b: ConnRecord): number =>
    f(b) - f(a);

/** Server.Connz over what the workers sent: filter, sort, page, render. */
export function connz(src: MonitorSource, o: ConnzOptions, open: ConnRecord[], closed: ConnRecord[]): Record<string, unknown> {
  const now = preciseNowMs();
  if (o.acc !== '' && o.acc !== GLOBAL_ACCOUNT) {
    // lookupAccount failed: nats-server returns the bare page, without even its server id.
    return { server_id: '', now: rfc3339(now), num_connections: 0, total: 0, offset: o.offset, limit: o.limit, connections: null };
  }
  // Closed connections only know an account when it is not $G, so acc=$G hides them all.
  if (o.acc !== '') closed = [];
  let total = 0;
  if (o.state !== 'closed') total += open.length;
  if (o.state !== 'open') total += closed.length;
  let list: ConnRecord[];
  if (o.cid > 0) {
    // As 2.9.10: state=any looks among the closed ones only.
    list = (o.state === 'open' ? open : closed).filter((c) => c.cid === o.cid).slice(0, 1);
  } else {
    list = [];
    const keep = (c: ConnRecord): boolean => (o.user === '' || c.user === o.user) && o.mqttClient === '';
    if (o.state !== 'closed') for (const c of open) if (keep(c)) list.push(c);
    if (o.state !== 'open') for (const c of closed) if (keep(c)) list.push(c);
  }
  if (list.length === 0) {
    return {
      server_id: src.identity.serverId,
      now: rfc3339(now),
      num_connections: 0,
      total,
      offset: o.offset,
      limit: o.limit,
      connections: [],
    };
  }
  const byCid = (a: ConnRecord, b: ConnRecord): number => a.cid - b.cid;
  const uptime = (c: ConnRecord): number => (c.stop > 0 ? c.stop : now) - c.start;
  switch (o.sort) {
    case 'subs':
      list.sort(byNumberDesc((c) => c.numSubs));
      break;
    case 'pending':
      list.sort(byNumberDesc((c) => c.pending));
      break;
    case 'msgs_to':
      list.sort(byNumberDesc((c) => c.outMsgs));
      break;
    case 'msgs_from':
      list.sort(byNumberDesc((c) => c.inMsgs));
      break;
    case 'bytes_to':
      list.sort(byNumberDesc((c) => c.outBytes));
      break;
    case 'bytes_from':
      list.sort(byNumberDesc((c) => c.inBytes));
      break;
    case 'last':
      list.sort(byNumberDesc((c) => c.last));
      break;
    // As monitor_sort_opts.go byIdle: last activity minus start, largest first.
    case 'idle':
      list.sort(byNumberDesc((c) => c.last - c.start));
      break;
    case 'uptime':
      list.sort((a, b) => uptime(a) - uptime(b));
      break;
    case 'stop':
      list.sort(byNumberDesc((c) => c.stop));
      break;
    case 'reason':
      list.sort((a, b) => (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0));
      break;
    default:
      list.sort(byCid);
      break; // cid, start
  }
  const max = list.length;
  const page = list.slice(Math.min(o.offset, max), Math.min(o.offset + o.limit, max));
  return {
    server_id: src.identity.serverId,
    now: rfc3339(now),
    num_connections: page.length,
    total,
    offset: o.offset,
    limit: o.limit,
    connections: page.map((c) => connInfo(c, now, o)),
  };
}

// ------------------------------------------------------------------------------ routez

export function routezOptions(q: Query): { subs: SubsModeValue } {
  return { subs: decodeSubs(q) };
}

export function routez(src: MonitorSource, subs: SubsModeValue, routes: RouteRecord[]): Record<string, unknown> {
  const now = preciseNowMs();
  routes.sort((a, b) => a.rid - b.rid);
  return {
    server_id: src.identity.serverId,
    now: rfc3339(now),
    num_routes: routes.length,
    routes: routes.map((r) => {
      const ri: Record<string, unknown> = {
        rid: r.rid,
        remote_id: r.remoteId,
        did_solicit: r.didSolicit,
        is_configured: r.isConfigured,
        ip: r.ip,
        port: r.port,
        start: rfc3339(r.start),
        last_activity: rfc3339(r.last),
        rtt: rttString(r.rttMs),
        uptime: uptimeString(now - r.start),
        idle: uptimeString(now - r.last),
        pending_size: r.pending,
        in_msgs: r.inMsgs,
        out_msgs: r.outMsgs,
        in_bytes: r.inBytes,
        out_bytes: r.outBytes,
        subscriptions: r.numSubs,
      };
      if (r.subs !== undefined && r.subs.length > 0) {
        if (subs === SubsMode.detail) {
          // A route's subscription is keyed (sid) by "account subject [queue]"; no per-sub counts here.
          ri.subscriptions_list_detail = r.subs.map(([subject, queue]) => {
            const d: Record<string, unknown> = { subject };
            if (queue !== null) d.qgroup = queue;
            d.sid = queue === null ? `${GLOBAL_ACCOUNT} ${subject}` : `${GLOBAL_ACCOUNT} ${subject} ${queue}`;
            d.msgs = 0;
            d.cid = r.rid;
            return d;
          });
        } else if (subs === SubsMode.subjects) {
          ri.subscriptions_list = r.subs.map(([subject]) => subject);
        }
      }
      return ri;
    }),
  };
}

// ------------------------------------------------------------------------------ subsz

export interface SubszOptions {
  subs: boolean;
  offset: number;
  limit: number;
  test: string;
  acc: string;
}

export function subszOptions(q: Query): SubszOptions {
  const subs = decodeBool(q, 'subs');
  const offset = decodeInt(q, 'offset');
  const limit = decodeInt(q, 'limit');
  const test = q.get('test') ?? '';
  if (test !== '' && !isValidLiteralSubject(test)) {
    throw new QueryError(`invalid test subject, must be valid publish subject: ${test}`);
  }
  return { subs, offset: Math.max(offset, 0), limit: limit <= 0 ? DEFAULT_LIST_SIZE : limit, test, acc: q.get('acc') ?? '' };
}

/**
 * Server.Subsz: the sublist statistics summed over the threads, and with `subs` the client
 * subscriptions (a page of them; `total` is the page's length, as 2.9.10 reports it). Without
 * a non-empty page, nats-server answers with the bare statistics.
 */
export function subsz(src: MonitorSource, o: SubszOptions, workers: SubszReply[], routeSubs: number): Record<string, unknown> {
  const accounted = o.acc === '' || o.acc === GLOBAL_ACCOUNT;
  let inserts = 0;
  let removes = 0;
  let matches = 0;
  let hits = 0;
  let entries = 0;
  let fanout = 0;
  let maxFanout = 0;
  let subscriptions = routeSubs;
  const list: SubRecord[] = [];
  if (accounted) {
    for (const w of workers) {
      subscriptions += w.subscriptions;
      inserts += w.inserts;
      removes += w.removes;
      matches += w.matches;
      hits += w.cacheHits;
      entries += w.cacheEntries;
      fanout += w.fanoutTotal;
      maxFanout = Math.max(maxFanout, w.fanoutMax);
      if (w.list !== undefined) for (const s of w.list) list.push(s);
    }
  } else {
    subscriptions = 0;
  }
  const stats = {
    num_subscriptions: subscriptions,
    num_cache: entries,
    num_inserts: inserts,
    num_removes: removes,
    num_matches: matches,
    cache_hit_rate: matches > 0 ? hits / matches : 0,
    max_fanout: maxFanout,
    avg_fanout: fanout > 0 ? fanout / entries : 0,
  };
  if (!o.subs) return stats;
  const matching = o.test === '' ? list : list.filter((s) => subjectMatches(s.subject, o.test));
  const max = matching.length;
  const page = matching.slice(Math.min(o.offset, max), Math.min(o.offset + o.limit, max));
  if (page.length === 0) return stats;
  return {
    server_id: src.identity.serverId,
    now: rfc3339(preciseNowMs()),
    ...stats,
    total: page.length,
    offset: o.offset,
    limit: o.limit,
    subscriptions_list: page.map((s) => subDetail(s, true)),
  };
}

// ------------------------------------------------------------- gatewayz, leafz, accountz, healthz

/** `accs=1`: per-account interest modes in /gatewayz. */
export function gatewayzAccs(q: Query): boolean {
  return decodeBool(q, 'accs');
}

/** Without gateways, nats-server's whole answer; with them, the frame the gateway thread's fields go into. */
export function gatewayz(src: MonitorSource, q: Query): Record<string, unknown> {
  decodeBool(q, 'accs');
  return { server_id: src.identity.serverId, now: rfc3339(preciseNowMs()), outbound_gateways: {}, inbound_gateways: {} };
}

/** `/leafz?subs=1`. */
export function leafzSubs(q: Query): boolean {
  return decodeBool(q, 'subs');
}

/** monitor.go Leafz: every leaf connection, accepted or dialled, in nats-server's LeafInfo fields. */
export function leafz(src: MonitorSource, subs: boolean, leafs: LeafRecord[]): Record<string, unknown> {
  leafs.sort((a, b) => a.lid - b.lid);
  const list = leafs.map((l) => {
    const o: Record<string, unknown> = {
      account: '$G',
      ip: l.ip,
      port: l.port,
      rtt: rttString(l.rttMs),
      in_msgs: l.inMsgs,
      out_msgs: l.outMsgs,
      in_bytes: l.inBytes,
      out_bytes: l.outBytes,
      subscriptions: l.numSubs,
    };
    if (subs && l.subs !== undefined && l.subs.length > 0) o.subscriptions_list = l.subs;
    return o;
  });
  return { server_id: src.identity.serverId, now: rfc3339(preciseNowMs()), leafnodes: list.length, leafs: list.length > 0 ? list : null };
}

/** /varz `leaf`: the hub side's listener, or the leaf side's remotes (nats-server's LeafNodeOptsVarz). */
function leafVarz(src: MonitorSource): Record<string, unknown> {
  const l = src.opts.leafNodes;
  if (l === undefined) return {};
  const v: Record<string, unknown> = {};
  if (src.leafPort() !== 0) {
    v.host = l.host;
    v.port = src.leafPort();
    v.auth_timeout = l.authTimeoutMs / 1000;
    v.tls_timeout = tlsTimeoutSeconds(l.tls);
  }
  if (l.remotes.length > 0) v.remotes = l.remotes.map((r) => ({ local_account: '$G', urls: r.urls.map(urlHostPort) }));
  return v;
}

export function accountz(src: MonitorSource, q: Query, subsStats: Record<string, unknown> | null): Record<string, unknown> {
  const acc = q.get('acc') ?? '';
  const base = { server_id: src.identity.serverId, now: rfc3339(preciseNowMs()) };
  if (acc === '') return { ...base, accounts: [GLOBAL_ACCOUNT] };
  if (acc !== GLOBAL_ACCOUNT || subsStats === null) throw new QueryError(`Account ${acc} does not exist`);
  return {
    ...base,
    account_detail: {
      account_name: GLOBAL_ACCOUNT,
      update_time: rfc3339(src.startedAt),
      expired: false,
      complete: true,
      jetstream_enabled: false,
      leafnode_connections: 0,
      client_connections: src.connections(),
      subscriptions: subsStats.num_subscriptions,
      sublist_stats: subsStats,
    },
  };
}

/** Does an account query name an account skein has (for deciding whether to collect)? */
export function accountzWantsDetail(q: Query): boolean {
  return (q.get('acc') ?? '') === GLOBAL_ACCOUNT;
}

/** HandleHealthz: compact JSON; 503 with nats-server's readiness error while not ready. */
export function healthz(src: MonitorSource, q: Query): { status: number; body: Record<string, unknown> } {
  decodeBool(q, 'js-enabled');
  decodeBool(q, 'js-enabled-only');
  decodeBool(q, 'js-server-only');
  const checks = src.readyChecks();
  const failed: string[] = [];
  if (!checks.server) failed.push('server');
  if (!checks.route) failed.push('route');
  if (failed.length === 0) return { status: 200, body: { status: 'ok' } };
  return { status: 503, body: { status: 'error', error: `failed to be ready for connections after 1ms: ${failed.join(', ')}` } };
}
