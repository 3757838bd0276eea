// How routes start: a persistent cluster-name mismatch is logged once and its re-dials back
// off (nats-server 2.9.10 logs it and re-dials every second, forever), and two skein servers
// that dial each other keep the same one of the two routes instead of closing both (2.9.10
// closes both and re-dials a second later). Raw sockets pose as the peer, so the order of
// events is the test's to choose.

import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { rawConnect, type RawClient } from './helpers/raw.ts';
import { useServer, type ServerHandle } from './helpers/server.ts';
import { waitFor } from './helpers/cluster.ts';

const SKEIN_GO = 'skein 0.1.0 (node v24.21.0)';

function routeInfo(id: string, cluster: string, extra: Record<string, unknown> = {}): string {
  return `INFO ${JSON.stringify({ server_id: id, server_name: id.slice(0, 8), version: '2.9.10', proto: 2, host: '127.0.0.1', port: 1, headers: true, max_payload: 1048576, cluster, ...extra })}\r\n`;
}

function routeConnect(id: string, cluster: string): string {
  return `CONNECT ${JSON.stringify({ echo: true, verbose: false, pedantic: false, tls_required: false, headers: true, name: id, cluster })}\r\n`;
}

/** A listener posing as a route peer: every socket a server dials to it, with what it sent. */
interface FakePeer {
  port: number;
  sockets: { socket: net.Socket; received: () => string; closed: () => boolean }[];
}

async function fakePeer(t: ExecutionContext, onDial: (socket: net.Socket) => void): Promise<FakePeer> {
  const peer: FakePeer = { port: 0, sockets: [] };
  const server = net.createServer((socket) => {
    let received = '';
    let closed = false;
    socket.on('data', (d) => {
      received += d.toString('latin1');
    });
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => {});
    peer.sockets.push({ socket, received: () => received, closed: () => closed });
    onDial(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of peer.sockets) s.socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  peer.port = (server.address() as net.AddressInfo).port;
  return peer;
}

async function clusterPortOf(srv: ServerHandle): Promise<number> {
  return Number((await srv.waitForLog(/Listening for route connections on 127\.0\.0\.1:(\d+)/))[1]);
}

function count(text: string, re: RegExp): number {
  return text.split('\n').filter((l) => re.test(l)).length;
}

test('a solicited route with another cluster name: logged once, re-dials back off 1s, 2s, 4s', async (t) => {
  t.timeout(60_000);
  const peer = await fakePeer(t, (socket) => socket.write(routeInfo('NOTHERCLUSTER', 'other', { go: SKEIN_GO })));
  const srv = await useServer(t, {
    impl: 'skein',
    workers: 1,
    args: ['-D', '--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'skein', '--routes', `nats://127.0.0.1:${peer.port}`],
  });
  await waitFor(() => count(srv.output(), /re-dialling in \d+ ms/) >= 3, 30_000, 'three re-dials');
  // The delays are what the server chose (jitter below 100 ms), not measured times.
  const delays = [...srv.output().matchAll(/re-dialling in (\d+) ms/g)].map((m) => Number(m[1]));
  t.true(delays[0] >= 1000 && delays[0] < 1100, String(delays));
  t.true(delays[1] >= 2000 && delays[1] < 2100, String(delays));
  t.true(delays[2] >= 4000 && delays[2] < 4100, String(delays));
  const out = srv.output();
  t.is(count(out, /\[ERR\] .*Cluster name "other" of remote server "NOTHERCLUSTER" does not match "skein"/), 1, out);
  t.is(count(out, /\[DBG\] .*Cluster name "other" of remote server "NOTHERCLUSTER" does not match "skein"/), peer.sockets.length - 1, out);
  t.is(
    count(out, new RegExp(`\\[INF\\] 127\\.0\\.0\\.1:${peer.port} - rid:\\d+ - (Route connection created|Router connection closed)`)),
    2,
    out,
  );
});

test('routes accepted from a server with another cluster name: each refused, logged once', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, {
    impl: 'skein',
    workers: 1,
    args: ['-D', '--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'skein'],
  });
  const clusterPort = await clusterPortOf(srv);
  for (let i = 0; i < 3; i++) {
    const r = await rawConnect(clusterPort);
    t.teardown(() => r.close());
    await r.expect(/^INFO \{.*\} \r\n/);
    r.send(routeConnect('NOTHERCLUSTER', 'other') + routeInfo('NOTHERCLUSTER', 'other'));
    await r.expect(`-ERR 'Rejecting connection, cluster name "other" does not match "skein"'\r\n`);
    await r.closed(10_000);
    await srv.waitForLog(new RegExp(`(?:[^]*Router connection closed: Cluster Name Conflict){${i + 1}}`));
  }
  const out = srv.output();
  t.is(count(out, /\[ERR\] .*Rejecting connection, cluster name "other" does not match "skein"/), 1, out);
  t.is(count(out, /\[DBG\] .*Rejecting connection, cluster name "other" does not match "skein"/), 2, out);
  t.is(count(out, /\[INF\] .*(Route connection created|Router connection closed)/), 2, out);
});

/**
 * skein dials the fake peer (route X) and registers it; then the peer dials skein (route Y),
 * as two servers started together do. Returns whether X and Y are still open afterwards.
 */
async function dialEachOther(t: ExecutionContext, peerId: string, go: string): Promise<{ x: boolean; y: boolean }> {
  const peer = await fakePeer(t, (socket) => socket.write(routeInfo(peerId, 'skein', { go })));
  const srv = await useServer(t, {
    impl: 'skein',
    workers: 1,
    args: ['-D', '--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'skein', '--routes', `nats://127.0.0.1:${peer.port}`],
  });
  const clusterPort = await clusterPortOf(srv);
  await srv.waitForLog(new RegExp(`127\\.0\\.0\\.1:${peer.port} - rid:\\d+ - Registering remote route "${peerId}"`));
  const x = peer.sockets[0];
  const y: RawClient = await rawConnect(clusterPort);
  t.teardown(() => y.close());
  await y.expect(/^INFO \{.*\} \r\n/);
  y.send(routeConnect(peerId, 'skein') + routeInfo(peerId, 'skein', { go }));
  await srv.waitForLog(/Router connection closed: Duplicate Route/);
  await waitFor(() => x.closed() || y.isClosed(), 15_000, 'the duplicate to close');
  // The survivor still answers (the server has not closed it a moment later).
  if (!y.isClosed()) await y.ping().catch(() => undefined);
  return { x: !x.closed(), y: !y.isClosed() };
}

test('two skein servers dialling each other both keep the route dialled by the smaller server id', async (t) => {
  t.timeout(60_000);
  // Server ids start with N: a peer id starting with A is smaller, one with Z larger.
  t.deepEqual(await dialEachOther(t, 'A'.repeat(56), SKEIN_GO), { x: false, y: true }, 'keeps the route the peer dialled');
  t.deepEqual(await dialEachOther(t, 'Z'.repeat(56), SKEIN_GO), { x: true, y: false }, 'keeps the route it dialled');
});

test('with a nats-server peer the first registered route wins, as in 2.9.10', async (t) => {
  t.timeout(60_000);
  t.deepEqual(await dialEachOther(t, 'A'.repeat(56), 'go1.19.8'), { x: true, y: false });
});
