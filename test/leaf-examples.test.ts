// The leaf-node example configs (config/leaf-hub.conf, leaf-mid.conf, leaf-tail.conf): a hub, a
// leaf of it and a leaf of that leaf on one machine, in nats-server's .conf format. `skein -t`
// and `nats-server -t` accept each; started as written (only their ports rewritten to OS-picked
// ones, since other servers may hold 4222/7422), they form the chain and carry messages every
// way. On nats-server always; on skein with skein leaf nodes (on since issue 13).

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { connect, type NatsConnection } from 'nats';
import { checkPubSub, checkRequestReply } from './helpers/cluster.ts';
import { leafTest } from './helpers/leaf.ts';
import { repoRoot, startServer, type ServerHandle } from './helpers/server.ts';

const EXAMPLES = ['leaf-hub.conf', 'leaf-mid.conf', 'leaf-tail.conf'];
const launcher = path.join(repoRoot, 'src', 'launcher.cjs');

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: repoRoot, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

for (const file of EXAMPLES) {
  test(`skein -t and nats-server -t accept config/${file} as written`, async (t) => {
    t.timeout(30_000);
    const skein = await run(process.execPath, [launcher, '-t', '-c', `config/${file}`]);
    t.is(skein.code, 0, skein.out);
    t.is(skein.out, `skein: configuration file config/${file} is valid\n`);
    const nats = await run('nats-server', ['-t', '-c', `config/${file}`]);
    t.is(nats.code, 0, nats.out);
  });
}

test("the leaf examples form one chain: mid dials the hub's leaf port, tail dials mid's, and the comments name commands that exist", (t) => {
  const text = EXAMPLES.map((f) => readFileSync(path.join(repoRoot, 'config', f), 'utf8'));
  const leafPort = (s: string): number | undefined => Number(/^leafnodes \{[^}]*?\n\s*port: (\d+)/m.exec(s)?.[1]) || undefined;
  const remotePort = (s: string): number | undefined => Number(/nats-leaf:\/\/127\.0\.0\.1:(\d+)/.exec(s)?.[1]) || undefined;
  t.truthy(leafPort(text[0]));
  t.is(remotePort(text[0]), undefined, 'the hub dials nobody');
  t.is(remotePort(text[1]), leafPort(text[0]));
  t.is(remotePort(text[2]), leafPort(text[1]));
  t.is(leafPort(text[2]), undefined, 'the tail accepts no leafs');
  for (const [i, s] of text.entries()) {
    const named = [...s.matchAll(/npx skein -c (\S+)/g)].map((m) => m[1]);
    t.true(named.includes(`config/${EXAMPLES[i]}`), `${EXAMPLES[i]} says how to start itself`);
    for (const n of named) t.true(EXAMPLES.map((f) => `config/${f}`).includes(n), n);
  }
});

/**
 * The example's text with its listeners on OS-picked ports and its remote URLs pointing at the
 * ports the servers started before it actually got. Every rewrite must apply, so a change to the
 * examples' shape fails here rather than testing something else.
 */
function rewrite(text: string, leafPorts: Map<number, number>): string {
  let out = text.replace(/^http_port: \d+$/m, 'http_port: -1');
  out = out.replace(/^(leafnodes \{[^}]*?\n\s*)port: \d+/m, '$1listen: "127.0.0.1:-1"');
  out = out.replace(/nats-leaf:\/\/127\.0\.0\.1:(\d+)/g, (_m, p: string) => {
    const real = leafPorts.get(Number(p));
    if (real === undefined) throw new Error(`the example dials port ${p}, which no earlier example listens on`);
    return `nats-leaf://127.0.0.1:${real}`;
  });
  return out;
}

leafTest(
  'config/leaf-{hub,mid,tail}.conf start as written (ports rewritten) and carry messages along the chain',
  ['hub', 'mid', 'tail'],
  async (t, mix) => {
    t.timeout(180_000);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-leafex-'));
    const servers: ServerHandle[] = [];
    const conns: NatsConnection[] = [];
    t.teardown(async () => {
      for (const nc of conns) await nc.close().catch(() => {});
      for (const s of servers) await s.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const leafPorts = new Map<number, number>(); // configured -> actual
    for (const [i, file] of EXAMPLES.entries()) {
      const original = readFileSync(path.join(repoRoot, 'config', file), 'utf8');
      const conf = path.join(dir, file);
      writeFileSync(conf, rewrite(original, leafPorts));
      const impl = mix[['hub', 'mid', 'tail'][i]];
      const srv = await startServer({ impl, args: ['-c', conf], workers: impl === 'skein' ? 1 : undefined });
      servers.push(srv);
      const configured = Number(/^leafnodes \{[^}]*?\n\s*port: (\d+)/m.exec(original)?.[1] ?? 0);
      if (configured > 0) {
        const m = await srv.waitForLog(/Listening for leafnode connections on \S+:(\d+)/, 30_000);
        leafPorts.set(configured, Number(m[1]));
      }
    }
    await servers[1].waitForLog(/Leafnode connection created/, 30_000);
    await servers[2].waitForLog(/Leafnode connection created/, 30_000);
    for (const s of servers) conns.push(await connect({ servers: s.url, reconnect: false }));
    await checkPubSub(t, conns);
    await checkRequestReply(t, conns);
  },
  [
    { hub: 'nats-server', mid: 'nats-server', tail: 'nats-server' },
    { hub: 'skein', mid: 'skein', tail: 'skein' },
  ],
);
