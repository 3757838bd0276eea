// The leaf connection on the wire, as nats-server 2.9.10 puts it (../shared/protocol.md §8.2-8.6,
// 8.11): a raw leaf (helpers/leafpeer.ts leafToHub) against a real hub, and a fake hub
// (FakeHub) that a real leaf dials. Handshake and INFO/CONNECT fields, the interest dump with
// the `$LDS.` subject, LS+/LS- with queue weights, LMSG/HMSG forms both ways, no echo, headers
// only to a side that said headers:true, PING/PONG, the leaf's checks of the hub's INFO.
//
// Each test runs against a nats-server hub or leaf, and against skein's only with skein leaf nodes (on since issue 13). Lines about the system account
// (`LS+ $SYS.REQ...`, sent by a default nats-server) are left out of every comparison: skein has
// no system account and must only tolerate them.

import type { ExecutionContext } from 'ava';
import { rawSession } from './helpers/raw.ts';
import { waitFor } from './helpers/cluster.ts';
import { LeafTopology, leafTest, waitLeafInterest as waitInterest, type Mix } from './helpers/leaf.ts';
import { connectSocket, FakeHub, LeafPeer, leafToHub } from './helpers/leafpeer.ts';

const HUB = ['hub'];
const LEAF = ['leaf'];

const notSys = (line: string): boolean => !/^LS[+-] \$SYS\./.test(line);

async function hubOnly(t: ExecutionContext, mix: Mix, config?: string): Promise<LeafTopology> {
  return LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, accept: true, config }]);
}

/** A real leaf (server `leaf`) whose one remote dials a fake hub. */
async function leafOfFake(
  t: ExecutionContext,
  mix: Mix,
  fake: FakeHub,
  remote: { user?: string; hub?: boolean; extra?: string } = {},
  config?: string,
): Promise<LeafTopology> {
  const auth = remote.user !== undefined ? `${remote.user}@` : '';
  return LeafTopology.start(t, [
    {
      name: 'leaf',
      impl: mix.leaf,
      config,
      remotes: [{ urls: [`nats-leaf://${auth}127.0.0.1:${fake.port}`], hub: remote.hub, extra: remote.extra }],
    },
  ]);
}

async function startFake(t: ExecutionContext, opts: Parameters<typeof FakeHub.start>[0] = {}): Promise<FakeHub> {
  const fake = await FakeHub.start(opts);
  t.teardown(() => fake.close());
  return fake;
}

/** LS+/LS- lines received on `peer` from frame index `from` on, system-account lines left out. */
function interestLines(peer: LeafPeer, from = 0): string[] {
  return peer.frames
    .slice(from)
    .filter((f) => f.op === 'LS+' || f.op === 'LS-')
    .map((f) => f.line)
    .filter(notSys);
}

// ---------------------------------------------------------------------------------------
// A raw leaf against a real hub

leafTest('a hub sends its leaf INFO at once with what a 2.9.10 leaf requires, and nothing more before CONNECT', HUB, async (t, mix) => {
  t.timeout(60_000);
  const topo = await hubOnly(t, mix);
  const peer = new LeafPeer(await connectSocket(topo.node('hub').leafPort));
  t.teardown(() => peer.close());
  const first = await peer.next((f) => f.op === 'INFO', 10_000, 'INFO');
  t.regex(peer.data(), /^INFO \{.*\} \r\n/, 'INFO {json} then a space before CRLF');
  const info = first.json!;
  t.is(info.version, '2.9.10');
  t.is(info.proto, 1);
  t.is(info.headers, true);
  t.is(info.auth_required, true, 'a leaf INFO always says auth_required');
  t.is(info.max_payload, 1048576);
  t.is(typeof info.server_id, 'string');
  t.is(info.server_name, 'hub');
  t.true(typeof info.client_id === 'number' && info.client_id > 0, 'a non-zero client_id (a Go leaf closes with Incorrect Port otherwise)');
  t.true(typeof info.nonce === 'string' && info.nonce.length > 0);
  t.is(info.info_on_connect, true);
  t.deepEqual(info.leafnode_urls, [`127.0.0.1:${topo.node('hub').leafPort}`]);
  t.is(info.ip, `127.0.0.1:${topo.node('hub').leafPort}`);
  t.false('connect_info' in info);
  t.false('remote_account' in info);
  // A Go hub sends nothing else until CONNECT (no PING, no interest).
  await new Promise((r) => setTimeout(r, 500));
  t.deepEqual(
    peer.frames.map((f) => f.op),
    ['INFO'],
  );
});

