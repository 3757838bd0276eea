// The monitoring port under bad input: garbage query strings and request lines, huge headers,
// slow and half-open HTTP clients and a burst of concurrent requests, all while a message stream
// runs; the stream must arrive complete and in order and the server must keep answering. And
// the port binds only where it is configured.

import test from 'ava';
import net from 'node:net';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'nats';
import { useServer, repoRoot } from './helpers/server.ts';
import { get, getJson, monitorPort } from './helpers/monitor.ts';
import { waitFor } from './helpers/cluster.ts';

/** Write `request` on a fresh socket; resolve with everything read until the server closes (or the deadline). */
function rawHttp(port: number, request: Buffer | string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, timeoutMs);
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d) => {
      got += d.toString('latin1');
    });
    sock.on('error', () => undefined);
    sock.on('close', done);
  });
}

const ENDPOINTS = [
  '/',
  '/varz',
  '/connz',
  '/routez',
  '/gatewayz',
  '/leafz',
  '/subsz',
  '/accountz',
  '/healthz',
  '/metrics',
  '/skeinz',
  '/live',
];
const GARBAGE = '%&=;+?#/\\"\'<>{}|^`~!$*()[], abcXYZ019\u00e9\u2603\u0000\u007f';

function garbageQuery(): string {
  const n = 1 + (randomBytes(1)[0] % 60);
  let s = '';
  for (const b of randomBytes(n)) s += GARBAGE[b % GARBAGE.length];
  return s;
}

test('garbage queries, huge headers, slow, half-open and concurrent HTTP clients leave the server and its traffic unharmed', async (t) => {
  t.timeout(120_000);
  const srv = await useServer(t, { impl: 'skein', workers: 2, args: ['-m', '-1'], readiness: 'log' });
  const mon = await monitorPort(srv);

  // The message stream: one publisher, one subscriber, every message in order.
  const pub = await connect({ servers: `127.0.0.1:${srv.port}` });
  const sub = await connect({ servers: `127.0.0.1:${srv.port}` });
  t.teardown(() => Promise.all([pub.close(), sub.close()]));
  const total = 20_000;
  let next = 0;
  let outOfOrder = 0;
  sub.subscribe('stream', {
    callback: (_e, m) => {
      if (Number(m.string()) !== next++) outOfOrder++;
    },
  });
  await sub.flush();
  const streaming = (async () => {
    for (let i = 0; i < total; i++) {
      pub.publish('stream', String(i));
      if (i % 500 === 499) await pub.flush();
    }
    await pub.flush();
  })();

  // Half-open: connections that never send a byte (the server times them out).
  const idle = Array.from({ length: 40 }, () => rawHttp(mon, Buffer.alloc(0)));
  // Slow: a request whose headers never end.
  const slow = rawHttp(mon, 'GET /varz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n');
  // Huge headers.
  const huge = await rawHttp(mon, `GET /varz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(256 * 1024)}\r\n\r\n`);
  t.regex(huge, /^HTTP\/1\.1 431 /, 'huge headers: 431');
  // Garbage in the query string (and in the request line itself).
  const answers = await Promise.all(
    Array.from({ length: 200 }, (_v, i) => {
      const target = `${ENDPOINTS[i % ENDPOINTS.length]}?${garbageQuery()}`;
      return rawHttp(mon, Buffer.from(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 'utf8'));
    }),
  );
  for (const a of answers) t.regex(a, /^HTTP\/1\.1 (200|400|404) /, `answered: ${JSON.stringify(a.slice(0, 80))}`);
  // Not HTTP at all.
  t.regex(await rawHttp(mon, randomBytes(2048)), /^(HTTP\/1\.1 400 |)/);
  // A burst of concurrent requests, each asking the workers for every connection's subscriptions.
  const burst = await Promise.all(Array.from({ length: 150 }, () => get(mon, '/connz?subs=1')));
  t.true(
    burst.every((r) => r.status === 200 && (JSON.parse(r.body) as { total: number }).total === 2),
    'every concurrent /connz answered',
  );
  // A body nobody reads.
  const posted = await fetch(`http://127.0.0.1:${mon}/varz`, { method: 'POST', body: Buffer.alloc(4 * 1024 * 1024) });
  t.is(posted.status, 200);
  await posted.text();

  const slowAnswer = await slow;
  t.regex(slowAnswer, /^(HTTP\/1\.1 408 |)/, 'the slow client was timed out');
  const idleAnswers = await Promise.all(idle);
  t.true(
    idleAnswers.every((a) => a === '' || a.startsWith('HTTP/1.1 408 ')),
    'half-open clients were timed out',
  );

  await streaming;
  await waitFor(() => next === total, 30_000, `all ${total} messages (have ${next})`);
  t.is(outOfOrder, 0, 'the stream arrived in order');
  t.is((await get(mon, '/healthz')).body, '{"status":"ok"}');
  const v = await getJson(mon, '/varz');
  t.is(v.in_msgs, total);
  t.false(srv.exited());
});

