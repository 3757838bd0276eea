// Reliability of a supercluster: kill one server of a cluster while traffic flows (the other
// servers keep serving, the remote clusters' outbounds move to the survivors, interest resyncs
// when it returns), and a whole remote cluster that dies and comes back.
//
// Spec for issue 7: each test runs once per topology variant (all nats-server, all skein,
// one cluster of each, clusters that mix both; test/helpers/supercluster.ts).

import { connect, type NatsConnection } from 'nats';
import { interestSeen, uid } from './helpers/cluster.ts';
import { ALL_VARIANTS, Supercluster, eventually, gatewayTest } from './helpers/supercluster.ts';

/** Publishes `subject` with an increasing sequence number every few ms until stopped. */
function flow(nc: NatsConnection, subject: string): { stop(): void; sent(): number } {
  let seq = 0;
  let stopped = false;
  const tick = () => {
    if (stopped || nc.isClosed()) return;
    for (let i = 0; i < 5; i++) nc.publish(subject, String(seq++));
    setTimeout(tick, 5);
  };
  tick();
  return {
    stop: () => {
      stopped = true;
    },
    sent: () => seq,
  };
}

gatewayTest(
  'killing the server a remote outbound lands on: the outbound moves to a survivor while traffic flows, and interest resyncs when it returns',
  ALL_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [2, 1], leasePorts: true });
    const b = sc.server(1, 0);
    const [A] = sc.names;
    const landing = async () => (await sc.gatewayz(b)).outbound_gateways[A]?.connection?.port;
    const port = await landing();
    const victim = sc.servers[0].findIndex((g) => g.gatewayPort === port);
    t.true(victim >= 0, `B's outbound to A lands on a server of A (port ${port})`);
    const survivor = 1 - victim;

    const subject = `flow.${uid()}`;
    const onSurvivor: number[] = [];
    const survivorNc = await sc.client(0, survivor);
    survivorNc.subscribe(subject, { callback: (_e, m) => onSurvivor.push(Number(m.string())) });
    // A client of the victim that reconnects to it when it returns (same leased port).
    const victimNc = await connect({
      servers: `127.0.0.1:${sc.server(0, victim).port}`,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
    });
    t.teardown(() => victimNc.close());
    const onVictim: number[] = [];
    victimNc.subscribe(subject, { callback: (_e, m) => onVictim.push(Number(m.string())) });
    const pub = await sc.client(1, 0);
    await interestSeen(survivorNc, [pub]);
    await interestSeen(victimNc, [pub]);
    const f = flow(pub, subject);
    t.teardown(() => f.stop());
    await eventually('traffic on both servers of A', () => onSurvivor.length > 50 && onVictim.length > 50);

    await sc.kill(0, victim);
    const killedAt = f.sent();
    await eventually("B's outbound to A on the survivor", async () => (await landing()) === sc.server(0, survivor).gatewayPort, 30_000);
    await eventually('traffic again on the survivor', () => onSurvivor.some((n) => n > killedAt + 100), 30_000);
    // The rest keeps serving: B to the survivor is shown above; the survivor to B as well.
    const back = `back.${uid()}`;
    const onB: string[] = [];
    pub.subscribe(back, { callback: (_e, m) => onB.push(m.string()) });
    await interestSeen(pub, [survivorNc]);
    survivorNc.publish(back, 'from the survivor');
    await eventually('the survivor to B', () => onB.length === 1);

    await sc.startServer(0, victim);
    await sc.waitConnected();
    const restartedAt = f.sent();
    await eventually("the victim's client back, its subscription known to B again", () => onVictim.some((n) => n > restartedAt), 60_000);
    f.stop();
    // No message twice on either server, through all of it.
    t.is(new Set(onSurvivor).size, onSurvivor.length, 'no duplicate on the survivor');
    t.is(new Set(onVictim).size, onVictim.length, 'no duplicate on the victim');
    t.deepEqual(onB, ['from the survivor']);
  },
);

gatewayTest(
  'a whole remote cluster that dies is dialled again when it returns, and interest resyncs both ways',
  ALL_VARIANTS,
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1, 1], leasePorts: true, gateways: (c) => [1 - c] });
    const a = await sc.client(0, 0);
    const toA = `to.a.${uid()}`;
    const gotA: string[] = [];
    a.subscribe(toA, { callback: (_e, m) => gotA.push(m.string()) });
    await a.flush();

    await sc.kill(1, 0);
    await eventually(
      'A without B',
      async () => {
        const z = await sc.gatewayz(sc.server(0, 0));
        return Object.keys(z.outbound_gateways).length === 0 && Object.keys(z.inbound_gateways).length === 0;
      },
      30_000,
    );
    t.pass('A dropped the dead cluster');

    await sc.startServer(1, 0);
    await sc.waitConnected();
    const b = await sc.client(1, 0);
    // A's subscription, made before B came back, reaches B with the registration burst.
    await eventually(
      'B to A',
      async () => {
        b.publish(toA, 'hello A');
        await b.flush();
        return gotA.includes('hello A');
      },
      30_000,
      100,
    );
    // B's new subscription reaches A.
    const toB = `to.b.${uid()}`;
    const gotB: string[] = [];
    b.subscribe(toB, { callback: (_e, m) => gotB.push(m.string()) });
    await interestSeen(b, [a]);
    a.publish(toB, 'hello B');
    await eventually('A to B', () => gotB.includes('hello B'));
    t.deepEqual(gotB, ['hello B']);
  },
);

gatewayTest(
  'a crashed gateway thread is replaced: its gateways come back and interest resyncs both ways',
  ['skein', 'skein+nats-server'],
  async (t, variant) => {
    const sc = await Supercluster.start(t, { variant, sizes: [1, 1], skeinEnv: { SKEIN_FAULT_INJECTION: '1' } });
    const [a, b] = [await sc.client(0, 0), await sc.client(1, 0)];
    const id = uid();
    // Interest made before the crash, on both sides, must survive it.
    const onA: string[] = [];
    const onB: string[] = [];
    a.subscribe(`toA.${id}`, { callback: (_e, m) => onA.push(m.string()) });
    b.subscribe(`toB.${id}`, { callback: (_e, m) => onB.push(m.string()) });
    await interestSeen(a, [b]);
    await interestSeen(b, [a]);
    // With SKEIN_FAULT_INJECTION=1, a PUB to $SKEIN.FAULT.CRASH.GATEWAY makes A's gateway thread throw.
    a.publish('$SKEIN.FAULT.CRASH.GATEWAY');
    await a.flush();
    const srv = sc.server(0, 0).srv;
    await srv.waitForLog(/Gateway thread failed[\s\S]*fault injection: gateway thread crash requested/, 20_000);
    await srv.waitForLog(/Gateway thread replaced and ready/, 20_000);
    await sc.waitConnected();
    await eventually(
      'both directions again',
      async () => {
        a.publish(`toB.${id}`, 'from A');
        b.publish(`toA.${id}`, 'from B');
        await Promise.all([a.flush(), b.flush()]);
        return onA.length > 0 && onB.length > 0;
      },
      30_000,
      200,
    );
    // New interest still crosses.
    const late: string[] = [];
    a.subscribe(`late.${id}`, { callback: (_e, m) => late.push(m.string()) });
    await interestSeen(a, [b]);
    b.publish(`late.${id}`, 'hi');
    await eventually('a message to a subscription made after the crash', () => late.length === 1);
    t.deepEqual(late, ['hi']);
  },
);
