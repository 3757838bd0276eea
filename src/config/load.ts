// Loading the options, as nats-server's ConfigureOptions (opts.go): parse the flags once (to
// find -c, -h, -v, -t, --signal), read the config file over the defaults, apply the flags again
// on top, then validate the result as a whole (server.go validateOptions) and read the TLS
// files. Front ends: config.ts (config files), flags.ts (argv); the Options type and its
// defaults are options.ts's, which imports nothing of ours.

import { readFileSync } from 'node:fs';
import { loadConfigFile } from './config.ts';
import { applyFlags, parseFlags, usageText } from './flags.ts';
import { SIGNAL_COMMANDS } from './signal.ts';
import { loadTlsFiles } from '../conn/tls.ts';
import {
  ConfigError, DEFAULT_AUTH_TIMEOUT_MS, DEFAULT_HOST, DEFAULT_LAME_DUCK_DURATION_MS, DEFAULT_LAME_DUCK_GRACE_PERIOD_MS, DEFAULT_PORT,
  defaultOptions, goDuration,
  type ConfigErrorCode, type LeafNodeOptions, type Options, type Positions, type TlsOptions,
} from './options.ts';

export type LoadResult =
  | { kind: 'run'; options: Options; warnings: ConfigError[] } // warnings: log them, then run
  | { kind: 'check'; options: Options } // -t: config checked, exit 0 after printing success
  | { kind: 'signal'; command: string; pid?: string } // --signal CMD[=PID]: send it and exit
  | { kind: 'help'; text: string } // -h/--help
  | { kind: 'version'; text: string }; // -v/--version

export function versionText(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `skein: v${pkg.version}`;
}

/** argv = process.argv.slice(2). Throws ConfigError. */
export async function loadOptions(argv: string[]): Promise<LoadResult> {
  const flags = parseFlags(argv);
  if (flags.version) return { kind: 'version', text: versionText() };
  if (flags.help) return { kind: 'help', text: usageText() };
  if (flags.signal !== undefined) return parseSignalCommand(flags.signal);
  if (flags.check && flags.configFile === undefined) {
    throw new ConfigError('BAD_FLAG', 'must specify [-c, --config] option to check configuration file syntax');
  }

  const options = defaultOptions();
  const positions: Positions = new Map();
  let warnings: ConfigError[] = [];
  if (flags.configFile !== undefined) {
    warnings = await loadConfigFile(flags.configFile, options, positions);
  }
  applyFlags(flags, options, positions);
  validateOptions(options, positions);
  await loadTls(options, positions);
  // nats-server -t treats warnings as errors (main.go: "config file check").
  if (flags.check && warnings.length > 0) throw ConfigError.of(warnings);
  return flags.check ? { kind: 'check', options } : { kind: 'run', options, warnings };
}


/** opts.go processSignal: `cmd`, or `cmd=pid`, or `cmd=pidfile`; nothing after a second `=`. */
function parseSignalCommand(text: string): LoadResult {
  const parts = text.split('=');
  if (parts.length > 2) throw new ConfigError('BAD_FLAG', `invalid signal parameters: [${parts.slice(2).join(' ')}]`);
  if (!Object.hasOwn(SIGNAL_COMMANDS, parts[0])) throw new ConfigError('BAD_FLAG', `unknown signal ${JSON.stringify(parts[0])}`);
  return parts.length === 2 ? { kind: 'signal', command: parts[0], pid: parts[1] } : { kind: 'signal', command: parts[0] };
}

/**
 * Reads the certificates, keys and CAs of every `tls` block, once, on the main thread (the
 * threads get the PEM text with the options). A missing or bad file is a config error that
 * names the block, as nats-server's GenTLSConfig errors do.
 */
export async function loadTls(o: Options, positions: Positions = new Map()): Promise<void> {
  const problems: ConfigError[] = [];
  const blocks: [string, TlsOptions | undefined][] = [
    ['tls', o.tls], ['cluster.tls', o.cluster?.tls], ['gateway.tls', o.gateway?.tls], ['leafnodes.tls', o.leafNodes?.tls],
  ];
  o.gateway?.gateways.forEach((r, i) => blocks.push([`gateway.gateways.${i}.tls`, r.tls]));
  o.leafNodes?.remotes.forEach((r, i) => blocks.push([`leafnodes.remotes.${i}.tls`, r.tls]));
  for (const [path, t] of blocks) {
    if (t === undefined) continue;
    try {
      await loadTlsFiles(t);
    } catch (err) {
      problems.push(new ConfigError('BAD_VALUE', `${path}: ${(err as Error).message}`, positions.get(path)));
    }
  }
  if (problems.length > 0) throw ConfigError.of(problems);
}