leafTest(
  "CONNECT is answered by the connect_info INFO, then the hub's interest dump with its $LDS. subject and queue weights",
  HUB,
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await hubOnly(t, mix);
    const { c } = await rawSession(topo.node('hub').port);
    t.teardown(() => c.close());
    c.send('SUB foo 1\r\nSUB foo 2\r\nSUB bar q1 3\r\nSUB bar q1 4\r\nSUB baz.> q2 5\r\n');
    await c.ping();
    const s = await leafToHub(topo.node('hub').leafPort);
    t.teardown(() => s.peer.close());
    await s.peer.ping();
    const ci = s.connectInfo;
    t.is(ci.connect_info, true);
    t.is(ci.remote_account, '$G');
    t.is(ci.info_on_connect, true);
    t.is(ci.client_id, s.info.client_id, 'the same client_id in both INFOs');
    t.false('nonce' in ci, 'no nonce in the connect_info INFO');
    // The INFO and the dump come without waiting for anything from us: the dump is all before our PONG.
    const dump = interestLines(s.peer);
    const lds = dump.filter((l) => l.startsWith('LS+ $LDS.'));
    t.is(lds.length, 1, `one $LDS. subject (the hub's own): ${dump}`);
    t.regex(lds[0], /^LS\+ \$LDS\.[0-9A-Za-z]{22}$/);
    t.deepEqual(
      dump.filter((l) => !l.startsWith('LS+ $LDS.')).sort(),
      ['LS+ bar q1 2', 'LS+ baz.> q2 1', 'LS+ foo'].sort(),
      'one LS+ per subject, a queue group with its weight',
    );
    const infoAt = s.peer.frames.findIndex((f) => f.op === 'INFO' && f.json?.connect_info === true);
    const firstLs = s.peer.frames.findIndex((f) => f.op === 'LS+');
    t.true(infoAt >= 0 && firstLs > infoAt, 'the connect_info INFO comes before the dump');
  },
);

leafTest(
  'a hub announces interest changes: LS+ on the first subscription, a queue LS+ with the new weight on every change, LS- at zero',
  HUB,
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await hubOnly(t, mix);
    const s = await leafToHub(topo.node('hub').leafPort);
    t.teardown(() => s.peer.close());
    await s.peer.ping();
    const from = s.peer.frames.length;
    const { c } = await rawSession(topo.node('hub').port);
    t.teardown(() => c.close());
    c.send('SUB foo 1\r\nSUB foo 2\r\nSUB bar q1 3\r\nSUB bar q1 4\r\nSUB bar q1 5\r\n');
    await c.ping();
    await s.peer.until(() => (interestLines(s.peer, from).length >= 4 ? true : undefined), 10_000, 'four LS+ lines');
    c.send('UNSUB 3\r\n');
    await c.ping();
    await s.peer.until(() => (interestLines(s.peer, from).length >= 5 ? true : undefined), 10_000, 'the lowered weight');
    c.send('UNSUB 1\r\nUNSUB 2\r\nUNSUB 4\r\nUNSUB 5\r\n');
    await c.ping();
    await s.peer.until(() => (interestLines(s.peer, from).length >= 8 ? true : undefined), 10_000, 'LS- lines');
    await s.peer.ping();
    t.deepEqual(interestLines(s.peer, from), [
      'LS+ foo', // one for both subscriptions on foo
      'LS+ bar q1 1',
      'LS+ bar q1 2',
      'LS+ bar q1 3',
      'LS+ bar q1 2', // a lower weight is still an LS+
      'LS- foo', // one space after LS- (routes have two), no account
      'LS+ bar q1 1',
      'LS- bar q1', // at zero: no weight
    ]);
  },
);

