// The scenarios: what load-generator processes each one starts, what they send, and what must
// arrive. A scenario only describes; bench/runner.ts runs it against a target.

import type { GenSpec, PubConnSpec, Rate, ReqConnSpec, SubConnSpec } from './ipc.ts';

export interface Params {
  msgs: number; // messages per publisher; for reqrep, measured requests in total
  size: number; // payload bytes
  n: number; // subscribers (fanout), pairs, queue members, requesters, publishers (pub)
  conns: number; // idle connections (idle)
  interest: number; // subscriptions held by the interest connection (wildcard)
  subjects: number; // distinct live subjects the publisher cycles through (wildcard)
  genProcs: number; // spread each role's connections over up to this many processes
  rate?: Rate; // paced publishers (--rate N/Tms); absent: as fast as the server takes them
}

export interface Plan {
  children: GenSpec[];
  // Probe subjects (one per subscribing connection) and the children that publish the probes
  // before 'go': when every probe has arrived, every subscription is known where it matters.
  probes: string[];
  probers: number[];
  published: number; // messages (or requests) sent in total
  delivered: number; // messages that must arrive in total
  // Children whose connections form one queue group that shares `total` messages.
  queueGroup?: { children: number[]; total: number };
  progressRole: 'sub' | 'pub' | 'req';
  progressTotal: number;
  latency: boolean;
  pubOnly: boolean;
  // Requests made but not measured (reqrep warm-up); the server handles them in the window too.
  unmeasured?: number;
}

export interface Scenario {
  name: string;
  summary: string;
  servers: 1 | 2;
  /**
   * How two servers are joined: a route (default), a leaf connection (urls[0] the hub, urls[1]
   * its leaf), or a gateway (two single-server clusters, urls[0] in A, urls[1] in B).
   */
  topology?: 'cluster' | 'leaf' | 'gateway';
  defaults: Omit<Params, 'genProcs'>;
  title(p: Params): string;
  plan(p: Params, urls: string[], uid: string): Plan;
}

const M = 1_000_000;
const BASE: Omit<Params, 'genProcs'> = { msgs: 1 * M, size: 16, n: 1, conns: 0, interest: 0, subjects: 1 };

// Splits `items` round-robin over at most `procs` groups (never an empty group).
function spread<T>(items: T[], procs: number): T[][] {
  if (items.length === 0) return [];
  const k = Math.max(1, Math.min(procs, items.length));
  const groups: T[][] = Array.from({ length: k }, () => []);
  items.forEach((it, i) => groups[i % k].push(it));
  return groups;
}

function bytes(size: number): string {
  if (size >= 1024 && size % 1024 === 0) return `${size / 1024} KiB`;
  return `${size} B`;
}

function count(n: number): string {
  if (n >= M && n % (M / 10) === 0) return `${n / M}M`;
  if (n >= 1000 && n % 100 === 0) return `${n / 1000}k`;
  return String(n);
}

interface StreamOpts {
  pubs: PubConnSpec[]; // one per publisher connection
  subs: SubConnSpec[]; // one per subscriber connection
  pubUrl: string;
  subUrl: string;
  queueTotal?: number; // subs form one queue group sharing this many messages
}

// Publishers and subscribers as separate processes; every subscriber connection probes.
function stream(p: Params, o: StreamOpts, extra: GenSpec[] = []): Plan {
  const children: GenSpec[] = [...extra];
  const subGroups = spread(o.subs, o.queueTotal !== undefined ? 1 : p.genProcs);
  const subChildren: number[] = [];
  for (const g of subGroups) {
    subChildren.push(children.length);
    const expectTotal = o.queueTotal ?? g.reduce((a, s) => a + s.expect, 0);
    children.push({ role: 'sub', url: o.subUrl, conns: g, expectTotal });
  }
  const probers: number[] = [];
  const pubs = p.rate === undefined ? o.pubs : o.pubs.map((c) => ({ ...c, rate: p.rate }));
  for (const g of spread(pubs, p.genProcs)) {
    probers.push(children.length);
    children.push({ role: 'pub', url: o.pubUrl, conns: g });
  }
  const published = o.pubs.reduce((a, s) => a + s.count, 0);
  const delivered = o.queueTotal ?? o.subs.reduce((a, s) => a + s.expect, 0);
  return {
    children,
    probes: o.subs.map((s) => s.probe),
    probers: o.subs.length > 0 ? probers : [],
    published,
    delivered,
    queueGroup: o.queueTotal !== undefined ? { children: subChildren, total: o.queueTotal } : undefined,
    progressRole: o.subs.length > 0 ? 'sub' : 'pub',
    progressTotal: o.subs.length > 0 ? delivered : published,
    latency: false,
    pubOnly: o.subs.length === 0,
  };
}

