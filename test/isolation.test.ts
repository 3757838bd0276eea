// One slow consumer never delays the others (issue 10 §5 and §5b). A subscriber that stops
// reading must not hold back a healthy subscriber on the same worker, and a route peer that
// stops reading must not hold back the healthy peers; the publisher feeding the slow one is
// still slowed down (nats-server's fast-producer stall) and order per publisher is kept.

import test, { type ExecutionContext } from 'ava';
import { useServer, testImpl, type ServerHandle } from './helpers/server.ts';
import { rawConnect, rawSession, routeHandshake, type RawClient } from './helpers/raw.ts';
import { get, monitorPort } from './helpers/monitor.ts';

const impl = testImpl();
const quiet = { connect: { verbose: false, pedantic: false } };

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The worker skein put a connection on (-D log); 0 for nats-server. */
async function workerOf(srv: ServerHandle, cid: number): Promise<number> {
  if (impl !== 'skein') return 0;
  const m = await srv.waitForLog(new RegExp(`cid:${cid} - Client connection created on worker (\\d+)`), 5000);
  return Number(m[1]);
}

/**
 * Raw sessions with the given placement: `same[i]` true for a connection on the first
 * connection's worker, false for one on the other worker (skein --workers 2). `home` is the
 * first connection's worker.
 */
async function placeOn(t: ExecutionContext, srv: ServerHandle, same: boolean[]): Promise<{ clients: RawClient[]; home: number }> {
  const out: RawClient[] = [];
  let home = -1;
  for (let i = 0; i < same.length; i++) {
    for (let attempt = 0; ; attempt++) {
      const { c, info } = await rawSession(srv.port, quiet);
      t.teardown(() => c.close());
      const w = await workerOf(srv, info.client_id as number);
      if (i === 0) home = w;
      if (impl !== 'skein' || (w === home) === same[i]) {
        out.push(c);
        break;
      }
      if (attempt === 6) throw new Error('cannot place connections as needed');
    }
  }
  return { clients: out, home };
}

async function place(t: ExecutionContext, srv: ServerHandle, same: boolean[]): Promise<RawClient[]> {
  return (await placeOn(t, srv, same)).clients;
}

