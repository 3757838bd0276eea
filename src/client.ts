// A client connection: protocol state, auth, permissions, timers and its output buffer.
// Runs on the owning worker only. Routing of messages is the Broker's job (broker.ts);
// this file turns protocol operations into broker calls and broker deliveries into bytes.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Parser, ParseError, type ParseErrorKind, type ProtocolHandler } from './parser.ts';
import { isValidLiteralSubject, isValidSubscribeSubject, subjectMatches } from './subject.ts';
import { Permissions } from './permissions.ts';
import { decodeConnect, defaultConnectFields, type ConnectFields } from './connect.ts';
import type { Broker, Sub } from './broker.ts';
import { viewOf, shown, goQuote, subjectBytesOf, SUBJECT_ENCODING } from './bytes.ts';
import type { Options, TlsOptions } from './options.ts';
import { log, isTrace } from './log.ts';
import { InputGate, newNonce, type AuthVerdict } from './auth.ts';
import { acceptTls, handshakeErrorText, peerVerifyError, tlsCipherText, tlsVersionText } from './tls.ts';

const PONG = Buffer.from('PONG\r\n');
const PING = Buffer.from('PING\r\n');
const OK = Buffer.from('+OK\r\n');
// Output memory: a connection has no buffer of its own until it has something to send; the
// first slab is small (from Buffer's shared pool) and slabs double while a read produces more
// than they hold, up to OUT_SLAB_MAX. A slab whose writes have all completed is reused from
// its start. After IDLE_TICKS_RELEASE sweeps (100ms apart) with nothing queued, the
// connection gives its slab and spares back and starts small again.
const OUT_SLAB_FIRST = 1024;
const OUT_MIN_ROOM = 8 * 1024;
const OUT_SLAB_MAX = 1024 * 1024;
const SPARE_SLABS = 2;
const IDLE_TICKS_RELEASE = 10;
const NO_OUTPUT = Buffer.alloc(0);
const NO_OUTPUT_VIEW = viewOf(NO_OUTPUT);

/**
 * An output buffer. Written ranges stay referenced by the socket until the kernel has them,
 * so a slab is reused only once every write from it completed (counted by `pending`).
 */
class Slab {
  readonly buf: Buffer;
  readonly view: DataView;
  pending = 0;
  retired = false;
  private readonly owner: ClientConn;
  /** One callback per slab (no allocation per write). */
  readonly done: () => void;

  constructor(owner: ClientConn, bytes: number) {
    this.owner = owner;
    this.buf = Buffer.allocUnsafe(bytes);
    this.view = viewOf(this.buf);
    this.done = () => {
      if (--this.pending === 0 && this.retired) this.owner.recycle(this);
    };
  }
}
const FIRST_PING_MS = 2000;
const RTT_INTERVAL_MS = 60 * 60 * 1000;

/** Close reasons as nats-server names them (/connz `reason`). */
export const CloseReason = {
  clientClosed: 'Client Closed',
  authTimeout: 'Authentication Timeout',
  authFailure: 'Authentication Failure',
  slowPending: 'Slow Consumer (Pending Bytes)',
  slowDeadline: 'Slow Consumer (Write Deadline)',
  writeError: 'Write Error',
  readError: 'Read Error',
  parseError: 'Parse Error',
  stale: 'Stale Connection',
  protocolViolation: 'Protocol Violation',
  badProtocol: 'Bad Client Protocol Version',
  maxConnections: 'Maximum Connections Exceeded',
  maxPayload: 'Maximum Message Payload Exceeded',
  maxControlLine: 'Maximum Control Line Exceeded',
  noRespondersHeaders: 'No Responders Requires Headers',
  shutdown: 'Server Shutdown',
  internalError: 'Internal Error',
  tlsHandshake: 'TLS Handshake Failure',
} as const;


export class ClientConn implements ProtocolHandler {
  readonly cid: number;
  /** The accepted socket, or the TLSSocket wrapping it once TLS starts (startTls). */
  socket: Socket;
  readonly broker: Broker;
  readonly opts: Options;
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly parser: Parser;
  readonly subs = new Map<string, Sub>();
  readonly startedAt = Date.now();

