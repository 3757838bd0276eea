// Lengths of any legal size (issue 10 §2): more than 255 queue groups matching one message
// on one worker, 1,100 groups with 4 KB names, subjects longer than 65,535 bytes (legal with a
// larger max_control_line). nats-server delivers all of them; so must skein, on one worker,
// across workers (publisher and subscriber on different workers) and across a route (RMSG
// with hundreds of queue names, both ways, with nats-server as the peer). Every frame the
// subscriber gets is parsed strictly: a stray byte fails the test.

import test, { type ExecutionContext } from 'ava';
import { useServer, testImpl, type ServerHandle } from './helpers/server.ts';
import { rawSession, type RawClient } from './helpers/raw.ts';
import { TestCluster } from './helpers/cluster.ts';

const impl = testImpl();

interface Frames {
  /** sid -> count of MSGs for the expected subject and payload. */
  sids: Map<string, number>;
  /** Why the stream is not well formed, or null. */
  bad: string | null;
  /** Consumed up to here (a frame may be incomplete). */
  end: number;
}

/** Parse MSG frames (and PING/PONG) strictly; every MSG must be for `subject` with `payload`. */
function parseFrames(text: string, subject: string, payload: string): Frames {
  const sids = new Map<string, number>();
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('PING\r\n', i) || text.startsWith('PONG\r\n', i)) {
      i += 6;
      continue;
    }
    if (!text.startsWith('MSG ', i)) {
      if ('MSG '.startsWith(text.slice(i)) || 'PING\r\n'.startsWith(text.slice(i)) || 'PONG\r\n'.startsWith(text.slice(i))) break;
      return { sids, bad: `unexpected bytes at ${i}: ${JSON.stringify(text.slice(i, i + 60))}`, end: i };
    }
    const nl = text.indexOf('\r\n', i);
    if (nl < 0) break;
    const args = text.slice(i + 4, nl).split(' ');
    if (args.length !== 3) return { sids, bad: `bad MSG line: ${JSON.stringify(text.slice(i, Math.min(nl, i + 100)))}`, end: i };
    const [subj, sid, sizeText] = args;
    const size = Number(sizeText);
    if (nl + 2 + size + 2 > text.length) break;
    if (subj !== subject)
      return { sids, bad: `subject of ${subj.length} bytes, expected ${subject.length}: ${JSON.stringify(subj.slice(0, 40))}`, end: i };
    const body = text.slice(nl + 2, nl + 2 + size);
    if (body !== payload || text.slice(nl + 2 + size, nl + 4 + size) !== '\r\n') return { sids, bad: `bad payload for sid ${sid}`, end: i };
    sids.set(sid, (sids.get(sid) ?? 0) + 1);
    i = nl + 4 + size;
  }
  return { sids, bad: null, end: i };
}

/**
 * Wait until `c` has received one MSG per sid since byte `from` of its input (or a bad frame),
 * then check, after a PING, that nothing else came. `ignore` is removed from the input first.
 */
async function expectDeliveries(
  t: ExecutionContext,
  c: RawClient,
  from: number,
  subject: string,
  payload: string,
  sids: string[],
  what: string,
  ignore?: RegExp,
): Promise<void> {
  const input = (): string => (ignore === undefined ? c.data().slice(from) : c.data().slice(from).replace(ignore, ''));
  const deadline = Date.now() + 30_000;
  let f = parseFrames(input(), subject, payload);
  while (f.bad === null && [...f.sids.values()].reduce((a, b) => a + b, 0) < sids.length && Date.now() < deadline && !c.isClosed()) {
    await new Promise((r) => setTimeout(r, 20));
    f = parseFrames(input(), subject, payload);
  }
  await c.ping(10_000).catch(() => undefined);
  f = parseFrames(input(), subject, payload);
  t.is(f.bad, null, what);
  t.false(c.isClosed(), `${what}: subscriber still connected`);
  const wrong = sids.filter((s) => f.sids.get(s) !== 1);
  t.deepEqual(wrong.slice(0, 5), [], `${what}: every sid exactly once (${wrong.length} wrong, ${f.sids.size} seen)`);
  t.is(f.sids.size, sids.length, what);
}

/** The worker a connection landed on (skein -D), or -1 for nats-server. */
async function workerOf(srv: ServerHandle, cid: number): Promise<number> {
  if (impl !== 'skein') return -1;
  const m = await srv.waitForLog(new RegExp(`cid:${cid} - Client connection created on worker (\\d+)`), 5000);
  return Number(m[1]);
}

const quiet = { connect: { verbose: false, pedantic: false } };

/**
 * S, and a publisher P on another worker (skein --workers 2; nats-server: any). S subscribes
 * with `subs` (SUB lines), then P and S itself each publish `payload` to `subject`.
 */
