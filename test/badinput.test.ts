// Bad input never crashes the server and never affects other connections: random bytes,
// protocol-shaped garbage, truncated frames, huge control lines, invalid CONNECT JSON and
// abrupt resets, each thrown at a server (SKEIN_TEST_IMPL, default skein) while a bystander
// publisher/subscriber pair keeps checking that its traffic arrives intact and in order.

import test, { type ExecutionContext } from 'ava';
import { noPings, rawConnect, rawSession, type RawClient } from './helpers/raw.ts';
import { testImpl, useServer, type ServerHandle } from './helpers/server.ts';
import { prng } from './helpers/fuzz.ts';

const impl = testImpl();

interface Bystander {
  /** Publishes a batch and waits until the subscriber got all of it, in order. */
  check(): Promise<void>;
  close(): void;
}

/** A healthy subscriber and publisher on their own connections. */
async function bystander(t: ExecutionContext, port: number): Promise<Bystander> {
  const { c: sub } = await rawSession(port);
  const { c: pub } = await rawSession(port);
  sub.send('SUB bystander.x 1\r\n');
  await sub.ping();
  let seq = 0;
  const by: Bystander = {
    async check() {
      const first = seq;
      let batch = '';
      for (let i = 0; i < 20; i++, seq++) batch += `PUB bystander.x ${String(seq).length}\r\n${seq}\r\n`;
      pub.send(batch);
      await pub.ping();
      await sub.expect(`MSG bystander.x 1 ${String(seq - 1).length}\r\n${seq - 1}\r\n`);
      const got = [...sub.data().matchAll(/MSG bystander\.x 1 \d+\r\n(\d+)\r\n/g)].map((m) => Number(m[1]));
      const want = Array.from({ length: seq }, (_, i) => i);
      if (got.join() !== want.join()) throw new Error(`bystander got ${got.slice(first).join(',')} after ${first}`);
      if (sub.data().includes('-ERR') || pub.data().includes('-ERR')) throw new Error('bystander got an -ERR');
    },
    close() {
      sub.close();
      pub.close();
    },
  };
  t.teardown(() => by.close());
  return by;
}

/** The server is alive, accepts a new connection and serves it, and the bystander is fine. */
async function assertHealthy(t: ExecutionContext, srv: ServerHandle, by: Bystander): Promise<void> {
  t.false(srv.exited(), `server exited:\n${srv.output()}`);
  await by.check();
  const { c } = await rawSession(srv.port);
  c.send('SUB fresh.x 1\r\nPUB fresh.x 2\r\nok\r\n');
  t.is(noPings(await c.ping()), 'MSG fresh.x 1 2\r\nok\r\nPONG\r\n');
  c.close();
  t.false(srv.exited(), `server exited:\n${srv.output()}`);
}

/** Sends data on a fresh connection, then waits (bounded) for the server to close or go quiet. */
async function throwAt(port: number, chunks: (string | Buffer)[], opts: { closeAfter?: boolean } = {}): Promise<RawClient> {
  const c = await rawConnect(port);
  for (const ch of chunks) c.send(ch);
  if (opts.closeAfter) {
    c.close();
  } else {
    await c.readAll(50, 5000).catch(() => undefined);
    c.close();
  }
  return c;
}

test('random bytes on many connections', async (t) => {
  t.timeout(60000);
  const srv = await useServer(t, { impl });
  const by = await bystander(t, srv.port);
  const rnd = prng(0x5eed1);
  for (let round = 0; round < 4; round++) {
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const len = 1 + Math.floor(rnd() * 8192);
        const buf = Buffer.alloc(len);
        for (let j = 0; j < len; j++) buf[j] = Math.floor(rnd() * 256);
        // Half the connections start with a valid CONNECT so the garbage reaches the parser
        // in an established session.
        const pre = i % 2 === 0 ? ['CONNECT {"verbose":false}\r\n'] : [];
        await throwAt(srv.port, [...pre, buf]);
      }),
    );
    await by.check();
  }
  await assertHealthy(t, srv, by);
});

