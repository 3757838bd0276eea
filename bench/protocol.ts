// Raw NATS client protocol for the load generator: no client library, no string per message.
//
// The reader walks MSG frames byte by byte, reads only the sid, the size and the first
// min(size, 4) payload bytes (the sequence number the publisher embedded), and then jumps
// over the payload by its length. ../shared/feasibility.md (section A) measured such a Node
// tool at a fraction of a core for nats-server's full rate, which is what keeps the load
// generator from being the bottleneck.

import net from 'node:net';
import { benchTlsOn, upgradeToTls } from './tls.ts';

// Sid used by every bench subscriber for its "interest has arrived" probe subscription.
// Real subscriptions use sids >= 1.
export const PROBE_SID = 0;

export const CONNECT_LINE =
  'CONNECT {"verbose":false,"pedantic":false,"lang":"raw","version":"0.0.0","protocol":1,' +
  '"headers":false,"no_responders":false,"name":"skein-bench"}\r\n';

export interface ReaderEvents {
  // `b[replyStart, replyEnd)` is the reply subject, or replyStart = -1 when there is none.
  // `b` is only valid during the call.
  onMsg(sid: number, seq: number, size: number, b: Buffer, replyStart: number, replyEnd: number): void;
  onPing(): void;
  onPong(): void;
  onInfo(line: string): void;
  onErr(line: string): void;
}

export class ProtocolError extends Error {
  readonly code = 'BENCH_PROTOCOL';
}

// Bytes of the next chunk glued to a partial frame carried over from the previous chunk.
// A frame header (control line plus 4 sequence bytes) longer than this falls back to a full copy.
const STITCH_BYTES = 4096;

// Incremental reader of the server-to-client protocol. Frames may be split anywhere across
// chunks: a partial control line is carried (only the partial bytes are copied), and a payload
// that runs past the chunk is skipped by length in the following chunks.
export class ProtocolReader {
  private carry: Buffer | null = null;
  private skip = 0;
  private readonly ev: ReaderEvents;

  constructor(events: ReaderEvents) {
    this.ev = events;
  }

  feed(chunk: Buffer): void {
    let b = chunk;
    let i = 0;
    if (this.skip > 0) {
      if (this.skip >= b.length) {
        this.skip -= b.length;
        return;
      }
      i = this.skip;
      this.skip = 0;
    } else if (this.carry !== null) {
      const carry = this.carry;
      this.carry = null;
      const take = Math.min(chunk.length, STITCH_BYTES);
      const head = Buffer.concat([carry, chunk.subarray(0, take)]);
      const r = this.run(head, 0, carry.length);
      if (r < 0) {
        const partialAt = ~r;
        if (take === chunk.length) {
          this.carry = Buffer.from(head.subarray(partialAt));
          return;
        }
        // Header longer than the stitch window: glue the whole chunk (rare: huge INFO lines).
        b = Buffer.concat([head.subarray(partialAt), chunk.subarray(take)]);
        i = 0;
      } else {
        const p = r - carry.length; // next frame start, as an offset into chunk
        if (p >= chunk.length) {
          this.skip = p - chunk.length;
          return;
        }
        i = p;
      }
    }
    const r = this.run(b, i, b.length);
    if (r < 0) this.carry = Buffer.from(b.subarray(~r));
    else if (r > b.length) this.skip = r - b.length;
  }

  // Parses the frames that start in [i, limit). Returns the start of the next frame (which may
  // lie beyond b.length: the caller skips the rest of that payload), or ~start when the frame
  // at `start` has an incomplete header.
  private run(b: Buffer, i: number, limit: number): number {
    const n = b.length;
    const ev = this.ev;
    while (i < limit) {
      const c0 = b[i];
      if (c0 === 77 /* M */) {
        if (b[i + 1] !== 83 /* S */ && i + 1 < n) throw new ProtocolError(`unexpected frame at byte ${i}: ${peek(b, i)}`);
        let j = i + 4; // after "MSG "
        while (j < n && b[j] !== 32) j++; // subject
        if (j >= n) return ~i;
        j++;
        let sid = 0;
        let c = 0;
        while (j < n && (c = b[j]) !== 32) {
          sid = sid * 10 + (c - 48);
          j++;
        }
        if (j >= n) return ~i;
        j++;
        const t = j;
        let size = 0;
        let replyStart = -1;
        let replyEnd = -1;
        while (j < n && (c = b[j]) !== 13) {
          if (c === 32) {
            replyStart = t;
            replyEnd = j;
            size = 0;
          } else {
            size = size * 10 + (c - 48);
          }
          j++;
        }
        if (j + 1 >= n) return ~i;
        const ps = j + 2;
        const k = size < 4 ? size : 4;
        if (ps + k > n) return ~i;
        let seq = 0;
        if (k === 4) seq = (b[ps] | (b[ps + 1] << 8) | (b[ps + 2] << 16) | (b[ps + 3] << 24)) >>> 0;
        else if (k === 3) seq = b[ps] | (b[ps + 1] << 8) | (b[ps + 2] << 16);
        else if (k === 2) seq = b[ps] | (b[ps + 1] << 8);
        else if (k === 1) seq = b[ps];
        ev.onMsg(sid, seq, size, b, replyStart, replyEnd);
        i = ps + size + 2;
      } else if (c0 === 80 /* P */) {
        if (i + 6 > n) return ~i;
        const c1 = b[i + 1];
        if (c1 === 73 /* I */) ev.onPing();
        else if (c1 === 79 /* O */) ev.onPong();
        else throw new ProtocolError(`unexpected frame at byte ${i}: ${peek(b, i)}`);
        i += 6;
      } else if (c0 === 43 /* + */) {
        if (i + 5 > n) return ~i; // +OK\r\n
        i += 5;
      } else if (c0 === 73 /* I */ || c0 === 45 /* - */) {
        const nl = b.indexOf(10, i);
        if (nl < 0) return ~i;
        const line = b.toString('latin1', i, b[nl - 1] === 13 ? nl - 1 : nl);
        if (c0 === 73) ev.onInfo(line);
        else ev.onErr(line);
        i = nl + 1;
      } else {
        throw new ProtocolError(`unexpected frame at byte ${i}: ${peek(b, i)}`);
      }
    }
    return i;
  }
}

