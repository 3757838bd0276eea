// What the route, gateway and leaf control planes (cluster/*-control.ts) share: the hooks a
// server-to-server connection calls on its host that only hand on to the bridge (the
// end-of-read flush, the drained producers), the thread's timers, a CONNECT whose password is
// checked off the thread while the connection's input waits, the dial with its timeout, the
// interest snapshot a replacement thread asks for, and reload / reopen-log / shutdown. Each
// control plane keeps what its role means (handshake, interest, forwarding).
//
// Runs on the thread that owns the role (route, gateway or leaf thread) only.

import net, { type Socket } from 'node:net';
import type { Options } from '../config/options.ts';
import { updateOptionsInPlace } from '../config/options.ts';
import type { PeerConn, PeerHost } from '../conn/peer.ts';
import type { CloseReasonText } from '../conn/base.ts';
import type { PeerOpCode } from '../protocol/peer-parser.ts';
import type { MsgView } from '../protocol/msg-view.ts';
import { CredentialChecker } from '../conn/auth.ts';
import { reconfigureLog, reopenLog } from '../log.ts';
import type { Bridge } from './bridge.ts';

/** An interest snapshot: the mesh position it was taken at and its (subject, queue, weight) entries. */
export interface InterestSnapshot {
  position: number;
  entries: [string, string | null, number][];
}

export abstract class PeerControl<C extends PeerConn<C, PeerHost<C>>> implements PeerHost<C> {
  /** The options of the thread; a reload updates this object in place. */
  readonly opts: Options;
  readonly thread: number;
  /** What the connections carry, to and from the other threads. */
  abstract readonly bridge: Bridge<C>;
  /** Passwords that are bcrypt hashes are compared on a hashing thread (conn/auth.ts). */
  protected readonly checker = new CredentialChecker();
  protected readonly timers = new Set<NodeJS.Timeout>();
  protected running = false;
  /** `route thread`, `gateway thread`, `leaf thread`: who says a log file cannot be opened. */
  private readonly threadName: string;

  constructor(opts: Options, thread: number, threadName: string) {
    this.opts = opts;
    this.thread = thread;
    this.threadName = threadName;
  }

  /** Start the thread's work: dial what is configured. */
  abstract start(): void;
  /** A socket main accepted on this role's port, handed over with its connection id. */
  abstract addInbound(socket: Socket, cid: number): void;
  abstract onPeerControl(c: C, op: PeerOpCode, line: Buffer, as: number, ae: number): void;
  abstract onPeerMsg(c: C, m: MsgView): void;
  abstract onPeerClosed(c: C, reason: CloseReasonText): void;

  markDirty(c: C): void {
    this.bridge.markDirty(c);
  }

  onPeerDrained(_c: C): void {
    this.bridge.onPeerDrained();
  }

  beforePeerRead(_c: C): void {
    this.bridge.beforeRead();
  }

  afterPeerRead(c: C): void {
    this.bridge.afterRead(c);
  }

  /** Run `fn` in `ms` unless the thread shuts down first. */
  protected later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.running) fn();
    }, ms);
    this.timers.add(t);
  }

  /**
   * Act on a CONNECT's credentials verdict: at once, or, for a password checked off this thread
   * (bcrypt), once it comes (holdInputUntil).
   */
  protected decideConnect(c: C, verdict: boolean | Promise<boolean>, accept: () => void, refuse: () => void): void {
    if (verdict instanceof Promise) this.holdInputUntil(c, verdict, accept, refuse);
    else if (verdict) accept();
    else refuse();
  }

  /**
   * A CONNECT whose password is checked off this thread (bcrypt): the connection's input waits
   * in its gate (conn/auth.ts InputGate) until `verdict`, then `accept` or `refuse` runs and
   * what was held is read on.
   */
  private holdInputUntil(c: C, verdict: Promise<boolean>, accept: () => void, refuse: () => void): void {
    c.gate.waiting = true;
    c.socket.pause();
    void verdict.then((yes) => {
      if (c.closed) return;
      if (yes) accept();
      else refuse();
      this.bridge.flushAll();
      const held = c.gate.release();
      if (c.closing) return;
      c.socket.resume();
      for (const chunk of held) c.input(chunk);
    });
  }

  /**
   * Dial `host:port` (paused, no delay). `onSocket` gets the connected socket while the thread
   * runs and `wanted()` still holds (else it is closed); `onError` gets a failure, or
   * `dial tcp <address>: i/o timeout` after `timeoutMs`, as Go words it.
   */
  protected dial(
    host: string,
    port: number,
    address: string,
    timeoutMs: number,
    wanted: () => boolean,
    onSocket: (s: Socket) => void,
    onError: (err: Error) => void,
  ): void {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error(`dial tcp ${address}: i/o timeout`)), timeoutMs);
    socket.pause();
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      if (!this.running || !wanted()) {
        socket.destroy();
        return;
      }
      onSocket(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      onError(err);
    });
  }

  /** Our logged interest (the peers' union), for replacement thread `to`. */
  interestSnapshot(to: number): InterestSnapshot {
    return this.bridge.interestSnapshot(to);
  }

  /** Another thread's interest, when this is a replacement thread. */
  applySnapshot(from: number, position: number, entries: [string, string | null, number][]): void {
    this.bridge.applySnapshot(from, position, entries);
  }

  /** Config reload: the options object every connection holds takes `next` in place; the log too. */
  protected reloadOptions(next: Options): void {
    updateOptionsInPlace(this.opts, next);
    reconfigureLog(next, this.threadName);
  }

  /** SIGUSR1: reopen this thread's log file descriptor. */
  reopenLog(): void {
    reopenLog(this.threadName);
  }

  /** Sockets not yet closed (shutdown waits for them). */
  openSockets(): number {
    return this.bridge.conns.size;
  }

  /** Close every connection (server shutdown); nothing is re-dialled. */
  shutdown(): void {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.checker.close();
    this.bridge.shutdown();
  }
}
