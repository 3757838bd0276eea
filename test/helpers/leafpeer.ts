// A raw leaf-node peer for black-box tests: pose as a leaf on a hub's leaf port (leafToHub), or
// as a hub that a real leaf dials (FakeHub), speaking the leaf protocol as nats-server 2.9.10
// puts it on the wire (../shared/protocol.md §8): INFO/CONNECT, LS+/LS- with queue weights,
// LMSG/HMSG, PING/PONG and the `$LDS.` loop-detection subscription.
//
// Received bytes are parsed into frames (control line, plus payload by length for LMSG/HMSG),
// kept in arrival order with their arrival time, so a test can wait for "the next LMSG", read
// the interest the other side announced (interest()), or look at the exact bytes (data()).
// Like helpers/raw.ts, received text is latin1 (one char per byte).

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { rawConnect, routeHandshake, type RawClient } from './raw.ts';

export interface LeafFrame {
  /** INFO, CONNECT, LS+, LS-, LMSG, HMSG, PING, PONG, -ERR, +OK, or the first word of anything else. */
  op: string;
  /** The control line without CRLF, exactly as received. */
  line: string;
  /** The control line's arguments (split on spaces and tabs). */
  args: string[];
  /** INFO / CONNECT: the parsed JSON (undefined if it did not parse). */
  json?: Record<string, unknown>;
  /** LMSG / HMSG. */
  subject?: string;
  reply?: string;
  queues?: string[];
  headers?: string;
  payload?: string;
  /** -ERR: the text between the quotes. */
  error?: string;
  /** Date.now() when the frame was complete. */
  at: number;
}

export interface MsgOptions {
  reply?: string;
  /** Queue groups this message is for (`+ reply q...` or `| q...`). */
  queues?: string[];
  /** A header block (`NATS/1.0\r\n...\r\n\r\n`): sent as HMSG. */
  headers?: string;
}

const LDS_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A fresh loop-detection subject, shaped as nats-server makes them: `$LDS.` and a 22-character nuid. */
export function ldsSubject(): string {
  const bytes = randomBytes(22);
  let s = '';
  for (const b of bytes) s += LDS_ALPHABET[b % LDS_ALPHABET.length];
  return `$LDS.${s}`;
}

/** A server id shaped as nats-server's (56 characters, starting with N). */
export function fakeServerId(): string {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let s = 'N';
  for (const b of randomBytes(55)) s += A[b % A.length];
  return s;
}

/** `LMSG`/`HMSG` bytes as a leaf connection carries them (RMSG without the account). */
export function leafMsg(subject: string, payload: string, o: MsgOptions = {}): string {
  const parts = [subject];
  if (o.queues && o.queues.length > 0) {
    if (o.reply !== undefined) parts.push('+', o.reply);
    else parts.push('|');
    parts.push(...o.queues);
  } else if (o.reply !== undefined) {
    parts.push(o.reply);
  }
  const size = Buffer.byteLength(payload, 'latin1');
  if (o.headers !== undefined) {
    const hdr = Buffer.byteLength(o.headers, 'latin1');
    return `HMSG ${parts.join(' ')} ${hdr} ${hdr + size}\r\n${o.headers}${payload}\r\n`;
  }
  return `LMSG ${parts.join(' ')} ${size}\r\n${payload}\r\n`;
}

/** Reads the queue/reply section of LMSG/HMSG arguments (after the subject, before the sizes). */
function msgRoute(mid: string[]): { reply?: string; queues?: string[] } {
  if (mid.length === 0) return {};
  if (mid[0] === '+') return { reply: mid[1], queues: mid.slice(2) };
  if (mid[0] === '|') return { queues: mid.slice(1) };
  return { reply: mid[0] };
}

