// A raw gateway peer for black-box tests: poses as one server of a remote cluster and speaks
// the gateway protocol of nats-server 2.9.10 (protocol.md §3) byte for byte, so a test can
// drive a server's gateway side from both ends:
//
// - dial(port): the peer is the OUTBOUND side. It connects to the server's gateway port,
//   reads the server's INFO and answers with CONNECT + INFO, as 2.9.10's solicitGateway /
//   processGatewayInfo do. The server then sends interest (RS+/RS-/A+/A-, cmd 1/2/3 INFOs) on
//   this connection and expects RMSG/HMSG on it.
// - accept(): the peer is the INBOUND side. The server dials the peer's listener (because the
//   peer's INFO advertised it in `gateway_url`/`gateway_urls`, or a config names it); the peer
//   sends its INFO at once, reads the server's CONNECT + INFO, then sends interest and
//   receives RMSG/HMSG.
//
// Received bytes are parsed into operations (INFO and CONNECT with their JSON, RS+/RS-,
// A+/A-, RMSG/HMSG with their payloads, PING/PONG, -ERR); a test waits for the next
// operation that matches, looks at the whole history, or at the raw bytes. PINGs are
// answered with PONG unless the test turns that off (stale detection tests).

import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

export interface GwOp {
  /** Upper-cased operation name: INFO, CONNECT, RS+, RS-, A+, A-, RMSG, HMSG, PING, PONG, -ERR, +OK. */
  op: string;
  /** Space-separated arguments after the operation name (INFO/CONNECT/-ERR: none). */
  args: string[];
  /** The control line without CRLF. */
  line: string;
  /** INFO and CONNECT: the parsed JSON. */
  json?: Record<string, unknown>;
  /** -ERR: the text between the quotes. */
  err?: string;
  /** RMSG/HMSG: the message. */
  msg?: RoutedMsg;
  /** Milliseconds since the connection opened (for reports, never for assertions). */
  atMs: number;
}

export interface RoutedMsg {
  account: string;
  subject: string;
  reply?: string;
  queues: string[];
  /** HMSG: the header bytes (latin1), `NATS/1.0\r\n...\r\n\r\n`. */
  headers?: string;
  /** The payload (latin1). */
  payload: string;
}

/** Parses RMSG/HMSG arguments: `acc subj [reply] [+ reply q... | | q...] [hdr] size`. */
export function parseRoutedArgs(
  op: string,
  args: string[],
): { account: string; subject: string; reply?: string; queues: string[]; hdrSize: number; size: number } {
  const sizes = op === 'HMSG' ? 2 : 1;
  const size = Number(args[args.length - 1]);
  const hdrSize = op === 'HMSG' ? Number(args[args.length - 2]) : 0;
  const rest = args.slice(2, args.length - sizes);
  let reply: string | undefined;
  let queues: string[] = [];
  if (rest[0] === '+') {
    reply = rest[1];
    queues = rest.slice(2);
  } else if (rest[0] === '|') {
    queues = rest.slice(1);
  } else if (rest.length === 1) {
    reply = rest[0];
  } else if (rest.length > 1) {
    throw new Error(`cannot parse ${op} ${args.join(' ')}`);
  }
  return { account: args[0], subject: args[1], reply, queues, hdrSize, size };
}

export interface GatewayConn {
  /** Which side the peer plays on this connection. */
  readonly peerRole: 'outbound' | 'inbound';
  /** The server's first INFO on this connection. */
  readonly serverInfo: Record<string, unknown>;
  /** accept() only: the server's CONNECT. */
  readonly serverConnect?: Record<string, unknown>;
  readonly socket: net.Socket;
  /** Whether PINGs are answered (default true). */
  autoPong: boolean;
  /** Answer each PING this much later (to pose as a distant cluster: the server orders gateways by PONG RTT). */
  pongDelayMs: number;
  send(data: string | Buffer): void;
  /**
   * Waits for the first operation after the cursor that matches, moves the cursor past it
   * and returns it. Rejects on timeout or when the server closes first.
   */
  next(match: OpMatch, timeoutMs?: number): Promise<GwOp>;
  /** Waits until some operation (anywhere in the history) matches; does not move the cursor. */
  seen(match: OpMatch, timeoutMs?: number): Promise<GwOp>;
  /** Every operation received so far. */
  ops(): GwOp[];
  /** Operations after the cursor (not yet consumed by next()). */
  pending(): GwOp[];
  /** Sends PING and waits for a PONG received after it (the server answers in order). */
  ping(timeoutMs?: number): Promise<void>;
  /** Resolves when the server has closed the connection. */
  closed(timeoutMs?: number): Promise<void>;
  isClosed(): boolean;
  /** Everything received, as latin1 text. */
  data(): string;
  close(): void;
  /** Sends RMSG (or HMSG with headers) as 2.9.10 does: `RMSG acc subj [+ reply q... | reply | | q...] size`. */
  sendMsg(m: { account?: string; subject: string; reply?: string; queues?: string[]; payload?: string; headers?: string }): void;
}

