// The monitoring HTTP server (`http_port` / `-m`, `http: host:port`, `http_base_path`): nats-server's
// endpoints (/varz /connz /routez /gatewayz /subsz /accountz /leafz /healthz), Prometheus
// /metrics, the index page and skein's live page with its JSON (/skeinz).
//
// Runs on the main thread, which never touches message bytes. Whole-server counters are read
// from the threads' shared slots (stats.ts); per-connection facts are asked of the owning
// threads with a `monitor` control message and merged here.
//
// Monitoring must not slow message traffic however hard it is polled, so the work a request
// causes is bounded: the threads answer a given question (say, every connection with its
// subscriptions) at most once per FRESH_MS, whatever asked it in between, and the documents
// built from those answers are reused for identical requests within the same window. An
// answer is thus at most FRESH_MS old (its `now` says when it was made); /varz and /healthz,
// read from shared memory, are always current.

import http from 'node:http';
import path from 'node:path';
import type net from 'node:net';
import type { Options } from '../config/options.ts';
import type { ServerIdentity } from '../protocol/info.ts';
import type { ControlMessage } from '../threads/control.ts';
import { log } from '../log.ts';
import { joinHostPort, listenLikeGo } from '../protocol/hostport.ts';
import { Stat, StatsReader, createStats } from './stats.ts';
import type { ClusterReply, ConnRecord, LeafRecord, LeafzReply, MonitorQuery, RouteRecord, SubszReply } from './query.ts';
import { SubsMode } from './query.ts';
import * as ep from './endpoints.ts';
import { liveSnapshot, type ThreadInfo } from './live.ts';
import { metricsText } from './metrics.ts';
import { indexPage, livePage } from './page.ts';
import { QueryError, marshal, marshalIndent, parseQuery } from './gofmt.ts';

/** What the server gives the monitor: its threads and listeners, never their internals. */
export interface MonitorHost {
  readonly opts: Options;
  readonly identity: ServerIdentity;
  /** Kind of each thread of the shared layout: client workers, then the route thread if any. */
  readonly threadKinds: readonly ('client' | 'route' | 'gateway' | 'leaf')[];
  /** Post to a thread's port; false when the thread is down (being replaced). */
  post(thread: number, msg: ControlMessage): boolean;
  threadReady(thread: number): boolean;
  /** Client connections a worker holds (the main thread's placement counters). */
  connections(thread: number): number;
  /** Bytes waiting in the rings into a thread. */
  ringBacklog(thread: number): number;
  clusterPort(): number;
  gatewayPort?(): number;
  /** The leafnode listener's port (0: none). */
  leafPort(): number;
  /** Listeners bound: the client one, and the route one when clustered. */
  listening(): { server: boolean; route: boolean };
}

/** How long a thread gets to answer before the page is built without it. */
const ASK_TIMEOUT_MS = 3000;
/** Threads' answers and built documents are reused for this long (see the file comment). */
const FRESH_MS = 250;
/** Built documents kept at once (distinct query strings beyond this are not cached). */
const MAX_CACHED_REPLIES = 64;
/**
 * Open HTTP connections kept at once (memory stays bounded: each holds at most
 * maxHeaderSize of unparsed headers). nats-server has no cap; at the cap skein closes the
 * oldest connection that has no request in progress (idle keep-alive, or headers still
 * incomplete) to make room, so a flood of half-open clients cannot lock out /healthz.
 */
const MAX_HTTP_CONNECTIONS = 256;
/** Headers not complete by then: the request is dropped with 408 (Node checks every second). */
const HEADERS_TIMEOUT_MS = 5_000;

interface Pending {
  replies: { thread: number; data: unknown }[];
  waiting: number;
  resolve: (r: { thread: number; data: unknown }[]) => void;
  timer: NodeJS.Timeout;
}

interface Reply {
  status: number;
  type: string;
  /** A reused document is kept encoded. */
  body: string | Buffer;
}

const json = (v: unknown): Reply => ({ status: 200, type: 'application/json', body: marshalIndent(v) });

