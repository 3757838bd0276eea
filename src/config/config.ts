// The config file front end: reads a file written with nats-server's key names into Options,
// in either of two formats: nats-server's own .conf format (src/config/conf.ts) or YAML. Both become
// the same tree (ConfNode), read here through one set of field tables, so every key check is
// shared. Per-key checks (types, ranges, unknown keys) happen here, each error pointing at its
// file:line:col like nats-server's config errors; whole-config checks (max_payload vs
// max_pending, user and token, gateway names) are in validateOptions (load.ts).
//
// As in nats-server (opts.go), keys are case-insensitive, aliases are accepted (`net` for
// `host`, `max_conn` for `max_connections`, ...), and every problem in the file is reported
// together rather than only the first.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { parseConf, type ConfEntry, type ConfMap, type ConfNode } from './conf.ts';
import {
  ConfigError,
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_LEAF_RECONNECT_MS,
  DEFAULT_TLS_TIMEOUT_MS,
  MIN_LAME_DUCK_DURATION_MS,
  goDuration,
  type ClusterOptions,
  type ConfigErrorCode,
  type GatewayOptions,
  type LeafNodeOptions,
  type LeafRemoteOptions,
  type LeafUserEntry,
  type RemoteGatewayOptions,
  type NkeyUserEntry,
  type Options,
  type Positions,
  type SourcePosition,
  type TlsOptions,
  type UserEntry,
  type UserPermissions,
} from './options.ts';
import { cipherProblem, curveProblem } from '../conn/tls.ts';
import { isValidPublicUserKey } from '../conn/auth.ts';
import { splitHostPort, urlProblem } from '../protocol/hostport.ts';

const INT32_MAX = 2 ** 31 - 1;

export type ConfigFormat = 'conf' | 'yaml';

/**
 * Reads `file` over `into` (normally defaultOptions()), recording where each key was in
 * `positions`. Returns the warnings nats-server would give for the file (fatal under -t).
 */
export async function loadConfigFile(file: string, into: Options, positions: Positions): Promise<ConfigError[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file or directory'
      : e.code === 'EACCES' ? 'permission denied'
      : e.code === 'EISDIR' ? 'is a directory'
      : e.message;
    throw new ConfigError('FILE', `cannot read config file ${file}: ${why}`);
  }
  into.configFile = file;
  return parseConfigText(text, file, into, positions);
}

/**
 * The format of a config file: `.conf` is nats-server's, `.yaml`/`.yml`/`.json` YAML; any other
 * name is read as .conf if it parses as one (nats-server's own files are often named
 * `nats-server.conf` or have no extension), else as YAML.
 */
export function configFormat(file: string): ConfigFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.conf') return 'conf';
  if (ext === '.yaml' || ext === '.yml' || ext === '.json') return 'yaml';
  return undefined;
}

/**
 * Parses config text as if read from `file` (its name picks the format and labels errors;
 * `format` overrides the choice). Throws ConfigError; returns warnings.
 */
export function parseConfigText(text: string, file: string, into: Options, positions: Positions = new Map(), format = configFormat(file)): ConfigError[] {
  let root: ConfNode | null;
  let chosen: ConfigFormat;
  if (format === 'conf') {
    root = parseConf(text, file);
    chosen = 'conf';
  } else if (format === 'yaml') {
    root = yamlTree(text, file);
    chosen = 'yaml';
  } else {
    try {
      root = parseConf(text, file);
      chosen = 'conf';
    } catch (confErr) {
      if (!(confErr instanceof ConfigError)) throw confErr;
      try {
        root = yamlTree(text, file);
        chosen = 'yaml';
      } catch (yamlErr) {
        if (!(yamlErr instanceof ConfigError)) throw yamlErr;
        throw ConfigError.of([
          ...confErr.problems.map((p) => new ConfigError(p.code, `not a .conf file: ${reasonOf(p)}`, p.position)),
          ...yamlErr.problems.map((p) => new ConfigError(p.code, `not YAML either: ${reasonOf(p)}`, p.position)),
        ]);
      }
    }
  }
  const src: Source = { file, format: chosen, positions, problems: [], warnings: [] };
  const rootValue = new Value(src, root, '', '', { file, line: 1, col: 1 });
  if (root === null || (root.kind === 'scalar' && root.value === null)) return []; // empty file
  if (root.kind !== 'map') rootValue.fail('the config file must be a map of keys (nats-server key names)');
  rootValue.fields(topLevelFields(into));
  if (src.problems.length > 0) throw ConfigError.of(src.problems);
  return src.warnings;
}

function reasonOf(e: ConfigError): string {
  return e.position ? e.message.slice(formatPositionLength(e.position)) : e.message;
}

function formatPositionLength(p: SourcePosition): number {
  return `${p.file}:${p.line}:${p.col}: `.length;
}

