// The command-line front end: nats-server's flags (main.go usage, opts.go ConfigureOptions),
// parsed the way Go's flag package does: `-p 4222`, `--port 4222`, `-port=4222` and
// `--port=4222` are the same; booleans take a value only after `=` (`-D=false`); parsing stops
// at `--` or at the first non-flag argument, which may only be `version` or `help`.
// Flags are applied after the config file, so they override it.

import { emptyCluster } from './config.ts';
import { urlProblem } from '../protocol/hostport.ts';
import { ConfigError, DEFAULT_AUTH_TIMEOUT_MS, DEFAULT_TLS_TIMEOUT_MS, type Options, type Positions } from './options.ts';

/** What the command line asked for; undefined fields were not given. */
export interface ParsedFlags {
  configFile?: string;
  help: boolean;
  version: boolean;
  check: boolean; // -t
  port?: number;
  host?: string;
  serverName?: string;
  workers?: number;
  user?: string;
  password?: string;
  token?: string;
  debug?: boolean;
  trace?: boolean;
  pidFile?: string;
  httpPort?: number;
  clientAdvertise?: string;
  cluster?: string; // --cluster / --cluster_listen URL; '' disables clustering
  clusterName?: string;
  routes?: string; // comma-separated; '' clears the file's routes
  noAdvertise?: boolean;
  connectRetries?: number;
  clusterAdvertise?: string;
  // --tls, --tlscert, --tlskey, --tlscacert, --tlsverify (in the order given: `--tls=false` disables TLS)
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCaCert?: string;
  tlsVerify?: boolean;
  /** A --tls* flag was given after the last --tls=false (main.go: then the flags replace the file's tls block). */
  tlsOverride?: boolean;
  /** --tls=false was given. */
  tlsDisabled?: boolean;
  logFile?: string; // -l / --log
  logtime?: boolean; // -T / --logtime
  signal?: string; // -sl / --signal CMD[=PID]
  portsFileDir?: string;
  syslog?: boolean; // -s: refused
  remoteSyslog?: string; // -r: refused
}

type Apply = (f: ParsedFlags, value: never) => void;

/** The sections of `-h`, in order (nats-server's usage text has the same ones). */
const GROUPS = ['Server', 'Logging', 'Authorization', 'TLS', 'Cluster', 'Common'] as const;
type FlagGroup = (typeof GROUPS)[number];

interface FlagSpec {
  names: string[];
  /** Absent for booleans. */
  arg?: 'string' | 'int';
  /** How `-h` and the README show the value (`<port>`); booleans have none. */
  placeholder?: string;
  group: FlagGroup;
  /** One line for `-h` and the README flag table. */
  help: string;
  /** For int flags: why a value is out of range, or undefined. */
  check?: (n: number) => string | undefined;
  apply: Apply;
}

type Doc = Pick<FlagSpec, 'group' | 'help' | 'placeholder'>;

const portRange = (n: number): string | undefined =>
  n < -1 || n > 65535 ? 'port must be between -1 and 65535' : undefined;

const str = (names: string[], doc: Doc, apply: (f: ParsedFlags, v: string) => void): FlagSpec =>
  ({ names, arg: 'string', ...doc, apply });
const int = (names: string[], doc: Doc, check: FlagSpec['check'], apply: (f: ParsedFlags, v: number) => void): FlagSpec =>
  ({ names, arg: 'int', ...doc, check, apply });
const bool = (names: string[], doc: Doc, apply: (f: ParsedFlags, v: boolean) => void): FlagSpec =>
  ({ names, ...doc, apply });

/**
 * Every command-line flag, in the order `-h` lists them within their group. This table is
 * the only place a flag is declared: the parser, `-h` (usageText) and the README's flag table
 * (flagTableMarkdown; `npm run readme` rewrites it, and test/help.test.ts fails until it
 * matches) all come from it. Adding a flag = one entry here (+ a ParsedFlags field and its
 * use in applyFlags).
 */