/** Go's path.Join(base, p) as nats-server's basePath uses it: cleaned, no trailing slash. */
function basePath(base: string, p: string): string {
  const joined = path.posix.join(base, p);
  return joined.length > 1 ? joined.replace(/\/+$/, '') : joined;
}

/** opts.go normalizeBasePath. */
function normalizeBasePath(p: string | undefined): string {
  if (p === undefined || p === '') return '/';
  return path.posix.normalize(p.startsWith('/') ? p : `/${p}`).replace(/(.)\/+$/, '$1');
}

export class Monitor {
  readonly statsBuffer: SharedArrayBuffer;
  readonly stats: StatsReader;
  readonly startedAt = Date.now();
  configLoadedAt = this.startedAt;
  totalConnections = 0;
  readonly httpReqStats = new Map<string, number>();
  private readonly host: MonitorHost;
  private readonly base: string;
  private readonly routes = new Map<
    string,
    { stat: string; cached: boolean; handle: (q: Map<string, string>) => Reply | Promise<Reply> }
  >();
  private server: http.Server | null = null;
  /** Open HTTP connections (see MAX_HTTP_CONNECTIONS). */
  private readonly sockets = new Set<net.Socket>();
  /** Those of them with no request in progress, oldest first: the ones evicted at the cap. */
  private readonly waitingSockets = new Set<net.Socket>();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Threads' answers by question, asked at `at` (in flight or done). */
  private readonly answers = new Map<string, { at: number; answer: Promise<{ thread: number; data: unknown }[]> }>();
  /** Built documents by request target. */
  private readonly replies = new Map<string, { at: number; reply: Promise<Reply> }>();
  private cpuSample = { at: Date.now(), usage: process.cpuUsage(), pct: 0 };
  private ready = false;

  constructor(host: MonitorHost) {
    this.host = host;
    this.statsBuffer = createStats(host.threadKinds.length);
    this.stats = new StatsReader(this.statsBuffer, host.threadKinds.length);
    this.base = normalizeBasePath(host.opts.httpBasePath);
    // `cached`: the endpoints that ask the threads (their documents are reused within FRESH_MS).
    const add = (p: string, stat: string, handle: (q: Map<string, string>) => Reply | Promise<Reply>, cached = false): void => {
      this.routes.set(basePath(this.base, p), { stat, cached, handle });
    };
    add('/', '/', () => ({ status: 200, type: 'text/html; charset=utf-8', body: indexPage(this.base) }));
    add('/varz', '/varz', () => json(ep.varz(this.source())));
    add('/connz', '/connz', (q) => this.connz(q), true);
    add('/routez', '/routez', (q) => this.routez(q), true);
    add('/gatewayz', '/gatewayz', (q) => this.gatewayz(q), true);
    add('/leafz', '/leafz', (q) => this.leafz(q), true);
    add('/subsz', '/subsz', (q) => this.subsz(q), true);
    add('/subscriptionsz', '/subsz', (q) => this.subsz(q), true);
    add('/accountz', '/accountz', (q) => this.accountz(q), true);
    add('/healthz', '/healthz', (q) => {
      const h = ep.healthz(this.source(), q);
      return { status: h.status, type: 'application/json', body: marshal(h.body) };
    });
    add('/metrics', '/metrics', (q) => this.metrics(q), true);
    add('/live', '/live', () => ({ status: 200, type: 'text/html; charset=utf-8', body: livePage() }));
    add('/skeinz', '/skeinz', () => this.skeinz(), true);
  }

  get enabled(): boolean {
    return this.host.opts.httpPort !== undefined && this.host.opts.httpPort !== 0;
  }

