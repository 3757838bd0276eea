// The per-worker message router. Owns this worker's connections and its sublist, which
// holds local subscriptions plus the interest of every other worker (replayed from their
// interest logs). A PUB is matched once: local subscribers get MSG bytes appended to their
// output buffers; each other worker with interest gets one record in the ring to it.
// Output and rings are flushed once per read, never per message.
//
// Runs on one worker thread; nothing here is shared except through threads/ring.ts/interest.ts.

import type { Socket } from 'node:net';
import { Sublist } from './sublist.ts';
import { ClientConn, type ClientHost, type Sub } from '../conn/client.ts';
import { CloseReason, ZERO_COPY_MIN_BYTES } from '../conn/base.ts';
import { inThreadReadBuffer } from '../conn/read-buffer.ts';
import { Mesh, type MeshHandler } from '../threads/mesh.ts';
import { DirectDelivery } from './direct.ts';
import type { DirectTarget } from '../threads/direct.ts';
import { isGatewayRouted, subjectMatches } from '../protocol/subject.ts';
import {
  fnv,
  sameBytes,
  sameBytesDV,
  put,
  putDV,
  viewOf,
  msgTailLength,
  putMsgTail,
  putMsgLineEnd,
  SUBJECT_ENCODING,
  shown,
} from '../protocol/bytes.ts';
import { FLAG_PLAIN, RecordKind, RecordWriter, readRecord, readRunEntry } from '../threads/record.ts';
import { ThreadRole } from '../threads/roles.ts';
import { MsgView } from '../protocol/msg-view.ts';
import { InterestOp, type InterestRecord } from '../threads/interest.ts';
import type { SharedLayout } from '../threads/shared.ts';
import { ThreadCounters } from '../threads/shared.ts';
import { updateOptionsInPlace, type Options } from '../config/options.ts';
import type { ServerIdentity } from '../protocol/info.ts';
import { clientInfoJson, clientInfoParts, clientInfoFrom, type ClientInfoParts } from '../protocol/info.ts';
import { ThreadStats } from '../monitor/stats.ts';
import { isTrace, log, reconfigureLog, reopenLog } from '../log.ts';
import { ClientAuthenticator, CredentialChecker } from '../conn/auth.ts';

interface Group {
  readonly name: string;
  readonly nameBytes: Buffer;
  readonly local: Sub[];
  readonly remote: Sub[];
  /** Per entry of `remote`: its members to write to directly (direct.ts), or null. */
  readonly remoteDirect: (DirectTarget[] | null)[];
  readonly remoteWeight: number;
}

/** Messages waiting aside for one backed-up subscriber, in order (see Broker.defer). */
class Deferred {
  private readonly chunks: Buffer[] = [];
  private last: Buffer | null = null;
  private lastLen = 0;
  bytes = 0;
  /** A 'drain' listener is registered. */
  waiting = false;
  /** The next refill step is scheduled (setImmediate). */
  stepping = false;

  append(src: Buffer, s: number, e: number): void {
    const n = e - s;
    if (this.last === null || this.lastLen + n > this.last.length) {
      if (this.last !== null) this.chunks.push(this.last.subarray(0, this.lastLen));
      this.last = Buffer.allocUnsafe(Math.max(64 * 1024, n));
      this.lastLen = 0;
    }
    src.copy(this.last, this.lastLen, s, e);
    this.lastLen += n;
    this.bytes += n;
  }

  /** The oldest chunk (all of it). */
  shift(): Buffer {
    let b = this.chunks.shift();
    if (b === undefined) {
      b = this.last!.subarray(0, this.lastLen);
      this.last = null;
      this.lastLen = 0;
    }
    this.bytes -= b.length;
    return b;
  }
}

/** What a subject resolves to, derived from the sublist and cached by subject bytes. */
interface Route {
  gen: number;
  readonly hash: number;
  readonly key: Buffer;
  readonly keyView: DataView;
  next: Route | null;
  local: Sub[];
  remoteThreads: number[];
  /** Per thread of remoteThreads: its subscribers to write to directly (direct.ts), or null. */
  direct: (DirectTarget[] | null)[];
  groups: Group[];
}

const ROUTE_CACHE_MAX = 4096;
/** Bytes moved from aside into a slow subscriber's output per event-loop turn (see refill). */
const REFILL_STEP_BYTES = 1024 * 1024;
/** A remote stall not renewed for this long is dropped (see Broker.remoteStalled). */
const REMOTE_STALL_MAX_MS = 10_000;
const TARGET_LISTED = 1;
const TARGET_PLAIN = 2;
/**
 * The sweep (connection timers, write deadlines, backlogs; the mesh's safety net) runs every
 * SWEEP_MS while the worker has a connection or a backlog, every IDLE_SWEEP_MS otherwise: 64
 * idle workers sweeping ten times a second kept 14.5% of a core busy (2-core VM, the workers'
 * CPU ticks from /proc over 10 s, 30 s after ready: 145 -> 59).
 */
const SWEEP_MS = 100;
const IDLE_SWEEP_MS = 1000;
/** Longest stretch of new-connection set-up between two event-loop turns (enqueueConnection). */
const ARRIVAL_SLICE_MS = 2;
const MSG_ = Buffer.from('MSG ');
const HMSG_ = Buffer.from('HMSG ');
const EMPTY: Sub[] = Object.freeze([]) as unknown as Sub[];

/** `_GR_.<cluster hash>.<server hash>.` (gateway.go gwReplyPrefix) */
const GW_REPLY_PREFIX_LEN = 19;
const GW_REPLY_MAPPING_MS = 2000;
/** Past this many mappings, expired ones are swept (at most every GW_REPLIES_SWEEP_MS) when another is added. */
const GW_REPLIES_SWEEP = 1024;
const GW_REPLIES_SWEEP_MS = 250;

function isLiteral(subject: string): boolean {
  for (const t of subject.split('.')) if (t === '*' || t === '>') return false;
  return true;
}

/** A read that begins within this of the last one's end waits for the end of the pass to be written (endRead). */
const BUSY_GAP_MS = 0.05;

export class Broker implements MeshHandler, ClientHost {
  readonly opts: Options;
  readonly thread: number;
  readonly threads: number;
  readonly identity: ServerIdentity;
  /** Changes only by config reload. */
  authRequired: boolean;
  /** Credentials of CONNECTs (conn/auth.ts); bcrypt and nkey checks run on its hashing thread. Replaced by a config reload. */
  auth: ClientAuthenticator;
  private readonly checker = new CredentialChecker();
  readonly sublist = new Sublist<Sub>();
  readonly conns = new Set<ClientConn>();
  slowConsumers = 0;
  /**
   * Test hooks (SKEIN_FAULT_INJECTION=1 only): a PUB to $SKEIN.FAULT.CRASH throws on this
   * worker; one to $SKEIN.FAULT.CRASH.ROUTE asks main (through `onRouteFault`) to make the
   * route thread throw.
   */
  faultInjection = false;
  /** The gateway thread (-1 without gateways): its queue interest counts only when the cluster has no member. */
  private readonly gatewayThread: number;
  onRouteFault: (() => void) | null = null;
  /** $SKEIN.FAULT.CRASH.GATEWAY: the gateway thread throws (tests only). */
  onGatewayFault: (() => void) | null = null;
  /** Likewise $SKEIN.FAULT.CRASH.LEAF, for the leaf thread. */
  onLeafFault: (() => void) | null = null;
  /** Monitoring counters (src/monitor/stats.ts), published once per batch in flushAll. */
  stats = ThreadStats.detached();
  /** Monitoring: sees each client connection as it closes (/connz?state=closed). */
  onClosed: ((conn: ClientConn) => void) | null = null;
  private readonly sockets = new Set<Socket>();

  private readonly dirty: ClientConn[] = [];
  /** flushAll is due at the end of this event-loop pass (endRead). */
  private flushQueued = false;
  /** When the last read ended (performance.now()). */
  private lastReadEnd = 0;
  private readonly endPass = (): void => {
    this.flushQueued = false;
    this.flushAll();
  };
  private readonly routes = new Map<number, Route>();
  private routeCount = 0;

