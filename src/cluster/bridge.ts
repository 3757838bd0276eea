// The bridge between one server-to-server role's connections and the rest of the server: the
// part of the route thread that a gateway or leaf thread reuses as it is. Towards the client
// workers it behaves like another worker:
//   * it writes into its own interest log the union of what its peers announced (plain:
//     weight 1/0 as the count of peers goes 1/0; queue: the sum of peer weights), so a worker's
//     PUB reaches it through the ring to it, exactly like another worker;
//   * it replays the other threads' interest logs (those that count as local for its role,
//     threads/roles.ts) and announces the aggregate to every registered peer (RS+/RS- with
//     queue weights summed over threads), plus the full dump on registration, net changes only;
//   * ring records become messages to each peer with matching interest (a queue group the
//     publisher picked this thread for goes to one peer, by weight); messages from peers become
//     records for the threads with interest (plain: every such thread; each listed queue group:
//     one thread, by its weight);
//   * backpressure both ways: a peer backed up past half of max_pending stalls the publishers
//     feeding it, and a peer is not read while records for a thread wait for ring space;
//   * each peer's output is held and written once per read or drain batch.
// What a peer *is* (handshake, authorization, names, duplicates, gossip, dialling) is its
// role's control plane (route-control.ts for routes).
//
// Runs on that role's thread only.

import { Sublist, type Interest } from '../broker/sublist.ts';
import { InterestOp, type InterestRecord } from '../threads/interest.ts';
import { Mesh, type MeshHandler } from '../threads/mesh.ts';
import type { SharedLayout } from '../threads/shared.ts';
import type { Options } from '../config/options.ts';
import { log, isTrace } from '../log.ts';
import { fnv, bytesEqual as sameBytes, SUBJECT_ENCODING } from '../protocol/bytes.ts';
import { FLAG_ORIGIN, FLAG_PLAIN, RecordKind, RecordWriter, readRecord } from '../threads/record.ts';
import { MsgView } from '../protocol/msg-view.ts';
import { RouteStats, ThreadStats, type ConnCounters } from '../monitor/stats.ts';
import { CloseReason } from '../conn/base.ts';
import {
  countsAsLocal,
  hearsLocalLeafInterestOnly,
  mayForward,
  takesLeafOrigin,
  ThreadRole,
  type ThreadRoleCode,
} from '../threads/roles.ts';

/** What the bridge needs of a peer connection `P` (RouteConn; the gateway and leaf connections). */
export interface BridgePeer<P> extends ConnCounters {
  readonly closed: boolean;
  readonly closing: boolean;
  /** The peer takes HMSG (headers are stripped for one that does not). */
  readonly headers: boolean;
  /**
   * A route peer that announced `lnoc`: a message from a leaf goes to it as `LMSG <origin> ...`
   * (the peer's writeMsg does it); false for every other peer.
   */
  readonly lnoc: boolean;
  readonly pendingBytes: number;
  readonly socket: { pause(): void; resume(): void };
  /** The peer's interest, keyed by `subject` or `subject queue`. */
  readonly subs: Map<string, PeerSub<P>>;
  // Forwarding scratch, used while routing one message.
  targetPlain: boolean;
  targetQueued: boolean;
  readonly targetGroups: number[];
  logPrefix(): string;
  tick(now: number): void;
  flush(): void;
  markStalled(): void;
  close(reason: typeof CloseReason.serverShutdown, flushFirst: boolean): void;
  queueString(s: string, encoding?: BufferEncoding): void;
  /** The message with the canonical tail it carries (a ring record's). */
  writeTail(m: MsgView): void;
  /** The message with `qCount` queue names, [start, end) pairs in `m.sb`. */
  writeMsg(m: MsgView, queues: number[], qCount: number): void;
  /** Measured round trip (ms; 0 = not yet): with `nearestQueuePeer`, the nearest peer serves a group. */
  readonly rttMs?: number;
  /** With `filtering`: the bridge asks `refuses` before each plain message to this peer. */
  readonly filtered?: boolean;
  refuses?(b: Uint8Array, s: number, e: number): boolean;
}

// Inbox records (threads/record.ts) end with the canonical tail ` [reply ][hdr ]size\r\n<payload>\r\n`,
// which is also an RMSG/HMSG tail, so a plain forward to a peer is two copies.
const SUBJECT_CACHE_MAX = 4096;
/** How often connection timers are swept (ms). */
const SWEEP_MS = 50;

/** A worker's interest as the route thread sees it. */
interface LocalSub extends Interest {
  readonly subject: string;
  readonly queue: string | null;
  readonly thread: number;
  weight: number;
}

/** A peer's interest (one RS+), kept by its connection (BridgePeer.subs) and in the bridge's sublist. */
export interface PeerSub<P> extends Interest {
  readonly subject: string;
  readonly queue: string | null;
  readonly peer: P;
  weight: number;
  /** The leaf cluster it came from (route `LS+ <origin>`, a leaf's CONNECT cluster); a key keeps its first. */
  readonly origin: string | null;
}

/** One origin's share of a key's interest, and the weight without it last logged (interest.ts origin records). */
interface OriginShare {
  weight: number;
  without: number;
}

export interface Group<T> {
  readonly nameBytes: Buffer;
  readonly members: T[];
  readonly total: number;
}

/** A subject resolved against one sublist, cached by subject bytes. */
interface Resolved<S, P> {
  gen: number;
  readonly key: Buffer;
  next: Resolved<S, P> | null;
  plain: P[];
  groups: Group<S>[];
}

/**
 * Subject → matches, cached by subject bytes and invalidated by the sublist's generation.
 * `plainOf` maps a plain match to what the caller fans out to (thread, route), deduplicated.
 */
class SubjectCache<S extends Interest & { weight: number }, P> {
  private readonly map = new Map<number, Resolved<S, P>>();
  private count = 0;
  /** The last subject looked up: a stream of one subject skips the hash. */
  private last: Resolved<S, P> | null = null;
  private readonly list: Sublist<S>;
  private readonly plainOf: (s: S) => P;
  /** Members used only when a group has no other (leaf members), or null. */
  private readonly secondary: ((s: S) => boolean) | null;

  constructor(list: Sublist<S>, plainOf: (s: S) => P, secondary: ((s: S) => boolean) | null = null) {
    this.list = list;
    this.plainOf = plainOf;
    this.secondary = secondary;
  }

