// Multi-worker behaviour: connections are spread over workers by the main thread, so these
// tests open several connections and check delivery, order and exactly-once semantics
// whichever workers the publisher and subscribers landed on.

import test from 'ava';
import net from 'node:net';
import { connect, type NatsConnection } from 'nats';
import { useServer, testImpl } from './helpers/server.ts';
import { rawSession, rawSessionOnWorker, type RawClient } from './helpers/raw.ts';

const impl = testImpl();

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Config line (both servers) for tests whose subscribers may read nothing for a while. */
const LONG_WRITE_DEADLINE = 'write_deadline: "60s"\n';

/** The server's slow-consumer log lines, for the message of a subscriber that was cut off. */
function slowConsumerLines(output: string): string {
  return output.match(/.*Slow Consumer.*/g)?.join('\n') ?? 'no slow-consumer log line';
}

function seqOf(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
}

async function clients(port: number, n: number): Promise<NatsConnection[]> {
  const out: NatsConnection[] = [];
  // Sequential connects: the main thread gives each to the least-loaded worker, so
  // consecutive connections alternate between workers.
  for (let i = 0; i < n; i++) out.push(await connect({ port, name: `c${i}` }));
  return out;
}

test('a subscription on one worker receives publishes from every worker', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl, workers: 2 });
  const ncs = await clients(srv.port, 6);
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
  const received = ncs.map(() => new Set<string>());
  ncs.forEach((nc, i) => nc.subscribe('x.>', { callback: (_e, m) => received[i].add(m.subject) }));
  await Promise.all(ncs.map((nc) => nc.flush()));
  ncs.forEach((nc, i) => nc.publish(`x.${i}`));
  await Promise.all(ncs.map((nc) => nc.flush()));
  await waitFor(() => received.every((s) => s.size === ncs.length), 15_000, 'every subscriber to get every publisher');
  for (const s of received) t.deepEqual([...s].sort(), ncs.map((_n, i) => `x.${i}`).sort());
});

test('messages from one publisher arrive complete and in publish order on every worker', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl, workers: 2 });
  const ncs = await clients(srv.port, 5);
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
  const total = 20_000;
  const seqs: number[][] = [[], [], [], []];
  for (let i = 0; i < 4; i++) {
    ncs[i + 1].subscribe('ordered', { callback: (_e, m) => seqs[i].push(seqOf(m.data)) });
    await ncs[i + 1].flush();
  }
  const pub = ncs[0];
  for (let n = 0; n < total; n++) {
    // A fresh buffer each time: the client may hold it until its next flush.
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(n);
    pub.publish('ordered', buf);
  }
  await pub.flush();
  await waitFor(() => seqs.every((s) => s.length >= total), 20_000, 'all messages');
  for (const s of seqs) {
    t.is(s.length, total);
    let inOrder = true;
    for (let n = 0; n < total; n++) if (s[n] !== n) inOrder = false;
    t.true(inOrder);
  }
});

test('queue group delivers each message to exactly one member across workers', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl, workers: 2 });
  const ncs = await clients(srv.port, 7);
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
  const total = 3000;
  const perMember = [0, 0, 0, 0, 0, 0];
  const seen = new Map<number, number>();
  for (let i = 0; i < 6; i++) {
    ncs[i + 1].subscribe('work', {
      queue: 'workers',
      callback: (_e, m) => {
        perMember[i]++;
        const n = seqOf(m.data);
        seen.set(n, (seen.get(n) ?? 0) + 1);
      },
    });
    await ncs[i + 1].flush();
  }
  for (let n = 0; n < total; n++) {
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(n);
    ncs[0].publish('work', buf);
  }
  await ncs[0].flush();
  await waitFor(() => perMember.reduce((a, b) => a + b, 0) >= total, 20_000, 'queue deliveries');
  // Give any duplicate a chance to show up before counting.
  await Promise.all(ncs.map((nc) => nc.flush()));
  t.is(
    perMember.reduce((a, b) => a + b, 0),
    total,
  );
  t.is(seen.size, total);
  t.true([...seen.values()].every((c) => c === 1));
  // Members on both workers got work (random choice over all 6 members).
  t.true(perMember.filter((c) => c > 0).length >= 4, `spread: ${perMember.join(',')}`);
});

