// The crossing between two client workers without sockets and threads: PUB frames parsed by
// worker 0's Broker, staged as ring records to worker 1, drained and delivered as MSG by
// worker 1's Broker. Both brokers run in this one thread, one after the other per read, so ns
// per message is the JS cost of a message that crosses workers (compare `bench:hotloop`, the
// same stream on one worker); wake-ups and the OS are left out.
//
//   npm run bench:hotloop-cross           # 1 publisher -> 1 subscriber, 16 B
//   SIZE=1024 N=2000000 npm run bench:hotloop-cross

import type { Socket } from 'node:net';
import { Broker } from '../src/broker/broker.ts';
import { createLayout } from '../src/threads/shared.ts';
import type { Mesh } from '../src/threads/mesh.ts';
import { CountingSocket, hotloopOpts, runRounds } from './hotloop-kit.ts';

const opts = { ...hotloopOpts, workers: 2 };
const layout = createLayout(2, opts.maxControlLine);
const id = { serverId: 'NHOTLOOP', serverName: 'hotloop', host: '127.0.0.1', port: 0 };
const publishing = new Broker(opts, id, layout, 0, false);
const delivering = new Broker(opts, id, layout, 1, false);
const meshOf = (b: Broker): Mesh => (b as unknown as { mesh: Mesh }).mesh;

const sub = new CountingSocket();
delivering.addConnection(sub as unknown as Socket, 2, false);
sub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\nSUB bench.x 1\r\n'));
meshOf(publishing).applyInterest(); // worker 0 learns worker 1's subscription
const pub = new CountingSocket();
publishing.addConnection(pub as unknown as Socket, 1, false);
pub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\n'));

runRounds(
  'PUB bench.x',
  (chunk) => {
    pub.emit('data', chunk); // worker 0 parses and commits the read's records
    meshOf(delivering).poll(); // worker 1 takes them and writes MSG
  },
  sub,
  'delivered_bytes',
);