leafTest('a hub sends LMSG with reply and queue sections, and HMSG for a message with headers', HUB, async (t, mix) => {
  t.timeout(60_000);
  const topo = await hubOnly(t, mix);
  const s = await leafToHub(topo.node('hub').leafPort, { subs: ['fromleaf', ['qq', 'grp', 1]] });
  t.teardown(() => s.peer.close());
  const { c } = await rawSession(topo.node('hub').port, { connect: { headers: true } });
  t.teardown(() => c.close());
  await waitInterest(topo, 'hub', ['fromleaf', 'qq']);
  c.send(
    'PUB fromleaf 2\r\nhi\r\nPUB fromleaf _INBOX.r1 2\r\nhi\r\nPUB qq 2\r\nhi\r\nPUB qq rep 2\r\nhi\r\nHPUB fromleaf 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHPUB qq rep 12 14\r\nNATS/1.0\r\n\r\nhi\r\n',
  );
  await c.ping();
  await s.peer.until(() => (s.peer.messages().length >= 6 ? true : undefined), 10_000, 'six messages');
  const lines = s.peer.messages().map((f) => f.line);
  t.deepEqual(lines, [
    'LMSG fromleaf 2',
    'LMSG fromleaf _INBOX.r1 2',
    'LMSG qq | grp 2',
    'LMSG qq + rep grp 2',
    'HMSG fromleaf 12 14',
    'HMSG qq + rep grp 12 14',
  ]);
  t.true(s.peer.data().includes('HMSG fromleaf 12 14\r\nNATS/1.0\r\n\r\nhi\r\n'));
  t.true(s.peer.messages().every((m) => m.payload === 'hi'));
});

leafTest('a hub drops the headers of messages to a leaf that did not say headers:true', HUB, async (t, mix) => {
  t.timeout(60_000);
  const topo = await hubOnly(t, mix);
  const s = await leafToHub(topo.node('hub').leafPort, { connect: { headers: undefined }, subs: ['hs'] });
  t.teardown(() => s.peer.close());
  t.false('headers' in JSON.parse(JSON.stringify(s.connect)));
  const { c } = await rawSession(topo.node('hub').port, { connect: { headers: true } });
  t.teardown(() => c.close());
  await waitInterest(topo, 'hub', ['hs']);
  c.send('HPUB hs 12 14\r\nNATS/1.0\r\n\r\nhi\r\n');
  await c.ping();
  const m = await s.peer.next((f) => f.op === 'LMSG' || f.op === 'HMSG', 10_000, 'the message');
  t.is(m.line, 'LMSG hs 2');
  t.is(m.payload, 'hi');
});

leafTest('messages from a leaf reach hub clients: reply kept, headers kept, queue section honoured', HUB, async (t, mix) => {
  t.timeout(60_000);
  const topo = await hubOnly(t, mix);
  const { c } = await rawSession(topo.node('hub').port, { connect: { headers: true } });
  t.teardown(() => c.close());
  c.send('SUB tohub 1\r\nSUB work wq 2\r\n');
  await c.ping();
  const s = await leafToHub(topo.node('hub').leafPort);
  t.teardown(() => s.peer.close());
  await s.peer.until(() => (s.peer.interest().has('tohub') && s.peer.interest().has('work wq') ? true : undefined), 10_000, 'the hub dump');
  s.peer.msg('tohub', 'a');
  s.peer.msg('tohub', 'b', { reply: '_INBOX.x.1' });
  s.peer.msg('tohub', 'c', { headers: 'NATS/1.0\r\nX-A: 1\r\n\r\n' });
  s.peer.msg('work', 'plain'); // no queue section: plain subscriptions only, so nobody here
  s.peer.msg('work', 'q', { queues: ['wq'] });
  s.peer.msg('work', 'qr', { queues: ['wq'], reply: 'r.1' });
  await s.peer.ping();
  const got = await c.expect(/MSG work 2 r\.1 2\r\nqr\r\n/, 10_000);
  t.is(
    got.replace(/PING\r\n/g, ''),
    [
      'MSG tohub 1 1\r\na\r\n',
      'MSG tohub 1 _INBOX.x.1 1\r\nb\r\n',
      'HMSG tohub 1 20 21\r\nNATS/1.0\r\nX-A: 1\r\n\r\nc\r\n',
      'MSG work 2 1\r\nq\r\n',
      'MSG work 2 r.1 2\r\nqr\r\n',
    ].join(''),
  );
});

