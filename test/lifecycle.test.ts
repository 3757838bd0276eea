// What a user sees running the server: start-up lines, -D/-V logging, pid file, and a
// clean stop on SIGINT (exit 0; SIGTERM exits 1, as nats-server).

import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useServer, startServer, testImpl } from './helpers/server.ts';
import { rawSession } from './helpers/raw.ts';

const impl = testImpl();

test('start-up prints nats-server style lines and Ctrl-C exits 0 after flushing clients', async (t) => {
  t.timeout(60_000);
  if (impl !== 'skein') {
    t.pass();
    return;
  }
  const pidFile = path.join(os.tmpdir(), `skein-test-${process.pid}-${Date.now()}.pid`);
  const srv = await startServer({ impl, workers: 2, args: ['-P', pidFile] });
  t.teardown(async () => {
    if (!srv.exited()) await srv.stop();
  });
  await srv.waitForLog(/Server is ready/, 30_000);
  const out = srv.output();
  for (const line of [
    'Starting skein',
    'Version:',
    'ID:',
    'Name:',
    `Listening for client connections on 127.0.0.1:${srv.port}`,
    'Server is ready',
  ]) {
    t.true(out.includes(line), `missing start-up line: ${line}`);
  }
  t.regex(out, /^\[\d+\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{6} \[INF\] Starting skein$/m);
  t.is(fs.readFileSync(pidFile, 'utf8').trim(), String(srv.pid));
  const { c } = await rawSession(srv.port);
  const code = await srv.stop();
  t.is(code, 0);
  await c.closed(5000);
  t.false(fs.existsSync(pidFile), 'pid file removed on exit');
});

test('SIGTERM exits 1, as nats-server does', async (t) => {
  t.timeout(60_000);
  if (impl !== 'skein') {
    t.pass();
    return;
  }
  const srv = await startServer({ impl, workers: 1 });
  process.kill(srv.pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (!srv.exited() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(srv.exitCode(), 1);
});

test('-D logs connections with their close reason; -V traces protocol operations', async (t) => {
  t.timeout(60_000);
  const srv = await useServer(t, { impl, args: ['-DV'] });
  const { c, info } = await rawSession(srv.port, { connect: { user: 'u', pass: 'hunter2' } });
  c.send('SUB foo 1\r\nPUB foo 2\r\nhi\r\n');
  await c.ping();
  c.close();
  const cid = String(info.client_id);
  await srv.waitForLog(new RegExp(`\\[DBG\\] 127\\.0\\.0\\.1:\\d+ - cid:${cid} - Client connection created`), 30_000);
  await srv.waitForLog(new RegExp(`\\[TRC\\] 127\\.0\\.0\\.1:\\d+ - cid:${cid} - <<- \\[SUB foo 1\\]`), 30_000);
  await srv.waitForLog(new RegExp(`\\[TRC\\] 127\\.0\\.0\\.1:\\d+ - cid:${cid} - <<- \\[PUB foo 2\\]`), 30_000);
  await srv.waitForLog(new RegExp(`\\[TRC\\] 127\\.0\\.0\\.1:\\d+ - cid:${cid} - ->> \\[MSG foo 1 2\\]`), 30_000);
  await srv.waitForLog(new RegExp(`\\[DBG\\] 127\\.0\\.0\\.1:\\d+ - cid:${cid} - Client connection closed: Client Closed`), 30_000);
  t.false(srv.output().includes('hunter2'), 'password must not be traced');
});
