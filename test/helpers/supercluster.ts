// Superclusters for black-box tests: clusters joined by gateways, each server skein or
// nats-server, on 127.0.0.1 with OS-picked ports.
//
// Every gateway test file registers each test once per topology variant (all nats-server, all
// skein, one cluster of each, clusters that mix both).
//
// Ports: every server binds its client, route, gateway and monitoring ports with -1 and the
// helper reads them back from the log (`Listening for gateways connections on H:P`: note
// 2.9.10's plural). Clusters start in order, each server of cluster c naming in `gateways`
// only clusters started before it (default: cluster 0 only; the rest are found by gossip),
// and server s > 0 of a cluster routing to server 0. A topology in which a server must name
// one that is not up yet, or whose servers restart on the ports they had (reliability),
// leases its ports (helpers/ports.ts) and lists every member in every route list.
//
// "Gateways connected" is read from /gatewayz, which nats-server serves and skein's monitor
// already answers (empty today): on every server, one outbound per other cluster and one
// inbound per server of every other cluster. A skein with gateways must fill /gatewayz with
// nats-server's names (outbound_gateways{name: {connection}}, inbound_gateways{name: [...]})
// for this wait to pass; that is part of the target.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { getJson } from './monitor.ts';
import { leasePort, type PortLease } from './ports.ts';
import { startServer, type Impl, type ServerHandle } from './server.ts';
import { sleep, uid } from './cluster.ts';

// ---------------------------------------------------------------------------------------
// Variants: which implementation runs each server

export interface Variant {
  name: VariantName;
  /** The implementation of server s of cluster c. */
  impl(c: number, s: number): Impl;
  usesSkein: boolean;
}

export type VariantName = 'nats-server' | 'skein' | 'skein+nats-server' | 'nats-server+skein' | 'mixed';

export const VARIANTS: Record<VariantName, Variant> = {
  'nats-server': { name: 'nats-server', impl: () => 'nats-server', usesSkein: false },
  skein: { name: 'skein', impl: () => 'skein', usesSkein: true },
  /** Cluster 0 (A) skein, every other cluster nats-server. */
  'skein+nats-server': { name: 'skein+nats-server', impl: (c) => (c === 0 ? 'skein' : 'nats-server'), usesSkein: true },
  /** Cluster 0 (A) nats-server, every other cluster skein. */
  'nats-server+skein': { name: 'nats-server+skein', impl: (c) => (c === 0 ? 'nats-server' : 'skein'), usesSkein: true },
  /** Every cluster of two or more mixes both; server s of cluster c is skein when c + s is even. */
  mixed: { name: 'mixed', impl: (c, s) => ((c + s) % 2 === 0 ? 'skein' : 'nats-server'), usesSkein: true },
};

/** Every topology: nats-server alone (runs now), skein alone, and the interop ones. */
export const ALL_VARIANTS: VariantName[] = ['nats-server', 'skein', 'skein+nats-server', 'nats-server+skein', 'mixed'];
/** For a test against one server (with raw peers): that server is nats-server or skein. */
export const SINGLE_VARIANTS: VariantName[] = ['nats-server', 'skein'];

/**
 * Registers `fn` once per variant, titled `title [variant]`. Variants that start skein are
 * registered as serial tests (a
 * supercluster of skein servers is a dozen processes with worker threads: several at once on
 * a 2-core machine only measure the machine); the nats-server variants run concurrently.
 */
export function gatewayTest(
  title: string,
  variants: VariantName[],
  fn: (t: ExecutionContext, v: Variant) => Promise<void>,
  timeoutMs = 120_000,
): void {
  for (const name of variants) {
    const v = VARIANTS[name];
    const register = v.usesSkein ? test.serial : test;
    register(`${title} [${name}]`, async (t) => {
      t.timeout(timeoutMs);
      await fn(t, v);
    });
  }
}

// ---------------------------------------------------------------------------------------
// Log lines

