// The single-thread hot loop without sockets: PUB frames fed straight into one worker's
// Broker (parser, routing, delivery into the subscribers' output buffers), ns per message.
// Shows what the JS path costs on its own, apart from syscalls and the load generator.
//
//   npm run bench:hotloop                 # 1 publisher -> 1 subscriber, 16 B
//   NSUB=0 npm run bench:hotloop          # ingest only (no subscriber)
//   NSUB=4 SIZE=1024 N=2000000 npm run bench:hotloop

import type { Socket } from 'node:net';
import { Broker } from '../src/broker/broker.ts';
import { createLayout } from '../src/threads/shared.ts';
import { CountingSocket, hotloopOpts as opts, runRounds } from './hotloop-kit.ts';

const nsubs = Number(process.env.NSUB ?? 1);

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

// Each chunk is one read in a pass of its own (a server writes at the end of each pass).
const feed = (chunk: Buffer): void => {
  pub.emit('data', chunk);
  broker.flushAll();
};
runRounds('PUB bench.x', feed, sub, 'delivered_bytes', `subs=${nsubs} `, nsubs === 0);
