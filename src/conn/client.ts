// A client connection: protocol state, auth and permissions. The output buffer, timers, TLS
// and close behaviour are every connection's (conn/base.ts). Runs on the owning worker only.
// Routing of messages is the Broker's job (broker/broker.ts): this file turns protocol operations into
// calls on its ClientHost and deliveries into bytes.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Parser, ParseError, type ParseErrorKind, type ProtocolHandler } from '../protocol/client-parser.ts';
import { isGatewayRouted, isValidLiteralSubject, isValidSubscribeSubject, subjectMatches } from '../protocol/subject.ts';
import { Permissions } from './permissions.ts';
import { decodeConnect, defaultConnectFields, type ConnectFields } from '../protocol/connect.ts';
import { shown, goQuote, subjectBytesOf, SUBJECT_ENCODING } from '../protocol/bytes.ts';
import type { Options, TlsOptions } from '../config/options.ts';
import type { Interest } from '../broker/sublist.ts';
import { log, isTrace } from '../log.ts';
import { newNonce, type AuthVerdict, type ClientAuthenticator } from './auth.ts';
import { Conn, ConnKind, CloseReason, type CloseReasonText } from './base.ts';
import type { MsgView } from '../protocol/msg-view.ts';
import { joinHostPort } from '../protocol/hostport.ts';

const PONG = Buffer.from('PONG\r\n');
const OK = Buffer.from('+OK\r\n');
/** First PING after CONNECT: about 2s (nats-server firstPingInterval, plus 0-20%). */
const FIRST_PING_MS = 2000;
const RTT_INTERVAL_MS = 60 * 60 * 1000;

/** A subscription in a worker's sublist: a local client's, or another thread's interest. */
export interface Sub extends Interest {
  readonly subject: string;
  readonly queue: string | null;
  readonly sid: string;
  readonly sidBytes: Buffer;
  /** Local subscriber, or null for another thread's interest. */
  readonly conn: ClientConn | null;
  /** Owning thread for remote interest; -1 for local subscriptions. */
  readonly thread: number;
  weight: number;
  delivered: number;
  max: number;
  removed: boolean;
  denyFilter: string[] | null;
  /** `<subject> <sid>` for a literal subject (what every MSG to it starts with after the op). */
  readonly prefix: Buffer | null;
  readonly prefixView: DataView | null;
  /** Its counter in its connection's direct-delivery slot (broker/direct.ts), or -1: it takes none. */
  directIndex: number;
}

/** What a client connection needs from the worker that owns it (broker/broker.ts). */
export interface ClientHost {
  readonly opts: Options;
  /** Changes only by config reload. */
  readonly authRequired: boolean;
  readonly auth: ClientAuthenticator;
  slowConsumers: number;
  readonly faultInjection: boolean;
  markDirty(conn: ClientConn): void;
  onData(conn: ClientConn, chunk: Buffer): void;
  removeConnection(conn: ClientConn): void;
  /** A subscriber drained: publishers stalled for it may go on. */
  onUnstall(conn: ClientConn): void;
  /** A socket that must be closed before the worker may stop (a TLS socket wrapping an accepted one). */
  trackSocket(socket: Socket): void;
  flushAll(): void;
  /** Route one published message; returns whether it went anywhere (for no-responders). */
  publish(from: ClientConn, m: MsgView): boolean;
  subscribe(conn: ClientConn, subject: string, queue: string | null, sid: string): Sub;
  unsubscribe(sub: Sub): void;
  /** Before `sub.delivered` is looked at: it includes what other workers delivered directly. */
  settleSub(sub: Sub): void;
  /** `conn` got permissions: no direct deliveries for it from now on. */
  noDirect(conn: ClientConn): void;
  /** Before a PING or UNSUB: false holds the input there (see Broker.barrier). */
  barrier(conn: ClientConn): boolean;
  /** An INFO owed to the client at its first PING, or null. */
  pendingAsyncInfo(conn: ClientConn): string | null;
  faultHook(subject: string): void;
}