/** A YAML document as the config tree (aliases resolved; positions of keys and values). */
function yamlTree(text: string, file: string): ConfNode | null {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length > 0) {
    throw ConfigError.of(doc.errors.map((e) => {
      const at = e.linePos?.[0];
      // yaml appends " at line L, column C:" plus a code frame; the position goes in front instead.
      const reason = e.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '');
      return new ConfigError('SYNTAX', reason, at ? { file, line: at.line, col: at.col } : undefined);
    }));
  }
  const positionOf = (offset: number | undefined, fallback: SourcePosition): SourcePosition => {
    if (offset === undefined) return fallback;
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  const top: SourcePosition = { file, line: 1, col: 1 };
  const convert = (raw: Node | null, fallback: SourcePosition, seen: Set<Node>): ConfNode => {
    const node = raw && isAlias(raw) ? ((raw.resolve(doc) as Node | undefined) ?? null) : raw;
    if (node === null) return { kind: 'scalar', value: null, at: fallback };
    if (seen.has(node)) throw new ConfigError('SYNTAX', 'an alias refers to a node that contains it', positionOf(raw?.range?.[0], fallback));
    const at = positionOf(node.range?.[0], fallback);
    if (isMap(node)) {
      const inner = new Set(seen).add(node);
      const entries: ConfEntry[] = node.items.map((pair) => {
        const keyNode = pair.key as Node | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const keyAt = positionOf(keyNode?.range?.[0], at);
        return { key, keyAt, value: convert(pair.value as Node | null, keyAt, inner), usedAsVariable: false };
      });
      return { kind: 'map', entries, at };
    }
    if (isSeq(node)) {
      const inner = new Set(seen).add(node);
      return { kind: 'list', items: node.items.map((item) => convert(item as Node | null, at, inner)), at };
    }
    if (isScalar(node)) {
      const v = node.value;
      const value = v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : String(v);
      // An empty value (`key:`) is where its key is.
      return { kind: 'scalar', value, at: value === null ? fallback : at };
    }
    return { kind: 'scalar', value: String(node), at };
  };
  const contents = doc.contents as Node | null;
  if (contents === null) return null;
  return convert(contents, top, new Set());
}

// ---------------------------------------------------------------------------------------------
// Value access with positions

interface Source {
  file: string;
  format: ConfigFormat;
  positions: Positions;
  problems: ConfigError[];
  warnings: ConfigError[];
}

/** A field: its names (the first is canonical, used in Positions), and what to do with its value. */
interface Field {
  names: string[];
  read: (v: Value) => void;
}

const field = (names: string | string[], read: (v: Value) => void): Field =>
  ({ names: typeof names === 'string' ? [names] : names, read });

/**
 * nats-server 2.9.10's config keys that skein does not implement, by block (from opts.go:
 * processConfigFileLine, parseCluster, parseGateway, parseAuthorization, parseUsers,
 * parseUserPermissions, parseGateways, parseTLS), plus a few 2.10 keys. Such a key is refused as "not
 * supported" by name, never taken for a typo and never ignored. Implementing one: delete its
 * entry here and add a field for it to the block's table below.
 */
export const NOT_SUPPORTED = {
  top: [
    // OCSP (tls is read)
    'ocsp', 'allow_non_tls',
    // monitoring over https, profiling
    'https', 'https_port', 'prof_port',
    // logging (log_file, logtime are read)
    'logfile_size_limit', 'log_size_limit', 'syslog', 'remote_syslog',
    'trace_verbose', 'max_traced_msg_len',
    // accounts, operators, JWT resolvers
    'accounts', 'mappings', 'maps', 'system_account', 'system', 'no_auth_user', 'operator', 'operators', 'roots',
    'root', 'root_operators', 'root_operator', 'resolver', 'account_resolver', 'accounts_resolver', 'resolver_tls',
    'resolver_preload', 'resolver_pinned_accounts', 'trusted', 'trusted_keys',
    // other listeners and JetStream
    'websocket', 'ws', 'mqtt', 'jetstream', 'store_dir', 'storedir', 'default_js_domain',
    // tuning and metadata
    'server_tags', 'disable_sublist_cache', 'no_sublist_cache', 'max_sub_tokens', 'max_subscription_tokens',
    'no_header_support', 'connect_error_reports', 'reconnect_error_reports',
  ],
  authorization: [],
  user: ['allowed_connection_types', 'connection_types', 'clients', 'account'],
  permissions: ['allow_responses', 'publish_allow_responses'],
  // cluster/gateway `authorization` (a single user): nats-server parses these and ignores them.
  routeAuthorization: ['permissions', 'default_permissions', 'default_permission', 'nkeys'],
  cluster: ['permissions', /* 2.10: */ 'pool_size', 'compression', 'accounts'],
  gateway: [],
  remoteGateway: [],
  // `leafnodes` (opts.go parseLeafNodes, parseLeafAuthorization, parseLeafUsers, parseRemoteLeafNodes)
  leafnodes: ['min_version', 'minimum_version'],
  leafAuthorization: [],
  leafUser: [],
  leafRemote: [
    'no_randomize', 'dont_randomize', 'creds', 'credentials', 'deny_imports', 'deny_import', 'deny_exports', 'deny_export',
    'ws_compress', 'ws_compression', 'websocket_compress', 'websocket_compression', 'ws_no_masking', 'websocket_no_masking',
    'jetstream_cluster_migrate', 'js_cluster_migrate',
  ],
  // the `tls` blocks (top level, cluster)
  tls: ['verify_cert_and_check_known_urls', 'pinned_certs', 'connection_rate_limit', 'handshake_first', 'ocsp_peer'],
} as const satisfies Record<string, readonly string[]>;

/** nats-server keys that skein does not implement: named as such rather than as unknown. */
const unsupported = (names: readonly string[]): Field =>
  field([...names], (v) => v.fail(`field ${JSON.stringify(v.key)} is not supported by skein`, 'UNSUPPORTED', v.keyPosition));

/** One node of the config tree, with the path that names it in messages and in Positions. */
class Value {
  readonly src: Source;
  /**
   * The value as the config tree has it. (Named so that code written for the old YAML-node
   * Value, `isMap(v.node)`, fails to compile instead of silently reading nothing: use
   * v.isMap(), v.isList(), v.scalar().)
   */
  readonly tree: ConfNode | null;
  /** As written, for messages: `cluster.port`, `authorization.users[1].user`. */
  readonly label: string;
  /** Canonical and lower case, for Positions: `cluster.port`, `gateway.gateways.0`. */
  readonly path: string;
  readonly keyPosition: SourcePosition;
  readonly key: string;