const FLAGS: FlagSpec[] = [
  str(['a', 'addr', 'net'], { group: 'Server', placeholder: '<host>', help: 'Bind to host address (default: 0.0.0.0)' },
    (f, v) => { f.host = v; }),
  int(['p', 'port'], { group: 'Server', placeholder: '<port>', help: 'Use port for clients (default: 4222, -1 for random)' },
    portRange, (f, v) => { f.port = v; }),
  str(['n', 'name', 'server_name'], { group: 'Server', placeholder: '<server_name>', help: 'Server name (default: the server id)' },
    (f, v) => { f.serverName = v; }),
  int(['workers'], { group: 'Server', placeholder: '<n>', help: 'Worker threads (default: one per CPU; skein only)' },
    (n) => (n < 1 ? 'workers must be >= 1' : undefined), (f, v) => { f.workers = v; }),
  str(['P', 'pid'], { group: 'Server', placeholder: '<file>', help: 'File to store PID' },
    (f, v) => { f.pidFile = v; }),
  int(['m', 'http_port'], { group: 'Server', placeholder: '<port>', help: 'Use port for http monitoring' },
    portRange, (f, v) => { f.httpPort = v; }),
  str(['c', 'config'], { group: 'Server', placeholder: '<file>', help: "Configuration file (nats-server's .conf format, or YAML with its key names)" },
    (f, v) => { f.configFile = v; }),
  bool(['t'], { group: 'Server', help: 'Test configuration and exit' },
    (f, v) => { f.check = v; }),
  str(['sl', 'signal'], { group: 'Server', placeholder: '<signal>[=<pid>]', help: 'Send signal to a skein process (ldm, stop, quit, term, reopen, reload); <pid> is a PID or a PID file' },
    (f, v) => { f.signal = v; }),
  str(['client_advertise'], { group: 'Server', placeholder: '<string>', help: 'Client URL to advertise to other servers' },
    (f, v) => { f.clientAdvertise = v; }),
  str(['ports_file_dir'], { group: 'Server', placeholder: '<dir>', help: 'Creates a ports file in the specified directory (skein_<pid>.ports)' },
    (f, v) => { f.portsFileDir = v; }),

  str(['l', 'log'], { group: 'Logging', placeholder: '<file>', help: 'File to redirect log output (reopened on SIGUSR1)' },
    (f, v) => { f.logFile = v; }),
  bool(['T', 'logtime'], { group: 'Logging', help: 'Timestamp log entries (default: true)' },
    (f, v) => { f.logtime = v; }),
  // nats-server's syslog flags: refused by name (in applyFlags) rather than as unknown flags.
  bool(['s', 'syslog'], { group: 'Logging', help: 'Log to syslog: not supported by skein (refused)' },
    (f, v) => { f.syslog = v; }),
  str(['r', 'remote_syslog'], { group: 'Logging', placeholder: '<addr>', help: 'Syslog server addr: not supported by skein (refused)' },
    (f, v) => { f.remoteSyslog = v; }),
  bool(['D', 'debug'], { group: 'Logging', help: 'Enable debugging output' },
    (f, v) => { f.debug = v; }),
  bool(['V', 'trace'], { group: 'Logging', help: 'Trace the raw protocol' },
    (f, v) => { f.trace = v; }),
  // -VV/-DVV are nats-server's "verbose trace" (also traces $SYS); skein has no $SYS, so plain trace.
  bool(['VV'], { group: 'Logging', help: 'Verbose trace (as -V: skein has no system account)' },
    (f, v) => { f.trace = v; }),
  bool(['DV'], { group: 'Logging', help: 'Debug and trace' },
    (f, v) => { f.debug = v; f.trace = v; }),
  bool(['DVV'], { group: 'Logging', help: 'Debug and verbose trace (as -DV)' },
    (f, v) => { f.debug = v; f.trace = v; }),

  str(['user'], { group: 'Authorization', placeholder: '<user>', help: 'User required for connections' },
    (f, v) => { f.user = v; }),
  str(['pass'], { group: 'Authorization', placeholder: '<password>', help: 'Password required for connections' },
    (f, v) => { f.password = v; }),
  str(['auth'], { group: 'Authorization', placeholder: '<token>', help: 'Authorization token required for connections' },
    (f, v) => { f.token = v; }),

  // opts.go ConfigureOptions: any tls* flag turns the flags' TLS on, unless --tls=false came.
  bool(['tls'], { group: 'TLS', help: 'Enable TLS, do not verify clients (default: false)' }, (f, v) => {
    f.tls = v;
    if (v) {
      f.tlsOverride = !f.tlsDisabled;
    } else {
      f.tlsDisabled = true;
      f.tlsOverride = false;
    }
  }),
  str(['tlscert'], { group: 'TLS', placeholder: '<file>', help: 'Server certificate file' },
    (f, v) => { f.tlsCert = v; tlsFlag(f); }),
  str(['tlskey'], { group: 'TLS', placeholder: '<file>', help: 'Private key for server certificate' },
    (f, v) => { f.tlsKey = v; tlsFlag(f); }),
  bool(['tlsverify'], { group: 'TLS', help: 'Enable TLS, verify client certificates' },
    (f, v) => { f.tlsVerify = v; tlsFlag(f); }),
  str(['tlscacert'], { group: 'TLS', placeholder: '<file>', help: 'Client certificate CA for verification' },
    (f, v) => { f.tlsCaCert = v; tlsFlag(f); }),

  str(['routes'], { group: 'Cluster', placeholder: '<rurl-1, rurl-2>', help: 'Routes to solicit and connect (nats-route://[user:pass@]host:port)' },
    (f, v) => { f.routes = v; }),
  str(['cluster', 'cluster_listen'], { group: 'Cluster', placeholder: '<cluster-url>', help: 'Cluster URL for solicited routes (nats://[user:pass@]host:port, port -1 for random)' },
    (f, v) => { f.cluster = v; }),
  str(['cluster_name'], { group: 'Cluster', placeholder: '<string>', help: 'Cluster Name, if not set one will be dynamically generated' },
    (f, v) => { f.clusterName = v; }),
  bool(['no_advertise'], { group: 'Cluster', help: 'Do not advertise known cluster information to clients' },
    (f, v) => { f.noAdvertise = v; }),
  str(['cluster_advertise'], { group: 'Cluster', placeholder: '<string>', help: 'Cluster URL to advertise to other servers' },
    (f, v) => { f.clusterAdvertise = v; }),
  int(['connect_retries'], { group: 'Cluster', placeholder: '<number>', help: 'For implicit routes, number of connect retries' },
    (n) => (n < 0 ? 'must be >= 0' : undefined), (f, v) => { f.connectRetries = v; }),

  bool(['h', 'help'], { group: 'Common', help: 'Show this message' },
    (f, v) => { f.help = v; }),
  bool(['v', 'version'], { group: 'Common', help: 'Show version' },
    (f, v) => { f.version = v; }),
];