/** One side of a leaf connection, over a connected socket. */
export class LeafPeer {
  readonly socket: net.Socket;
  readonly frames: LeafFrame[] = [];
  /** Answer every PING with PONG (turn off to make this peer look stalled). */
  autoPong = true;
  private all = '';
  private parsed = 0; // offset in `all` up to which frames are parsed
  private cursor = 0; // index in `frames` of the next frame next() looks at
  private closedFlag = false;
  private readonly waiters = new Set<() => void>();
  /** LS+/LS- state received so far: `subject` or `subject queue` -> weight (1 for plain). */
  private readonly announced = new Map<string, number>();

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d) => {
      this.all += d.toString('latin1');
      this.parse();
      this.wake();
    });
    socket.on('error', () => {
      /* a reset is a close for our purposes */
    });
    socket.on('close', () => {
      this.closedFlag = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private parse(): void {
    for (;;) {
      const eol = this.all.indexOf('\r\n', this.parsed);
      if (eol < 0) return;
      const line = this.all.slice(this.parsed, eol);
      const args = line.split(/[ \t]+/).filter((a) => a !== '');
      const op = (args.shift() ?? '').toUpperCase();
      const frame: LeafFrame = { op, line, args, at: 0 };
      let end = eol + 2;
      if (op === 'LMSG' || op === 'HMSG' || op === 'MSG' || op === 'RMSG') {
        const hmsg = op === 'HMSG';
        const total = Number(args[args.length - 1]);
        const hdrLen = hmsg ? Number(args[args.length - 2]) : 0;
        if (!Number.isInteger(total) || total < 0) {
          frame.op = 'OTHER';
        } else {
          if (this.all.length < end + total + 2) return; // wait for the payload
          const body = this.all.slice(end, end + total);
          end += total + 2;
          frame.subject = args[0];
          Object.assign(frame, msgRoute(args.slice(1, args.length - (hmsg ? 2 : 1))));
          if (hmsg) frame.headers = body.slice(0, hdrLen);
          frame.payload = body.slice(hdrLen);
        }
      } else if (op === 'INFO' || op === 'CONNECT') {
        try {
          frame.json = JSON.parse(line.slice(op.length).trim()) as Record<string, unknown>;
        } catch {
          // kept as text only
        }
      } else if (op === '-ERR') {
        frame.error = /^-ERR\s+'(.*)'\s*$/i.exec(line)?.[1] ?? line.slice(4).trim();
      } else if (op === 'LS+') {
        this.announced.set(args.length >= 3 ? `${args[0]} ${args[1]}` : args[0], args.length >= 3 ? Number(args[2]) : 1);
      } else if (op === 'LS-') {
        this.announced.delete(args.length >= 2 ? `${args[0]} ${args[1]}` : args[0]);
      } else if (op === 'PING' && this.autoPong) {
        this.send('PONG\r\n');
      }
      frame.at = Date.now();
      this.parsed = end;
      this.frames.push(frame);
    }
  }

  send(data: string | Buffer): void {
    if (this.closedFlag || this.socket.destroyed) return;
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** `LS+ subject[ queue weight]`. */
  sub(subject: string, queue?: string, weight = 1): void {
    this.send(queue === undefined ? `LS+ ${subject}\r\n` : `LS+ ${subject} ${queue} ${weight}\r\n`);
  }

  /** `LS- subject[ queue]`. */
  unsub(subject: string, queue?: string): void {
    this.send(queue === undefined ? `LS- ${subject}\r\n` : `LS- ${subject} ${queue}\r\n`);
  }

  /** Sends LMSG (or HMSG with headers). */
  msg(subject: string, payload: string, o: MsgOptions = {}): void {
    this.send(leafMsg(subject, payload, o));
  }

  /** Sends PING and waits for a PONG received after it. */
  async ping(timeoutMs = 15_000): Promise<void> {
    const from = this.frames.length;
    this.send('PING\r\n');
    await this.waitFor((f, i) => f.op === 'PONG' && i >= from, timeoutMs, 'PONG');
  }

  /**
   * Waits for the next frame (after the ones next() already returned) that matches, and moves
   * past it. Frames skipped on the way are passed over, not lost: frames() still has them.
   */
  next(pred: (f: LeafFrame) => boolean, timeoutMs = 15_000, what = 'a frame'): Promise<LeafFrame> {
    return this.until(
      () => {
        for (let i = this.cursor; i < this.frames.length; i++) {
          if (pred(this.frames[i])) {
            this.cursor = i + 1;
            return this.frames[i];
          }
        }
        return undefined;
      },
      timeoutMs,
      what,
    );
  }

  /** Waits for any frame received so far or later (index given) that matches; does not move next()'s cursor. */
  waitFor(pred: (f: LeafFrame, index: number) => boolean, timeoutMs = 15_000, what = 'a frame'): Promise<LeafFrame> {
    return this.until(() => this.frames.find((f, i) => pred(f, i)), timeoutMs, what);
  }

  /** Waits until `check` returns a value (checked on every frame and on close). */
  until<T>(check: () => T | undefined, timeoutMs: number, what: string, okOnClose = false): Promise<T> {
    return new Promise((resolve, reject) => {
      const run = (): void => {
        const v = check();
        if (v !== undefined) {
          finish();
          resolve(v);
        } else if (this.closedFlag && !okOnClose) {
          finish();
          reject(new Error(`leaf connection closed while waiting for ${what}; received:\n${this.transcript()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs}ms waiting for ${what}; received:\n${this.transcript()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(run);
      };
      this.waiters.add(run);
      run();
    });
  }

  /** Resolves when the other side has closed the connection. */
  closed(timeoutMs = 15_000): Promise<void> {
    return this.until(() => (this.closedFlag ? true : undefined), timeoutMs, 'the connection to close', true).then(() => undefined);
  }

  isClosed(): boolean {
    return this.closedFlag;
  }

  /** The interest the other side announced and has not withdrawn: `subject` or `subject queue` -> weight. */
  interest(): Map<string, number> {
    return new Map(this.announced);
  }

  /** The messages (LMSG/HMSG) received so far. */
  messages(): LeafFrame[] {
    return this.frames.filter((f) => f.op === 'LMSG' || f.op === 'HMSG');
  }

  /** Every byte received (latin1). */
  data(): string {
    return this.all;
  }

  /** The control lines received, one a line (payloads left out), for failure messages. */
  transcript(max = 60): string {
    const lines = this.frames.map((f) => f.line);
    const shown = lines.length > max ? [`... ${lines.length - max} earlier lines`, ...lines.slice(-max)] : lines;
    return shown.join('\n') + (this.closedFlag ? '\n[closed]' : '');
  }

  close(): void {
    this.closedFlag = true;
    this.socket.destroy();
    this.wake();
  }
}

export function connectSocket(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

// ---------------------------------------------------------------------------------------
// Posing as a leaf

export interface LeafHandshakeOptions {
  /** CONNECT `name` (default: a random one; a hub evicts an older connection with the same name). */
  name?: string;
  user?: string;
  pass?: string;
  /** Merged over the CONNECT 2.9.10 sends (version, tls_required, server_id, name, headers). */
  connect?: Record<string, unknown>;
  /** Our `$LDS.` subject, sent with our dump (default: a fresh one). null: send none. */
  lds?: string | null;
  /** Interest announced right after the hub's connect_info INFO: `subject` or [subject, queue, weight]. */
  subs?: (string | [string, string, number])[];
}

export interface LeafSession {
  peer: LeafPeer;
  /** The hub's first INFO (with nonce). */
  info: Record<string, unknown>;
  /** The hub's answer to CONNECT (`connect_info: true`). */
  connectInfo: Record<string, unknown>;
  /** The CONNECT we sent. */
  connect: Record<string, unknown>;
  /** Our `$LDS.` subject (undefined when none was sent). */
  lds?: string;
}

/** The CONNECT a 2.9.10 leaf sends (leafnode.go sendLeafConnect), with overrides. */
export function leafConnect(o: LeafHandshakeOptions = {}): Record<string, unknown> {
  const c: Record<string, unknown> = { version: '2.9.10' };
  if (o.user !== undefined) c.user = o.user;
  if (o.pass !== undefined) c.pass = o.pass;
  Object.assign(c, {
    tls_required: false,
    server_id: fakeServerId(),
    name: o.name ?? `rawleaf-${randomBytes(4).toString('hex')}`,
    headers: true,
  });
  return { ...c, ...o.connect };
}

/**
 * Dials a hub's leaf port and does what a 2.9.10 leaf does: waits for INFO, sends CONNECT, waits
 * for the `connect_info` INFO, then announces its `$LDS.` subject and `subs`. The hub's own
 * interest dump arrives behind the connect_info INFO; wait for it with peer.next()/waitFor().
 */
export async function leafToHub(port: number, o: LeafHandshakeOptions = {}): Promise<LeafSession> {
  const peer = new LeafPeer(await connectSocket(port));
  try {
    const info = await peer.next((f) => f.op === 'INFO', 10_000, 'the hub INFO');
    const connect = leafConnect(o);
    peer.send(`CONNECT ${JSON.stringify(connect)}\r\n`);
    const answer = await peer.next((f) => f.op === 'INFO' || f.op === '-ERR', 10_000, 'the connect_info INFO');
    if (answer.op === '-ERR') throw new Error(`the hub refused the leaf: -ERR '${answer.error}'`);
    const lds = o.lds === undefined ? ldsSubject() : (o.lds ?? undefined);
    const dump: string[] = [];
    if (lds !== undefined) dump.push(`LS+ ${lds}\r\n`);
    for (const s of o.subs ?? []) dump.push(typeof s === 'string' ? `LS+ ${s}\r\n` : `LS+ ${s[0]} ${s[1]} ${s[2]}\r\n`);
    if (dump.length > 0) peer.send(dump.join(''));
    return { peer, info: info.json ?? {}, connectInfo: answer.json ?? {}, connect, lds };
  } catch (err) {
    peer.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// Posing as a route peer of a hub

/** A raw route peer on `clusterPort` of cluster `cluster`; `lnoc`: its CONNECT and INFO say so. */
export async function rawRoute(
  t: { teardown(fn: () => unknown): void },
  clusterPort: number,
  cluster: string,
  lnoc: boolean,
): Promise<RawClient> {
  const r = await rawConnect(clusterPort);
  t.teardown(() => r.close());
  await r.expect(/^INFO \{.*\} ?\r\n/);
  const id = fakeServerId();
  r.send(routeHandshake(id, `raw-${id.slice(1, 7)}`, cluster, lnoc ? { lnoc: true } : {}));
  return r;
}

// ---------------------------------------------------------------------------------------
// Posing as a hub

export interface FakeHubOptions {
  /**
   * The INFOs sent on every accepted connection: by default what a 2.9.10 hub sends (client_id,
   * nonce, info_on_connect, leafnode_urls; then the connect_info one). A function may change or
   * drop fields (it gets the first INFO, then the connect_info one), or return null for the
   * first INFO to send none at all.
   */
  info?: (standard: Record<string, unknown>, clientId: number) => Record<string, unknown> | null;
  /** Answer each CONNECT with the connect_info INFO and our dump at once (default true). */
  autoHandshake?: boolean;
  /** Interest announced in the dump: `subject` or [subject, queue, weight]. */
  subs?: (string | [string, string, number])[];
  /** Our `$LDS.` subject, in every dump (default: a fresh one per hub). */
  lds?: string;
}

/**
 * A listener on 127.0.0.1 (OS-picked port) that answers real leafs as a 2.9.10 hub does, as far
 * as the test wants: INFO at once, then (autoHandshake) the connect_info INFO and the `LS+` dump
 * in one write once CONNECT arrives. Every accepted connection is kept in `connections`.
 */
export class FakeHub {
  readonly server: net.Server;
  readonly serverId = fakeServerId();
  readonly lds: string;
  port = 0;
  readonly connections: LeafPeer[] = [];
  /** Date.now() of each accepted connection (for redial pacing checks). */
  readonly acceptedAt: number[] = [];
  private readonly opts: FakeHubOptions;
  private readonly waiters = new Set<() => void>();
  private nextClientId = 1;

  private constructor(opts: FakeHubOptions) {
    this.opts = opts;
    this.lds = opts.lds ?? ldsSubject();
    this.server = net.createServer((socket) => this.onAccept(socket));
  }

  static async start(opts: FakeHubOptions = {}): Promise<FakeHub> {
    const hub = new FakeHub(opts);
    await new Promise<void>((resolve, reject) => {
      hub.server.once('error', reject);
      hub.server.listen(0, '127.0.0.1', () => resolve());
    });
    hub.port = (hub.server.address() as net.AddressInfo).port;
    return hub;
  }

  /** The INFO a 2.9.10 hub sends first on a leaf connection (protocol.md §8.2). */
  standardInfo(clientId: number): Record<string, unknown> {
    return {
      server_id: this.serverId,
      server_name: 'fakehub',
      version: '2.9.10',
      proto: 1,
      go: 'go1.19.8',
      host: '127.0.0.1',
      port: this.port,
      headers: true,
      auth_required: true,
      max_payload: 1048576,
      ip: `127.0.0.1:${this.port}`,
      client_id: clientId,
      nonce: randomBytes(8).toString('base64url').slice(0, 11),
      info_on_connect: true,
      leafnode_urls: [`127.0.0.1:${this.port}`],
    };
  }

  private onAccept(socket: net.Socket): void {
    const peer = new LeafPeer(socket);
    const clientId = this.nextClientId++;
    this.connections.push(peer);
    this.acceptedAt.push(Date.now());
    const standard = this.standardInfo(clientId);
    const info = this.opts.info ? this.opts.info(standard, clientId) : standard;
    if (info !== null) peer.send(`INFO ${JSON.stringify(info)} \r\n`);
    if (this.opts.autoHandshake !== false && info !== null) {
      void peer
        .waitFor((f) => f.op === 'CONNECT', 60_000, 'CONNECT')
        .then(
          () => this.answerConnect(peer, clientId),
          () => {},
        );
    }
    for (const w of [...this.waiters]) w();
  }

  /** The connect_info INFO (no nonce, remote_account) and our interest dump, in one write. */
  answerConnect(peer: LeafPeer, clientId = 1, extra: Record<string, unknown> = {}): void {
    const { nonce: _nonce, ...rest } = this.standardInfo(clientId);
    const standard = { ...rest, connect_info: true, remote_account: '$G', ...extra };
    const info = (this.opts.info ? this.opts.info(standard, clientId) : standard) ?? standard;
    const dump = [`LS+ ${this.lds}\r\n`];
    for (const s of this.opts.subs ?? []) dump.push(typeof s === 'string' ? `LS+ ${s}\r\n` : `LS+ ${s[0]} ${s[1]} ${s[2]}\r\n`);
    peer.send(`INFO ${JSON.stringify(info)} \r\n${dump.join('')}`);
  }

  /** Waits for the n-th accepted connection (1-based; default: one more than accepted so far). */
  accepted(n = this.connections.length + 1, timeoutMs = 30_000): Promise<LeafPeer> {
    return new Promise((resolve, reject) => {
      const run = (): void => {
        if (this.connections.length >= n) {
          finish();
          resolve(this.connections[n - 1]);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`fake hub: connection ${n} not made within ${timeoutMs}ms (have ${this.connections.length})`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(run);
      };
      this.waiters.add(run);
      run();
    });
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
