// A raw-socket NATS protocol client for black-box tests: send protocol text, expect patterns.
//
// Received bytes are kept as a latin1 string (one char per byte), so byte counts, payloads
// and random binary input survive unchanged and regexes can match anywhere.

import net from 'node:net';

export const CRLF = '\r\n';

export interface RawClient {
  /** Writes bytes; a write after the server closed is silently dropped. */
  send(data: string | Buffer): void;
  /**
   * Waits until the unconsumed input matches, consumes it up to and including the match and
   * returns the consumed text. Rejects (showing what arrived) on timeout or if the server
   * closes first.
   */
  expect(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Waits until nothing arrives for `untilQuietMs` (or the server closes), then consumes and returns all unconsumed input. */
  readAll(untilQuietMs?: number, timeoutMs?: number): Promise<string>;
  /** Resolves when the server has closed the connection; rejects after the timeout. */
  closed(timeoutMs?: number): Promise<void>;
  /** Everything received on this connection, consumed or not. */
  data(): string;
  /** Received but not yet consumed by expect/readAll. */
  pending(): string;
  isClosed(): boolean;
  /**
   * The error of a write that failed (EPIPE/ECONNRESET) because the server had closed. Node
   * then drops the socket, and input not yet read (an -ERR sent just before the close) is lost.
   */
  writeError(): Error | undefined;
  /** Sends PING and waits for the next unconsumed PONG (consuming input up to it). */
  ping(timeoutMs?: number): Promise<string>;
  /** Closes our side and frees the socket. */
  close(): void;
  socket: net.Socket;
}

export interface RawConnectOptions {
  host?: string;
  timeoutMs?: number;
}

function escapeForError(s: string, max = 2000): string {
  const shown = s.length > max ? `${s.slice(0, max)}…(${s.length - max} more)` : s;
  return JSON.stringify(shown);
}

/** Opens a TCP connection to the server (does not wait for INFO). */
export function rawConnect(port: number, opts: RawConnectOptions = {}): Promise<RawClient> {
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    let all = '';
    let consumed = 0;
    let closed = false;
    const waiters = new Set<() => void>();
    const wake = () => {
      for (const w of [...waiters]) w();
    };

    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs}ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(client);
    });
    socket.on('data', (d) => {
      all += d.toString('latin1');
      wake();
    });
    // A reset or a write after close is just "closed" for our purposes.
    let writeErr: Error | undefined;
    socket.on('error', (err) => {
      if (!closed && socket.connecting) {
        clearTimeout(timer);
        reject(err);
      } else {
        writeErr = err;
      }
    });
    socket.on('end', () => {
      closed = true;
      wake();
    });
    socket.on('close', () => {
      closed = true;
      wake();
    });

    /** Polls `check` on every input event until it returns a value, the deadline passes, or close. */
    const waitFor = <T>(what: string, check: () => T | undefined, timeoutMs: number, okOnClose = false): Promise<T> =>
      new Promise((res, rej) => {
        const finish = () => {
          clearTimeout(t);
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
            rej(new Error(`connection closed by server while waiting for ${what}; unconsumed: ${escapeForError(all.slice(consumed))}`));
          }
        };
        const t = setTimeout(() => {
          finish();
          rej(new Error(`timed out after ${timeoutMs}ms waiting for ${what}; unconsumed: ${escapeForError(all.slice(consumed))}`));
        }, timeoutMs);
        waiters.add(run);
        run();
      });

    const client: RawClient = {
      socket,
      send(data) {
        if (closed || socket.destroyed) return;
        socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
      },
      expect(pattern, timeoutMs = 15_000) {
        return waitFor(
          `${pattern instanceof RegExp ? pattern : JSON.stringify(pattern)}`,
          () => {
            const rest = all.slice(consumed);
            let end = -1;
            if (typeof pattern === 'string') {
              const i = rest.indexOf(pattern);
              if (i >= 0) end = i + pattern.length;
            } else {
              const re = new RegExp(pattern.source, pattern.flags.replace('g', '').replace('y', ''));
              const m = re.exec(rest);
              if (m) end = m.index + m[0].length;
            }
            if (end < 0) return undefined;
            consumed += end;
            return rest.slice(0, end);
          },
          timeoutMs,
        );
      },
      readAll(untilQuietMs = 100, timeoutMs = 5000) {
        return new Promise((res, rej) => {
          let lastLen = all.length;
          let quietTimer: NodeJS.Timeout;
          const finish = () => {
            clearTimeout(quietTimer);
            clearTimeout(hard);
            waiters.delete(onInput);
            const out = all.slice(consumed);
            consumed = all.length;
            res(out);
          };
          const arm = () => {
            clearTimeout(quietTimer);
            quietTimer = setTimeout(finish, untilQuietMs);
          };
          const onInput = () => {
            if (closed) {
              finish();
              return;
            }
            if (all.length !== lastLen) {
              lastLen = all.length;
              arm();
            }
          };
          const hard = setTimeout(() => {
            clearTimeout(quietTimer);
            waiters.delete(onInput);
            rej(new Error(`input never went quiet for ${untilQuietMs}ms within ${timeoutMs}ms`));
          }, timeoutMs);
          waiters.add(onInput);
          if (closed) finish();
          else arm();
        });
      },
      closed(timeoutMs = 15_000) {
        return waitFor('the server to close', () => (closed ? true : undefined), timeoutMs, true).then(() => undefined);
      },
      data: () => all,
      pending: () => all.slice(consumed),
      isClosed: () => closed,
      writeError: () => writeErr,
      ping(timeoutMs = 15_000) {
        client.send('PING\r\n');
        return client.expect(/PONG\r\n/, timeoutMs);
      },
      close() {
        closed = true;
        socket.destroy();
        wake();
      },
    };
  });
}

