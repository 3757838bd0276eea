// The single-thread hot loop without sockets: PUB frames fed straight into one worker's
// Broker (parser, routing, delivery into the subscribers' output buffers), ns per message.
// Shows what the JS path costs on its own, apart from syscalls and the load generator.
//
//   npm run bench:hotloop                 # 1 publisher -> 1 subscriber, 16 B
//   NSUB=0 npm run bench:hotloop          # ingest only (no subscriber)
//   NSUB=4 SIZE=1024 N=2000000 npm run bench:hotloop

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Broker } from '../src/broker/broker.ts';
import { createLayout } from '../src/threads/shared.ts';
import { defaultOptions } from '../src/config/options.ts';

/** Enough of a net.Socket for a ClientConn: counts bytes, completes writes at once. */
class CountingSocket extends EventEmitter {
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  destroyed = false;
  written = 0;
  setNoDelay(): void {}
  cork(): void {}
  uncork(): void {}
  resume(): void {}
  pause(): void {}
  end(): void {}
  destroy(): void {
    this.destroyed = true;
  }
  write(b: Buffer, cb?: () => void): boolean {
    this.written += b.length;
    if (cb !== undefined) cb();
    return true;
  }
}

const opts = { ...defaultOptions(), workers: 1, maxPending: Number.MAX_SAFE_INTEGER };
const nsubs = Number(process.env.NSUB ?? 1);
const size = Number(process.env.SIZE ?? 16);
const total = Number(process.env.N ?? 5_000_000);
const rounds = Number(process.env.ROUNDS ?? 3);

const broker = new Broker(
  opts,
  { serverId: 'NHOTLOOP', serverName: 'hotloop', host: '127.0.0.1', port: 0 },
  createLayout(1, opts.maxControlLine),
  0,
  false,
);
const pub = new CountingSocket();
const sub = new CountingSocket();
broker.addConnection(pub as unknown as Socket, 1, false);
broker.addConnection(sub as unknown as Socket, 2, false);
const subs = Array.from({ length: nsubs }, (_v, i) => `SUB bench.x ${i + 1}\r\n`).join('');
sub.emit('data', Buffer.from(`CONNECT {"verbose":false,"pedantic":false}\r\n${subs}`));
pub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\n'));

const frame = Buffer.concat([Buffer.from(`PUB bench.x ${size}\r\n`), Buffer.alloc(size, 97), Buffer.from('\r\n')]);
const perChunk = Math.max(1, Math.floor(65536 / frame.length));
const chunk = Buffer.concat(Array(perChunk).fill(frame));
const chunks = Math.ceil(total / perChunk);
for (let r = 0; r < rounds; r++) {
  const before = sub.written;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < chunks; i++) pub.emit('data', chunk);
  const ns = Number(process.hrtime.bigint() - t0);
  const msgs = chunks * perChunk;
  console.log(
    `round=${r + 1} subs=${nsubs} size=${size} msgs=${msgs} ns_per_msg=${(ns / msgs).toFixed(1)} ` +
      `msgs_per_s=${((msgs / ns) * 1e9).toFixed(0)} delivered_bytes=${sub.written - before}`,
  );
}
process.exit(0);