  /** Rings, interest logs and doorbells shared with the other threads. */
  private readonly mesh: Mesh;
  private readonly counters: ThreadCounters;
  private readonly remote = new Map<string, Sub>();
  private readonly localAgg = new Map<string, number>();
  /** Publishers paused because a ring to another thread is full. */
  private readonly ringPaused = new Set<ClientConn>();
  /** Connections whose input is held at a PING/UNSUB until their barrier can pass. */
  private readonly held = new Set<ClientConn>();
  /** Publishers paused because a subscriber they feed is backed up. */
  private readonly stalledPublishers = new Set<ClientConn>();
  /**
   * Publishers another thread asked us to stall (ms, and when it last asked): until it
   * releases them, each gets one read per stall period (nats-server lets a stalled producer
   * through one message per period), so a burst never follows a stall that ran out.
   */
  private readonly remoteStalled = new Map<ClientConn, { ms: number; at: number }>();
  /** Publishers not read until these threads' inboxes have taken most of what waits there (see holdFlood). */
  private readonly floodPaused = new Map<ClientConn, number[]>();
  /** A backed-up subscriber hit by a delivery in the current read or record. */
  private hitStall: ClientConn | null = null;
  private readonly byCid = new Map<number, ClientConn>();
  /** Most bytes that may wait aside for one subscriber (see defer). */
  private readonly maxDeferredBytes: number;
  /**
   * Bytes waiting in another thread's inbox past which a publisher feeding it is not read (see
   * holdFlood): a quarter of an inbox (1 MiB up to 8 threads). A bound of 256 KiB with reads
   * of 256 KiB paused and resumed a publisher across workers after nearly every read:
   * measured alternating on the 2-core VM, `-w2` 1->1 16 B 2.3-2.9 -> 3.3-4.7 M msgs/s,
   * 1 KiB 400-423 k -> 481-618 k, 4 KiB 101-132 k -> 139-174 k.
   */
  private readonly floodBound: number;
  /** Messages from other threads waiting aside for backed-up subscribers (see defer). */
  private readonly deferred = new Map<ClientConn, Deferred>();
  /** Delivering an inbox record (not a publish read here). */
  private inRecord = false;

  // Per-publish scratch (reused, never reallocated on the hot path).
  // Threads a message goes to: flags per thread (TARGET_LISTED, TARGET_PLAIN), the list of
  // them, and the queue groups picked on each (counts kept apart: no array length writes,
  // which V8 does in its runtime, per message).
  private readonly targetFlags: Uint8Array;
  private readonly targetList: Int32Array;
  private targetCount = 0;
  private readonly targetGroups: Group[][];
  private readonly targetGroupCount: Int32Array;
  /** Per thread, per group picked there: the members of the picked entry to write to directly, or null. */
  private readonly targetPicks: (DirectTarget[] | null)[][];
  /** The member chosen per group (sendDirect). */
  private readonly directChosen: DirectTarget[] = [];
  /** 1 for the threads that take run records (client workers). */
  private readonly runTargets: Uint8Array;
  /** The view of the record being delivered (a publish comes with the parser's view). */
  private readonly rec = new MsgView();
  /**
   * Replies of requests from other clusters, as this worker's clients saw them (the `_GR_.`
   * prefix stripped): reply → the routed form and when (gateway.go: the mapping lives 2 s).
   * A client's publish to one goes back to that cluster's gateway only.
   */
  private readonly gwReplies = new Map<string, { routed: Buffer; at: number }>();
  private readonly gwView = new MsgView();
  private gwRepliesSweptAt = 0;
  private lastRecordRoute: Route | null = null;
  private readonly records: RecordWriter;
  /** Writing other workers' subscribers' sockets from here (direct.ts); null with one worker. */
  private readonly direct: DirectDelivery | null;

  private sweepTimer: NodeJS.Timeout | null = null;
  private started = false;
  private sweepPace = 0;
  private shuttingDown = false;
  /** The leaf thread (-1: none): its queue members serve a group only when it has no other (nats-server). */
  private readonly leafThread: number;

  constructor(opts: Options, identity: ServerIdentity, layout: SharedLayout, thread: number, replacement: boolean) {
    this.opts = opts;
    this.identity = identity;
    this.thread = thread;
    this.threads = layout.threads;
    this.leafThread = layout.leafThread;
    this.auth = new ClientAuthenticator(opts, this.checker);
    this.authRequired = this.auth.required;
    const n = layout.threads;
    this.targetGroups = [];
    for (let t = 0; t < n; t++) this.targetGroups.push([]);
    this.targetPicks = [];
    for (let t = 0; t < n; t++) this.targetPicks.push([]);
    this.targetFlags = new Uint8Array(n);
    this.targetList = new Int32Array(n);
    this.targetGroupCount = new Int32Array(n);
    this.runTargets = Uint8Array.from(layout.roles, (role) => (role === ThreadRole.worker ? 1 : 0));
    this.counters = new ThreadCounters(layout.counters, thread);
    this.maxDeferredBytes = Math.max(opts.maxPending, 4 * layout.inboxCapacity);
    this.floodBound = layout.inboxCapacity >>> 2;
    this.mesh = new Mesh(layout, thread, replacement);
    this.gatewayThread = layout.gatewayThread;
    this.mesh.bind(this);
    this.records = new RecordWriter(this.mesh);
    this.direct = DirectDelivery.create(this.mesh, thread, layout.workers, layout.direct, {
      markDirty: (c) => this.markDirty(c),
      routesChanged: () => this.sublist.touch(),
      countOut: (msgs, bytes) => {
        this.stats.outMsgs += msgs;
        this.stats.outBytes += bytes;
        this.stats.directSent += msgs;
      },
      toGroup: (m, q, qs, qe) => this.toGroup(m, q, qs, qe),
      appended: (c, startRel) => this.appended(c, startRel),
    });
  }

  start(): void {
    this.started = true;
    this.paceSweep(IDLE_SWEEP_MS);
    this.mesh.start(this);
  }

  // ---------------------------------------------------------- connections