/**
 * Removes the server's keep-alive `PING\r\n` lines, which arrive about 2s after CONNECT and
 * so can land inside any exchange that runs long on a loaded machine. Only for text whose
 * payloads never contain a PING line.
 */
export function noPings(s: string): string {
  return s.replace(/(^|\n)(?:PING\r\n)+/g, '$1');
}

export interface HandshakeOptions extends RawConnectOptions {
  /** Merged into the CONNECT JSON; defaults to a quiet session (verbose and pedantic off). */
  connect?: Record<string, unknown>;
}

/**
 * Connects, reads INFO, sends CONNECT + PING and waits for the PONG, so the session is
 * fully established. Returns the client and the parsed INFO.
 */
export async function rawSession(port: number, opts: HandshakeOptions = {}): Promise<{ c: RawClient; info: Record<string, unknown> }> {
  const c = await rawConnect(port, opts);
  try {
    const line = await c.expect(/^INFO (\{.*\}) \r\n/);
    const info = JSON.parse(line.slice(5, -3)) as Record<string, unknown>;
    const connect = { verbose: false, pedantic: false, ...opts.connect };
    c.send(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`);
    await c.expect(/PONG\r\n/);
    return { c, info };
  } catch (err) {
    c.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// Scripted exchanges and transcript normalization (for comparing servers byte for byte)

/** INFO fields that legitimately differ between servers and runs. */
export const VOLATILE_INFO_FIELDS = [
  'server_id',
  'server_name',
  'version',
  'go',
  'git_commit',
  'host',
  'port',
  'client_id',
  'client_ip',
  'nonce',
  'connect_urls',
  'ws_connect_urls',
  'ip',
  'cluster',
  'domain',
  'xkey',
] as const;

/** Replaces the values of volatile INFO fields with `"<field>"`; keeps key order and spacing. */
export function normalizeInfo(text: string): string {
  return text.replace(/INFO (\{[^\r\n]*?\})( ?\r?\n)/g, (whole, json: string, tail: string) => {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(json) as Record<string, unknown>;
    } catch {
      return whole;
    }
    for (const k of VOLATILE_INFO_FIELDS) {
      if (k in obj) obj[k] = `<${k}>`;
    }
    return `INFO ${JSON.stringify(obj)}${tail}`;
  });
}

/** Renders received bytes one protocol line per row, with CR/LF and control bytes visible. */
export function renderBytes(s: string): string {
  const lines = s.split(/(?<=\n)/);
  return lines
    .map((l) =>
      l.replace(/[\x00-\x1f\x7f-\xff\\]/g, (ch) => {
        if (ch === '\r') return '\\r';
        if (ch === '\n') return '\\n';
        if (ch === '\t') return '\\t';
        if (ch === '\\') return '\\\\';
        return `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
      }),
    )
    .join('\n');
}

