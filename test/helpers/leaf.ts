// Leaf-node topologies for black-box tests: hubs, leafs, leafs of leafs, leafs attached to one
// server of a cluster, cycles; each server skein or nats-server. One .conf text per server, the
// same for both implementations (skein reads nats-server's .conf format).
//
// Ports: every listener is OS-picked (`-p -1`, `http: 127.0.0.1:-1`, `leafnodes { listen:
// 127.0.0.1:-1 }`, `--cluster nats://127.0.0.1:-1`) and read back from the server's log
// (`Listening for leafnode connections on H:P`, `Starting http monitor on H:P`), so servers are
// started in dependency order: a hub before the leafs that dial it, a cluster's first member
// before the others. A topology that cannot be ordered so (a cycle), or that restarts a hub its
// leafs must find again on the same port, runs on leased leaf ports (helpers/ports.ts).
//
// Every skein and mixed variant runs next to the all-nats-server ones, which prove the harness
// and the expectations against the reference.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { uid, waitFor } from './cluster.ts';
import { getJson } from './monitor.ts';
import { leasePort, type PortLease } from './ports.ts';
import { startServer, type Impl, type ServerHandle, type Teardownable } from './server.ts';

// ---------------------------------------------------------------------------------------
// Implementation mixes: one test per assignment of implementations to roles

export type Mix = Record<string, Impl>;

const short = (impl: Impl): string => (impl === 'nats-server' ? 'nats' : 'skein');

/** `[hub=nats, leaf=skein]`. */
export function mixLabel(mix: Mix): string {
  return `[${Object.entries(mix)
    .map(([role, impl]) => `${role}=${short(impl)}`)
    .join(', ')}]`;
}

/**
 * The mixes a test runs in: all nats-server, all skein, and each role alone on skein with
 * nats-server in the other places (the interop cases: skein as hub, as middle, as tail).
 * With one role: nats-server and skein.
 */
export function standardMixes(roles: string[]): Mix[] {
  const all = (impl: Impl): Mix => Object.fromEntries(roles.map((r) => [r, impl]));
  const mixes: Mix[] = [all('nats-server'), all('skein')];
  if (roles.length > 1) {
    for (const r of roles) mixes.push({ ...all('nats-server'), [r]: 'skein' });
  }
  return mixes;
}

/**
 * The mixes of a hub cluster (h1, h2) with a leaf cluster attached to both: all nats-server,
 * all skein, skein hubs with nats-server leafs, and each mixed hub cluster (both directions
 * of a route between the implementations), with nats-server leafs and once with skein ones.
 */
export const HUB_CLUSTER_MIXES: Mix[] = [
  { h1: 'nats-server', h2: 'nats-server', leaf: 'nats-server' },
  { h1: 'skein', h2: 'skein', leaf: 'skein' },
  { h1: 'skein', h2: 'skein', leaf: 'nats-server' },
  { h1: 'nats-server', h2: 'skein', leaf: 'nats-server' },
  { h1: 'skein', h2: 'nats-server', leaf: 'nats-server' },
  { h1: 'nats-server', h2: 'skein', leaf: 'skein' },
];

/** l1 -> h1 and l2 -> h2, l1 and l2 in leaf cluster LC, h1 and h2 in hub cluster H. */
export async function leafClusterOnTwoHubs(t: ExecutionContext, mix: Mix): Promise<LeafTopology> {
  const topo = await LeafTopology.start(t, [
    { name: 'h1', impl: mix.h1, cluster: 'H', accept: true },
    { name: 'h2', impl: mix.h2, cluster: 'H', accept: true },
    { name: 'l1', impl: mix.leaf, cluster: 'LC', remotes: ['h1'] },
    { name: 'l2', impl: mix.leaf, cluster: 'LC', remotes: ['h2'] },
  ]);
  await topo.waitConnected();
  return topo;
}

/**
 * Registers one serial test per mix (default: standardMixes(roles)); a known gap of a skein
 * server in one role (`needs.skipSkeinRole`) registers that mix as skipped, with the reason.
 */