  constructor(src: Source, tree: ConfNode | null, label: string, path: string, keyPosition: SourcePosition, key = label) {
    this.src = src;
    this.tree = tree;
    this.label = label;
    this.path = path;
    this.keyPosition = keyPosition;
    this.key = key;
  }

  /** Where the value starts; the key's position when the value is empty. */
  position(): SourcePosition {
    if (this.tree === null || (this.tree.kind === 'scalar' && this.tree.value === null)) return this.keyPosition;
    return this.tree.at;
  }

  fail(reason: string, code: ConfigErrorCode = 'BAD_VALUE', at: SourcePosition = this.position()): never {
    throw new ConfigError(code, reason, at);
  }

  /** A warning nats-server gives for this value (`invalid use of field ...`); fatal under -t. */
  warn(reason: string): void {
    this.src.warnings.push(new ConfigError('BAD_VALUE', `invalid use of field ${JSON.stringify(this.key)}: ${reason}`, this.keyPosition));
  }

  isMap(): boolean {
    return this.tree?.kind === 'map';
  }

  isList(): boolean {
    return this.tree?.kind === 'list';
  }

  /** The JS value of a scalar; `undefined` for maps and lists. */
  scalar(): unknown {
    if (this.tree === null) return null;
    return this.tree.kind === 'scalar' ? this.tree.value : undefined;
  }

  describe(): string {
    if (this.isMap()) return 'a map';
    if (this.isList()) return 'a list';
    const v = this.scalar();
    if (v === null) return 'nothing';
    if (typeof v === 'string') return JSON.stringify(v);
    return String(v);
  }

  string(): string {
    const v = this.scalar();
    if (typeof v === 'string') return v;
    const hint = typeof v === 'number' || typeof v === 'boolean' ? ' (quote it)' : '';
    return this.fail(`${this.label} must be a string, got ${this.describe()}${hint}`);
  }

  /** Booleans as nats-server's .conf reads them: true/false, yes/no, on/off. */
  bool(): boolean {
    const v = this.scalar();
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string') {
      const s = v.toLowerCase();
      if (s === 'true' || s === 'yes' || s === 'on') return true;
      if (s === 'false' || s === 'no' || s === 'off') return false;
    }
    return this.fail(`${this.label} must be a boolean (true or false), got ${this.describe()}`);
  }

  int(min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.scalar();
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
    return this.fail(`${this.label} must be an integer ${range}, got ${this.describe()}`);
  }

  port(): number {
    return this.int(-1, 65535);
  }

  /** Bytes: a number, or a string with nats-server's size suffixes ("1MB" = 1048576, "1M" = 1000000). */
  positiveSize(): number {
    const v = this.scalar();
    const bytes = typeof v === 'number' ? v : typeof v === 'string' ? parseSize(v) : undefined;
    if (bytes === undefined && typeof v === 'string') {
      this.fail(`${this.label} must be a size in bytes (a number, or a string like "64KB", "1MB", "1M"), got ${this.describe()}`);
    }
    if (bytes === undefined || !Number.isInteger(bytes) || bytes <= 0) {
      this.fail(`${this.label} must be a positive integer (bytes), got ${this.describe()}`);
    }
    return bytes;
  }

  /**
   * Milliseconds: a number of seconds (may be fractional), or a Go duration string ("2m",
   * "500ms"). In a .conf file a number gets nats-server's warning (opts.go parseDuration), for
   * the keys nats-server reads that way.
   */
  durationMs(): number {
    const v = this.scalar();
    if (typeof v === 'number' && Number.isFinite(v)) {
      if (this.src.format === 'conf' && SECONDS_WARNING_KEYS.has(this.key.toLowerCase())) {
        this.warn(`${this.key.toLowerCase()} should be converted to a duration`);
      }
      return v * 1000;
    }
    if (typeof v === 'string') {
      try {
        return parseGoDuration(v);
      } catch (err) {
        this.fail(`error parsing ${this.key}: ${(err as Error).message}`);
      }
    }
    return this.fail(`${this.label} must be a duration (seconds, or a string like "10s", "2m", "500ms"), got ${this.describe()}`);
  }

  positiveDurationMs(): number {
    const ms = this.durationMs();
    if (!(ms > 0)) this.fail(`${this.label} must be a positive duration, got ${this.describe()}`);
    return ms;
  }

  /** `listen` as nats-server parses it: a port, or "host:port". */
  listen(): { host?: string; port: number } {
    const v = this.scalar();
    if (typeof v === 'number') return { port: this.port() };
    if (typeof v !== 'string') return this.fail(`expected port or host:port, got ${this.describe()}`);
    const hp = splitHostPort(v);
    if (!hp) this.fail(`could not parse address string ${JSON.stringify(v)}`);
    const port = Number(hp.port);
    if (!/^-?\d+$/.test(hp.port)) this.fail(`could not parse port ${JSON.stringify(hp.port)}`);
    if (port < -1 || port > 65535) this.fail(`${this.label} port must be between -1 and 65535, got ${port}`);
    return { host: hp.host || undefined, port };
  }

  items(): Value[] {
    if (this.tree?.kind !== 'list') return this.fail(`${this.label} must be a list, got ${this.describe()}`);
    return this.tree.items.map((item, i) =>
      new Value(this.src, item, `${this.label}[${i}]`, `${this.path}.${i}`, this.keyPosition, this.key));
  }

  /** A list of strings; a single string counts as a list of one. */
  strings(): string[] {
    if (typeof this.scalar() === 'string') return [this.string()];
    return this.items().map((item) => item.string());
  }

  /** The number of keys of a map (0 for anything else). */
  size(): number {
    return this.tree?.kind === 'map' ? this.tree.entries.length : 0;
  }

  /**
   * Reads a map through a field table. An unknown key, or a bad value, is recorded and the
   * other keys are still read, so that one run reports every problem in the file. A key
   * the file uses only as a `$variable` is not unknown (nats-server: IsUsedVariable).
   */
  fields(table: Field[], unknown: (key: string) => string = (key) => `unknown field ${JSON.stringify(key)}`): void {
    if (this.tree?.kind !== 'map') this.fail(`${this.label || 'the config file'} must be a map, got ${this.describe()}`);
    const map: ConfMap = this.tree;
    const byName = new Map<string, { canonical: string; read: (v: Value) => void }>();
    for (const f of table) for (const n of f.names) byName.set(n, { canonical: f.names[0], read: f.read });

    for (const entry of map.entries) {
      const keyText = entry.key;
      const keyPosition = entry.keyAt;
      const f = byName.get(keyText.toLowerCase());
      if (!f) {
        if (!entry.usedAsVariable) this.src.problems.push(new ConfigError('UNKNOWN_KEY', unknown(keyText), keyPosition));
        continue;
      }
      const path = this.path ? `${this.path}.${f.canonical}` : f.canonical;
      const label = this.label ? `${this.label}.${keyText}` : keyText;
      this.src.positions.set(path, keyPosition);
      try {
        f.read(new Value(this.src, entry.value, label, path, keyPosition, keyText));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        this.src.problems.push(err);
      }
    }
  }
}

