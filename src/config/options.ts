// The one Options type, its defaults and ConfigError. Filled from two front ends (config file:
// config.ts, command-line flags: flags.ts) and validated as a whole by load.ts; everything else
// reads Options, never raw YAML or argv. A leaf: it imports nothing of ours, so every part of
// the server can read Options without pulling the loaders in.

import os from 'node:os';

export interface UserPermissions {
  publish?: { allow?: string[]; deny?: string[] };
  subscribe?: { allow?: string[]; deny?: string[] };
}

export interface UserEntry {
  user: string;
  password: string; // plaintext or a bcrypt hash (nats-server's isBcrypt)
  permissions?: UserPermissions;
}

/** `authorization.users: [{nkey: "U...", permissions}]`: authenticated by signing the INFO nonce. */
export interface NkeyUserEntry {
  nkey: string;
  permissions?: UserPermissions;
}

/**
 * A `tls` block (top level for clients, `cluster.tls` for routes), as nats-server's parseTLS
 * reads it. The PEM texts are read once on the main thread (src/conn/tls.ts loadTlsFiles) and
 * travel to the threads with the options; each thread builds its own secure context from them.
 */
export interface TlsOptions {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  verify: boolean; // `verify` (or implied by `verify_and_map`): require a client certificate signed by ca_file
  map: boolean; // `verify_and_map`: the certificate names the user
  insecure: boolean; // dialling side: do not verify the peer's chain and host name
  timeoutMs: number; // handshake deadline; default 2s (TLS_TIMEOUT)
  /** nats-server (Go) cipher suite names; undefined: nats-server's defaults. */
  cipherSuites?: string[];
  /** Go curve names (X25519, CurveP256, ...); undefined: nats-server's defaults. */
  curvePreferences?: string[];
  cert?: string;
  key?: string;
  ca?: string;
}

/** Present only when clients must authenticate (some user, token or users list is set). */
export interface AuthorizationOptions {
  user?: string;
  password?: string;
  token?: string;
  users?: UserEntry[];
  nkeys?: NkeyUserEntry[];
  timeoutMs: number; // `timeout` in seconds in the file (may be fractional); default 2s (tls timeout + 1s with TLS)
}

/** Present only when the server listens for routes (nats-server clusters only when cluster.port != 0). */
export interface ClusterOptions {
  name?: string;
  host: string; // default 0.0.0.0 (not the client host, as in nats-server)
  port: number; // -1 means random
  /** Present only when routes must authenticate. Never has a token (a config error). */
  authorization?: { user?: string; password?: string; token?: string; timeoutMs: number };
  routes: string[]; // trimmed URLs, duplicates dropped; may include this server (the server skips itself)
  noAdvertise: boolean;
  connectRetries: number;
  advertise?: string; // `advertise` / `cluster_advertise` / --cluster_advertise: "host:port"
  tls?: TlsOptions; // routes: both sides present a certificate and verify the peer's
}

/** One entry of `gateway.gateways`: a remote gateway (cluster) this server dials. */
export interface RemoteGatewayOptions {
  name: string;
  /** `url` (appended) and `urls`, trimmed, duplicates dropped; may carry `user:pass@`. */
  urls: string[];
  /** The remote's own `tls` block; absent: the gateway block's `tls` applies (nats-server's newGateway). */
  tls?: TlsOptions;
}

/**
 * Present only when a gateway is configured (a name or a port), as gateway.go
 * validateGatewayOptions reads it; the gateway thread (cluster/gateway-control.ts) runs it.
 */
export interface GatewayOptions {
  name: string;
  host: string; // default 0.0.0.0
  port: number; // -1 means random
  /**
   * Present only when inbound gateways must authenticate (a user). Never a token or a users
   * list (config errors); the password may be a bcrypt hash. An outbound sends the URL's
   * `user:pass@` if it has one, else this user and password (nats-server's sendGatewayConnect).
   */
  authorization?: { user?: string; password?: string; token?: string; timeoutMs: number };
  /**
   * How long an inbound gateway has to send CONNECT, auth or not (nats-server always arms the
   * timer): `authorization.timeout`, else 2 s, or the TLS timeout + 1 s with `tls`. Filled by
   * validateOptions.
   */
  authTimeoutMs: number;
  gateways: RemoteGatewayOptions[];
  advertise?: string;
  connectRetries?: number; // default 0: a gossiped gateway is tried once (one pass over its URLs)
  rejectUnknown?: boolean; // `reject_unknown` / `reject_unknown_cluster`; default false
  /** Gateway TLS (both sides present a certificate and verify the peer's, as for routes). */
  tls?: TlsOptions;
  /**
   * skein only (`interest_mode`): how this server, as the receiving side of an inbound
   * gateway, handles accounts. 'interest-only' (default, as 2.9.10: every account switches at
   * once, `gateway_iom: true`) or 'optimistic' (the seed's mode: RS- per subject without
   * interest, an account switches to interest-only after 1000 of them).
   */
  interestMode?: 'interest-only' | 'optimistic';
}

