// The shape every socket role shares, as nats-server has one `client` struct with a `kind`
// (client.go): the output buffer with slab reuse, flush and close-with-flush, the timer sweep
// (TLS handshake, auth timeout, write deadline, ping/stale), the TLS wrapping, the close-reason
// table and the counters monitoring reads. ClientConn (client.ts) and RouteConn (route.ts) add
// only what their role does differently; gateway and leaf connections are two more roles.
//
// Where a behaviour differs by role it is a switch on `kind` here, in one place, the way
// nats-server writes it (`if c.kind == CLIENT && c.out.pb > c.out.mp`).
//
// Runs on the thread that owns the connection.

import { writeSync } from 'node:fs';
import type { OwnedSlot } from '../threads/direct.ts';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { goDuration, type Options, type TlsOptions } from '../config/options.ts';
import { log } from '../log.ts';
import { viewOf } from '../protocol/bytes.ts';
import { joinHostPort } from '../protocol/hostport.ts';
import { InputGate } from './auth.ts';
import { readIntoOwnBuffer } from './read-buffer.ts';
import { acceptTls, dialTls, handshakeErrorText, peerVerifyError, tlsCipherText, tlsVersionText } from './tls.ts';

/** The role of a connection (nats-server's CLIENT, ROUTER, GATEWAY, LEAF). */
export const ConnKind = {
  client: 1,
  route: 2,
  gateway: 3,
  leaf: 4,
} as const;
export type ConnKindCode = (typeof ConnKind)[keyof typeof ConnKind];

/** How nats-server names each kind in log lines (client.go kindString). */
const KIND_NAME: Record<ConnKindCode, string> = {
  [ConnKind.client]: 'Client',
  [ConnKind.route]: 'Router',
  [ConnKind.gateway]: 'Gateway',
  [ConnKind.leaf]: 'Leafnode',
};

/** The word TLS log lines use for a server-to-server kind (doTLSHandshake's `typ`). */
const TLS_TYPE: Record<ConnKindCode, string> = {
  [ConnKind.client]: '',
  [ConnKind.route]: 'route',
  [ConnKind.gateway]: 'gateway',
  [ConnKind.leaf]: 'leafnode',
};

/**
 * Why a connection closed: nats-server's ClosedState names (client.go) and their texts
 * (monitor.go String), which /connz, /routez and the `... connection closed:` log lines show.
 */
export const CloseReason = {
  clientClosed: 'Client Closed',
  authenticationTimeout: 'Authentication Timeout',
  authenticationViolation: 'Authentication Failure',
  tlsHandshakeError: 'TLS Handshake Failure',
  slowConsumerPendingBytes: 'Slow Consumer (Pending Bytes)',
  slowConsumerWriteDeadline: 'Slow Consumer (Write Deadline)',
  writeError: 'Write Error',
  readError: 'Read Error',
  parseError: 'Parse Error',
  staleConnection: 'Stale Connection',
  protocolViolation: 'Protocol Violation',
  badClientProtocolVersion: 'Bad Client Protocol Version',
  wrongPort: 'Incorrect Port',
  maxConnectionsExceeded: 'Maximum Connections Exceeded',
  maxAccountConnectionsExceeded: 'Maximum Account Connections Exceeded',
  maxPayloadExceeded: 'Maximum Message Payload Exceeded',
  maxControlLineExceeded: 'Maximum Control Line Exceeded',
  maxSubscriptionsExceeded: 'Maximum Subscriptions Exceeded',
  duplicateRoute: 'Duplicate Route',
  routeRemoved: 'Route Removed',
  serverShutdown: 'Server Shutdown',
  authenticationExpired: 'Authentication Expired',
  wrongGateway: 'Wrong Gateway',
  missingAccount: 'Missing Account',
  revocation: 'Credentials Revoked',
  internalClient: 'Internal Client',
  msgHeaderViolation: 'Message Header Violation',
  noRespondersRequiresHeaders: 'No Responders Requires Headers',
  clusterNameConflict: 'Cluster Name Conflict',
  duplicateRemoteLeafnodeConnection: 'Duplicate Remote LeafNode Connection',
  duplicateClientId: 'Duplicate Client ID',
  duplicateServerName: 'Duplicate Server Name',
  minimumVersionRequired: 'Minimum Version Required',
  clusterNamesIdentical: 'Cluster Names Identical',
  /** skein only: an exception while handling the connection's input (nothing else is harmed). */
  internalError: 'Internal Error',
} as const;
export type CloseReasonText = (typeof CloseReason)[keyof typeof CloseReason];

