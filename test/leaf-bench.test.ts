// The bench's leaf scenarios (bench/scenarios.ts `leaf`, `leaf-reverse`; bench/servers.ts
// launchLeafPair): a tiny run of each completes on a nats-server hub and leaf with every message
// checked, and on a skein hub and leaf likewise. No test asserts a speed.

import test from 'ava';
import { DEFAULT_RUN_OPTIONS, runOnce, type RunOptions } from '../bench/runner.ts';
import { entryId, findScenario, standardMatrix, type Entry, type Params } from '../bench/scenarios.ts';
import { killAllNow } from '../bench/servers.ts';

const opts: RunOptions = { ...DEFAULT_RUN_OPTIONS, deadlineMs: 30_000, setupTimeoutMs: 30_000, stallMs: 2000 };

test.after.always(() => killAllNow());

function entry(name: string, over: Partial<Params>): Entry {
  const s = findScenario(name)!;
  const params: Params = { ...s.defaults, genProcs: 1, ...over };
  return { id: entryId(s, params), scenario: s, params };
}

for (const name of ['leaf', 'leaf-reverse']) {
  for (const size of [16, 1024]) {
    test.serial(`tiny ${name}/${size}B run completes on a nats-server hub and leaf with every message checked`, async (t) => {
      t.timeout(90_000);
      const r = await runOnce(entry(name, { msgs: 5_000, size }), { label: 'nats-server', kind: 'nats-server' }, 1, opts);
      t.is(r.status, 'ok', r.problems.join('\n'));
      t.is(r.delivered, r.published);
      t.is(r.order, 'checked');
    });
  }

  test.serial(`tiny ${name} run completes on a skein hub and leaf with every message checked`, async (t) => {
    t.timeout(90_000);
    const r = await runOnce(entry(name, { msgs: 5_000 }), { label: 'skein -w2', kind: 'skein', workers: 2 }, 1, opts);
    t.is(r.status, 'ok', r.problems.join('\n'));
    t.is(r.delivered, r.published);
    t.is(r.order, 'checked');
  });
}

test('the standard matrix measures both leaf directions at 16 B and 1 KiB', (t) => {
  const ids = standardMatrix(1, 1).map((e) => e.id);
  for (const id of ['leaf/16B', 'leaf/1024B', 'leaf-reverse/16B', 'leaf-reverse/1024B']) t.true(ids.includes(id), id);
});
