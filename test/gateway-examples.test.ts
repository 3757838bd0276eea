// The supercluster example in config/ (supercluster-{a1,a2,b1,b2,c1}.conf): three clusters on
// one machine where only some gateways are configured. Both skein -t and nats-server -t accept
// every file; started as written (only their ports moved to leased ones, since other servers
// may hold the real ones) on nats-server, on skein and mixed, the five form the full mesh.

import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { connect, type NatsConnection } from 'nats';
import { checkPubSub } from './helpers/cluster.ts';
import { leasePort, type PortLease } from './helpers/ports.ts';
import { repoRoot, startServer, type Impl, type ServerHandle } from './helpers/server.ts';
import { eventually, gatewayMeshProblems, gatewayTest } from './helpers/supercluster.ts';

const configDir = path.join(repoRoot, 'config');
const files = fs
  .readdirSync(configDir)
  .filter((f) => /^supercluster-.*\.conf$/.test(f))
  .sort();
const launcher = path.join(repoRoot, 'src', 'launcher.cjs');

function skeinCheck(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [launcher, '-t', '-c', file], { cwd: repoRoot, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('the supercluster example has five servers: A (2), B (2), C (1)', (t) => {
  t.deepEqual(files, [
    'supercluster-a1.conf',
    'supercluster-a2.conf',
    'supercluster-b1.conf',
    'supercluster-b2.conf',
    'supercluster-c1.conf',
  ]);
  const names = files.map((f) => /gateway \{\s*name: (\w+)/.exec(fs.readFileSync(path.join(configDir, f), 'utf8'))?.[1]);
  t.deepEqual(names, ['A', 'A', 'B', 'B', 'C']);
});

for (const file of files) {
  test(`skein -t and nats-server -t accept config/${file}`, async (t) => {
    t.timeout(30_000);
    const r = await skeinCheck(`config/${file}`);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `skein: configuration file config/${file} is valid\n`);
    const n = spawnSync('nats-server', ['-t', '-c', path.join(configDir, file)], { encoding: 'utf8' });
    t.is(n.status, 0, n.stderr);
  });
}

test('only some gateways are configured in the example: the others must come from gossip', (t) => {
  const listed = files.map((f) =>
    [...fs.readFileSync(path.join(configDir, f), 'utf8').matchAll(/\{name: (\w+), urls?:/g)].map((m) => m[1]),
  );
  t.deepEqual(listed, [[], [], ['A'], ['A'], ['B']]);
});

/** Every port number the example files use (client, route, gateway, monitoring). */
function examplePorts(texts: string[]): number[] {
  const ports = new Set<number>();
  for (const text of texts) for (const m of text.matchAll(/127\.0\.0\.1:(\d{4,5})\b/g)) ports.add(Number(m[1]));
  return [...ports].sort((a, b) => a - b);
}

gatewayTest(
  'the example supercluster starts as written (ports moved) and forms the full gateway mesh',
  ['nats-server', 'skein', 'mixed'],
  async (t, variant) => {
    const texts = files.map((f) => fs.readFileSync(path.join(configDir, f), 'utf8'));
    const leases: PortLease[] = [];
    const servers: ServerHandle[] = [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-gw-example-'));
    t.teardown(async () => {
      await Promise.all(servers.map((s) => s.stop()));
      for (const l of leases) l.release();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const moved = new Map<number, number>();
    for (const p of examplePorts(texts)) {
      const l = await leasePort();
      leases.push(l);
      moved.set(p, l.port);
    }
    const clusterOf = ['A', 'A', 'B', 'B', 'C'];
    const impls: Impl[] = files.map((_f, i) => variant.impl(['A', 'B', 'C'].indexOf(clusterOf[i]), i % 2));
    for (const [i, file] of files.entries()) {
      const text = texts[i].replace(/127\.0\.0\.1:(\d{4,5})\b/g, (_m, p: string) => `127.0.0.1:${moved.get(Number(p))}`);
      const copy = path.join(dir, file);
      fs.writeFileSync(copy, text);
      // -a/-p from the helper come first; the file's `listen` (moved) wins for the client port.
      servers.push(
        await startServer({
          impl: impls[i],
          args: ['-c', copy],
          port: moved.get(Number(/listen: "127\.0\.0\.1:(\d+)"/.exec(texts[i])![1])),
          workers: impls[i] === 'skein' ? 1 : undefined,
        }),
      );
    }
    const members = files.map((f, i) => ({
      label: f,
      gateway: clusterOf[i],
      httpPort: moved.get(Number(/http: "127\.0\.0\.1:(\d+)"/.exec(texts[i])![1]))!,
    }));
    let problems: string[] = [];
    await eventually(
      'the full gateway mesh',
      async () => {
        problems = await gatewayMeshProblems(members);
        return problems.length === 0;
      },
      60_000,
      200,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}\n  ${problems.join('\n  ')}\n${servers.map((s, i) => `--- ${files[i]} ---\n${s.output()}`).join('\n')}`,
      );
    });
    t.deepEqual(problems, []);
    // Messages between every pair of the five servers, each once.
    const ncs: NatsConnection[] = [];
    for (const s of servers) ncs.push(await connect({ servers: s.url, reconnect: false }));
    t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
    await checkPubSub(t, ncs);
  },
);