/**
 * The whole-config checks (nats-server's validateOptions and setBaselineOptions), run once
 * after both front ends. Normalises in place: fills cluster/gateway defaults, drops the
 * cluster and gateway sections that are not enabled and the authorization sections that ask
 * for no credentials. Idempotent. Throws ConfigError with code CONFLICT or BAD_VALUE.
 */
export function validateOptions(o: Options, positions: Positions = new Map()): Options {
  const fail = (code: ConfigErrorCode, reason: string, ...paths: string[]): never => {
    const at = paths.map((p) => positions.get(p)).find((p) => p !== undefined);
    throw new ConfigError(code, reason, at);
  };

  // nats-server treats port 0 as "not set" and listens on 4222; -1 asks for a random port.
  if (o.port === 0) o.port = DEFAULT_PORT;
  if (!o.host) o.host = DEFAULT_HOST;
  if (o.workers < 1 || !Number.isInteger(o.workers)) fail('BAD_VALUE', 'workers must be an integer >= 1', 'workers');

  // server.go validateOptions
  if (o.maxPayload > o.maxPending) {
    fail('CONFLICT', `max_payload (${o.maxPayload}) cannot be higher than max_pending (${o.maxPending})`,
      'max_payload', 'max_pending');
  }
  const ldm = o.lameDuckDurationMs ?? DEFAULT_LAME_DUCK_DURATION_MS;
  const grace = o.lameDuckGracePeriodMs ?? DEFAULT_LAME_DUCK_GRACE_PERIOD_MS;
  if (ldm > 0 && grace >= ldm) {
    fail('CONFLICT', `lame duck grace period (${goDuration(grace)}) should be strictly lower than lame duck duration (${goDuration(ldm)})`,
      'lame_duck_grace_period', 'lame_duck_duration');
  }

  // opts.go setBaselineOptions: with TLS, an auth timeout left at its default becomes the TLS
  // timeout plus one second (the handshake must not eat the client's time to authenticate).
  if (o.tls && o.authorization && !positions.has('authorization.timeout') && o.authorization.timeoutMs === DEFAULT_AUTH_TIMEOUT_MS) {
    o.authorization.timeoutMs = o.tls.timeoutMs + 1000;
  }
  const ca = o.cluster?.authorization;
  if (o.cluster?.tls && ca && !positions.has('cluster.authorization.timeout') && ca.timeoutMs === DEFAULT_AUTH_TIMEOUT_MS) {
    ca.timeoutMs = o.cluster.tls.timeoutMs + 1000;
  }

  if (o.authorization) {
    const a = o.authorization;
    // opts.go processConfigFileLine "authorization"; rechecked here because --user/--pass/--auth
    // may combine with the file's users.
    if ((a.user || a.password) && a.token) fail('CONFLICT', 'Cannot have a user/pass and token', 'authorization');
    if (a.users && a.users.length > 0) {
      if (a.user) fail('CONFLICT', 'Can not have a single user/pass and a users array', 'authorization');
      if (a.token) fail('CONFLICT', 'Can not have a token and a users array', 'authorization');
      const seen = new Set<string>();
      for (const u of a.users) {
        if (seen.has(u.user)) fail('CONFLICT', `Duplicate user ${JSON.stringify(u.user)} detected`, 'authorization');
        seen.add(u.user);
      }
    }
    // nats-server silently runs without auth when only a password is set; that is a trap.
    if (a.password && !a.user) fail('CONFLICT', 'authorization has a password but no user', 'authorization');
    if (a.nkeys && a.nkeys.length > 0) {
      if (a.user) fail('CONFLICT', 'Can not have a single user/pass and a users array', 'authorization');
      if (a.token) fail('CONFLICT', 'Can not have a token and a users array', 'authorization');
      const seen = new Set<string>();
      for (const n of a.nkeys) {
        if (seen.has(n.nkey)) fail('CONFLICT', `Duplicate nkey ${JSON.stringify(n.nkey)} detected`, 'authorization');
        seen.add(n.nkey);
      }
    }
    if (a.users && a.users.length === 0) delete a.users;
    if (!a.user && !a.token && !a.users && !(a.nkeys && a.nkeys.length > 0)) delete o.authorization;
  }

  if (o.gateway) {
    const g = o.gateway;
    // gateway.go validateGatewayOptions
    if (!g.name && g.port === 0) {
      delete o.gateway;
    } else {
      if (!g.name) fail('BAD_VALUE', 'gateway has no name', 'gateway');
      if (g.port === 0) fail('BAD_VALUE', `gateway ${JSON.stringify(g.name)} has no port specified (select -1 for random port)`, 'gateway');
      g.gateways.forEach((r, i) => {
        if (!r.name) fail('BAD_VALUE', `gateway in the list ${i} has no name`, `gateway.gateways.${i}`);
        if (r.urls.length === 0) fail('BAD_VALUE', `gateway ${JSON.stringify(r.name)} has no URL`, `gateway.gateways.${i}`);
      });
      if (!g.host) g.host = DEFAULT_HOST;
      checkSimpleAuth('Gateway', g.authorization, fail, 'gateway.authorization');
      // opts.go setBaselineOptions: the inbound's auth timer runs whether or not a user is
      // set; left at its default, it is the TLS timeout + 1 s with TLS.
      const explicit = positions.has('gateway.authorization.timeout') ? (g.authorization?.timeoutMs ?? g.authTimeoutMs) : undefined;
      g.authTimeoutMs = explicit ?? (g.tls ? g.tls.timeoutMs + 1000 : DEFAULT_AUTH_TIMEOUT_MS);
      if (g.authorization) g.authorization.timeoutMs = g.authTimeoutMs;
      if (g.authorization && !g.authorization.user && !g.authorization.password) delete g.authorization;
    }
  }

  // server.go validateCluster, after validateGatewayOptions as in validateOptions (and before a
  // cluster block without a port is dropped: its name still conflicts): a gateway name
  // becomes the cluster name; two different names conflict.
  if (o.gateway && o.gateway.name !== o.cluster?.name) {
    if (o.cluster?.name) fail('CONFLICT', 'cluster name conflicts between cluster and gateway definitions', 'cluster.name', 'gateway.name');
    // Set so the cluster name is not dynamic (nats-server does the same).
    if (o.cluster) o.cluster.name = o.gateway.name;
  }

  if (o.cluster) {
    const c = o.cluster;
    if (c.port === 0) {
      // nats-server does not cluster without a port and ignores the routes; refuse instead of
      // silently dropping them.
      if (c.routes.length > 0) {
        fail('CONFLICT', 'cluster routes require a cluster port (set cluster.port or cluster.listen, or --cluster)', 'cluster.routes', 'cluster');
      }
      delete o.cluster;
    } else {
      if (!c.host) c.host = DEFAULT_HOST;
      checkSimpleAuth('Cluster', c.authorization, fail, 'cluster.authorization');
      if (c.authorization && !c.authorization.user && !c.authorization.password) delete c.authorization;
    }
  }

  if (o.leafNodes) {
    validateLeafNodes(o.leafNodes, fail, positions);
    // Neither a port to accept on nor a remote to dial: no leaf node role (nats-server likewise).
    if (o.leafNodes.port === 0 && o.leafNodes.remotes.length === 0) delete o.leafNodes;
  }
  return o;
}