test('a SUB confirmed by PONG on one worker is seen at once by a PUB on another', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl, workers: 2 });
  const { c: sub } = await rawSession(srv.port, { connect: { verbose: false, pedantic: false } });
  const { c: pub } = await rawSession(srv.port, { connect: { verbose: false, pedantic: false } });
  t.teardown(() => {
    sub.close();
    pub.close();
  });
  for (let i = 0; i < 100; i++) {
    sub.send(`SUB fresh.${i} ${i}\r\n`);
    await sub.ping();
    pub.send(`PUB fresh.${i} 1\r\n${i % 10}\r\n`);
    // Published once: a PUB that did not see the interest drops the message for good, so
    // this fails however long it waits. The deadline only bounds delivery, which on a loaded
    // machine took up to 6 s (while the other tests of this file ran).
    await sub.expect(`MSG fresh.${i} ${i} 1\r\n${i % 10}\r\n`, 30_000);
  }
  t.pass();
});

test('a subscriber that stops reading makes the cross-worker ring fill without losing messages', async (t) => {
  t.timeout(90_000);
  // write_deadline 60s: the subscriber reads nothing until the publisher is held back, which
  // on a loaded machine can take longer than the default 10s (it would be cut off, rightly).
  const srv = await useServer(t, { impl, workers: 2, config: { skein: LONG_WRITE_DEADLINE, natsServer: LONG_WRITE_DEADLINE } });
  // Raw sockets so we can stop reading on the subscriber.
  const size = 32 * 1024;
  const total = 1500; // ~48 MiB: several times a ring's capacity
  const { c: sub } = await rawSession(srv.port, { connect: { verbose: false, pedantic: false } });
  sub.send('SUB big 1\r\n');
  await sub.ping();
  const header = `MSG big 1 ${size}\r\n`;
  const frameLen = header.length + size + 2;
  let frames = 0;
  let pos = 0; // position inside the current frame
  let skip = 0; // bytes of a server PING still to skip
  let firstBad = -1;
  sub.socket.pause();
  sub.socket.removeAllListeners('data');
  sub.socket.on('data', (d: Buffer) => {
    for (let i = 0; i < d.length; i++) {
      if (skip > 0) {
        skip--;
        continue;
      }
      // The server's keep-alive PING may arrive between frames.
      if (pos === 0 && d[i] === 0x50) {
        skip = 'PING\r\n'.length - 1;
        continue;
      }
      if (pos === header.length && firstBad < 0 && d[i] !== frames % 251) firstBad = frames;
      if (++pos === frameLen) {
        pos = 0;
        frames++;
      }
    }
  });
  const pubSock = net.connect(srv.port, '127.0.0.1');
  t.teardown(() => {
    pubSock.destroy();
    sub.close();
  });
  await new Promise<void>((r) => pubSock.once('connect', () => r()));
  pubSock.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
  const payload = Buffer.alloc(size);
  for (let n = 0; n < total; n++) {
    payload[0] = n % 251;
    pubSock.write(Buffer.concat([Buffer.from(`PUB big ${size}\r\n`), payload, Buffer.from('\r\n')]));
  }
  // Wait until the publisher is held back (its writes back up: ring, server and kernel
  // buffers are full), then drain the subscriber.
  await waitFor(() => pubSock.writableLength > 0, 20_000, 'the publisher to be held back');
  sub.socket.resume();
  await waitFor(() => frames >= total || sub.isClosed(), 60_000, `all ${total} frames (got ${frames})`);
  t.false(sub.isClosed(), `subscriber was cut off: ${slowConsumerLines(srv.output())}`);
  t.is(frames, total);
  t.is(pos, 0);
  t.is(firstBad, -1);
});