leafTest("a hub never echoes a leaf's message back on its own connection", HUB, async (t, mix) => {
  t.timeout(60_000);
  const topo = await hubOnly(t, mix);
  const s = await leafToHub(topo.node('hub').leafPort, { subs: ['echo.x'] });
  t.teardown(() => s.peer.close());
  const hub = await topo.client('hub');
  const got: string[] = [];
  hub.subscribe('echo.x', { callback: (_e, m) => got.push(m.string()) });
  await hub.flush();
  await waitInterest(topo, 'hub', ['echo.x']);
  await s.peer.until(() => (s.peer.interest().has('echo.x') ? true : undefined), 10_000, "the hub's LS+ echo.x");
  s.peer.msg('echo.x', 'from leaf');
  await waitFor(() => got.length === 1, 10_000, 'the hub subscriber');
  hub.publish('echo.x', 'from hub');
  await hub.flush();
  await s.peer.next((f) => f.op === 'LMSG', 10_000, "the hub client's message");
  await s.peer.ping();
  t.deepEqual(
    s.peer.messages().map((m) => m.payload),
    ['from hub'],
    "only the hub client's message comes down",
  );
});

leafTest('a hub answers PING with PONG and pings a leaf about a second after CONNECT', HUB, async (t, mix) => {
  t.timeout(60_000);
  const topo = await hubOnly(t, mix);
  const s = await leafToHub(topo.node('hub').leafPort);
  t.teardown(() => s.peer.close());
  const connectAt = Date.now();
  await s.peer.ping();
  const ping = await s.peer.next((f) => f.op === 'PING', 20_000, "the hub's PING");
  // 1s + 0-20% after CONNECT (a lower bound only: a loaded machine makes it later, never sooner).
  t.true(ping.at - connectAt >= 900, `first PING ${ping.at - connectAt}ms after CONNECT`);
  t.false(s.peer.isClosed());
});

leafTest(
  "a hub does not announce a leaf's own interest back to it, but announces it to its other leafs (with the $LDS. subject)",
  HUB,
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await hubOnly(t, mix);
    const a = await leafToHub(topo.node('hub').leafPort, { name: 'leaf-a', subs: ['only.a', ['qa', 'g', 2]] });
    t.teardown(() => a.peer.close());
    const b = await leafToHub(topo.node('hub').leafPort, { name: 'leaf-b' });
    t.teardown(() => b.peer.close());
    await b.peer.until(
      () => (b.peer.interest().has('only.a') && b.peer.interest().get('qa g') === 2 ? true : undefined),
      10_000,
      "leaf a's interest on leaf b",
    );
    t.true(b.peer.interest().has(a.lds!), "leaf a's $LDS. subject is passed on like any subscription");
    await a.peer.ping();
    await b.peer.ping();
    t.false(a.peer.interest().has('only.a'));
    t.false(a.peer.interest().has('qa g'));
    t.false(a.peer.interest().has(a.lds!), 'its own $LDS. subject never comes back (that would be a loop)');
    t.true(a.peer.interest().has(b.lds!));
  },
);

// ---------------------------------------------------------------------------------------
// A real leaf against a fake hub

leafTest(
  'a leaf sends CONNECT as 2.9.10 does: version, user/pass from the URL, server_id, name, headers; is_hub with hub: true',
  LEAF,
  async (t, mix) => {
    t.timeout(60_000);
    const fake = await startFake(t);
    await leafOfFake(t, mix, fake, { user: 'lu:lp' });
    const peer = await fake.accepted(1);
    const connect = (await peer.next((f) => f.op === 'CONNECT', 10_000, 'CONNECT')).json!;
    t.is(connect.version, '2.9.10');
    t.is(connect.user, 'lu');
    t.is(connect.pass, 'lp');
    t.is(connect.tls_required, false);
    t.is(typeof connect.server_id, 'string');
    t.is(connect.name, 'leaf', 'the server_name');
    t.is(connect.headers, true);
    // A standalone server with remotes takes its server_name as cluster name (and says so in CONNECT).
    t.is(connect.cluster, 'leaf');
    t.false('lang' in connect, 'no lang: that would be a client');
    t.false('gateway' in connect);
    t.false('is_hub' in connect);
    t.regex(peer.data(), /^CONNECT \{.*\}\r\n/);

    const fake2 = await startFake(t);
    await LeafTopology.start(t, [
      { name: 'spoke', impl: mix.leaf, remotes: [{ urls: [`nats-leaf://127.0.0.1:${fake2.port}`], hub: true }] },
    ]);
    const c2 = (await (await fake2.accepted(1)).next((f) => f.op === 'CONNECT', 10_000, 'CONNECT')).json!;
    t.is(c2.is_hub, true);
    t.false('user' in c2);
  },
);

