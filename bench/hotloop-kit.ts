// What the socket-free hot loops share (hotloop.ts, hotloop-route.ts, hotloop-route-send.ts):
// a socket that only counts bytes, the environment knobs, and the timed rounds that feed one
// 64 KiB read of identical frames again and again.

import { EventEmitter } from 'node:events';
import { defaultOptions } from '../src/config/options.ts';

/** Enough of a net.Socket for a connection: counts bytes, completes writes at once. */
export class CountingSocket extends EventEmitter {
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  destroyed = false;
  written = 0;
  setNoDelay(): void {}
  setKeepAlive(): void {}
  cork(): void {}
  uncork(): void {}
  resume(): void {}
  pause(): void {}
  end(): void {}
  ref(): void {}
  unref(): void {}
  destroy(): void {
    this.destroyed = true;
  }
  write(b: Buffer, cb?: () => void): boolean {
    this.written += b.length;
    if (cb !== undefined) cb();
    return true;
  }
}

/** Options without a pending-bytes limit (nothing is ever written out), and SIZE, N, ROUNDS from the environment. */
export const hotloopOpts = { ...defaultOptions(), workers: 1, maxPending: Number.MAX_SAFE_INTEGER };
export const size = Number(process.env.SIZE ?? 16);
const total = Number(process.env.N ?? 5_000_000);
const rounds = Number(process.env.ROUNDS ?? 3);

/**
 * Time `rounds` rounds of about N messages: frames `<line> <size>\r\n<payload>\r\n`, as many as
 * fit one 64 KiB read, handed to `feed` read by read. Prints ns per message (after `label`) and
 * the bytes `out` counted (named `outName`), which must not be 0 unless `mayWriteNothing`;
 * exits when done.
 */
export function runRounds(
  line: string,
  feed: (chunk: Buffer) => void,
  out: CountingSocket,
  outName: string,
  label = '',
  mayWriteNothing = false,
): void {
  const frame = Buffer.concat([Buffer.from(`${line} ${size}\r\n`), Buffer.alloc(size, 97), Buffer.from('\r\n')]);
  const perChunk = Math.max(1, Math.floor(65536 / frame.length));
  const chunk = Buffer.concat(Array<Buffer>(perChunk).fill(frame));
  const chunks = Math.ceil(total / perChunk);
  for (let r = 0; r < rounds; r++) {
    const before = out.written;
    const cpu0 = process.threadCpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < chunks; i++) feed(chunk);
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.threadCpuUsage(cpu0);
    const msgs = chunks * perChunk;
    const bytes = out.written - before;
    if (bytes === 0 && !mayWriteNothing) throw new Error(`nothing was written (${outName})`);
    // cpu_ns_per_msg: this thread's CPU time only, which time the thread spent descheduled by
    // other work on the host does not inflate (the figure to compare versions by on a busy host).
    console.log(
      `round=${r + 1} ${label}size=${size} msgs=${msgs} ns_per_msg=${(ns / msgs).toFixed(1)} ` +
        `cpu_ns_per_msg=${(((cpu.user + cpu.system) * 1000) / msgs).toFixed(1)} ` +
        `msgs_per_s=${((msgs / ns) * 1e9).toFixed(0)} ${outName}=${bytes}`,
    );
  }
  process.exit(0);
}
