// Stored credentials as nats-server 2.9.10 takes them: bcrypt-hashed passwords and tokens
// (single user, users list, cluster authorization), with the plaintext warning when any
// password is not hashed, and nkey users that sign the INFO nonce. Each client case runs
// against skein and, with the same config, nats-server.

import test from 'ava';
import bcrypt from 'bcryptjs';
import { connect, nkeyAuthenticator } from 'nats';
import { createUser } from '@nats-io/nkeys';
import { useServer, type Impl } from './helpers/server.ts';
import { rawConnect, rawSession } from './helpers/raw.ts';
import { checkPubSub, meshReady, uid } from './helpers/cluster.ts';

const IMPLS: Impl[] = ['skein', 'nats-server'];
// Cost 4 (the minimum) keeps the tests quick; the comparison path is the same for any cost.
const hash = (pw: string, cost = 4): string => bcrypt.hashSync(pw, cost);

async function refused(port: number, connectFields: Record<string, unknown>): Promise<string> {
  const c = await rawConnect(port);
  await c.expect(/^INFO .*\r\n/);
  c.send(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, ...connectFields })}\r\nPING\r\n`);
  await c.closed(5000);
  return c.data().replace(/^INFO .*\r\n/, '');
}

for (const impl of IMPLS) {
  test.serial(
    `${impl}: bcrypt passwords in the users list and for the single user; plaintext ones still work, with a warning`,
    async (t) => {
      t.timeout(60_000);
      const users = await useServer(t, {
        impl,
        config: `authorization: {
  users: [
    { user: "hashed", password: "${hash('s3cret')}", permissions: { publish: "ok.>" } },
    { user: "plain", password: "plainpw" }
  ]
}
`,
      });
      const ok = await rawSession(users.port, { connect: { user: 'hashed', pass: 's3cret' } });
      ok.c.send('PUB ok.1 0\r\n\r\nPUB no.1 0\r\n\r\nPING\r\n');
      t.is(await ok.c.expect(/PONG\r\n/), `-ERR 'Permissions Violation for Publish to "no.1"'\r\nPONG\r\n`);
      ok.c.close();
      const plain = await rawSession(users.port, { connect: { user: 'plain', pass: 'plainpw' } });
      plain.c.close();
      t.is(await refused(users.port, { user: 'hashed', pass: 'wrong' }), "-ERR 'Authorization Violation'\r\n");
      // The hash itself is not a password.
      t.is(await refused(users.port, { user: 'hashed', pass: hash('s3cret') }), "-ERR 'Authorization Violation'\r\n");
      await users.waitForLog(/\[WRN\] Plaintext passwords detected, use nkeys or bcrypt/);

      const single = await useServer(t, { impl, config: `authorization: { user: "u", password: "${hash('pw')}" }\n` });
      const nc = await connect({ servers: single.url, user: 'u', pass: 'pw', reconnect: false });
      await nc.flush();
      await nc.close();
      await t.throwsAsync(connect({ servers: single.url, user: 'u', pass: 'nope', reconnect: false }));
      t.false(/Plaintext passwords detected/.test(single.output()));
    },
  );

  test.serial(`${impl}: a bcrypt token`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, { impl, config: `authorization: { token: "${hash('tok')}" }\n` });
    const ok = await rawSession(srv.port, { connect: { auth_token: 'tok' } });
    ok.c.close();
    t.is(await refused(srv.port, { auth_token: 'other' }), "-ERR 'Authorization Violation'\r\n");
  });

  test.serial(
    `${impl}: nkey users: INFO carries a nonce, a signed CONNECT gets the user's permissions, unknown keys and bad signatures are refused`,
    async (t) => {
      t.timeout(60_000);
      const alice = createUser();
      const stranger = createUser();
      const srv = await useServer(t, {
        impl,
        config: `authorization: {
  users: [
    { nkey: "${alice.getPublicKey()}", permissions: { publish: { deny: "secret.>" } } },
    { user: "pw", password: "pw" }
  ]
}
`,
      });
      const nc = await connect({ servers: srv.url, authenticator: nkeyAuthenticator(alice.getSeed()), reconnect: false });
      const subject = `nk.${uid()}`;
      const got: string[] = [];
      nc.subscribe(subject, { callback: (_e, m) => got.push(m.string()) });
      nc.publish(subject, 'hello');
      await nc.flush();
      const deadline = Date.now() + 5000;
      while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      t.deepEqual(got, ['hello']);
      await nc.close();

      // By hand: the nonce is per connection; a signature over it by the key works once.
      const c = await rawConnect(srv.port);
      const line = await c.expect(/^INFO .*\r\n/);
      const info = JSON.parse(line.slice(5).trim()) as { nonce: string; auth_required: boolean };
      t.is(info.auth_required, true);
      t.regex(info.nonce, /^[A-Za-z0-9_-]{15,}$/);
      const sig = Buffer.from(alice.sign(new TextEncoder().encode(info.nonce))).toString('base64url');
      c.send(`CONNECT {"verbose":false,"nkey":"${alice.getPublicKey()}","sig":"${sig}"}\r\nPUB secret.x 0\r\n\r\nPING\r\n`);
      t.is(await c.expect(/PONG\r\n/), `-ERR 'Permissions Violation for Publish to "secret.x"'\r\nPONG\r\n`);
      c.close();

      const strangerSig = Buffer.from(stranger.sign(new TextEncoder().encode('whatever'))).toString('base64url');
      t.is(await refused(srv.port, { nkey: stranger.getPublicKey(), sig: strangerSig }), "-ERR 'Authorization Violation'\r\n");
      // A signature over something else than this connection's nonce.
      t.is(
        await refused(srv.port, {
          nkey: alice.getPublicKey(),
          sig: Buffer.from(alice.sign(new TextEncoder().encode('not the nonce'))).toString('base64url'),
        }),
        "-ERR 'Authorization Violation'\r\n",
      );
      t.is(await refused(srv.port, { nkey: alice.getPublicKey() }), "-ERR 'Authorization Violation'\r\n");
      // nkey users and password users live side by side.
      const pw = await rawSession(srv.port, { connect: { user: 'pw', pass: 'pw' } });
      pw.c.close();
    },
  );
}