/** nats-server reads these with parseDuration, which warns about a bare number of seconds. */
const SECONDS_WARNING_KEYS = new Set(['ping_interval', 'write_deadline']);

// ---------------------------------------------------------------------------------------------
// The field tables (nats-server's key names, opts.go processConfigFileLine and friends)

function topLevelFields(o: Options): Field[] {
  return [
    field('server_name', (v) => { o.serverName = v.string() || undefined; }),
    field(['host', 'net'], (v) => { o.host = v.string() || DEFAULT_HOST; }),
    field('port', (v) => { o.port = v.port(); }),
    field('listen', (v) => {
      const hp = v.listen();
      if (hp.host) o.host = hp.host;
      o.port = hp.port;
    }),
    field('client_advertise', (v) => { o.clientAdvertise = v.string(); }),
    field('workers', (v) => { o.workers = v.int(1); }),
    field('max_payload', (v) => { o.maxPayload = int32Size(v); }),
    field('max_control_line', (v) => { o.maxControlLine = int32Size(v); }),
    field('max_pending', (v) => { o.maxPending = v.positiveSize(); }),
    field(['max_connections', 'max_conn'], (v) => { o.maxConnections = v.int(1); }),
    field(['max_subscriptions', 'max_subs'], (v) => { o.maxSubscriptions = v.int(0); }),
    field('ping_interval', (v) => { o.pingIntervalMs = v.positiveDurationMs(); }),
    field('ping_max', (v) => { o.pingMax = v.int(1); }),
    field('write_deadline', (v) => { o.writeDeadlineMs = v.positiveDurationMs(); }),
    field(['http_port', 'monitor_port'], (v) => { const p = v.port(); o.httpPort = p === 0 ? undefined : p; }),
    field('http', (v) => {
      const hp = v.listen();
      if (hp.host) o.httpHost = hp.host;
      o.httpPort = hp.port === 0 ? undefined : hp.port;
    }),
    field('http_base_path', (v) => { o.httpBasePath = v.string(); }),
    field('debug', (v) => { o.debug = v.bool(); }),
    field('trace', (v) => { o.trace = v.bool(); }),
    field(['pid_file', 'pidfile'], (v) => { o.pidFile = v.string(); }),
    field('lame_duck_duration', (v) => {
      const ms = v.durationMs();
      if (ms < MIN_LAME_DUCK_DURATION_MS) v.fail(`invalid lame_duck_duration of ${goDuration(ms)}, minimum is 30 seconds`);
      o.lameDuckDurationMs = ms;
    }),
    field('lame_duck_grace_period', (v) => {
      const ms = v.durationMs();
      if (ms < 0) v.fail('invalid lame_duck_grace_period, needs to be positive');
      o.lameDuckGracePeriodMs = ms;
    }),
    field(['no_system_account', 'no_system', 'no_sys_acc'], (v) => {
      // skein has no system account, which is what `true` asks for; `false` asks for one.
      if (!v.bool()) v.fail(`${v.key}: false is not supported by skein (skein has no system account; remove the key or set it to true)`, 'UNSUPPORTED');
      o.noSystemAccount = true;
    }),
    field(['log_file', 'logfile'], (v) => { o.logFile = v.string() || undefined; }),
    field('logtime', (v) => { o.logtime = v.bool(); }),
    field('ports_file_dir', (v) => { o.portsFileDir = v.string() || undefined; }),
    field('authorization', (v) => { o.authorization = readAuthorization(v); }),
    field('cluster', (v) => { o.cluster = readCluster(v, o.cluster); }),
    field('gateway', (v) => { o.gateway = readGateway(v, o.gateway); }),
    field(['leafnodes', 'leaf'], (v) => { o.leafNodes = readLeafNodes(v, o.leafNodes); }),
    field('tls', (v) => { o.tls = readTls(v); }),
    unsupported(NOT_SUPPORTED.top),
  ];
}