  // Negotiated state (nats-server's defaults for absent CONNECT fields).
  verbose = true;
  pedantic = true;
  echo = true;
  headers = false;
  noResponders = false;
  protocol = 0;
  name = '';
  lang = '';
  version = '';
  user = '';
  connectReceived = false;
  closing = false;
  closed = false;
  closeReason = '';
  perms: Permissions | null = null;
  /** The nonce this connection's INFO carried (nkey users sign it); '' when none. */
  readonly nonce: string;
  /** DER of the client certificate of a verified TLS connection (for verify_and_map). */
  peerCert: Buffer | null = null;
  /** Until this time (ms) the TLS handshake may run; 0 when none is running. */
  tlsDeadline = 0;
  /** Holds input after a CONNECT whose credentials are being checked off this thread. */
  readonly gate = new InputGate();
  readonly parseChunk = (b: Buffer): void => this.parser.parse(b);
  readonly isAwaitingConnect = (): boolean => this.awaitingConnect;
  /** -V: trace protocol operations as nats-server does (`<<- [SUB foo 1]`, `->> [PONG]`). Reloadable. */
  tracing = isTrace();
  /** CONNECT options as merged so far (a second CONNECT merges over the first). */
  private readonly connectFields: ConnectFields = defaultConnectFields();

  // Output: unwritten bytes are out[outStart, outPos).
  private slab: Slab | null = null;
  out: Buffer = NO_OUTPUT;
  outView: DataView = NO_OUTPUT_VIEW;
  private slabBytes = OUT_SLAB_FIRST;
  private readonly spares: Slab[] = [];
  /** Consecutive sweeps with nothing queued or unwritten (see releaseBuffers). */
  private idleTicks = 0;
  outStart = 0;
  outPos = 0;
  dirty = false;
  /** The broker's route for the subject this connection last published to (opaque here). */
  lastRoute: object | null = null;
  /** Reading paused because a cross-thread ring is full. */
  pausedForRing = false;
  /** Reading paused because a subscriber this connection publishes to is backed up. */
  pausedForStall = false;
  /** Reading paused while the input is held at a PING/UNSUB (Broker.barrier). */
  pausedForBarrier = false;
  private readPaused = false;
  /** Unwritten output above this is written at once instead of at the end of the read. */
  readonly flushEarlyBytes: number;
  /**
   * Our unwritten output is over half of max_pending: publishers delivering to us are slowed
   * down (nats-server's fast-producer stall) until it drains.
   */
  stalled = false;

  // Timers, swept by the broker (one timer per worker, not per connection).
  authDeadline = 0;
  nextPingAt = 0;
  pingsOut = 0;
  lastInboundAt = Date.now();
  lastClientPingAt = 0;
  rttMs = 0;
  rttStartAt = 0;
  /** Since when queued output has made no progress into the kernel (0: not stalled). */
  writeBlockedSince = 0;
  private queuedSinceTick = 0;
  private writableAtTick = 0;
  firstPongSent = false;
  /** An async INFO arrived before this client's first PING; send it before that PONG. */
  infoOwed = false;

  // Stats.
  inMsgs = 0;
  inBytes = 0;
  outMsgs = 0;
  outBytes = 0;

  constructor(broker: Broker, socket: Socket, cid: number) {
    this.broker = broker;
    this.opts = broker.opts;
    this.socket = socket;
    this.cid = cid;
    this.remoteAddr = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.parser = new Parser(this);
    this.flushEarlyBytes = Math.min(256 * 1024, Math.floor(this.opts.maxPending / 4));
    const now = Date.now();
    if (broker.authRequired) this.authDeadline = now + this.opts.authorization!.timeoutMs;
    this.nextPingAt = now + this.opts.pingIntervalMs;
    this.nonce = broker.auth.usesNonce ? newNonce() : '';
  }

  get awaitingConnect(): boolean {
    return !this.connectReceived && this.broker.authRequired;
  }

  get headersEnabled(): boolean {
    return this.headers;
  }

  get maxPayload(): number {
    return this.opts.maxPayload;
  }

  get maxControlLine(): number {
    return this.opts.maxControlLine;
  }

  get pendingBytes(): number {
    return this.socket.writableLength + (this.outPos - this.outStart);
  }

  logPrefix(): string {
    return `${this.remoteAddr}:${this.remotePort} - cid:${this.cid}${this.connectLabel}`;
  }