  get(b: Uint8Array, s: number, e: number): { plain: P[]; groups: Group<S>[] } {
    const gen = this.list.generation;
    const last = this.last;
    if (last !== null && last.gen === gen && sameBytes(last.key, 0, last.key.length, b, s, e)) return last;
    const h = fnv(b, s, e);
    let r = this.map.get(h) ?? null;
    while (r !== null && !sameBytes(r.key, 0, r.key.length, b, s, e)) r = r.next;
    if (r === null) {
      if (this.count >= SUBJECT_CACHE_MAX) {
        this.map.clear();
        this.count = 0;
        this.last = null;
      }
      r = { gen: -1, key: Buffer.from(b.subarray(s, e)), next: this.map.get(h) ?? null, plain: [], groups: [] };
      this.map.set(h, r);
      this.count++;
    }
    if (r.gen !== gen) {
      const m = this.list.match(r.key.toString(SUBJECT_ENCODING));
      const plain = new Set<P>();
      for (const sub of m.psubs) plain.add(this.plainOf(sub));
      r.plain = [...plain];
      const secondary = this.secondary;
      r.groups = m.qgroups.map((g) => {
        let members = g.members;
        if (secondary !== null && members.some((sub) => !secondary(sub))) members = members.filter((sub) => !secondary(sub));
        let total = 0;
        for (const sub of members) total += sub.weight;
        return { nameBytes: Buffer.from(g.name, SUBJECT_ENCODING), members, total };
      });
      r.gen = gen;
    }
    this.last = r;
    return r;
  }
}

/** nats-server's stallDuration: 100 ms, growing to 1 s as `pending` nears `max`. */
function stallDuration(pending: number, max: number): number {
  if (pending >= max) return 1000;
  const half = max / 2;
  if (pending <= half) return 100;
  return Math.min(1000, 100 + 100 * Math.floor((pending - half) / (half / 10)));
}

function pickByWeight<T extends { weight: number }>(g: Group<T>): T | null {
  if (g.total <= 0) return null;
  let pick = Math.floor(Math.random() * g.total);
  for (const m of g.members) {
    pick -= m.weight;
    if (pick < 0) return m;
  }
  return null;
}
/** The member whose peer has the lowest measured RTT (not measured yet: last), as gateway.go orders outbounds. */
function pickNearest<T extends { weight: number; peer: { rttMs?: number } }>(g: Group<T>): T | null {
  let best: T | null = null;
  let bestRtt = Infinity;
  for (const m of g.members) {
    if (m.weight <= 0) continue;
    const measured = m.peer.rttMs ?? 0;
    const rtt = measured > 0 ? measured : 1e9;
    if (best === null || rtt < bestRtt) {
      best = m;
      bestRtt = rtt;
    }
  }
  return best;
}

/** One member of `g` that `ok` accepts, by weight among those; null when none does. */
export function pickWhere<T extends { weight: number }>(g: Group<T>, ok: (m: T) => boolean): T | null {
  let total = 0;
  for (const m of g.members) if (ok(m)) total += m.weight;
  if (total <= 0) return null;
  let pick = Math.floor(Math.random() * total);
  for (const m of g.members) {
    if (!ok(m)) continue;
    pick -= m.weight;
    if (pick < 0) return m;
  }
  return null;
}

/** How a role writes interest to its peers: `RS` for routes and gateways, `LS` for leafnodes. */
export interface BridgeWording {
  readonly verb: 'RS' | 'LS';
  /** The peer kind in log lines (`Sent local subscriptions to route`). */
  readonly noun: string;
  /**
   * Gateways: a queue group is announced as `RS+ acc subject queue 1` when its first member
   * appears and `RS- ...` when its last goes (gateway.go: the weight is always 1); routes send
   * every change of the summed weight.
   */
  readonly queueWeightOne?: boolean;
  /** Gateways: a message for a queue group with no member here is dropped, not handed back to a peer. */
  readonly noBounce?: boolean;
  /** Gateways: a queue group goes to the peer with the lowest measured RTT (gateway.go), not by weight. */
  readonly nearestQueuePeer?: boolean;
  /** Gateways: peers may refuse plain messages (BridgePeer.refuses). */
  readonly filtering?: boolean;
  /** Local plain interest in `subject` appeared (true) or went (false). */
  readonly onLocalPlain?: (subject: string, has: boolean) => void;
  /** A record from another thread, before it is routed: true when the hook took it. */
  readonly interceptRecord?: (from: number, m: MsgView) => boolean;
}

/**
 * Per-peer rules a role lays over the bridge where its peers are not all alike (leaf nodes:
 * nats-server keeps one interest map per leaf connection, and who hears whose interest and
 * messages depends on which side of each connection is the hub). Without a scope every peer
 * gets the same announcements and any message (routes, gateways).
 */
export interface BridgeScope<P> {
  /** Thread `t`'s interest in (subject, queue) went from `was` to `now` (plain: 0/1). The role announces it. */
  localChanged(t: number, subject: string, queue: string | null, was: number, now: number): void;
  /** Peer `p`'s interest in (subject, queue) went from `was` to `now` (plain: 0/1). */
  peerChanged(p: P, subject: string, queue: string | null, was: number, now: number): void;
  /** A newly registered peer's full dump (instead of the aggregate one). */
  dumpTo(p: P): void;
  /**
   * Thread `t`'s interest in (subject, queue) without the share of leaf cluster `origin` went
   * from `was` to `now` (null: no share of that origin, the whole weight counts).
   */
  localOriginChanged(t: number, subject: string, queue: string | null, origin: string, was: number | null, now: number | null): void;
  /**
   * Does peer `p`'s interest count for route and gateway peers too? (A leaf's: yes; what our
   * hub announced: only for client workers; interest.ts routeWeight.)
   */
  sharesWithRoutes(p: P): boolean;
  /** May message `m` from thread `t` go to peer `p` (`m.os`: the leaf cluster it came from)? */
  acceptsFrom(p: P, t: number, m: MsgView): boolean;
  /** May a message from peer `p` go to thread `t`: plain interest, and queue groups? */
  handsPlainTo(p: P, t: number): boolean;
  /**
   * A message from peer `from`, after the threads had theirs: to the other peers the role's
   * rule allows; `groups` lists the queue groups ([start, end) in m.sb) no thread served.
   */
  relay(from: P, m: MsgView, groups: number[]): void;
}