/** A `leafnodes.authorization` user (nats-server's parseLeafUsers: no permissions there). */
export interface LeafUserEntry {
  user: string;
  password: string; // plaintext or a bcrypt hash
}

/**
 * One `leafnodes.remotes` entry: a leaf connection this server dials and keeps, to one URL at
 * a time (nats-server's RemoteLeafOpts, as far as skein takes it).
 */
export interface LeafRemoteOptions {
  /** `url` / `urls`, trimmed, in the configured order; `user:pass@` in a URL gives CONNECT user/pass. */
  urls: string[];
  /** `account` / `local`: the local account the connection binds to; skein has only `$G`. */
  account: '$G';
  /** `hub: true`: this server is the hub on that connection (CONNECT `is_hub`). */
  hub: boolean;
  /** TLS after the hub's INFO (nats-server also starts TLS when the INFO says tls_required). */
  tls?: TlsOptions;
}

/**
 * Present when a `leafnodes` block is configured. A server accepts leaf connections when
 * `port` is not 0 (it is then a hub) and dials each remote (it is then a leaf); one server
 * can be both, which is how chains are built.
 */
export interface LeafNodeOptions {
  host: string; // default 0.0.0.0
  port: number; // 0: no leaf listener; -1: random (nats-server has no default leaf port)
  advertise?: string; // `advertise` / `leafnode_advertise`: "host:port" put in leafnode_urls
  noAdvertise: boolean; // do not gossip our leaf URL to route peers
  /** Present only when leafs must authenticate (a user, or users). Never a token. */
  authorization?: { user?: string; password?: string; users?: LeafUserEntry[] };
  /**
   * `authorization.timeout`: the hub closes a leaf that has not sent CONNECT by then, with or
   * without credentials configured (the timer always runs). Default 2s; TLS timeout + 1s with tls.
   */
  authTimeoutMs: number;
  reconnectIntervalMs: number; // `reconnect` (whole seconds in the file); default 1s
  remotes: LeafRemoteOptions[];
  tls?: TlsOptions; // accepting side: the INFO says tls_required, the leaf starts TLS after it
}

export interface Options {
  configFile?: string;
  serverName?: string; // default: server id (filled by the server at start)
  host: string; // default 0.0.0.0
  port: number; // default 4222; -1 means random (the server resolves it to 0 for listen)
  workers: number; // default os.availableParallelism()
  maxPayload: number; // 1048576
  maxControlLine: number; // 4096
  maxPending: number; // 67108864
  maxConnections: number; // 65536
  maxSubscriptions: number; // 0 = unlimited
  pingIntervalMs: number; // 2 minutes
  pingMax: number; // 2
  writeDeadlineMs: number; // 10 s
  authorization?: AuthorizationOptions;
  cluster?: ClusterOptions;
  gateway?: GatewayOptions;
  leafNodes?: LeafNodeOptions; // `leafnodes` (`leaf`): a hub (port), a leaf (remotes), or both
  httpPort?: number; // monitoring (`http_port` / `-m`); 0/undefined = off; -1 = random
  debug: boolean;
  trace: boolean;
  pidFile?: string;
  // Added by the config front ends; optional so hand-built Options stay valid.
  httpHost?: string; // monitoring bind host (`http: "host:port"`); default: `host`
  httpBasePath?: string; // `http_base_path`: every monitoring endpoint under this path prefix
  clientAdvertise?: string; // `client_advertise` / --client_advertise: "host:port" for connect_urls
  lameDuckDurationMs?: number; // default 2m; at least 30s
  lameDuckGracePeriodMs?: number; // default 10s; strictly less than the duration
  noSystemAccount?: boolean; // only `true` is accepted: skein has no system account ($SYS)
  tls?: TlsOptions; // client connections (top-level `tls`, or the --tls* flags)
  logFile?: string; // `log_file` / `logfile` / -l: log to this file instead of stderr (reopened on SIGUSR1)
  logtime?: boolean; // `logtime` / -T: timestamps in log lines; default true
  portsFileDir?: string; // `ports_file_dir`: write <dir>/skein_<pid>.ports (JSON, nats-server's Ports)
}