function exactSub(subject: string, probe: string, p: Params, expect = p.msgs): SubConnSpec {
  return { subject, probe, mode: 'exact', expect, total: p.msgs, size: p.size };
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'pub',
    summary: 'publish only, no subscriber (N publishers, default 1)',
    servers: 1,
    defaults: { ...BASE, msgs: 5 * M },
    title: (p) => `pub-only ${bytes(p.size)}${p.n > 1 ? `, ${p.n} publishers` : ''}`,
    plan: (p, [url], uid) =>
      stream(p, {
        pubs: Array.from({ length: p.n }, () => ({ subjects: [`bench.${uid}.pub`], size: p.size, count: p.msgs })),
        subs: [],
        pubUrl: url,
        subUrl: url,
      }),
  },
  {
    name: 'pubsub',
    summary: '1 publisher -> 1 subscriber',
    servers: 1,
    defaults: { ...BASE, msgs: 2 * M },
    title: (p) => `1->1 ${bytes(p.size)}`,
    plan: (p, [url], uid) =>
      stream(p, {
        pubs: [{ subjects: [`bench.${uid}.a`], size: p.size, count: p.msgs }],
        subs: [exactSub(`bench.${uid}.a`, `probe.${uid}.0`, p)],
        pubUrl: url,
        subUrl: url,
      }),
  },
  {
    name: 'fanout',
    summary: '1 publisher -> N subscribers on the same subject (default 4)',
    servers: 1,
    defaults: { ...BASE, n: 4 },
    title: (p) => `1->${p.n} fan-out ${bytes(p.size)}`,
    plan: (p, [url], uid) =>
      stream(p, {
        pubs: [{ subjects: [`bench.${uid}.fan`], size: p.size, count: p.msgs }],
        subs: Array.from({ length: p.n }, (_, i) => exactSub(`bench.${uid}.fan`, `probe.${uid}.${i}`, p)),
        pubUrl: url,
        subUrl: url,
      }),
  },
  {
    name: 'pairs',
    summary: 'N publishers -> N subscribers, one distinct subject per pair (default 4; where --workers should show)',
    servers: 1,
    defaults: { ...BASE, msgs: M / 2, n: 4 },
    title: (p) => `${p.n} pubs->${p.n} subs, distinct subjects, ${bytes(p.size)}`,
    plan: (p, [url], uid) =>
      stream(p, {
        pubs: Array.from({ length: p.n }, (_, i) => ({ subjects: [`bench.${uid}.pair.${i}`], size: p.size, count: p.msgs })),
        subs: Array.from({ length: p.n }, (_, i) => exactSub(`bench.${uid}.pair.${i}`, `probe.${uid}.${i}`, p)),
        pubUrl: url,
        subUrl: url,
      }),
  },
  {
    name: 'queue',
    summary: '1 publisher -> queue group of N members (default 4); each message to exactly one member',
    servers: 1,
    defaults: { ...BASE, n: 4 },
    title: (p) => `queue group of ${p.n}, ${bytes(p.size)}`,
    plan: (p, [url], uid) =>
      stream(p, {
        pubs: [{ subjects: [`bench.${uid}.q`], size: p.size, count: p.msgs }],
        subs: Array.from({ length: p.n }, (_, i) => ({
          subject: `bench.${uid}.q`,
          queue: 'workers',
          probe: `probe.${uid}.${i}`,
          mode: 'increasing' as const,
          expect: -1,
          total: p.msgs,
          size: p.size,
        })),
        pubUrl: url,
        subUrl: url,
        queueTotal: p.msgs,
      }),
  },
  {
    name: 'reqrep',
    summary: 'request/reply latency (HDR histogram), N concurrent requesters (default 1), 1 responder',
    servers: 1,
    defaults: { ...BASE, msgs: 20_000 },
    title: (p) => `req/reply ${bytes(p.size)}, ${p.n} requester${p.n > 1 ? 's' : ''}`,
    plan: (p, [url], uid) => {
      const per = Math.ceil(p.msgs / p.n);
      const conns: ReqConnSpec[] = Array.from({ length: p.n }, (_, i) => ({
        subject: `bench.${uid}.req`,
        inbox: `_INBOX.${uid}.${i}`,
        size: p.size,
        count: per,
        warmup: Math.min(1000, Math.ceil(per / 10)),
      }));
      const children: GenSpec[] = [{ role: 'rep', url, subject: `bench.${uid}.req`, queue: 'responders', probe: `probe.${uid}.rep` }];
      const probers: number[] = [];
      for (const g of spread(conns, p.genProcs)) {
        probers.push(children.length);
        children.push({ role: 'req', url, conns: g });
      }
      return {
        children,
        probes: [`probe.${uid}.rep`],
        probers,
        published: per * p.n,
        delivered: per * p.n,
        progressRole: 'req',
        progressTotal: per * p.n,
        latency: true,
        pubOnly: false,
        unmeasured: conns.reduce((a, c) => a + c.warmup, 0),
      };
    },
  },
  {
    name: 'idle',
    summary: 'many idle connections, each with one subscription (default 10,000), plus a live 1->1 stream',
    servers: 1,
    defaults: { ...BASE, conns: 10_000 },
    title: (p) => `${count(p.conns)} idle conns + 1->1 ${bytes(p.size)}`,
    plan: (p, [url], uid) => {
      const idle: GenSpec[] = spread(
        Array.from({ length: p.conns }, (_, i) => i),
        p.genProcs,
      ).map((g, k) => ({
        role: 'idle' as const,
        url,
        count: g.length,
        prefix: `idle.${uid}.${k}`,
        concurrency: 100,
      }));
      return stream(
        p,
        {
          pubs: [{ subjects: [`bench.${uid}.live`], size: p.size, count: p.msgs }],
          subs: [exactSub(`bench.${uid}.live`, `probe.${uid}.0`, p)],
          pubUrl: url,
          subUrl: url,
        },
        p.conns > 0 ? idle : [],
      );
    },
  },
  {
    name: 'wildcard',
    summary: 'wildcard-heavy interest (default 100,000 mostly-wildcard subs) plus a live stream over 4096 subjects',
    servers: 1,
    defaults: { ...BASE, interest: 100_000, subjects: 4096 },
    title: (p) => `${count(p.interest)} wildcard subs + stream over ${p.subjects} subjects ${bytes(p.size)}`,
    plan: (p, [url], uid) => {
      const prefix = `wild${uid}`;
      const subjects = Array.from({ length: p.subjects }, (_, j) => `${prefix}.${j}.live`);
      return stream(
        p,
        {
          pubs: [{ subjects, size: p.size, count: p.msgs }],
          subs: [exactSub(`${prefix}.*.live`, `probe.${uid}.0`, p)],
          pubUrl: url,
          subUrl: url,
        },
        p.interest > 0 ? [{ role: 'interest', url, count: p.interest, prefix }] : [],
      );
    },
  },
  {
    name: 'cluster',
    summary: 'publisher on server A, subscriber on server B of a 2-node cluster',
    servers: 2,
    defaults: { ...BASE },
    title: (p) => `cluster A->B 1->1 ${bytes(p.size)}`,
    plan: (p, [a, b], uid) =>
      stream(p, {
        pubs: [{ subjects: [`bench.${uid}.route`], size: p.size, count: p.msgs }],
        subs: [exactSub(`bench.${uid}.route`, `probe.${uid}.0`, p)],
        pubUrl: a,
        subUrl: b,
      }),
  },
  {
    name: 'leaf',
    summary: 'publisher on a leaf, subscriber on its hub (one leaf connection)',
    servers: 2,
    topology: 'leaf',
    defaults: { ...BASE },
    title: (p) => `leaf->hub 1->1 ${bytes(p.size)}`,
    plan: (p, [hub, leaf], uid) =>
      stream(p, {
        pubs: [{ subjects: [`bench.${uid}.up`], size: p.size, count: p.msgs }],
        subs: [exactSub(`bench.${uid}.up`, `probe.${uid}.0`, p)],
        pubUrl: leaf,
        subUrl: hub,
      }),
  },
  {
    name: 'leaf-reverse',
    summary: 'publisher on a hub, subscriber on its leaf (one leaf connection)',
    servers: 2,
    topology: 'leaf',
    defaults: { ...BASE },
    title: (p) => `hub->leaf 1->1 ${bytes(p.size)}`,
    plan: (p, [hub, leaf], uid) =>
      stream(p, {
        pubs: [{ subjects: [`bench.${uid}.down`], size: p.size, count: p.msgs }],
        subs: [exactSub(`bench.${uid}.down`, `probe.${uid}.0`, p)],
        pubUrl: hub,
        subUrl: leaf,
      }),
  },
  {
    name: 'gateway',
    summary: 'publisher in cluster A, subscriber in cluster B (two clusters joined by a gateway)',
    servers: 2,
    topology: 'gateway',
    defaults: { ...BASE },
    title: (p) => `gateway A->B 1->1 ${bytes(p.size)}`,
    plan: (p, [a, b], uid) =>
      stream(p, {
        pubs: [{ subjects: [`bench.${uid}.gw`], size: p.size, count: p.msgs }],
        subs: [exactSub(`bench.${uid}.gw`, `probe.${uid}.0`, p)],
        pubUrl: a,
        subUrl: b,
      }),
  },
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