const PING = Buffer.from('PING\r\n');

// Output memory: a connection has no buffer of its own until it has something to send; the
// first slab is small (from Buffer's shared pool) and slabs double while a read produces more
// than they hold, up to OUT_SLAB_MAX. A slab whose writes have all completed is reused from
// its start. After IDLE_TICKS_RELEASE sweeps with nothing queued, the connection gives its
// slab and spares back and starts small again.
const OUT_SLAB_FIRST = 1024;
const OUT_MIN_ROOM = 8 * 1024;
const OUT_SLAB_MAX = 1024 * 1024;
/**
 * Spares a connection keeps at least. One that falls behind keeps more: as many as it has
 * retired slabs still being written (see recycle), so a backlog of slabs is refilled from the
 * slabs it returns instead of fresh ones. With two spares, a subscriber that fell behind a
 * 16 B stream (the whole half of max_pending in flight, 1 MiB slabs) dropped nearly every
 * slab it got back: about 100 MB of dead slabs between mark-compacts, a page fault per 4 KiB
 * of each fresh one, and a third more server CPU per message (bench pubsub -w1).
 */
const SPARE_SLABS = 2;
/**
 * Spares kept by a route, gateway or leaf connection: its writes queue behind a busy peer, so
 * several slabs are in flight at once, and with two spares the rest were dropped and allocated
 * again (a route carrying 16 B messages: about 20 fresh 1 MiB slabs a second, 5,000 page faults
 * a second and a full mark-compact every few hundred ms on its thread for the external memory;
 * with eight, none after the first second). There are few of them; idle, they let go (see
 * releaseBuffers).
 */
const PEER_SPARE_SLABS = 8;
const IDLE_TICKS_RELEASE = 10;
const NO_OUTPUT = Buffer.alloc(0);
const NO_OUTPUT_VIEW = viewOf(NO_OUTPUT);
/** How long an ended socket may take to send what it was given before it is destroyed. */
const CLOSE_FLUSH_MS = 1000;
/**
 * A payload at least this large is written from where it already lies (a buffer nobody reuses:
 * the one a payload split across reads was put together in) instead of being copied into the
 * slab: the next flush hands the socket the slab range before it, the payload and what follows
 * as one gathered write (writev). Below this, one memcpy costs less than the extra write request.
 */
export const ZERO_COPY_MIN_BYTES = 2048;
/** Unwritten bytes past which a connection's writes are no longer gathered (writeChunksOneByOne). */
const WRITEV_MAX_BYTES = 1024 * 1024;

/**
 * An output buffer. Written ranges stay referenced by the socket until the kernel has them,
 * so a slab is reused only once every write from it completed (counted by `pending`).
 */
class Slab {
  readonly buf: Buffer;
  readonly view: DataView;
  pending = 0;
  retired = false;
  private readonly owner: Conn;
  /** One callback per slab (no allocation per write). */
  readonly done: () => void;

  constructor(owner: Conn, bytes: number) {
    this.owner = owner;
    this.buf = Buffer.allocUnsafe(bytes);
    this.view = viewOf(this.buf);
    this.done = () => {
      this.owner.writesPending--;
      if (--this.pending === 0 && this.retired) {
        this.owner.slabsInFlight--;
        this.owner.recycle(this);
      }
      if (this.owner.stalled) this.owner.unstallBelowHalf();
      if (this.owner.direct !== null) this.owner.settleDirect();
    };
  }
}

function withoutMappedPrefix(addr: string): string {
  return addr.replace(/^::ffff:/, '');
}

/**
 * One connection, whatever its role. A subclass supplies what the role does with its input
 * (onRead), who collects it for the end-of-read flush (markDirty), what closing means for the
 * thread that owns it (onClose) and its log prefix.
 */
export abstract class Conn {
  readonly kind: ConnKindCode;
  /** The connection id (cid; `rid` in route log lines), unique across the server's threads. */
  readonly cid: number;
  /** The socket, or the TLSSocket wrapping it once TLS starts. */
  socket: Socket;
  /** The options of the thread; a reload updates this object in place. */
  readonly opts: Options;
  readonly remoteAddr: string;
  readonly remotePort: number;
  startedAt = Date.now();
  closing = false;
  closed = false;
  closeReason = '';
  /** -V: trace protocol operations as nats-server does (`<<- [SUB foo 1]`, `->> [PONG]`). */
  tracing = false;
  /** Until this time (ms) the TLS handshake may run; 0 when none is running. */
  tlsDeadline = 0;
  /** Why the TLS handshake failed ('' if it did not). */
  tlsError = '';
  /** DER of the peer's verified certificate, where the role keeps it (verify_and_map). */
  peerCert: Buffer | null = null;
  /** Holds input while a CONNECT's credentials are checked off this thread (auth.ts). */
  readonly gate = new InputGate();