// nats-server's defaults (const.go).
export const DEFAULT_PORT = 4222;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_AUTH_TIMEOUT_MS = 2000;
export const DEFAULT_LAME_DUCK_DURATION_MS = 2 * 60_000;
export const DEFAULT_LAME_DUCK_GRACE_PERIOD_MS = 10_000;
export const MIN_LAME_DUCK_DURATION_MS = 30_000;
export const DEFAULT_TLS_TIMEOUT_MS = 2000;
export const DEFAULT_LEAF_RECONNECT_MS = 1000; // DEFAULT_LEAF_NODE_RECONNECT
export const DEFAULT_LEAFNODE_PORT = 7422; // a remote URL without a port dials this one

/**
 * A reload: `target` (the object every connection of a thread holds) takes `next` in place.
 * Keys `next` lacks become undefined rather than deleted, so the object keeps a fast shape
 * for hot-path reads.
 */
export function updateOptionsInPlace(target: Options, next: Options): void {
  const o = target as unknown as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!(key in next)) o[key] = undefined;
  Object.assign(target, next);
}

export function defaultOptions(): Options {
  return {
    host: DEFAULT_HOST,
    port: DEFAULT_PORT,
    workers: os.availableParallelism(),
    maxPayload: 1024 * 1024,
    maxControlLine: 4096,
    maxPending: 64 * 1024 * 1024,
    maxConnections: 64 * 1024,
    maxSubscriptions: 0,
    pingIntervalMs: 2 * 60_000,
    pingMax: 2,
    writeDeadlineMs: 10_000,
    debug: false,
    trace: false,
    lameDuckDurationMs: DEFAULT_LAME_DUCK_DURATION_MS,
    lameDuckGracePeriodMs: DEFAULT_LAME_DUCK_GRACE_PERIOD_MS,
  };
}

export type ConfigErrorCode =
  | 'FILE' // config file missing or unreadable
  | 'SYNTAX' // the file is not valid YAML
  | 'UNKNOWN_KEY' // a key nats-server does not know either
  | 'UNSUPPORTED' // a nats-server key skein does not implement (tls, jetstream, ...)
  | 'BAD_VALUE' // wrong type or out of range
  | 'CONFLICT' // values that cannot go together (max_payload > max_pending, user and token, ...)
  | 'BAD_FLAG'; // unknown command-line flag, or a bad flag value

/** Where a value came from, formatted like nats-server's config errors: `file:line:col`. */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly position?: SourcePosition;
  /** Every problem found; nats-server reports all config errors together. `[this]` for one. */
  readonly problems: ConfigError[];

  constructor(code: ConfigErrorCode, reason: string, position?: SourcePosition) {
    super(position ? `${formatPosition(position)}: ${reason}` : reason);
    this.name = 'ConfigError';
    this.code = code;
    this.position = position;
    this.problems = [this];
  }

  /** One error for several problems: the message lists them all, one a line; the code is the first's. */
  static of(problems: ConfigError[]): ConfigError {
    if (problems.length === 1) return problems[0];
    const err = new ConfigError(problems[0].code, problems.map((p) => p.message).join('\n'));
    (err as { problems: ConfigError[] }).problems = problems;
    return err;
  }
}

export function formatPosition(p: SourcePosition): string {
  return `${p.file}:${p.line}:${p.col}`;
}

/**
 * Where each option came from in the config file, keyed by its YAML path (`max_payload`,
 * `cluster.name`, `authorization`). Lets whole-config checks point at a line; a flag that
 * overrides a value removes its entry.
 */
export type Positions = Map<string, SourcePosition>;

/** Milliseconds as Go prints a time.Duration (`2m0s`, `10s`, `500ms`), for messages copied from nats-server. */
export function goDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  ms = Math.abs(ms);
  if (ms < 1000) return `${sign}${+ms.toFixed(6)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = +((ms % 60_000) / 1000).toFixed(9);
  if (h > 0) return `${sign}${h}h${m}m${s}s`;
  if (m > 0) return `${sign}${m}m${s}s`;
  return `${sign}${s}s`;
}