export function leafTest(
  title: string,
  roles: string[],
  body: (t: ExecutionContext, mix: Mix) => Promise<void>,
  mixes: Mix[] = standardMixes(roles),
  needs: { skipSkeinRole?: { role: string; reason: string } } = {},
): void {
  for (const mix of mixes) {
    const name = `${title} ${mixLabel(mix)}`;
    if (needs.skipSkeinRole !== undefined && mix[needs.skipSkeinRole.role] === 'skein')
      test.skip(`${name} (${needs.skipSkeinRole.reason})`, (t) => body(t, mix));
    else test.serial(name, (t) => body(t, mix));
  }
}

// ---------------------------------------------------------------------------------------
// Topologies

/** A leafnodes remote: the nodes it may dial (several: the servers of a hub cluster), or a raw URL. */
export interface RemoteSpec {
  /** Node names; the remote lists one URL per node, in this order. */
  to?: string | string[];
  /** Literal URLs (e.g. a FakeHub), after the nodes' URLs. */
  urls?: string[];
  /** `user:pass@` in every URL. */
  user?: string;
  pass?: string;
  /** `hub: true` (this server is the hub on that connection). */
  hub?: boolean;
  /** Extra .conf lines inside the remote's braces. */
  extra?: string;
}

export interface LeafNodeSpec {
  name: string; // server_name, and how the topology names the node
  impl: Impl;
  /** The hubs this node dials, one remote entry each (a string is `{to: name}`). */
  remotes?: (string | RemoteSpec)[];
  /** Listen for leaf connections. Default: when another node dials it. */
  accept?: boolean;
  /** Nodes with the same cluster name form a cluster; each member routes to the first one. */
  cluster?: string;
  /**
   * A gateway (superclusters with leafs): its name (the cluster name, when the node is in a
   * cluster) and the nodes whose gateways it dials (started before it). A nats-server that
   * accepts leafs and has a gateway needs a system account (`leaf nodes and gateways (both
   * being defined) require a system account to also be configured`): the helper gives it one;
   * skein has no system account and refuses those keys, so a skein node gets none.
   */
  gateway?: { name: string; to?: string[] };
  /** `.conf` text inside `leafnodes { authorization { ... } }`. */
  leafAuth?: string;
  /** Extra `.conf` lines inside the leafnodes block (reconnect, advertise, ...). */
  leafConfig?: string;
  /** Extra top-level `.conf` lines. */
  config?: string;
  /** skein worker threads (default 2). */
  workers?: number;
  /** Extra command-line flags (e.g. `-DV` while debugging a test). */
  args?: string[];
  /** Extra environment (e.g. SKEIN_FAULT_INJECTION=1). */
  env?: Record<string, string>;
}

export interface TopologyOptions {
  /**
   * Lease every leaf listener's port (held for the whole test) so a restarted node comes back
   * on the port its leafs dial. Forced on for a topology with a cycle.
   */
  fixedLeafPorts?: boolean;
  /** Extra top-level `.conf` lines for every node. */
  config?: string;
}

export interface LeafNode {
  spec: LeafNodeSpec;
  srv: ServerHandle;
  /** Client port of the running (or last) incarnation. */
  port: number;
  /** Leaf listener port (0: none). */
  leafPort: number;
  /** Monitoring port (every node has one: /leafz is how "connected" is seen). */
  monitorPort: number;
  clusterPort: number;
  /** Gateway listener port (0: none). */
  gatewayPort: number;
  confFile: string;
}

export interface LeafzEntry {
  account: string;
  ip: string;
  port: number;
  subscriptions: number;
  subscriptions_list?: string[];
  in_msgs: number;
  out_msgs: number;
}

const leafListenRe = /Listening for leafnode connections on \S+:(\d+)\b/;
const monitorRe = /Starting http monitor on \S+:(\d+)\b/;
// nats-server says "gateways connections".
const gatewayListenRe = /Listening for gateways? connections on \S+:(\d+)\b/;

function remoteOf(r: string | RemoteSpec): RemoteSpec {
  return typeof r === 'string' ? { to: r } : r;
}

function targetsOf(r: RemoteSpec): string[] {
  return r.to === undefined ? [] : typeof r.to === 'string' ? [r.to] : r.to;
}

export class LeafTopology {
  readonly nodes = new Map<string, LeafNode>();
  readonly clusterNames = new Map<string, string>(); // spec cluster -> unique name for this test
  private readonly specs: LeafNodeSpec[];
  private readonly opts: TopologyOptions;
  private readonly leases = new Map<string, PortLease>();
  private readonly dir: string;
  private readonly clients: NatsConnection[] = [];