  // Output: unwritten bytes are out[outStart, outPos).
  out: Buffer = NO_OUTPUT;
  outView: DataView = NO_OUTPUT_VIEW;
  outStart = 0;
  outPos = 0;
  dirty = false;
  /**
   * Output queued ahead of out[outStart, outPos), in order: slab ranges cut off where a large
   * payload was queued by reference (queueView), and those payloads. `segDone[i]` completes a
   * slab range's write (its slab's pending count); payload views have none.
   */
  private segs: Buffer[] = [];
  private segDone: ((() => void) | undefined)[] = [];
  /** Bytes in `segs`. */
  private segBytes = 0;
  private slab: Slab | null = null;
  private slabBytes = OUT_SLAB_FIRST;
  private readonly spares: Slab[] = [];
  /** Retired slabs whose writes have not all completed. */
  slabsInFlight = 0;
  /** Consecutive sweeps with nothing queued or unwritten (see releaseBuffers). */
  private idleTicks = 0;
  /**
   * Unwritten output over half of max_pending: producers feeding this connection are slowed
   * down (nats-server's fast-producer stall) until a write brings it below half again.
   */
  stalled = false;
  /** Writes are never gathered into one writev (see writeChunksOneByOne). */
  private chunkWrites = false;
  /** The socket's descriptor for writeQueued (-1: not a plain TCP socket), found for `fdOf`. */
  private fd = -1;
  private fdOf: Socket | null = null;
  private readonly unstallOnDrain = (): void => this.unstall();
  private readonly gatherOnDrain = (): void => this.gatherWrites();

  // Timers, swept by the owning thread (one timer for all its connections).
  authDeadline = 0;
  nextPingAt = 0;
  pingsOut = 0;
  lastInboundAt = Date.now();
  /** When the peer last sent a PING (its PINGs, like its traffic, make ours unnecessary). */
  lastPeerPingAt = 0;
  rttMs = 0;
  rttStartAt = 0;
  /** A PING of ours refreshes the RTT after this long even on a busy connection. */
  protected rttRefreshMs = Infinity;
  /** PING every interval whatever the traffic (gateways: their PONGs order the outbounds by RTT). */
  protected alwaysPing = false;
  /** This role's PING interval (gateways: at most 15 s, gateway.go). */
  protected pingIntervalMs(): number {
    return this.opts.pingIntervalMs;
  }
  /** Since when queued output has made no progress into the kernel (0: not blocked). */
  writeBlockedSince = 0;
  private queuedSinceTick = 0;
  private writableAtTick = 0;

  // Counters (monitoring).
  inMsgs = 0;
  inBytes = 0;
  outMsgs = 0;
  outBytes = 0;
  /** Socket writes not yet completed (the "chunks" of nats-server's write deadline line). */
  writesPending = 0;
  /**
   * While other workers may write this socket (broker/direct.ts): its slot. Every write of
   * ours then holds the slot's lock, and the slot says whether output of ours is still
   * unwritten (BUSY): a direct write must not overtake it.
   */
  direct: OwnedSlot | null = null;
  /** Messages wait aside for this connection (Broker.defer): direct writes would overtake them. */
  outputAside = false;