test('a worker that throws is logged and replaced; the other workers keep serving', async (t) => {
  t.timeout(60_000);
  if (impl !== 'skein') {
    t.pass();
    return;
  }
  const srv = await useServer(t, { impl, workers: 2, args: ['-D'], env: { SKEIN_FAULT_INJECTION: '1' } });
  const opened: RawClient[] = [];
  t.teardown(() => opened.forEach((c) => c.close()));
  const onWorker = (w: number): Promise<RawClient> => rawSessionOnWorker(srv, w, opened, 10);
  const victim = await onWorker(0);
  const survivor = await onWorker(1);
  survivor.send('SUB survive 1\r\n');
  await survivor.ping();
  victim.send('PUB $SKEIN.FAULT.CRASH 0\r\n\r\n');
  await victim.closed(10_000);
  await srv.waitForLog(/Worker 0 failed[\s\S]*fault injection: worker crash requested/, 30_000);
  await srv.waitForLog(/Worker 0 replaced and ready/, 30_000);
  // The survivor still works.
  await survivor.ping();
  // A connection on the replacement worker reaches the survivor's subscription, which the
  // replacement learned from a snapshot (the survivor never resubscribed).
  const fresh = await onWorker(0);
  fresh.send('PUB survive 2\r\nok\r\n');
  await fresh.ping();
  await survivor.expect('MSG survive 1 2\r\nok\r\n', 5000);
  // And the other way: a subscription on the replacement gets a publish from worker 1.
  fresh.send('SUB back 7\r\n');
  await fresh.ping();
  survivor.send('PUB back 2\r\nhi\r\n');
  await fresh.expect('MSG back 7 2\r\nhi\r\n', 5000);
  t.pass();
});

test('a fast publisher is slowed down for a backed-up subscriber instead of the subscriber being cut off', async (t) => {
  t.timeout(90_000);
  // max_pending 8 MiB: without a producer stall the subscriber would be a slow consumer
  // within a fraction of a second. nats-server stalls the publisher; so must we, on one
  // worker or two. (A stall lasts at most 1s, so a subscriber that does not read at all for
  // long enough is cut off all the same: 8 MiB, not 1, leaves a loaded machine's test
  // process a generous margin to keep reading.)
  const srv = await useServer(t, {
    impl,
    workers: 2,
    // (write_deadline 60s: a test process starved for 10s must not be cut off by the deadline.)
    config: {
      skein: `max_pending: 8388608\nmax_payload: 65536\n${LONG_WRITE_DEADLINE}`,
      natsServer: `max_pending: 8388608\nmax_payload: 65536\n${LONG_WRITE_DEADLINE}`,
    },
  });
  const size = 4096;
  const total = 8000; // ~32 MiB through a subscriber that reads at a throttled pace
  const subs: { c: RawClient; bytes: number }[] = [];
  const frameLen = `MSG stall 1 ${size}\r\n`.length + size + 2;
  for (let i = 0; i < 2; i++) {
    const { c } = await rawSession(srv.port);
    c.send('SUB stall 1\r\n');
    await c.ping();
    const s = { c, bytes: 0 };
    c.socket.removeAllListeners('data');
    c.socket.on('data', (d: Buffer) => {
      s.bytes += d.length;
      // Read slowly: pause 2 ms after every chunk.
      c.socket.pause();
      setTimeout(() => c.socket.resume(), 2);
    });
    subs.push(s);
  }
  const pub = net.connect(srv.port, '127.0.0.1');
  t.teardown(() => {
    pub.destroy();
    subs.forEach((s) => s.c.close());
  });
  await new Promise<void>((r) => pub.once('connect', () => r()));
  pub.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
  const frame = Buffer.concat([Buffer.from(`PUB stall ${size}\r\n`), Buffer.alloc(size, 0x61), Buffer.from('\r\n')]);
  for (let n = 0; n < total; n += 16) pub.write(Buffer.concat(Array(16).fill(frame)));
  // Keep-alive PINGs may add a few bytes; every frame must arrive and nobody may be closed.
  await waitFor(() => subs.every((s) => s.bytes >= total * frameLen || s.c.isClosed()), 80_000, 'both subscribers to get everything');
  for (const s of subs) {
    t.false(s.c.isClosed(), `subscriber was cut off: ${slowConsumerLines(srv.output())}`);
    t.true(s.bytes >= total * frameLen);
  }
});

