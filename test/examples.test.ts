// The example configs in config/ and the README's examples: every config passes `-t` and
// starts as written (only the ports are overridden, since other servers may hold them), the
// three cluster configs form a cluster, and the README and the configs use one cluster name.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { connect, type NatsConnection } from 'nats';
import { parse } from 'yaml';
import { repoRoot, useServer, testImpl } from './helpers/server.ts';
import { uid } from './helpers/cluster.ts';

const configDir = path.join(repoRoot, 'config');
const configs = fs
  .readdirSync(configDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const clusterConfigs = configs.filter((f) => /^cluster-/.test(f));
const launcher = path.join(repoRoot, 'src', 'launcher.cjs');
const impl = testImpl();

interface ExampleConfig {
  server_name?: string;
  port?: number;
  cluster?: { name?: string; host?: string; port?: number; routes?: string[] };
}

function readConfig(file: string): ExampleConfig {
  return parse(fs.readFileSync(path.join(configDir, file), 'utf8')) as ExampleConfig;
}

function skein(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [launcher, ...args], { cwd: repoRoot, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('there are example configs: a single server, auth, and a 3-server cluster', (t) => {
  t.deepEqual(configs, ['auth.yaml', 'cluster-a.yaml', 'cluster-b.yaml', 'cluster-c.yaml', 'single.yaml']);
});

for (const file of configs) {
  test(`skein -t accepts config/${file} as written`, async (t) => {
    t.timeout(30_000);
    const r = await skein(['-t', '-c', `config/${file}`]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `skein: configuration file config/${file} is valid\n`);
  });
}

test('the comments of the example configs show commands that exist', (t) => {
  for (const file of configs) {
    const text = fs.readFileSync(path.join(configDir, file), 'utf8');
    t.notRegex(text, /node src\/main\.ts/, `${file}: plain node cannot run .ts files on an old Node; say npx skein`);
    for (const m of text.matchAll(/npx skein -c (\S+)/g)) t.true(fs.existsSync(path.join(repoRoot, m[1])), `${file}: ${m[1]}`);
  }
});

// The machine's Node may be older than the 24.21 skein needs (it cannot run .ts files), so a
// documented command runs a .ts file through npm (which puts the bundled runtime first on
// PATH) or node_modules/.bin/node, never a bare `node x.ts`; and every `npm run X` exists.
test('the README and bench/README show commands that run on any machine Node: npm scripts, not node x.ts', (t) => {
  const scripts = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  for (const file of ['README.md', 'bench/README.md']) {
    const text = fs.readFileSync(path.join(repoRoot, file), 'utf8');
    for (const m of text.matchAll(/(^|[`\s(])node ([\w./-]+\.ts)\b/gm))
      t.fail(`${file}: \`node ${m[2]}\` fails on an old machine Node; use an npm script or node_modules/.bin/node`);
    for (const m of text.matchAll(/npm run ([\w:-]+)/g)) t.true(m[1] in scripts, `${file}: npm run ${m[1]} is not a script`);
  }
  t.pass();
});

test('the cluster configs agree: one name, every member lists every route, no port used twice', (t) => {
  const parsed = clusterConfigs.map(readConfig);
  const names = new Set(parsed.map((c) => c.cluster?.name));
  t.is(names.size, 1, [...names].join(', '));
  const routePorts = parsed.map((c) => c.cluster!.port!);
  const clientPorts = parsed.map((c) => c.port!);
  t.is(new Set([...routePorts, ...clientPorts]).size, routePorts.length * 2);
  for (const [i, c] of parsed.entries()) {
    const listed = (c.cluster!.routes ?? []).map((u) => Number(new URL(u).port)).sort();
    t.deepEqual(listed, [...routePorts].sort(), clusterConfigs[i]);
  }
});

test("the README uses the example configs' cluster name everywhere", (t) => {
  const name = readConfig(clusterConfigs[0]).cluster!.name!;
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const used = [...readme.matchAll(/--cluster_name[ =]([^\s<`]\S*)/g)].map((m) => m[1]);
  t.true(used.length > 0, 'the README shows a cluster started with flags');
  for (const u of used) t.is(u, name);
  for (const m of readme.matchAll(/-c (config\/\S+\.yaml)/g)) t.true(fs.existsSync(path.join(repoRoot, m[1])), m[1]);
});

for (const file of configs.filter((f) => !/^cluster-/.test(f))) {
  test(`config/${file} starts as written (port overridden) and serves`, async (t) => {
    t.timeout(60_000);
    if (impl !== 'skein') {
      t.pass();
      return;
    }
    const srv = await useServer(t, { impl, workers: 1, args: ['-c', `config/${file}`] });
    const c = readConfig(file);
    if (c.server_name) t.regex(srv.output(), new RegExp(`Name: +${c.server_name}\\n`));
    // nats-server warns about the example's plaintext passwords too; nothing else may complain.
    const complaints = srv
      .output()
      .split('\n')
      .filter((l) => /\[(ERR|WRN|FTL)\]/.test(l) && !/Plaintext passwords detected/.test(l));
    t.deepEqual(complaints, []);
  });
}

test('config/cluster-{a,b,c}.yaml start as written (ports overridden) and form one cluster', async (t) => {
  t.timeout(120_000);
  if (impl !== 'skein') {
    t.pass();
    return;
  }
  const routePorts: number[] = [];
  const conns: NatsConnection[] = [];
  t.teardown(async () => {
    for (const nc of conns) await nc.close().catch(() => {});
  });
  const servers = [];
  for (const file of clusterConfigs) {
    // Each server listens on a random route port and dials the ones already up: the same
    // full mesh the configs describe with fixed ports.
    const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
    const srv = await useServer(t, {
      impl,
      workers: 1,
      args: ['-c', `config/${file}`, '--cluster', 'nats://127.0.0.1:-1', '--routes', routes],
    });
    const m = await srv.waitForLog(/Listening for route connections on 127\.0\.0\.1:(\d+)/);
    routePorts.push(Number(m[1]));
    t.regex(srv.output(), new RegExp(`Name: +${readConfig(file).server_name}\\n`));
    t.regex(srv.output(), new RegExp(`Cluster name is ${readConfig(file).cluster!.name}\\n`));
    servers.push(srv);
  }
  // A message published on each server reaches a subscriber on every other one.
  for (const srv of servers) conns.push(await connect({ servers: srv.url, reconnect: false }));
  const subject = `examples.${uid()}`;
  const got = servers.map(() => new Set<string>());
  conns.forEach((nc, i) => nc.subscribe(subject, { callback: (_e, m) => got[i].add(m.string()) }));
  for (const nc of conns) await nc.flush();
  const deadline = Date.now() + 30_000;
  for (;;) {
    for (const [i, nc] of conns.entries()) nc.publish(subject, `from ${i}`);
    for (const nc of conns) await nc.flush();
    await new Promise((r) => setTimeout(r, 50));
    if (got.every((s) => s.size === servers.length)) break;
    if (Date.now() > deadline) return t.fail(`not one cluster: ${JSON.stringify(got.map((s) => [...s]))}`);
  }
  t.pass();
  for (const srv of servers) t.notRegex(srv.output(), /cluster name .* does not match|Cluster Name Conflict/);
});