/**
 * leafnode.go validateLeafNode / validateLeafNodeAuthOptions and opts.go setBaselineOptions,
 * for what skein reads of the `leafnodes` block. Accounts: skein has only `$G` (the config
 * front end refuses any other name with nats-server's "cannot find local account" error).
 */
function validateLeafNodes(
  l: LeafNodeOptions,
  fail: (code: ConfigErrorCode, reason: string, ...paths: string[]) => never,
  positions: Positions,
): void {
  const a = l.authorization;
  if (a) {
    if (a.users && a.users.length > 0) {
      if (a.user) fail('CONFLICT', 'can not have a single user/pass and a users array', 'leafnodes.authorization');
      const seen = new Set<string>();
      for (const u of a.users) {
        if (seen.has(u.user)) fail('CONFLICT', `duplicate user ${JSON.stringify(u.user)} detected in leafnode authorization`, 'leafnodes.authorization');
        seen.add(u.user);
      }
    }
    // nats-server would then let every leaf in (it compares the CONNECT user with an empty one
    // only when a user is set): refuse the trap, as skein does for client authorization.
    if (a.password && !a.user) fail('CONFLICT', 'leafnodes authorization has a password but no user', 'leafnodes.authorization');
    if (a.users && a.users.length === 0) delete a.users;
    if (!a.user && !a.users) delete l.authorization;
  }
  // setBaselineOptions: with TLS, an auth timeout left at its default is the TLS timeout + 1s.
  if (l.tls && !positions.has('leafnodes.authorization.timeout') && l.authTimeoutMs === DEFAULT_AUTH_TIMEOUT_MS) {
    l.authTimeoutMs = l.tls.timeoutMs + 1000;
  }
  if (l.port !== 0 && !l.host) l.host = DEFAULT_HOST;
}

function checkSimpleAuth(
  kind: 'Cluster' | 'Gateway',
  a: { user?: string; password?: string; token?: string } | undefined,
  fail: (code: ConfigErrorCode, reason: string, ...paths: string[]) => never,
  path: string,
): void {
  if (!a) return;
  if (a.token) fail('CONFLICT', `${kind} authorization does not support tokens`, path);
  if (a.password && !a.user) fail('CONFLICT', `${kind.toLowerCase()} authorization has a password but no user`, path);
}