  /** Bind the monitoring port (before the client listener, as nats-server does). */
  async start(): Promise<void> {
    if (!this.enabled) return;
    const o = this.host.opts;
    const bindHost = o.httpHost ?? o.host;
    const server = http.createServer(
      {
        // Slow or half-open clients: give up on a request whose headers or body do not arrive.
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: 20_000,
        keepAliveTimeout: 5_000,
        connectionsCheckingInterval: 1_000,
        maxHeaderSize: 64 * 1024,
      },
      (req, res) => this.handle(req, res),
    );
    server.on('connection', (socket: net.Socket) => this.admit(socket));
    // A client that stops reading its answer is dropped instead of holding memory.
    server.setTimeout(30_000, (socket: net.Socket) => socket.destroy());
    this.server = server;
    try {
      await listenLikeGo(server, bindHost, o.httpPort! < 0 ? 0 : o.httpPort!, 511);
    } catch (err) {
      throw new Error(`can't listen to the monitor port: ${(err as Error).message}`);
    }
    server.on('error', (err) => log.error(`Monitoring listener error: ${err.message}`));
    const port = (server.address() as net.AddressInfo).port;
    log.info(`Starting http monitor on ${joinHostPort(bindHost, port)}`);
  }

  /** Where the monitoring port listens (for the ports file), or null when it does not. */
  address(): { host: string; port: number } | null {
    const a = this.server?.address();
    if (a === null || a === undefined || typeof a === 'string') return null;
    return { host: this.host.opts.httpHost ?? this.host.opts.host, port: a.port };
  }

  /** Every thread is up and every listener bound: /healthz says ok. */
  setReady(ready: boolean): void {
    this.ready = ready;
  }

