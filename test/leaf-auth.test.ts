// Authorization on the leaf port (../shared/protocol.md §8.9): `leafnodes { authorization { user,
// password, timeout, users } }`, with nats-server's errors; wrong credentials never join and
// the leaf keeps retrying; the hub's auth timer always runs; the leaf port is for leafs only;
// without a leafnodes authorization block the leaf port ignores client authorization.
//
// Each test runs on all-nats-server topologies, and on skein and mixed ones only with skein leaf nodes (on since issue 13).

import bcrypt from 'bcryptjs';
import { interestSeen, sleep, uid, waitFor } from './helpers/cluster.ts';
import { LeafTopology, leafTest } from './helpers/leaf.ts';
import { connectSocket, LeafPeer, leafToHub } from './helpers/leafpeer.ts';

leafTest(
  'a leaf with the right user and password joins; one with a wrong password never does, and keeps retrying',
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(120_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true, leafAuth: 'user: lu\n    password: lp\n    timeout: 2' },
      { name: 'good', impl: mix.leaf, remotes: [{ to: 'hub', user: 'lu', pass: 'lp' }] },
      { name: 'bad', impl: mix.leaf, remotes: [{ to: 'hub', user: 'lu', pass: 'wrong' }] },
    ]);
    await topo.waitRemote('good', [topo.node('hub').leafPort]);
    const bad = topo.node('bad').srv;
    await bad.waitForLog(/Leafnode Error 'Authorization Violation'/, 30_000);
    await topo.node('hub').srv.waitForLog(/authentication error/i, 30_000);
    // Retried at the reconnect pace: a second refusal is seen on the hub.
    await waitFor(
      () =>
        (
          topo
            .node('hub')
            .srv.output()
            .match(/authentication error/gi) ?? []
        ).length >= 2,
      30_000,
      'a second attempt',
    );
    t.is((await topo.leafz('hub')).leafnodes, 1, 'only the good leaf is connected');
    t.is((await topo.leafz('bad')).leafnodes, 0);
    // Nothing crosses from the refused leaf.
    const hub = await topo.client('hub');
    const good = await topo.client('good');
    const badNc = await topo.client('bad');
    const id = uid();
    const got: string[] = [];
    hub.subscribe(`auth.${id}`, { callback: (_e, m) => got.push(m.string()) });
    await interestSeen(hub, [good]);
    badNc.publish(`auth.${id}`, 'from bad');
    good.publish(`auth.${id}`, 'from good');
    await Promise.all([badNc.flush(), good.flush()]);
    await waitFor(() => got.length >= 1, 10_000, "the good leaf's message");
    await sleep(500); // a short look for a message that has no way to come (bad has no connection)
    t.deepEqual(got, ['from good']);
  },
);

leafTest(
  "leafnodes users: each listed user joins, an unknown one is refused with -ERR 'Authorization Violation'",
  ['hub'],
  async (t, mix) => {
    t.timeout(60_000);
    const hash = bcrypt.hashSync('pb', 4);
    const topo = await LeafTopology.start(t, [
      {
        name: 'hub',
        impl: mix.hub,
        accept: true,
        leafAuth: `users: [ {user: a, password: pa}, {user: b, password: "${hash}"} ]`,
      },
    ]);
    const port = topo.node('hub').leafPort;
    const a = await leafToHub(port, { name: 'a', user: 'a', pass: 'pa' });
    t.teardown(() => a.peer.close());
    const b = await leafToHub(port, { name: 'b', user: 'b', pass: 'pb' }); // a bcrypt hash on the hub
    t.teardown(() => b.peer.close());
    t.is(a.connectInfo.connect_info, true);
    t.is(b.connectInfo.connect_info, true);
    for (const [user, pass] of [
      ['c', 'pc'],
      ['a', 'pb'],
      [undefined, undefined],
    ] as const) {
      const err = await leafToHub(port, { name: `x${user}`, user, pass }).then(
        () => undefined,
        (e: Error) => e,
      );
      t.regex(String(err?.message), /-ERR 'Authorization Violation'/, `user ${user}`);
    }
    await a.peer.ping();
    t.false(a.peer.isClosed());
  },
);

leafTest(
  "a leaf connection that sends no CONNECT is closed with -ERR 'Authentication Timeout', with or without credentials configured",
  ['hub'],
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await LeafTopology.start(t, [
      { name: 'open', impl: mix.hub, accept: true },
      { name: 'locked', impl: mix.hub, accept: true, leafAuth: 'user: u\n    password: p\n    timeout: 1' },
    ]);
    for (const [name, atLeastMs] of [
      ['open', 1800],
      ['locked', 900],
    ] as const) {
      const peer = new LeafPeer(await connectSocket(topo.node(name).leafPort));
      t.teardown(() => peer.close());
      const info = await peer.next((f) => f.op === 'INFO', 10_000, 'INFO');
      const err = await peer.next((f) => f.op === '-ERR', 20_000, 'the timeout');
      t.is(err.line, "-ERR 'Authentication Timeout'", name);
      t.true(err.at - info.at >= atLeastMs, `${name}: after ${err.at - info.at}ms`);
      await peer.closed(10_000);
    }
  },
);

leafTest(
  'the leaf port refuses what is not a leaf: another first operation, a client CONNECT, a gateway CONNECT, bad JSON',
  ['hub'],
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, accept: true }]);
    const port = topo.node('hub').leafPort;
    const cases: [string, string | null][] = [
      ['PING\r\n', "-ERR 'Authorization Violation'"],
      ['SUB foo 1\r\n', "-ERR 'Authorization Violation'"],
      ['CONNECT {"lang":"go","verbose":false,"pedantic":false}\r\n', "-ERR 'attempted to connect to leaf node port'"],
      ['CONNECT {"gateway":"X","name":"gw"}\r\n', '-ERR \'Rejecting connection from gateway "X" on the leafnode port\''],
      ['CONNECT {notjson\r\n', null], // closed without a word
    ];
    for (const [send, want] of cases) {
      const peer = new LeafPeer(await connectSocket(port));
      t.teardown(() => peer.close());
      await peer.next((f) => f.op === 'INFO', 10_000, 'INFO');
      peer.send(send);
      await peer.closed(10_000);
      const errs = peer.frames.filter((f) => f.op === '-ERR').map((f) => f.line);
      t.deepEqual(errs, want === null ? [] : [want], JSON.stringify(send));
    }
  },
);

leafTest(
  'without a leafnodes authorization block the leaf port ignores the client users: a leaf without credentials joins',
  ['hub'],
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await LeafTopology.start(t, [
      {
        name: 'hub',
        impl: mix.hub,
        accept: true,
        config: 'authorization { users: [ {user: cu, password: cp} ] }',
      },
    ]);
    const s = await leafToHub(topo.node('hub').leafPort, { name: 'nocreds' });
    t.teardown(() => s.peer.close());
    t.is(s.connectInfo.connect_info, true);
    t.is(s.connectInfo.remote_account, '$G');
    await s.peer.ping();
    t.false(s.peer.isClosed());
  },
);