// Serial (ava runs serial tests first, alone in this file): starting 72 threads on a small
// loaded machine starves the file's other tests, whose servers then miss their deadlines.
test.serial('more workers than the old 64-thread layout start and serve, across workers', async (t) => {
  t.timeout(120_000);
  if (impl !== 'skein') {
    t.pass();
    return;
  }
  // 72 workers: over the 64 threads the first layout took (it refused to start). The first
  // two connections land on different workers (fewest connections first).
  const srv = await useServer(t, { impl, workers: 72, args: ['-D'], readyTimeoutMs: 90_000 });
  t.regex(srv.output(), /Workers: {2}72\b/);
  const { c: a, info: ia } = await rawSession(srv.port, { connect: { verbose: false, pedantic: false } });
  const { c: b, info: ib } = await rawSession(srv.port, { connect: { verbose: false, pedantic: false } });
  t.teardown(() => {
    a.close();
    b.close();
  });
  const wa = await srv.waitForLog(new RegExp(`cid:${String(ia.client_id)} - Client connection created on worker (\\d+)`));
  const wb = await srv.waitForLog(new RegExp(`cid:${String(ib.client_id)} - Client connection created on worker (\\d+)`));
  t.not(wa[1], wb[1]);
  a.send('SUB many 1\r\n');
  await a.ping();
  b.send('PUB many 2\r\nhi\r\n'.repeat(100));
  await b.ping();
  const upToPong = await a.ping();
  t.is(upToPong.split('MSG many 1 2\r\nhi\r\n').length - 1, 100);
});

/** The MSG and HMSG frames in `text`, in order: [sid, reply, headers, payload] (payload and headers as text). */
function frames(text: string): [string, string, string, string][] {
  const out: [string, string, string, string][] = [];
  const line = /(MSG|HMSG) (\S+) (\S+)(?: (\S+))?(?: (\d+))? (\d+)\r\n/y;
  let i = 0;
  while (i < text.length) {
    line.lastIndex = i;
    const m = line.exec(text);
    if (m === null) {
      i = text.indexOf('\n', i) + 1; // PONG, PING, +OK
      if (i === 0) break;
      continue;
    }
    const hmsg = m[1] === 'HMSG';
    // MSG <subject> <sid> [reply] <size>; HMSG <subject> <sid> [reply] <hdr> <size>.
    const reply = hmsg ? (m[5] === undefined ? '' : m[4]) : (m[4] ?? '');
    const hdr = hmsg ? Number(m[5] ?? m[4]) : 0;
    const size = Number(m[6]);
    const body = text.slice(line.lastIndex, line.lastIndex + size);
    out.push([m[3], reply, body.slice(0, hdr), body.slice(hdr)]);
    i = line.lastIndex + size + 2;
  }
  return out;
}

test('one read of many messages to one subject crosses workers whole: each keeps its payload, headers and reply, in order, and a max stops mid-stream', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl, workers: 2, args: ['-D'] });
  const session = { connect: { verbose: false, pedantic: false, headers: true } };
  const { c: sub, info: si } = await rawSession(srv.port, session);
  const { c: pub, info: pi } = await rawSession(srv.port, session);
  t.teardown(() => {
    sub.close();
    pub.close();
  });
  if (impl === 'skein') {
    const created = (cid: unknown) => srv.waitForLog(new RegExp(`cid:${String(cid)} - Client connection created on worker (\\d+)`));
    t.not((await created(si.client_id))[1], (await created(pi.client_id))[1], 'publisher and subscriber on different workers');
  }
  sub.send('SUB s.* 1\r\nSUB s.a 2\r\nUNSUB 2 3\r\n');
  await sub.ping();
  await pub.ping(); // (the subscriptions are seen on the publisher's worker after the PONG above)
  const hdr = 'NATS/1.0\r\nK: v\r\n\r\n';
  const sent: [string, string, string, string][] = [
    ['s.a', '', '', 'A0'],
    ['s.a', '', '', 'A01'],
    ['s.a', '', hdr, 'A2'],
    ['s.a', 'r.1', '', 'A3'],
    ['s.a', '', '', 'A4'],
    ['s.b', '', '', 'B0'],
    ['s.a', '', '', ''],
    ['s.a', 'r.2', hdr, 'A6'],
    ['s.a', '', '', 'x'.repeat(3000)],
    ['s.a', '', '', 'A8'],
  ];
  const wire = sent
    .map(([subject, reply, h, p]) => {
      const r = reply === '' ? '' : ` ${reply}`;
      return h === ''
        ? `PUB ${subject}${r} ${p.length}\r\n${p}\r\n`
        : `HPUB ${subject}${r} ${h.length} ${h.length + p.length}\r\n${h}${p}\r\n`;
    })
    .join('');
  // One write, twice over: the second read finds the first one's messages delivered.
  pub.send(wire + wire);
  await pub.ping();
  const got = frames(await sub.ping());
  const expected = [...sent, ...sent].map(([, reply, h, p]) => [reply, h, p]);
  t.deepEqual(
    got.filter((f) => f[0] === '1').map((f) => f.slice(1)),
    expected,
  );
  // sid 2 (s.a, max 3): the first three messages to s.a, then nothing.
  t.deepEqual(
    got.filter((f) => f[0] === '2').map((f) => f.slice(1)),
    expected.slice(0, 3),
  );
});