test('the monitoring port binds only where configured; https_port is refused by name; http_base_path moves every endpoint', async (t) => {
  t.timeout(60_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-mon-'));
  // `http: host:port` on loopback only.
  const loopOnly = await useServer(t, {
    impl: 'skein',
    workers: 1,
    config: 'http: "127.0.0.1:-1"\nhttp_base_path: mon\n',
    args: ['-a', '0.0.0.0'],
    readiness: 'log',
  });
  const mon = await monitorPort(loopOnly);
  t.regex(loopOnly.output(), /Starting http monitor on 127\.0\.0\.1:\d+/);
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a !== undefined && !a.internal && a.family === 'IPv4');
  if (external !== undefined) {
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: external.address, port: mon });
      s.on('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.on('error', () => resolve(true));
    });
    t.true(refused, `not reachable on ${external.address}`);
  } else {
    t.log('no non-loopback IPv4 interface on this host: only the log line is checked');
  }
  // The base path: every endpoint under /mon, nothing at the root.
  t.is((await get(mon, '/mon/varz')).status, 200);
  t.is((await get(mon, '/mon/healthz')).body, '{"status":"ok"}');
  t.is((await get(mon, '/varz')).status, 404);
  t.is((await get(mon, '/')).status, 404);
  const index = await get(mon, '/mon');
  t.is(index.status, 200);
  t.regex(index.body, /href="\.\/mon\/varz"/);
  t.is(((await getJson(mon, '/mon/varz')) as { http_base_path: string }).http_base_path, 'mon');

  // No http_port: no monitoring listener at all.
  const none = await useServer(t, { impl: 'skein', workers: 1, readiness: 'log' });
  t.notRegex(none.output(), /http monitor/);

  // https_port is a nats-server key skein does not have (no TLS): refused, named.
  const file = path.join(dir, 'https.yaml');
  writeFileSync(file, 'https_port: 8443\n');
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'src', 'main.ts'), '-c', file, '-p', '-1'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  t.not(r.status, 0);
  t.regex(r.stderr, /https_port/);
});

test('polling as fast as possible gets documents at most 250 ms old, built at most four times a second', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl: 'skein', workers: 2, args: ['-m', '-1'], readiness: 'log' });
  const mon = await monitorPort(srv);
  const nc = await connect({ servers: `127.0.0.1:${srv.port}` });
  t.teardown(() => nc.close());
  const nows = new Set<string>();
  let requests = 0;
  const started = Date.now();
  while (requests < 40) {
    const c = await getJson(mon, '/connz?subs=1');
    requests++;
    nows.add(c.now as string);
  }
  const elapsed = Date.now() - started;
  t.true(nows.size <= Math.ceil(elapsed / 250) + 1, `${nows.size} distinct documents in ${elapsed} ms`);
  for (const n of nows) t.true(Date.now() - Date.parse(n) < 60_000);
  // /varz is read from shared memory on every request: always current.
  const a = await getJson(mon, '/varz');
  const b = await getJson(mon, '/varz');
  t.not(a.now, b.now);
});

// QA: 300 half-open requests (headers never ended) used to fill skein's connection cap, and
// /healthz was refused until they timed out. nats-server (no cap) answers at once; skein
// keeps a cap for bounded memory but evicts the oldest connection that has no request in
// progress to make room.
for (const impl of ['skein', 'nats-server'] as const) {
  test.serial(`${impl}: /healthz answers while 300 half-open HTTP requests hold connections`, async (t) => {
    t.timeout(120_000);
    const srv = await useServer(t, { impl, workers: impl === 'skein' ? 2 : undefined, args: ['-m', '-1'], readiness: 'log' });
    const mon = await monitorPort(srv);
    const sockets = await Promise.all(
      Array.from(
        { length: 300 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port: mon });
            s.on('error', () => undefined);
            s.on('connect', () => s.write('GET /varz HTTP/1.1\r\nHost: x\r\n', () => resolve(s)));
            s.on('close', () => resolve(s));
          }),
      ),
    );
    t.teardown(() => {
      for (const s of sockets) s.destroy();
    });
    const health = await get(mon, '/healthz').catch((e: Error) => ({ status: 0, body: `${e.message}: ${String(e.cause)}` }));
    t.is(health.status, 200, health.body);
    t.is(health.body, '{"status":"ok"}');
  });
}
