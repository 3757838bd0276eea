// Multi-server clusters for black-box tests: skein, nats-server or a mix, on 127.0.0.1, plus
// the cross-server checks both cluster test files run in every direction.
//
// Ports: members are started in order on OS-picked ports (`-p -1`, cluster `-1`, read back
// from the log), each dialling members already up (by default the seed, node 0), and a
// restarted member comes back on new ports. A topology in which a member must name a port
// before that member is up (every member lists every member, itself included) runs on
// leased ports instead (helpers/ports.ts), held for the whole test, and its members restart
// on the ports they had.

import { connect, ErrorCode, type NatsConnection, type Msg } from 'nats';
import { randomBytes } from 'node:crypto';
import { leasePort, type PortLease } from './ports.ts';
import { startServer, type Impl, type ServerHandle, type Teardownable } from './server.ts';

export interface NodeSpec {
  impl: Impl;
  name: string;
}

export interface ClusterNode {
  spec: NodeSpec;
  /** Client and route ports of the running (or last) incarnation; 0 before the first start. */
  port: number;
  clusterPort: number;
  srv: ServerHandle;
}

export interface ClusterOptions {
  /**
   * Cluster name; null leaves it out (dynamic naming). Default: `test-` and a random id, so
   * a peer that re-dials a port some other test's server took meanwhile is refused there.
   */
  clusterName?: string | null;
  /**
   * Which cluster ports each node dials, by node index. Default: every node dials node 0
   * (a seed; the rest is learnt by gossip).
   */
  routes?: (i: number, n: number) => number[];
  /** Extra config text, valid for both implementations (`key: value` lines). */
  config?: string;
  /** skein workers per server. */
  workers?: number;
  /** Extra flags per node. */
  args?: (i: number) => string[];
  /** Route credentials (`user:pass`): required on every cluster port, and sent on every route. */
  routeAuth?: string;
  env?: Record<string, string>;
}

export const seedRoutes = (i: number): number[] => (i === 0 ? [] : [0]);
/** Every node lists every node, itself included (as the official Helm chart does). */
export const allRoutes = (_i: number, n: number): number[] => [...Array(n).keys()];

export function uid(): string {
  return randomBytes(6).toString('hex');
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class TestCluster {
  readonly nodes: ClusterNode[] = [];
  /** The configured cluster name (null: none configured). */
  readonly clusterName: string | null;
  private readonly opts: ClusterOptions;
  /** Leased [client, route] ports per node, when the topology needs ports before start. */
  private readonly leases: PortLease[][] = [];

  private constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.clusterName = opts.clusterName === undefined ? `test-${uid()}` : opts.clusterName;
  }

  /** Starts every node (in order, so the seed is up first) and stops them at teardown. */
  static async start(t: Teardownable, specs: NodeSpec[], opts: ClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster(opts);
    t.teardown(async () => {
      await c.stopAll();
      for (const pair of c.leases) for (const l of pair) l.release();
    });
    for (let i = 0; i < specs.length; i++) {
      c.nodes.push({ spec: specs[i], port: 0, clusterPort: 0, srv: undefined as unknown as ServerHandle });
    }
    const routes = opts.routes ?? seedRoutes;
    const forwardRefs = specs.some((_s, i) => routes(i, specs.length).some((k) => k >= i));
    if (forwardRefs) {
      for (let i = 0; i < specs.length; i++) c.leases.push([await leasePort(), await leasePort()]);
      c.nodes.forEach((n, i) => {
        n.port = c.leases[i][0].port;
        n.clusterPort = c.leases[i][1].port;
      });
    }
    for (let i = 0; i < specs.length; i++) await c.startNode(i);
    return c;
  }

  /** Starts (or restarts) node i; it dials the route ports of the nodes its route list names. */
  async startNode(i: number): Promise<ServerHandle> {
    const node = this.nodes[i];
    const o = this.opts;
    const leased = this.leases.length > 0;
    const auth = o.routeAuth !== undefined ? `${o.routeAuth}@` : '';
    const routes = (o.routes ?? seedRoutes)(i, this.nodes.length).map((k) => {
      if (this.nodes[k].clusterPort === 0) throw new Error(`node ${i} routes to node ${k}, which has no port yet`);
      return `nats-route://${auth}127.0.0.1:${this.nodes[k].clusterPort}`;
    });
    const args = ['-n', node.spec.name, '--cluster', `nats://${auth}127.0.0.1:${leased ? node.clusterPort : -1}`];
    if (this.clusterName !== null) args.push('--cluster_name', this.clusterName);
    if (routes.length > 0) args.push('--routes', routes.join(','));
    args.push(...(o.args?.(i) ?? []));
    node.srv = await startServer({
      impl: node.spec.impl,
      port: leased ? node.port : undefined,
      args,
      config: o.config,
      workers: node.spec.impl === 'skein' ? (o.workers ?? 2) : undefined,
      env: o.env,
    });
    node.port = node.srv.port;
    node.clusterPort = node.srv.clusterPort;
    return node.srv;
  }

  /** SIGINT and wait (a graceful stop). */
  async stopNode(i: number): Promise<void> {
    await this.nodes[i].srv.stop();
  }

  /** SIGKILL: the server vanishes without closing anything. */
  async killNode(i: number): Promise<void> {
    const srv = this.nodes[i].srv;
    try {
      process.kill(srv.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await waitFor(() => srv.exited(), 5000, `${this.nodes[i].spec.name} to die`);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => (n.srv && !n.srv.exited() ? n.srv.stop() : undefined)));
  }

  /** One client per node (no reconnect unless asked). */
  async clients(t: Teardownable, opts: Record<string, unknown> = {}): Promise<NatsConnection[]> {
    const ncs = await Promise.all(this.nodes.map((n) => connect({ servers: `127.0.0.1:${n.port}`, reconnect: false, ...opts })));
    t.teardown(() => Promise.all(ncs.map((nc) => (nc.isClosed() ? undefined : nc.close()))));
    return ncs;
  }

  logs(): string {
    return this.nodes.map((n) => `--- ${n.spec.name} (${n.spec.impl}) ---\n${n.srv.output()}`).join('\n');
  }
}