/** A predicate, an operation name (`'RS+'`), or an operation and a regex its control line must match. */
export type OpMatch = ((op: GwOp) => boolean) | string | { op: string; line?: RegExp };

function matcher(m: OpMatch): (op: GwOp) => boolean {
  if (typeof m === 'function') return m;
  if (typeof m === 'string') return (o) => o.op === m;
  return (o) => o.op === m.op && (m.line === undefined || m.line.test(o.line));
}

function describe(m: OpMatch): string {
  if (typeof m === 'function') return m.toString().slice(0, 120);
  if (typeof m === 'string') return m;
  return `${m.op}${m.line ? ` ${m.line}` : ''}`;
}

const CRLF = '\r\n';

/** Wraps a connected socket: parses what arrives into operations, answers PINGs (see GatewayConn). */
function wrap(
  socket: net.Socket,
  peerRole: 'outbound' | 'inbound',
): GatewayConn & { setInfo(i: Record<string, unknown>, c?: Record<string, unknown>): void } {
  socket.setNoDelay(true);
  const started = Date.now();
  let buf = Buffer.alloc(0);
  let text = '';
  const ops: GwOp[] = [];
  let cursor = 0;
  let closed = false;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };

  const parse = () => {
    for (;;) {
      const eol = buf.indexOf(CRLF);
      if (eol < 0) return;
      const line = buf.subarray(0, eol).toString('latin1');
      const sp = line.search(/[ \t]/);
      const name = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
      const rest = sp < 0 ? '' : line.slice(sp + 1);
      const o: GwOp = { op: name, args: [], line, atMs: Date.now() - started };
      let consumed = eol + 2;
      if (name === 'INFO' || name === 'CONNECT') {
        try {
          o.json = JSON.parse(rest) as Record<string, unknown>;
        } catch {
          // kept as a line; a test that cares looks at `line`
        }
      } else if (name === '-ERR') {
        o.err = /^'(.*)'$/.exec(rest.trim())?.[1] ?? rest.trim();
      } else {
        o.args = rest.split(/[ \t]+/).filter((a) => a !== '');
      }
      if (name === 'RMSG' || name === 'HMSG') {
        const a = parseRoutedArgs(name, o.args);
        if (buf.length < consumed + a.size + 2) return; // wait for the payload
        const body = buf.subarray(consumed, consumed + a.size).toString('latin1');
        o.msg = {
          account: a.account,
          subject: a.subject,
          reply: a.reply,
          queues: a.queues,
          headers: name === 'HMSG' ? body.slice(0, a.hdrSize) : undefined,
          payload: name === 'HMSG' ? body.slice(a.hdrSize) : body,
        };
        consumed += a.size + 2;
      }
      buf = buf.subarray(consumed);
      ops.push(o);
      if (name === 'PING' && conn.autoPong && !closed) {
        if (conn.pongDelayMs > 0) {
          setTimeout(() => {
            if (!closed && !socket.destroyed) socket.write('PONG\r\n');
          }, conn.pongDelayMs);
        } else {
          socket.write('PONG\r\n');
        }
      }
    }
  };

  socket.on('data', (d) => {
    text += d.toString('latin1');
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    parse();
    wake();
  });
  socket.on('error', () => {
    /* a reset is a close here */
  });
  socket.on('close', () => {
    closed = true;
    wake();
  });

  const waitFor = <T>(what: string, check: () => T | undefined, timeoutMs: number, okOnClose = false): Promise<T> =>
    new Promise((res, rej) => {
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(run);
      };
      const run = () => {
        const v = check();
        if (v !== undefined) {
          finish();
          res(v);
          return;
        }
        if (closed && !okOnClose) {
          finish();
          rej(new Error(`gateway connection closed by the server while waiting for ${what}; received:\n${renderOps(ops)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        rej(new Error(`timed out after ${timeoutMs}ms waiting for ${what}; received:\n${renderOps(ops)}`));
      }, timeoutMs);
      waiters.add(run);
      run();
    });

  const conn = {
    peerRole,
    serverInfo: {} as Record<string, unknown>,
    serverConnect: undefined as Record<string, unknown> | undefined,
    socket,
    autoPong: true,
    pongDelayMs: 0,
    setInfo(i: Record<string, unknown>, c?: Record<string, unknown>) {
      conn.serverInfo = i;
      conn.serverConnect = c;
    },
    send(data: string | Buffer) {
      if (closed || socket.destroyed) return;
      socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    },
    next(match: OpMatch, timeoutMs = 15_000) {
      const pred = matcher(match);
      return waitFor(
        describe(match),
        () => {
          for (let i = cursor; i < ops.length; i++) {
            if (pred(ops[i])) {
              cursor = i + 1;
              return ops[i];
            }
          }
          return undefined;
        },
        timeoutMs,
      );
    },
    seen(match: OpMatch, timeoutMs = 15_000) {
      const pred = matcher(match);
      return waitFor(describe(match), () => ops.find(pred), timeoutMs);
    },
    ops: () => ops,
    pending: () => ops.slice(cursor),
    async ping(timeoutMs = 15_000) {
      const pongsBefore = ops.filter((o) => o.op === 'PONG').length;
      conn.send('PING\r\n');
      await waitFor('PONG', () => (ops.filter((o) => o.op === 'PONG').length > pongsBefore ? true : undefined), timeoutMs);
    },
    closed(timeoutMs = 15_000) {
      return waitFor('the server to close', () => (closed ? true : undefined), timeoutMs, true).then(() => undefined);
    },
    isClosed: () => closed,
    data: () => text,
    close() {
      closed = true;
      socket.destroy();
      wake();
    },
    sendMsg(m: { account?: string; subject: string; reply?: string; queues?: string[]; payload?: string; headers?: string }) {
      const acc = m.account ?? '$G';
      const payload = m.payload ?? '';
      const queues = m.queues ?? [];
      let mid = '';
      if (queues.length > 0) mid = m.reply ? ` + ${m.reply} ${queues.join(' ')}` : ` | ${queues.join(' ')}`;
      else if (m.reply) mid = ` ${m.reply}`;
      if (m.headers !== undefined) {
        const h = Buffer.byteLength(m.headers, 'latin1');
        conn.send(`HMSG ${acc} ${m.subject}${mid} ${h} ${h + Buffer.byteLength(payload, 'latin1')}\r\n${m.headers}${payload}\r\n`);
      } else {
        conn.send(`RMSG ${acc} ${m.subject}${mid} ${Buffer.byteLength(payload, 'latin1')}\r\n${payload}\r\n`);
      }
    },
  };
  return conn;
}

/** One line per operation, for failure messages. */
export function renderOps(ops: GwOp[], max = 60): string {
  const shown = ops.length > max ? ops.slice(ops.length - max) : ops;
  const lines = shown.map((o) => `  +${o.atMs}ms ${o.line}${o.msg ? ` [${JSON.stringify(o.msg.payload.slice(0, 40))}]` : ''}`);
  if (ops.length > max) lines.unshift(`  ... ${ops.length - max} earlier`);
  return lines.join('\n') || '  (nothing)';
}

// ---------------------------------------------------------------------------------------
// Hashes and INFO fields, as 2.9.10 computes them

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** events.go getHashSize(name, 6): the cluster and server hashes of `_GR_.<cluster>.<server>.`. */
export function gwHash(name: string): string {
  const d = createHash('sha256').update(name).digest();
  let s = '';
  for (let i = 0; i < 6; i++) s += DIGITS[d[i] % 62];
  return s;
}

/** gateway.go getOldHash: the first 4 hex digits of sha256(name), for `$GR.<hash>.` (gateway_nrp:false peers). */
export function gwOldHash(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 4);
}

/** The reply prefix a server of gateway `gateway` with id `serverId` puts on replies it maps. */
export function gwReplyPrefix(gateway: string, serverId: string): string {
  return `_GR_.${gwHash(gateway)}.${gwHash(serverId)}.`;
}

/** `gateway_cmd_payload` is a Go []byte, so JSON carries it base64: `$G` is `JEc=`. */
export function cmdPayload(account: string): string {
  return Buffer.from(account, 'latin1').toString('base64');
}

export const GATEWAY_CMD = { gossip: 1, allSubsStart: 2, allSubsComplete: 3 } as const;

/** A command INFO as 2.9.10 writes it: empty id and zero-valued fields, then gateway and the command. */
export function cmdInfo(gateway: string, cmd: 2 | 3, account: string): string {
  return `INFO ${JSON.stringify({
    server_id: '',
    server_name: '',
    version: '',
    proto: 0,
    go: '',
    host: '',
    port: 0,
    headers: false,
    max_payload: 0,
    gateway,
    gateway_cmd: cmd,
    gateway_cmd_payload: cmdPayload(account),
  })}\r\n`;
}

/** A gossip INFO (cmd 1) as an inbound sends it to an outbound: "gateway G is at these URLs". */
export function gossipInfo(fromServerId: string, gateway: string, urls: string[]): string {
  return `INFO ${JSON.stringify({
    server_id: fromServerId,
    server_name: '',
    version: '',
    proto: 0,
    go: '',
    host: '',
    port: 0,
    headers: false,
    max_payload: 0,
    gateway,
    gateway_urls: urls,
    gateway_cmd: GATEWAY_CMD.gossip,
  })}\r\n`;
}

/** The account named by a cmd 2/3 INFO (base64 payload decoded). */
export function cmdAccount(op: GwOp): string | undefined {
  const p = op.json?.gateway_cmd_payload;
  return typeof p === 'string' ? Buffer.from(p, 'base64').toString('latin1') : undefined;
}

export const isCmd =
  (cmd: number, account?: string) =>
  (o: GwOp): boolean =>
    o.op === 'INFO' && o.json?.gateway_cmd === cmd && (account === undefined || cmdAccount(o) === account);

/** A server id in nats-server's form (56 characters, starting with N). */
export function fakeServerId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(55);
  let id = 'N';
  for (const b of bytes) id += alphabet[b % 32];
  return id;
}

// ---------------------------------------------------------------------------------------

export interface GatewayPeerOptions {
  /** The gateway (cluster) name the peer claims. */
  name: string;
  serverName?: string;
  /** INFO gateway_iom (default true, as 2.9.10). false makes the server send optimistically. */
  iom?: boolean;
  /** INFO gateway_nrp (default true). false asks for the old `$GR.` reply prefix. */
  nrp?: boolean;
  headers?: boolean;
  /**
   * Listen for the server's outbound connections (default true). The listener's address goes
   * in the peer's INFO as gateway_url and gateway_urls, so a server the peer dials will dial
   * back (an implicit gateway).
   */
  listen?: boolean;
  /** Extra gateway URLs to advertise in gateway_urls (other "servers" of the peer's cluster). */
  extraUrls?: string[];
  /** Merged into every INFO the peer sends (handshake INFO only). */
  info?: Record<string, unknown>;
}

export class GatewayPeer {
  readonly name: string;
  readonly serverId = fakeServerId();
  readonly serverName: string;
  readonly opts: GatewayPeerOptions;
  /** host:port of the listener ('' without one). */
  url = '';
  port = 0;
  private server?: net.Server;
  private readonly acceptedSockets: net.Socket[] = [];
  private readonly acceptWaiters = new Set<() => void>();
  private readonly conns: GatewayConn[] = [];
  private readonly stoppers: (() => void)[] = [];

  private constructor(opts: GatewayPeerOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.serverName = opts.serverName ?? `fake-${opts.name}`;
  }

  static async start(opts: GatewayPeerOptions): Promise<GatewayPeer> {
    const p = new GatewayPeer(opts);
    if (opts.listen !== false) {
      const srv = net.createServer((s) => {
        p.acceptedSockets.push(s);
        for (const w of [...p.acceptWaiters]) w();
      });
      await new Promise<void>((res, rej) => {
        srv.once('error', rej);
        srv.listen(0, '127.0.0.1', () => res());
      });
      p.server = srv;
      p.port = (srv.address() as net.AddressInfo).port;
      p.url = `127.0.0.1:${p.port}`;
    }
    return p;
  }

  /** The handshake INFO, as 2.9.10's gateway INFO (field order of server.go Info). */
  infoJson(extra: Record<string, unknown> = {}): string {
    const urls = [...(this.url ? [this.url] : []), ...(this.opts.extraUrls ?? [])];
    const info: Record<string, unknown> = {
      server_id: this.serverId,
      server_name: this.serverName,
      version: '2.9.10',
      proto: 0,
      go: '',
      host: '127.0.0.1',
      port: this.port,
      headers: this.opts.headers ?? true,
      max_payload: 1048576,
      gateway: this.name,
    };
    if (urls.length > 0) info.gateway_urls = urls;
    if (this.url) info.gateway_url = this.url;
    if (this.opts.nrp ?? true) info.gateway_nrp = true;
    if (this.opts.iom ?? true) info.gateway_iom = true; // false is left out, as Go's omitempty does
    return JSON.stringify({ ...info, ...this.opts.info, ...extra });
  }

  /** The CONNECT 2.9.10's outbound sends. */
  connectJson(extra: Record<string, unknown> = {}): string {
    return JSON.stringify({
      echo: false,
      verbose: false,
      pedantic: false,
      tls_required: false,
      headers: false,
      name: this.serverId,
      cluster: '',
      gateway: this.name,
      ...extra,
    });
  }

  /**
   * Connects to a server's gateway port as its remote's outbound: waits for the server's
   * INFO, then sends CONNECT (with `connect` merged: user/pass, another gateway name...) and
   * INFO. With `handshake: false` only connects and reads the INFO (the test sends the rest).
   */
  async dial(
    port: number,
    o: { connect?: Record<string, unknown>; info?: Record<string, unknown>; handshake?: boolean; timeoutMs?: number } = {},
  ): Promise<GatewayConn> {
    const socket = await new Promise<net.Socket>((res, rej) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => res(s));
      s.once('error', rej);
    });
    const c = wrap(socket, 'outbound');
    this.conns.push(c);
    const info = await c.next('INFO', o.timeoutMs ?? 15_000);
    c.setInfo(info.json ?? {});
    if (o.handshake !== false) c.send(`CONNECT ${this.connectJson(o.connect)}\r\nINFO ${this.infoJson(o.info)}\r\n`);
    return c;
  }

  /**
   * The next connection the server dials to the peer's listener: sends the peer's INFO at
   * once (as 2.9.10's inbound does), then waits for the server's CONNECT and INFO. With
   * `handshake: false` returns right after sending INFO (for a server that refuses it).
   */
  async accept(o: { info?: Record<string, unknown>; timeoutMs?: number; handshake?: boolean } = {}): Promise<GatewayConn> {
    const timeoutMs = o.timeoutMs ?? 20_000;
    if (!this.server) throw new Error('this peer does not listen');
    const socket = await new Promise<net.Socket>((res, rej) => {
      const take = () => {
        const s = this.acceptedSockets.shift();
        if (!s) return;
        clearTimeout(timer);
        this.acceptWaiters.delete(take);
        res(s);
      };
      const timer = setTimeout(() => {
        this.acceptWaiters.delete(take);
        rej(new Error(`the server did not dial gateway peer ${this.name} (${this.url}) within ${timeoutMs}ms`));
      }, timeoutMs);
      this.acceptWaiters.add(take);
      take();
    });
    const c = wrap(socket, 'inbound');
    this.conns.push(c);
    c.send(`INFO ${this.infoJson(o.info)}\r\n`);
    if (o.handshake === false) return c;
    const connect = await c.next('CONNECT', timeoutMs);
    const info = await c.next('INFO', timeoutMs);
    c.setInfo(info.json ?? {}, connect.json ?? {});
    return c;
  }

  /**
   * Answers every connection the server dials to this peer, as accept({handshake: false})
   * does (the peer's INFO at once), and hands each to `onConn`, until the peer closes.
   * Returns the number of connections so far.
   */
  acceptAll(onConn: (c: GatewayConn) => void = () => undefined): () => number {
    let n = 0;
    let stopped = false;
    const loop = async () => {
      while (!stopped && this.server?.listening) {
        const c = await this.accept({ handshake: false, timeoutMs: 5_000 }).catch(() => undefined);
        if (c) {
          n++;
          onConn(c);
        }
      }
    };
    void loop();
    this.stoppers.push(() => {
      stopped = true;
    });
    return () => n;
  }

  /**
   * As 2.9.10's inbound on registration: the account's cmd 2, RS+ for each subject, cmd 3
   * (the server's outbound then sends only what matches). Queue interest: `RS+ acc subj q 1`.
   */
  sendInterest(c: GatewayConn, account: string, subjects: string[], queues: [string, string][] = []): void {
    let s = '';
    for (const [subj, q] of queues) s += `RS+ ${account} ${subj} ${q} 1\r\n`;
    s += cmdInfo(this.name, 2, account);
    for (const subj of subjects) s += `RS+ ${account} ${subj}\r\n`;
    s += cmdInfo(this.name, 3, account);
    c.send(s);
  }

  async close(): Promise<void> {
    for (const stop of this.stoppers) stop();
    for (const c of this.conns) c.close();
    for (const s of this.acceptedSockets) s.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

/** GatewayPeer.start, closed when the test ends. */
export async function usePeer(t: { teardown(fn: () => unknown): void }, opts: GatewayPeerOptions): Promise<GatewayPeer> {
  const p = await GatewayPeer.start(opts);
  t.teardown(() => p.close());
  return p;
}