export const SWEEP_SIZES = [0, 16, 128, 1024, 4096, 16384, 65536];

// Messages for one point of the payload sweep: about 512 MiB of payload, 10k..2M messages.
export function sweepMsgs(size: number): number {
  return Math.max(10_000, Math.min(2 * M, Math.floor((512 * 1024 * 1024) / Math.max(1, size))));
}

// One row of a run: a scenario with its parameters.
export interface Entry {
  id: string; // stable key, e.g. "pubsub/16B"
  scenario: Scenario;
  params: Params;
  /** skein worker counts for this entry instead of the run's (the matrix's --workers sweep). */
  workers?: number[];
}

/** A row's title: the scenario's, plus the publishers' pace when it is set. */
export function entryTitle(e: Entry): string {
  const r = e.params.rate;
  return e.scenario.title(e.params) + (r === undefined ? '' : `, ${r.batch} msg${r.batch === 1 ? '' : 's'} every ${r.intervalMs} ms`);
}

export function entryId(s: Scenario, p: Params): string {
  const parts = [s.name, `${p.size}B`];
  if (['pub', 'fanout', 'pairs', 'queue', 'reqrep'].includes(s.name) && (p.n > 1 || s.name !== 'pub')) parts.push(`n${p.n}`);
  if (s.name === 'idle') parts.push(`c${p.conns}`);
  if (s.name === 'wildcard') parts.push(`i${p.interest}`);
  if (p.rate !== undefined) parts.push(`rate${p.rate.batch}per${p.rate.intervalMs}ms`);
  return parts.join('/');
}

