// The live page in a real browser: headless Chromium (the Debian package, driven by
// playwright-core) loads /live from one server of a running 3-server skein cluster carrying
// traffic, and must show all three servers, this server's threads and live rates, with no
// console error. The screenshot is kept in test/artifacts/ (not committed).

import test from 'ava';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { repoRoot } from './helpers/server.ts';
import { TestCluster, meshReady, interestSeen, type NodeSpec } from './helpers/cluster.ts';
import { get, monitorPort } from './helpers/monitor.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Headless Chromium; playwright gives it a fresh temporary profile (its --user-data-dir). */
function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    timeout: 60_000,
  });
}

test('the live page shows all three servers of a running cluster, its threads and live rates, with no console error', async (t) => {
  t.timeout(120_000);
  const specs: NodeSpec[] = [
    { impl: 'skein', name: 'alpha' },
    { impl: 'skein', name: 'bravo' },
    { impl: 'skein', name: 'charlie' },
  ];
  const cl = await TestCluster.start(t, specs, { workers: 2, args: () => ['-m', '-1'] });
  const mon = await monitorPort(cl.nodes[0].srv);
  const ncs = await cl.clients(t);
  await meshReady(ncs);
  // Traffic while the page is open: alpha publishes to subscribers on bravo and charlie.
  let received = 0;
  ncs[1].subscribe('live.>', {
    callback: () => {
      received++;
    },
  });
  ncs[2].subscribe('live.>', {
    callback: () => {
      received++;
    },
  });
  await interestSeen(ncs[1], [ncs[0]]);
  await interestSeen(ncs[2], [ncs[0]]);
  let publishing = true;
  const traffic = (async () => {
    while (publishing) {
      for (let i = 0; i < 200; i++) ncs[0].publish(`live.${i % 4}`, 'payload');
      await ncs[0].flush();
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  t.teardown(async () => {
    publishing = false;
    await traffic;
  });

  const browser = await launch();
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  const watch = (p: typeof page): void => {
    p.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    p.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    p.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  };
  watch(page);

  await page.goto(`http://127.0.0.1:${mon}/live`);
  // All three servers, as this server knows them from gossip.
  // (Functions passed to the page run in the browser: given as source text, as tsconfig has no DOM types.)
  await page.waitForFunction('document.querySelectorAll("#serverrows tr[data-server-name]").length === 3', undefined, { timeout: 30_000 });
  const names = await page.$$eval('#serverrows tr[data-server-name]', (rows) => rows.map((r) => r.getAttribute('data-server-name')));
  t.deepEqual([...names].sort(), ['alpha', 'bravo', 'charlie']);
  t.is(await page.locator('#topology [data-server-name]').count(), 3, 'three servers in the diagram');
  // This server's two client workers and its route thread.
  t.is(await page.locator('#threadrows tr').count(), 3);
  // Rates need two snapshots: wait until the page shows messages moving out over the routes.
  await page.waitForFunction(
    `[...document.querySelectorAll('#serverrows tr[data-server-name]')].some((r) =>
    !/this server/.test(r.textContent) && Number.parseFloat(r.children[5].textContent) > 0)`,
    undefined,
    { timeout: 30_000 },
  );
  t.regex(await page.locator('#name').innerText(), /alpha/);
  t.regex(await page.locator('#clustername').innerText(), /cluster test/);

  const artifacts = path.join(repoRoot, 'test', 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, 'live-page.png'), fullPage: true });

  // The panels stay within the header's width (no sideways scrolling of the page) on a
  // laptop screen and a narrow one; a wide table scrolls inside its own panel.
  for (const width of [1336, 800]) {
    await page.setViewportSize({ width, height: 900 });
    const overflow = await page.evaluate(`(() => {
      const edge = document.querySelector('header').getBoundingClientRect().right;
      const over = [...document.querySelectorAll('main > section')].map((s) => [s.id, Math.round(s.getBoundingClientRect().right - edge)]).filter(([, px]) => px > 0);
      return { page: document.documentElement.scrollWidth - document.documentElement.clientWidth, over };
    })()`);
    t.deepEqual(overflow, { page: 0, over: [] }, `at ${width} px`);
  }

  t.deepEqual(errors, [], 'no console errors on /live');
  // Leaving the live page aborts its poll if one is in flight (net::ERR_ABORTED): that is
  // the navigation, not the page, so the index gets a page of its own.
  page.removeAllListeners();
  await page.close();
  const index = await browser.newPage();
  watch(index);

  // The index links every endpoint, and loads clean too.
  await index.goto(`http://127.0.0.1:${mon}/`);
  const links = await index.$$eval('a', (as) => as.map((a) => a.getAttribute('href')));
  for (const p of ['varz', 'connz', 'routez', 'gatewayz', 'subsz', 'accountz', 'leafz', 'healthz', 'metrics', 'live']) {
    t.true(links.includes(`./${p}`), `index links /${p}`);
  }
  t.deepEqual(errors, [], 'no console errors on the index');
  t.true(received > 0);
  t.is((await get(mon, '/healthz')).status, 200);
});
