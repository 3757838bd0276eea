// A server-to-server connection's plain socket reads into its thread's one read buffer
// (src/conn/read-buffer.ts), set up through net.Socket's `onread` slots on a socket Node
// constructed. These tests hold the runtime to it: the slots are found, every byte arrives in
// order, pause/resume and the end still work, and a TLS socket is left alone.

import test from 'ava';
import net from 'node:net';
import tls from 'node:tls';
import { readIntoOwnBuffer, READ_BUFFER_BYTES } from '../src/conn/read-buffer.ts';

/** A connected pair of plain sockets on 127.0.0.1 (the OS picks the port). */
async function socketPair(): Promise<{ a: net.Socket; b: net.Socket; close: () => void }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const b = await accepted;
  return {
    a,
    b,
    close: () => {
      a.destroy();
      b.destroy();
      server.close();
    },
  };
}

test('an accepted socket reads into the reused buffer: every byte in order, then the end', async (t) => {
  t.timeout(30_000);
  const { a, b, close } = await socketPair();
  t.teardown(close);
  const seen = new Set<ArrayBufferLike>();
  const parts: Buffer[] = [];
  let reads = 0;
  t.true(
    readIntoOwnBuffer(b, (chunk) => {
      reads++;
      seen.add(chunk.buffer);
      parts.push(Buffer.from(chunk)); // valid only during the call
    }),
  );
  const ended = new Promise<void>((r) => b.once('end', r));
  b.resume();
  const sent = Buffer.alloc(4 * READ_BUFFER_BYTES + 123);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + (i >> 9)) & 0xff;
  a.end(sent);
  await ended;
  t.true(Buffer.concat(parts).equals(sent), 'every byte, in order');
  t.true(reads >= 5, `${reads} reads`);
  t.is(seen.size, 1, 'the same buffer for every read');
});

test('a socket reading into the shared buffer still pauses and resumes', async (t) => {
  t.timeout(30_000);
  const { a, b, close } = await socketPair();
  t.teardown(close);
  let got = 0;
  t.true(readIntoOwnBuffer(b, (chunk) => (got += chunk.length)));
  b.resume();
  a.write(Buffer.alloc(1000));
  const deadline = Date.now() + 10_000;
  while (got < 1000 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  t.is(got, 1000);
  b.pause();
  a.write(Buffer.alloc(500));
  // Nothing is read while paused: wait until the bytes are surely in b's kernel buffer.
  await new Promise<void>((r) => a.write('', () => r()));
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  t.is(got, 1000, 'no read while paused');
  b.resume();
  const deadline2 = Date.now() + 10_000;
  while (got < 1500 && Date.now() < deadline2) await new Promise((r) => setImmediate(r));
  t.is(got, 1500);
});

test('two sockets reading at once share the buffer and each gets its own bytes, in order', async (t) => {
  t.timeout(30_000);
  const pairs = [await socketPair(), await socketPair()];
  const bufs = new Set<ArrayBufferLike>();
  const got = pairs.map(() => [] as Buffer[]);
  const ended: Promise<void>[] = [];
  const sent: Buffer[] = [];
  for (const [i, { b, close }] of pairs.entries()) {
    t.teardown(close);
    t.true(
      readIntoOwnBuffer(b, (chunk) => {
        bufs.add(chunk.buffer);
        got[i].push(Buffer.from(chunk));
      }),
    );
    ended.push(new Promise<void>((r) => b.once('end', r)));
    b.resume();
    sent.push(Buffer.alloc(8 * READ_BUFFER_BYTES, i === 0 ? 'ab' : 'xyz'));
  }
  // Both streams are written a piece at a time, alternately, so their reads interleave.
  for (let off = 0; off < sent[0].length; off += 10_000)
    for (const [i, { a }] of pairs.entries()) a.write(sent[i].subarray(off, off + 10_000));
  for (const { a } of pairs) a.end();
  await Promise.all(ended);
  for (const i of [0, 1]) t.true(Buffer.concat(got[i]).equals(sent[i]), `socket ${i}: its bytes, in order`);
  t.is(bufs.size, 1, 'one buffer for both');
});

test('a TLS socket is left to its own reads', (t) => {
  const s = new tls.TLSSocket(new net.Socket());
  t.teardown(() => s.destroy());
  t.false(readIntoOwnBuffer(s, () => {}));
});