test('runs to two other workers interleaved in one read, broken by a PING, arrive whole and in order at each', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl, workers: 3, args: ['-D'] });
  const session = { connect: { verbose: false, pedantic: false } };
  const { c: subA, info: ai } = await rawSession(srv.port, session);
  const { c: subB, info: bi } = await rawSession(srv.port, session);
  const { c: pub, info: pi } = await rawSession(srv.port, session);
  t.teardown(() => [subA, subB, pub].forEach((c) => c.close()));
  if (impl === 'skein') {
    const workerOf = async (cid: unknown) =>
      (await srv.waitForLog(new RegExp(`cid:${String(cid)} - Client connection created on worker (\\d+)`)))[1];
    const workers = new Set([await workerOf(ai.client_id), await workerOf(bi.client_id), await workerOf(pi.client_id)]);
    t.is(workers.size, 3, 'each connection on a worker of its own');
  }
  subA.send('SUB r.a 1\r\n');
  subB.send('SUB r.b 1\r\n');
  await Promise.all([subA.ping(), subB.ping()]);
  await pub.ping();
  // Runs of frames to one worker, cut by frames to the other, by a PING (a barrier commits
  // mid-read) and by a payload too long for a run; a thousand of each subject in one write.
  const order = 'aaabbaPbbbaaLab';
  const want: Record<string, string[]> = { a: [], b: [] };
  let wire = '';
  let n = 0;
  let pings = 0;
  while (want.a.length < 1000) {
    for (const ch of order) {
      if (ch === 'P') {
        wire += 'PING\r\n';
        pings++;
        continue;
      }
      const subject = ch === 'L' ? 'a' : ch;
      const payload = ch === 'L' ? `L${n}-${'y'.repeat(2500)}` : `${ch}${n}`;
      n++;
      want[subject].push(payload);
      wire += `PUB r.${subject} ${payload.length}\r\n${payload}\r\n`;
    }
  }
  pub.send(wire);
  for (let i = 0; i < pings; i++) await pub.expect(/PONG\r\n/); // the PINGs inside the write
  await pub.ping(); // and after it: the subscribers' PONGs below follow every message
  for (const [c, subject] of [
    [subA, 'a'],
    [subB, 'b'],
  ] as const) {
    const got = frames(await c.ping()).map((f) => f[3]);
    t.is(got.length, want[subject].length, `r.${subject}: every message`);
    t.deepEqual(got, want[subject], `r.${subject}: each payload whole, in publish order`);
  }
});

