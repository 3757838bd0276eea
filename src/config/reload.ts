// Config reload (SIGHUP), as nats-server's server/reload.go: the file is read again with the
// command-line flags laid over it, compared with the running options field by field, and
// either refused as a whole (a field that cannot change while running: nats-server's message
// `config reload not supported for <Field>: old=<v>, new=<v>`, the server keeps running on
// the old options) or applied: main logs `Reloaded: ...` per change, pushes the new options
// to every worker and the route thread by control message, and logs `Reloaded server
// configuration`.
//
// The fields are visited in the order of nats-server's Options struct, so the first refused
// field and the order of the `Reloaded:` lines are the ones nats-server gives. A field this
// table does not know (a key added later) cannot be reloaded: the safe default, as in
// nats-server's diffOptions.
//
// Runs on the main thread only.

import { DEFAULT_AUTH_TIMEOUT_MS, DEFAULT_TLS_TIMEOUT_MS, goDuration, type ClusterOptions, type Options } from './options.ts';
import { logCapacity } from '../threads/shared.ts';
import { sameRoute } from '../conn/route.ts';

export class ReloadError extends Error {
  readonly code = 'RELOAD_NOT_SUPPORTED';
  constructor(reason: string) {
    super(reason);
    this.name = 'ReloadError';
  }
}

/** What the running server needs to know to apply a reload. */
export interface ReloadContext {
  /** The client port actually bound (the options may say -1). */
  port: number;
  /** The route port actually bound, when clustered. */
  clusterPort: number;
  /** Threads in the shared layout (rings were sized at start for max_payload and max_control_line). */
  threads: number;
}

export interface ReloadPlan {
  /** `Reloaded: ...` lines, in nats-server's order. */
  lines: string[];
  /** The options to run with (ports as bound). */
  next: Options;
  logging: boolean;
  pidFile: boolean;
  portsFileDir: { old?: string; new?: string } | null;
  /** The new max_connections when it changed. */
  maxConnections: number | null;
  routes: { add: string[]; remove: string[] };
}

type Diff = (cur: Options, next: Options, plan: ReloadPlan, ctx: ReloadContext) => void;

/** Keys whose values never go into a log line (passwords, tokens, PEM text). */
const SECRET_KEYS = new Set(['password', 'pass', 'token', 'key', 'cert', 'ca']);

/**
 * Go's %v of a value in a reload error: a missing string is empty, a duration is Go's. Unlike
 * nats-server (which prints whole structs, passwords included), secrets are left out.
 */
function shown(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return `[${v.map(shown).join(' ')}]`;
  if (typeof v === 'object') {
    return JSON.stringify(v, (k, x: unknown) => (SECRET_KEYS.has(k) && x !== undefined ? '[REDACTED]' : x));
  }
  return String(v);
}