export class ClientConn extends Conn implements ProtocolHandler {
  readonly broker: ClientHost;
  readonly parser: Parser;
  readonly subs = new Map<string, Sub>();

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
  perms: Permissions | null = null;
  /** Takes no direct deliveries (broker/direct.ts), for good. */
  directOff = false;
  /** The nonce this connection's INFO carried (nkey users sign it); '' when none. */
  readonly nonce: string;
  readonly parseChunk = (b: Buffer): void => this.parser.parse(b);
  readonly isAwaitingConnect = (): boolean => this.awaitingConnect;
  /** CONNECT options as merged so far (a second CONNECT merges over the first). */
  private readonly connectFields: ConnectFields = defaultConnectFields();
  /**
   * ` - "v2.29.3:nodejs:name"` once CONNECT gave a version, lang or name, as nats-server adds
   * to every later line of the connection (client.go processConnect); '' until then.
   */
  private connectLabel = '';

  /** What of outMsgs/outBytes the thread's counters include (Broker.flushAll adds the rest). */
  outMsgsCounted = 0;
  outBytesCounted = 0;
  /** The broker's route for the subject this connection last published to (opaque here). */
  lastRoute: object | null = null;
  /** Reading paused because a cross-thread ring is full. */
  pausedForRing = false;
  /** Reading paused because a subscriber this connection publishes to is backed up. */
  pausedForStall = false;
  /** Reading paused while the input is held at a PING/UNSUB (Broker.barrier). */
  pausedForBarrier = false;
  /** Reading paused while an inbox its last read fed holds a flood (Broker.holdFlood). */
  pausedForFlood = false;
  private readPaused = false;
  /**
   * Unwritten output above this is written at once instead of at the end of the read: 512 KiB
   * (a quarter of max_pending when that is less), so the output of one 256 KiB read of small
   * messages still goes out in one write. At 256 KiB it took two: `-w1` 1->1 16 B server CPU
   * per message 208-245 -> 180-195 ns, 1 KiB 1750-2030 -> 1630-1730 ns (768 KiB, alternated).
   */
  readonly flushEarlyBytes: number;
  firstPongSent = false;
  /** An async INFO arrived before this client's first PING; send it before that PONG. */
  infoOwed = false;

  constructor(broker: ClientHost, socket: Socket, cid: number) {
    super(ConnKind.client, socket, cid, broker.opts);
    this.broker = broker;
    this.tracing = isTrace();
    this.parser = new Parser(this);
    this.rttRefreshMs = RTT_INTERVAL_MS;
    this.flushEarlyBytes = Math.min(512 * 1024, Math.floor(this.opts.maxPending / 4));
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

  logPrefix(): string {
    return `${joinHostPort(this.remoteAddr, this.remotePort)} - cid:${this.cid}${this.connectLabel}`;
  }

  protected onRead(chunk: Buffer): void {
    this.broker.onData(this, chunk);
  }

  protected markDirty(): void {
    this.broker.markDirty(this);
  }

  protected onUnstall(): void {
    this.broker.onUnstall(this);
  }

  protected countSlowConsumer(): void {
    this.broker.slowConsumers++;
  }

  protected onClose(reason: CloseReasonText): void {
    this.broker.removeConnection(this);
    log.debug(`${this.logPrefix()} - Client connection closed: ${reason}`);
  }

  /** Pause or resume reading according to the reasons to pause. */
  updateReading(): void {
    const pause = (this.pausedForRing || this.pausedForStall || this.pausedForBarrier || this.pausedForFlood) && !this.closed;
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

  // ------------------------------------------------------------ lifecycle

  start(info: string): void {
    const s = this.socket;
    // No setNoDelay here: the main thread's listener set TCP_NODELAY on the socket before
    // handing it over, and the option stays with the socket (one syscall less per connection).
    this.watch(s);
    // Plaintext for good (a TLS client goes through startTls): reads go into the thread's one
    // read buffer.
    this.listen(s, true);
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
      if (this.socket === raw) this.onSocketClose(); // gone before the handshake began
    });
    // The authentication timer starts after the handshake (nats-server issue #432).
    this.authDeadline = 0;
    this.tlsDeadline = Date.now() + t.timeoutMs;
    raw.write(info, () => {
      if (this.closed) return;
      const s = this.startTlsHandshake(t, null, t.verify, (secure) => this.onTlsReady(secure, t));
      this.broker.trackSocket(s);
    });
  }

  private onTlsReady(s: TLSSocket, t: TlsOptions): void {
    if (t.verify && t.map) this.peerCert = s.getPeerX509Certificate()?.raw ?? null;
    if (this.broker.authRequired) this.authDeadline = Date.now() + this.opts.authorization!.timeoutMs;
    this.listen(s);
    this.flush(); // anything queued meanwhile
  }