export class Bridge<P extends BridgePeer<P>> implements MeshHandler {
  readonly opts: Options;
  readonly thread: number;
  readonly role: ThreadRoleCode;
  private readonly roles: ThreadRoleCode[];
  /** Every connection of this role (registered or not): swept, counted, closed at shutdown. */
  readonly conns = new Set<P>();
  /** Registered peers: they get interest announcements and messages. */
  readonly peers = new Set<P>();
  /** Monitoring counters (src/monitor/stats.ts), published once per batch. */
  stats = new RouteStats(ThreadStats.detached());
  private readonly plus: string;
  private readonly minus: string;
  private readonly noun: string;
  private readonly wording: BridgeWording;
  private readonly filtering: boolean;
  /** Per thread: its interest counts as local here (roles.ts countsAsLocal). */
  private readonly local: boolean[] = [];
  /** Per thread: its records may be forwarded to our peers (roles.ts mayForward). */
  private readonly forwardsFrom: boolean[] = [];
  /** Per thread: records for it carry a message's leaf origin cluster (route and leaf threads: roles.ts). */
  private readonly originTo: boolean[] = [];
  /** Per thread: takes run records (client workers; threads/record.ts). */
  private readonly runTo: boolean[] = [];

  // Interest learned from the other threads (what we announce) and from peers (what we log).
  private readonly localList = new Sublist<LocalSub>();
  private readonly localByThread: Map<string, LocalSub>[] = [];
  private readonly localPlain = new Map<string, number>(); // subject → threads with plain interest
  private readonly localQueues = new Map<string, number>(); // "subject queue" → summed weight
  // What the peers were last told; a replay pass announces only net changes against it.
  private readonly sentPlain = new Set<string>();
  private readonly sentQueues = new Map<string, number>();
  private readonly dirtyPlain = new Set<string>();
  private readonly dirtyQueues = new Set<string>();
  private readonly peerList = new Sublist<PeerSub<P>>();
  private readonly peerPlain = new Map<string, number>(); // subject → peers with plain interest
  private readonly peerQueues = new Map<string, number>(); // "subject\0queue" → summed weight
  // With a scope: the same for the peers whose interest route and gateway peers hear (routeWeight).
  private readonly sharedPlain = new Map<string, number>();
  private readonly sharedQueues = new Map<string, number>();
  /** Per thread: a route or gateway role reading the leaf thread's log takes its routeWeight. */
  private readonly useRouteWeight: boolean[] = [];
  private readonly inCache: SubjectCache<LocalSub, number>;
  private readonly outCache: SubjectCache<PeerSub<P>, P>;
  // The origin of interest (interest.ts origin records). The route thread logs, per key its peers
  // announced with `LS+ <origin>`, the weight without each origin's share; the leaf thread does
  // the same for what its leafs announced (their CONNECT cluster), for the routes.
  /** Route and leaf roles: log origin records for our peers' interest. */
  private readonly logsOrigins: boolean;
  /** Per key (`subject` or `subject\0queue`): each origin's share of the logged weight. */
  private readonly originShares = new Map<string, Map<string, OriginShare>>();
  /** Route role: the leaf thread's weight without each origin, per key (what an LS+ <origin> needs). */
  private readonly leafWithout = new Map<string, Map<string, number>>();
  private readonly leafThread: number;
  /** Route role: the origin of this pass's change to a key (`subject` or `subject queue`), for lnoc peers. */
  private readonly passOrigin = new Map<string, string>();
  /** Leaf role: per thread, its weight without each origin, per key (the route thread's). */
  private readonly localWithout: Map<string, Map<string, number>>[] = [];

  // This thread's endpoint on the shared layout (inboxes, staging, interest logs, doorbells).
  private readonly mesh: Mesh;
  private readonly dirty: P[] = [];
  /** Peers not read while a ring to another thread is full. */
  private readonly paused = new Set<P>();

  // Per-message scratch.
  private readonly targetPlain: Uint8Array;
  private readonly targetGroups: number[][] = [];
  private readonly targetThreads: number[] = [];
  private readonly targetRoutes: P[] = [];
  /** The publisher (thread, connection) whose stall was last requested in this drain pass (onRecord). */
  private stallAskedFrom = -1;
  private stallAskedCid = 0;
  /** The view of the record being forwarded. */
  private readonly rec = new MsgView();
  private readonly records: RecordWriter;
  private bounceRoutes: P[] = [];

  private sweepTimer: NodeJS.Timeout | null = null;
  /** The role's per-peer rules (leaf nodes), or null: every peer alike. */
  private readonly scope: BridgeScope<P> | null;
  /** Queue groups not served by any thread, [start, end) pairs, handed to scope.relay. */
  private readonly unserved: number[] = [];

  constructor(
    opts: Options,
    layout: SharedLayout,
    thread: number,
    replacement: boolean,
    wording: BridgeWording,
    scope: BridgeScope<P> | null = null,
  ) {
    this.opts = opts;
    this.scope = scope;
    this.roles = layout.roles;
    this.thread = thread;
    this.role = layout.roles[thread];
    // Leaf connections bind one account and name none (`LS+ foo`); routes name it (`RS+ $G foo`).
    this.plus = wording.verb === 'LS' ? 'LS+ ' : `${wording.verb}+ $G `;
    this.minus = wording.verb === 'LS' ? 'LS- ' : `${wording.verb}- $G `;
    this.noun = wording.noun;
    this.wording = wording;
    this.filtering = wording.filtering === true;
    // A queue group is served by a leaf connection's member only when no other member exists
    // (nats-server: local and route members first), so the leaf thread is a second choice.
    const leafThread = layout.leafThread;
    this.inCache = new SubjectCache(
      this.localList,
      (s) => s.thread,
      leafThread < 0 || leafThread === thread ? null : (s) => s.thread === leafThread,
    );
    this.outCache = new SubjectCache(this.peerList, (s) => s.peer);
    this.leafThread = leafThread;
    this.logsOrigins = (scope === null && this.role === ThreadRole.route) || this.role === ThreadRole.leaf;
    const n = layout.threads;
    for (let t = 0; t < n; t++) {
      this.targetGroups.push([]);
      this.localByThread.push(new Map());
      this.localWithout.push(new Map());
      this.local.push(t !== thread && countsAsLocal(this.role, layout.roles[t]));
      this.forwardsFrom.push(t !== thread && mayForward(layout.roles[t], this.role));
      this.useRouteWeight.push(hearsLocalLeafInterestOnly(this.role) && layout.roles[t] === ThreadRole.leaf);
      this.originTo.push(takesLeafOrigin(layout.roles[t]));
      this.runTo.push(layout.roles[t] === ThreadRole.worker);
    }
    this.targetPlain = new Uint8Array(n);
    // A replacement thread's connections died with its predecessor (main reset its logged
    // interest); the other threads' interest arrives as snapshots.
    this.mesh = new Mesh(layout, thread, replacement);
    this.records = new RecordWriter(this.mesh);
  }

