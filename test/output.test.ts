// Per-connection output memory (src/conn/client.ts): a connection starts with a small output slab,
// grows it while reads produce more than it holds, reuses it once its writes completed, and
// gives it back after going quiet. One worker's Broker driven without sockets (as
// bench/hotloop.ts), so the buffers themselves can be looked at.

import test from 'ava';
import { EventEmitter } from 'node:events';
import net, { type Socket } from 'node:net';
import { Broker } from '../src/broker/broker.ts';
import type { ClientConn } from '../src/conn/client.ts';
import { Conn, ConnKind } from '../src/conn/base.ts';
import { createLayout } from '../src/threads/shared.ts';
import { defaultOptions } from '../src/config/options.ts';

/** Enough of a net.Socket for a ClientConn: keeps a copy of every byte written. */
class RecordingSocket extends EventEmitter {
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  destroyed = false;
  private readonly chunks: Buffer[] = [];
  /** write() calls since the first (a corked run of writes is one gathered write). */
  writes = 0;
  corked = 0;
  gathered = 0;
  setNoDelay(): void {}
  cork(): void {
    this.corked++;
  }
  uncork(): void {
    if (--this.corked === 0) this.gathered++;
  }
  resume(): void {}
  pause(): void {}
  end(): void {}
  destroy(): void {
    this.destroyed = true;
  }
  write(b: Buffer, cb?: () => void): boolean {
    this.writes++;
    this.chunks.push(Buffer.from(b)); // a copy: the slab is reused once the write completed
    if (cb !== undefined) setImmediate(cb);
    return true;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
}

/** One worker's Broker, as a one-worker server runs it. */
function newBroker(): Broker {
  const opts = { ...defaultOptions(), workers: 1 };
  return new Broker(
    opts,
    { serverId: 'NTEST', serverName: 'test', host: '127.0.0.1', port: 0 },
    createLayout(1, opts.maxControlLine),
    0,
    false,
  );
}

function setup(): { broker: Broker; pub: RecordingSocket; sub: RecordingSocket; subConn: ClientConn } {
  const broker = newBroker();
  const pub = new RecordingSocket();
  const sub = new RecordingSocket();
  broker.addConnection(pub as unknown as Socket, 1, false);
  broker.addConnection(sub as unknown as Socket, 2, false);
  const subConn = [...broker.conns].find((c) => c.cid === 2)!;
  sub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\nSUB out 1\r\n'));
  pub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\n'));
  return { broker, pub, sub, subConn };
}

const writesComplete = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

function publish(pub: RecordingSocket, payloads: string[]): string {
  pub.emit('data', Buffer.from(payloads.map((p) => `PUB out ${p.length}\r\n${p}\r\n`).join(''), 'latin1'));
  return payloads.map((p) => `MSG out 1 ${p.length}\r\n${p}\r\n`).join('');
}

test('a new connection gets a small output slab, not a 64 KiB one', (t) => {
  const { subConn } = setup();
  t.true(subConn.out.length > 0, 'INFO went through a slab');
  t.true(subConn.out.length <= 4096, `first slab is ${subConn.out.length} bytes`);
});

test('a connection that goes quiet gives its output slabs back and starts small again', async (t) => {
  const { pub, subConn } = setup();
  // One read that produces about 1 MiB of MSGs for the subscriber: the slab grows. (Payloads
  // below the zero-copy size: larger ones are not copied into the slab at all.)
  publish(
    pub,
    Array.from({ length: 512 }, (_v, i) => String(i % 10).repeat(2000)),
  );
  t.true(subConn.out.length >= 256 * 1024, `grown to ${subConn.out.length} bytes`);
  await writesComplete();
  // The sweep runs every 100ms: the first one still sees the burst, ten quiet ones follow.
  for (let i = 0; i < 11; i++) subConn.tick(Date.now());
  t.is(subConn.out.length, 0, 'no output buffer held while quiet');
  publish(pub, ['after']);
  t.true(subConn.out.length > 0 && subConn.out.length <= 4096, `small again: ${subConn.out.length} bytes`);
});

test('output is byte-exact across slab growth, reuse after completed writes, and release', async (t) => {
  const { pub, sub, subConn } = setup();
  let want = '';
  for (let round = 0; round < 3; round++) {
    want += publish(pub, ['a', 'bb', 'ccc']);
    await writesComplete();
    want += publish(
      pub,
      Array.from({ length: 40 }, (_v, i) => `${round}:${i}:`.padEnd(3000, 'x')),
    );
    want += publish(pub, ['tail']); // a second read before the first one's writes completed
    await writesComplete();
    for (let i = 0; i < 11; i++) subConn.tick(Date.now());
    want += publish(pub, ['\xff\x00', '']);
    await writesComplete();
  }
  const got = sub.text().replace(/^INFO [^\r]*\r\n/, '');
  t.is(got.length, want.length);
  t.true(got === want, 'every MSG byte for byte, in order');
});

/** A bare route-kind connection on a RecordingSocket: output queued by hand, flushed by hand. */
class BareRoute extends Conn {
  constructor(socket: RecordingSocket) {
    super(ConnKind.route, socket as unknown as Socket, 1, defaultOptions());
  }
  logPrefix(): string {
    return 'bare';
  }
  protected onRead(): void {}
  protected markDirty(): void {}
  protected onClose(): void {}
  protected onUnstall(): void {}
}

test('a route that queues more than a largest slab in one pass writes it out in pieces of at most 1 MiB and reuses those slabs', async (t) => {
  const sock = new RecordingSocket();
  const route = new BareRoute(sock);
  const burst = (tag: string): { text: string; slabs: Set<ArrayBufferLike> } => {
    const slabs = new Set<ArrayBufferLike>();
    let text = '';
    // About 4 MiB queued before one flush (as a drain pass of many small records does).
    for (let i = 0; i < 2000; i++) {
      const line = `RMSG $G ${tag}.${i} 1990\r\n`.padEnd(2000, 'x');
      route.queueString(line, 'latin1');
      slabs.add(route.out.buffer);
      t.true(route.out.length <= 1024 * 1024, `slab of ${route.out.length} bytes`);
      text += line;
    }
    route.flush();
    return { text, slabs };
  };
  const first = burst('a');
  t.true(sock.writes >= 4 && sock.writes <= 16, `${sock.writes} writes for about 4 MiB`);
  await writesComplete();
  const second = burst('b');
  await writesComplete();
  t.true(
    [...second.slabs].every((b) => first.slabs.has(b)),
    'the second burst wrote into the slabs of the first (kept as spares), none new',
  );
  t.true(sock.text() === first.text + second.text, 'every byte, in order');
});

test('large payloads go out from the read buffer by reference, byte-exact and in order with small ones', async (t) => {
  const { broker, pub, sub, subConn } = setup();
  let want = '';
  const big = (k: number, n: number): string => `${k}:`.padEnd(n, String.fromCharCode(97 + (k % 26)));
  for (let round = 0; round < 3; round++) {
    const before = sub.gathered;
    // One read: small, large, small, two large in a row, a large one last.
    want += publish(pub, ['s0', big(round, 70_000), 's1', big(round + 1, 2048), big(round + 2, 5000), 's2', big(round + 3, 3000)]);
    broker.flushAll(); // the end of the event loop's pass
    t.is(sub.gathered, before + 1, 'the read produced one gathered write');
    t.true(subConn.out.length < 16 * 1024, `payloads were not copied into the slab (${subConn.out.length} bytes)`);
    want += publish(pub, ['between']); // a read of small messages only, before those writes completed
    await writesComplete();
  }
  const got = sub.text().replace(/^INFO [^\r]*\r\n/, '');
  t.is(got.length, want.length);
  t.true(got === want, 'every MSG byte for byte, in order');
});

test('a large payload split across reads goes out by reference, byte-exact, headers stripped for a subscriber without them', async (t) => {
  const { broker, pub, sub, subConn } = setup();
  const payload = 'p'.repeat(40_000) + 'end';
  pub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n'));
  const frame = Buffer.from(
    `PUB out ${payload.length}\r\n${payload}\r\nHPUB out 12 ${12 + payload.length}\r\nNATS/1.0\r\n\r\n${payload}\r\n`,
  );
  // Three reads, cutting the first payload and the second control line.
  const before = sub.gathered;
  pub.emit('data', frame.subarray(0, 1000));
  pub.emit('data', frame.subarray(1000, 40_030));
  pub.emit('data', frame.subarray(40_030));
  broker.flushAll(); // the end of the event loop's pass
  t.true(sub.gathered > before, 'written with gathered writes');
  t.true(subConn.out.length < 16 * 1024, `payloads were not copied into the slab (${subConn.out.length} bytes)`);
  await writesComplete();
  const got = sub.text().replace(/^INFO [^\r]*\r\n/, '');
  // The subscriber's CONNECT did not ask for headers: the HPUB arrives as a MSG without them.
  const want = `MSG out 1 ${payload.length}\r\n${payload}\r\n`.repeat(2);
  t.is(got.length, want.length);
  t.true(got === want, 'both messages byte for byte');
});

test('a subscriber that fell behind gets gathered writes again once it caught up (not two syscalls per large message)', async (t) => {
  t.timeout(60_000);
  const broker = newBroker();
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const reader = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const subSocket = await accepted;
  t.teardown(() => {
    reader.destroy();
    subSocket.destroy();
    server.close();
  });
  reader.pause(); // the subscriber reads nothing yet
  const pub = new RecordingSocket();
  broker.addConnection(pub as unknown as Socket, 1, false);
  broker.addConnection(subSocket, 2, false);
  reader.write('CONNECT {"verbose":false,"pedantic":false}\r\nSUB out 1\r\n');
  pub.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\n'));
  const subConn = [...broker.conns].find((c) => c.cid === 2)!;
  for (const deadline = Date.now() + 20_000; subConn.subs.size === 0;) {
    if (Date.now() > deadline) return t.fail('the subscription did not arrive');
    await new Promise((r) => setTimeout(r, 10));
  }
  const big = (n: number): string[] => Array.from({ length: n }, (_, k) => `${k}:`.padEnd(8000, 'x'));
  // A backlog of more than 1 MiB behind the kernel's buffers: from then on the connection
  // writes one chunk at a time (base.ts writeChunksOneByOne).
  for (let i = 0; subSocket.writableLength <= 2 * 1024 * 1024; i++) {
    if (i > 10_000) return t.fail(`no backlog built (${subSocket.writableLength} bytes)`);
    publish(pub, big(16));
    await new Promise((r) => setImmediate(r));
  }
  const drained = new Promise<void>((r) => subSocket.once('drain', r));
  reader.on('data', () => {});
  reader.resume();
  await drained;
  // What the socket hands the kernel for one read of 16 large messages.
  const handle = (subSocket as unknown as { _handle: Record<string, (...a: unknown[]) => unknown> })._handle;
  const calls = { writev: 0, single: 0 };
  for (const [name, key] of [
    ['writev', 'writev'],
    ['writeBuffer', 'single'],
    ['writeLatin1String', 'single'],
    ['writeUtf8String', 'single'],
  ] as const) {
    const orig = handle[name];
    handle[name] = function (this: unknown, ...a: unknown[]): unknown {
      calls[key]++;
      return orig.apply(this, a);
    };
  }
  publish(pub, big(16));
  broker.flushAll(); // the end of the event loop's pass
  t.deepEqual(calls, { writev: 1, single: 0 }, 'one gathered write for the read');
});

test('reads that come back to back are written once per pass of the event loop, not once per read', async (t) => {
  const { broker, sub } = setup();
  const pubs = Array.from({ length: 10 }, (_v, i) => {
    const p = new RecordingSocket();
    broker.addConnection(p as unknown as Socket, 10 + i, false);
    p.emit('data', Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\n'));
    return p;
  });
  await writesComplete();
  const before = sub.writes;
  const from = sub.text().length;
  // Ten publishers' reads in one pass (as libuv reads the sockets one poll found ready).
  const want = pubs.map((p, i) => publish(p, [`m${i}`])).join('');
  const inPass = sub.writes - before;
  await writesComplete();
  t.is(sub.text().slice(from), want, 'every message, in read order');
  // The first may be written at once (a read after a quiet spell); the rest wait for the pass's end.
  // (A gap of over 50 us between two reads, a preempted test process, adds a write: a little slack.)
  t.true(inPass <= 3, `${inPass} writes during the pass`);
  t.true(sub.writes - before <= 4, `${sub.writes - before} writes for ten reads`);
});