test('a subscriber that stops reading does not hold back a healthy subscriber on its worker; its publisher is stalled', async (t) => {
  t.timeout(120_000);
  // max_pending 16 MB: the slow subscriber stalls its publisher past 8 MB of backlog and would
  // be cut off past 16 MB; write_deadline long enough that it is not cut off for that reason.
  const config = 'max_pending: 16MB\nwrite_deadline: "120s"\n';
  const srv = await useServer(t, {
    impl,
    workers: 2,
    args: impl === 'skein' ? ['-D'] : [],
    config: { skein: config, natsServer: 'max_pending: 16MB\nwrite_deadline: "120s"\n' },
  });
  // slow and healthy on one worker, both publishers on the other.
  const [slow, healthy, flooder, pub] = await place(t, srv, [true, true, false, false]);
  slow.send('SUB slow 1\r\n');
  await slow.ping();
  healthy.send('SUB healthy 1\r\n');
  await healthy.ping();
  slow.socket.pause(); // never reads again

  // The flooder publishes numbered 64 KiB messages to the slow subscriber as fast as it is let.
  const size = 65536;
  const frame = `PUB slow ${size}\r\n`;
  const frameLen = frame.length + size + 2;
  const chunk = Buffer.alloc(16 * frameLen, 's');
  for (let k = 0; k < 16; k++) {
    chunk.write(frame, k * frameLen, 'latin1');
    chunk.write('\r\n', k * frameLen + frame.length + size, 'latin1');
  }
  let published = 0;
  let flooding = true;
  const flood = (async () => {
    while (flooding && !flooder.isClosed() && published < 4096) {
      const buf = Buffer.from(chunk);
      for (let k = 0; k < 16; k++) buf.write(String(published++).padStart(8, '0'), k * frameLen + frame.length, 'latin1');
      if (!flooder.socket.write(buf)) await new Promise((r) => flooder.socket.once('drain', r));
    }
  })();
  const floodBytes = 4096 * frameLen;
  t.teardown(() => {
    flooding = false;
  });
  // The server stops taking the flood once the slow subscriber is backed up (the stall): the
  // flooder's bytes stop moving into the kernel.
  let last = -1;
  let still = 0;
  await waitFor(
    () => {
      const now = flooder.socket.bytesWritten;
      still = now === last && flooder.socket.writableLength > 0 ? still + 1 : 0;
      last = now;
      return still >= 25;
    },
    60_000,
    'the flooder to be held back',
  ).catch((err: Error) => {
    throw new Error(
      `${err.message}: flooder wrote ${flooder.socket.bytesWritten} bytes, slow subscriber ${slow.isClosed() ? 'closed' : 'open'}\n${srv
        .output()
        .split('\n')
        .filter((l) => /Slow|created/.test(l))
        .join('\n')}`,
    );
  });
  t.true(flooder.socket.bytesWritten < floodBytes / 2, 'the flooding publisher is slowed down');

  // Meanwhile the healthy subscriber gets everything another publisher on the flooder's
  // worker sends, in order, while the slow one is still connected and still backed up.
  const n = 200;
  let frames = '';
  for (let i = 0; i < n; i++) frames += `PUB healthy ${String(i).length}\r\n${i}\r\n`;
  pub.send(frames);
  await pub.ping();
  const expected = Array.from({ length: n }, (_v, i) => `MSG healthy 1 ${String(i).length}\r\n${i}\r\n`).join('');
  await waitFor(() => healthy.data().includes(expected), 30_000, 'the healthy subscriber to get every message');
  t.false(slow.isClosed(), 'the slow subscriber is still connected (not cut off to unblock the others)');
  t.true(flooder.socket.bytesWritten < floodBytes / 2, 'the flooding publisher is still held back');

  // The slow subscriber reads again: it gets every message of the flood, in order, before
  // the PONG of a PING sent after the flooder's own PONG (a flush barrier, as always).
  flooding = false;
  slow.socket.resume();
  await flood;
  await flooder.ping(60_000);
  const text = await slow.ping(60_000);
  const seqs: number[] = [];
  const re = /MSG slow 1 65536\r\n(\d{8})/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) seqs.push(Number(m[1]));
  t.is(seqs.length, published, 'every message the flooder published reached the slow subscriber');
  t.true(
    seqs.every((v, i) => v === i),
    'in publish order',
  );
});

/** skein's per-thread series from /metrics: name -> thread -> value. */
async function threadSeries(httpPort: number): Promise<Map<string, Map<number, number>>> {
  const a = await get(httpPort, '/metrics');
  const out = new Map<string, Map<number, number>>();
  for (const m of a.body.matchAll(/^(skein_worker_\w+)\{[^}]*thread="(\d+)"[^}]*\} (\S+)$/gm)) {
    let byThread = out.get(m[1]);
    if (byThread === undefined) out.set(m[1], (byThread = new Map()));
    byThread.set(Number(m[2]), Number(m[3]));
  }
  return out;
}