test('protocol-shaped garbage: random sequences of operation fragments', async (t) => {
  t.timeout(60000);
  const srv = await useServer(t, { impl });
  const by = await bystander(t, srv.port);
  const rnd = prng(0xfa11);
  const pieces = [
    'PUB ',
    'HPUB ',
    'SUB ',
    'UNSUB ',
    'CONNECT ',
    'PING',
    'PONG',
    'MSG ',
    'INFO ',
    '+OK',
    '-ERR ',
    '\r\n',
    '\r',
    '\n',
    ' ',
    '\t',
    'foo',
    'foo.bar',
    '*',
    '>',
    '.',
    '..',
    'q',
    '0',
    '1',
    '5',
    '12',
    '-1',
    '99999999999',
    '{',
    '}',
    '{"verbose":false}',
    '{"headers":true}',
    '"',
    'NATS/1.0\r\n\r\n',
    '\x00',
    '\xff',
  ];
  for (let round = 0; round < 4; round++) {
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        let s = 'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n';
        const n = 20 + Math.floor(rnd() * 200);
        for (let j = 0; j < n; j++) s += pieces[Math.floor(rnd() * pieces.length)];
        // Sent in random-sized pieces so frames are split at arbitrary points.
        const chunks: string[] = [];
        for (let at = 0; at < s.length;) {
          const len = 1 + Math.floor(rnd() * 40);
          chunks.push(s.slice(at, at + len));
          at += len;
        }
        await throwAt(srv.port, chunks);
      }),
    );
    await by.check();
  }
  await assertHealthy(t, srv, by);
});

test('truncated frames followed by the client going away', async (t) => {
  t.timeout(60000);
  const srv = await useServer(t, { impl });
  const by = await bystander(t, srv.port);
  const frames = [
    'CONNECT {"verbose":false',
    'CONNECT {"verbose":false}\r\nPUB foo 10\r\nabc',
    'CONNECT {"verbose":false}\r\nPUB foo 1000000\r\n' + 'x'.repeat(1000),
    'CONNECT {"verbose":false,"headers":true}\r\nHPUB foo 12 20\r\nNATS/1.0\r',
    'CONNECT {"verbose":false}\r\nSUB foo',
    'CONNECT {"verbose":false}\r\nSUB foo 1\r\nUNSUB 1',
    'CONNECT {"verbose":false}\r\nPU',
    'CONNECT {"verbose":false}\r\nPUB foo 3\r\nabc\r',
    'PIN',
    'C',
    '',
  ];
  for (const f of frames) {
    await throwAt(srv.port, [f], { closeAfter: true });
    // And the same frame left hanging on an open connection while the next one arrives.
    const hanging = await rawConnect(srv.port);
    t.teardown(() => hanging.close());
    hanging.send(f);
  }
  // Abrupt resets (RST) mid-frame.
  for (let i = 0; i < 5; i++) {
    const c = await rawConnect(srv.port);
    c.send('CONNECT {"verbose":false}\r\nSUB reset.x 1\r\nPUB reset.x 100\r\nabc');
    c.socket.resetAndDestroy();
  }
  await by.check();
  // The subscriptions of the reset connections are gone: a publish to their subject is harmless.
  const { c } = await rawSession(srv.port);
  c.send('PUB reset.x 1\r\nz\r\n');
  await c.ping();
  c.close();
  await assertHealthy(t, srv, by);
});