function int32Size(v: Value): number {
  const bytes = v.positiveSize();
  if (bytes > INT32_MAX) v.fail(`${v.key} value is too big`); // opts.go wording; the fields are int32 there
  return bytes;
}

function readAuthorization(v: Value): NonNullable<Options['authorization']> {
  const a: NonNullable<Options['authorization']> = { timeoutMs: DEFAULT_AUTH_TIMEOUT_MS };
  let defaultPermissions: UserPermissions | undefined;
  v.fields([
    field(['user', 'username'], (f) => { a.user = f.string(); }),
    field(['password', 'pass'], (f) => { a.password = f.string(); }),
    field('token', (f) => { a.token = f.string(); }),
    field('timeout', (f) => { a.timeoutMs = authTimeoutMs(f); }),
    field('users', (f) => {
      // nats-server keeps nkey users apart from user/password users (opts.go parseUsers).
      const entries = f.items().map(readUser);
      a.users = entries.filter((e): e is UserEntry => 'user' in e);
      const nkeys = entries.filter((e): e is NkeyUserEntry => 'nkey' in e);
      if (nkeys.length > 0) a.nkeys = nkeys;
    }),
    field(['default_permissions', 'default_permission', 'permissions'], (f) => { defaultPermissions = readPermissions(f); }),
    unsupported(NOT_SUPPORTED.authorization),
  ]);
  // opts.go applyDefaultPermissions: users without their own permissions get the block's.
  if (defaultPermissions) {
    for (const u of [...(a.users ?? []), ...(a.nkeys ?? [])]) if (!u.permissions) u.permissions = defaultPermissions;
  }
  return a;
}

function authTimeoutMs(v: Value): number {
  return v.positiveDurationMs();
}

function readUser(v: Value): UserEntry | NkeyUserEntry {
  let user: string | undefined;
  let password = '';
  let nkey: string | undefined;
  let permissions: UserPermissions | undefined;
  v.fields([
    field(['user', 'username'], (f) => { user = f.string(); }),
    field(['password', 'pass'], (f) => { password = f.string(); }),
    field('nkey', (f) => { nkey = f.string(); }),
    field(['permissions', 'permission', 'authorization'], (f) => { permissions = readPermissions(f); }),
    unsupported(NOT_SUPPORTED.user),
  ]);
  // opts.go parseUsers: an nkey entry takes precedence and must stand alone.
  if (nkey) {
    if (!isValidPublicUserKey(nkey)) v.fail('Not a valid public nkey for a user');
    if (user || password) v.fail('Nkey users do not take usernames or passwords');
    const entry: NkeyUserEntry = { nkey };
    if (permissions) entry.permissions = permissions;
    return entry;
  }
  if (!user) v.fail('User entry requires a user');
  const entry: UserEntry = { user, password };
  if (permissions) entry.permissions = permissions;
  return entry;
}

/**
 * A `tls` block (opts.go parseTLS), with nats-server's messages. Cipher suites and curves are
 * Go's names; a name skein's TLS library cannot honour is refused, naming the key.
 */
function readTls(v: Value): TlsOptions {
  const t: TlsOptions = { verify: false, map: false, insecure: false, timeoutMs: DEFAULT_TLS_TIMEOUT_MS };
  const fileName = (f: Value, key: string): string => {
    if (typeof f.scalar() !== 'string') f.fail(`error parsing tls config, expected '${key}' to be filename`);
    return f.string();
  };
  const flag = (f: Value, key: string): boolean => {
    const b = f.scalar();
    if (typeof b !== 'boolean') f.fail(`error parsing tls config, expected '${key}' to be a boolean`);
    return b;
  };
  const names = (f: Value, key: string, problem: (n: string) => string | undefined): string[] => {
    if (!f.isList()) f.fail(`error parsing tls config, '${key}' must be a list`);
    const items = f.items();
    if (items.length === 0) f.fail(`error parsing tls config, '${key}' cannot be empty`);
    return items.map((item) => {
      const name = item.string();
      const why = problem(name);
      if (why !== undefined) item.fail(`${key}: ${why}`);
      return name;
    });
  };
  if (!v.isMap()) v.fail(`tls must be a map, got ${v.describe()}`);
  v.fields([
    field('cert_file', (f) => { t.certFile = fileName(f, 'cert_file'); }),
    field('key_file', (f) => { t.keyFile = fileName(f, 'key_file'); }),
    field('ca_file', (f) => { t.caFile = fileName(f, 'ca_file'); }),
    field('insecure', (f) => { t.insecure = flag(f, 'insecure'); }),
    field('verify', (f) => { t.verify = flag(f, 'verify'); }),
    field('verify_and_map', (f) => {
      const on = flag(f, 'verify_and_map');
      if (on) t.verify = true;
      t.map = on;
    }),
    field('cipher_suites', (f) => { t.cipherSuites = names(f, 'cipher_suites', cipherProblem); }),
    field('curve_preferences', (f) => { t.curvePreferences = names(f, 'curve_preferences', curveProblem); }),
    field('timeout', (f) => {
      const sv = f.scalar();
      if (typeof sv === 'number') {
        t.timeoutMs = sv * 1000;
      } else if (typeof sv === 'string') {
        try {
          t.timeoutMs = parseGoDuration(sv);
        } catch (err) {
          f.fail(`error parsing tls config, 'timeout' ${(err as Error).message}`);
        }
      } else {
        f.fail("error parsing tls config, 'timeout' wrong type");
      }
    }),
    unsupported(NOT_SUPPORTED.tls),
  ], (key) => `error parsing tls config, unknown field [${JSON.stringify(key)}]`);
  return t;
}