  start(): void {
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.mesh.start(this);
  }

  // ====================================================================== connections

  /** A connection of this role exists (before any handshake). */
  attach(p: P): void {
    this.conns.add(p);
  }

  /** A connection closed: its counters stay in the thread's totals; it is read no more. */
  detach(p: P): void {
    if (this.conns.delete(p)) this.stats.retire(p);
    this.paused.delete(p);
  }

  /**
   * A peer registered: it gets the full interest dump first (unless its control plane sends
   * its own, `dump` false), then every change.
   */
  register(p: P, dump = true): void {
    this.peers.add(p);
    if (dump) this.sendInterestTo(p);
  }

  /** Stop announcing interest to `p`, keeping what it told us (a gateway inbound leaving interest-only). */
  mute(p: P): void {
    this.peers.delete(p);
  }

  /**
   * The barrier a peer's PING waits for: every other thread's interest replayed and announced,
   * every record committed to this thread taken, so the PONG follows everything a client
   * published before its own flush (as a client PING is across workers).
   */
  barrier(): void {
    this.mesh.applyInterest();
    this.announcePending();
    this.mesh.drainCommitted();
    this.announcePending();
  }

  /** The other threads' interest replayed (and announced) up to now, records left where they are. */
  refreshInterest(): void {
    this.mesh.applyInterest();
    this.announcePending();
  }

  /** Plain subjects announced to peers (what a new peer's dump is made of). */
  announcedPlain(): IterableIterator<string> {
    return this.sentPlain.values();
  }

  /** Queue groups announced to peers, `subject queue` → weight. */
  announcedQueues(): IterableIterator<[string, number]> {
    return this.sentQueues.entries();
  }

  /** Any local interest at all (plain or queue), as the other threads logged it. */
  hasLocalInterest(): boolean {
    return this.localPlain.size > 0 || this.localQueues.size > 0;
  }

  /** Does a plain subscription (local to this role) match the literal subject b[s, e)? */
  hasLocalPlainMatch(b: Uint8Array, s: number, e: number): boolean {
    return this.inCache.get(b, s, e).plain.length > 0;
  }

  /** Hand `m` (read from peer `from`) to thread `t` as a plain record, whatever the interest (a directed `_GR_.` reply). */
  handTo(from: P, t: number, m: MsgView): void {
    if (this.mesh.isAlive(t) && this.forwardsTo(t)) this.toThread(from, t, true, [], m, null);
  }

  /** May this role hand what its peers send to thread `t` (roles.ts)? */
  private forwardsTo(t: number): boolean {
    return t !== this.thread && mayForward(this.role, this.roles[t]);
  }

  /** Interest this role adds to its log besides its peers' (gateway reply mappings). */
  extraInterest(subject: string, queue: string | null, delta: number): void {
    this.peerInterest(null, subject, queue, delta);
  }

  /** A registered peer went away: its interest goes with it. */
  unregister(p: P): void {
    this.peers.delete(p);
    this.removeRemoteSubs(p);
  }

  markDirty(p: P): void {
    this.dirty.push(p);
  }

  /** Bytes arrived from a peer, about to be parsed. */
  beforeRead(): void {
    // Other threads' records that arrived meanwhile first (no wake-up needed while we are busy).
    this.mesh.drainPending();
    // Replay the other threads' logs first: a subscription a client made (and got its PONG
    // for) before these bytes were read must get the messages in them.
    this.mesh.applyInterest();
    this.announcePending();
    this.mesh.mark();
  }

  /** One read from `p` was parsed: write what it produced (once per read, never per message). */
  afterRead(p: P): void {
    // Records of this read wait for inbox space: read no more of this peer until they are in.
    if (this.mesh.blockedSinceMark()) this.paused.add(p);
    this.flushAll();
  }

  /** A peer drained: publishers stalled for backed-up peers go on once none is backed up. */
  onPeerDrained(): void {
    const half = this.opts.maxPending / 2;
    for (const r of this.peers) if (r.pendingBytes > half) return;
    this.mesh.releaseStalls();
  }

  /** Commit records staged for other threads (a closed peer's interest went out). */
  flushMesh(): void {
    this.mesh.flush();
  }

  // ====================================================================== interest

  /**
   * A peer's RS+: `subject` (and `queue` with its weight) is of interest to it. False when it
   * changes nothing (a repeated plain RS+).
   */
  peerSubscribed(r: P, subject: string, queue: string | null, weight: number, origin: string | null = null): boolean {
    const key = queue === null ? subject : `${subject} ${queue}`;
    const old = r.subs.get(key);
    if (old !== undefined) {
      if (queue === null || old.weight === weight) return false; // repeated plain RS+ is ignored
      this.peerList.remove(old);
      r.subs.delete(key);
      this.peerInterest(r, subject, queue, -old.weight, old.origin);
      origin = old.origin; // the key keeps its first origin (route.go processRemoteSub)
    }
    const sub: PeerSub<P> = { subject, queue, peer: r, weight, origin };
    this.peerList.insert(sub);
    r.subs.set(key, sub);
    this.peerInterest(r, subject, queue, queue === null ? 1 : weight, origin);
    this.scope?.peerChanged(r, subject, queue, old?.weight ?? 0, queue === null ? 1 : weight);
    return true;
  }

  /** A peer's RS-: `key` is exactly its subscription's (`subject` or `subject queue`). */
  peerUnsubscribed(r: P, key: string): void {
    const sub = r.subs.get(key);
    if (sub === undefined) return;
    r.subs.delete(key);
    this.peerList.remove(sub);
    this.peerInterest(r, sub.subject, sub.queue, sub.queue === null ? -1 : -sub.weight, sub.origin);
    this.scope?.peerChanged(r, sub.subject, sub.queue, sub.queue === null ? 1 : sub.weight, 0);
  }