  constructor(kind: ConnKindCode, socket: Socket, cid: number, opts: Options) {
    this.kind = kind;
    this.socket = socket;
    this.cid = cid;
    this.opts = opts;
    // Without the IPv4-mapped prefix (the default host is bound dual stack): Go reports an
    // IPv4 peer of a dual-stack socket as plain IPv4 in logs, INFO client_ip and /connz.
    this.remoteAddr = withoutMappedPrefix(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
  }

  /** `<ip>:<port> - cid:<n>` (or `rid:`, ...), the prefix of every log line about it. */
  abstract logPrefix(): string;
  /** One read from the socket. */
  protected abstract onRead(chunk: Buffer): void;
  /** The connection has output to write at the end of the current read or batch. */
  protected abstract markDirty(): void;
  /** Closing (before the socket is torn down): the owning thread lets go of it. */
  protected abstract onClose(reason: CloseReasonText): void;
  /** Its output drained below half of max_pending: producers stalled for it may go on. */
  protected abstract onUnstall(): void;

  /** Socket bytes not yet handed to the kernel plus what we have not written yet. */
  get pendingBytes(): number {
    return this.socket.writableLength + this.segBytes + (this.outPos - this.outStart);
  }

  /** Output queued and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.segBytes + (this.outPos - this.outStart);
  }

  /** The first PING about `firstMs` after now (nats-server firstPingInterval, plus 0-20%). */
  schedulePing(firstMs: number): void {
    const first = Math.min(this.pingIntervalMs(), firstMs);
    this.nextPingAt = Date.now() + first + Math.floor(Math.random() * first * 0.2);
  }

  // ---------------------------------------------------------------- output

  /** Make room for `n` more bytes; keeps unwritten bytes. */
  reserve(n: number): Buffer {
    const slab = this.slab;
    // Everything queued so far has been written and the kernel has it: start over.
    if (this.outPos === this.outStart && this.outPos !== 0 && slab!.pending === 0) {
      this.outStart = 0;
      this.outPos = 0;
    }
    if (this.outPos + n > this.out.length) {
      let pending = this.outPos - this.outStart;
      if (slab !== null && pending > 0 && (pending + n) * 2 > OUT_SLAB_MAX && this.segBytes === 0 && !this.closed && this.lockForWrite()) {
        // More than half a largest slab queued in this read: hand it to the socket now (one
        // more write, for at least half a MB) instead of copying it into a new, larger slab
        // that could never be reused: a route carrying small messages otherwise allocated,
        // faulted in and filled a fresh slab of over 1 MiB per drain pass.
        this.writeQueued(slab);
        this.unlockAfterWrite();
        pending = 0;
      }
      // A connection that gets more than a slab per read gets bigger fresh slabs from now on.
      while (this.slabBytes < OUT_SLAB_MAX && this.slabBytes < (pending + n) * 2) this.slabBytes *= 2;
      // Grow geometrically so a large backlog is copied O(log n) times, not once per message.
      this.useSlab(Math.max(this.slabBytes, (pending + n) * 2));
      if (slab !== null) {
        if (pending > 0) slab.buf.copy(this.out, 0, this.outStart, this.outPos);
        this.retire(slab);
      }
      this.outStart = 0;
      this.outPos = pending;
    }
    if (!this.dirty) {
      this.dirty = true;
      this.markDirty();
    }
    return this.out;
  }

  queue(bytes: Uint8Array): void {
    if (this.closed) return;
    const out = this.reserve(bytes.length);
    out.set(bytes, this.outPos);
    this.outPos += bytes.length;
  }

  /**
   * Queue b[start, end) by reference, without copying it: the caller guarantees those bytes
   * stay as they are until written (never the thread's read buffer: read-buffer.ts). The slab
   * range queued before it is cut off and goes first.
   */
  queueView(b: Buffer, start: number, end: number): void {
    if (this.closed) return;
    if (this.outPos > this.outStart) {
      const slab = this.slab!;
      slab.pending++;
      this.segs.push(this.out.subarray(this.outStart, this.outPos));
      this.segDone.push(slab.done);
      this.segBytes += this.outPos - this.outStart;
      this.outStart = this.outPos;
    }
    this.segs.push(b.subarray(start, end));
    this.segDone.push(undefined);
    this.segBytes += end - start;
    if (!this.dirty) {
      this.dirty = true;
      this.markDirty();
    }
  }

  /** Queue text: UTF-8 (INFO, CONNECT), or SUBJECT_ENCODING for lines that carry subject bytes. */
  queueString(s: string, encoding: BufferEncoding = 'utf8'): void {
    if (this.closed) return;
    const n = Buffer.byteLength(s, encoding);
    const out = this.reserve(n);
    out.write(s, this.outPos, encoding);
    this.outPos += n;
  }

  sendErr(text: string): void {
    if (this.tracing) this.traceOut(`-ERR '${text}'`);
    this.queueString(`-ERR '${text}'\r\n`);
  }

  /** Write what is queued: one socket write per connection per read. */
  flush(): void {
    this.dirty = false;
    if (this.closed || (this.outPos === this.outStart && this.segBytes === 0)) return;
    const pending = this.socket.writableLength + this.segBytes + (this.outPos - this.outStart);
    // Only clients are cut off for pending bytes (client.go queueOutbound); the other kinds
    // stall their producers instead.
    if (this.kind === ConnKind.client && pending > this.opts.maxPending) {
      log.info(`${this.logPrefix()} - Slow Consumer Detected: MaxPending of ${this.opts.maxPending} Exceeded`);
      this.countSlowConsumer();
      this.close(CloseReason.slowConsumerPendingBytes, false);
      return;
    }
    // (A direct write cut short is being completed by this thread: ours wait for it.)
    if (!this.lockForWrite()) return;
    if (this.segBytes > 0) this.flushSegments();
    if (this.outPos !== this.outStart) {
      const slab = this.slab!;
      this.writeQueued(slab);
      if (this.out.length - this.outPos < Math.min(OUT_MIN_ROOM, this.slabBytes >> 2)) {
        this.useSlab(this.slabBytes);
        this.retire(slab);
        this.outStart = 0;
        this.outPos = 0;
      }
    }
    this.unlockAfterWrite();
    const writable = this.socket.writableLength;
    if (writable > WRITEV_MAX_BYTES && !this.chunkWrites) this.writeChunksOneByOne();
    if (writable > this.opts.maxPending / 2) this.markStalled();
  }

  /** Before a write of ours: false while another thread's direct write waits to be completed. */
  private lockForWrite(): boolean {
    const d = this.direct;
    return d === null || d.lockForWrite();
  }

  private unlockAfterWrite(): void {
    const d = this.direct;
    if (d !== null) d.unlockAfterWrite(this.socket.writableLength > 0 || this.outputAside);
  }

  /** The rest of another thread's direct write that was cut short (broker/direct.ts), under the slot's lock. */
  writeRest(bytes: Buffer): void {
    this.queuedSinceTick += bytes.length;
    this.socket.write(bytes);
  }

  /** Whether output of ours is still unwritten, told to the direct-delivery slot (a write completed, the sweep). */
  settleDirect(): void {
    const d = this.direct;
    if (d !== null) d.settle(this.socket.writableLength > 0 || this.outputAside);
  }

  /**
   * Hand the kernel slab[outStart, outPos) (what was queued since the last write). With nothing
   * of ours in the socket's queue, a plain TCP socket's bytes go straight to its descriptor, as
   * direct delivery writes them: Node's stream write would add a write request, two callbacks
   * and a nextTick per write, most of a worker's garbage on a request/reply path. What the
   * kernel does not take (a full buffer, an error) goes through the socket, which queues it
   * behind nothing and reports a failure as it always does.
   */
  private writeQueued(slab: Slab): void {
    const start = this.outStart;
    const end = this.outPos;
    this.queuedSinceTick += end - start;
    this.outStart = end;
    let from = start;
    const s = this.socket;
    if (s.writableLength === 0 && !s.destroyed && !s.writableEnded) {
      if (this.fdOf !== s) {
        this.fdOf = s;
        this.fd = plainFd(s);
      }
      if (this.fd >= 0) {
        try {
          from += writeSync(this.fd, this.out, start, end - start);
        } catch {
          // EAGAIN, or the connection failed: the socket's write below finds out which.
        }
        if (from === end) return;
      }
    }
    slab.pending++;
    this.writesPending++;
    s.write(this.out.subarray(from, end), slab.done);
  }

  /**
   * Write the queued segments and the slab range after them as one gathered write: corked,
   * the socket hands them to the kernel together (writev) when uncorked.
   */
  private flushSegments(): void {
    const s = this.socket;
    const segs = this.segs;
    const done = this.segDone;
    this.queuedSinceTick += this.segBytes;
    s.cork();
    for (let i = 0; i < segs.length; i++) {
      // Slab ranges complete through slab.done, which counts them off writesPending.
      if (done[i] !== undefined) this.writesPending++;
      s.write(segs[i], done[i]);
    }
    if (this.outPos > this.outStart) {
      // The slab range after the last payload view joins the same write.
      const slab = this.slab!;
      slab.pending++;
      this.writesPending++;
      this.queuedSinceTick += this.outPos - this.outStart;
      s.write(this.out.subarray(this.outStart, this.outPos), slab.done);
      this.outStart = this.outPos;
    }
    s.uncork();
    segs.length = 0;
    done.length = 0;
    this.segBytes = 0;
  }

  /**
   * Producers are being slowed down for this connection until a write brings it below half of
   * max_pending again (client.go flushOutbound; see unstallBelowHalf), or it drains.
   */
  markStalled(): void {
    if (this.stalled) return;
    this.stalled = true;
    this.socket.once('drain', this.unstallOnDrain);
  }

  /**
   * A backlog is building: from now on its chunks go to the kernel one write at a time. Node
   * would otherwise gather everything queued behind a write in progress into one writev of
   * tens of MB that completes all at once, so writableLength would not move until the socket
   * is empty: stalled producers would be let go only then and refill all of max_pending/2 in
   * one burst, a stretch of full-speed work for both workers that holds up everyone else on
   * them (issue 10 §5). One write per chunk lets them go, as nats-server does, as soon as
   * the output is below half of max_pending, and top it up a chunk at a time.
   */
  private writeChunksOneByOne(): void {
    this.chunkWrites = true;
    (this.socket as { _writev: unknown })._writev = null;
    this.socket.once('drain', this.gatherOnDrain);
  }

  /**
   * The backlog is gone: writes are gathered again (a connection that once fell behind would
   * otherwise make two syscalls per large message, its header and its payload, for good).
   */
  private gatherWrites(): void {
    if (!this.chunkWrites) return;
    this.chunkWrites = false;
    // (Set back to the inherited method, not deleted: a delete would change the socket's shape.)
    const own = this.socket as { _writev: unknown };
    own._writev = (Object.getPrototypeOf(own) as { _writev: unknown })._writev;
  }

  /** A write completed while stalled: below half of max_pending, the producers go on. */
  unstallBelowHalf(): void {
    if (this.socket.writableLength <= this.opts.maxPending / 2) this.unstall();
  }

  private unstall(): void {
    if (!this.stalled) return;
    this.stalled = false;
    this.socket.off('drain', this.unstallOnDrain);
    this.onUnstall();
  }

  /** A slow consumer, counted for /varz by the roles that count them (clients). */
  protected countSlowConsumer(): void {}

  /** Switch to a spare slab of at least `bytes`, or a new one. */
  private useSlab(bytes: number): void {
    let slab: Slab | undefined;
    while ((slab = this.spares.pop()) !== undefined && slab.buf.length < bytes);
    this.slab = slab ?? new Slab(this, bytes);
    this.out = this.slab.buf;
    this.outView = this.slab.view;
  }

  private retire(slab: Slab): void {
    slab.retired = true;
    if (slab.pending === 0) this.recycle(slab);
    else this.slabsInFlight++;
  }

  /**
   * A retired slab's writes have all completed: keep it for reuse, up to the role's spares or,
   * while more slabs than that are being written, one more than those.
   */
  recycle(slab: Slab): void {
    const keep = Math.max(this.kind === ConnKind.client ? SPARE_SLABS : PEER_SPARE_SLABS, this.slabsInFlight + 1);
    if (this.closed || this.spares.length >= keep || slab.buf.length < this.slabBytes) return;
    slab.retired = false;
    this.spares.push(slab);
  }

  /**
   * Idle for a while (nothing queued, nothing unwritten): drop the spares, go back to small
   * slabs, and let go of the current slab, so a burst's buffers do not stay with a connection
   * that has gone quiet (and 10,000 idle connections hold no output buffers at all).
   */
  private releaseBuffers(): void {
    this.spares.length = 0;
    this.slabBytes = OUT_SLAB_FIRST;
    const slab = this.slab;
    if (slab === null || slab.pending !== 0 || this.outPos !== this.outStart) return;
    this.slab = null;
    this.out = NO_OUTPUT;
    this.outView = NO_OUTPUT_VIEW;
    this.outStart = 0;
    this.outPos = 0;
  }

  // ------------------------------------------------------------ lifecycle

  /** Errors and the end of a socket (plain, or the TLSSocket wrapping it) close the connection. */
  protected watch(s: Socket): void {
    s.on('error', (err: NodeJS.ErrnoException) => this.onSocketError(err));
    s.on('close', () => this.onSocketClose());
  }

  /** The peer went away; during a TLS handshake nats-server logs Go's `EOF` for it. */
  protected onSocketClose(): void {
    if (this.tlsDeadline !== 0) this.tlsFailed('EOF');
    else this.close(CloseReason.clientClosed, false);
  }

  /**
   * Read from the socket (plain, or a TLSSocket whose handshake completed). `reuse`: a plain
   * socket reads into the thread's one read buffer (read-buffer.ts), so onRead's chunk is valid only
   * during the call; for connections that never hold a read past it and never start TLS later.
   */
  protected listen(s: Socket, reuse = false): void {
    if (!reuse || !readIntoOwnBuffer(s, this.onData)) s.on('data', this.onData);
    s.on('end', () => this.close(CloseReason.clientClosed, false));
  }

  private readonly onData = (chunk: Buffer): void => this.onRead(chunk);

  /**
   * From the next read on, the plain socket listen() reads with 'data' reads into the thread's
   * one read buffer instead (a connection that now knows it stays plaintext; see listen).
   */
  protected reuseReadBuffer(): void {
    const s = this.socket;
    // (Bytes the stream already holds would be read after the ones the buffer gets: keep 'data'.)
    if (s.readableLength !== 0 || s.listeners('data').length !== 1) return;
    s.removeListener('data', this.onData);
    if (!readIntoOwnBuffer(s, this.onData)) s.on('data', this.onData);
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    if (this.tlsDeadline !== 0) {
      this.tlsFailed(handshakeErrorText(err));
      return;
    }
    log.debug(`${this.logPrefix()} - ${KIND_NAME[this.kind]} connection error: ${err.message}`);
    this.close(err.code === 'EPIPE' ? CloseReason.writeError : CloseReason.readError, false);
  }

  /**
   * Wrap the socket in TLS and run the handshake under `tlsDeadline`, which the sweep checks
   * (nats-server doTLSHandshake). `dialHost` null: the accepting side (a client's upgrade after
   * INFO, an accepted route), which with `requireCert` verifies the peer's certificate;
   * otherwise the dialling side, which verifies the peer's name against `dialHost`. A failure
   * is logged as nats-server logs it and closes the connection (TLS Handshake Failure);
   * `onSecure` runs once the handshake completed.
   */
  protected startTlsHandshake(t: TlsOptions, dialHost: string | null, requireCert: boolean, onSecure: (s: TLSSocket) => void): TLSSocket {
    const raw = this.socket;
    const typ = TLS_TYPE[this.kind];
    if (dialHost !== null) log.debug(`${this.logPrefix()} - Starting TLS ${typ} client handshake`);
    else if (this.kind === ConnKind.client) log.debug(`${this.logPrefix()} - Starting TLS client connection handshake`);
    else log.debug(`${this.logPrefix()} - Starting TLS ${typ} server handshake`);
    if (this.tlsDeadline === 0) this.tlsDeadline = Date.now() + t.timeoutMs;
    const s = dialHost === null ? acceptTls(raw, t, requireCert) : dialTls(raw, t, dialHost);
    this.socket = s;
    s.once(dialHost === null ? 'secure' : 'secureConnect', () => {
      if (this.closed) return;
      if (dialHost === null && requireCert) {
        const refused = peerVerifyError(s);
        if (refused !== null) {
          this.tlsFailed(refused);
          return;
        }
      }
      this.tlsDeadline = 0;
      log.debug(`${this.logPrefix()} - TLS handshake complete`);
      log.debug(`${this.logPrefix()} - TLS version ${tlsVersionText(s)}, cipher suite ${tlsCipherText(s)}`);
      onSecure(s);
    });
    this.watch(s);
    return s;
  }

  private tlsFailed(why: string): void {
    if (this.closing) return;
    const typ = TLS_TYPE[this.kind];
    log.error(`${this.logPrefix()} - TLS ${typ === '' ? '' : `${typ} `}handshake error: ${why}`);
    this.tlsError = why;
    this.close(CloseReason.tlsHandshakeError, false);
  }

  /**
   * Close the connection. With `flushFirst`, queued bytes (an -ERR, say) are written before
   * the socket is ended; otherwise it is destroyed at once (slow consumer, read error).
   */
  close(reason: CloseReasonText, flushFirst: boolean): void {
    if (this.closed) return;
    this.closing = true;
    this.closed = true;
    this.closeReason = reason;
    this.onClose(reason);
    if (this.stalled) this.unstall();
    const s = this.socket;
    if (flushFirst && !s.destroyed) {
      if (this.segBytes > 0) this.flushSegments();
      if (this.outPos > this.outStart) s.end(this.out.subarray(this.outStart, this.outPos));
      else s.end();
      this.outStart = this.outPos;
      const t = setTimeout(() => s.destroy(), CLOSE_FLUSH_MS);
      t.unref();
      s.once('close', () => clearTimeout(t));
    } else {
      s.destroy();
    }
  }

  /** -ERR then close, as nats-server does for fatal protocol errors. */
  fatal(text: string, reason: CloseReasonText): void {
    if (this.closing) return;
    this.sendErr(text);
    this.close(reason, true);
  }

  // --------------------------------------------------------------- tracing

  traceIn(op: string, arg?: string): void {
    log.trace(`${this.logPrefix()} - <<- [${arg === undefined ? op : `${op} ${arg}`}]`);
  }

  traceOut(op: string): void {
    log.trace(`${this.logPrefix()} - ->> [${op}]`);
  }

  // ---------------------------------------------------------------- timers

  /** The peer answered our PING. */
  protected gotPong(): void {
    this.pingsOut = 0;
    if (this.rttStartAt > 0) {
      this.rttMs = Math.max(Date.now() - this.rttStartAt, 0.001);
      this.rttStartAt = 0;
    }
  }

  /** Called by the owning thread's sweep; `now` in ms. */
  tick(now: number): void {
    if (this.closing) return;
    if (this.tlsDeadline !== 0) {
      if (now < this.tlsDeadline) return;
      // What nats-server logs when the handshake's read deadline passes.
      const local = joinHostPort(withoutMappedPrefix(this.socket.localAddress ?? ''), this.socket.localPort ?? 0);
      this.tlsFailed(`read tcp ${local}->${joinHostPort(this.remoteAddr, this.remotePort)}: i/o timeout`);
      return;
    }
    if (this.authDeadline !== 0 && now >= this.authDeadline) {
      // nats-server logs this at debug level (client.go authTimeout); skein's clients have
      // always logged it as an error, which operators of client ports rely on.
      if (this.kind === ConnKind.client) log.error(`${this.logPrefix()} - Authentication Timeout`);
      else log.debug(`${this.logPrefix()} - Authentication Timeout`);
      this.fatal('Authentication Timeout', CloseReason.authenticationTimeout);
      return;
    }
    // Write deadline: Node buffers what the kernel will not take, so "blocked" means queued
    // bytes made no progress at all since the deadline started (nats-server: a write that
    // blocks longer than write_deadline).
    const writable = this.socket.writableLength;
    if (this.stalled && writable <= this.opts.maxPending / 2) this.unstall();
    if (this.direct !== null) this.settleDirect();
    if (this.queuedSinceTick === 0 && writable === 0 && this.outPos === this.outStart && this.segBytes === 0) {
      if (++this.idleTicks === IDLE_TICKS_RELEASE) this.releaseBuffers();
    } else {
      this.idleTicks = 0;
    }
    const progressed = writable < this.writableAtTick + this.queuedSinceTick;
    this.writableAtTick = writable;
    this.queuedSinceTick = 0;
    if (writable === 0 || progressed) this.writeBlockedSince = writable === 0 ? 0 : now;
    else if (this.writeBlockedSince === 0) this.writeBlockedSince = now;
    if (this.writeBlockedSince !== 0 && now - this.writeBlockedSince > this.opts.writeDeadlineMs) {
      // client.go flushOutbound: the chunks and bytes of the write that blocked.
      log.info(
        `${this.logPrefix()} - Slow Consumer Detected: WriteDeadline of ${goDuration(this.opts.writeDeadlineMs)} exceeded with ` +
          `${this.writesPending} chunks of ${writable} total bytes.`,
      );
      this.countSlowConsumer();
      this.close(CloseReason.slowConsumerWriteDeadline, false);
      return;
    }
    if (now >= this.nextPingAt) {
      const interval = this.pingIntervalMs();
      this.nextPingAt = now + interval;
      // As nats-server processPingTimer: recent traffic or a peer PING postpones ours, except
      // while we still want a round-trip sample.
      const needRtt = this.rttMs === 0 || now - this.rttStartAt > this.rttRefreshMs;
      if (!needRtt && !this.alwaysPing && (now - this.lastInboundAt < interval || now - this.lastPeerPingAt < interval)) return;
      if (this.pingsOut + 1 > this.opts.pingMax) {
        log.debug(`${this.logPrefix()} - Stale Client Connection - Closing`);
        this.fatal('Stale Connection', CloseReason.staleConnection);
        return;
      }
      this.pingsOut++;
      if (this.rttStartAt === 0) this.rttStartAt = now;
      this.queue(PING);
      this.flush();
    }
  }
}

/** A plain TCP socket's descriptor, or -1 (TLS, or not backed by a descriptor of its own, or closed). */
export function plainFd(s: Socket): number {
  if ('encrypted' in s) return -1;
  const fd = (s as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}