  /**
   * A socket handed over by the main thread. Connections are set up (ClientConn, listeners,
   * INFO, the first write) in slices of at most ARRIVAL_SLICE_MS between event-loop turns,
   * so a burst of new connections cannot hold up the established ones: their reads are
   * handled in the poll phase between two slices (nats-server's goroutines get the same
   * fairness from its scheduler).
   */
  enqueueConnection(socket: Socket, cid: number, reject: boolean): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.arriving.push({ socket, cid, reject });
    if (!this.arrivalScheduled) {
      this.arrivalScheduled = true;
      setImmediate(this.setUpArrivals);
    }
  }

  private readonly arriving: { socket: Socket; cid: number; reject: boolean }[] = [];
  private arrivingHead = 0;
  private arrivalScheduled = false;

  private readonly setUpArrivals = (): void => {
    this.arrivalScheduled = false;
    const until = performance.now() + ARRIVAL_SLICE_MS;
    const q = this.arriving;
    while (this.arrivingHead < q.length) {
      const a = q[this.arrivingHead];
      q[this.arrivingHead++] = undefined as unknown as (typeof q)[number];
      if (this.shuttingDown || a.socket.destroyed) a.socket.destroy();
      else this.addConnection(a.socket, a.cid, a.reject);
      if (performance.now() >= until) break;
    }
    if (this.arrivingHead === q.length) {
      q.length = 0;
      this.arrivingHead = 0;
    } else if (!this.arrivalScheduled) {
      this.arrivalScheduled = true;
      setImmediate(this.setUpArrivals);
    }
  };

  addConnection(socket: Socket, cid: number, reject: boolean): void {
    const conn = new ClientConn(this, socket, cid);
    this.conns.add(conn);
    this.paceSweep(SWEEP_MS);
    this.byCid.set(cid, conn);
    if (!this.sockets.has(socket)) {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    }
    // The main thread counted this connection when it handed it over; we count it out.
    log.debug(`${conn.logPrefix()} - Client connection created on worker ${this.thread}`);
    if (this.opts.tls !== undefined && !reject) {
      // INFO in plaintext, then the handshake, here on the worker that owns the socket.
      conn.startTls(this.infoFor(conn), this.opts.tls);
      return;
    }
    conn.start(this.infoFor(conn));
    if (reject) {
      log.error(`${conn.logPrefix()} - maximum connections exceeded`);
      conn.sendErr('maximum connections exceeded');
      conn.close(CloseReason.maxConnectionsExceeded, true);
    }
  }

  removeConnection(conn: ClientConn): void {
    if (!this.conns.delete(conn)) return;
    this.direct?.closed(conn);
    this.byCid.delete(conn.cid);
    this.counters.addConnections(-1);
    this.onClosed?.(conn);
    this.ringPaused.delete(conn);
    this.held.delete(conn);
    this.remoteStalled.delete(conn);
    this.floodPaused.delete(conn);
    if (this.deferred.delete(conn)) this.releaseRemoteStalls(); // a slow consumer cut off
    for (const sub of conn.subs.values()) this.unsubscribe(sub);
    conn.subs.clear();
    this.stats.publish(this.sublist.size - this.remote.size, this.slowConsumers);
  }

  /** The INFO JSON around client_id/client_ip/nonce, built once (again after updateInfo, reload, lame duck). */
  private infoParts: ClientInfoParts | null = null;

  infoFor(conn: ClientConn): string {
    this.infoParts ??= clientInfoParts(this.identity, this.opts, this.authRequired);
    return clientInfoFrom(this.infoParts, conn.cid, conn.remoteAddr, conn.nonce);
  }

  /** A socket that must be closed before this worker may stop (a TLS socket wrapping an accepted one). */
  trackSocket(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /**
   * An INFO owed to a client at its first PING: nats-server sends cluster URL changes only
   * to protocol >= 1 clients that have had their first PONG, and owes the rest one then.
   */
  pendingAsyncInfo(conn: ClientConn): string | null {
    if (!conn.infoOwed || conn.protocol < 1) return null;
    conn.infoOwed = false;
    return this.infoFor(conn);
  }

  /** Cluster name or client URLs changed: tell every client that understands async INFO. */
  updateInfo(cluster: string | undefined, connectUrls: string[] | undefined): void {
    this.identity.cluster = cluster;
    this.identity.connectUrls = connectUrls;
    this.infoParts = null;
    for (const c of this.conns) {
      if (c.closing) continue;
      if (c.protocol >= 1 && c.firstPongSent) c.queueString(this.infoFor(c));
      else c.infoOwed = true;
    }
    this.flushAll();
  }

  // ------------------------------------------------------------ operations

  /**
   * Config reload (control message from main): from now on run with `next`. Connections read
   * the options live, so limits, pings and deadlines apply at once; every client is checked
   * against the new authorization and permissions (reload.go reloadAuthorization), and
   * `closeExcess` of the newest ones are closed when max_connections went down.
   */
  reload(next: Options, closeExcess: number): void {
    const payloadChanged = next.maxPayload !== this.opts.maxPayload;
    // In place: every connection holds this object.
    updateOptionsInPlace(this.opts, next);
    reconfigureLog(next, `worker ${this.thread}`);
    this.auth = new ClientAuthenticator(next, this.checker);
    this.authRequired = this.auth.required;
    this.infoParts = null;
    const tracing = isTrace();
    for (const c of this.conns) {
      c.tracing = tracing;
      if (tracing) this.direct?.disable(c);
      // client.go processPing: a client that has not had its first PONG gets an INFO with
      // the new max_payload then.
      if (payloadChanged && !c.firstPongSent) c.infoOwed = true;
      c.reloadAuthorization();
    }
    if (closeExcess > 0) {
      const newest = [...this.conns].filter((c) => !c.closing).slice(-closeExcess);
      for (const c of newest) c.maxConnectionsExceeded();
    }
    this.flushAll();
  }

  /** SIGUSR1: reopen this thread's log file descriptor. */
  reopenLog(): void {
    reopenLog(`worker ${this.thread}`);
  }

  /**
   * Lame duck mode (server.go sendLDMToClients): clients that take async INFO get one with
   * `ldm:true` and only the other servers' URLs; later INFOs leave this server out too.
   */
  lameDuck(otherUrls: string[]): void {
    this.identity.connectUrls = otherUrls;
    this.infoParts = null;
    const ldmIdentity: ServerIdentity = { ...this.identity, connectUrls: otherUrls, lameDuckMode: true };
    for (const c of this.conns) {
      if (c.closing || c.protocol < 1 || !c.firstPongSent) continue;
      c.queueString(clientInfoJson(ldmIdentity, this.opts, this.authRequired, c.cid, c.remoteAddr));
    }
    this.flushAll();
  }

  /**
   * Lame duck mode after the grace period: close every client, one at a time, spread over
   * `windowMs` (each pause a random time between half and all of the interval, as
   * server.go lameDuckMode). No -ERR: the reason is Server Shutdown.
   */
  closeClientsSpread(windowMs: number): void {
    const clients = [...this.conns];
    if (clients.length === 0) return;
    const intervalMs = windowMs / clients.length;
    const closeNext = (i: number): void => {
      const c = clients[i];
      if (!c.closing) c.close(CloseReason.serverShutdown, true);
      if (i + 1 >= clients.length) return;
      const pause = intervalMs / 2 + Math.random() * (intervalMs / 2);
      setTimeout(() => closeNext(i + 1), pause).unref();
    };
    closeNext(0);
  }

  /** Called for every PUB while fault injection is on (tests only). */
  faultHook(subject: string): void {
    if (subject === '$SKEIN.FAULT.CRASH') {
      setImmediate(() => {
        throw new Error('fault injection: worker crash requested');
      });
    } else if (subject === '$SKEIN.FAULT.CRASH.ROUTE') {
      this.onRouteFault?.();
    } else if (subject === '$SKEIN.FAULT.CRASH.GATEWAY') {
      this.onGatewayFault?.();
    } else if (subject === '$SKEIN.FAULT.CRASH.LEAF') {
      this.onLeafFault?.();
    } else if (subject === '$SKEIN.FAULT.BUSY') {
      // The worker does nothing else for a second, as a thread the OS does not run for that
      // long on a loaded host: its inbox fills while the other threads go on.
      setImmediate(() => {
        const until = Date.now() + 1000;
        while (Date.now() < until);
      });
    }
  }

  markDirty(conn: ClientConn): void {
    this.dirty.push(conn);
  }

  onData(conn: ClientConn, chunk: Buffer): void {
    if (conn.closed) return;
    conn.lastInboundAt = Date.now();
    this.process(conn, chunk);
  }

  /** Parse one read (or, with null, the input held at a barrier) and write what it produced. */
  private process(conn: ClientConn, chunk: Buffer | null): void {
    const mesh = this.mesh;
    const begun = performance.now();
    // Records that arrived meanwhile first (no wake-up needed while we are busy anyway; a
    // stall request for this publisher takes effect before its next read).
    mesh.drainPending();
    mesh.applyInterest();
    mesh.mark();
    if (this.direct !== null) this.direct.read(chunk === null ? 0 : chunk.length);
    const inMsgs = conn.inMsgs;
    const inBytes = conn.inBytes;
    try {
      // Before an authenticating CONNECT, input goes through the connection's gate, which
      // holds it while the CONNECT's credentials are checked off this thread.
      if (chunk === null) conn.parser.resume();
      else if (conn.awaitingConnect || conn.gate.waiting) conn.gate.feed(chunk, conn.parseChunk, conn.isAwaitingConnect);
      else conn.parser.parse(chunk);
    } catch (err) {
      // One connection's bad luck must not take the worker down with it.
      log.error(`${conn.logPrefix()} - internal error processing input: ${(err as Error).stack}`);
      conn.close(CloseReason.internalError, false);
    }
    this.stats.inMsgs += conn.inMsgs - inMsgs;
    this.stats.inBytes += conn.inBytes - inBytes;
    this.endRead(begun);
    // Records of this read wait for inbox space: read no more of it until they are in.
    if (mesh.blockedSinceMark() && !conn.closed && !this.ringPaused.has(conn)) {
      this.ringPaused.add(conn);
      conn.pausedForRing = true;
      conn.updateReading();
    }
    if (this.hitStall !== null) {
      if (this.hitStall !== conn) this.stallPublisher(conn, this.hitStall.stallMs());
      this.hitStall = null;
    }
    if (this.remoteStalled.size > 0 && !conn.pausedForStall) {
      // A publisher stalled for another thread's subscriber had its one read: wait again.
      const rs = this.remoteStalled.get(conn);
      if (rs !== undefined) this.stallPublisher(conn, rs.ms);
    }
    if (!conn.closed && !conn.pausedForFlood) this.holdFlood(conn);
  }

  /**
   * A publisher had a read: if an inbox it fed now holds more than floodBound, read no
   * more of it until that consumer has taken them (it rings us). A consumer that falls behind (a
   * thread the OS does not run for a while on a loaded host, or one setting a flood aside for a
   * slow subscriber) would otherwise let a flooding publisher fill its inbox (4 MiB), and every
   * record behind the flood, for any connection, waits for all of it to be taken (issue 10 §5).
   * Held here, the flood waits in the publisher's own socket, as nats-server's readloop would, and
   * what other publishers send goes in behind at most floodBound and one read of it. A
   * consumer that keeps up never has that much waiting: nobody is held.
   */
  private holdFlood(conn: ClientConn): void {
    const threads = this.mesh.crowdedSinceMark(this.floodBound);
    if (threads === null) return;
    this.floodPaused.set(conn, threads);
    conn.pausedForFlood = true;
    conn.updateReading();
  }

  /** Let held publishers go on once the inboxes they fed took their flood (after a drain pass, and from the sweep). */
  private releaseFloods(): void {
    for (const [conn, threads] of this.floodPaused) {
      let crowded = false;
      for (const t of threads) if (this.mesh.crowded(t, this.floodBound)) crowded = true;
      if (crowded && !conn.closed) continue;
      this.floodPaused.delete(conn);
      conn.pausedForFlood = false;
      conn.updateReading();
    }
  }

  // ------------------------------------------------------------ barriers

  /**
   * Before `conn`'s PING or UNSUB is acted on: everything that happened before it in this
   * server must be delivered first, as in one nats-server process (issue 10 §1). Our side:
   * the records of its earlier PUBs are committed to their consumers' rings (a PONG never
   * overtakes them); if some still wait for ring space, the input is held at this operation
   * until they are in. Their side: records other threads committed to us by now are
   * delivered before the PONG is queued and before the UNSUB removes a subscription.
   */
  barrier(conn: ClientConn): boolean {
    const mesh = this.mesh;
    if (this.direct !== null && this.direct.pending) this.direct.flush();
    mesh.flush();
    // A backed-up subscriber's messages waiting aside go out before its PONG.
    let pass = !this.ringPaused.has(conn) && !mesh.blockedSinceMark() && mesh.interestPublished() && !this.deferred.has(conn);
    if (pass) {
      // Stalls found while delivering records go to their publishers (onRecord), not to
      // this connection: keep what this read's own publishes found.
      const stalled = this.hitStall;
      pass = mesh.drainCommitted();
      this.hitStall = stalled;
    }
    if (!pass) {
      this.held.add(conn);
      conn.pausedForBarrier = true;
      conn.updateReading();
    }
    return pass;
  }

  /** Give connections held at a barrier another try (after a drain pass, or from the sweep). */
  private releaseHeld(): void {
    for (const conn of [...this.held]) {
      if (conn.closed) {
        this.held.delete(conn);
        continue;
      }
      if (this.ringPaused.has(conn) || this.deferred.has(conn)) continue; // not yet (onSpace, refill)
      this.held.delete(conn);
      this.process(conn, null);
      if (!conn.parser.held) {
        conn.pausedForBarrier = false;
        conn.updateReading();
      }
    }
  }

  // ------------------------------------------------------- subscriptions

  subscribe(conn: ClientConn, subject: string, queue: string | null, sid: string): Sub {
    const sub: Sub = {
      subject,
      queue,
      sid,
      sidBytes: Buffer.from(sid, SUBJECT_ENCODING),
      conn,
      thread: -1,
      weight: 1,
      delivered: 0,
      max: 0,
      removed: false,
      denyFilter: null,
      prefix: null,
      prefixView: null,
      directIndex: -1,
    };
    if (isLiteral(subject)) {
      const prefix = Buffer.from(`${subject} ${sid}`, SUBJECT_ENCODING);
      Object.assign(sub, { prefix, prefixView: viewOf(prefix) });
    }
    this.sublist.insert(sub);
    const key = queue === null ? subject : `${subject}\u0000${queue}`;
    const count = (this.localAgg.get(key) ?? 0) + 1;
    this.localAgg.set(key, count);
    if (queue !== null || count === 1) this.publishInterest(subject, queue, queue === null ? 1 : count);
    this.direct?.subscribed(sub);
    return sub;
  }

  unsubscribe(sub: Sub): void {
    if (sub.removed) return;
    sub.removed = true;
    this.sublist.remove(sub);
    const key = sub.queue === null ? sub.subject : `${sub.subject}\u0000${sub.queue}`;
    const count = (this.localAgg.get(key) ?? 1) - 1;
    if (count <= 0) this.localAgg.delete(key);
    else this.localAgg.set(key, count);
    if (sub.queue !== null || count <= 0) this.publishInterest(sub.subject, sub.queue, Math.max(count, 0));
    this.direct?.unsubscribed(sub);
  }

  /** Before an UNSUB with a max looks at what `sub` was delivered (direct.ts counts some elsewhere). */
  settleSub(sub: Sub): void {
    this.direct?.settle(sub);
  }

  /** `conn` got permissions (a reload): its subscribers take no direct deliveries from now on. */
  noDirect(conn: ClientConn): void {
    this.direct?.disable(conn);
  }

  /** Monitoring: what other workers delivered here directly, into the counters. */
  foldDirect(): void {
    this.direct?.foldAll();
  }

  /** MeshHandler: who on thread `t` takes direct deliveries for a subject. */
  onDirect(t: number, rec: InterestRecord): void {
    this.direct?.onDirect(t, rec);
  }

  private publishInterest(subject: string, queue: string | null, weight: number): void {
    this.mesh.publishInterest(subject, queue, weight);
  }

  /** Aggregated local interest, for a replacement thread's snapshot. */
  interestSnapshot(): { position: number; entries: [string, string | null, number][] } {
    const position = this.mesh.snapshotPosition();
    const entries: [string, string | null, number][] = [];
    for (const [key, count] of this.localAgg) {
      const z = key.indexOf('\u0000');
      if (z < 0) entries.push([key, null, 1]);
      else entries.push([key.slice(0, z), key.slice(z + 1), count]);
    }
    return { position, entries };
  }

  applySnapshot(from: number, position: number, entries: [string, string | null, number][]): void {
    this.dropRemoteInterest(from);
    for (const [subject, queue, weight] of entries) this.applyRemote(from, { op: InterestOp.set, subject, queue, weight });
    this.mesh.snapshotApplied(from, position);
  }

  /** MeshHandler: another thread's interest changed. */
  onInterest(t: number, rec: InterestRecord): void {
    this.applyRemote(t, rec);
  }

  private applyRemote(t: number, rec: InterestRecord): void {
    if (rec.op === InterestOp.reset) {
      this.dropRemoteInterest(t);
      return;
    }
    const key = `${t}\u0000${rec.subject}\u0000${rec.queue ?? ''}`;
    const existing = this.remote.get(key);
    if (existing !== undefined) {
      this.sublist.remove(existing);
      this.remote.delete(key);
    }
    if (rec.weight > 0) {
      const sub: Sub = {
        subject: rec.subject,
        queue: rec.queue,
        sid: '',
        sidBytes: Buffer.alloc(0),
        conn: null,
        thread: t,
        weight: rec.weight,
        delivered: 0,
        max: 0,
        removed: false,
        denyFilter: null,
        prefix: null,
        prefixView: null,
        directIndex: -1,
      };
      this.sublist.insert(sub);
      this.remote.set(key, sub);
    }
  }

  private dropRemoteInterest(t: number): void {
    this.direct?.dropThread(t);
    const prefix = `${t}\u0000`;
    for (const [key, sub] of this.remote) {
      if (key.startsWith(prefix)) {
        this.sublist.remove(sub);
        this.remote.delete(key);
      }
    }
  }

  // ------------------------------------------------------------ routing

  /**
   * `cached` if it is the route for b[s, e) (refreshed when the sublist moved on), else a lookup.
   * Streams repeat their subject, so the cached one is tried first: compared in words through
   * `v` where a DataView spans `b` with the same offsets, byte by byte where `v` is null.
   */
  private routeFor(cached: Route | null, b: Uint8Array, v: DataView | null, s: number, e: number): Route {
    if (cached === null || !(v !== null ? sameBytesDV(cached.keyView, v, s, e) : sameBytes(cached.key, b, s, e)))
      return this.lookup(b, s, e);
    if (cached.gen !== this.sublist.generation) this.resolve(cached, this.sublist.generation);
    return cached;
  }

  private lookup(b: Uint8Array, s: number, e: number): Route {
    const h = fnv(b, s, e);
    const gen = this.sublist.generation;
    let r = this.routes.get(h) ?? null;
    while (r !== null && !sameBytes(r.key, b, s, e)) r = r.next;
    if (r !== null) {
      if (r.gen !== gen) this.resolve(r, gen);
      return r;
    }
    if (this.routeCount >= ROUTE_CACHE_MAX) {
      this.routes.clear();
      this.routeCount = 0;
    }
    const key = Buffer.from(b.subarray(s, e));
    r = {
      gen,
      hash: h,
      key,
      keyView: viewOf(key),
      next: this.routes.get(h) ?? null,
      local: EMPTY,
      remoteThreads: [],
      direct: [],
      groups: [],
    };
    this.routes.set(h, r);
    this.routeCount++;
    this.resolve(r, gen);
    return r;
  }

  private resolve(r: Route, gen: number): void {
    const m = this.sublist.match(r.key.toString(SUBJECT_ENCODING));
    const local: Sub[] = [];
    const threads = new Set<number>();
    for (const s of m.psubs) {
      if (s.thread < 0) local.push(s);
      else threads.add(s.thread);
    }
    const direct: (DirectTarget[] | null)[] = [];
    if (this.direct !== null) {
      for (const t of threads) {
        const patterns: string[] = [];
        for (const s of m.psubs) if (s.thread === t) patterns.push(s.subject);
        direct.push(this.direct.targetsFor(t, patterns));
      }
    }
    const groups: Group[] = [];
    const gateway = this.gatewayThread;
    for (const g of m.qgroups) {
      const gl: Sub[] = [];
      const gr: Sub[] = [];
      let w = 0;
      let viaGateway: Sub | null = null;
      // A leaf connection's member is used only when there is no other (leafnode.go: a
      // client's message picks local and route members first; a gateway's comes after both).
      const leaf = this.leafThread;
      const others = leaf < 0 ? true : g.members.some((s) => s.thread !== leaf && (s.thread !== gateway || gateway < 0));
      for (const s of g.members) {
        if (s.thread < 0) gl.push(s);
        else if (s.thread === gateway) viaGateway = s;
        else if (s.thread !== leaf || !others) {
          gr.push(s);
          w += s.weight;
        }
      }
      // gateway.go: a queue group is served inside the cluster (here or over a route) first;
      // only a group with no member in the cluster goes to a gateway (which picks the nearest).
      if (viaGateway !== null && gl.length === 0 && gr.length === 0) {
        gr.push(viaGateway);
        w += viaGateway.weight;
      }
      const gd = this.direct === null ? [] : gr.map((s) => this.direct!.targetsFor(s.thread, [s.subject], g.name));
      groups.push({
        name: g.name,
        nameBytes: Buffer.from(g.name, SUBJECT_ENCODING),
        local: gl,
        remote: gr,
        remoteDirect: gd,
        remoteWeight: w,
      });
    }
    r.local = local.length > 0 ? local : EMPTY;
    r.remoteThreads = [...threads];
    r.direct = direct;
    r.groups = groups;
    r.gen = gen;
  }

  /** A request from another cluster: its client sees the plain reply; the mapping is kept for the answer. */
  private stripGatewayReply(m: MsgView): void {
    const now = Date.now();
    if (this.gwReplies.size >= GW_REPLIES_SWEEP && now - this.gwRepliesSweptAt > GW_REPLIES_SWEEP_MS) {
      this.gwRepliesSweptAt = now;
      for (const [k, e] of this.gwReplies) if (now - e.at > GW_REPLY_MAPPING_MS) this.gwReplies.delete(k);
    }
    const routed = Buffer.from(m.sb.subarray(m.rs, m.re));
    m.rs += GW_REPLY_PREFIX_LEN;
    m.ts = -1; // delivered field by field, with the plain reply
    this.gwReplies.set(m.sb.toString(SUBJECT_ENCODING, m.rs, m.re), { routed, at: now });
  }

  /**
   * A publish to a mapped reply: under its routed subject to the gateway thread, which sends it
   * to that cluster, and to the leaf thread, which sends it up to our hubs (client.go
   * handleGWReplyMap: gateways and gwLeafSubs, whatever the hub announced); nowhere else.
   */
  private publishGatewayReply(from: ClientConn, m: MsgView): boolean {
    const key = m.sb.toString(SUBJECT_ENCODING, m.ss, m.se);
    const e = this.gwReplies.get(key);
    if (e === undefined) return false;
    if (Date.now() - e.at > GW_REPLY_MAPPING_MS) {
      this.gwReplies.delete(key);
      return false;
    }
    const replyLen = m.rs >= 0 ? m.re - m.rs : 0;
    const buf = Buffer.allocUnsafe(e.routed.length + replyLen);
    e.routed.copy(buf, 0);
    if (replyLen > 0) m.sb.copy(buf, e.routed.length, m.rs, m.re);
    const v = this.gwView;
    v.sb = buf;
    v.ss = 0;
    v.se = e.routed.length;
    v.rs = replyLen > 0 ? e.routed.length : -1;
    v.re = replyLen > 0 ? buf.length : -1;
    v.pb = m.pb;
    v.ps = m.ps;
    v.pe = m.pe;
    v.hdr = m.hdr;
    v.ts = -1;
    if (this.gatewayThread >= 0) this.sendToThread(from, this.gatewayThread, true, [], 0, v);
    if (this.leafThread >= 0) this.sendToThread(from, this.leafThread, true, [], 0, v);
    return true;
  }

  /** Route one published message. Returns whether it went anywhere (for no-responders). */
  publish(from: ClientConn, m: MsgView): boolean {
    if (this.gwReplies.size > 0 && this.publishGatewayReply(from, m)) return true;
    const sb = m.sb;
    const ss = m.ss;
    const se = m.se;
    // The connection's last route first (the subject comes with a DataView when a PUB was read whole).
    const cached = from.lastRoute as Route | null;
    const r = this.routeFor(cached, sb, m.tb === sb ? m.tv : null, ss, se);
    if (r !== cached) from.lastRoute = r;
    let delivered = false;
    const local = r.local;
    for (let i = 0; i < local.length; i++) {
      const sub = local[i];
      if (sub.conn === from && !from.echo) continue;
      this.deliver(sub, m);
      delivered = true;
    }
    const rt = r.remoteThreads;
    if (r.groups.length === 0) {
      // No queue group: one plain record per thread with subscribers (the common crossing).
      for (let i = 0; i < rt.length; i++) this.sendPlain(from, rt[i], m, r, i);
      return delivered || rt.length > 0;
    }
    return this.publishToGroups(from, m, r) || delivered;
  }

  /**
   * publish() where the route has queue groups: one member of each, here or on another thread,
   * and one record per thread for its plain subscribers and picked members together. (Apart
   * from publish, so that the common path stays small enough for V8 to inline.)
   */
  private publishToGroups(from: ClientConn, m: MsgView, r: Route): boolean {
    let delivered = false;
    const rt = r.remoteThreads;
    const groups = r.groups;
    const flags = this.targetFlags;
    const targets = this.targetList;
    for (let i = 0; i < rt.length; i++) {
      const t = rt[i];
      if (flags[t] === 0) targets[this.targetCount++] = t;
      flags[t] = TARGET_LISTED | TARGET_PLAIN;
    }
    for (let gi = 0; gi < groups.length; gi++) {
      const g = groups[gi];
      const total = g.local.length + g.remoteWeight;
      let pick = Math.floor(Math.random() * total);
      if (pick < g.local.length) {
        // Start at a random member and take the first usable one (echo may exclude ours).
        let chosen: Sub | null = null;
        for (let k = 0; k < g.local.length; k++) {
          const sub = g.local[(pick + k) % g.local.length];
          if (sub.conn === from && !from.echo) continue;
          chosen = sub;
          break;
        }
        if (chosen !== null) {
          this.deliver(chosen, m);
          delivered = true;
          continue;
        }
        if (g.remoteWeight === 0) continue;
        pick = g.local.length + Math.floor(Math.random() * g.remoteWeight);
      }
      pick -= g.local.length;
      for (let k = 0; k < g.remote.length; k++) {
        const s = g.remote[k];
        pick -= s.weight;
        if (pick < 0) {
          const t = s.thread;
          if (flags[t] === 0) targets[this.targetCount++] = t;
          flags[t] |= TARGET_LISTED;
          this.targetPicks[t][this.targetGroupCount[t]] = g.remoteDirect.length > 0 ? g.remoteDirect[k] : null;
          this.targetGroups[t][this.targetGroupCount[t]++] = g;
          break;
        }
      }
    }
    const count = this.targetCount;
    this.targetCount = 0;
    for (let i = 0; i < count; i++) {
      // (A thread that died meanwhile: its records are dropped when they would be committed.)
      const t = targets[i];
      const plain = (flags[t] & TARGET_PLAIN) !== 0;
      if (this.direct === null || !this.sendDirect(from, t, plain, r, m))
        this.sendToThread(from, t, plain, this.targetGroups[t], this.targetGroupCount[t], m);
      delivered = true;
      flags[t] = 0;
      this.targetGroupCount[t] = 0;
    }
    return delivered;
  }

  /** Append MSG/HMSG for one local subscription to its connection's output. */
  private deliver(sub: Sub, m: MsgView): void {
    const c = sub.conn!;
    if (c.closing || sub.removed) return;
    if (sub.denyFilter !== null && this.denied(sub, m.sb, m.ss, m.se)) return;
    if (c.stalled) this.hitStall = c;
    const deferring = this.deferring(c);
    const startRel = c.outPos - c.outStart;
    const hdr = m.hdr;
    if (m.ts >= 0 && (hdr < 0 || (hdr > 0 && c.headers))) {
      // Common case: "MSG <subject> <sid>" + the canonical tail, two word-wise copies. A large
      // payload from a buffer nobody reuses (a payload split across reads is put together in
      // one) goes out from there: only ` [reply ]size\r\n` is copied, and the payload with its
      // CRLF joins the connection's next write by reference. The thread's read buffer and inbox
      // bytes are reused, and what waits aside needs its own copy: those are copied.
      const tailLen = m.te - m.ts;
      const byRef = this.mayReference(tailLen, m.pb, deferring) && m.pb === m.tb;
      const copyEnd = byRef ? m.ps : m.te;
      const prefix = sub.prefix;
      const opLen = hdr < 0 ? 4 : 5;
      const headLen = prefix !== null ? prefix.length : m.se - m.ss + 1 + sub.sidBytes.length;
      const need = opLen + headLen + (copyEnd - m.ts);
      if (c.outPos + need > c.out.length || !c.dirty) c.reserve(need);
      const out = c.out;
      const ov = c.outView;
      let o = c.outPos;
      if (hdr < 0) {
        ov.setUint32(o, 0x2047534d, true); // "MSG "
        o += 4;
      } else {
        o = put(out, o, HMSG_, 0, 5);
      }
      if (prefix !== null) {
        o = putDV(ov, o, sub.prefixView!, 0, prefix.length);
      } else {
        o = put(out, o, m.sb, m.ss, m.se);
        out[o++] = 32;
        o = put(out, o, sub.sidBytes, 0, sub.sidBytes.length);
      }
      c.outPos = copyEnd - m.ts > 256 ? put(out, o, m.tb, m.ts, copyEnd) : putDV(ov, o, m.tv, m.ts, copyEnd);
      if (byRef) c.queueView(m.pb, m.ps, m.te);
    } else {
      this.deliverSlow(sub, c, m, deferring);
    }
    // (The thread's counters follow in flushAll.)
    c.outMsgs++;
    c.outBytes += m.pe - m.ps;
    if (deferring) this.defer(c, c.outStart + startRel);
    // A big batch for one subscriber is written as it goes, so a backlog is noticed (and
    // its publishers stalled) before it can overrun max_pending within a single batch.
    else if (c.queuedBytes > c.flushEarlyBytes) c.flush();
    if (c.tracing) this.traceDelivery(sub, c, m);
    if (++sub.delivered === sub.max) c.removeSub(sub);
  }

  private traceDelivery(sub: Sub, c: ClientConn, m: MsgView): void {
    const reply = m.rs >= 0 ? ` ${m.sb.toString('utf8', m.rs, m.re)}` : '';
    const headers = m.hdr > 0 && c.headers;
    const size = headers ? `${m.hdr} ${m.pe - m.ps}` : `${m.pe - m.ps - (m.hdr > 0 ? m.hdr : 0)}`;
    c.traceOut(`${headers ? 'HMSG' : 'MSG'} ${m.sb.toString('utf8', m.ss, m.se)} ${shown(sub.sid)}${reply} ${size}`);
  }

  /**
   * May `bytes` of payload lying in `b` join a subscriber's output by reference? Only large ones
   * from a buffer nobody reuses: not the thread's read buffer, not an inbox record, not for a
   * subscriber whose messages wait aside.
   */
  private mayReference(bytes: number, b: Buffer, deferring: boolean): boolean {
    return bytes >= ZERO_COPY_MIN_BYTES && !deferring && !this.inRecord && !inThreadReadBuffer(b);
  }

  /** Header stripping, empty header blocks, frames that were split across reads. */
  private deliverSlow(sub: Sub, c: ClientConn, m: MsgView, deferring: boolean): void {
    const subjLen = m.se - m.ss;
    const sidLen = sub.sidBytes.length;
    let total = m.pe - m.ps;
    let hdr = m.hdr;
    let body = m.ps;
    if (hdr > 0 && !c.headers) {
      // Subscriber did not negotiate headers: strip them.
      body = m.ps + hdr;
      total -= hdr;
      hdr = -1;
    } else if (hdr === 0) {
      hdr = -1; // HPUB with an empty header block is delivered as a plain MSG
    }
    // A large payload from a buffer nobody reuses (the one a payload split across reads was put
    // together in; the parser checked the CRLF after it) goes by reference, as in deliver.
    const byRef = this.mayReference(total, m.pb, deferring);
    const replyLen = m.rs >= 0 ? m.re - m.rs : 0;
    const out = c.reserve((hdr >= 0 ? 5 : 4) + subjLen + 1 + sidLen + msgTailLength(replyLen, hdr, byRef ? 0 : total) + (byRef ? 12 : 0));
    let o = c.outPos;
    o = hdr >= 0 ? put(out, o, HMSG_, 0, 5) : put(out, o, MSG_, 0, 4);
    o = put(out, o, m.sb, m.ss, m.se);
    out[o++] = 32;
    o = put(out, o, sub.sidBytes, 0, sidLen);
    if (byRef) {
      c.outPos = putMsgLineEnd(out, o, m.sb, m.rs, m.re, hdr, total);
      c.queueView(m.pb, body, m.pe + 2);
      return;
    }
    o = putMsgTail(out, o, m.sb, m.rs, m.re, hdr, m.pb, body, m.pe);
    c.outPos = o;
  }

  /** A wildcard subscription overlapping a subscribe-deny entry: drop what the deny covers. */
  private denied(sub: Sub, sb: Uint8Array, ss: number, se: number): boolean {
    const subject = Buffer.from(sb.buffer, sb.byteOffset + ss, se - ss).toString(SUBJECT_ENCODING);
    return sub.denyFilter!.some((d) => subjectMatches(d, subject));
  }

  // ------------------------------------------------------ cross-thread

  /**
   * One record to thread `t` (threads/record.ts, the one writer): the canonical MSG tail travels as
   * is, so the receiver delivers with two copies, as for a local publish.
   */
  private sendToThread(from: ClientConn, t: number, plain: boolean, groups: Group[], nGroups: number, m: MsgView): void {
    const flags = plain ? FLAG_PLAIN : 0;
    if (nGroups === 0) {
      this.records.msg(t, m, flags, from.cid);
    } else {
      let nameBytes = 0;
      for (let i = 0; i < nGroups; i++) nameBytes += groups[i].nameBytes.length;
      let p = this.records.begin(t, m, flags, from.cid, nGroups, nameBytes);
      for (let i = 0; i < nGroups; i++) {
        const nb = groups[i].nameBytes;
        p = this.records.name(p, nb, 0, nb.length);
      }
      this.records.end(p, m);
    }
    this.afterSend(from);
  }

  /**
   * One message to thread `t`'s plain subscribers (if `plain`) and to one member of each group
   * picked for it, written directly (direct.ts), if each of them may take it now.
   */
  private sendDirect(from: ClientConn, t: number, plain: boolean, r: Route, m: MsgView): boolean {
    const d = this.direct!;
    if (!d.begin(t, m)) return false;
    let pl: DirectTarget[] | null = null;
    if (plain) {
      const k = r.remoteThreads.indexOf(t);
      pl = k >= 0 ? r.direct[k] : null;
      if (pl === null) return false;
      for (let i = 0; i < pl.length; i++) if (!d.check(t, pl[i], m)) return false;
    }
    const n = this.targetGroupCount[t];
    const picks = this.targetPicks[t];
    const chosen = this.directChosen;
    for (let g = 0; g < n; g++) {
      const list = picks[g];
      if (list === null) return false;
      const e = list[Math.floor(Math.random() * list.length)];
      if (!d.check(t, e, m)) return false;
      chosen[g] = e;
    }
    if (pl !== null) for (let i = 0; i < pl.length; i++) d.add(from, t, pl[i], m, null);
    const groups = this.targetGroups[t];
    for (let g = 0; g < n; g++) d.add(from, t, chosen[g], m, groups[g].nameBytes);
    d.commit(t);
    return true;
  }

  /**
   * Do `c`'s new messages wait aside (see defer)? A backed-up subscriber's messages from other
   * threads do, and once some wait, every later one does too, so they stay in order.
   */
  private deferring(c: ClientConn): boolean {
    return (c.stalled && this.inRecord) || (this.deferred.size > 0 && this.deferred.has(c));
  }

  /** direct.ts: a frame was appended to `c`'s output from `startRel` on (relative to outStart): it waits aside as deliver()'s would. */
  private appended(c: ClientConn, startRel: number): void {
    if (this.deferring(c)) this.defer(c, c.outStart + startRel);
    else if (c.queuedBytes > c.flushEarlyBytes) c.flush();
  }

  /** direct.ts: a member picked on another worker left; one of its group here takes the message, if any. */
  private toGroup(m: MsgView, q: Buffer, qs: number, qe: number): void {
    const r = this.routeFor(null, m.sb, null, m.ss, m.se);
    for (const g of r.groups) {
      if (g.local.length === 0 || !sameBytes(g.nameBytes, q, qs, qe)) continue;
      this.deliver(g.local[Math.floor(Math.random() * g.local.length)], m);
      return;
    }
  }

  /** One message to thread `t` for its plain subscribers (no queue group); `r` is its subject's route. */
  private sendPlain(from: ClientConn, t: number, m: MsgView, r: Route, i: number): void {
    if (this.direct !== null) {
      const targets = r.direct[i];
      if (targets !== null && this.direct.send(from, t, targets, m)) return;
    }
    // Another client worker takes runs of one publisher's messages to one subject (record.ts).
    if (this.runTargets[t] === 1) this.records.plain(t, m, from.cid, r);
    else this.records.msg(t, m, FLAG_PLAIN, from.cid);
    this.afterSend(from);
  }

  /** A record of `from`'s was staged: count it, and pause `from` if its destination is backed up. */
  private afterSend(from: ClientConn): void {
    const mesh = this.mesh;
    if (mesh.full) {
      // Records for that thread already wait for space: stop reading the publisher until they are in.
      mesh.full = false;
      this.ringPaused.add(from);
      this.stats.ringFull++;
    }
    this.stats.crossSent++;
  }

  /** MeshHandler: one record from another thread: deliver to our local subscribers. */
  onRecord(from: number, d: Buffer, v: DataView, o: number, len: number): void {
    if (d[o] === RecordKind.direct) {
      this.inRecord = true;
      this.direct?.onRecord(d, v, o, len);
      this.inRecord = false;
      return;
    }
    const m = this.rec;
    readRecord(m, d, v, o);
    if (m.kind !== RecordKind.msg && m.kind !== RecordKind.run) {
      if (m.kind === RecordKind.stall) this.onStallRecord(m.cid, m.stallMs);
      return;
    }
    this.stats.crossReceived++;
    // Stripped whatever threads this server has, as nats-server strips it for every client.
    if (m.rs >= 0 && m.re - m.rs > GW_REPLY_PREFIX_LEN && d[m.rs] === 95 && isGatewayRouted(d, m.rs, m.re)) this.stripGatewayReply(m);
    this.hitStall = null;
    this.inRecord = true;
    const ss = m.ss;
    const se = m.se;
    const r = this.routeFor(this.lastRecordRoute, d, v, ss, se);
    if (r !== this.lastRecordRoute) this.lastRecordRoute = r;
    if ((m.flags & FLAG_PLAIN) !== 0) {
      const local = r.local;
      for (let i = 0; i < local.length; i++) this.deliver(local[i], m);
      if (m.kind === RecordKind.run) this.deliverRun(r, m, d, v, m.te, o + len);
    }
    let p = se;
    for (let i = 0; i < m.nGroups; i++) {
      const ns = p + 4;
      p = ns + v.getUint32(p, true);
      const groups = r.groups;
      for (let k = 0; k < groups.length; k++) {
        const g = groups[k];
        if (g.local.length === 0 || !sameBytes(g.nameBytes, d, ns, p)) continue;
        this.deliver(g.local[Math.floor(Math.random() * g.local.length)], m);
        break;
      }
    }
    this.inRecord = false;
    const hit = this.hitStall as ClientConn | null; // set by deliver()
    if (hit !== null) {
      // A subscriber here is backed up: slow its publisher down on its own thread. Routes
      // (cid 0) are never stalled, as nats-server stalls only client producers.
      if (m.cid !== 0) this.mesh.requestStall(from, m.cid, this.stallFor(hit));
      this.hitStall = null;
    }
  }

  /** The further messages of a run, d[p, end), to the plain subscribers of its subject's route `r`. */
  private deliverRun(r: Route, m: MsgView, d: Buffer, v: DataView, p: number, end: number): void {
    const stats = this.stats;
    const subjLen = m.se - m.ss;
    while (p < end) {
      p = readRunEntry(m, d, v, p, subjLen);
      stats.crossReceived++;
      // (A delivery may have changed the subscriptions: the last one of a max reached.)
      if (r.gen !== this.sublist.generation) this.resolve(r, this.sublist.generation);
      const local = r.local;
      for (let i = 0; i < local.length; i++) this.deliver(local[i], m);
    }
  }

  /** MeshHandler: queued records reached their rings; paused publishers may go on. */
  onSpace(): void {
    for (const c of this.ringPaused) {
      c.pausedForRing = false;
      c.updateReading();
    }
    this.ringPaused.clear();
  }

  /** MeshHandler: write what inbox records produced. */
  afterDrain(): void {
    if (this.floodPaused.size > 0) this.releaseFloods();
    if (this.held.size > 0) this.releaseHeld();
    this.flushAll();
  }

  // ------------------------------------------------------------ flushing

  /**
   * The end of a read. While reads come one right after another, its socket writes wait for
   * the end of the event loop's pass, once every socket that was ready together has been read
   * (setImmediate runs right after that poll): one write per connection per pass, so a
   * subscriber fed by several publishers in one pass gets one write, not one per read (16
   * requesters and one responder: write(2) calls per request 2.10 -> 1.35 on one worker, 2.00
   * -> 1.47 on two). Its records reach their rings now (whether the publisher waits for ring
   * space is judged by them). A pass is short: the reads libuv makes for the sockets one poll
   * found ready, and output past a connection's flushEarlyBytes is written at once (deliver).
   * A read after a quiet spell writes at once: a pass of one read gains nothing by waiting,
   * and the setImmediate costs (gathering every read measured 0-5% more CPU per message at 5
   * messages per millisecond, about this host's noise).
   */
  private endRead(begun: number): void {
    if (this.flushQueued || begun - this.lastReadEnd < BUSY_GAP_MS) {
      this.mesh.flush();
      if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(this.endPass);
      }
    } else this.flushAll();
    this.lastReadEnd = performance.now();
  }

  flushAll(): void {
    // Direct writes, then rings: output written below (a PONG) must never overtake what went before it.
    if (this.direct !== null && this.direct.pending) this.direct.flush();
    this.mesh.flush();
    const dirty = this.dirty;
    const stats = this.stats;
    for (let i = 0; i < dirty.length; i++) {
      const c = dirty[i];
      // The thread's delivery counters grow here, by what each connection that got output
      // counted since (deliver counts per connection only): a connection with deliveries is
      // always in `dirty` (deliver reserves room, which marks it), once or more.
      stats.outMsgs += c.outMsgs - c.outMsgsCounted;
      stats.outBytes += c.outBytes - c.outBytesCounted;
      c.outMsgsCounted = c.outMsgs;
      c.outBytesCounted = c.outBytes;
      c.flush();
    }
    dirty.length = 0;
    stats.publish(this.sublist.size - this.remote.size, this.slowConsumers);
    if (this.ringPaused.size > 0) {
      for (const c of this.ringPaused) {
        if (!c.pausedForRing) {
          c.pausedForRing = true;
          c.updateReading();
        }
      }
    }
  }

  // ------------------------------------------------------- slow consumers

  /**
   * The message just written at c.out[at, c.outPos) is for a backed-up subscriber and came
   * from another thread: move it aside. Its publisher is being stalled, but what was already
   * on its way (in our inbox, in its thread's staging) still arrives; in nats-server those
   * messages would wait in their stalled producers, so here they wait too, without counting
   * towards max_pending, and go out as the subscriber drains (refill). Nothing else waits:
   * other subscribers on this worker keep getting their messages. What can arrive after a
   * stall request is bounded by the inboxes, so a subscriber with more than
   * max(max_pending, 4 inboxes) waiting aside is a slow consumer (as is one whose socket
   * takes nothing for write_deadline).
   */
  private defer(c: ClientConn, at: number): void {
    let d = this.deferred.get(c);
    if (d === undefined) {
      d = new Deferred();
      this.deferred.set(c, d);
      c.outputAside = true;
    }
    d.append(c.out, at, c.outPos);
    c.outPos = at;
    if (d.bytes > this.maxDeferredBytes) {
      log.info(`${c.logPrefix()} - Slow Consumer Detected: MaxPending of ${this.opts.maxPending} Exceeded`);
      this.slowConsumers++;
      c.close(CloseReason.slowConsumerPendingBytes, false);
      return;
    }
    this.refillOnDrain(c, d);
  }

  /** Refill `c` when its socket drains (one listener at a time). */
  private refillOnDrain(c: ClientConn, d: Deferred): void {
    if (d.waiting) return;
    d.waiting = true;
    c.socket.once('drain', () => {
      d.waiting = false;
      this.refill(c);
    });
  }

  /** Move messages waiting aside into the subscriber's output while it has room (half of max_pending). */
  private refill(c: ClientConn): void {
    const d = this.deferred.get(c);
    if (d === undefined) return;
    if (c.closed) {
      this.deferred.delete(c);
      c.outputAside = false;
      return;
    }
    const room = this.opts.maxPending / 2;
    // A step at a time (a socket that drained may take tens of MB: moving them at once would
    // hold this worker's other connections up for as long).
    let moved = 0;
    while (d.bytes > 0 && c.pendingBytes < room && moved < REFILL_STEP_BYTES) {
      // By reference: a chunk set aside is its own buffer, which nothing writes again.
      const chunk = d.shift();
      c.queueView(chunk, 0, chunk.length);
      moved += chunk.length;
    }
    c.flush();
    if (c.closed) return;
    if (d.bytes > 0) {
      if (c.pendingBytes >= room) this.refillOnDrain(c, d);
      else if (!d.stepping) {
        d.stepping = true;
        setImmediate(() => {
          d.stepping = false;
          this.refill(c);
        });
      }
      return;
    }
    this.deferred.delete(c);
    c.outputAside = false;
    c.settleDirect();
    this.releaseRemoteStalls();
    this.flushAll();
    if (this.held.size > 0) this.releaseHeld();
  }

  // ------------------------------------------------------- producer stalls

  /**
   * A delivery went to a backed-up subscriber: stop reading the publisher until the
   * subscriber drains below half of max_pending, or the stall time passes (as nats-server's
   * fast-producer stall: a publisher slows down instead of getting its subscribers cut off as
   * slow consumers). Nothing else waits: other subscribers keep getting their messages.
   */
  private stallPublisher(pub: ClientConn, ms: number): void {
    if (pub.pausedForStall || pub.closed) return;
    this.stats.stalls++;
    pub.pausedForStall = true;
    pub.updateReading();
    this.stalledPublishers.add(pub);
    const t = setTimeout(() => this.releasePublisher(pub), ms);
    t.unref();
  }

  private releasePublisher(pub: ClientConn): void {
    if (!this.stalledPublishers.delete(pub)) return;
    pub.pausedForStall = false;
    pub.updateReading();
  }

  /** Another thread asks us to stall our publisher `cid` (ms 0: its subscribers drained). */
  private onStallRecord(cid: number, ms: number): void {
    const pub = this.byCid.get(cid);
    if (pub === undefined) return;
    if (ms === 0) {
      this.remoteStalled.delete(pub);
      this.releasePublisher(pub);
      return;
    }
    this.remoteStalled.set(pub, { ms, at: Date.now() });
    this.stallPublisher(pub, ms);
  }

  /**
   * How long a publisher feeding `c` waits, as nats-server's stallDuration: 100 ms, growing to
   * 1 s as what is queued for `c` (here: its output and what waits aside) nears max_pending.
   */
  private stallFor(c: ClientConn): number {
    const max = this.opts.maxPending;
    const pending = c.pendingBytes + (this.deferred.get(c)?.bytes ?? 0);
    if (pending >= max) return 1000;
    const half = max / 2;
    if (pending <= half) return 100;
    return Math.min(1000, 100 + 100 * Math.floor((pending - half) / (half / 10)));
  }

  /**
   * A subscriber's output went below half of max_pending: what waits aside for it moves on,
   * stalled publishers here go on; those on other threads go on once nothing waits aside for
   * any subscriber here (otherwise their stall runs out).
   */
  onUnstall(c: ClientConn): void {
    for (const p of [...this.stalledPublishers]) this.releasePublisher(p);
    // Messages waiting aside go first (their publishers' stalls end once none wait).
    if (this.deferred.size > 0 && this.deferred.has(c)) this.refill(c);
    this.releaseRemoteStalls();
  }

  private releaseRemoteStalls(): void {
    if (this.deferred.size === 0) this.mesh.releaseStalls();
  }

  // -------------------------------------------------------------- timers

  private sweep(): void {
    const now = Date.now();
    for (const c of this.conns) c.tick(now);
    this.mesh.pruneStalls(now);
    // A stall nobody renewed for long (its consumer's thread went away): let it go.
    if (this.remoteStalled.size > 0) {
      for (const [pub, rs] of this.remoteStalled) if (now - rs.at > REMOTE_STALL_MAX_MS) this.remoteStalled.delete(pub);
    }
    // A drain event can come before the backlog was set aside: look again now and then.
    if (this.deferred.size > 0) for (const c of [...this.deferred.keys()]) this.refill(c);
    if (this.floodPaused.size > 0) this.releaseFloods();
    if (this.held.size > 0) this.releaseHeld();
    this.flushAll();
    this.mesh.kick();
    if (
      this.conns.size === 0 &&
      this.deferred.size === 0 &&
      this.floodPaused.size === 0 &&
      this.held.size === 0 &&
      this.remoteStalled.size === 0
    )
      this.paceSweep(IDLE_SWEEP_MS);
  }

  /** The thread is dying (an uncaught exception): no other thread may write its sockets any more (direct.ts). */
  abandonSockets(): void {
    this.direct?.abandonAll();
  }

  /** Sets the sweep's period; a broker sweeps only between start() and shutdown(). */
  private paceSweep(ms: number): void {
    if (!this.started || this.shuttingDown || this.sweepPace === ms) return;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepPace = ms;
    this.sweepTimer = setInterval(() => this.sweep(), ms);
  }

  openSockets(): number {
    return this.sockets.size;
  }

  /** Close every connection (server shutdown), flushing what is queued. */
  shutdown(): void {
    this.shuttingDown = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.checker.close();
    // Connections not set up yet are closed without INFO.
    for (let i = this.arrivingHead; i < this.arriving.length; i++) this.arriving[i].socket.destroy();
    this.flushAll();
    for (const c of [...this.conns]) c.close(CloseReason.serverShutdown, true);
    this.mesh.stop();
  }
}