  /** A peer went away (or unregistered): its interest goes with it. */
  private removeRemoteSubs(r: P): void {
    for (const sub of r.subs.values()) {
      this.peerList.remove(sub);
      this.peerInterest(r, sub.subject, sub.queue, sub.queue === null ? -1 : -sub.weight, sub.origin);
      this.scope?.peerChanged(r, sub.subject, sub.queue, sub.queue === null ? 1 : sub.weight, 0);
    }
    r.subs.clear();
  }

  /** Fold a peer's interest change (null: the role's own, extraInterest) into the union we log for the workers. */
  private peerInterest(r: P | null, subject: string, queue: string | null, delta: number, origin: string | null = null): void {
    const key = queue === null ? subject : `${subject}\u0000${queue}`;
    const all = queue === null ? this.peerPlain : this.peerQueues;
    const was = all.get(key) ?? 0;
    const now = Math.max(0, was + delta);
    if (now > 0) all.set(key, now);
    else all.delete(key);
    // Plain interest is logged as 1/0 (whether any peer has it); a queue group's summed weight.
    const wasLogged = queue === null ? Math.min(was, 1) : was;
    const nowLogged = queue === null ? Math.min(now, 1) : now;
    if (this.scope === null) {
      if (this.logsOrigins && (origin !== null || this.originShares.has(key))) {
        this.logOrigins(key, subject, queue, origin, delta, now, nowLogged !== wasLogged ? nowLogged : -1, -1);
        return;
      }
      if (nowLogged !== wasLogged) this.mesh.publishInterest(subject, queue, nowLogged);
      return;
    }
    const shared = queue === null ? this.sharedPlain : this.sharedQueues;
    const sWas = shared.get(key) ?? 0;
    const sharing = r !== null && this.scope.sharesWithRoutes(r);
    const sNow = sharing ? Math.max(0, sWas + delta) : sWas;
    if (sNow > 0) shared.set(key, sNow);
    else shared.delete(key);
    const sWasLogged = queue === null ? Math.min(sWas, 1) : sWas;
    const sNowLogged = queue === null ? Math.min(sNow, 1) : sNow;
    const changed = nowLogged !== wasLogged || sNowLogged !== sWasLogged;
    if (sharing && (origin !== null || this.originShares.has(key))) {
      this.logOrigins(key, subject, queue, origin, delta, sNow, changed ? nowLogged : -1, sNowLogged);
      return;
    }
    if (changed) this.mesh.publishInterest(subject, queue, nowLogged, sNowLogged);
  }

  /**
   * Log a change of `key` (weight `base`, -1: unchanged; `routeWeight` as publishInterest) with
   * its origin records: each origin's weight without it (`total` counts what the records are
   * about: plain, the peers with it), new values before the base record and forgotten origins
   * after it, so a reader never sees a share of that origin counted in between.
   */
  private logOrigins(
    key: string,
    subject: string,
    queue: string | null,
    origin: string | null,
    delta: number,
    total: number,
    base: number,
    routeWeight: number,
  ): void {
    let shares = this.originShares.get(key);
    if (shares === undefined) {
      shares = new Map();
      this.originShares.set(key, shares);
    }
    if (origin !== null) {
      const sh = shares.get(origin) ?? { weight: 0, without: -1 };
      sh.weight += delta;
      shares.set(origin, sh);
    }
    const gone: string[] = [];
    for (const [o, sh] of shares) {
      if (sh.weight <= 0) {
        gone.push(o);
        continue;
      }
      const rest = total - sh.weight;
      const without = queue === null ? (rest > 0 ? 1 : 0) : Math.max(0, rest);
      if (without === sh.without) continue;
      sh.without = without;
      this.publishOrigin(subject, queue, without, o);
    }
    if (base >= 0) this.mesh.publishInterest(subject, queue, base, routeWeight);
    for (const o of gone) {
      if (shares.get(o)!.without >= 0) this.publishOrigin(subject, queue, -1, o);
      shares.delete(o);
    }
    if (shares.size === 0) this.originShares.delete(key);
  }

  private publishOrigin(subject: string, queue: string | null, without: number, origin: string): void {
    // A record too large for the log is left out: that origin's leafs then hear the whole weight.
    if (this.mesh.interestFits(subject.length, (queue?.length ?? 0) + 4 + origin.length))
      this.mesh.publishInterest(subject, queue, without, -1, origin);
  }

  /** The peers with interest in subject b[s, e): plain ones, and each queue group's members (cached). */
  peerMatches(b: Uint8Array, s: number, e: number): { plain: P[]; groups: Group<PeerSub<P>>[] } {
    return this.outCache.get(b, s, e);
  }

  /**
   * Log interest of this thread's own (a leaf thread's `$LDS.` subject), outside the peers' union,
   * for the client workers only: with a scope, route and gateway viewers get a routeWeight of 0.
   */
  logOwnInterest(subject: string, weight: number): void {
    if (this.scope === null) this.mesh.publishInterest(subject, null, weight);
    else this.mesh.publishInterest(subject, null, weight, 0);
  }

  /** Thread `t`'s interest as replayed here: (subject, queue, weight) of each entry. */
  forEachLocal(t: number, fn: (subject: string, queue: string | null, weight: number) => void): void {
    for (const sub of this.localByThread[t].values()) fn(sub.subject, sub.queue, sub.weight);
  }

  /**
   * Mesh: another thread's interest change, replayed from its log. Announced in afterInterest,
   * if it counts as local for this role (roles.ts: never a gateway's interest to routes).
   */
  onInterest(t: number, rec: InterestRecord): void {
    if (!this.local[t]) return;
    if (rec.op === InterestOp.reset) {
      this.dropLocalInterest(t);
      return;
    }
    const rw = rec.routeWeight ?? -1;
    this.setLocal(t, rec.subject, rec.queue, this.useRouteWeight[t] && rw >= 0 ? rw : rec.weight);
  }

  /** Mesh: an origin record (interest.ts) from thread `t`: the leaf thread's for the route role, the route thread's for the leaf role. */
  onOriginInterest(t: number, rec: InterestRecord): void {
    const origin = rec.origin!;
    const key = rec.queue === null ? rec.subject : `${rec.subject}\u0000${rec.queue}`;
    if (this.role === ThreadRole.route) {
      if (t !== this.leafThread) return;
      setWithout(this.leafWithout, key, origin, rec.weight);
      return;
    }
    if (this.scope === null || !this.local[t] || this.roles[t] !== ThreadRole.route) return;
    const was = setWithout(this.localWithout[t], key, origin, rec.weight);
    const now = rec.weight >= 0 ? rec.weight : null;
    if (was !== now) this.scope.localOriginChanged(t, rec.subject, rec.queue, origin, was, now);
  }