  /**
   * ` - "v2.29.3:nodejs:name"` once CONNECT gave a version, lang or name, as nats-server adds
   * to every later line of the connection (client.go processConnect); '' until then.
   */
  private connectLabel = '';

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
      const pending = this.outPos - this.outStart;
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
      this.broker.markDirty(this);
    }
    return this.out;
  }

  queue(bytes: Uint8Array): void {
    const out = this.reserve(bytes.length);
    out.set(bytes, this.outPos);
    this.outPos += bytes.length;
  }

  /** Queue text: UTF-8 (INFO), or SUBJECT_ENCODING for lines that carry subject bytes. */
  queueString(s: string, encoding: BufferEncoding = 'utf8'): void {
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
    if (this.closed || this.outPos === this.outStart) return;
    const pending = this.socket.writableLength + (this.outPos - this.outStart);
    if (pending > this.opts.maxPending) {
      log.info(`${this.logPrefix()} - Slow Consumer Detected: MaxPending of ${this.opts.maxPending} Exceeded`);
      this.broker.slowConsumers++;
      this.close(CloseReason.slowPending, false);
      return;
    }
    const chunk = this.out.subarray(this.outStart, this.outPos);
    this.queuedSinceTick += chunk.length;
    const slab = this.slab!;
    slab.pending++;
    if (this.out.length - this.outPos < Math.min(OUT_MIN_ROOM, this.slabBytes >> 2)) {
      this.useSlab(this.slabBytes);
      this.retire(slab);
      this.outStart = 0;
      this.outPos = 0;
    } else {
      this.outStart = this.outPos;
    }
    this.socket.write(chunk, slab.done);
    if (!this.stalled && this.socket.writableLength > this.opts.maxPending / 2) {
      this.stalled = true;
      this.socket.once('drain', () => this.unstall());
    }
  }

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
  }

  /** A retired slab's writes have all completed: keep it for reuse. */
  recycle(slab: Slab): void {
    if (this.closed || this.spares.length >= SPARE_SLABS || slab.buf.length < this.slabBytes) return;
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

  /** Pause or resume reading according to the reasons to pause. */
  updateReading(): void {
    const pause = (this.pausedForRing || this.pausedForStall || this.pausedForBarrier) && !this.closed;
    if (pause === this.readPaused) return;
    this.readPaused = pause;
    if (pause) this.socket.pause();
    else this.socket.resume();
  }

  /** How long a producer waits for us (nats-server: 100ms, growing to 1s as we near max_pending). */
  stallMs(): number {
    const pending = this.socket.writableLength;
    const max = this.opts.maxPending;
    if (pending >= max) return 1000;
    const half = max / 2;
    if (pending <= half) return 100;
    return Math.min(1000, 100 + 100 * Math.floor((pending - half) / (half / 10)));
  }

  private unstall(): void {
    if (!this.stalled) return;
    this.stalled = false;
    this.broker.onUnstall();
  }

  // ------------------------------------------------------------ lifecycle

  start(info: string): void {
    const s = this.socket;
    // No setNoDelay here: the main thread's listener set TCP_NODELAY on the socket before
    // handing it over, and the option stays with the socket (one syscall less per connection).
    s.on('data', (chunk: Buffer) => this.broker.onData(this, chunk));
    s.on('error', (err: NodeJS.ErrnoException) => {
      log.debug(`${this.logPrefix()} - Client connection error: ${err.message}`);
      this.close(err.code === 'EPIPE' ? CloseReason.writeError : CloseReason.readError, false);
    });
    s.on('close', () => this.close(CloseReason.clientClosed, false));
    s.on('end', () => this.close(CloseReason.clientClosed, false));
    this.queueString(info);
    this.flush();
    s.resume();
  }

  /**
   * TLS for clients as nats-server 2.9 does it: INFO in plaintext, then the server side of the
   * handshake on this socket, here on the worker that owns it. A client that does not start
   * TLS within the timeout, or whose handshake fails (a plaintext CONNECT, no or a bad client
   * certificate with `verify`), is logged and closed; nothing else on this worker notices.
   */
  startTls(info: string, t: TlsOptions): void {
    const raw = this.socket;
    raw.setNoDelay(true);
    raw.on('error', () => {}); // reported through the TLS socket
    raw.once('close', () => {
      if (this.socket === raw) this.close(CloseReason.clientClosed, false);
    });
    // The authentication timer starts after the handshake (nats-server issue #432).
    this.authDeadline = 0;
    this.tlsDeadline = Date.now() + t.timeoutMs;
    raw.write(info, () => {
      if (this.closed) return;
      log.debug(`${this.logPrefix()} - Starting TLS client connection handshake`);
      const s = acceptTls(raw, t, t.verify);
      this.socket = s;
      this.broker.trackSocket(s);
      s.once('secure', () => this.onTlsReady(s, t));
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (this.tlsDeadline !== 0) {
          log.error(`${this.logPrefix()} - TLS handshake error: ${handshakeErrorText(err)}`);
          this.close(CloseReason.tlsHandshake, false);
          return;
        }
        log.debug(`${this.logPrefix()} - Client connection error: ${err.message}`);
        this.close(err.code === 'EPIPE' ? CloseReason.writeError : CloseReason.readError, false);
      });
      s.on('close', () => this.close(CloseReason.clientClosed, false));
    });
  }

  private onTlsReady(s: TLSSocket, t: TlsOptions): void {
    if (this.closed) return;
    if (t.verify) {
      const refused = peerVerifyError(s);
      if (refused !== null) {
        log.error(`${this.logPrefix()} - TLS handshake error: ${refused}`);
        this.close(CloseReason.tlsHandshake, false);
        return;
      }
      if (t.map) this.peerCert = s.getPeerX509Certificate()?.raw ?? null;
    }
    this.tlsDeadline = 0;
    log.debug(`${this.logPrefix()} - TLS handshake complete`);
    log.debug(`${this.logPrefix()} - TLS version ${tlsVersionText(s)}, cipher suite ${tlsCipherText(s)}`);
    const now = Date.now();
    if (this.broker.authRequired) this.authDeadline = now + this.opts.authorization!.timeoutMs;
    s.on('data', (chunk: Buffer) => this.broker.onData(this, chunk));
    s.on('end', () => this.close(CloseReason.clientClosed, false));
    this.flush(); // anything queued meanwhile
  }

  /**
   * Close the connection. With `flushFirst`, queued bytes (an -ERR, say) are written
   * before the socket is ended; otherwise it is destroyed at once (slow consumer).
   */
  close(reason: string, flushFirst: boolean): void {
    if (this.closed) return;
    this.closing = true;
    this.closed = true;
    this.closeReason = reason;
    this.broker.removeConnection(this);
    if (this.stalled) this.unstall();
    if (flushFirst && this.outPos > this.outStart && !this.socket.destroyed) {
      this.socket.end(this.out.subarray(this.outStart, this.outPos));
      this.outStart = this.outPos;
      const t = setTimeout(() => this.socket.destroy(), 1000);
      t.unref();
      this.socket.once('close', () => clearTimeout(t));
    } else if (flushFirst && !this.socket.destroyed) {
      this.socket.end();
      const t = setTimeout(() => this.socket.destroy(), 1000);
      t.unref();
    } else {
      this.socket.destroy();
    }
    log.debug(`${this.logPrefix()} - Client connection closed: ${reason}`);
  }

  /** -ERR then close, as nats-server does for fatal protocol errors. */
  private fatal(text: string, reason: string): void {
    if (this.closing) return;
    this.sendErr(text);
    this.close(reason, true);
  }

  // ------------------------------------------------------- protocol handler

  private traceIn(op: string, arg?: string): void {
    log.trace(`${this.logPrefix()} - <<- [${arg === undefined ? op : `${op} ${arg}`}]`);
  }

  traceOut(op: string): void {
    log.trace(`${this.logPrefix()} - ->> [${op}]`);
  }

  onConnect(json: string): void {
    if (this.tracing) this.traceIn('CONNECT', json.replace(/"pass"\s*:\s*"(?:[^"\\]|\\.)*"/, '"pass":"[REDACTED]"'));
    const err = decodeConnect(json, this.connectFields);
    if (err !== null) {
      log.error(`${this.logPrefix()} - Client parser ERROR: CONNECT ${err}`);
      this.close(CloseReason.protocolViolation, false);
      return;
    }
    const parsed = this.connectFields;
    this.verbose = parsed.verbose;
    this.pedantic = parsed.pedantic;
    this.echo = parsed.echo;
    this.headers = parsed.headers;
    this.noResponders = parsed.no_responders;
    this.protocol = parsed.protocol;
    this.name = parsed.name;
    this.lang = parsed.lang;
    this.version = parsed.version;
    const label = [parsed.version !== '' ? `v${parsed.version}` : '', parsed.lang, parsed.name].filter((p) => p !== '').join(':');
    this.connectLabel = label === '' ? '' : ` - ${JSON.stringify(label)}`;

    const verdict = this.authorize(parsed);
    if (verdict instanceof Promise) {
      // bcrypt or nkey: checked off this thread; this connection's input waits (InputGate).
      this.gate.waiting = true;
      this.socket.pause();
      verdict.then((v) => this.afterAsyncAuth(v), () => this.afterAsyncAuth(null));
      return;
    }
    this.finishConnect(verdict);
  }

  private afterAsyncAuth(verdict: AuthVerdict): void {
    if (this.closed) return;
    this.finishConnect(verdict);
    this.broker.flushAll();
    const held = this.gate.release();
    if (this.closing) return;
    if (!this.pausedForRing && !this.pausedForStall && !this.pausedForBarrier) this.socket.resume();
    for (const chunk of held) {
      if (this.closing) break;
      this.broker.onData(this, chunk);
    }
  }

  /** The rest of CONNECT, once the credentials have an answer. */
  private finishConnect(verdict: AuthVerdict | true): void {
    if (verdict === null) {
      this.authViolation();
      return;
    }
    if (verdict !== true) {
      if (verdict.user !== this.user || !this.connectReceived) {
        this.perms = verdict.permissions ? new Permissions(verdict.permissions) : null;
        // nats-server drops its delivery deny filter with the permissions (RegisterUser).
        if (this.perms === null) for (const sub of this.subs.values()) sub.denyFilter = null;
      }
      this.user = verdict.user;
    }
    if (this.connectFields.account !== '' || this.connectFields.new_account) {
      this.fatal('Authorization Violation', CloseReason.authFailure);
      return;
    }
    if (this.protocol < 0 || this.protocol > 1) {
      this.fatal('invalid client protocol', CloseReason.badProtocol);
      return;
    }
    if (this.noResponders && !this.headers) {
      this.fatal('no responders requires headers support', CloseReason.noRespondersHeaders);
      return;
    }
    this.connectReceived = true;
    this.authDeadline = 0;
    // nats-server sends its first PING soon after CONNECT to measure RTT (and restarts that
    // timer on every CONNECT, client.go processConnect).
    const first = Math.min(this.opts.pingIntervalMs, FIRST_PING_MS);
    this.nextPingAt = Date.now() + first + Math.floor(Math.random() * first * 0.2);
    if (this.verbose) this.queue(OK);
  }

  /**
   * client.go authViolation: with nkey users the line names the nkey the client sent, else
   * with a users list the user.
   */
  private authViolation(): void {
    const a = this.opts.authorization;
    const c = this.connectFields;
    const who = a?.nkeys !== undefined && a.nkeys.length > 0 ? ` - Nkey ${goQuote(subjectBytesOf(c.nkey))}`
      : a?.users !== undefined && a.users.length > 0 ? ` - User ${goQuote(subjectBytesOf(c.user))}`
      : '';
    log.error(`${this.logPrefix()} - authentication error${who}`);
    this.fatal('Authorization Violation', CloseReason.authFailure);
  }

  /**
   * Config reload (reload.go reloadAuthorization): the CONNECT's credentials are checked
   * against the new authorization (on the hashing thread for bcrypt and nkeys). A client that
   * no longer passes is closed with an Authorization Violation; otherwise it gets the new
   * permissions, and each subscription they no longer allow is removed with an -ERR.
   */
  reloadAuthorization(): void {
    if (this.closing || !this.connectReceived) return;
    if (!this.broker.authRequired) {
      this.applyReloadedAuth({ user: this.user });
      return;
    }
    const verdict = this.broker.auth.authenticate(this.connectFields, this.nonce, this.peerCert, this.logPrefix());
    if (verdict instanceof Promise) {
      verdict.then((v) => this.applyReloadedAuth(v), () => this.applyReloadedAuth(null)).finally(() => this.broker.flushAll());
      return;
    }
    this.applyReloadedAuth(verdict);
  }

  private applyReloadedAuth(verdict: AuthVerdict): void {
    if (this.closing) return;
    if (verdict === null) {
      this.authViolation();
      return;
    }
    this.user = verdict.user;
    const perms = verdict.permissions ? new Permissions(verdict.permissions) : null;
    this.perms = perms;
    for (const sub of [...this.subs.values()]) {
      if (perms !== null && perms.hasSubscribe && !perms.canSubscribe(sub.subject, sub.queue)) {
        this.removeSub(sub);
        this.sendErr(`Permissions Violation for Subscription to ${goQuote(sub.subject)} (sid ${goQuote(sub.sid)})`);
        log.info(`Removed sub ${goQuote(sub.subject)} (sid ${goQuote(sub.sid)}) for ${this.authUser()} - not authorized`);
        continue;
      }
      const wildcard = sub.subject.includes('*') || sub.subject.includes('>');
      sub.denyFilter = perms !== null && perms.hasSubscribeDeny && wildcard ? perms.denyOverlapping(sub.subject) : null;
    }
  }

  /** max_connections went down on reload (client.go maxConnExceeded). */
  maxConnectionsExceeded(): void {
    log.error(`${this.logPrefix()} - maximum connections exceeded`);
    this.fatal('maximum connections exceeded', CloseReason.maxConnections);
  }

  /**
   * true: nothing to check (no auth); a verdict, or a Promise of one. Every CONNECT is
   * authenticated again, with its fields merged over the earlier ones (nats-server's
   * processConnect): wrong credentials on a second CONNECT close the connection, and a
   * different valid user gets that user's permissions (finishConnect).
   */
  private authorize(c: ConnectFields): AuthVerdict | true | Promise<AuthVerdict> {
    if (!this.broker.authRequired) return true;
    return this.broker.auth.authenticate(c, this.nonce, this.peerCert, this.logPrefix());
  }

  onPubArgs(sb: Buffer, ss: number, se: number): void {
    if (!this.pedantic || isFastLiteral(sb, ss, se)) return;
    if (!isValidLiteralSubject(sb.toString(SUBJECT_ENCODING, ss, se))) this.sendErr('Invalid Publish Subject');
  }

  onPub(sb: Buffer, ss: number, se: number, rs: number, re: number, pb: Buffer, ps: number, pe: number, hdrLen: number, tail: number): void {
    if (this.tracing) {
      const reply = rs >= 0 ? ` ${sb.toString('utf8', rs, re)}` : '';
      const sizes = hdrLen >= 0 ? `${hdrLen} ${pe - ps}` : `${pe - ps}`;
      this.traceIn(hdrLen >= 0 ? 'HPUB' : 'PUB', `${sb.toString('utf8', ss, se)}${reply} ${sizes}`);
      log.trace(`${this.logPrefix()} - <<- MSG_PAYLOAD: [${JSON.stringify(pb.toString('utf8', ps, pe))}]`);
    }
    if (this.broker.faultInjection) this.broker.faultHook(sb.toString(SUBJECT_ENCODING, ss, se));
    this.inMsgs++;
    this.inBytes += pe - ps;
    // `_GR_.` is reserved for gateway-routed replies.
    if (se - ss >= 5 && sb[ss] === 95 && sb[ss + 1] === 71 && sb[ss + 2] === 82 && sb[ss + 3] === 95 && sb[ss + 4] === 46) {
      this.pubViolation(sb.toString(SUBJECT_ENCODING, ss, se));
      return;
    }
    if (this.perms !== null && this.perms.hasPublish) {
      const subject = sb.toString(SUBJECT_ENCODING, ss, se);
      if (!this.perms.canPublish(subject)) {
        this.pubViolation(subject);
        return;
      }
    }
    if (rs >= 0 && isReservedReply(sb, rs, re)) {
      const reply = goQuote(sb.toString(SUBJECT_ENCODING, rs, re));
      log.error(`${this.logPrefix()} - Publish Violation - ${this.authUser()}, Reply ${reply}`);
      this.sendErr(`Permissions Violation for Publish with Reply of ${reply}`);
      return;
    }
    if (this.verbose) this.queue(OK);
    const delivered = this.broker.publish(this, sb, ss, se, rs, re, pb, ps, pe, hdrLen, tail);
    if (!delivered && rs >= 0 && this.noResponders) this.sendNoResponders(sb, rs, re);
  }

  private pubViolation(subject: string): void {
    log.error(`${this.logPrefix()} - Publish Violation - ${this.authUser()}, Subject ${goQuote(subject)}`);
    this.sendErr(`Permissions Violation for Publish to ${goQuote(subject)}`);
  }

  /** How nats-server names the client in violation logs (client.go getAuthUser). */
  private authUser(): string {
    const user = this.connectFields.user;
    return user === '' ? 'User "N/A"' : `User ${goQuote(subjectBytesOf(user))}`;
  }

  /** The 503 status nats-server sends when a request reached nobody. */
  private sendNoResponders(sb: Buffer, rs: number, re: number): void {
    const reply = sb.toString(SUBJECT_ENCODING, rs, re);
    for (const sub of this.subs.values()) {
      if (sub.queue === null && isValidSubscribeSubject(sub.subject) && subjectMatches(sub.subject, reply)) {
        this.queueString(`HMSG ${reply} ${sub.sid} 16 16\r\nNATS/1.0 503\r\n\r\n\r\n`, SUBJECT_ENCODING);
        return;
      }
    }
  }

  onSub(subject: string, queue: string | null, sid: string): void {
    if (this.tracing) this.traceIn('SUB', shown(queue === null ? `${subject} ${sid}` : `${subject} ${queue} ${sid}`));
    if (!isValidSubscribeSubject(subject)) {
      this.sendErr('Invalid Subject');
      return;
    }
    if (queue === '_sys_') {
      this.subViolation(subject, queue, sid);
      return;
    }
    if (this.perms !== null && this.perms.hasSubscribe && !this.perms.canSubscribe(subject, queue)) {
      this.subViolation(subject, queue, sid);
      return;
    }
    if (this.opts.maxSubscriptions > 0 && this.subs.size >= this.opts.maxSubscriptions) {
      log.error(`${this.logPrefix()} - maximum subscriptions exceeded`);
      this.sendErr('maximum subscriptions exceeded');
      return;
    }
    if (!this.subs.has(sid)) {
      const sub = this.broker.subscribe(this, subject, queue, sid);
      this.subs.set(sid, sub);
      if (this.perms !== null && this.perms.hasSubscribeDeny && (subject.includes('*') || subject.includes('>'))) {
        sub.denyFilter = this.perms.denyOverlapping(subject);
      }
    }
    if (this.verbose) this.queue(OK);
  }

  private subViolation(subject: string, queue: string | null, sid: string): void {
    const text = queue === null
      ? `Permissions Violation for Subscription to ${goQuote(subject)}`
      : `Permissions Violation for Subscription to ${goQuote(subject)} using queue ${goQuote(queue)}`;
    log.error(`${this.logPrefix()} - Subscription Violation - ${this.authUser()}, Subject ${goQuote(subject)}${queue === null ? '' : `, Queue: ${goQuote(queue)}`}, SID ${shown(sid)}`);
    this.sendErr(text);
  }

  onUnsub(sid: string, max: number): void {
    if (this.tracing) this.traceIn('UNSUB', shown(max > 0 ? `${sid} ${max}` : sid));
    const sub = this.subs.get(sid);
    if (sub !== undefined) {
      if (max > 0 && max > sub.delivered) {
        sub.max = max;
      } else {
        this.removeSub(sub);
      }
    }
    if (this.verbose) this.queue(OK);
  }

  removeSub(sub: Sub): void {
    if (this.subs.get(sub.sid) !== sub) return;
    this.subs.delete(sub.sid);
    this.broker.unsubscribe(sub);
  }

  /** Parser: before a PING or UNSUB. False holds the input there (see Broker.barrier). */
  barrier(): boolean {
    return this.broker.barrier(this);
  }

  onPing(): void {
    if (this.tracing) {
      this.traceIn('PING');
      this.traceOut('PONG');
    }
    this.lastClientPingAt = Date.now();
    if (!this.firstPongSent) {
      this.firstPongSent = true;
      const pendingInfo = this.broker.pendingAsyncInfo(this);
      if (pendingInfo !== null) this.queueString(pendingInfo);
    }
    this.queue(PONG);
  }

  onPong(): void {
    if (this.tracing) this.traceIn('PONG');
    this.pingsOut = 0;
    if (this.rttStartAt > 0) {
      this.rttMs = Math.max(Date.now() - this.rttStartAt, 0.001);
      this.rttStartAt = 0;
    }
  }

  onClientErr(text: string): void {
    log.debug(`${this.logPrefix()} - Client error: ${text}`);
    this.close(CloseReason.parseError, true);
  }

  onProtocolError(kind: ParseErrorKind, detail: string): void {
    if (this.closing) return;
    switch (kind) {
      case ParseError.unknownOp:
        log.error(`${this.logPrefix()} - Client parser ERROR, proto=${detail}`);
        this.fatal('Unknown Protocol Operation', CloseReason.parseError);
        break;
      case ParseError.auth:
        this.authViolation();
        break;
      case ParseError.controlLine:
        this.fatal('maximum control line exceeded', CloseReason.maxControlLine);
        break;
      case ParseError.maxPayload:
        log.error(`${this.logPrefix()} - Maximum Payload Violation: ${detail} vs ${this.opts.maxPayload}`);
        this.fatal('Maximum Payload Violation', CloseReason.maxPayload);
        break;
      case ParseError.args:
      case ParseError.headers:
        log.error(`${this.logPrefix()} - Client parser ERROR: ${detail}`);
        this.close(CloseReason.protocolViolation, true);
        break;
    }
  }

  // ---------------------------------------------------------------- timers

  /** Called by the broker's sweep; `now` in ms. */
  tick(now: number): void {
    if (this.closing) return;
    if (this.tlsDeadline !== 0) {
      if (now < this.tlsDeadline) return;
      // What nats-server logs when the handshake's read deadline passes.
      const local = `${this.socket.localAddress ?? ''}:${this.socket.localPort ?? 0}`.replace(/^::ffff:/, '');
      log.error(`${this.logPrefix()} - TLS handshake error: read tcp ${local}->${this.remoteAddr.replace(/^::ffff:/, '')}:${this.remotePort}: i/o timeout`);
      this.close(CloseReason.tlsHandshake, false);
      return;
    }
    if (this.authDeadline !== 0 && now >= this.authDeadline) {
      log.error(`${this.logPrefix()} - Authentication Timeout`);
      this.fatal('Authentication Timeout', CloseReason.authTimeout);
      return;
    }
    // Write deadline: Node buffers what the kernel will not take, so "blocked" means queued
    // bytes made no progress at all since the deadline started (nats-server: a write that
    // blocks longer than write_deadline).
    const writable = this.socket.writableLength;
    if (this.stalled && writable <= this.opts.maxPending / 2) this.unstall();
    if (this.queuedSinceTick === 0 && writable === 0 && this.outPos === this.outStart) {
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
      log.info(`${this.logPrefix()} - Slow Consumer Detected: WriteDeadline of ${this.opts.writeDeadlineMs}ms Exceeded`);
      this.broker.slowConsumers++;
      this.close(CloseReason.slowDeadline, false);
      return;
    }
    if (now >= this.nextPingAt) {
      const interval = this.opts.pingIntervalMs;
      this.nextPingAt = now + interval;
      const needRtt = this.rttMs === 0 || now - this.rttStartAt > RTT_INTERVAL_MS;
      // Recent traffic from the client (data or its own PING) makes our PING unnecessary.
      if (!needRtt && (now - this.lastInboundAt < interval || now - this.lastClientPingAt < interval)) return;
      if (this.pingsOut + 1 > this.opts.pingMax) {
        log.debug(`${this.logPrefix()} - Stale Client Connection - Closing`);
        this.fatal('Stale Connection', CloseReason.stale);
        return;
      }
      this.pingsOut++;
      if (this.rttStartAt === 0) this.rttStartAt = now;
      this.queue(PING);
      this.flush();
    }
  }
}

/** A subject with no empty token and no '*'/'>' byte at all: certainly a valid literal. */
function isFastLiteral(b: Buffer, s: number, e: number): boolean {
  let prev = 46;
  for (let i = s; i < e; i++) {
    const c = b[i];
    if (c === 42 || c === 62) return false;
    if (c === 46 && prev === 46) return false;
    prev = c;
  }
  return prev !== 46;
}

const RESERVED_REPLIES = [Buffer.from('_R_.'), Buffer.from('_GR_.'), Buffer.from('$JS.ACK.')];

function isReservedReply(b: Buffer, s: number, e: number): boolean {
  outer: for (const p of RESERVED_REPLIES) {
    if (e - s < p.length) continue;
    for (let k = 0; k < p.length; k++) if (b[s + k] !== p[k]) continue outer;
    return true;
  }
  return false;
}