  // ------------------------------------------------------- protocol handler

  onConnect(json: string): void {
    // client.go processConnect clears the auth timer as soon as CONNECT arrives: a login
    // waiting for its bcrypt/nkey check (queued behind others on the checking thread) is
    // never cut off by the timer; the check's answer decides.
    this.authDeadline = 0;
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
      verdict.then(
        (v) => this.afterAsyncAuth(v),
        () => this.afterAsyncAuth(null),
      );
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
    if (!this.pausedForRing && !this.pausedForStall && !this.pausedForBarrier && !this.pausedForFlood) this.socket.resume();
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
        if (this.perms !== null) this.broker.noDirect(this);
        // nats-server drops its delivery deny filter with the permissions (RegisterUser).
        if (this.perms === null) for (const sub of this.subs.values()) sub.denyFilter = null;
      }
      this.user = verdict.user;
    }
    if (this.connectFields.account !== '' || this.connectFields.new_account) {
      this.fatal('Authorization Violation', CloseReason.authenticationViolation);
      return;
    }
    if (this.protocol < 0 || this.protocol > 1) {
      this.fatal('invalid client protocol', CloseReason.badClientProtocolVersion);
      return;
    }
    if (this.noResponders && !this.headers) {
      this.fatal('no responders requires headers support', CloseReason.noRespondersRequiresHeaders);
      return;
    }
    this.connectReceived = true;
    this.authDeadline = 0;
    // nats-server sends its first PING soon after CONNECT to measure RTT (and restarts that
    // timer on every CONNECT, client.go processConnect).
    this.schedulePing(FIRST_PING_MS);
    if (this.verbose) this.queue(OK);
  }

  /**
   * client.go authViolation: with nkey users the line names the nkey the client sent, else
   * with a users list the user.
   */
  private authViolation(): void {
    const a = this.opts.authorization;
    const c = this.connectFields;
    const who =
      a?.nkeys !== undefined && a.nkeys.length > 0
        ? ` - Nkey ${goQuote(subjectBytesOf(c.nkey))}`
        : a?.users !== undefined && a.users.length > 0
          ? ` - User ${goQuote(subjectBytesOf(c.user))}`
          : '';
    log.error(`${this.logPrefix()} - authentication error${who}`);
    this.fatal('Authorization Violation', CloseReason.authenticationViolation);
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
      verdict
        .then(
          (v) => this.applyReloadedAuth(v),
          () => this.applyReloadedAuth(null),
        )
        .finally(() => this.broker.flushAll());
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
    if (perms !== null) this.broker.noDirect(this);
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
    this.fatal('maximum connections exceeded', CloseReason.maxConnectionsExceeded);
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

  /**
   * One published message. Kept small enough for V8 to inline into the parser's loop (its
   * default limit is 460 bytes of bytecode): tracing, permission checks and violations are
   * calls taken only when they apply.
   */
  onPub(m: MsgView): void {
    const sb = m.sb;
    const ss = m.ss;
    const rs = m.rs;
    const re = m.re;
    if (this.tracing) this.tracePub(m);
    if (this.broker.faultInjection) this.broker.faultHook(sb.toString(SUBJECT_ENCODING, ss, m.se));
    this.inMsgs++;
    this.inBytes += m.pe - m.ps;
    // Clients may not publish to `_GR_.` (gateway-routed replies). The first byte is tested here,
    // outside the call: most subjects do not begin with `_`.
    if (sb[ss] === 95 && isGatewayRouted(sb, ss, m.se)) return this.pubViolation(sb.toString(SUBJECT_ENCODING, ss, m.se));
    if (this.perms !== null && this.perms.hasPublish && !this.mayPublish(sb, ss, m.se)) return;
    if (rs >= 0 && (sb[rs] === 95 || sb[rs] === 36) && isReservedReply(sb, rs, re)) return this.replyViolation(sb, rs, re);
    if (this.verbose) this.queue(OK);
    const delivered = this.broker.publish(this, m);
    if (!delivered && rs >= 0 && this.noResponders) this.sendNoResponders(sb, rs, re);
  }

  private tracePub(m: MsgView): void {
    const reply = m.rs >= 0 ? ` ${m.sb.toString('utf8', m.rs, m.re)}` : '';
    const sizes = m.hdr >= 0 ? `${m.hdr} ${m.pe - m.ps}` : `${m.pe - m.ps}`;
    this.traceIn(m.hdr >= 0 ? 'HPUB' : 'PUB', `${m.sb.toString('utf8', m.ss, m.se)}${reply} ${sizes}`);
    log.trace(`${this.logPrefix()} - <<- MSG_PAYLOAD: [${JSON.stringify(m.pb.toString('utf8', m.ps, m.pe))}]`);
  }

  /** Publish permissions allow sb[ss, se)? If not, the violation is logged and sent. */
  private mayPublish(sb: Buffer, ss: number, se: number): boolean {
    const subject = sb.toString(SUBJECT_ENCODING, ss, se);
    if (this.perms!.canPublish(subject)) return true;
    this.pubViolation(subject);
    return false;
  }

  private replyViolation(sb: Buffer, rs: number, re: number): void {
    const reply = goQuote(sb.toString(SUBJECT_ENCODING, rs, re));
    log.error(`${this.logPrefix()} - Publish Violation - ${this.authUser()}, Reply ${reply}`);
    this.sendErr(`Permissions Violation for Publish with Reply of ${reply}`);
  }

  private pubViolation(subject: string): void {
    log.error(`${this.logPrefix()} - Publish Violation - ${this.authUser()}, Subject ${goQuote(subject)}`);
    this.sendErr(`Permissions Violation for Publish to ${goQuote(subject)}`);
  }

  /** How nats-server names the client in violation logs (client.go getAuthUser). */
  private authUser(): string {
    const c = this.connectFields;
    if (c.nkey !== '') return `Nkey ${goQuote(subjectBytesOf(c.nkey))}`;
    // With verify_and_map nats-server sets the username to the user the certificate mapped to.
    const user = this.opts.tls?.map === true && this.user !== '' ? this.user : c.user;
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
    const text =
      queue === null
        ? `Permissions Violation for Subscription to ${goQuote(subject)}`
        : `Permissions Violation for Subscription to ${goQuote(subject)} using queue ${goQuote(queue)}`;
    log.error(
      `${this.logPrefix()} - Subscription Violation - ${this.authUser()}, Subject ${goQuote(subject)}${queue === null ? '' : `, Queue: ${goQuote(queue)}`}, SID ${shown(sid)}`,
    );
    this.sendErr(text);
  }

  onUnsub(sid: string, max: number): void {
    if (this.tracing) this.traceIn('UNSUB', shown(max > 0 ? `${sid} ${max}` : sid));
    const sub = this.subs.get(sid);
    if (sub !== undefined) {
      if (max > 0) this.broker.settleSub(sub);
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
    this.lastPeerPingAt = Date.now();
    if (!this.firstPongSent) {
      this.firstPongSent = true;
      const pendingInfo = this.broker.pendingAsyncInfo(this);
      if (pendingInfo !== null) this.queueString(pendingInfo);
    }
    this.queue(PONG);
  }

  onPong(): void {
    if (this.tracing) this.traceIn('PONG');
    this.gotPong();
  }

  onClientErr(text: string): void {
    // client.go processErr: an -ERR from a client is logged and closes it.
    log.error(`${this.logPrefix()} - Client Error ${text}`);
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
        this.fatal('maximum control line exceeded', CloseReason.maxControlLineExceeded);
        break;
      case ParseError.maxPayload:
        log.error(`${this.logPrefix()} - Maximum Payload Violation: ${detail} vs ${this.opts.maxPayload}`);
        this.fatal('Maximum Payload Violation', CloseReason.maxPayloadExceeded);
        break;
      case ParseError.args:
      case ParseError.headers:
        log.error(`${this.logPrefix()} - Client parser ERROR: ${detail}`);
        this.close(CloseReason.protocolViolation, true);
        break;
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

// (Each begins with `_` or `$`: onPub looks further only after one of those.)
const RESERVED_REPLIES = [Buffer.from('_R_.'), Buffer.from('_GR_.'), Buffer.from('$JS.ACK.')];

function isReservedReply(b: Buffer, s: number, e: number): boolean {
  // (Indexed: a for-of here allocated an iterator per PUB with a reply.)
  outer: for (let i = 0; i < RESERVED_REPLIES.length; i++) {
    const p = RESERVED_REPLIES[i];
    if (e - s < p.length) continue;
    for (let k = 0; k < p.length; k++) if (b[s + k] !== p[k]) continue outer;
    return true;
  }
  return false;
}