  /** Leaf role: thread `t`'s weight for (subject, queue) without the share of `origin`; undefined: no such share. */
  localWithoutOrigin(t: number, subject: string, queue: string | null, origin: string): number | undefined {
    const m = this.localWithout[t];
    if (m.size === 0) return undefined;
    return m.get(queue === null ? subject : `${subject}\u0000${queue}`)?.get(origin);
  }

  /** Thread `t`'s weight for (subject, queue) as replayed here (plain: 0/1). */
  localWeight(t: number, subject: string, queue: string | null): number {
    return this.localByThread[t].get(queue === null ? subject : `${subject}\u0000${queue}`)?.weight ?? 0;
  }

  private dropLocalInterest(t: number): void {
    for (const sub of [...this.localByThread[t].values()]) this.setLocal(t, sub.subject, sub.queue, 0);
  }

  private setLocal(t: number, subject: string, queue: string | null, weight: number): void {
    const byKey = this.localByThread[t];
    const key = queue === null ? subject : `${subject}\u0000${queue}`;
    const old = byKey.get(key);
    const oldWeight = old?.weight ?? 0;
    if (queue === null) weight = weight > 0 ? 1 : 0;
    if (oldWeight === weight) return;
    if (old !== undefined) {
      this.localList.remove(old);
      byKey.delete(key);
    }
    if (weight > 0) {
      const sub: LocalSub = { subject, queue, thread: t, weight };
      this.localList.insert(sub);
      byKey.set(key, sub);
    }
    if (this.scope !== null) {
      this.scope.localChanged(t, subject, queue, oldWeight, weight);
      return;
    }
    // A change the leaf thread made with all of its share from one leaf cluster goes to lnoc
    // peers as `LS+ <origin>` / `LS-` (route.go addRouteSubOrUnsubProtoToBuf: the origin of the
    // subscription that caused it). The leaf thread logs origin records before a share appears
    // and forgets them after it went, so they are there when its base record is replayed.
    if (this.leafWithout.size > 0 || this.passOrigin.size > 0)
      this.notePassOrigin(t, key, queue === null ? subject : `${subject} ${queue}`);
    if (queue === null) {
      const was = this.localPlain.get(subject) ?? 0;
      const now = was + weight - oldWeight;
      if (now > 0) this.localPlain.set(subject, now);
      else this.localPlain.delete(subject);
      this.dirtyPlain.add(subject);
      if (was > 0 !== now > 0) this.wording.onLocalPlain?.(subject, now > 0);
      return;
    }
    const qkey = `${subject} ${queue}`;
    const now = Math.max(0, (this.localQueues.get(qkey) ?? 0) + weight - oldWeight);
    if (now > 0) this.localQueues.set(qkey, now);
    else this.localQueues.delete(qkey);
    this.dirtyQueues.add(qkey);
  }

  private notePassOrigin(t: number, key: string, dirtyKey: string): void {
    let origin: string | null = null;
    if (t === this.leafThread) {
      const m = this.leafWithout.get(key);
      if (m !== undefined) for (const [o, without] of m) if (without === 0) origin = o;
    }
    if (origin !== null) this.passOrigin.set(dirtyKey, origin);
    else this.passOrigin.delete(dirtyKey);
  }

  /**
   * Tell every peer how the aggregate changed during one replay pass: RS+ when a subject
   * gains its first plain subscriber, RS- when it loses its last; a queue group's new total
   * weight as RS+ (smaller ones too), RS- at zero (route.go). A pass nets out changes, so a
   * client closing with three members of a group sends one RS-, as nats-server does.
   */
  private announcePending(): void {
    if (this.dirtyPlain.size === 0 && this.dirtyQueues.size === 0) return;
    let lines = '';
    // For lnoc route peers, when a change came with a leaf origin: `LS+ <origin> $G ...`, `LS-  $G ...`.
    const origins = this.passOrigin;
    let originLines = '';
    for (const subject of this.dirtyPlain) {
      const has = this.localPlain.has(subject);
      if (has === this.sentPlain.has(subject)) continue;
      let line: string;
      if (has) {
        this.sentPlain.add(subject);
        line = `${this.plus}${subject}\r\n`;
      } else {
        this.sentPlain.delete(subject);
        line = `${this.minus}${subject}\r\n`;
      }
      lines += line;
      if (origins.size === 0) continue;
      const o = origins.get(subject);
      originLines += o === undefined ? line : has ? `LS+ ${o} $G ${subject}\r\n` : `LS-  $G ${subject}\r\n`;
    }
    const one = this.wording.queueWeightOne === true;
    for (const qkey of this.dirtyQueues) {
      let w = this.localQueues.get(qkey) ?? 0;
      if (one && w > 0) w = 1;
      if (w === (this.sentQueues.get(qkey) ?? 0)) continue;
      let line: string;
      if (w > 0) {
        this.sentQueues.set(qkey, w);
        line = `${this.plus}${qkey} ${w}\r\n`;
      } else {
        this.sentQueues.delete(qkey);
        line = `${this.minus}${qkey}\r\n`;
      }
      lines += line;
      if (origins.size === 0) continue;
      const o = origins.get(qkey);
      originLines += o === undefined ? line : w > 0 ? `LS+ ${o} $G ${qkey} ${w}\r\n` : `LS-  $G ${qkey}\r\n`;
    }
    this.dirtyPlain.clear();
    this.dirtyQueues.clear();
    const withOrigins = origins.size > 0;
    if (withOrigins) origins.clear();
    if (lines === '') return;
    if (isTrace()) log.trace(`->> [${lines.trimEnd().replace(/\r\n/g, ', ')}] to ${this.peers.size} ${this.noun}(s)`);
    for (const r of this.peers) r.queueString(withOrigins && r.lnoc ? originLines : lines, SUBJECT_ENCODING);
  }