/** `{publish, subscribe}` (or pub/sub, import/export), each a subject, a list, or {allow, deny}. */
function readPermissions(v: Value): UserPermissions | undefined {
  const p: UserPermissions = {};
  v.fields([
    field(['publish', 'pub', 'import'], (f) => { const s = readSubjectPermission(f); if (s) p.publish = s; else delete p.publish; }),
    field(['subscribe', 'sub', 'export'], (f) => { const s = readSubjectPermission(f); if (s) p.subscribe = s; else delete p.subscribe; }),
    unsupported(NOT_SUPPORTED.permissions),
  ], (key) => `Unknown field ${JSON.stringify(key)} parsing permissions`);
  return p.publish || p.subscribe ? p : undefined;
}

function readSubjectPermission(v: Value): { allow?: string[]; deny?: string[] } | undefined {
  if (!v.isMap()) return { allow: permissionSubjects(v) }; // old style: the allow list
  if (v.size() === 0) return undefined; // nats-server: an empty map is no permission
  const sp: { allow?: string[]; deny?: string[] } = {};
  v.fields([
    field('allow', (f) => { sp.allow = permissionSubjects(f); }),
    field('deny', (f) => { sp.deny = permissionSubjects(f); }),
  ], (key) => `Unknown field name ${JSON.stringify(key)} parsing subject permissions, only 'allow' or 'deny' are permitted`);
  return sp;
}

function permissionSubjects(v: Value): string[] {
  const subjects = typeof v.scalar() === 'string' ? [v.string()]
    : v.isList() ? v.items().map((item) => {
        if (typeof item.scalar() !== 'string') item.fail('Subject in permissions array cannot be cast to string');
        return item.string();
      })
    : v.fail(`Expected subject permissions to be a subject, or array of subjects, got ${v.describe()}`);
  for (const s of subjects) {
    // opts.go checkPermSubjectArray: a subject, or "subject queue".
    if (isValidSubject(s)) continue;
    const parts = s.split(/\s+/).filter((t) => t !== '');
    if (parts.length !== 2) v.fail(`subject ${JSON.stringify(s)} is not a valid subject`);
    if (!isValidSubject(parts[0])) v.fail(`subject ${JSON.stringify(parts[0])} is not a valid subject`);
  }
  return subjects;
}

/** sublist.go IsValidSubject: no empty tokens, no whitespace, nothing after `>`. */
function isValidSubject(subject: string): boolean {
  if (subject === '') return false;
  let afterFullWildcard = false;
  for (const token of subject.split('.')) {
    if (token.length === 0 || afterFullWildcard) return false;
    if (/[\t\n\f\r ]/.test(token)) return false;
    if (token === '>') afterFullWildcard = true;
  }
  return true;
}

type RouteAuth = NonNullable<ClusterOptions['authorization']>;

/** cluster/gateway `authorization`: a single user/password and a timeout only. */
function readSimpleAuth(v: Value, kind: 'Cluster' | 'Gateway', prev: RouteAuth | undefined): RouteAuth {
  const a: RouteAuth = { timeoutMs: prev?.timeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS };
  v.fields([
    field(['user', 'username'], (f) => { a.user = f.string(); }),
    field(['password', 'pass'], (f) => { a.password = f.string(); }),
    field('timeout', (f) => { a.timeoutMs = authTimeoutMs(f); }),
    field('token', (f) => f.fail(`${kind} authorization does not support tokens`, 'CONFLICT', f.keyPosition)),
    field('users', (f) => f.fail(`${kind} authorization does not allow multiple users`, 'CONFLICT', f.keyPosition)),
    unsupported(NOT_SUPPORTED.routeAuthorization),
  ]);
  return a;
}

export function emptyCluster(): ClusterOptions {
  return { host: '', port: 0, routes: [], noAdvertise: false, connectRetries: 0 };
}

function readCluster(v: Value, prev: ClusterOptions | undefined): ClusterOptions {
  const c = prev ?? emptyCluster();
  v.fields([
    field('name', (f) => { c.name = f.string() || undefined; }),
    field(['host', 'net'], (f) => { c.host = f.string(); }),
    field('port', (f) => { c.port = f.port(); }),
    field('listen', (f) => {
      const hp = f.listen();
      if (hp.host) c.host = hp.host;
      c.port = hp.port;
    }),
    field('authorization', (f) => { c.authorization = readSimpleAuth(f, 'Cluster', c.authorization); }),
    field('routes', (f) => { c.routes = urlList(f, 'route'); }),
    field('no_advertise', (f) => { c.noAdvertise = f.bool(); }),
    field('connect_retries', (f) => { c.connectRetries = f.int(0); }),
    field(['advertise', 'cluster_advertise'], (f) => { c.advertise = f.string(); }),
    field('tls', (f) => { c.tls = readTls(f); }),
    unsupported(NOT_SUPPORTED.cluster),
  ]);
  return c;
}

