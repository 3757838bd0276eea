// Lame duck mode (SIGUSR2, `--signal ldm`): stop accepting clients, tell clients (INFO
// ldm:true with the other servers' URLs) and routes, close the clients after the grace
// period spread over lame_duck_duration, then exit 0. Checked against nats-server 2.9.10,
// and with the nats v2 client failing over to the other server of a 2-server cluster.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { connect, Events } from 'nats';
import { rawConnect, rawSession } from './helpers/raw.ts';
import { repoRoot } from './helpers/server.ts';
import { exitOf, signalAndWait, tempDir, useConfServer } from './helpers/ops.ts';
import { TestCluster, meshReady, uid, waitFor } from './helpers/cluster.ts';

// nats-server's minimum duration; a short grace period keeps the tests short.
const LDM = 'lame_duck_duration: "30s"\nlame_duck_grace_period: "1s"\n';

function infoOf(line: string): Record<string, unknown> {
  return JSON.parse(line.slice(5).trim()) as Record<string, unknown>;
}

test.serial(
  'lame duck mode: no new clients, INFO ldm:true to clients that take async INFO, clients closed, exit 0 (as nats-server)',
  async (t) => {
    t.timeout(90_000);
    const seen: Record<string, unknown> = {};
    for (const impl of ['skein', 'nats-server'] as const) {
      const { srv } = await useConfServer(t, impl, LDM, { args: ['-m', '-1'] });
      const monitorPort = Number((await srv.waitForLog(/Starting http monitor on 127\.0\.0\.1:(\d+)/))[1]);
      const healthz = async (): Promise<string> => {
        const r = await fetch(`http://127.0.0.1:${monitorPort}/healthz`);
        return `${r.status} ${JSON.stringify(await r.json())}`;
      };
      const before = await healthz();
      // A protocol-1 client past its first PONG gets the async INFO; a protocol-0 one does not.
      const { c: p1 } = await rawSession(srv.port, { connect: { protocol: 1 } });
      const { c: p0 } = await rawSession(srv.port, { connect: { protocol: 0 } });
      t.teardown(() => {
        p1.close();
        p0.close();
      });
      process.kill(srv.pid, 'SIGUSR2');
      const info = infoOf(await p1.expect(/INFO \{.*\} \r\n/, 10_000));
      await srv.waitForLog(/\[INF\] Entering lame duck mode, stop accepting new clients/);
      // No client listener: /healthz says so (a Kubernetes readiness probe takes the pod out).
      let during = await healthz();
      for (const deadline = Date.now() + 5000; !during.startsWith('503') && Date.now() < deadline;) during = await healthz();
      // The listener is closed at once.
      await t.throwsAsync(
        async () => {
          const c = await rawConnect(srv.port);
          c.close();
        },
        undefined,
        `${impl} refuses new clients`,
      );
      await srv.waitForLog(/\[INF\] Closing existing clients/, 10_000);
      await Promise.all([p1.closed(10_000), p0.closed(10_000)]);
      t.is(await exitOf(srv), 0, impl);
      t.false(p1.data().includes('-ERR') || p0.data().includes('-ERR'), 'no -ERR on close');
      t.false(p0.data().includes('"ldm"'), 'a protocol-0 client gets no async INFO');
      seen[impl] = { ldm: info.ldm, connect_urls: info.connect_urls ?? null, before, during };
    }
    t.like(seen.skein, { ldm: true, connect_urls: null, before: '200 {"status":"ok"}' });
    t.regex(String((seen.skein as { during: string }).during), /^503 /);
    t.deepEqual(seen.skein, seen['nats-server']);
  },
);

test.serial("lame duck mode with no clients exits at once; --signal ldm=<pid file> as the Helm chart's preStop hook", async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  const pidFile = path.join(dir, 'nats.pid');
  const { srv: s2 } = await useConfServer(t, 'skein', LDM, { args: ['-P', pidFile] });
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'src', 'main.ts'), '--signal', `ldm=${pidFile}`], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.is(r.status, 0, r.stderr);
  await s2.waitForLog(/Entering lame duck mode/);
  t.is(await exitOf(s2), 0);
  t.false(fs.existsSync(pidFile), 'pid file removed');
});

