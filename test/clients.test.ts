// The official NATS clients, unchanged, against the implementation under test
// (SKEIN_TEST_IMPL, default skein): npm `nats` (v2) and `@nats-io/transport-node` (v3).
// Every behaviour is run with both clients; one test mixes them on the same subjects.

import test from 'ava';
import * as natsV2 from 'nats';
import * as natsV3 from '@nats-io/transport-node';
import { startServer, testImpl, useServer, type ServerHandle } from './helpers/server.ts';

const impl = testImpl();

// The few client methods the tests use, common to both client generations.
interface Headers {
  get(key: string): string;
  set(key: string, value: string): void;
}
interface Msg {
  subject: string;
  reply?: string;
  data: Uint8Array;
  headers?: Headers;
  string(): string;
  respond(payload?: string, opts?: { headers?: Headers }): boolean;
}
interface Subscription {
  unsubscribe(max?: number): void;
  getProcessed(): number;
  isClosed?: boolean;
  closed: Promise<unknown>;
}
interface Conn {
  publish(subject: string, payload?: string, opts?: { reply?: string; headers?: Headers }): void;
  subscribe(subject: string, opts?: { queue?: string; max?: number; callback?: (err: unknown, msg: Msg) => void }): Subscription;
  request(subject: string, payload?: string, opts?: { timeout?: number; headers?: Headers }): Promise<Msg>;
  flush(): Promise<void>;
  drain(): Promise<void>;
  close(): Promise<void>;
  closed(): Promise<void | Error>;
  isClosed(): boolean;
}
interface Client {
  name: string;
  connect(port: number, opts?: Record<string, unknown>): Promise<Conn>;
  headers(): Headers;
  isNoResponders(err: unknown): boolean;
}

const clients: Client[] = [
  {
    name: 'nats v2',
    connect: async (port, opts = {}) =>
      (await natsV2.connect({ servers: `127.0.0.1:${port}`, reconnect: false, ...opts })) as unknown as Conn,
    headers: () => natsV2.headers(),
    isNoResponders: (err) => (err as { code?: string }).code === natsV2.ErrorCode.NoResponders,
  },
  {
    name: 'nats v3',
    connect: async (port, opts = {}) =>
      (await natsV3.connect({ servers: `127.0.0.1:${port}`, reconnect: false, ...opts })) as unknown as Conn,
    headers: () => natsV3.headers(),
    isNoResponders: (err) => err instanceof natsV3.NoRespondersError || (err instanceof natsV3.RequestError && err.isNoResponders()),
  },
];

let shared: ServerHandle | undefined;
test.before(async () => {
  shared = await startServer({ impl });
});
test.after.always(async () => {
  await shared?.stop();
});