  stop(): void {
    this.server?.close();
    this.server?.closeAllConnections();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(p.replies);
    }
    this.pending.clear();
  }

  /** A client connection was handed to a worker (/varz total_connections). */
  connectionAccepted(): void {
    this.totalConnections++;
  }

  /** A thread's answer to a `monitor` control message. */
  onReply(msg: { id: number; thread: number; data: unknown }): void {
    const p = this.pending.get(msg.id);
    if (p === undefined) return;
    p.replies.push({ thread: msg.thread, data: msg.data });
    if (--p.waiting === 0) {
      clearTimeout(p.timer);
      this.pending.delete(msg.id);
      p.resolve(p.replies);
    }
  }

  // ------------------------------------------------------------------------ HTTP

  /** A new HTTP connection: make room at the cap by closing the oldest one without a request in progress. */
  private admit(socket: net.Socket): void {
    if (this.sockets.size >= MAX_HTTP_CONNECTIONS) {
      const oldest = this.waitingSockets.values().next();
      if (oldest.done === true) {
        socket.destroy(); // every connection has a request in progress: refuse this one
        return;
      }
      this.forget(oldest.value);
      oldest.value.destroy();
    }
    this.sockets.add(socket);
    this.waitingSockets.add(socket);
    socket.once('close', () => this.forget(socket));
  }

  private forget(socket: net.Socket): void {
    this.sockets.delete(socket);
    this.waitingSockets.delete(socket);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    this.waitingSockets.delete(socket);
    // Answered: waiting again (keep-alive), now the newest.
    res.once('finish', () => {
      if (this.sockets.has(socket) && !socket.destroyed) this.waitingSockets.add(socket);
    });
    req.resume(); // no endpoint reads a body
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const pathname = q < 0 ? raw : raw.slice(0, q);
    const route = this.routes.get(pathname);
    if (route === undefined) {
      this.send(res, { status: 404, type: 'text/plain; charset=utf-8', body: '404 page not found\n' }, req.method);
      return;
    }
    const query = parseQuery(q < 0 ? '' : raw.slice(q + 1));
    this.httpReqStats.set(route.stat, (this.httpReqStats.get(route.stat) ?? 0) + 1);
    const reply = route.cached ? this.cachedReply(pathname, query, route.handle) : this.run(query, route.handle);
    void reply.then((r) => {
      const callback = query.get('callback') ?? '';
      if (callback !== '' && r.status === 200 && r.type === 'application/json') {
        r = { status: 200, type: 'application/javascript', body: `${callback}(${r.body.toString()})` };
      }
      this.send(res, r, req.method);
    });
  }

  private run(query: Map<string, string>, handle: (q: Map<string, string>) => Reply | Promise<Reply>): Promise<Reply> {
    try {
      return Promise.resolve(handle(query)).catch((err: unknown) => this.failure(err));
    } catch (err) {
      return Promise.resolve(this.failure(err));
    }
  }

  /** The document for this request built within FRESH_MS, or a new one. */
  private cachedReply(
    pathname: string,
    query: Map<string, string>,
    handle: (q: Map<string, string>) => Reply | Promise<Reply>,
  ): Promise<Reply> {
    const now = Date.now();
    // The JSONP wrapper is applied per request; the document does not depend on it.
    const key = `${pathname}?${[...query]
      .filter(([k]) => k !== 'callback')
      .map(([k, v]) => `${k}=${v}`)
      .join('&')}`;
    const hit = this.replies.get(key);
    if (hit !== undefined && now - hit.at < FRESH_MS) return hit.reply;
    const reply = this.run(query, handle).then((r) => ({ ...r, body: Buffer.from(r.body) }));
    for (const [k, e] of this.replies) if (now - e.at >= FRESH_MS) this.replies.delete(k);
    if (this.replies.size < MAX_CACHED_REPLIES) this.replies.set(key, { at: now, reply });
    return reply;
  }

  private failure(err: unknown): Reply {
    if (err instanceof QueryError) return { status: 400, type: 'text/plain; charset=utf-8', body: err.message };
    log.error(`Monitoring request failed: ${(err as Error).stack ?? String(err)}`);
    return { status: 500, type: 'text/plain; charset=utf-8', body: 'internal error\n' };
  }

  private send(res: http.ServerResponse, r: Reply, method: string | undefined): void {
    if (res.destroyed) return;
    const body = typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : r.body;
    res.writeHead(r.status, { 'Content-Type': r.type, 'Content-Length': body.length });
    res.end(method === 'HEAD' ? undefined : body);
  }

  // ------------------------------------------------------------------ asking threads

  private threadsOf(kind: 'client' | 'route' | 'gateway' | 'leaf'): number[] {
    const out: number[] = [];
    this.host.threadKinds.forEach((k, t) => {
      if (k === kind) out.push(t);
    });
    return out;
  }

  /** Ask threads one question; the same question within FRESH_MS gets the same answer. */
  private ask(threads: number[], query: MonitorQuery): Promise<{ thread: number; data: unknown }[]> {
    const key = `${threads.join(',')}:${JSON.stringify(query)}`;
    const now = Date.now();
    const known = this.answers.get(key);
    if (known !== undefined && now - known.at < FRESH_MS) return known.answer;
    const id = this.nextId++;
    const p = new Promise<{ thread: number; data: unknown }[]>((resolve) => {
      const entry: Pending = { replies: [], waiting: 0, resolve, timer: setTimeout(() => this.expire(id), ASK_TIMEOUT_MS) };
      this.pending.set(id, entry);
      for (const t of threads) if (this.host.post(t, { type: 'monitor', id, query })) entry.waiting++;
      if (entry.waiting === 0) this.expire(id);
    });
    // Questions are few (a kind and a detail level), so this map stays small.
    this.answers.set(key, { at: now, answer: p });
    return p;
  }

  private expire(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    p.resolve(p.replies);
  }

  // -------------------------------------------------------------------- endpoints

  private source(): ep.MonitorSource {
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
    const host = this.host;
    return {
      opts: host.opts,
      identity: host.identity,
      stats: this.stats,
      startedAt: this.startedAt,
      configLoadedAt: this.configLoadedAt,
      httpReqStats: this.httpReqStats,
      totalConnections: this.totalConnections,
      connections: () => self.clientConnections(),
      clusterPort: () => host.clusterPort(),
      gatewayPort: () => host.gatewayPort?.() ?? 0,
      leafPort: () => host.leafPort(),
      // Each server-to-server thread publishes its connection count in the `routes` slot.
      routeCount: () => self.threadsOf('route').reduce((n, t) => n + self.stats.value(t, Stat.routes), 0),
      leafCount: () => self.threadsOf('leaf').reduce((n, t) => n + self.stats.value(t, Stat.routes), 0),
      processUsage: () => self.processUsage(),
      readyChecks: () => {
        const l = host.listening();
        return { server: l.server && self.ready, route: l.route };
      },
    };
  }

  private clientConnections(): number {
    let n = 0;
    for (const t of this.threadsOf('client')) n += this.host.connections(t);
    return n;
  }

  /** RSS, and CPU as a percentage of one core over the last second or more (as nats-server's pse). */
  private processUsage(): { rss: number; cpu: number } {
    const now = Date.now();
    const s = this.cpuSample;
    if (now - s.at >= 1000) {
      const usage = process.cpuUsage();
      const usedUs = usage.user - s.usage.user + usage.system - s.usage.system;
      const pct = (usedUs / 1000 / (now - s.at)) * 100;
      this.cpuSample = { at: now, usage, pct: Math.round(pct * 10) / 10 };
    }
    return { rss: process.memoryUsage.rss(), cpu: this.cpuSample.pct };
  }

  private async connz(q: Map<string, string>): Promise<Reply> {
    const o = ep.connzOptions(q);
    const replies = await this.ask(this.threadsOf('client'), {
      kind: 'connz',
      open: o.state !== 'closed',
      closed: o.state !== 'open',
      subs: o.subs,
    });
    const open: ConnRecord[] = [];
    const closed: ConnRecord[] = [];
    for (const r of replies) for (const c of (r.data as ConnRecord[] | null) ?? []) (c.stop > 0 ? closed : open).push(c);
    // nats-server keeps its newest MaxClosedClients; each worker keeps that many of its own.
    closed.sort((a, b) => a.stop - b.stop);
    return json(ep.connz(this.source(), o, open, closed.slice(-10_000)));
  }

  private async gatewayz(q: Map<string, string>): Promise<Reply> {
    const base = ep.gatewayz(this.source(), q);
    const threads = this.threadsOf('gateway');
    if (threads.length === 0) return json(base);
    const replies = await this.ask(threads, { kind: 'gatewayz', accs: ep.gatewayzAccs(q), gwName: q.get('gw_name') ?? '' });
    const data = replies[0]?.data as Record<string, unknown> | null | undefined;
    if (data === null || data === undefined) return json(base);
    return json({ server_id: base.server_id, now: base.now, ...data });
  }

  private async routez(q: Map<string, string>): Promise<Reply> {
    const o = ep.routezOptions(q);
    const replies = await this.ask(this.threadsOf('route'), { kind: 'routez', subs: o.subs });
    const routes: RouteRecord[] = [];
    for (const r of replies) for (const x of (r.data as RouteRecord[] | null) ?? []) routes.push(x);
    return json(ep.routez(this.source(), o.subs, routes));
  }

  private async leafz(q: Map<string, string>): Promise<Reply> {
    const subs = ep.leafzSubs(q);
    const replies = await this.ask(this.threadsOf('leaf'), { kind: 'leafz', subs });
    const leafs: LeafRecord[] = [];
    for (const r of replies) for (const x of (r.data as LeafzReply | null)?.leafs ?? []) leafs.push(x);
    return json(ep.leafz(this.source(), subs, leafs));
  }

  private async subszStats(list: boolean): Promise<{ workers: SubszReply[]; routeSubs: number }> {
    const replies = await this.ask(this.threadsOf('client'), { kind: 'subsz', list });
    const workers = replies.map((r) => r.data as SubszReply).filter((r) => r !== null);
    let routeSubs = 0;
    for (const t of this.threadsOf('route')) routeSubs += this.stats.value(t, Stat.subscriptions);
    return { workers, routeSubs };
  }

  private async subsz(q: Map<string, string>): Promise<Reply> {
    const o = ep.subszOptions(q);
    const { workers, routeSubs } = await this.subszStats(o.subs);
    return json(ep.subsz(this.source(), o, workers, routeSubs));
  }

  private async accountz(q: Map<string, string>): Promise<Reply> {
    let stats: Record<string, unknown> | null = null;
    if (ep.accountzWantsDetail(q)) {
      const { workers, routeSubs } = await this.subszStats(false);
      stats = ep.subsz(this.source(), { subs: false, offset: 0, limit: 0, test: '', acc: '' }, workers, routeSubs);
    }
    return json(ep.accountz(this.source(), q, stats));
  }

  private async clusterView(): Promise<ClusterReply | null> {
    const route = this.threadsOf('route');
    if (route.length === 0) return null;
    const replies = await this.ask(route, { kind: 'cluster' });
    return (replies[0]?.data as ClusterReply | undefined) ?? null;
  }

  private async metrics(q: Map<string, string>): Promise<Reply> {
    // `prefix` replaces the `gnatsd` namespace, as the exporter's -prefix (the Helm chart uses `nats`).
    const prefix = q.get('prefix') || 'gnatsd';
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(prefix)) throw new QueryError(`invalid metrics prefix: ${prefix}`);
    const src = this.source();
    const gw = this.threadsOf('gateway');
    const [connz, routes, subs, gateways] = await Promise.all([
      this.ask(this.threadsOf('client'), { kind: 'connz', open: true, closed: false, subs: SubsMode.none }),
      this.ask(this.threadsOf('route'), { kind: 'routez', subs: SubsMode.none }),
      this.subszStats(false),
      gw.length === 0 ? Promise.resolve([]) : this.ask(gw, { kind: 'gatewayz', accs: false, gwName: '' }),
    ]);
    const open: ConnRecord[] = [];
    for (const r of connz) for (const c of (r.data as ConnRecord[] | null) ?? []) open.push(c);
    const routeList: RouteRecord[] = [];
    for (const r of routes) for (const x of (r.data as RouteRecord[] | null) ?? []) routeList.push(x);
    const connzOpts = ep.connzOptions(new Map());
    return {
      status: 200,
      type: 'text/plain; version=0.0.4; charset=utf-8',
      body: metricsText(
        {
          serverId: src.identity.serverId,
          varz: ep.varz(src),
          connz: ep.connz(src, connzOpts, open, []),
          routez: ep.routez(src, SubsMode.none, routeList),
          subsz: ep.subsz(src, { subs: false, offset: 0, limit: 0, test: '', acc: '' }, subs.workers, subs.routeSubs),
          healthz: ep.healthz(src, new Map()).body,
          gatewayz: (gateways[0]?.data as Record<string, unknown> | null | undefined) ?? null,
          threads: this.threadInfo(),
        },
        prefix,
      ),
    };
  }

  private threadInfo(): ThreadInfo[] {
    return this.host.threadKinds.map((kind, t) => ({
      thread: t,
      kind,
      alive: this.host.threadReady(t),
      connections: kind === 'client' ? this.host.connections(t) : this.stats.value(t, Stat.routes),
      ringBacklog: this.host.ringBacklog(t),
      stats: this.stats,
    }));
  }

  private async skeinz(): Promise<Reply> {
    const src = this.source();
    const gw = this.threadsOf('gateway');
    const [cluster, leafReplies, gatewayReplies] = await Promise.all([
      this.clusterView(),
      this.ask(this.threadsOf('leaf'), { kind: 'leafz', subs: false }),
      gw.length === 0 ? Promise.resolve([]) : this.ask(gw, { kind: 'gatewayz', accs: false, gwName: '' }),
    ]);
    const gatewayz = (gatewayReplies[0]?.data as Record<string, unknown> | null | undefined) ?? null;
    const leafs: LeafRecord[] = [];
    for (const r of leafReplies) for (const x of (r.data as LeafzReply | null)?.leafs ?? []) leafs.push(x);
    return json(liveSnapshot(src, ep.varz(src), this.threadInfo(), cluster, gatewayz, leafs));
  }
}
