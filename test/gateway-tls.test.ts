// Gateways over TLS (gateway.tls, gateway.gateways[].tls): as for routes, both sides present a
// certificate and verify the peer's against ca_file (nats-server forces it), and the handshake
// comes first on the connection; a remote gateway entry without its own tls uses the gateway
// block's. A gateway whose certificate the other side does not trust is refused.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import net from 'node:net';
import type { NatsConnection } from 'nats';
import { checkPubSub } from './helpers/cluster.ts';
import { certs } from './helpers/certs.ts';
import { ALL_VARIANTS, SINGLE_VARIANTS, Supercluster, eventually, gatewayTest } from './helpers/supercluster.ts';

function tlsBlock(which: 'good' | 'rogue' = 'good'): string {
  const c = certs();
  const [cert, key] = which === 'good' ? [c.serverCert, c.serverKey] : [c.rogueCert, c.rogueKey];
  return `tls { cert_file: "${cert}", key_file: "${key}", ca_file: "${c.ca}", timeout: 3 }`;
}

gatewayTest('gateways with TLS on every server connect, gossip and carry messages', ALL_VARIANTS, async (t, variant) => {
  const sc = await Supercluster.start(t, { variant, sizes: [2, 1, 1], gatewayBlock: () => tlsBlock() });
  t.deepEqual(await sc.connectionCounts(), { outbound: 8, inbound: 8 });
  const ncs: NatsConnection[] = [];
  for (const g of sc.all) ncs.push(await sc.client(g.cluster, g.index));
  await checkPubSub(t, ncs);
});

gatewayTest(
  'the TLS handshake comes first on a gateway connection: a plaintext dialler gets no INFO',
  SINGLE_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1], gatewayBlock: () => tlsBlock() });
    const a = sc.server(0, 0);
    const sock = net.connect({ host: '127.0.0.1', port: a.gatewayPort });
    t.teardown(() => sock.destroy());
    let got = '';
    sock.on('data', (d) => {
      got += d.toString('latin1');
    });
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write('CONNECT {"gateway":"X"}\r\n');
    await closed;
    t.notRegex(got, /INFO/, 'nothing in plaintext');
    t.truthy(await a.srv.waitForLog(/\[ERR\] .* - gid:\d+ - TLS gateway handshake error: /));
  },
);

gatewayTest(
  'a gateway whose certificate the other side does not trust is refused, and the rest of the supercluster carries on',
  ALL_VARIANTS,
  async (t, variant) => {
    // C presents a certificate from another CA: A and B refuse it; A and B connect.
    const sc = await Supercluster.start(t, {
      variant,
      sizes: [1, 1, 1],
      waitConnected: false,
      gatewayBlock: (c) => tlsBlock(c === 2 ? 'rogue' : 'good'),
    });
    const [a, b, c] = [sc.server(0, 0), sc.server(1, 0), sc.server(2, 0)];
    await eventually('A and B connected', async () => {
      const [za, zb] = [await sc.gatewayz(a), await sc.gatewayz(b)];
      return Object.keys(za.outbound_gateways).join() === sc.names[1] && Object.keys(zb.outbound_gateways).join() === sc.names[0];
    });
    await a.srv.waitForLog(/\[ERR\] .* - gid:\d+ - TLS gateway handshake error: /, 30_000);
    const zc = await sc.gatewayz(c);
    t.deepEqual(Object.keys(zc.outbound_gateways), [], 'C has no gateway');
    t.deepEqual(Object.keys((await sc.gatewayz(a)).inbound_gateways), [sc.names[1]], 'A holds no inbound from C');
  },
);