export type Step =
  /** Send on connection 'a'. */
  | string
  /** Send on a named connection (opened on first use). */
  | { conn?: string; send: string | Buffer }
  /** Barrier: PING on the connection and wait for its PONG (or for the server to close it). */
  | { sync: string }
  /** Open a connection now (so its INFO is read before later steps), without sending. */
  | { open: string }
  /** Wait until the connection's input matches (or it is closed), e.g. a server PING or a timeout -ERR. */
  | { conn?: string; until: RegExp | string; timeoutMs?: number }
  /** Wait until the server closes the connection. */
  | { waitClose: string; timeoutMs?: number };

export interface ExchangeOptions {
  /**
   * End of exchange: 'sync' (default) PINGs every still-open connection and waits for the
   * PONG or the close; 'quiet' just waits until nothing arrives for quietMs (for scripts that
   * leave a connection mid-frame, where a PING would be read as payload).
   */
  finish?: 'sync' | 'quiet';
  quietMs?: number;
  /** Quiet time before the closing barrier (see settle in exchange); default 30ms. */
  settleMs?: number;
  stepTimeoutMs?: number;
}

export interface Transcript {
  /**
   * Normalized, rendered transcript of all connections (sorted by name), comparable across
   * servers. The PONGs answering the closing barrier PINGs are left out.
   */
  text: string;
  /** Raw bytes per connection (not normalized). */
  raw: Record<string, string>;
  /** Whether the server closed each connection. */
  closedByServer: Record<string, boolean>;
}

/**
 * Runs a scripted exchange on fresh connections and returns the normalized transcript.
 * Each connection waits for its INFO before the first send, so INFO always comes first.
 */