test('huge control lines are refused with maximum control line exceeded', async (t) => {
  t.timeout(60000);
  const srv = await useServer(t, { impl });
  const by = await bystander(t, srv.port);
  const CTL = "-ERR 'maximum control line exceeded'\r\n";
  // [input, what nats-server 2.9.10 answers before closing]
  const cases: [string, string][] = [
    ['A'.repeat(1024 * 1024), "-ERR 'Unknown Protocol Operation'\r\n"], // no operation at all
    [`SUB ${'s'.repeat(100000)} 1\r\n`, CTL],
    [`SUB ${'s'.repeat(100000)}`, CTL], // refused before the line ends
    [`PUB ${'p'.repeat(8192)} 2\r\nhi\r\n`, CTL],
    [`CONNECT {"name":"${'n'.repeat(200000)}"}\r\n`, CTL],
    [`CONNECT {"name":"${'n'.repeat(5000)}"}\r\n`, CTL],
    [`CONNECT {"verbose":false}\r\nPUB foo ${'9'.repeat(5000)}\r\n`, CTL],
  ];
  for (const [body, answer] of cases) {
    const c = await rawConnect(srv.port);
    t.teardown(() => c.close());
    await c.expect(/^INFO .*\r\n/);
    c.send(body);
    await c.closed(5000);
    const what = `for a ${body.length}-byte line starting ${JSON.stringify(body.slice(0, 20))}`;
    if (c.pending() === '' && c.writeError()) {
      // The server closed with our input unread, the kernel reset the connection, and Node
      // dropped the socket on the failed write before reading the -ERR. Not the server's doing.
      t.log(`${what}: -ERR lost to ${c.writeError()!.message}`);
    } else {
      t.is(c.pending(), answer, what);
    }
    await by.check();
  }
  // PING ignores everything up to the newline, however long.
  const c = await rawConnect(srv.port);
  t.teardown(() => c.close());
  await c.expect(/^INFO .*\r\n/);
  c.send(`PING ${'x'.repeat(100000)}\r\n`);
  await c.expect('PONG\r\n', 5000);
  t.false(c.isClosed());
  await assertHealthy(t, srv, by);
});

test('invalid CONNECT JSON closes only that connection', async (t) => {
  t.timeout(60000);
  const srv = await useServer(t, { impl });
  const by = await bystander(t, srv.port);
  const bad = [
    'CONNECT {\r\n',
    'CONNECT {"verbose":}\r\n',
    'CONNECT {"verbose":true,}\r\n',
    'CONNECT not json\r\n',
    "CONNECT {'verbose':false}\r\n",
    'CONNECT {"verbose":false}}\r\n',
    'CONNECT \r\n',
    'CONNECT\r\n',
    'CONNECT {"a":' + '['.repeat(2000) + ']'.repeat(2000) + '}\r\n',
    'CONNECT {"name":"\\ud800"}\r\n',
    'CONNECT {"name":"\xff\xfe"}\r\n',
  ];
  for (const line of bad) {
    const c = await throwAt(srv.port, [line]);
    t.notRegex(c.data(), /PONG\r\n/, `unexpectedly served after ${JSON.stringify(line.slice(0, 40))}`);
  }
  // JSON that parses but has the wrong types or shapes: must not crash, whatever the answer.
  const odd = [
    'CONNECT []\r\n',
    'CONNECT null\r\n',
    'CONNECT "str"\r\n',
    'CONNECT 42\r\n',
    'CONNECT {"verbose":"yes","pedantic":1,"echo":null}\r\n',
    'CONNECT {"protocol":"1"}\r\n',
    'CONNECT {"protocol":1.5}\r\n',
    'CONNECT {"headers":"true","no_responders":"yes"}\r\n',
    'CONNECT {"user":{},"pass":[],"auth_token":7}\r\n',
    'CONNECT {"__proto__":{"verbose":true},"constructor":{"prototype":{"x":1}}}\r\n',
    'CONNECT {"verbose":false}\r\nCONNECT {"verbose":false,"protocol":99}\r\n',
  ];
  for (const line of odd) await throwAt(srv.port, [line, 'PING\r\n']);
  await assertHealthy(t, srv, by);
});

test('connections that vanish at every stage of the handshake', async (t) => {
  t.timeout(60000);
  const srv = await useServer(t, { impl });
  const by = await bystander(t, srv.port);
  // Connect and close before reading INFO; close right after CONNECT; after SUB with a
  // message in flight to it; reset with unread output queued.
  await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const c = await rawConnect(srv.port);
      if (i % 4 === 0) {
        c.close();
        return;
      }
      if (i % 4 === 1) {
        c.send('CONNECT {"verbose":false}\r\n');
        c.close();
        return;
      }
      if (i % 4 === 2) {
        c.send('CONNECT {"verbose":false}\r\nSUB bystander.x 9\r\n');
        await c.ping();
        c.close();
        return;
      }
      c.send(`CONNECT {"verbose":false}\r\nSUB vanish.${i} 1\r\n` + `PUB vanish.${i} 1000\r\n${'v'.repeat(1000)}\r\n`.repeat(200));
      c.socket.resetAndDestroy();
    }),
  );
  await assertHealthy(t, srv, by);
});