function tlsFlag(f: ParsedFlags): void {
  if (!f.tlsDisabled) f.tlsOverride = true;
}

const BY_NAME = new Map<string, FlagSpec>();
for (const spec of FLAGS) for (const name of spec.names) BY_NAME.set(name, spec);

/** strconv.ParseBool */
function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Parses argv (process.argv.slice(2)). Throws ConfigError with code BAD_FLAG. */
export function parseFlags(argv: string[]): ParsedFlags {
  const f: ParsedFlags = { help: false, version: false, check: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.length < 2 || arg[0] !== '-') break;
    if (arg === '--') {
      i++;
      break;
    }
    const dashes = arg[1] === '-' ? '--' : '-';
    let name = arg.slice(dashes.length);
    if (name === '' || name[0] === '-' || name[0] === '=') throw new ConfigError('BAD_FLAG', `bad flag syntax: ${arg}`);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const shown = dashes + name;
    const spec = BY_NAME.get(name);
    if (!spec) throw new ConfigError('BAD_FLAG', `flag provided but not defined: ${shown}`);

    if (spec.arg === undefined) {
      const b = value === undefined ? true : parseBool(value);
      if (b === undefined) throw new ConfigError('BAD_FLAG', `invalid boolean value ${JSON.stringify(value)} for ${shown}: parse error`);
      spec.apply(f, b as never);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new ConfigError('BAD_FLAG', `flag needs an argument: ${shown}`);
      value = argv[++i];
    }
    if (spec.arg === 'string') {
      spec.apply(f, value as never);
      continue;
    }
    if (!/^[-+]?\d+$/.test(value)) throw new ConfigError('BAD_FLAG', `invalid value ${JSON.stringify(value)} for flag ${shown}: parse error`);
    const n = Number(value);
    const problem = spec.check?.(n);
    if (problem) throw new ConfigError('BAD_FLAG', `invalid value ${JSON.stringify(value)} for flag ${shown}: ${problem}`);
    spec.apply(f, n as never);
  }

  // server.go ProcessCommandLineArgs: `nats-server version` and `nats-server help`.
  if (i < argv.length) {
    const command = argv[i].toLowerCase();
    if (command === 'version') f.version = true;
    else if (command === 'help') f.help = true;
    else throw new ConfigError('BAD_FLAG', `unrecognized command: ${JSON.stringify(argv[i])}`);
  }
  return f;
}