export async function exchange(port: number, script: Step[], opts: ExchangeOptions = {}): Promise<Transcript> {
  const conns = new Map<string, RawClient>();
  const order: string[] = [];
  const stepTimeoutMs = opts.stepTimeoutMs ?? 5000;

  const get = async (name: string): Promise<RawClient> => {
    let c = conns.get(name);
    if (!c) {
      c = await rawConnect(port);
      conns.set(name, c);
      order.push(name);
      // Wait for the INFO line (or a close), so every transcript starts the same way.
      const cc = c;
      await new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + stepTimeoutMs;
        const tick = () => {
          if (/\r\n/.test(cc.data()) || cc.isClosed()) return resolve();
          if (Date.now() > deadline) return reject(new Error(`no INFO on connection ${name}: ${JSON.stringify(cc.data())}`));
          setTimeout(tick, 2);
        };
        tick();
      });
    }
    return c;
  };

  const pongsIn = (s: string) => s.split('PONG\r\n').length - 1;
  // PINGs sent on each connection (script PINGs included), so a barrier knows which PONG
  // answers it: PONGs come back in PING order. Counted as `ping` at the start of a line of
  // everything sent; scripts do not put such lines inside payloads.
  const sent = new Map<string, string>();
  const send = async (name: string, data: string | Buffer) => {
    const c = await get(name);
    sent.set(name, (sent.get(name) ?? '') + (typeof data === 'string' ? data : data.toString('latin1')));
    c.send(data);
  };
  // Waits until the connection is closed, or nothing was received for settleMs.
  // The closing barrier must not be written to a connection the server is about to close:
  // closing a socket with unread input makes the kernel answer with RST, our write then
  // fails with EPIPE and Node drops the socket, unread -ERR included.
  const settleMs = opts.settleMs ?? 30;
  const settle = async (name: string) => {
    const c = await get(name);
    let len = c.data().length;
    let quietSince = Date.now();
    const deadline = Date.now() + stepTimeoutMs;
    while (!c.isClosed() && Date.now() - quietSince < settleMs && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      if (c.data().length !== len) {
        len = c.data().length;
        quietSince = Date.now();
      }
    }
  };
  const pingsSent = (name: string) => ((sent.get(name) ?? '').match(/(?:^|\n)ping/gi) ?? []).length;
  // Offsets of the PONGs that answered the closing barrier PINGs; they are cut out of the
  // transcript, so a delivery that lands just after the barrier (another connection's
  // publish still in flight) reads the same as one that landed before it.
  const barrierPongs = new Map<string, number>();
  const sync = async (name: string, final = false) => {
    const c = await get(name);
    if (c.isClosed()) return;
    // The barrier PING is not counted by pingsSent when it lands mid-line (after a partial
    // frame); then it is never answered as a PING, and the wait ends with the close.
    const want = pingsSent(name) + 1;
    await send(name, 'PING\r\n');
    const deadline = Date.now() + stepTimeoutMs;
    while (!c.isClosed() && pongsIn(c.data()) < want) {
      if (Date.now() > deadline) throw new Error(`no PONG on connection ${name}; got ${JSON.stringify(c.data())}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    if (final && pongsIn(c.data()) >= want) {
      let at = -1;
      for (let i = 0; i < want; i++) at = c.data().indexOf('PONG\r\n', at + 1);
      if (at >= 0) barrierPongs.set(name, at);
    }
  };

  const closedByServer: Record<string, boolean> = {};
  try {
    for (const step of script) {
      if (typeof step === 'string') {
        await send('a', step);
      } else if ('send' in step) {
        await send(step.conn ?? 'a', step.send);
      } else if ('sync' in step) {
        await sync(step.sync);
      } else if ('open' in step) {
        await get(step.open);
      } else if ('until' in step) {
        const c = await get(step.conn ?? 'a');
        const re = typeof step.until === 'string' ? null : step.until;
        const deadline = Date.now() + (step.timeoutMs ?? stepTimeoutMs);
        for (;;) {
          const d = c.data();
          if (re ? re.test(d) : d.includes(step.until as string)) break;
          if (c.isClosed()) break;
          if (Date.now() > deadline)
            throw new Error(`timed out waiting for ${String(step.until)} on ${step.conn ?? 'a'}: ${JSON.stringify(d)}`);
          await new Promise((r) => setTimeout(r, 5));
        }
      } else if ('waitClose' in step) {
        const c = await get(step.waitClose);
        await c.closed(step.timeoutMs ?? stepTimeoutMs);
      }
    }
    if ((opts.finish ?? 'sync') === 'sync') {
      await Promise.all(order.map((n) => settle(n)));
      for (const name of order) await sync(name, true);
      // Let stragglers (and a close that trails its -ERR) arrive, so they are recorded the same way.
      await Promise.all(order.map((n) => conns.get(n)!.readAll(opts.quietMs ?? 50)));
    } else {
      await Promise.all(order.map((n) => conns.get(n)!.readAll(opts.quietMs ?? 200)));
    }
    for (const name of order) closedByServer[name] = conns.get(name)!.isClosed();
  } finally {
    for (const c of conns.values()) if (!c.isClosed()) c.close();
  }

  const raw: Record<string, string> = {};
  const parts: string[] = [];
  for (const name of [...order].sort()) {
    const c = conns.get(name)!;
    raw[name] = c.data();
    let shown = c.data();
    const at = barrierPongs.get(name);
    if (at !== undefined) shown = shown.slice(0, at) + shown.slice(at + 'PONG\r\n'.length);
    parts.push(`== ${name}\n${renderBytes(normalizeInfo(shown))}${closedByServer[name] ? '\n[closed by server]' : ''}`);
  }
  return { text: parts.join('\n'), raw, closedByServer };
}

/**
 * What a raw peer posing as route `id` of `cluster` sends after the server's INFO: its CONNECT
 * and INFO (2.9.10's fields), with `extra` fields (such as `lnoc`) in both.
 */
export function routeHandshake(id: string, serverName: string, cluster: string, extra: Record<string, unknown> = {}): string {
  const connect = { echo: true, verbose: false, pedantic: false, tls_required: false, headers: true, name: id, cluster, ...extra };
  const info = {
    server_id: id,
    server_name: serverName,
    version: '2.9.10',
    proto: 2,
    host: '127.0.0.1',
    port: 1,
    headers: true,
    max_payload: 1048576,
    cluster,
    ...extra,
  };
  return `CONNECT ${JSON.stringify(connect)}\r\nINFO ${JSON.stringify(info)}\r\n`;
}

/**
 * A session on worker `worker` of a server started with `-D` (its log names the worker each
 * connection lands on): sessions are opened until one lands there, each pushed to `opened`.
 */
export async function rawSessionOnWorker(
  srv: { port: number; waitForLog(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> },
  worker: number,
  opened: RawClient[],
  tries = 20,
): Promise<RawClient> {
  for (let i = 0; i < tries; i++) {
    const { c, info } = await rawSession(srv.port);
    opened.push(c);
    const m = await srv.waitForLog(new RegExp(`cid:${String(info.client_id)} - Client connection created on worker (\\d+)`), 30_000);
    if (Number(m[1]) === worker) return c;
  }
  throw new Error(`no connection landed on worker ${worker}`);
}