  private constructor(specs: LeafNodeSpec[], opts: TopologyOptions) {
    this.specs = specs;
    this.opts = opts;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'skein-leaf-'));
    for (const s of specs)
      if (s.cluster !== undefined && !this.clusterNames.has(s.cluster)) this.clusterNames.set(s.cluster, `${s.cluster}-${uid()}`);
  }

  /**
   * Starts every node in dependency order and stops them all (and closes the clients made with
   * client()) when the test ends.
   */
  static async start(t: Teardownable, specs: LeafNodeSpec[], opts: TopologyOptions = {}): Promise<LeafTopology> {
    const topo = new LeafTopology(specs, opts);
    t.teardown(() => topo.stop());
    const order = topo.startOrder();
    if (order === null || opts.fixedLeafPorts) {
      for (const s of specs) if (topo.accepts(s)) topo.leases.set(s.name, await leasePort());
    }
    for (const s of order ?? specs) await topo.startNode(s.name);
    return topo;
  }

  private spec(name: string): LeafNodeSpec {
    const s = this.specs.find((x) => x.name === name);
    if (!s) throw new Error(`no node named ${name}`);
    return s;
  }

  /** Whether the node listens for leafs (explicitly, or because some node dials it). */
  accepts(s: LeafNodeSpec): boolean {
    if (s.accept !== undefined) return s.accept;
    return this.specs.some((o) => (o.remotes ?? []).some((r) => targetsOf(remoteOf(r)).includes(s.name)));
  }

  /** Nodes a node needs up before it starts: its hubs, and its cluster's first member. */
  private dependencies(s: LeafNodeSpec): string[] {
    const deps = (s.remotes ?? []).flatMap((r) => targetsOf(remoteOf(r)));
    deps.push(...(s.gateway?.to ?? []));
    if (s.cluster !== undefined) {
      const first = this.specs.find((o) => o.cluster === s.cluster)!;
      if (first.name !== s.name) deps.push(first.name);
    }
    return deps;
  }

  /** A start order in which every node's dependencies come first; null when there is a cycle. */
  private startOrder(): LeafNodeSpec[] | null {
    const done = new Set<string>();
    const order: LeafNodeSpec[] = [];
    while (order.length < this.specs.length) {
      const next = this.specs.find((s) => !done.has(s.name) && this.dependencies(s).every((d) => done.has(d)));
      if (!next) return null;
      done.add(next.name);
      order.push(next);
    }
    return order;
  }

  /** The leaf URL of a node as a remote dials it. */
  leafUrl(name: string, user?: string, pass?: string): string {
    const port = this.leases.get(name)?.port ?? this.nodes.get(name)?.leafPort ?? 0;
    if (port === 0) throw new Error(`node ${name} has no leaf port (not started, or not accepting leafs)`);
    const auth = user !== undefined ? `${encodeURIComponent(user)}:${encodeURIComponent(pass ?? '')}@` : '';
    return `nats-leaf://${auth}127.0.0.1:${port}`;
  }

  /**
   * A node's gateway name: a gateway named as the node's cluster takes the cluster's unique name
   * for this test (nats-server refuses a gateway named otherwise than its cluster).
   */
  gatewayName(s: LeafNodeSpec): string {
    const name = s.gateway!.name;
    return name === s.cluster ? this.clusterNames.get(name)! : name;
  }

  /** The .conf text a node starts with. */
  confText(name: string): string {
    const s = this.spec(name);
    const lines = [`server_name: ${s.name}`, 'http: "127.0.0.1:-1"'];
    if (this.opts.config) lines.push(this.opts.config);
    if (s.config) lines.push(s.config);
    if (s.gateway !== undefined) {
      if (s.impl === 'nats-server' && this.accepts(s)) lines.push('accounts { SYS: {} }', 'system_account: SYS');
      const remotes = (s.gateway.to ?? []).map((n) => {
        const g = this.node(n);
        if (g.gatewayPort === 0) throw new Error(`${name}: ${n} has no gateway port`);
        return `    { name: ${this.gatewayName(g.spec)}, urls: ["nats://127.0.0.1:${g.gatewayPort}"] }`;
      });
      const list = remotes.length > 0 ? `  gateways: [\n${remotes.join('\n')}\n  ]\n` : '';
      lines.push(`gateway {\n  name: ${this.gatewayName(s)}\n  listen: "127.0.0.1:-1"\n${list}}`);
    }
    const leaf: string[] = [];
    if (this.accepts(s)) leaf.push(`  listen: "127.0.0.1:${this.leases.get(name)?.port ?? -1}"`);
    if (s.leafAuth !== undefined) leaf.push(`  authorization {\n    ${s.leafAuth}\n  }`);
    if (s.leafConfig !== undefined) leaf.push(`  ${s.leafConfig}`);
    const remotes = (s.remotes ?? []).map(remoteOf);
    if (remotes.length > 0) {
      leaf.push('  remotes: [');
      for (const r of remotes) {
        const urls = [...targetsOf(r).map((n) => this.leafUrl(n, r.user, r.pass)), ...(r.urls ?? [])];
        const body = [`urls: ${JSON.stringify(urls)}`];
        if (r.hub) body.push('hub: true');
        if (r.extra) body.push(r.extra);
        leaf.push(`    { ${body.join(', ')} }`);
      }
      leaf.push('  ]');
    }
    if (leaf.length > 0) lines.push(`leafnodes {\n${leaf.join('\n')}\n}`);
    return `${lines.join('\n')}\n`;
  }

  /** Starts (or restarts) a node; its hubs must be up (or leased) for their URLs to be known. */
  async startNode(name: string): Promise<LeafNode> {
    const s = this.spec(name);
    const confFile = path.join(this.dir, `${name}.conf`);
    writeFileSync(confFile, this.confText(name));
    const args = ['-c', confFile];
    if (s.cluster !== undefined) {
      const clusterName = this.clusterNames.get(s.cluster)!;
      args.push('--cluster', 'nats://127.0.0.1:-1', '--cluster_name', clusterName);
      const first = this.specs.find((o) => o.cluster === s.cluster)!;
      if (first.name !== name) {
        const seed = this.nodes.get(first.name);
        if (!seed || seed.clusterPort === 0) throw new Error(`${name}: cluster seed ${first.name} is not started`);
        args.push('--routes', `nats-route://127.0.0.1:${seed.clusterPort}`);
      }
    }
    args.push(...(s.args ?? []));
    const srv = await startServer({ impl: s.impl, args, env: s.env, workers: s.impl === 'skein' ? (s.workers ?? 2) : undefined });
    try {
      const monitorPort = Number((await srv.waitForLog(monitorRe, 30_000))[1]);
      const leafPort = this.accepts(s) ? Number((await srv.waitForLog(leafListenRe, 30_000))[1]) : 0;
      const gatewayPort = s.gateway !== undefined ? Number((await srv.waitForLog(gatewayListenRe, 30_000))[1]) : 0;
      const node: LeafNode = { spec: s, srv, port: srv.port, leafPort, monitorPort, clusterPort: srv.clusterPort, gatewayPort, confFile };
      this.nodes.set(name, node);
      return node;
    } catch (err) {
      await srv.stop();
      throw err;
    }
  }

  /** Adds a node to a running topology and starts it (a server joining later). */
  async addNode(spec: LeafNodeSpec): Promise<LeafNode> {
    if (this.specs.some((s) => s.name === spec.name)) throw new Error(`node ${spec.name} exists already`);
    this.specs.push(spec);
    if (spec.cluster !== undefined && !this.clusterNames.has(spec.cluster)) this.clusterNames.set(spec.cluster, `${spec.cluster}-${uid()}`);
    if (this.leases.size > 0 && this.accepts(spec)) this.leases.set(spec.name, await leasePort());
    return this.startNode(spec.name);
  }

  node(name: string): LeafNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`node ${name} was never started`);
    return n;
  }

  /** SIGINT and wait. */
  async stopNode(name: string): Promise<void> {
    await this.node(name).srv.stop();
  }

  /** SIGKILL: the server vanishes without closing its connections cleanly. */
  async killNode(name: string): Promise<void> {
    const srv = this.node(name).srv;
    try {
      process.kill(srv.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await waitFor(() => srv.exited(), 10_000, `${name} to die`);
  }

  /** A client on a node (no reconnect unless asked), closed when the topology stops. */
  async client(name: string, opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
    const nc = await connect({ servers: `127.0.0.1:${this.node(name).port}`, reconnect: false, ...opts });
    this.clients.push(nc);
    return nc;
  }

  /** /leafz of a node (`?subs=1` lists each leaf's subscriptions). */
  async leafz(name: string, subs = false): Promise<{ leafnodes: number; leafs: LeafzEntry[] }> {
    const doc = await getJson(this.node(name).monitorPort, subs ? '/leafz?subs=1' : '/leafz');
    return { leafnodes: Number(doc.leafnodes ?? 0), leafs: (doc.leafs as LeafzEntry[] | null) ?? [] };
  }

  /**
   * Waits until a node has exactly `count` leaf connections (either direction: the hub's
   * accepted ones and its own remotes both count in /leafz), as reported by its monitor.
   */
  async waitLeafs(name: string, count: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    for (;;) {
      try {
        last = (await this.leafz(name)).leafnodes;
      } catch {
        last = -1; // monitor not answering (restarting): keep polling
      }
      if (last === count) return;
      if (Date.now() > deadline) {
        throw new Error(`${name}: ${last} leaf connections after ${timeoutMs}ms, want ${count}\n${this.logs()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Waits until every remote of every running node is connected: the node's /leafz lists a leaf
   * whose port is the leaf port of one of the remote's targets (a solicited connection shows the
   * hub's port; an accepted one the dialler's ephemeral port). A hub registers a leaf before it
   * answers CONNECT, so the dialling side connected means both sides are.
   */
  async waitConnected(timeoutMs = 30_000): Promise<void> {
    for (const s of this.specs) {
      if (!this.up(s.name)) continue;
      for (const r of (s.remotes ?? []).map(remoteOf)) {
        const ports = targetsOf(r)
          .filter((n) => this.up(n))
          .map((n) => this.node(n).leafPort);
        for (const u of r.urls ?? []) ports.push(Number(new URL(u).port));
        if (ports.length === 0) continue;
        await this.waitRemote(s.name, ports, timeoutMs);
      }
    }
  }

  /** Waits until `name` holds a solicited leaf connection to one of `ports`; returns that port. */
  async waitRemote(name: string, ports: number[], timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let seen: number[] = [];
    for (;;) {
      try {
        seen = (await this.leafz(name)).leafs.map((l) => l.port);
      } catch {
        seen = []; // monitor not answering (restarting): keep polling
      }
      const hit = seen.find((p) => ports.includes(p));
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) {
        throw new Error(`${name}: no leaf connection to any of ports ${ports} after ${timeoutMs}ms (leafz ports ${seen})\n${this.logs()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  up(name: string): boolean {
    const n = this.nodes.get(name);
    return n !== undefined && !n.srv.exited();
  }

  logs(): string {
    return [...this.nodes.values()].map((n) => `--- ${n.spec.name} (${n.spec.impl}) ---\n${n.srv.output()}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => {}))));
    await Promise.all([...this.nodes.values()].map((n) => (n.srv.exited() ? undefined : n.srv.stop())));
    for (const l of this.leases.values()) l.release();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Waits until `node`'s leaf connections carry interest in every one of `subjects`, as its
 * /leafz?subs=1 lists them (the subscriptions each connection's peer announced).
 */
export async function waitLeafInterest(topo: LeafTopology, node: string, subjects: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { leafs } = await topo.leafz(node, true);
    const have = new Set(leafs.flatMap((l) => l.subscriptions_list ?? []));
    if (subjects.every((s) => have.has(s))) return;
    if (Date.now() > deadline) throw new Error(`${node}: leaf interest [${[...have].join(' ')}] lacks ${subjects.join(' ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Specs for a chain: `names[0]` is the hub, each next node a leaf of the one before. */
export function chainSpecs(names: string[], mix: Mix, extra: Partial<LeafNodeSpec> = {}): LeafNodeSpec[] {
  return names.map((name, i) => ({ ...extra, name, impl: mix[name] ?? 'nats-server', remotes: i === 0 ? [] : [names[i - 1]] }));
}