function readGateway(v: Value, prev: GatewayOptions | undefined): GatewayOptions {
  const g: GatewayOptions = prev ?? { name: '', host: '', port: 0, gateways: [], authTimeoutMs: DEFAULT_AUTH_TIMEOUT_MS };
  v.fields([
    field('name', (f) => { g.name = f.string(); }),
    field(['host', 'net'], (f) => { g.host = f.string(); }),
    field('port', (f) => { g.port = f.port(); }),
    field('listen', (f) => {
      const hp = f.listen();
      if (hp.host) g.host = hp.host;
      g.port = hp.port;
    }),
    field('authorization', (f) => { g.authorization = readSimpleAuth(f, 'Gateway', g.authorization); }),
    field('advertise', (f) => { g.advertise = f.string(); }),
    field('connect_retries', (f) => { g.connectRetries = f.int(0); }),
    field(['reject_unknown', 'reject_unknown_cluster'], (f) => { g.rejectUnknown = f.bool(); }),
    field('gateways', (f) => { g.gateways = f.items().map(readRemoteGateway); }),
    field('tls', (f) => { g.tls = readTls(f); }),
    // skein only: the receiving side's interest mode (see GatewayOptions.interestMode).
    field('interest_mode', (f) => {
      const mode = f.string().toLowerCase().replace('_', '-');
      if (mode === 'interest-only' || mode === 'optimistic') g.interestMode = mode;
      else f.fail(`${f.label} must be "interest-only" or "optimistic", got ${f.describe()}`);
    }),
    unsupported(NOT_SUPPORTED.gateway),
  ]);
  return g;
}

function readRemoteGateway(v: Value): RemoteGatewayOptions {
  const r: RemoteGatewayOptions = { name: '', urls: [] };
  v.src.positions.set(v.path, v.position());
  v.fields([
    field('name', (f) => { r.name = f.string(); }),
    // nats-server: `url` adds one URL, `urls` gives the list (a list only: a string is refused).
    field('url', (f) => {
      const u = checkUrl(f, f.string(), 'gateway');
      if (!r.urls.includes(u)) r.urls.push(u);
    }),
    field('urls', (f) => {
      for (const u of urlList(f, 'gateway', false)) if (!r.urls.includes(u)) r.urls.push(u);
    }),
    field('tls', (f) => { r.tls = readTls(f); }),
    unsupported(NOT_SUPPORTED.remoteGateway),
  ]);
  return r;
}

export function emptyLeafNodes(): LeafNodeOptions {
  return { host: '', port: 0, noAdvertise: false, authTimeoutMs: DEFAULT_AUTH_TIMEOUT_MS, reconnectIntervalMs: DEFAULT_LEAF_RECONNECT_MS, remotes: [] };
}

/** The one account skein has; nats-server's error for any other (leafnode.go validateLeafNode). */
function globalAccount(v: Value, where: 'authorization' | 'remote'): '$G' {
  const name = v.string();
  if (name !== '$G' && name !== '') v.fail(`cannot find local account ${JSON.stringify(name)} specified in leafnode ${where} (skein has only the global account $G)`);
  return '$G';
}

/** `leafnodes` (opts.go parseLeafNodes), with nats-server's key names and messages. */
function readLeafNodes(v: Value, prev: LeafNodeOptions | undefined): LeafNodeOptions {
  const l = prev ?? emptyLeafNodes();
  if (!v.isMap()) v.fail(`Expected map to define a leafnode, got ${v.describe()}`);
  v.fields([
    field(['host', 'net'], (f) => { l.host = f.string(); }),
    field('port', (f) => { l.port = f.port(); }),
    field('listen', (f) => {
      const hp = f.listen();
      if (hp.host) l.host = hp.host;
      l.port = hp.port;
    }),
    field(['advertise', 'leafnode_advertise'], (f) => { l.advertise = f.string(); }),
    field('no_advertise', (f) => { l.noAdvertise = f.bool(); }),
    field('authorization', (f) => readLeafAuthorization(f, l)),
    // nats-server reads a whole number of seconds here (a duration string or a fraction stops it
    // with a Go type error).
    field(['reconnect', 'reconnect_delay', 'reconnect_interval'], (f) => {
      const raw = f.scalar();
      const n = typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 ? raw
        : f.fail(`${f.label} must be a whole number of seconds (nats-server reads no duration string here), got ${f.describe()}`);
      l.reconnectIntervalMs = n === 0 ? DEFAULT_LEAF_RECONNECT_MS : n * 1000;
    }),
    field('remotes', (f) => {
      if (!f.isList()) f.fail(`Expected remotes field to be an array, got ${f.describe()}`);
      l.remotes = f.items().map(readLeafRemote);
    }),
    field('tls', (f) => { l.tls = readTls(f); }),
    unsupported(NOT_SUPPORTED.leafnodes),
  ]);
  return l;
}

/** `leafnodes.authorization` (opts.go parseLeafAuthorization): user, password, timeout, users, account. */
function readLeafAuthorization(v: Value, l: LeafNodeOptions): void {
  const a: NonNullable<LeafNodeOptions['authorization']> = {};
  v.fields([
    field(['user', 'username'], (f) => { a.user = f.string(); }),
    field(['password', 'pass'], (f) => { a.password = f.string(); }),
    field('timeout', (f) => { l.authTimeoutMs = authTimeoutMs(f); }),
    field('users', (f) => {
      if (!f.isList()) f.fail(`Expected users field to be an array, got ${f.describe()}`);
      a.users = f.items().map(readLeafUser);
    }),
    field('account', (f) => { globalAccount(f, 'authorization'); }),
    unsupported(NOT_SUPPORTED.leafAuthorization),
  ]);
  l.authorization = a;
}

function readLeafUser(v: Value): LeafUserEntry {
  const u: LeafUserEntry = { user: '', password: '' };
  if (!v.isMap()) v.fail(`Expected user entry to be a map/struct, got ${v.describe()}`);
  v.fields([
    field(['user', 'username'], (f) => { u.user = f.string(); }),
    field(['password', 'pass'], (f) => { u.password = f.string(); }),
    field('account', (f) => { globalAccount(f, 'authorization'); }),
    unsupported(NOT_SUPPORTED.leafUser),
  ]);
  if (!u.user) v.fail('User entry requires a user');
  return u;
}