/**
 * Lays the flags over options already read from the config file (nats-server parses the flags
 * a second time after the file). A value set by a flag forgets its file position.
 */
export function applyFlags(f: ParsedFlags, o: Options, positions: Positions): void {
  const overridden = (...paths: string[]): void => { for (const p of paths) positions.delete(p); };

  if (f.port !== undefined) { o.port = f.port; overridden('port', 'listen'); }
  if (f.host !== undefined) { o.host = f.host; overridden('host', 'listen'); }
  if (f.serverName !== undefined) o.serverName = f.serverName || undefined;
  if (f.workers !== undefined) { o.workers = f.workers; overridden('workers'); }
  if (f.debug !== undefined) o.debug = f.debug;
  if (f.trace !== undefined) o.trace = f.trace;
  if (f.pidFile !== undefined) o.pidFile = f.pidFile;
  if (f.syslog === true) throw new ConfigError('BAD_FLAG', 'syslog (-s, --syslog) is not supported by skein; log to stderr or a file (-l)');
  if (f.remoteSyslog !== undefined) throw new ConfigError('BAD_FLAG', 'remote syslog (-r, --remote_syslog) is not supported by skein; log to stderr or a file (-l)');
  if (f.logFile !== undefined) o.logFile = f.logFile || undefined;
  if (f.logtime !== undefined) o.logtime = f.logtime;
  if (f.portsFileDir !== undefined) o.portsFileDir = f.portsFileDir || undefined;
  if (f.httpPort !== undefined) o.httpPort = f.httpPort === 0 ? undefined : f.httpPort;
  if (f.clientAdvertise !== undefined) o.clientAdvertise = f.clientAdvertise;

  if (f.user !== undefined || f.password !== undefined || f.token !== undefined) {
    const a = (o.authorization ??= { timeoutMs: DEFAULT_AUTH_TIMEOUT_MS });
    if (f.user !== undefined) a.user = f.user;
    if (f.password !== undefined) a.password = f.password;
    if (f.token !== undefined) a.token = f.token;
  }

  if (f.clusterName !== undefined) { (o.cluster ??= emptyCluster()).name = f.clusterName || undefined; overridden('cluster.name'); }
  if (f.noAdvertise !== undefined) (o.cluster ??= emptyCluster()).noAdvertise = f.noAdvertise;
  if (f.connectRetries !== undefined) (o.cluster ??= emptyCluster()).connectRetries = f.connectRetries;
  if (f.clusterAdvertise !== undefined) (o.cluster ??= emptyCluster()).advertise = f.clusterAdvertise;

  if (f.routes !== undefined) {
    const routes: string[] = [];
    for (const r of f.routes === '' ? [] : f.routes.split(',').map((s) => s.trim())) {
      const problem = urlProblem(r);
      if (problem) {
        throw new ConfigError('BAD_FLAG', `invalid value ${JSON.stringify(f.routes)} for flag --routes: ` +
          `route url ${JSON.stringify(r)}: ${problem === 'parse' ? 'not a URL like nats://host:port' : problem}`);
      }
      if (!routes.includes(r)) routes.push(r);
    }
    (o.cluster ??= emptyCluster()).routes = routes;
    overridden('cluster.routes');
  }

  if (f.cluster !== undefined) {
    if (f.cluster === '') {
      // opts.go overrideCluster: an empty --cluster turns clustering off.
      delete o.cluster;
    } else {
      const c = (o.cluster ??= emptyCluster());
      const listen = parseClusterListen(f.cluster);
      c.host = listen.host;
      c.port = listen.port;
      if (listen.user !== undefined) {
        c.authorization = { ...c.authorization, timeoutMs: c.authorization?.timeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS,
          user: listen.user, password: listen.password };
      } else if (c.authorization) {
        // No userinfo in the flag clears the file's route credentials, as nats-server does.
        delete c.authorization.user;
        delete c.authorization.password;
      }
      overridden('cluster.port', 'cluster.host', 'cluster.listen', 'cluster.authorization');
    }
  }

  if (f.tlsDisabled) {
    delete o.tls;
    overridden('tls');
  } else if (f.tlsOverride) {
    // opts.go overrideTLS: the flags' TLS replaces the file's block (default ciphers, 2s timeout).
    if (!f.tlsCert) throw new ConfigError('BAD_FLAG', 'TLS Server certificate must be present and valid');
    if (!f.tlsKey) throw new ConfigError('BAD_FLAG', 'TLS Server private key must be present and valid');
    o.tls = {
      certFile: f.tlsCert, keyFile: f.tlsKey, caFile: f.tlsCaCert || undefined, verify: f.tlsVerify === true,
      map: o.tls?.map ?? false, insecure: false, timeoutMs: o.tls?.timeoutMs ?? DEFAULT_TLS_TIMEOUT_MS,
    };
    overridden('tls');
  }

  // opts.go ConfigureOptions: --routes needs somewhere to listen for routes.
  if (f.routes && (!o.cluster || o.cluster.port === 0)) {
    throw new ConfigError('BAD_FLAG', 'solicited routes require cluster capabilities, e.g. --cluster');
  }
}