test('subjects and queue names that are not UTF-8 keep their bytes across workers', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl, workers: 2 });
  // Consecutive connections alternate between the two workers: whichever worker each
  // subscriber landed on, one of the publishers is on the other one.
  const conns: RawClient[] = [];
  for (let i = 0; i < 6; i++) conns.push((await rawSession(srv.port)).c);
  t.teardown(() => conns.forEach((c) => c.close()));
  const [ff, fe, qff, qfe, p1, p2] = conns;
  ff.send('SUB \xff 1\r\n');
  fe.send('SUB \xfe 1\r\n');
  qff.send('SUB q \xff 1\r\n');
  qfe.send('SUB q \xfe 1\r\n');
  await Promise.all([ff, fe, qff, qfe].map((c) => c.ping()));
  for (const p of [p1, p2]) p.send('PUB \xff 1\r\nA\r\nPUB \xfe 1\r\nB\r\nPUB q 1\r\nQ\r\n');
  await Promise.all([p1, p2].map((c) => c.ping()));
  const twice = (s: string) => s + s;
  // The server's keep-alive PING may land anywhere in what a connection reads.
  const got = (c: RawClient) =>
    c
      .data()
      .replace(/^INFO .*\r\n/, '')
      .replace(/PING\r\n|PONG\r\n/g, '');
  const count = (c: RawClient, frame: string) => got(c).split(frame).length - 1;
  const want = new Map([
    [ff, 'MSG \xff 1 1\r\nA\r\n'],
    [fe, 'MSG \xfe 1 1\r\nB\r\n'],
    [qff, 'MSG q 1 1\r\nQ\r\n'],
    [qfe, 'MSG q 1 1\r\nQ\r\n'],
  ]);
  for (const [c, frame] of want)
    await waitFor(() => count(c, frame) >= 2, 15_000, `two of ${JSON.stringify(frame)} in ${JSON.stringify(got(c))}`);
  // A delivery barrier (a later message through every path) before checking for extras.
  for (const c of want.keys()) c.send('SUB end 2\r\n');
  await Promise.all([...want.keys()].map((c) => c.ping()));
  for (const p of [p1, p2]) p.send('PUB end 0\r\n\r\n');
  for (const [c, frame] of want) {
    await waitFor(() => count(c, 'MSG end 2 0\r\n\r\n') >= 2, 15_000, 'the barrier messages');
    t.is(got(c).replace(/MSG end 2 0\r\n\r\n/g, ''), twice(frame));
  }
});

test('payloads of every size from several publishers at once arrive byte for byte, on the same and on other workers', async (t) => {
  t.timeout(120_000);
  const srv = await useServer(t, { impl, workers: 2 });
  // Publishers and subscribers alternate between the two workers (see clients()).
  const ncs = await clients(srv.port, 6);
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
  const pubs = ncs.slice(0, 3);
  const subs = ncs.slice(3);
  const sizes = [16, 1000, 2047, 2048, 3000, 4096, 9000, 16_384, 40_000, 65_000, 70_000, 130_000];
  const perPub = 300;
  /** The payload publisher p sends as its n-th message: its size from the list, bytes from (p, n). */
  const payload = (p: number, n: number): Buffer => {
    const b = Buffer.allocUnsafe(sizes[(n * 7 + p) % sizes.length]);
    let x = (p * 7919 + n * 104_729) >>> 0;
    for (let i = 0; i < b.length; i++) {
      x = (x * 1_103_515_245 + 12_345) >>> 0;
      b[i] = x >>> 24;
    }
    b.writeUInt16BE(p, 0);
    b.writeUInt32BE(n, 2);
    return b;
  };
  const bad: string[] = [];
  const counts = subs.map(() => 0);
  subs.forEach((nc, s) =>
    nc.subscribe('sizes', {
      callback: (_e, m) => {
        counts[s]++;
        const got = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
        const p = got.readUInt16BE(0);
        const n = got.readUInt32BE(2);
        if (bad.length < 5 && (p >= pubs.length || !got.equals(payload(p, n)))) {
          bad.push(`sub ${s}: message ${n} of publisher ${p} (${got.length} bytes) differs`);
        }
      },
    }),
  );
  await Promise.all(subs.map((nc) => nc.flush()));
  await Promise.all(
    pubs.map(async (nc, p) => {
      for (let n = 0; n < perPub; n++) {
        nc.publish('sizes', payload(p, n));
        if (n % 20 === 19) await nc.flush();
      }
      await nc.flush();
    }),
  );
  const total = pubs.length * perPub;
  await waitFor(() => counts.every((c) => c >= total), 60_000, `every message to every subscriber (${counts.join(', ')} of ${total})`);
  t.deepEqual(bad, []);
  t.deepEqual(
    counts,
    subs.map(() => total),
  );
});