export async function flushAll(ncs: NatsConnection[]): Promise<void> {
  await Promise.all(ncs.map((nc) => nc.flush()));
}

/**
 * Waits until a message published on every node reaches a subscriber on every other node:
 * every pair of servers has a working route with interest exchanged.
 */
export async function meshReady(ncs: NatsConnection[], timeoutMs = 20_000): Promise<void> {
  const id = uid();
  const got = ncs.map(() => new Set<number>());
  const subs = ncs.map((nc, j) => nc.subscribe(`_mesh.${id}.${j}`, { callback: (_e, m) => got[j].add(Number(m.string())) }));
  await flushAll(ncs);
  const done = (): boolean => got.every((s, j) => s.size === ncs.length - 1 || (s.size === ncs.length && s.has(j)));
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) {
      throw new Error(`cluster mesh not ready after ${timeoutMs}ms: received ${JSON.stringify(got.map((s) => [...s]))}`);
    }
    for (let i = 0; i < ncs.length; i++) {
      for (let j = 0; j < ncs.length; j++) if (i !== j && !got[j].has(i)) ncs[i].publish(`_mesh.${id}.${j}`, String(i));
    }
    await flushAll(ncs);
    await sleep(50);
  }
  for (const s of subs) s.unsubscribe();
}

/**
 * Waits until the subscriptions `sub` made so far are known on the servers of `pubs`: a
 * probe subscription made after them is seen from every publisher (interest travels in
 * order on one connection and one route).
 */
export async function interestSeen(sub: NatsConnection, pubs: NatsConnection[], timeoutMs = 10_000): Promise<void> {
  const subject = `_probe.${uid()}`;
  const got = new Set<number>();
  const s = sub.subscribe(subject, { callback: (_e, m) => got.add(Number(m.string())) });
  await sub.flush();
  const deadline = Date.now() + timeoutMs;
  while (got.size < pubs.length) {
    if (Date.now() > deadline) throw new Error(`interest not propagated after ${timeoutMs}ms (seen from ${[...got]})`);
    pubs.forEach((p, i) => {
      if (!got.has(i)) p.publish(subject, String(i));
    });
    await flushAll(pubs);
    await sleep(30);
  }
  s.unsubscribe();
}

function isNoResponders(err: unknown): boolean {
  return (err as { code?: string }).code === ErrorCode.NoResponders;
}

// ---------------------------------------------------------------------------------------
// Checks run in every direction over one client per server

export interface Assert {
  is(a: unknown, b: unknown, message?: string): void;
  true(v: boolean, message?: string): void;
  deepEqual(a: unknown, b: unknown, message?: string): void;
}

/**
 * Returns once everything each client published before the call has reached every other
 * server's client: each client sends a marker to every other server, and a marker travels
 * behind that client's earlier messages on the same path (one hop, in order). Used instead
 * of waiting a while before checking that nothing more (a duplicate, a late message) came.
 */
export async function deliveryBarrier(ncs: NatsConnection[]): Promise<void> {
  const id = uid();
  const got = ncs.map(() => 0);
  const subs = ncs.map((nc, j) =>
    nc.subscribe(`barrier.${id}.${j}`, {
      callback: () => {
        got[j]++;
      },
    }),
  );
  for (let j = 0; j < ncs.length; j++)
    await interestSeen(
      ncs[j],
      ncs.filter((_n, i) => i !== j),
    );
  for (let i = 0; i < ncs.length; i++) {
    for (let j = 0; j < ncs.length; j++) if (i !== j) ncs[i].publish(`barrier.${id}.${j}`);
  }
  await flushAll(ncs);
  await waitFor(() => got.every((g) => g >= ncs.length - 1), 10_000, 'the delivery barrier');
  subs.forEach((sub) => sub.unsubscribe());
}

