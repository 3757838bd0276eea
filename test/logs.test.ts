// Log line details operators grep for, checked against nats-server 2.9.10 where it has them:
// the auth failure line names the client (version:lang:name) and the user, and timestamps
// carry real microseconds.

import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { useServer, type Impl } from './helpers/server.ts';

const usersConfig = {
  skein: 'authorization:\n  users:\n    - user: alice\n      password: s3cret\n',
  natsServer: 'authorization { users = [ { user: alice, password: s3cret } ] }\n',
};

/** Sends CONNECT + PING and resolves once the server closed the connection or answered. */
function connectOnce(port: number, connect: Record<string, unknown>): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer: ${got}`));
    }, 10_000);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (got.startsWith('INFO ') && !got.includes('CONNECT_SENT')) {
        got += 'CONNECT_SENT';
        sock.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, ...connect })}\r\nPING\r\n`);
      }
      // Only what came after our CONNECT (a random server id in the INFO may contain "PONG").
      const after = got.indexOf('CONNECT_SENT');
      if (after >= 0 && /-ERR|PONG/.test(got.slice(after))) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The auth failure line (and the close line after it) of one connection, after `cid:N`. */
async function authFailureLines(
  t: ExecutionContext,
  impl: Impl,
  config: string | typeof usersConfig,
  args: string[],
  connect: Record<string, unknown>,
): Promise<string[]> {
  const srv = await useServer(t, { impl, config, args: ['-D', ...args] });
  const answer = await connectOnce(srv.port, connect);
  t.regex(answer, /-ERR 'Authorization Violation'/);
  const cid = /"client_id":(\d+)/.exec(answer)![1];
  const closed = await srv.waitForLog(new RegExp(`cid:${cid}( - .*)? - Client connection closed: Authentication Failure`));
  const lines = srv
    .output()
    .split('\n')
    .filter((l) => l.includes(` - cid:${cid} - `) && /authentication error|connection closed/.test(l));
  t.truthy(closed);
  return lines.map((l) => l.slice(l.indexOf(` - cid:${cid} - `) + ` - cid:${cid}`.length));
}

test('the auth failure line names the client and the user, as nats-server 2.9.10 does', async (t) => {
  t.timeout(60_000);
  const cases: [string, string | typeof usersConfig, string[], Record<string, unknown>, string[]][] = [
    [
      'users list, named client',
      usersConfig,
      [],
      { name: 'newcomer', lang: 'raw', version: '1.0', user: 'bob', pass: 'x' },
      [
        ' - "v1.0:raw:newcomer" - authentication error - User "bob"',
        ' - "v1.0:raw:newcomer" - Client connection closed: Authentication Failure',
      ],
    ],
    [
      'users list, anonymous client',
      usersConfig,
      [],
      { user: 'bob', pass: 'x' },
      [' - authentication error - User "bob"', ' - Client connection closed: Authentication Failure'],
    ],
    [
      'users list, lang only',
      usersConfig,
      [],
      { lang: 'go', user: 'alice', pass: 'wrong' },
      [' - "go" - authentication error - User "alice"', ' - "go" - Client connection closed: Authentication Failure'],
    ],
    [
      'single user (--user/--pass)',
      '',
      ['--user', 'u', '--pass', 'p'],
      { name: 'nn', lang: 'raw', version: '1.0', user: 'bob', pass: 'x' },
      [' - "v1.0:raw:nn" - authentication error', ' - "v1.0:raw:nn" - Client connection closed: Authentication Failure'],
    ],
    [
      'token',
      '',
      ['--auth', 'tok'],
      { name: 'nn', auth_token: 'bad' },
      [' - "nn" - authentication error', ' - "nn" - Client connection closed: Authentication Failure'],
    ],
  ];
  for (const [what, config, args, connect, expected] of cases) {
    const skein = await authFailureLines(t, 'skein', config, args, connect);
    t.deepEqual(skein, expected, `skein: ${what}`);
    const nats = await authFailureLines(t, 'nats-server', config === '' ? '' : config, args, connect);
    t.deepEqual(nats, expected, `nats-server: ${what}`);
  }
});

test('log timestamps carry real microseconds and stay in order', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl: 'skein', workers: 2, args: ['-D'] });
  for (let i = 0; i < 5; i++) await connectOnce(srv.port, { name: `c${i}` });
  const stamps = srv
    .output()
    .split('\n')
    .map((l) => /^\[(\d+)\] \d{4}\/\d\d\/\d\d (\d\d):(\d\d):(\d\d)\.(\d{6}) \[/.exec(l))
    .filter((m) => m !== null);
  t.true(stamps.length >= 10, srv.output());
  // A millisecond clock padded to microseconds would end every stamp in 000.
  const subMillisecond = stamps.filter((m) => !m[5].endsWith('000'));
  t.true(subMillisecond.length >= stamps.length / 2, stamps.map((m) => m[5]).join(' '));
  // The main thread's lines (start-up) are in order.
  const micros = stamps.slice(0, 8).map((m) => ((Number(m[2]) * 60 + Number(m[3])) * 60 + Number(m[4])) * 1e6 + Number(m[5]));
  for (let i = 1; i < micros.length; i++) t.true(micros[i] >= micros[i - 1], `${micros[i - 1]} then ${micros[i]}`);
});

for (const impl of ['skein', 'nats-server'] as Impl[]) {
  test.serial(`${impl}: a write-deadline slow consumer is logged with the chunks and bytes of the blocked write`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, {
      impl,
      workers: impl === 'skein' ? 2 : undefined,
      config: { skein: 'max_pending: 64MB\nwrite_deadline: 1\n', natsServer: 'max_pending: 64MB\nwrite_deadline: "1s"\n' },
    });
    const open = (): Promise<net.Socket> =>
      new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: srv.port }, () => resolve(s));
        s.on('error', reject);
      });
    const sub = await open();
    const pub = await open();
    t.teardown(() => {
      sub.destroy();
      pub.destroy();
    });
    pub.on('error', () => undefined);
    sub.on('error', () => undefined);
    let subGot = '';
    const onSub = (d: Buffer): void => {
      subGot += d.toString('latin1');
    };
    sub.on('data', onSub);
    sub.write('CONNECT {"verbose":false}\r\nSUB slow 1\r\nPING\r\n');
    const deadline = Date.now() + 20_000;
    while (!subGot.includes('PONG\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    sub.off('data', onSub);
    sub.pause(); // and never read again
    pub.write('CONNECT {"verbose":false}\r\n');
    const payload = 'x'.repeat(64 * 1024);
    const line = /Slow Consumer Detected: WriteDeadline of (\S+) exceeded with (\d+) chunks of (\d+) total bytes\./;
    while (!line.test(srv.output()) && Date.now() < deadline + 20_000) {
      if (pub.writableLength < 1024 * 1024) pub.write(`PUB slow ${payload.length}\r\n${payload}\r\n`);
      else await new Promise((r) => setTimeout(r, 10));
      if (pub.writableLength < 1024 * 1024) await new Promise((r) => setImmediate(r));
    }
    const m = line.exec(srv.output());
    t.truthy(m, srv.output());
    t.is(m![1], '1s');
    t.true(Number(m![2]) >= 1 && Number(m![3]) > 0);
  });
}