leafTest(
  'a leaf sends its interest dump only after the connect_info INFO: its $LDS. subject and its local interest with weights',
  LEAF,
  async (t, mix) => {
    t.timeout(60_000);
    const fake = await startFake(t);
    const topo = await leafOfFake(t, mix, fake);
    const first = await fake.accepted(1);
    await first.next((f) => f.op === 'LS+' && f.args[0].startsWith('$LDS.'), 10_000, "the leaf's $LDS. subject");
    // Local interest made while connected, then a fresh connection: its dump has all of it.
    const { c } = await rawSession(topo.node('leaf').port);
    t.teardown(() => c.close());
    c.send('SUB foo 1\r\nSUB foo 2\r\nSUB bar q1 3\r\nSUB bar q1 4\r\n');
    await c.ping();
    await first.until(() => (first.interest().get('bar q1') === 2 ? true : undefined), 10_000, 'bar q1 2');
    first.close(); // the leaf redials (1s) and sends a full dump on the new connection
    const second = await fake.accepted(2, 30_000);
    const connectAt = (await second.next((f) => f.op === 'CONNECT', 10_000, 'CONNECT')).at;
    await second.until(
      () => (second.interest().get('bar q1') === 2 && second.interest().has('foo') ? true : undefined),
      10_000,
      'the dump',
    );
    const firstLs = second.frames.find((f) => f.op === 'LS+')!;
    t.true(firstLs.at >= connectAt);
    // Nothing but CONNECT before our connect_info INFO (FakeHub answers at once, in one write).
    const beforeDump = second.frames.slice(0, second.frames.indexOf(firstLs)).map((f) => f.op);
    t.deepEqual(
      beforeDump.filter((op) => op !== 'PING' && op !== 'PONG'),
      ['CONNECT'],
    );
    const dump = interestLines(second).filter((l) => !l.startsWith('LS+ $LDS.'));
    t.deepEqual(dump.sort(), ['LS+ bar q1 2', 'LS+ foo']);
    t.is(interestLines(second).filter((l) => l.startsWith('LS+ $LDS.')).length, 1);
  },
);

leafTest("a leaf announces its clients' interest as it changes, with queue weights and LS- at zero", LEAF, async (t, mix) => {
  t.timeout(60_000);
  const fake = await startFake(t);
  const topo = await leafOfFake(t, mix, fake);
  const peer = await fake.accepted(1);
  await peer.next((f) => f.op === 'LS+' && f.args[0].startsWith('$LDS.'), 10_000, "the leaf's dump");
  await peer.ping();
  const from = peer.frames.length;
  const { c } = await rawSession(topo.node('leaf').port);
  t.teardown(() => c.close());
  c.send('SUB foo 1\r\nSUB bar q1 2\r\nSUB bar q1 3\r\nSUB baz.> q2 4\r\nSUB foo 5\r\n');
  await c.ping();
  await peer.until(() => (interestLines(peer, from).length >= 4 ? true : undefined), 10_000, 'four LS+');
  c.send('UNSUB 3\r\n');
  await c.ping();
  await peer.until(() => (interestLines(peer, from).length >= 5 ? true : undefined), 10_000, 'the new weight');
  c.close();
  await peer.until(() => (interestLines(peer, from).length >= 8 ? true : undefined), 10_000, 'LS- lines');
  t.deepEqual(interestLines(peer, from).slice(0, 5), ['LS+ foo', 'LS+ bar q1 1', 'LS+ bar q1 2', 'LS+ baz.> q2 1', 'LS+ bar q1 1']);
  t.deepEqual(interestLines(peer, from).slice(5).sort(), ['LS- bar q1', 'LS- baz.> q2', 'LS- foo']);
});

leafTest("a leaf sends its clients' messages up as LMSG/HMSG, with a queue section for a group only the hub has", LEAF, async (t, mix) => {
  t.timeout(60_000);
  const fake = await startFake(t, { subs: ['up', ['work', 'wq', 1]] });
  const topo = await leafOfFake(t, mix, fake);
  const peer = await fake.accepted(1);
  const { c } = await rawSession(topo.node('leaf').port, { connect: { headers: true } });
  t.teardown(() => c.close());
  // The fake hub's interest is in place once a probe the leaf learns later also arrives.
  await waitInterest(topo, 'leaf', ['up', 'work']);
  c.send(
    'PUB up 2\r\nhi\r\nPUB up _INBOX.h.1 2\r\nhi\r\nHPUB up 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB work 2\r\nhi\r\nPUB work _INBOX.h.2 2\r\nhi\r\n',
  );
  await c.ping();
  await peer.until(() => (peer.messages().length >= 5 ? true : undefined), 10_000, 'five messages');
  t.deepEqual(
    peer.messages().map((m) => m.line),
    ['LMSG up 2', 'LMSG up _INBOX.h.1 2', 'HMSG up 12 14', 'LMSG work | wq 2', 'LMSG work + _INBOX.h.2 wq 2'],
  );
});