/** Connects and registers a close at test end. */
async function conn(
  t: { teardown(fn: () => unknown): void },
  client: Client,
  port = shared!.port,
  opts?: Record<string, unknown>,
): Promise<Conn> {
  const nc = await client.connect(port, opts);
  t.teardown(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

/** Subscribes with a callback collecting messages. */
function collect(nc: Conn, subject: string, opts: { queue?: string; max?: number } = {}): { sub: Subscription; msgs: Msg[] } {
  const msgs: Msg[] = [];
  const sub = nc.subscribe(subject, {
    ...opts,
    callback: (err, msg) => {
      if (!err) msgs.push(msg);
    },
  });
  return { sub, msgs };
}

/** Polls until cond() holds; throws with `what` after the deadline. */
async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const client of clients) {
  const c = client.name;

  test(`${c}: publish/subscribe delivers messages in order`, async (t) => {
    t.timeout(60_000);
    const sub = await conn(t, client);
    const pub = await conn(t, client);
    const subject = `${c.replace(' ', '')}.ps`;
    const { msgs } = collect(sub, subject);
    await sub.flush();
    for (let i = 0; i < 20; i++) pub.publish(subject, `m${i}`);
    await pub.flush();
    await until('20 messages', () => msgs.length >= 20);
    t.deepEqual(
      msgs.map((m) => m.string()),
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
    t.is(msgs[0].subject, subject);
  });

  test(`${c}: wildcard subscriptions`, async (t) => {
    t.timeout(60_000);
    const nc = await conn(t, client);
    const p = `${c.replace(' ', '')}.wc`;
    const star = collect(nc, `${p}.*`);
    const full = collect(nc, `${p}.>`);
    await nc.flush();
    nc.publish(`${p}.a`, '1');
    nc.publish(`${p}.a.b`, '2');
    nc.publish(`${p}`, '3');
    await nc.flush();
    await until('messages', () => full.msgs.length >= 2 && star.msgs.length >= 1);
    await nc.flush();
    t.deepEqual(
      star.msgs.map((m) => m.subject),
      [`${p}.a`],
    );
    t.deepEqual(
      full.msgs.map((m) => m.subject),
      [`${p}.a`, `${p}.a.b`],
    );
  });

  test(`${c}: request/reply`, async (t) => {
    t.timeout(60_000);
    const svc = await conn(t, client);
    const req = await conn(t, client);
    const subject = `${c.replace(' ', '')}.echo`;
    svc.subscribe(subject, {
      callback: (_err, msg) => {
        msg.respond(`echo:${msg.string()}`);
      },
    });
    await svc.flush();
    const replies = await Promise.all([1, 2, 3].map((i) => req.request(subject, `q${i}`, { timeout: 5000 })));
    t.deepEqual(
      replies.map((m) => m.string()),
      ['echo:q1', 'echo:q2', 'echo:q3'],
    );
  });

  test(`${c}: headers travel with publish and request`, async (t) => {
    t.timeout(60_000);
    const svc = await conn(t, client);
    const req = await conn(t, client);
    const subject = `${c.replace(' ', '')}.hdr`;
    svc.subscribe(subject, {
      callback: (_err, msg) => {
        const h = client.headers();
        h.set('X-Seen', msg.headers?.get('X-Id') ?? 'none');
        msg.respond('ok', { headers: h });
      },
    });
    const seen = collect(svc, `${subject}.pub`);
    await svc.flush();
    const h = client.headers();
    h.set('X-Id', 'abc-123');
    const reply = await req.request(subject, 'hi', { timeout: 5000, headers: h });
    t.is(reply.string(), 'ok');
    t.is(reply.headers?.get('X-Seen'), 'abc-123');

    const h2 = client.headers();
    h2.set('X-Multi', 'one');
    req.publish(`${subject}.pub`, 'body', { headers: h2 });
    req.publish(`${subject}.pub`, 'plain');
    await req.flush();
    await until('two messages', () => seen.msgs.length >= 2);
    t.is(seen.msgs[0].headers?.get('X-Multi'), 'one');
    t.is(seen.msgs[0].string(), 'body');
    t.is(seen.msgs[1].headers, undefined);
    t.is(seen.msgs[1].string(), 'plain');
  });

  test(`${c}: queue group delivers each message to one member`, async (t) => {
    t.timeout(60_000);
    const members = await Promise.all([0, 1, 2].map(() => conn(t, client)));
    const pub = await conn(t, client);
    const subject = `${c.replace(' ', '')}.q`;
    const subs = members.map((m) => collect(m, subject, { queue: 'workers' }));
    await Promise.all(members.map((m) => m.flush()));
    const n = 30;
    for (let i = 0; i < n; i++) pub.publish(subject, String(i));
    await pub.flush();
    await until(`${n} messages`, () => subs.reduce((s, x) => s + x.msgs.length, 0) >= n);
    await Promise.all(members.map((m) => m.flush()));
    const got = subs.flatMap((s) => s.msgs.map((m) => Number(m.string()))).sort((a, b) => a - b);
    t.deepEqual(
      got,
      Array.from({ length: n }, (_, i) => i),
    );
  });

  test(`${c}: auto-unsubscribe after max messages`, async (t) => {
    t.timeout(60_000);
    const nc = await conn(t, client);
    const subject = `${c.replace(' ', '')}.max`;
    const capped = collect(nc, subject, { max: 3 });
    const later = collect(nc, subject);
    later.sub.unsubscribe(5); // unsubscribe(max) on an existing subscription
    await nc.flush();
    for (let i = 0; i < 8; i++) nc.publish(subject, String(i));
    await nc.flush();
    await until('5 messages on the second subscription', () => later.msgs.length >= 5);
    await nc.flush();
    t.deepEqual(
      capped.msgs.map((m) => m.string()),
      ['0', '1', '2'],
    );
    t.deepEqual(
      later.msgs.map((m) => m.string()),
      ['0', '1', '2', '3', '4'],
    );
    await capped.sub.closed;
    await later.sub.closed;
    t.is(capped.sub.getProcessed(), 3);
  });

  test(`${c}: flush is a barrier: after it, another connection's subscription is live`, async (t) => {
    t.timeout(60_000);
    const a = await conn(t, client);
    const b = await conn(t, client);
    const subject = `${c.replace(' ', '')}.flush`;
    for (let round = 0; round < 5; round++) {
      const { msgs, sub } = collect(a, `${subject}.${round}`);
      await a.flush();
      b.publish(`${subject}.${round}`, 'x');
      await b.flush();
      await until(`round ${round}`, () => msgs.length === 1);
      sub.unsubscribe();
    }
    t.pass();
  });

  test(`${c}: drain delivers pending messages, then closes`, async (t) => {
    t.timeout(60_000);
    const sub = await conn(t, client);
    const pub = await conn(t, client);
    const subject = `${c.replace(' ', '')}.drain`;
    const { msgs } = collect(sub, subject);
    await sub.flush();
    for (let i = 0; i < 50; i++) pub.publish(subject, String(i));
    await pub.flush();
    await until('first message', () => msgs.length >= 1);
    await sub.drain();
    t.true(sub.isClosed());
    t.is(msgs.length, 50);
    await pub.drain();
    t.true(pub.isClosed());
  });

  test(`${c}: request without responders fails fast with no-responders`, async (t) => {
    t.timeout(60_000);
    const nc = await conn(t, client);
    const started = Date.now();
    const err = await t.throwsAsync(nc.request(`${c.replace(' ', '')}.nobody.home`, 'x', { timeout: 10000 }));
    t.true(client.isNoResponders(err), `expected a no-responders error, got ${String(err)}`);
    // A timeout would take the full 10s; no-responders comes back at once.
    t.true(Date.now() - started < 9000);
  });

  test(`${c}: user/password authentication`, async (t) => {
    t.timeout(60_000);
    const srv = await useServer(t, { impl, args: ['--user', 'alice', '--pass', 'secret'] });
    const good = await conn(t, client, srv.port, { user: 'alice', pass: 'secret' });
    const { msgs } = collect(good, 'auth.x');
    await good.flush();
    good.publish('auth.x', 'ok');
    await until('message', () => msgs.length === 1);
    const err = await t.throwsAsync(client.connect(srv.port, { user: 'alice', pass: 'wrong' }));
    t.regex(String(err?.message), /authorization violation/i);
  });
}

test('nats v2 and nats v3 interoperate on the same subjects', async (t) => {
  t.timeout(60_000);
  const v2 = await conn(t, clients[0]);
  const v3 = await conn(t, clients[1]);
  const at2 = collect(v2, 'mixed.to2');
  const at3 = collect(v3, 'mixed.to3');
  v3.subscribe('mixed.svc', {
    callback: (_e, m) => {
      m.respond(`v3 says ${m.string()}`);
    },
  });
  await Promise.all([v2.flush(), v3.flush()]);
  v2.publish('mixed.to3', 'from v2');
  v3.publish('mixed.to2', 'from v3');
  const reply = await v2.request('mixed.svc', 'hello', { timeout: 5000 });
  await until('both messages', () => at2.msgs.length === 1 && at3.msgs.length === 1);
  t.is(at3.msgs[0].string(), 'from v2');
  t.is(at2.msgs[0].string(), 'from v3');
  t.is(reply.string(), 'v3 says hello');
});