/** Each server's subscriber gets what every other server's client publishes, once. */
export async function checkPubSub(t: Assert, ncs: NatsConnection[]): Promise<void> {
  const id = uid();
  const got = ncs.map(() => [] as string[]);
  ncs.forEach((nc, j) => nc.subscribe(`ps.${id}.${j}.>`, { callback: (_e, m) => got[j].push(m.subject) }));
  for (let j = 0; j < ncs.length; j++)
    await interestSeen(
      ncs[j],
      ncs.filter((_n, i) => i !== j),
    );
  for (let i = 0; i < ncs.length; i++) {
    for (let j = 0; j < ncs.length; j++) if (i !== j) ncs[i].publish(`ps.${id}.${j}.from${i}`);
  }
  await flushAll(ncs);
  await waitFor(() => got.every((g) => g.length >= ncs.length - 1), 10_000, 'every subscriber to hear every other server');
  await deliveryBarrier(ncs);
  got.forEach((g, j) => {
    const want = ncs
      .map((_n, i) => i)
      .filter((i) => i !== j)
      .map((i) => `ps.${id}.${j}.from${i}`);
    t.deepEqual([...g].sort(), want.sort(), `subscriber on server ${j}`);
  });
}

/** One queue group with a member on every server: every message exactly once, cluster-wide. */
export async function checkQueue(t: Assert, ncs: NatsConnection[], perServer = 200): Promise<void> {
  const id = uid();
  const subject = `qg.${id}`;
  const byMember = ncs.map(() => 0);
  const seen = new Map<string, number>();
  ncs.forEach((nc, j) =>
    nc.subscribe(subject, {
      queue: 'workers',
      callback: (_e, m) => {
        byMember[j]++;
        seen.set(m.string(), (seen.get(m.string()) ?? 0) + 1);
      },
    }),
  );
  for (let j = 0; j < ncs.length; j++) await interestSeen(ncs[j], ncs);
  for (let i = 0; i < ncs.length; i++) for (let k = 0; k < perServer; k++) ncs[i].publish(subject, `${i}-${k}`);
  await flushAll(ncs);
  const total = perServer * ncs.length;
  await waitFor(() => seen.size >= total, 15_000, `${total} queue messages (have ${seen.size})`);
  await deliveryBarrier(ncs);
  let dup = 0;
  for (const n of seen.values()) if (n !== 1) dup++;
  t.is(seen.size, total, 'every message delivered');
  t.is(dup, 0, 'no message delivered twice');
  t.is(
    byMember.reduce((a, b) => a + b, 0),
    total,
  );
  t.true(
    byMember.every((n) => n > 0),
    `every member got a share: ${byMember}`,
  );
}

/** A responder on each server answers requests made on every other server. */
export async function checkRequestReply(t: Assert, ncs: NatsConnection[]): Promise<void> {
  const id = uid();
  ncs.forEach((nc, j) => nc.subscribe(`svc.${id}.${j}`, { callback: (_e, m: Msg) => m.respond(`from ${j}`) }));
  for (let j = 0; j < ncs.length; j++)
    await interestSeen(
      ncs[j],
      ncs.filter((_n, i) => i !== j),
    );
  for (let i = 0; i < ncs.length; i++) {
    for (let j = 0; j < ncs.length; j++) {
      if (i === j) continue;
      const reply = await ncs[i].request(`svc.${id}.${j}`, 'ping', { timeout: 5000 });
      t.is(reply.string(), `from ${j}`, `request ${i} -> ${j}`);
    }
  }
}

/**
 * Unsubscribing on one server removes the interest everywhere: requests from every other
 * server soon get no-responders instead of a timeout, and nothing more is delivered.
 */
export async function checkUnsubscribe(t: Assert, ncs: NatsConnection[]): Promise<void> {
  const id = uid();
  for (let j = 0; j < ncs.length; j++) {
    const subject = `un.${id}.${j}`;
    let after = 0;
    let unsubscribed = false;
    const sub = ncs[j].subscribe(subject, {
      callback: () => {
        if (unsubscribed) after++;
      },
    });
    const others = ncs.filter((_n, i) => i !== j);
    await interestSeen(ncs[j], others);
    sub.unsubscribe();
    unsubscribed = true;
    await ncs[j].flush();
    for (const nc of others) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await nc.request(subject, 'x', { timeout: 300 });
          throw new Error('a request was answered after unsubscribe');
        } catch (err) {
          if (isNoResponders(err)) break;
          if ((err as Error).message.includes('answered')) throw err;
        }
        if (Date.now() > deadline) throw new Error(`interest in ${subject} never went away on a peer`);
      }
      nc.publish(subject, 'late');
    }
    await deliveryBarrier(ncs);
    t.is(after, 0, `nothing delivered after unsubscribe on server ${j}`);
  }
}