  /** The full interest dump a newly registered peer gets first: what peers were last told. */
  private sendInterestTo(r: P): void {
    if (this.scope !== null) {
      this.scope.dumpTo(r);
      return;
    }
    const lines: string[] = [];
    for (const subject of this.sentPlain) lines.push(`${this.plus}${subject}\r\n`);
    for (const [qkey, weight] of this.sentQueues) lines.push(`${this.plus}${qkey} ${weight}\r\n`);
    if (lines.length > 0) r.queueString(lines.join(''), SUBJECT_ENCODING);
    log.debug(`${r.logPrefix()} - Sent local subscriptions to ${this.noun}`);
  }

  /**
   * Our logged interest (the peers' union), for a replacement thread `to`: with a scope, a route
   * or gateway thread gets what its role hears of it (routeWeight).
   */
  interestSnapshot(to = -1): { position: number; entries: [string, string | null, number][] } {
    const position = this.mesh.snapshotPosition();
    const entries: [string, string | null, number][] = [];
    const routes = this.scope !== null && to >= 0 && hearsLocalLeafInterestOnly(this.roles[to]);
    for (const subject of (routes ? this.sharedPlain : this.peerPlain).keys()) entries.push([subject, null, 1]);
    for (const [key, w] of routes ? this.sharedQueues : this.peerQueues) {
      const z = key.indexOf('\u0000');
      entries.push([key.slice(0, z), key.slice(z + 1), w]);
    }
    return { position, entries };
  }

  /** A thread's interest, when this thread is a replacement. */
  applySnapshot(from: number, position: number, entries: [string, string | null, number][]): void {
    this.dropLocalInterest(from);
    for (const [subject, queue, weight] of entries) this.setLocal(from, subject, queue, weight);
    this.announcePending();
    this.mesh.snapshotApplied(from, position);
    this.flushAll();
  }

  /** Mesh: one record from another thread: forward to the peers with interest, if this role may (roles.ts). */
  onRecord(from: number, d: Buffer, v: DataView, o: number, _len: number): void {
    const m = this.rec;
    readRecord(m, d, v, o);
    if (m.kind !== RecordKind.msg || !this.forwardsFrom[from]) return;
    this.stats.stats.crossReceived++;
    if (this.wording.interceptRecord !== undefined && this.wording.interceptRecord(from, m)) return;
    const ss = m.ss;
    const se = m.se;
    const hdr = m.hdr;
    let p = se;
    // Targets are counted, not pushed and truncated: an array length write runs in V8's
    // runtime, per message. Entries past the count are stale and never read.
    const targets = this.targetRoutes;
    let nt = 0;
    const res = this.outCache.get(d, ss, se);
    const scope = this.scope;
    if ((m.flags & FLAG_PLAIN) !== 0) {
      const filtering = this.filtering;
      for (const r of res.plain) {
        if (filtering && r.filtered === true && r.refuses!(d, ss, se)) continue;
        if (scope !== null && !scope.acceptsFrom(r, from, m)) continue;
        if (!r.targetPlain && !r.targetQueued) targets[nt++] = r;
        r.targetPlain = true;
      }
    }
    for (let i = 0; i < m.nGroups; i++) {
      const ns = p + 4;
      const ne = ns + v.getUint32(p, true);
      p = ne;
      for (const g of res.groups) {
        if (!sameBytes(g.nameBytes, 0, g.nameBytes.length, d, ns, ne)) continue;
        const member =
          scope !== null
            ? pickWhere(g, (s) => scope.acceptsFrom(s.peer, from, m))
            : this.wording.nearestQueuePeer === true
              ? pickNearest(g)
              : pickByWeight(g);
        if (member === null) break;
        const r = member.peer;
        if (!r.targetPlain && !r.targetQueued) targets[nt++] = r;
        r.targetQueued = true;
        r.targetGroups.push(ns, ne);
        break;
      }
    }
    const size = m.pe - m.ps;
    const half = this.opts.maxPending / 2;
    for (let i = 0; i < nt; i++) {
      const r = targets[i];
      r.outMsgs++;
      r.outBytes += size;
      // The record's tail is the peer's too, unless queue names go in between, headers must be
      // stripped (or an empty header block dropped) or the peer is told the leaf origin (LMSG).
      if (r.targetGroups.length === 0 && (hdr < 0 || (hdr > 0 && r.headers)) && (m.os < 0 || !r.lnoc)) r.writeTail(m);
      else r.writeMsg(m, r.targetGroups, r.targetGroups.length >> 1);
      r.targetPlain = false;
      r.targetQueued = false;
      // (A length write runs in V8's runtime: only when there is something to clear.)
      if (r.targetGroups.length !== 0) r.targetGroups.length = 0;
      // A peer backed up past half of max_pending stalls the client publishing to it, as in
      // nats-server (the route's stall channel); nothing else waits for it.
      if (m.cid !== 0 && r.pendingBytes > half) {
        r.markStalled();
        // Once per publisher per drain pass (a backed-up peer sees this for every message).
        if (m.cid !== this.stallAskedCid || from !== this.stallAskedFrom) {
          this.stallAskedCid = m.cid;
          this.stallAskedFrom = from;
          this.mesh.requestStall(from, m.cid, stallDuration(r.pendingBytes, this.opts.maxPending));
        }
      }
    }
  }