function peek(b: Buffer, i: number): string {
  return JSON.stringify(b.toString('latin1', i, Math.min(b.length, i + 40)));
}

// Writes the sequence number into the first min(size, 4) payload bytes, little-endian.
// Payloads under 4 bytes carry the sequence modulo 2^(8 * size); a 0-byte payload carries none.
export function writeSeq(b: Buffer, at: number, size: number, seq: number): void {
  if (size >= 4) {
    b[at] = seq;
    b[at + 1] = seq >>> 8;
    b[at + 2] = seq >>> 16;
    b[at + 3] = seq >>> 24;
  } else if (size > 0) {
    b[at] = seq;
    if (size > 1) b[at + 1] = seq >>> 8;
    if (size > 2) b[at + 2] = seq >>> 16;
  }
}

// Number of sequence bits a payload of `size` bytes carries (0 = no ordering check possible).
export function seqBits(size: number): number {
  return Math.min(size, 4) * 8;
}

// A template of `frames` consecutive PUB frames, subjects cycling through `subjects`, with the
// offset of each frame's payload and end. The publisher patches sequence numbers into copies.
export interface PubTemplate {
  buf: Buffer;
  payloadAt: Int32Array;
  frameEnd: Int32Array;
  frames: number;
}

export function buildPubTemplate(subjects: string[], size: number, reply: string | null, targetBytes = 128 * 1024): PubTemplate {
  const heads = subjects.map((s) => Buffer.from(`PUB ${s}${reply ? ' ' + reply : ''} ${size}\r\n`, 'latin1'));
  const cycleBytes = heads.reduce((a, h) => a + h.length + size + 2, 0);
  const cycles = Math.max(1, Math.ceil(targetBytes / cycleBytes));
  const frames = cycles * subjects.length;
  const buf = Buffer.alloc(cycles * cycleBytes, 0x78 /* x */);
  const payloadAt = new Int32Array(frames);
  const frameEnd = new Int32Array(frames);
  let o = 0;
  for (let f = 0; f < frames; f++) {
    const h = heads[f % heads.length];
    h.copy(buf, o);
    o += h.length;
    payloadAt[f] = o;
    o += size;
    buf[o++] = 13;
    buf[o++] = 10;
    frameEnd[f] = o;
  }
  return { buf, payloadAt, frameEnd, frames };
}

// Connects and waits for the server's INFO. Sends nothing.
export function connectRaw(url: string, timeoutMs = 10_000): Promise<net.Socket> {
  const { host, port } = parseUrl(url);
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connect to ${url}: no INFO within ${timeoutMs} ms`));
    }, timeoutMs);
    let seen = '';
    const onData = (d: Buffer): void => {
      seen += d.toString('latin1');
      if (seen.includes('\r\n')) {
        clearTimeout(timer);
        sock.off('data', onData);
        sock.off('error', onError);
        sock.pause();
        if (!seen.startsWith('INFO ')) {
          sock.destroy();
          reject(new Error(`connect to ${url}: expected INFO, got ${JSON.stringify(seen.slice(0, 80))}`));
          return;
        }
        const rest = seen.slice(seen.indexOf('\r\n') + 2);
        if (benchTlsOn()) {
          // --tls: the handshake follows the plaintext INFO (bench/tls.ts).
          upgradeToTls(sock, timeoutMs).then(resolve, reject);
          return;
        }
        if (rest.length > 0) sock.unshift(Buffer.from(rest, 'latin1'));
        resolve(sock);
      }
    };
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(new Error(`connect to ${url}: ${e.message}`));
    };
    sock.on('data', onData);
    sock.once('error', onError);
  });
}

export function parseUrl(url: string): { host: string; port: number } {
  const m = /^(?:nats:\/\/)?([^:/]+):(\d+)\/?$/.exec(url.trim());
  if (!m) throw new Error(`bad server url ${JSON.stringify(url)} (want nats://host:port)`);
  return { host: m[1], port: Number(m[2]) };
}