leafTest(
  'a leaf gives a hub LMSG without a queue section to plain subscribers only, and one with it to one member',
  LEAF,
  async (t, mix) => {
    t.timeout(60_000);
    const fake = await startFake(t);
    const topo = await leafOfFake(t, mix, fake);
    const peer = await fake.accepted(1);
    const { c } = await rawSession(topo.node('leaf').port);
    t.teardown(() => c.close());
    c.send('SUB down 1\r\nSUB down g 2\r\nSUB down g 3\r\n');
    await c.ping();
    await peer.until(
      () => (peer.interest().get('down g') === 2 && peer.interest().has('down') ? true : undefined),
      10_000,
      "the leaf's LS+",
    );
    peer.msg('down', 'plain');
    peer.msg('down', 'grouped', { queues: ['g'] });
    peer.msg('down', 'replied', { reply: 'r.9', queues: ['g'] });
    await peer.ping(); // the leaf has handled the three messages, so a client PING comes back behind them
    const got = await c.ping();
    const msgs = [...got.matchAll(/MSG down (\d+) (?:(\S+) )?\d+\r\n(\w+)\r\n/g)].map((m) => ({
      sid: Number(m[1]),
      reply: m[2],
      payload: m[3],
    }));
    t.deepEqual(
      msgs.filter((m) => m.payload === 'plain'),
      [{ sid: 1, reply: undefined, payload: 'plain' }],
      'plain: the plain subscriber only',
    );
    // With a queue section: the plain subscriber, and one member of g.
    t.is(msgs.filter((m) => m.payload === 'grouped').length, 2);
    t.true(msgs.filter((m) => m.payload === 'grouped').some((m) => m.sid === 1));
    t.is(msgs.filter((m) => m.payload === 'replied' && m.sid !== 1).length, 1);
    t.true(msgs.filter((m) => m.payload === 'replied').every((m) => m.reply === 'r.9'));
  },
);

leafTest(
  'a leaf closes a hub whose INFO has no leafnode_urls (or no client_id) without sending CONNECT, and redials',
  LEAF,
  async (t, mix) => {
    t.timeout(60_000);
    const fake = await startFake(t, {
      info: (std, n) => {
        const { leafnode_urls: _u, client_id: _c, ...rest } = std;
        // First connection: no leafnode_urls; second: no client_id; then a proper hub.
        if (n === 1) return { ...rest, client_id: std.client_id };
        if (n === 2) return { ...rest, leafnode_urls: std.leafnode_urls };
        return std;
      },
    });
    const topo = await leafOfFake(t, mix, fake);
    const first = await fake.accepted(1);
    await first.closed(10_000);
    t.false(
      first.frames.some((f) => f.op === 'CONNECT'),
      'no CONNECT to a server that is not a leaf hub',
    );
    const second = await fake.accepted(2, 20_000);
    await second.closed(10_000);
    t.false(second.frames.some((f) => f.op === 'CONNECT'));
    const third = await fake.accepted(3, 20_000);
    await third.next((f) => f.op === 'CONNECT', 10_000, 'CONNECT to a proper hub');
    await topo.node('leaf').srv.waitForLog(/attempted to connect to wrong port/i, 10_000);
    t.pass();
  },
);

leafTest(
  "a leaf that gets no connect_info INFO within 2s sends -ERR 'Stale Leaf Node Connection - Closing' and closes",
  LEAF,
  async (t, mix) => {
    t.timeout(60_000);
    const fake = await startFake(t, { autoHandshake: false });
    await leafOfFake(t, mix, fake);
    const peer = await fake.accepted(1);
    const connect = await peer.next((f) => f.op === 'CONNECT', 10_000, 'CONNECT');
    const err = await peer.next((f) => f.op === '-ERR', 20_000, 'the -ERR');
    t.is(err.line, "-ERR 'Stale Leaf Node Connection - Closing'");
    t.true(err.at - connect.at >= 1500, `after ${err.at - connect.at}ms`);
    await peer.closed(10_000);
    await fake.accepted(2, 20_000); // and it redials
  },
);