test.serial('SIGTERM is ignored in lame duck mode; SIGINT still stops the server at once', async (t) => {
  t.timeout(60_000);
  const { srv } = await useConfServer(t, 'skein', 'lame_duck_duration: "30s"\nlame_duck_grace_period: "20s"\n', { args: ['-D'] });
  const { c } = await rawSession(srv.port, { connect: { protocol: 1 } });
  t.teardown(() => c.close());
  await signalAndWait(srv, 'SIGUSR2', /Entering lame duck mode/);
  await signalAndWait(srv, 'SIGTERM', /Trapped "terminated" signal/);
  await c.ping();
  t.false(srv.output().includes('Initiating Shutdown'));
  process.kill(srv.pid, 'SIGINT');
  t.is(await exitOf(srv), 0);
  await c.closed(10_000);
});

test.serial('in a 2-server cluster the nats client gets ldm, is closed, and reconnects to the other server', async (t) => {
  t.timeout(120_000);
  const cl = await TestCluster.start(
    t,
    [
      { impl: 'skein', name: 'a' },
      { impl: 'skein', name: 'b' },
    ],
    { config: LDM },
  );
  const [a, b] = cl.nodes;
  const ncs = await cl.clients(t);
  await meshReady(ncs);
  // A raw protocol-1 client on b sees a's URL leave its connect_urls.
  const { c: watcher } = await rawSession(b.port, { connect: { protocol: 1 } });
  t.teardown(() => watcher.close());
  const urlA = `127.0.0.1:${a.port}`;
  const urlB = `127.0.0.1:${b.port}`;

  const nc = await connect({ servers: [urlA], reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  t.teardown(() => nc.close());
  await waitFor(() => (nc.info?.connect_urls ?? []).includes(urlB), 10_000, 'the client to learn b from connect_urls');
  const events: string[] = [];
  void (async () => {
    for await (const s of nc.status()) events.push(`${s.type}`);
  })();
  const id = uid();
  const got: string[] = [];
  ncs[1].subscribe(`after.${id}`, { callback: (_e, m) => got.push(m.string()) });
  await ncs[1].flush();

  process.kill(a.srv.pid, 'SIGUSR2');
  await waitFor(() => events.includes(Events.LDM), 10_000, 'the ldm status');
  // b's clients get an INFO without a's URL once a's route INFO says ldm.
  await waitFor(
    () => {
      const infos = watcher.data().match(/INFO \{.*\} \r\n/g) ?? [];
      const last = infos.at(-1);
      return last !== undefined && !((infoOf(last).connect_urls as string[] | undefined) ?? []).includes(urlA);
    },
    10_000,
    'b to drop a from connect_urls',
  );
  await waitFor(() => events.includes(Events.Reconnect), 30_000, 'the client to reconnect');
  t.is(nc.getServer(), urlB);
  nc.publish(`after.${id}`, 'hello from the moved client');
  await nc.flush();
  await waitFor(() => got.length === 1, 10_000, 'a message after the reconnect');
  t.deepEqual(got, ['hello from the moved client']);
  t.is(await exitOf(a.srv), 0);
  // Told first, closed after the grace period.
  t.true(events.indexOf(Events.LDM) < events.indexOf(Events.Disconnect), events.join(' '));
});

test.serial('a nats-server peer sees a skein server enter lame duck mode', async (t) => {
  t.timeout(90_000);
  const cl = await TestCluster.start(
    t,
    [
      { impl: 'skein', name: 's1' },
      { impl: 'nats-server', name: 'n1' },
    ],
    { config: LDM },
  );
  const [s1, n1] = cl.nodes;
  const ncs = await cl.clients(t);
  await meshReady(ncs);
  const { c } = await rawSession(n1.port, { connect: { protocol: 1 } });
  t.teardown(() => c.close());
  const urlS1 = `127.0.0.1:${s1.port}`;
  await waitFor(() => c.data().includes(urlS1), 10_000, 'n1 to advertise s1');
  const from = c.data().length;
  process.kill(s1.srv.pid, 'SIGUSR2');
  await waitFor(
    () => {
      const infos =
        c
          .data()
          .slice(from)
          .match(/INFO \{.*\} \r\n/g) ?? [];
      return infos.some((i) => !((infoOf(i).connect_urls as string[] | undefined) ?? []).includes(urlS1));
    },
    15_000,
    'n1 to drop s1 from connect_urls',
  );
  t.pass();
});