/** 2.9.10 writes "gateways" (plural) in this line; skein should write the same. */
export const GATEWAY_LISTEN_RE = /Listening for gateways? connections on \S+:(\d+)\b/;
const ROUTE_LISTEN_RE = /Listening for route connections on \S+:(\d+)\b/;
const HTTP_LISTEN_RE = /Starting http monitor on \S+:(\d+)\b/;

/** Escapes text for use inside a RegExp. */
export function re(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------
// Gateway servers

export interface GwServer {
  cluster: number;
  index: number;
  /** server_name: the cluster's letter and the index from 1 (A1, A2, B1). */
  name: string;
  impl: Impl;
  srv: ServerHandle;
  port: number;
  clusterPort: number;
  gatewayPort: number;
  httpPort: number;
  /** Leased [client, route, gateway] ports, when the topology leases. */
  leases?: PortLease[];
  /** The config file of the running (or last) incarnation. */
  configFile: string;
}

export interface SuperclusterOptions {
  variant: Variant;
  /** Servers per cluster: [2, 2, 1] is A (2 servers), B (2), C (1). */
  sizes: number[];
  /**
   * Gateway names. Default: A, B, C... each with a random suffix (`A-1f2e3d`), so a server
   * that re-dials a port some other test's server took meanwhile is refused there.
   */
  names?: string[];
  /** Which clusters server s of cluster c names in `gateways`. Default: cluster 0, from every other cluster. */
  gateways?: (c: number, s: number) => number[];
  /** Which servers of cluster k are listed as its URLs. Default: every one. */
  gatewayUrlsOf?: (k: number) => number[];
  /** Extra entries of server (c, s)'s `gateways` list: raw peers, wrong names, wrong ports (URLs as given). */
  remotes?: (c: number, s: number, sc: Supercluster) => { name: string; urls: string[] }[];
  /** Extra lines inside the `gateway { }` block of server (c, s). */
  gatewayBlock?: (c: number, s: number, sc: Supercluster) => string;
  /** Extra top-level config lines of server (c, s). */
  config?: (c: number, s: number, sc: Supercluster) => string;
  /** Extra lines inside the `cluster { }` block (clusters of 2 or more). */
  clusterBlock?: (c: number, s: number) => string;
  /** Lease client, route and gateway ports up front: any server may name any other, and restarts keep their ports. */
  leasePorts?: boolean;
  /** Wait until every gateway and every route is connected (default true). */
  waitConnected?: boolean;
  /** skein worker threads per server (default 2). */
  workers?: number;
  /** Start only these servers now ([c, s] pairs); the rest with startServer later. Default: all. */
  startOnly?: [number, number][];
  /** Extra environment of the skein servers (SKEIN_FAULT_INJECTION=1). */
  skeinEnv?: Record<string, string>;
}

export interface GatewayzConn {
  cid?: number;
  ip?: string;
  port?: number;
  name?: string;
  rtt?: string;
  in_msgs?: number;
  out_msgs?: number;
}

export interface Gatewayz {
  server_id: string;
  name?: string;
  host?: string;
  port?: number;
  outbound_gateways: Record<string, { configured: boolean; connection?: GatewayzConn; accounts?: unknown[] }>;
  inbound_gateways: Record<string, { configured: boolean; connection?: GatewayzConn }[]>;
}

export class Supercluster {
  readonly names: string[];
  readonly servers: GwServer[][] = [];
  readonly opts: SuperclusterOptions;
  private readonly dir: string;
  private readonly conns: NatsConnection[] = [];

  private constructor(opts: SuperclusterOptions) {
    this.opts = opts;
    const suffix = uid().slice(0, 6);
    this.names = opts.names ?? opts.sizes.map((_n, c) => `${String.fromCharCode(65 + c)}-${suffix}`);
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'skein-gw-test-'));
  }

  /** Starts every cluster in order and (by default) waits until every gateway is connected. */
  static async start(t: ExecutionContext, opts: SuperclusterOptions): Promise<Supercluster> {
    const sc = new Supercluster(opts);
    t.teardown(() => sc.stop());
    opts.sizes.forEach((n, c) => {
      sc.servers.push(
        [...Array(n).keys()].map((s) => ({
          cluster: c,
          index: s,
          name: `${String.fromCharCode(65 + c)}${s + 1}`,
          impl: opts.variant.impl(c, s),
          srv: undefined as unknown as ServerHandle,
          port: 0,
          clusterPort: 0,
          gatewayPort: 0,
          httpPort: 0,
          configFile: '',
        })),
      );
    });
    if (opts.leasePorts) {
      for (const cl of sc.servers) {
        for (const g of cl) {
          g.leases = [await leasePort(), await leasePort(), await leasePort()];
          [g.port, g.clusterPort, g.gatewayPort] = g.leases.map((l) => l.port);
        }
      }
    }
    const only = opts.startOnly;
    for (const cl of sc.servers) {
      for (const g of cl) {
        if (only && !only.some(([c, s]) => c === g.cluster && s === g.index)) continue;
        await sc.startServer(g.cluster, g.index);
      }
    }
    if (opts.waitConnected !== false) {
      await sc.waitConnected();
      await sc.waitRoutes();
    }
    return sc;
  }

  get all(): GwServer[] {
    return this.servers.flat();
  }

  server(c: number, s: number): GwServer {
    return this.servers[c][s];
  }

  /** The .conf text of server (c, s), from the ports known now. Valid for both implementations. */
  configText(c: number, s: number): string {
    const o = this.opts;
    const g = this.servers[c][s];
    const leased = o.leasePorts === true;
    const lines: string[] = [`server_name: ${g.name}`, 'http: "127.0.0.1:-1"'];
    const size = this.servers[c].length;
    if (size > 1) {
      const peers = leased ? [...Array(size).keys()] : s === 0 ? [] : [0];
      const routes = peers.map((k) => {
        const p = this.servers[c][k].clusterPort;
        if (p === 0) throw new Error(`${g.name} routes to ${this.servers[c][k].name}, which has no port yet`);
        return `"nats://127.0.0.1:${p}"`;
      });
      lines.push('cluster {', `  name: "${this.names[c]}"`, `  listen: "127.0.0.1:${leased ? g.clusterPort : -1}"`);
      if (routes.length > 0) lines.push(`  routes: [${routes.join(', ')}]`);
      if (o.clusterBlock) lines.push(o.clusterBlock(c, s));
      lines.push('}');
    }
    const remotes = (o.gateways ?? ((cc) => (cc === 0 ? [] : [0])))(c, s);
    lines.push('gateway {', `  name: "${this.names[c]}"`, `  listen: "127.0.0.1:${leased ? g.gatewayPort : -1}"`);
    const extra = o.remotes?.(c, s, this) ?? [];
    if (remotes.length > 0 || extra.length > 0) {
      lines.push('  gateways: [');
      for (const r of extra) lines.push(`    {name: "${r.name}", urls: [${r.urls.map((u) => `"${u}"`).join(', ')}]}`);
      for (const k of remotes) {
        const which = o.gatewayUrlsOf?.(k) ?? [...this.servers[k].keys()];
        const urls = which
          .map((i) => this.servers[k][i].gatewayPort)
          .filter((p) => p !== 0)
          .map((p) => `"nats://127.0.0.1:${p}"`);
        if (urls.length === 0)
          throw new Error(`${g.name} names gateway ${this.names[k]} before any of its servers has a port (lease the ports)`);
        lines.push(`    {name: "${this.names[k]}", urls: [${urls.join(', ')}]}`);
      }
      lines.push('  ]');
    }
    if (o.gatewayBlock) lines.push(o.gatewayBlock(c, s, this));
    lines.push('}');
    if (o.config) lines.push(o.config(c, s, this));
    return `${lines.join('\n')}\n`;
  }

  /** Starts (or restarts) server (c, s); a restart keeps leased ports, otherwise gets new ones. */
  async startServer(c: number, s: number): Promise<GwServer> {
    const g = this.servers[c][s];
    const file = path.join(this.dir, `${g.name}.conf`);
    writeFileSync(file, this.configText(c, s));
    g.configFile = file;
    g.srv = await startServer({
      impl: g.impl,
      port: this.opts.leasePorts ? g.port : undefined,
      args: ['-c', file],
      workers: g.impl === 'skein' ? (this.opts.workers ?? 2) : undefined,
      env: g.impl === 'skein' ? this.opts.skeinEnv : undefined,
    });
    g.port = g.srv.port;
    g.gatewayPort = Number((await g.srv.waitForLog(GATEWAY_LISTEN_RE, 30_000))[1]);
    g.httpPort = Number((await g.srv.waitForLog(HTTP_LISTEN_RE, 30_000))[1]);
    if (this.servers[c].length > 1) g.clusterPort = Number((await g.srv.waitForLog(ROUTE_LISTEN_RE, 30_000))[1]);
    return g;
  }

  /** SIGKILL: the server vanishes without closing anything. */
  async kill(c: number, s: number): Promise<void> {
    const srv = this.servers[c][s].srv;
    try {
      process.kill(srv.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    const deadline = Date.now() + 10_000;
    while (!srv.exited()) {
      if (Date.now() > deadline) throw new Error(`${this.servers[c][s].name} did not die`);
      await sleep(20);
    }
  }

  live(): GwServer[] {
    return this.all.filter((g) => g.srv && !g.srv.exited());
  }

  async stop(): Promise<void> {
    for (const nc of this.conns) if (!nc.isClosed()) await nc.close().catch(() => undefined);
    await Promise.all(this.all.map((g) => (g.srv && !g.srv.exited() ? g.srv.stop() : undefined)));
    for (const g of this.all) for (const l of g.leases ?? []) l.release();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A client of server (c, s), closed when the supercluster stops. No reconnect unless asked. */
  async client(c: number, s: number, opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
    const nc = await connect({ servers: `127.0.0.1:${this.servers[c][s].port}`, reconnect: false, ...opts });
    this.conns.push(nc);
    return nc;
  }

  async gatewayz(g: GwServer, query = ''): Promise<Gatewayz> {
    return (await getJson(g.httpPort, `/gatewayz${query}`)) as unknown as Gatewayz;
  }

  async serverId(g: GwServer): Promise<string> {
    return (await getJson(g.httpPort, '/varz')).server_id as string;
  }

  /** gatewayMeshProblems() over the live servers. */
  async meshProblems(): Promise<string[]> {
    return gatewayMeshProblems(this.live().map((g) => ({ label: g.name, gateway: this.names[g.cluster], httpPort: g.httpPort })));
  }

  /** Waits until meshProblems() is empty. */
  async waitConnected(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let problems: string[] = [];
    for (;;) {
      problems = await this.meshProblems();
      if (problems.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`gateways not connected after ${timeoutMs}ms:\n  ${problems.join('\n  ')}\n${this.logs()}`);
      }
      await sleep(200);
    }
  }

  /**
   * Waits until every live server holds a route to each other server of its cluster
   * (/routez num_routes). waitConnected() checks gateways only: a supercluster of a single
   * cluster counts as connected before its routes are up.
   */
  async waitRoutes(timeoutMs = 30_000): Promise<void> {
    const live = this.live();
    for (const g of live) {
      const peers = live.filter((o) => o.cluster === g.cluster).length - 1;
      await eventually(
        `${g.name}: ${peers} route(s)`,
        async () => Number((await getJson(g.httpPort, '/routez')).num_routes) >= peers,
        timeoutMs,
      );
    }
  }

  /** Gateway connections over the whole supercluster: [outbound, inbound] summed over live servers. */
  async connectionCounts(): Promise<{ outbound: number; inbound: number }> {
    let outbound = 0;
    let inbound = 0;
    for (const g of this.live()) {
      const z = await this.gatewayz(g);
      outbound += Object.keys(z.outbound_gateways).length;
      for (const list of Object.values(z.inbound_gateways)) inbound += list.length;
    }
    return { outbound, inbound };
  }

  logs(): string {
    return this.all
      .filter((g) => g.srv)
      .map((g) => `--- ${g.name} (${g.impl}) ---\n${g.srv.output()}`)
      .join('\n');
  }
}

export interface MeshMember {
  label: string;
  /** Its gateway (cluster) name. */
  gateway: string;
  httpPort: number;
}

/**
 * What a connected supercluster looks like, from every member's /gatewayz: every server has
 * one outbound to each other cluster; each server's outbound lands on one server of that
 * cluster, so the servers of a cluster hold, together, one inbound from each server of every
 * other cluster (which of them holds it is the dialler's random pick). Returns the problems
 * (none = connected).
 */
export async function gatewayMeshProblems(members: MeshMember[]): Promise<string[]> {
  const problems: string[] = [];
  const size = new Map<string, number>();
  for (const m of members) size.set(m.gateway, (size.get(m.gateway) ?? 0) + 1);
  const inboundSum = new Map<string, number>(); // "to|from" -> inbound count over the servers of `to`
  for (const m of members) {
    let z: Gatewayz;
    try {
      z = (await getJson(m.httpPort, '/gatewayz')) as unknown as Gatewayz;
    } catch (err) {
      problems.push(`${m.label}: /gatewayz: ${(err as Error).message}`);
      continue;
    }
    const wantOut = [...size.keys()].filter((n) => n !== m.gateway).sort();
    const out = Object.keys(z.outbound_gateways ?? {}).sort();
    if (JSON.stringify(out) !== JSON.stringify(wantOut))
      problems.push(`${m.label}: outbound to [${out.join(',')}], want [${wantOut.join(',')}]`);
    for (const [from, list] of Object.entries(z.inbound_gateways ?? {})) {
      if (from === m.gateway || !size.has(from)) problems.push(`${m.label}: unexpected inbound from ${from}`);
      const key = `${m.gateway}|${from}`;
      inboundSum.set(key, (inboundSum.get(key) ?? 0) + list.length);
    }
  }
  for (const to of size.keys()) {
    for (const [from, n] of size) {
      if (from === to) continue;
      const got = inboundSum.get(`${to}|${from}`) ?? 0;
      if (got !== n) problems.push(`cluster ${to}: ${got} inbound from ${from}, want ${n}`);
    }
  }
  return problems;
}

/** Polls `check` (which throws or returns false while not yet true) until it holds, or fails with its last error. */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, pollMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(pollMs);
  }
}

/**
 * The times (ms since midnight, from nats-server's log timestamp `2026/01/02 15:04:05.000000`)
 * of the log lines matching `pattern`, in order. Used to check a retry pace from the server's
 * own clock: gaps between attempts have a lower bound (no hot loop) that load cannot break.
 */
export function logLineTimes(output: string, pattern: RegExp): number[] {
  const times: number[] = [];
  for (const line of output.split('\n')) {
    if (!pattern.test(line)) continue;
    const m = /\d{4}\/\d\d\/\d\d (\d\d):(\d\d):(\d\d(?:\.\d+)?)/.exec(line);
    if (m) times.push((Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1000);
  }
  return times;
}

/** The gaps between consecutive times, in ms. */
export function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]);
}

/** Counts the lines of `output` matching `pattern`. */
export function countLines(output: string, pattern: RegExp): number {
  return output.split('\n').filter((l) => pattern.test(l)).length;
}