// The standard matrix of `npm run bench -- all`; counts multiplied by `scale`.
export function standardMatrix(scale: number, genProcs: number): Entry[] {
  const mk = (name: string, over: Partial<Params> = {}): Entry => {
    const s = findScenario(name)!;
    const params: Params = { ...s.defaults, genProcs, ...over };
    params.msgs = Math.max(1, Math.round((over.msgs ?? s.defaults.msgs) * scale));
    return { id: entryId(s, params), scenario: s, params };
  };
  return [
    mk('pub', { size: 16 }),
    mk('pubsub', { size: 16 }),
    mk('pubsub', { size: 1024, msgs: M / 2 }),
    mk('fanout', { size: 16, n: 4 }),
    // N independent streams: the one scenario where more workers should show, so it sweeps
    // --workers (1, 2, 4) where every other entry runs the run's counts (1 and 2).
    { ...mk('pairs', { size: 16, n: 4 }), workers: [1, 2, 4] },
    mk('queue', { size: 16, n: 4 }),
    mk('reqrep', { size: 16, n: 1 }),
    mk('reqrep', { size: 16, n: 16, msgs: 50_000 }),
    ...SWEEP_SIZES.filter((s) => s !== 16 && s !== 1024).map((size) => mk('pubsub', { size, msgs: sweepMsgs(size) })),
    mk('idle', { size: 16 }),
    mk('wildcard', { size: 16 }),
    mk('cluster', { size: 16 }),
    mk('cluster', { size: 1024, msgs: M / 2 }),
    mk('leaf', { size: 16 }),
    mk('leaf', { size: 1024, msgs: M / 2 }),
    mk('leaf-reverse', { size: 16 }),
    mk('leaf-reverse', { size: 1024, msgs: M / 2 }),
    mk('gateway', { size: 16 }),
    mk('gateway', { size: 1024, msgs: M / 2 }),
  ];
}