// Serial: ava runs serial tests before the concurrent ones, so hashing at cost 13 here (which
// blocks this test process for a second) cannot delay another test's CONNECT into its auth timeout.
test.serial('skein: a bcrypt check runs off the worker: another client on the same worker is served meanwhile', async (t) => {
  t.timeout(60_000);
  // Cost 13: about a second of hashing in JavaScript, far longer than two PING round trips.
  const srv = await useServer(t, {
    impl: 'skein',
    workers: 1,
    config: `authorization: { timeout: 60, users: [ { user: "slow", password: "${hash('pw', 13)}" }, { user: "fast", password: "fast" } ] }\n`,
  });
  const fast = await rawSession(srv.port, { connect: { user: 'fast', pass: 'fast' } });
  const slow = await rawConnect(srv.port);
  await slow.expect(/^INFO .*\r\n/);
  slow.send('CONNECT {"verbose":false,"user":"slow","pass":"pw"}\r\nPING\r\n');
  await fast.c.ping();
  await fast.c.ping();
  t.false(slow.pending().includes('PONG\r\n'), 'the slow client is still being checked');
  await slow.expect(/PONG\r\n/, 30_000);
  slow.close();
  fast.c.close();
});

test('config: nkey users must be valid user keys and stand alone', async (t) => {
  const { loadOptions } = await import('../src/config/load.ts');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const path = await import('node:path');
  const os = await import('node:os');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-nkey-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 's.yaml');
  writeFileSync(file, `authorization:\n  users:\n    - nkey: UNOTAKEY\n`);
  const err = await loadOptions(['-c', file]).catch((e: Error) => e);
  t.regex(String((err as Error).message), /s\.yaml:3:\d+: Not a valid public nkey for a user/);
  writeFileSync(file, `authorization:\n  users:\n    - nkey: ${createUser().getPublicKey()}\n      user: x\n`);
  const err2 = await loadOptions(['-c', file]).catch((e: Error) => e);
  t.regex(String((err2 as Error).message), /s\.yaml:3:\d+: Nkey users do not take usernames or passwords/);
});

test.serial('mixed cluster: a bcrypt cluster password on skein accepts a nats-server route that dials with the password', async (t) => {
  t.timeout(120_000);
  const s1 = await useServer(t, {
    impl: 'skein',
    config: `cluster: { name: test, listen: "127.0.0.1:-1", authorization: { user: ruser, password: "${hash('rpass')}" } }\n`,
  });
  const n1 = await useServer(t, {
    impl: 'nats-server',
    args: [
      '--cluster',
      'nats://127.0.0.1:-1',
      '--cluster_name',
      'test',
      '--routes',
      `nats-route://ruser:rpass@127.0.0.1:${s1.clusterPort}`,
    ],
  });
  const ncs = await Promise.all([s1, n1].map((srv) => connect({ servers: srv.url, reconnect: false })));
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
  await meshReady(ncs, 30_000);
  await checkPubSub(t, ncs);
  // A wrong password is refused.
  const n2 = await useServer(t, {
    impl: 'nats-server',
    args: [
      '--cluster',
      'nats://127.0.0.1:-1',
      '--cluster_name',
      'test',
      '--routes',
      `nats-route://ruser:wrong@127.0.0.1:${s1.clusterPort}`,
    ],
  });
  await s1.waitForLog(/rid:\d+ - authentication error/, 15_000);
  t.false(/Registering remote route/.test(n2.output()));
});

// nats-server clears the auth timer when CONNECT arrives (client.go processConnect), so a
// login that waits for its bcrypt check is never cut off by the timer, however many queue
// up. 40 logins at cost 12 (a quarter second or more each, two checking threads) take far
// longer than the 3 s timeout; the timeout leaves room for a loaded host to read CONNECT.
for (const impl of IMPLS) {
  test.serial(`${impl}: a burst of 40 bcrypt logins all succeed: the auth timer stops once CONNECT has arrived`, async (t) => {
    t.timeout(180_000);
    const srv = await useServer(t, {
      impl,
      workers: 2,
      config: `authorization: { timeout: 3, users: [ { user: "alice", password: "${hash('pw', 12)}" }, { user: "bob", password: "bob" } ] }\n`,
    });
    const login = async (): Promise<string> => {
      const c = await rawConnect(srv.port);
      try {
        await c.expect(/^INFO .*\r\n/);
        c.send('CONNECT {"verbose":false,"pedantic":false,"user":"alice","pass":"pw"}\r\nPING\r\n');
        return await c.expect(/PONG\r\n|-ERR '[^']*'\r\n/, 150_000);
      } catch (e) {
        return (e as Error).message;
      } finally {
        c.close();
      }
    };
    const answers = await Promise.all(Array.from({ length: 40 }, login));
    // The server's own first PING may come before the PONG.
    t.deepEqual(
      answers.filter((a) => !a.endsWith('PONG\r\n')),
      [],
    );
  });
}