test("a flood for one subscriber never fills the inbox of a worker that falls behind: other publishers' messages queue behind little of it", async (t) => {
  t.timeout(120_000);
  if (impl !== 'skein') {
    t.pass('skein only: makes a worker fall behind with a fault-injection hook and reads its inbox counters');
    return;
  }
  // $SKEIN.FAULT.BUSY stops the subscribers' worker for a second (as a loaded host may not run a
  // thread for that long) while a publisher on the other worker floods one of them. The flood
  // must wait in its own socket: at most a little of it may go into the stopped worker's inbox,
  // never enough to fill it (ring_full counts records that had to wait for room there), so
  // another publisher's messages are not queued behind megabytes of it.
  const srv = await useServer(t, { impl, workers: 2, args: ['-D', '-m', '-1'], env: { SKEIN_FAULT_INJECTION: '1' } });
  const httpPort = await monitorPort(srv);
  const { clients, home } = await placeOn(t, srv, [true, true, true, false, false]);
  const [sub, healthy, stopper, flooder, pub] = clients;
  sub.send('SUB flood 1\r\n');
  await sub.ping();
  healthy.send('SUB healthy 1\r\n');
  await healthy.ping();

  // The flood's subscriber checks its numbered 1 KiB messages as they arrive and drops them.
  const size = 1024;
  const frameIn = `MSG flood 1 ${size}\r\n`.length + size + 2;
  sub.socket.removeAllListeners('data');
  let carry = Buffer.alloc(0);
  let received = 0;
  let outOfOrder = 0;
  sub.socket.on('data', (d: Buffer) => {
    const b = carry.length > 0 ? Buffer.concat([carry, d]) : d;
    let o = 0;
    for (;;) {
      if (o + 6 <= b.length && b.toString('latin1', o, o + 6) === 'PING\r\n') {
        o += 6; // the server's keep-alive
        sub.send('PONG\r\n');
        continue;
      }
      if (o + frameIn > b.length) break;
      const want = `MSG flood 1 ${size}\r\n${String(received).padStart(8, '0')}`;
      if (b.toString('latin1', o, o + want.length) !== want) outOfOrder++;
      received++;
      o += frameIn;
    }
    carry = Buffer.from(b.subarray(o));
  });

  const frame = `PUB flood ${size}\r\n`;
  const frameLen = frame.length + size + 2;
  let published = 0;
  let flooding = true;
  t.teardown(() => {
    flooding = false;
  });
  const flood = (async () => {
    while (flooding && !flooder.isClosed()) {
      const buf = Buffer.alloc(64 * frameLen, 'f');
      for (let k = 0; k < 64; k++) {
        buf.write(frame, k * frameLen, 'latin1');
        buf.write(String(published++).padStart(8, '0'), k * frameLen + frame.length, 'latin1');
        buf.write('\r\n', k * frameLen + frame.length + size, 'latin1');
      }
      if (!flooder.socket.write(buf)) await new Promise((r) => flooder.socket.once('drain', r));
    }
  })();
  await waitFor(() => received > 4096, 30_000, 'the flood to flow');
  const floodWorker = 1 - home;
  const before = await threadSeries(httpPort);
  const ringFullBefore = before.get('skein_worker_ring_full_total')?.get(floodWorker);
  t.is(typeof ringFullBefore, 'number', "the flooder's worker reports ring_full");

  // Stop the subscribers' worker; meanwhile another publisher sends to the healthy subscriber.
  stopper.send('PUB $SKEIN.FAULT.BUSY 0\r\n\r\n');
  const receivedAtStop = received;
  const n = 100;
  let frames = '';
  for (let i = 0; i < n; i++) frames += `PUB healthy ${String(i).length}\r\n${i}\r\n`;
  pub.send(frames);
  await pub.ping();
  const expected = Array.from({ length: n }, (_v, i) => `MSG healthy 1 ${String(i).length}\r\n${i}\r\n`).join('');
  await waitFor(() => healthy.data().includes(expected), 30_000, 'the healthy subscriber to get every message');
  const after = await threadSeries(httpPort);
  t.true(received > receivedAtStop, 'the flood went on after the stop');
  t.is(
    after.get('skein_worker_ring_full_total')?.get(floodWorker),
    ringFullBefore,
    "no record had to wait for room in the stopped worker's inbox: the flood never filled it",
  );

  // The flood's subscriber gets every message, in order, none twice.
  flooding = false;
  await flood;
  await flooder.ping(60_000);
  await waitFor(() => received >= published || sub.isClosed(), 60_000, 'the subscriber to get the whole flood');
  t.is(received, published, 'every message the flooder published arrived');
  t.is(outOfOrder, 0, 'in publish order');
});

