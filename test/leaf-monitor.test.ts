// Leaf connections seen from the monitoring port, and over TLS (protocol.md §8.11): /varz counts
// them in `leafnodes` (never in `routes` or `connections`) and describes the block in `leaf` with
// nats-server's names; /metrics has gnatsd_leafz_conn_nodes_total; skein's live page data
// (/skeinz) lists each leaf connection. TLS: the hub's INFO stays plaintext with tls_required,
// the leaf's remote `tls { ca_file }` verifies the hub, and the chain carries messages.

import { checkPubSub } from './helpers/cluster.ts';
import { certs } from './helpers/certs.ts';
import { getJson } from './helpers/monitor.ts';
import { LeafTopology, leafTest } from './helpers/leaf.ts';
import { connectSocket, LeafPeer } from './helpers/leafpeer.ts';

leafTest(
  "/varz counts leaf connections in leafnodes and describes the leafnodes block with nats-server's names",
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(90_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true },
      { name: 'leaf', impl: mix.leaf, remotes: ['hub'] },
    ]);
    await topo.waitConnected();
    const hub = await getJson(topo.node('hub').monitorPort, '/varz');
    const leaf = await getJson(topo.node('leaf').monitorPort, '/varz');
    t.is(hub.leafnodes, 1);
    t.is(leaf.leafnodes, 1);
    t.is(hub.routes, 0, 'a leaf connection is not a route');
    t.is(hub.connections, 0, 'nor a client');
    t.deepEqual(hub.leaf, { host: '127.0.0.1', port: topo.node('hub').leafPort, auth_timeout: 2, tls_timeout: 2 });
    t.deepEqual(leaf.leaf, { remotes: [{ local_account: '$G', urls: [`127.0.0.1:${topo.node('hub').leafPort}`] }] });
  },
);

leafTest(
  '/metrics and the live page data show the leaf connections',
  ['hub'],
  async (t, mix) => {
    t.timeout(90_000);
    const topo = await LeafTopology.start(t, [
      { name: 'hub', impl: mix.hub, accept: true },
      { name: 'leaf', impl: 'skein', remotes: ['hub'] },
    ]);
    await topo.waitConnected();
    if (mix.hub === 'skein') {
      // (nats-server has no /metrics: prometheus-nats-exporter makes this series from /leafz.)
      const res = await fetch(`http://127.0.0.1:${topo.node('hub').monitorPort}/metrics`);
      t.regex(await res.text(), /^gnatsd_leafz_conn_nodes_total\{server_id="\w+"\} 1$/m);
    }
    const live = await getJson(topo.node('leaf').monitorPort, '/skeinz');
    const leafs = live.leafs as { is_spoke: boolean; port: number; name: string }[];
    t.is(leafs.length, 1);
    t.true(leafs[0].is_spoke, 'seen from the leaf, the peer is its hub');
    t.is(leafs[0].port, topo.node('hub').leafPort);
    t.is(leafs[0].name, 'hub');
  },
  [{ hub: 'skein' }, { hub: 'nats-server' }],
);

leafTest(
  "leaf connections over TLS: the hub's INFO is plaintext with tls_required, the leaf verifies the hub, messages flow",
  ['hub', 'leaf'],
  async (t, mix) => {
    t.timeout(90_000);
    const c = certs();
    const topo = await LeafTopology.start(t, [
      {
        name: 'hub',
        impl: mix.hub,
        accept: true,
        leafConfig: `tls { cert_file: "${c.serverCert}", key_file: "${c.serverKey}", timeout: 3 }`,
      },
      { name: 'leaf', impl: mix.leaf, remotes: [{ to: 'hub', extra: `tls { ca_file: "${c.ca}", timeout: 3 }` }] },
    ]);
    await topo.waitConnected();
    await checkPubSub(t, [await topo.client('hub'), await topo.client('leaf')]);
    const peer = new LeafPeer(await connectSocket(topo.node('hub').leafPort));
    t.teardown(() => peer.close());
    const info = await peer.next((f) => f.op === 'INFO', 10_000, 'INFO');
    t.is(info.json?.tls_required, true);
  },
);