/** One `leafnodes.remotes` entry (opts.go parseRemoteLeafNodes). */
function readLeafRemote(v: Value): LeafRemoteOptions {
  const r: LeafRemoteOptions = { urls: [], account: '$G', hub: false };
  if (!v.isMap()) v.fail(`Expected remote leafnode entry to be a map/struct, got ${v.describe()}`);
  v.src.positions.set(v.path, v.position());
  let urlKeys = 0;
  v.fields([
    field(['url', 'urls'], (f) => {
      // nats-server: a string adds one URL, a list replaces them, so with both keys it keeps
      // whichever its map iteration reads last. skein asks for one.
      if (++urlKeys > 1) f.fail('a leafnode remote takes url or urls, not both (nats-server would keep one of them at random)', 'CONFLICT', f.keyPosition);
      if (typeof f.scalar() === 'string') r.urls = [leafUrl(f, f.string())];
      else if (f.isList()) r.urls = [...new Set(f.items().map((item) => leafUrl(item, item.string())))];
      else f.fail(`Expected remote leafnode url to be an array or string, got ${f.describe()}`);
    }),
    field(['account', 'local'], (f) => { r.account = globalAccount(f, 'remote'); }),
    field('hub', (f) => { r.hub = f.bool(); }),
    field('tls', (f) => { r.tls = readTls(f); }),
    unsupported(NOT_SUPPORTED.leafRemote),
  ]);
  // nats-server accepts a remote without a URL and then never dials anything: say so instead.
  // (A url key whose value was refused has been reported already.)
  if (urlKeys === 0) v.fail('leafnode remote has no url (give url or urls)', 'BAD_VALUE', v.position());
  return r;
}

/**
 * A remote's URL, trimmed. Any scheme (nats-leaf://, nats://, tls://) is dialled as plain TCP,
 * as nats-server does; ws:// and wss:// (websocket leaf connections) are not supported. A URL
 * without a port dials 7422 (nats-server's DEFAULT_LEAFNODE_PORT).
 */
function leafUrl(v: Value, text: string): string {
  const trimmed = text.trim();
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return v.fail(`error parsing leafnode url [${JSON.stringify(trimmed)}]`);
  }
  if (url.protocol === 'ws:' || url.protocol === 'wss:') {
    v.fail(`leafnode url ${JSON.stringify(trimmed)}: websocket leaf connections are not supported by skein`, 'UNSUPPORTED');
  }
  if (!url.hostname) v.fail(`error parsing leafnode url [${JSON.stringify(trimmed)}]: no host`);
  return trimmed;
}

/** Route or gateway URLs, trimmed; a repeated URL is dropped (nats-server warns and skips it). */
function urlList(v: Value, kind: 'route' | 'gateway', acceptString = true): string[] {
  const list = acceptString && typeof v.scalar() === 'string' ? [v] : v.items();
  const urls: string[] = [];
  for (const item of list) {
    const u = checkUrl(item, item.string(), kind);
    if (!urls.includes(u)) urls.push(u);
  }
  return urls;
}

function checkUrl(v: Value, text: string, kind: string): string {
  const problem = urlProblem(text);
  if (problem) v.fail(`error parsing ${kind} url [${JSON.stringify(text.trim())}]${problem === 'parse' ? '' : `: ${problem}`}`);
  return text.trim();
}

// ---------------------------------------------------------------------------------------------
// Sizes and durations, as nats-server reads them

// conf/parse.go: a single letter is a power of 1000, the B/I/IB forms a power of 1024.
const SIZE_SUFFIXES: Record<string, number> = { '': 1 };
['k', 'm', 'g', 't', 'p', 'e'].forEach((letter, i) => {
  SIZE_SUFFIXES[letter] = 1000 ** (i + 1);
  for (const binary of [`${letter}b`, `${letter}i`, `${letter}ib`]) SIZE_SUFFIXES[binary] = 1024 ** (i + 1);
});

/** "64KB" → 65536, "1M" → 1000000, "1MB" → 1048576; undefined if not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(-?\d+)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const multiplier = SIZE_SUFFIXES[m[2].toLowerCase()];
  return multiplier === undefined ? undefined : Number(m[1]) * multiplier;
}

const DURATION_UNIT_NS: Record<string, number> = {
  ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};

/**
 * Go's time.ParseDuration, returning milliseconds: "300ms", "1.5h", "2h45m", "-1s", "0".
 * Throws with Go's messages (`time: unknown unit "x" in duration "5x"`), which nats-server
 * puts in its config errors.
 */
export function parseGoDuration(text: string): number {
  const quoted = JSON.stringify(text);
  let s = text;
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new Error(`time: invalid duration ${quoted}`);
  let totalNs = 0;
  while (s !== '') {
    const num = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    const whole = num[1];
    const fraction = num[2] ?? '';
    if (whole === '' && fraction === '') throw new Error(`time: invalid duration ${quoted}`);
    s = s.slice(num[0].length);
    const unit = /^[^\d.]*/.exec(s)![0];
    if (unit === '') throw new Error(`time: missing unit in duration ${quoted}`);
    const ns = DURATION_UNIT_NS[unit];
    if (ns === undefined) throw new Error(`time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    s = s.slice(unit.length);
    totalNs += Number(`${whole || '0'}.${fraction || '0'}`) * ns;
  }
  const ms = Math.round(totalNs) / 1e6;
  return negative ? -ms : ms;
}