// ------------------------------------------------------------------------------------------
// Routes: raw sockets posing as two route peers, one of which stops reading.

test('a route peer that stops reading does not hold back traffic to a healthy peer; its publishers are stalled', async (t) => {
  t.timeout(120_000);
  if (impl !== 'skein') {
    t.pass('skein only: needs a cluster port with raw route peers');
    return;
  }
  // Pings and write deadline out of the way: the dead peer must stay connected throughout.
  const config = 'max_pending: 16MB\nwrite_deadline: "120s"\nping_interval: "120s"\n';
  const srv = await useServer(t, { impl, workers: 2, config, args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'iso'] });
  const clusterPort = srv.clusterPort;
  const peer = async (id: string, subject: string): Promise<RawClient> => {
    const r = await rawConnect(clusterPort);
    t.teardown(() => r.close());
    await r.expect(/^INFO \{.*\} \r\n/);
    r.send(`${routeHandshake(id, id.toLowerCase(), 'iso')}RS+ $G ${subject}\r\n`);
    return r;
  };
  const dead = await peer('NDEADPEER00000000000000000000000000000000000000000000001', 'dead');
  const live = await peer('NLIVEPEER00000000000000000000000000000000000000000000002', 'live');
  await srv.waitForLog(/Registering remote route "NLIVEPEER/, 10_000).catch(() => undefined);

  // Two publishers, on the same worker or not: the flooder feeds the dead peer only.
  const { c: flooder } = await rawSession(srv.port, quiet);
  const { c: pub } = await rawSession(srv.port, quiet);
  t.teardown(() => {
    flooder.close();
    pub.close();
  });
  // Interest has crossed: a message for each peer arrives before the dead one stops reading.
  const deadline = Date.now() + 20_000;
  while (!dead.data().includes('RMSG $G dead 1\r\nx\r\n') || !live.data().includes('RMSG $G live 1\r\nx\r\n')) {
    if (Date.now() > deadline) throw new Error('interest did not reach the routes');
    flooder.send('PUB dead 1\r\nx\r\n');
    pub.send('PUB live 1\r\nx\r\n');
    await new Promise((r) => setTimeout(r, 50));
  }
  dead.socket.pause(); // never reads again

  const big = Buffer.from(`PUB dead 65536\r\n${'d'.repeat(65536)}\r\n`, 'latin1');
  const chunk = Buffer.concat(Array(16).fill(big));
  const floodBytes = 256 * 1024 * 1024;
  let flooding = true;
  t.teardown(() => {
    flooding = false;
  });
  void (async () => {
    for (let sent = 0; sent < floodBytes && flooding && !flooder.isClosed(); sent += chunk.length) {
      if (!flooder.socket.write(chunk)) await new Promise((r) => flooder.socket.once('drain', r));
    }
  })();
  let last = -1;
  let still = 0;
  await waitFor(
    () => {
      const now = flooder.socket.bytesWritten;
      still = now === last && flooder.socket.writableLength > 0 ? still + 1 : 0;
      last = now;
      return still >= 25;
    },
    60_000,
    'the flooder to be held back',
  );

  // The healthy peer gets everything the other publisher sends, while the dead one is still
  // connected and backed up.
  const n = 200;
  let frames = '';
  for (let i = 0; i < n; i++) frames += `PUB live ${String(i).length}\r\n${i}\r\n`;
  const before = live.data().length;
  pub.send(frames);
  await pub.ping();
  const expected = Array.from({ length: n }, (_v, i) => `RMSG $G live ${String(i).length}\r\n${i}\r\n`).join('');
  await waitFor(
    () =>
      live
        .data()
        .slice(before)
        .replace(/PING\r\n/g, '')
        .includes(expected),
    30_000,
    'the healthy peer to get every message',
  );
  t.false(dead.isClosed(), 'the dead peer is still connected (not closed to unblock the others)');
  t.true(flooder.socket.bytesWritten < floodBytes / 2, 'the publisher feeding the dead peer is held back');
  flooding = false;
});