function refuse(name: string, old: unknown, next: unknown): never {
  throw new ReloadError(`config reload not supported for ${name}: old=${shown(old)}, new=${shown(next)}`);
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** A field nats-server cannot reload: any change refuses the whole reload. */
const fixed = (key: keyof Options, goName: string, show: (v: unknown) => unknown = (v) => v): [string[], Diff] =>
  [[key], (cur, next) => { if (!same(cur[key], next[key])) refuse(goName, show(cur[key]), show(next[key])); }];

const durationShown = (v: unknown): unknown => (typeof v === 'number' ? goDuration(v) : v);

/** A field applied as it is (the workers read it live), with nats-server's log line. */
const live = (key: keyof Options, line: (v: Options) => string, also?: (plan: ReloadPlan) => void): [string[], Diff] =>
  [[key], (cur, next, plan) => {
    if (same(cur[key], next[key])) return;
    plan.lines.push(line(next));
    also?.(plan);
  }];

const logging = (plan: ReloadPlan): void => { plan.logging = true; };

/**
 * max_control_line may not outgrow the interest logs sized for it at start (a subscription is
 * logged whole). max_payload is free: a message of any size crosses threads.
 */
function logFits(cur: Options, next: Options, ctx: ReloadContext): void {
  if (logCapacity(ctx.threads, next.maxControlLine) > logCapacity(ctx.threads, cur.maxControlLine)) {
    throw new ReloadError(`config reload not supported for MaxControlLine: old=${cur.maxControlLine}, new=${next.maxControlLine} ` +
      '(skein sized the interest logs between its threads for the old value at start; restart to raise it this far)');
  }
}

/** The Options fields in nats-server's Options struct order, each with how it reloads. */
const FIELDS: [string[], Diff][] = [
  [['configFile'], () => {}],
  fixed('serverName', 'ServerName'),
  fixed('host', 'Host'),
  [['port'], (cur, next, _plan, ctx) => {
    // -1 (random) means "the port already bound", as nats-server's reload does.
    const was = cur.port === -1 ? ctx.port : cur.port;
    const now = next.port === -1 ? was : next.port;
    if (was !== now) refuse('Port', was, now);
    next.port = cur.port;
  }],
  live('clientAdvertise', (o) => `Reload: client_advertise = ${o.clientAdvertise ?? ''}`),
  live('trace', (o) => `Reloaded: trace = ${o.trace}`, logging),
  live('debug', (o) => `Reloaded: debug = ${o.debug}`, logging),
  [['logtime'], (cur, next, plan) => {
    if ((cur.logtime ?? true) === (next.logtime ?? true)) return;
    plan.lines.push(`Reloaded: logtime = ${next.logtime ?? true}`);
    plan.logging = true;
  }],
  live('maxConnections', (o) => `Reloaded: max_connections = ${o.maxConnections}`, undefined),
  fixed('maxSubscriptions', 'MaxSubs'),
  [['authorization'], (cur, next, plan) => {
    const a = cur.authorization;
    const b = next.authorization;
    // nats-server always reloads users (and so re-checks every client); the rest on change.
    plan.lines.push('Reloaded: authorization users');
    if (a?.user !== b?.user) plan.lines.push('Reloaded: authorization username');
    if (a?.password !== b?.password) plan.lines.push('Reloaded: authorization password');
    if (a?.token !== b?.token) plan.lines.push('Reloaded: authorization token');
    if (!same(a?.nkeys, b?.nkeys)) plan.lines.push('Reloaded: authorization nkey users');
  }],
  fixed('noSystemAccount', 'NoSystemAccount'),
  live('pingIntervalMs', (o) => `Reloaded: ping_interval = ${goDuration(o.pingIntervalMs)}`),
  live('pingMax', (o) => `Reloaded: ping_max = ${o.pingMax}`),
  fixed('httpHost', 'HTTPHost'),
  fixed('httpPort', 'HTTPPort'),
  [['authorization.timeout'], (cur, next, plan) => {
    const was = authTimeoutMs(cur);
    const now = authTimeoutMs(next);
    if (was !== now) plan.lines.push(`Reloaded: authorization timeout = ${now / 1000}`);
  }],
  [['maxControlLine'], (cur, next, plan, ctx) => {
    if (cur.maxControlLine === next.maxControlLine) return;
    logFits(cur, next, ctx);
    plan.lines.push(`Reloaded: max_control_line = ${next.maxControlLine}`);
  }],
  [['maxPayload'], (cur, next, plan) => {
    if (cur.maxPayload === next.maxPayload) return;
    plan.lines.push(`Reloaded: max_payload = ${next.maxPayload}`);
  }],
  fixed('maxPending', 'MaxPending'),
  [['tls'], (cur, next, plan) => {
    // reload.go tlsTimeoutOption and tlsOption. The files were read again with the options,
    // and every thread builds a secure context for the new block on its next handshake, so
    // rotated certificates, keys and CAs serve new connections at once (established ones
    // keep theirs, as in nats-server). nats-server's tls.Config is never deep-equal to the
    // one it had, so it logs `tls = enabled` on every reload while TLS is on.
    const was = (cur.tls?.timeoutMs ?? DEFAULT_TLS_TIMEOUT_MS) / 1000;
    const now = (next.tls?.timeoutMs ?? DEFAULT_TLS_TIMEOUT_MS) / 1000;
    if (was !== now) plan.lines.push(`Reloaded: tls timeout = ${now}`);
    if (cur.tls !== undefined || next.tls !== undefined) plan.lines.push(`Reloaded: tls = ${next.tls !== undefined ? 'enabled' : 'disabled'}`);
  }],
  [['cluster'], (cur, next, plan, ctx) => diffCluster(cur.cluster, next.cluster, plan, ctx)],
  fixed('gateway', 'Gateway'),
  fixed('leafNodes', 'LeafNode'),
  [['pidFile'], (cur, next, plan) => {
    if (cur.pidFile === next.pidFile) return;
    plan.pidFile = next.pidFile !== undefined;
    if (next.pidFile !== undefined) plan.lines.push(`Reloaded: pid_file = ${next.pidFile}`);
  }],
  [['portsFileDir'], (cur, next, plan) => {
    if (cur.portsFileDir === next.portsFileDir) return;
    plan.portsFileDir = { old: cur.portsFileDir, new: next.portsFileDir };
    plan.lines.push(`Reloaded: ports_file_dir = ${next.portsFileDir ?? ''}`);
  }],
  live('logFile', (o) => `Reloaded: log_file = ${o.logFile ?? ''}`, logging),
  [['cluster.routes'], (_cur, _next, plan) => {
    if (plan.routes.add.length > 0 || plan.routes.remove.length > 0) plan.lines.push('Reloaded: cluster routes');
  }],
  live('writeDeadlineMs', (o) => `Reloaded: write_deadline = ${goDuration(o.writeDeadlineMs)}`),
  fixed('lameDuckDurationMs', 'LameDuckDuration', durationShown),
  fixed('lameDuckGracePeriodMs', 'LameDuckGracePeriod', durationShown),
  fixed('workers', 'Workers'), // skein's own: the thread layout is built at start
];

const KNOWN = new Set(FIELDS.flatMap(([keys]) => keys));

/**
 * nats-server's reload.go diffOptions: the plan to go from `cur` to `next`, or a ReloadError
 * for the first field that cannot change while running. `next` is adjusted in place (ports
 * that were random stay as bound).
 */
export function planReload(cur: Options, next: Options, ctx: ReloadContext): ReloadPlan {
  const plan: ReloadPlan = {
    lines: [],
    next,
    logging: false,
    pidFile: false,
    portsFileDir: null,
    maxConnections: cur.maxConnections !== next.maxConnections ? next.maxConnections : null,
    routes: { add: [], remove: [] },
  };
  for (const [, diff] of FIELDS) diff(cur, next, plan, ctx);
  // Anything else (a key this table does not know yet): only an unchanged value reloads.
  const keys = new Set([...Object.keys(cur), ...Object.keys(next)]);
  for (const key of keys) {
    if (KNOWN.has(key)) continue;
    const a = (cur as unknown as Record<string, unknown>)[key];
    const b = (next as unknown as Record<string, unknown>)[key];
    if (!same(a, b)) refuse(key, a, b);
  }
  return plan;
}

/**
 * The auth timeout in force (opts.go setBaselineOptions): `authorization.timeout`, else the
 * TLS timeout + 1 s with `tls`, else 2 s. nats-server logs its change whether or not users
 * are configured.
 */
function authTimeoutMs(o: Options): number {
  return o.authorization?.timeoutMs ?? (o.tls !== undefined ? o.tls.timeoutMs + 1000 : DEFAULT_AUTH_TIMEOUT_MS);
}

/** reload.go validateClusterOpts, clusterOption and routesOption (diffRoutes). */
function diffCluster(a: ClusterOptions | undefined, b: ClusterOptions | undefined, plan: ReloadPlan, ctx: ReloadContext): void {
  if (a === undefined && b === undefined) return;
  // nats-server cannot turn clustering on or off while running either (its cluster port
  // check refuses it): the route listener and the route thread exist from start or not at all.
  const hostA = a?.host ?? '';
  const hostB = b?.host ?? '';
  if (hostA !== hostB) throw new ReloadError(`config reload not supported for cluster host: old=${hostA}, new=${hostB}`);
  const portA = a === undefined ? 0 : a.port === -1 ? ctx.clusterPort : a.port;
  const portB = b === undefined ? 0 : b.port === -1 ? portA : b.port;
  if (portA !== portB) throw new ReloadError(`config reload not supported for cluster port: old=${portA}, new=${portB}`);
  if (a === undefined || b === undefined) return;
  b.port = a.port;
  // Route TLS can be rotated (the route thread dials and accepts with the new block from
  // now on), not turned on or off: routes already up would keep speaking the other way.
  if ((a.tls === undefined) !== (b.tls === undefined)) {
    throw new ReloadError(`config reload not supported for cluster tls: old=${a.tls ? 'enabled' : 'disabled'}, ` +
      `new=${b.tls ? 'enabled' : 'disabled'} (restart to change it)`);
  }
  const { routes: routesA, ...restA } = a;
  const { routes: routesB, ...restB } = b;
  // As for the top-level tls, nats-server's cluster options hold a tls.Config that never
  // compares equal: with route TLS every reload logs `Reloaded: cluster`.
  if (!same(restA, restB) || b.tls !== undefined) plan.lines.push('Reloaded: cluster');
  const add = routesB.filter((r) => !routesA.some((o) => sameRoute(o, r)));
  const remove = routesA.filter((r) => !routesB.some((n) => sameRoute(n, r)));
  plan.routes = { add, remove };
}