leafTest("a leaf pings its hub about a second after the handshake and answers the hub's PING", LEAF, async (t, mix) => {
  t.timeout(60_000);
  const fake = await startFake(t);
  await leafOfFake(t, mix, fake);
  const peer = await fake.accepted(1);
  const connect = await peer.next((f) => f.op === 'CONNECT', 10_000, 'CONNECT');
  await peer.ping();
  const ping = await peer.next((f) => f.op === 'PING', 20_000, "the leaf's PING");
  t.true(ping.at - connect.at >= 800, `first PING ${ping.at - connect.at}ms after CONNECT`);
});

leafTest('a -ERR from the hub is logged by the leaf and does not close the connection', LEAF, async (t, mix) => {
  t.timeout(60_000);
  const fake = await startFake(t);
  const topo = await leafOfFake(t, mix, fake);
  const peer = await fake.accepted(1);
  await peer.next((f) => f.op === 'LS+', 10_000, "the leaf's dump");
  peer.send("-ERR 'something odd'\r\n");
  await topo.node('leaf').srv.waitForLog(/Leafnode Error 'something odd'/, 10_000);
  await peer.ping();
  t.false(peer.isClosed());
  t.is(fake.connections.length, 1);
});

leafTest("a hub refuses a leaf whose cluster name is its own with -ERR 'remote leafnode has same cluster name'", HUB, async (t, mix) => {
  t.timeout(60_000);
  const topo = await LeafTopology.start(t, [{ name: 'hub', impl: mix.hub, accept: true, cluster: 'H' }]);
  const cluster = topo.clusterNames.get('H')!;
  const err = await leafToHub(topo.node('hub').leafPort, { connect: { cluster } }).then(
    () => undefined,
    (e: Error) => e,
  );
  t.regex(String(err?.message), /-ERR 'remote leafnode has same cluster name'/);
  const ok = await leafToHub(topo.node('hub').leafPort, { connect: { cluster: 'another' } });
  t.teardown(() => ok.peer.close());
  t.is(ok.connectInfo.connect_info, true);
  t.is(ok.connectInfo.cluster, cluster, 'a clustered hub names its cluster in the leaf INFO');
});

leafTest(
  "a hub evicts the older of two leaf connections with the same name and cluster with -ERR 'Duplicate Remote LeafNode Connection'",
  HUB,
  async (t, mix) => {
    t.timeout(60_000);
    const topo = await hubOnly(t, mix);
    const older = await leafToHub(topo.node('hub').leafPort, { name: 'twin', connect: { cluster: 'twins' } });
    t.teardown(() => older.peer.close());
    const newer = await leafToHub(topo.node('hub').leafPort, { name: 'twin', connect: { cluster: 'twins' } });
    t.teardown(() => newer.peer.close());
    const err = await older.peer.next((f) => f.op === '-ERR', 10_000, 'the eviction');
    t.is(err.line, "-ERR 'Duplicate Remote LeafNode Connection'");
    await older.peer.closed(10_000);
    await newer.peer.ping();
    t.false(newer.peer.isClosed(), 'the newer connection stays');
  },
);

leafTest(
  'a hub sends its leafs a new INFO with every leafnode_urls when a cluster peer with a leaf port joins (no client_id, no nonce)',
  HUB,
  async (t, mix) => {
    t.timeout(90_000);
    const topo = await LeafTopology.start(t, [{ name: 'h1', impl: mix.hub, accept: true, cluster: 'H' }]);
    const s = await leafToHub(topo.node('h1').leafPort);
    t.teardown(() => s.peer.close());
    t.deepEqual(s.connectInfo.leafnode_urls, [`127.0.0.1:${topo.node('h1').leafPort}`]);
    const from = s.peer.frames.length;
    // h2 joins the cluster, with a leaf port of its own.
    await topo.addNode({ name: 'h2', impl: mix.hub, accept: true, cluster: 'H' });
    const info = await s.peer.waitFor(
      (f, i) => i >= from && f.op === 'INFO' && ((f.json?.leafnode_urls as string[] | undefined)?.length ?? 0) === 2,
      30_000,
      'the INFO with both leaf URLs',
    );
    t.false('client_id' in info.json!);
    t.false('nonce' in info.json!);
    t.false('connect_info' in info.json!);
    t.is(info.json!.info_on_connect, true);
    t.true((info.json!.leafnode_urls as string[]).includes(`127.0.0.1:${topo.node('h1').leafPort}`));
  },
);