  /**
   * A message a registered peer sent: to the threads this role may hand it to (roles.ts; for
   * routes the client workers only, never another route), and for a queue group with no member
   * here any more back to a peer that has one.
   */
  fromPeer(r: P, m: MsgView): void {
    const b = m.sb;
    const res = this.inCache.get(b, m.ss, m.se);
    const targets = this.targetThreads; // counted, as in onRecord
    let nt = 0;
    const scope = this.scope;
    for (const t of res.plain) {
      if (scope !== null && !scope.handsPlainTo(r, t)) continue;
      if (this.targetPlain[t] === 0 && this.targetGroups[t].length === 0) targets[nt++] = t;
      this.targetPlain[t] = 1;
    }
    let bounce: { plain: P[]; groups: Group<PeerSub<P>>[] } | null = null;
    for (let qi = 0; qi < m.queueCount; qi++) {
      const qs = m.queues[2 * qi];
      const qe = m.queues[2 * qi + 1];
      let delivered = false;
      for (const g of res.groups) {
        if (!sameBytes(g.nameBytes, 0, g.nameBytes.length, b, qs, qe)) continue;
        const sub = pickByWeight(g);
        if (sub === null) break;
        const t = sub.thread;
        if (this.targetPlain[t] === 0 && this.targetGroups[t].length === 0) targets[nt++] = t;
        this.targetGroups[t].push(qs, qe);
        delivered = true;
        break;
      }
      if (delivered || this.wording.noBounce === true) continue;
      if (scope !== null) {
        // The role decides where a group no thread serves goes (leaf nodes: another leaf).
        this.unserved.push(qs, qe);
        continue;
      }
      // Queue bounce: the group has no member here any more; hand the message to a peer
      // that still has one (possibly the sender), as nats-server does.
      bounce ??= this.outCache.get(b, m.ss, m.se);
      for (const g of bounce.groups) {
        if (!sameBytes(g.nameBytes, 0, g.nameBytes.length, b, qs, qe)) continue;
        const sub = pickByWeight(g);
        if (sub === null) break;
        if (!sub.peer.targetQueued) this.bounceRoutes.push(sub.peer);
        sub.peer.targetQueued = true;
        sub.peer.targetGroups.push(qs, qe);
        break;
      }
    }
    for (let i = 0; i < nt; i++) {
      const t = targets[i];
      // (A dead thread's records are dropped when the read's records are committed: mesh.flush.)
      this.toThread(r, t, this.targetPlain[t] === 1, this.targetGroups[t], m, res);
      this.targetPlain[t] = 0;
      if (this.targetGroups[t].length !== 0) this.targetGroups[t].length = 0;
    }
    if (scope !== null) {
      scope.relay(r, m, this.unserved);
      if (this.unserved.length !== 0) this.unserved.length = 0;
      return;
    }
    if (this.bounceRoutes.length > 0) {
      for (const peer of this.bounceRoutes) {
        peer.outMsgs++;
        peer.outBytes += m.pe - m.ps;
        peer.writeMsg(m, peer.targetGroups, peer.targetGroups.length >> 1);
        peer.targetQueued = false;
        peer.targetGroups.length = 0;
      }
      this.bounceRoutes = [];
    }
  }

  /**
   * Stage one record for thread `t`, its queue-group names [start, end) pairs in `m.sb`;
   * committed when this read is done (flushAll). `key` stands for the subject (its interest
   * entry): a stream's plain messages to a client worker join one run (threads/record.ts).
   */
  private toThread(from: P, t: number, plain: boolean, groups: number[], m: MsgView, key: object | null): void {
    const flags = plain ? FLAG_PLAIN : 0;
    const nGroups = groups.length >> 1;
    if (m.os >= 0 && this.originTo[t]) {
      // A message from a leaf (or a route's LMSG): the route or leaf thread is told its origin.
      let nameBytes = 4 + m.oe - m.os;
      for (let i = 0; i < nGroups; i++) nameBytes += groups[2 * i + 1] - groups[2 * i];
      let p = this.records.begin(t, m, flags | FLAG_ORIGIN, 0, nGroups, nameBytes);
      for (let i = 0; i < nGroups; i++) p = this.records.name(p, m.sb, groups[2 * i], groups[2 * i + 1]);
      this.records.end(this.records.origin(p, m.ob, m.os, m.oe), m);
    } else if (nGroups === 0) {
      if (plain && key !== null && this.runTo[t]) this.records.plain(t, m, 0, key);
      else this.records.msg(t, m, flags, 0);
    } else {
      let nameBytes = 0;
      for (let i = 0; i < nGroups; i++) nameBytes += groups[2 * i + 1] - groups[2 * i];
      let p = this.records.begin(t, m, flags, 0, nGroups, nameBytes);
      for (let i = 0; i < nGroups; i++) p = this.records.name(p, m.sb, groups[2 * i], groups[2 * i + 1]);
      this.records.end(p, m);
    }
    this.stats.stats.crossSent++;
    const mesh = this.mesh;
    if (mesh.full) {
      // Records for `t` already wait for space: stop reading this peer until they are in.
      mesh.full = false;
      this.paused.add(from);
      this.stats.stats.ringFull++;
    }
  }

  /** Write what the peers have queued (once per read or drain batch). */
  flushPeers(): void {
    const dirty = this.dirty;
    for (let i = 0; i < dirty.length; i++) dirty[i].flush();
    dirty.length = 0;
  }

  /** Write what peers have queued, commit records to other threads, publish our interest log. */
  flushAll(): void {
    // Records first: a PONG written to a peer must not overtake the messages its read handed
    // to other threads (a client PING there may follow our PONG).
    this.mesh.flush();
    this.flushPeers();
    this.stats.publish(this.conns, this.peerList.size, this.peers.size);
    if (this.paused.size > 0) for (const r of this.paused) if (!r.closed) r.socket.pause();
  }

  /**
   * Mesh: this pass's interest is replayed. Announce it now, ahead of the pass's records, so
   * a peer gets the RS+ for a reply inbox before the RMSG of the request that uses it.
   */
  afterInterest(): void {
    this.announcePending();
  }

  /** Mesh: all rings drained for now. */
  afterDrain(): void {
    this.stallAskedCid = 0;
    this.announcePending();
    this.flushPeers();
    this.stats.publish(this.conns, this.peerList.size, this.peers.size);
  }

  /** Mesh: the overflow to other threads is gone: read the peers we stopped reading. */
  onSpace(): void {
    for (const r of this.paused) if (!r.closed) r.socket.resume();
    this.paused.clear();
  }

  /** The timers of every connection (one sweep for all), then what they produced. */
  private sweep(): void {
    const now = Date.now();
    for (const r of this.conns) r.tick(now);
    this.mesh.pruneStalls(now);
    this.flushAll();
    this.mesh.kick();
  }

  /** Close every connection (server shutdown), writing what they have queued. */
  shutdown(): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.flushAll();
    for (const r of [...this.conns]) r.close(CloseReason.serverShutdown, true);
    this.mesh.stop();
  }
}

/** Set (`without` >= 0) or forget (-1) one origin's entry of a key; returns what it was (null: none). */
function setWithout(map: Map<string, Map<string, number>>, key: string, origin: string, without: number): number | null {
  let m = map.get(key);
  const was = m?.get(origin) ?? null;
  if (without >= 0) {
    if (m === undefined) {
      m = new Map();
      map.set(key, m);
    }
    m.set(origin, without);
  } else if (m !== undefined) {
    m.delete(origin);
    if (m.size === 0) map.delete(key);
  }
  return was;
}