/** `nats://[user:pass@]host:port`; the scheme is ignored and port -1 means random. */
function parseClusterListen(text: string): { host: string; port: number; user?: string; password?: string } {
  const bad = (why: string): never => {
    throw new ConfigError('BAD_FLAG', `invalid value ${JSON.stringify(text)} for flag --cluster: ${why}`);
  };
  // The URL parser refuses port -1, so parse it as 0 and put -1 back (as opts.go does).
  const random = text.endsWith(':-1');
  let url: URL;
  try {
    url = new URL(random ? `${text.slice(0, -3)}:0` : text);
  } catch {
    return bad('not a URL like nats://host:port');
  }
  if (!url.port) bad('no port');
  const port = random ? -1 : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.username === '' && url.password === '') return { host, port };
  if (url.password === '') throw new ConfigError('BAD_FLAG', 'expected cluster password to be set');
  return { host, port, user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
}

/** How a flag is written: `-p`, `-DV` (nats-server's single-dash forms), `--port`. */
function flagName(name: string): string {
  return name.length === 1 || /^[A-Z]+$/.test(name) || name === 'sl' ? `-${name}` : `--${name}`;
}

/** `-a, --addr, --net <host>` */
function flagSynopsis(spec: FlagSpec): string {
  return spec.names.map(flagName).join(', ') + (spec.placeholder ? ` ${spec.placeholder}` : '');
}

const USAGE_COLUMN = 37; // where nats-server's usage text starts the descriptions

/** `-h`: nats-server's usage layout, built from FLAGS. */
export function usageText(): string {
  const sections = GROUPS.map((group) => {
    const lines = FLAGS.filter((f) => f.group === group).map((f) => {
      // Long-only flags line up after the short ones, as in nats-server's usage text.
      const synopsis = `    ${flagName(f.names[0]).startsWith('--') ? '    ' : ''}${flagSynopsis(f)}`;
      return synopsis.length < USAGE_COLUMN
        ? synopsis.padEnd(USAGE_COLUMN) + f.help
        : `${synopsis}\n${' '.repeat(USAGE_COLUMN)}${f.help}`;
    });
    return lines.length === 0 ? '' : `${group} Options:\n${lines.join('\n')}\n`;
  }).filter((s) => s !== '');
  return `\nUsage: skein [options]\n\n${sections.join('\n')}`;
}

/** The README's flag table (between its `flags` markers), built from FLAGS like `-h`. */
export function flagTableMarkdown(): string {
  const rows = FLAGS.map((f) => `| \`${flagSynopsis(f)}\` | ${f.help.replace(/\|/g, '\\|')} |`);
  return ['| flag | meaning |', '|---|---|', ...rows].join('\n');
}
