// The Go text formats the monitoring endpoints inherit (durations, uptimes, RFC 3339 times,
// query parsing and strconv's errors), the bounded ring of closed connections, and /healthz
// while a server is not ready: unit tests on the pure pieces of src/monitor/.

import test from 'ava';
import {
  decodeBool,
  decodeInt,
  decodeUint64,
  goDurationNs,
  goQuote,
  marshalIndent,
  parseQuery,
  rfc3339,
  rttString,
  uptimeString,
} from '../src/monitor/gofmt.ts';
import { ClosedConnections } from '../src/monitor/collect.ts';
import { healthz, type MonitorSource } from '../src/monitor/endpoints.ts';
import type { Broker } from '../src/broker/broker.ts';
import type { ClientConn } from '../src/conn/client.ts';

test("durations print as Go's time.Duration.String()", (t) => {
  const cases: [number, string][] = [
    [0, '0s'],
    [999, '999ns'],
    [1500, '1.5µs'],
    [304_000, '304µs'],
    [2_371_397, '2.371397ms'],
    [1e6, '1ms'],
    [1.5e9, '1.5s'],
    [90e9, '1m30s'],
    [3725e9, '1h2m5s'],
    [7200e9, '2h0m0s'],
    [-1500, '-1.5µs'],
  ];
  for (const [ns, s] of cases) t.is(goDurationNs(ns), s, `${ns}ns`);
});

test('rtt is truncated to microseconds between 1µs and 1ms, as client.go getRTT', (t) => {
  t.is(rttString(0.8187), '818µs');
  t.is(rttString(2.371397), '2.371397ms');
  t.is(rttString(0.0005), '500ns');
  t.is(rttString(0), '0s');
});

test('uptime and idle print as monitor.go myUptime', (t) => {
  t.is(uptimeString(0), '0s');
  t.is(uptimeString(999), '0s');
  t.is(uptimeString(61_000), '1m1s');
  t.is(uptimeString(3_600_000), '1h0m0s');
  t.is(uptimeString(90_061_000), '1d1h1m1s');
  t.is(uptimeString(400 * 86_400_000), '1y35d0h0m0s');
});

test('times print as Go marshals a UTC time.Time (RFC 3339, nanoseconds, zeros trimmed)', (t) => {
  const base = Date.UTC(2026, 0, 2, 3, 4, 5);
  t.is(rfc3339(base), '2026-01-02T03:04:05Z');
  t.is(rfc3339(base + 6.789), '2026-01-02T03:04:05.006789Z');
  t.is(rfc3339(base + 120), '2026-01-02T03:04:05.12Z');
});

test("JSON is MarshalIndent's, with Go's HTML-safe escapes", (t) => {
  t.is(marshalIndent({ a: '<b>&', n: [1] }), '{\n  "a": "\\u003cb\\u003e\\u0026",\n  "n": [\n    1\n  ]\n}');
});

test('query strings parse as net/url: first value wins, bad escapes and semicolons drop the pair', (t) => {
  const q = parseQuery('a=1&a=2&b=%zz&c=x;y&d=+a%20b&e&=v');
  t.is(q.get('a'), '1');
  t.false(q.has('b'));
  t.false(q.has('c'));
  t.is(q.get('d'), ' a b');
  t.is(q.get('e'), '');
});

test("bad values get strconv's errors in nats-server's words", (t) => {
  t.is(decodeBool(new Map([['subs', 'T']]), 'subs'), true);
  t.is(decodeBool(new Map(), 'subs'), false);
  t.throws(() => decodeBool(new Map([['subs', 'yes']]), 'subs'), {
    message: 'Error decoding boolean for \'subs\': strconv.ParseBool: parsing "yes": invalid syntax',
  });
  t.is(decodeInt(new Map([['limit', '-5']]), 'limit'), -5);
  t.throws(() => decodeInt(new Map([['limit', '1e3']]), 'limit'), {
    message: 'Error decoding int for \'limit\': strconv.Atoi: parsing "1e3": invalid syntax',
  });
  t.throws(() => decodeInt(new Map([['limit', '9223372036854775808']]), 'limit'), { message: /value out of range$/ });
  t.throws(() => decodeUint64(new Map([['cid', '+1']]), 'cid'), {
    message: 'Error decoding uint64 for \'cid\': strconv.ParseUint: parsing "+1": invalid syntax',
  });
  t.is(goQuote('a"b\\\n\u0001'), '"a\\"b\\\\\\n\\x01"');
});

test('the closed-connection ring keeps the newest connections, oldest first', (t) => {
  const ring = new ClosedConnections(3);
  const broker = { opts: {} } as unknown as Broker;
  for (let cid = 1; cid <= 5; cid++) {
    const conn = {
      cid,
      socket: {},
      tlsDeadline: 0,
      remoteAddr: '::ffff:127.0.0.1',
      remotePort: 1000 + cid,
      startedAt: 1,
      lastInboundAt: 2,
      rttMs: 0,
      closed: true,
      pendingBytes: 0,
      inMsgs: cid,
      outMsgs: 0,
      inBytes: 0,
      outBytes: 0,
      subs: new Map(),
      name: '',
      lang: '',
      version: '',
      user: '',
      connectReceived: true,
      closeReason: 'Client Closed',
    } as unknown as ClientConn;
    ring.add(broker, conn);
  }
  const list = ring.list();
  t.deepEqual(
    list.map((c) => c.cid),
    [3, 4, 5],
  );
  t.is(list[0].ip, '127.0.0.1');
  t.is(list[0].reason, 'Client Closed');
  t.true(list.every((c) => c.stop > 0));
});

test("/healthz says 503 with nats-server's readiness error until every listener and thread is up", (t) => {
  const src = (server: boolean, route: boolean) => ({ readyChecks: () => ({ server, route }) }) as unknown as MonitorSource;
  t.deepEqual(healthz(src(true, true), new Map()), { status: 200, body: { status: 'ok' } });
  t.deepEqual(healthz(src(false, true), new Map()), {
    status: 503,
    body: { status: 'error', error: 'failed to be ready for connections after 1ms: server' },
  });
  t.is(healthz(src(false, false), new Map()).body.error, 'failed to be ready for connections after 1ms: server, route');
});