async function deliverBothWays(
  t: ExecutionContext,
  srv: ServerHandle,
  subject: string,
  subs: string[],
  sids: string[],
  what: string,
): Promise<void> {
  const { c: s, info } = await rawSession(srv.port, quiet);
  t.teardown(() => s.close());
  let p: RawClient | null = null;
  for (let attempt = 0; attempt < 4 && p === null; attempt++) {
    const opened = await rawSession(srv.port, quiet);
    t.teardown(() => opened.c.close());
    if (impl !== 'skein' || (await workerOf(srv, opened.info.client_id as number)) !== (await workerOf(srv, info.client_id as number)))
      p = opened.c;
  }
  if (p === null) throw new Error('no publisher on another worker');
  // Big SUB batches are written in pieces; PING after them: every subscription is in place.
  for (let k = 0; k < subs.length; k += 200) s.send(subs.slice(k, k + 200).join(''));
  await s.ping(30_000);
  let from = s.data().length;
  p.send(`PUB ${subject} 2\r\nhi\r\n`);
  await p.ping(30_000);
  await expectDeliveries(t, s, from, subject, 'hi', sids, `${what}, from another worker`);
  from = s.data().length;
  s.send(`PUB ${subject} 2\r\nhi\r\n`);
  await expectDeliveries(t, s, from, subject, 'hi', sids, `${what}, from the same worker`);
}

test('more than 255 queue groups matching one message on one worker each get it once, from any worker', async (t) => {
  t.timeout(120_000);
  const srv = await useServer(t, { impl, workers: 2, args: impl === 'skein' ? ['-D'] : [] });
  const n = 300;
  const subs = Array.from({ length: n }, (_v, i) => `SUB qg.x g${i} ${i}\r\n`);
  await deliverBothWays(
    t,
    srv,
    'qg.x',
    subs,
    subs.map((_v, i) => String(i)),
    `${n} queue groups`,
  );
});

test('1,100 queue groups with 4 KB names (a record far larger than an inbox block) are all delivered', async (t) => {
  t.timeout(180_000);
  const config = 'max_control_line: 8192\n';
  const srv = await useServer(t, { impl, workers: 2, args: impl === 'skein' ? ['-D'] : [], config: { skein: config, natsServer: config } });
  const n = 1100;
  const name = (i: number): string => `${i}-`.padEnd(4096, 'q');
  const subs = Array.from({ length: n }, (_v, i) => `SUB big.q ${name(i)} ${i}\r\n`);
  await deliverBothWays(
    t,
    srv,
    'big.q',
    subs,
    subs.map((_v, i) => String(i)),
    `${n} groups of 4 KB names`,
  );
});

test('a subject longer than 65,535 bytes (max_control_line 256 KB) is subscribed and delivered whole', async (t) => {
  t.timeout(120_000);
  const config = 'max_control_line: 262144\n';
  const srv = await useServer(t, { impl, workers: 2, args: impl === 'skein' ? ['-D'] : [], config: { skein: config, natsServer: config } });
  const subject = Array.from({ length: 7000 }, (_v, i) => `t${String(i).padStart(8, '0')}`).join('.'); // 69,999 bytes
  t.true(subject.length > 65535);
  const queued = `SUB ${subject} grp 2\r\n`;
  await deliverBothWays(t, srv, subject, [`SUB ${subject} 1\r\n`, queued], ['1', '2'], 'a 70 KB subject');
});

test('across a route, both ways with nats-server: 300 queue groups in one RMSG and a 70 KB subject', async (t) => {
  t.timeout(180_000);
  const config = 'max_control_line: 262144';
  const cl = await TestCluster.start(
    t,
    [
      { impl: 'skein', name: 'a' },
      { impl: 'nats-server', name: 'b' },
    ],
    { workers: 2, config },
  );
  const long = Array.from({ length: 7000 }, (_v, i) => `t${String(i).padStart(8, '0')}`).join('.');
  for (const [subNode, pubNode] of [
    [0, 1],
    [1, 0],
  ]) {
    // Each direction on its own subjects: the first direction's subscriber stays connected.
    const q = `rq${subNode}.x`;
    const big = `${long}${subNode}`;
    const { c: s } = await rawSession(cl.nodes[subNode].port, quiet);
    const { c: p } = await rawSession(cl.nodes[pubNode].port, quiet);
    t.teardown(() => {
      s.close();
      p.close();
    });
    const n = 300;
    const subs = Array.from({ length: n }, (_v, i) => `SUB ${q} g${i} ${i}\r\n`);
    s.send(subs.join(''));
    s.send(`SUB ${big} ${n}\r\nSUB ${big} lq ${n + 1}\r\nSUB probe ${n + 2}\r\n`);
    await s.ping(30_000);
    // The probe subscription was made last: once a probe gets through, the rest is known.
    const deadline = Date.now() + 20_000;
    while (!s.data().includes(`MSG probe ${n + 2} 0\r\n`)) {
      if (Date.now() > deadline) throw new Error('interest did not cross the route');
      p.send('PUB probe 0\r\n\r\n');
      await p.ping();
      await new Promise((r) => setTimeout(r, 50));
    }
    const from = `${cl.nodes[pubNode].spec.impl} -> ${cl.nodes[subNode].spec.impl}`;
    const probes = new RegExp(`MSG probe ${n + 2} 0\r\n\r\n`, 'g');
    let at = s.data().length;
    p.send(`PUB ${q} 2\r\nhi\r\n`);
    await p.ping();
    await expectDeliveries(
      t,
      s,
      at,
      q,
      'hi',
      subs.map((_v, i) => String(i)),
      `${n} queue groups, ${from}`,
      probes,
    );
    at = s.data().length;
    p.send(`PUB ${big} 2\r\nhi\r\n`);
    await p.ping();
    await expectDeliveries(t, s, at, big, 'hi', [String(n), String(n + 1)], `a 70 KB subject, ${from}`, probes);
  }
});
