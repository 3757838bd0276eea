// /metrics: valid Prometheus text exposition with prometheus-nats-exporter's series names for
// the same data (checked against the names the exporter's rules give nats-server 2.9.10's own
// /varz), values that agree with /varz, /connz and /routez, and skein's per-thread series.

import test from 'ava';
import { connect } from 'nats';
import { useServer } from './helpers/server.ts';
import { clusterPortOf, get, getJson, monitorPort } from './helpers/monitor.ts';
import { interestSeen, waitFor } from './helpers/cluster.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text format strictly: HELP and TYPE once per family, before its samples. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpMatchArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      if (helps.has(m[1])) throw new Error(`second HELP for ${m[1]}`);
      helps.add(m[1]);
    } else if ((m = /^# TYPE (\S+) (counter|gauge|untyped|histogram|summary)$/.exec(line))) {
      if (types.has(m[1])) throw new Error(`second TYPE for ${m[1]}`);
      types.set(m[1], m[2]);
    } else if ((m = /^([^{ ]+)(\{(.*)\})? (\S+)$/.exec(line))) {
      const name = m[1];
      if (!nameRe.test(name)) throw new Error(`bad metric name ${name}`);
      if (!types.has(name)) throw new Error(`sample before TYPE: ${line}`);
      const labels: Record<string, string> = {};
      if (m[3] !== undefined && m[3] !== '') {
        const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
        let consumed = 0;
        let l: RegExpExecArray | null;
        while ((l = re.exec(m[3])) !== null) {
          labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
          consumed = re.lastIndex;
        }
        if (consumed !== m[3].length) throw new Error(`bad labels: ${line}`);
      }
      const value = Number(m[4]);
      if (Number.isNaN(value) && m[4] !== 'NaN') throw new Error(`bad value: ${line}`);
      const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
      if (seen.has(key)) throw new Error(`duplicate series: ${line}`);
      seen.add(key);
      samples.push({ name, labels, value });
    } else {
      throw new Error(`not exposition text: ${JSON.stringify(line)}`);
    }
  }
  return { samples, types };
}

/**
 * The `gnatsd_varz_*` names prometheus-nats-exporter derives from a /varz document: numeric
 * fields, nested objects flattened with `_`, the start times, and the id/name/version strings.
 */
function exporterVarzNames(doc: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(doc)) {
    const field = prefix + k.replace(/^\/+/, '').replace(/[^a-zA-Z0-9_]/g, '_');
    if (typeof v === 'number') out.push(`gnatsd_varz_${field}`);
    else if (typeof v === 'string' && prefix === '' && ['start', 'config_load_time', 'server_id', 'server_name', 'version'].includes(k))
      out.push(`gnatsd_varz_${field}`);
    else if (typeof v === 'string' && k === 'name') out.push(`gnatsd_varz_${field}`);
    else if (v !== null && typeof v === 'object' && !Array.isArray(v) && k !== 'http_req_stats')
      out.push(...exporterVarzNames(v as Record<string, unknown>, `${field}_`));
  }
  return out;
}

test("/metrics has the exporter's gnatsd_* series for the same data, agreeing with the JSON endpoints, plus per-thread series", async (t) => {
  t.timeout(120_000);
  const args = ['-m', '-1', '--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'met'];
  const a = await useServer(t, { impl: 'skein', workers: 2, args: ['-n', 'A', ...args], readiness: 'log' });
  const mon = await monitorPort(a);
  const b = await useServer(t, {
    impl: 'skein',
    workers: 2,
    args: ['-n', 'B', ...args, '--routes', `nats-route://127.0.0.1:${await clusterPortOf(a)}`],
    readiness: 'log',
  });
  const na = await connect({ servers: `127.0.0.1:${a.port}` });
  const nb = await connect({ servers: `127.0.0.1:${b.port}` });
  t.teardown(() => Promise.all([na.close(), nb.close()]));
  let got = 0;
  na.subscribe('m.local', {
    callback: () => {
      got++;
    },
  });
  nb.subscribe('m.remote', {
    callback: () => {
      got++;
    },
  });
  await interestSeen(nb, [na]);
  for (let i = 0; i < 100; i++) {
    na.publish('m.local', 'abc');
    na.publish('m.remote', 'defg');
  }
  await na.flush();
  await waitFor(() => got >= 200, 10_000, 'deliveries');
  const varz = await getJson(mon, '/varz');

  const res = await get(mon, '/metrics');
  t.is(res.status, 200);
  t.is(res.type, 'text/plain; version=0.0.4; charset=utf-8');
  const { samples, types } = parseExposition(res.body);
  const one = (name: string, labels: Record<string, string> = {}): Sample => {
    const s = samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    if (s.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${s.length} samples`);
    return s[0];
  };
  const id = varz.server_id as string;

  // Every name the exporter derives from /varz (checked against nats-server's in monitor.test.ts: same keys).
  const names = new Set(samples.map((s) => s.name));
  for (const n of exporterVarzNames(varz)) t.true(names.has(n), `has ${n}`);
  for (const n of [
    'gnatsd_varz_in_msgs',
    'gnatsd_varz_out_msgs',
    'gnatsd_varz_in_bytes',
    'gnatsd_varz_out_bytes',
    'gnatsd_varz_connections',
    'gnatsd_varz_total_connections',
    'gnatsd_varz_subscriptions',
    'gnatsd_varz_slow_consumers',
    'gnatsd_varz_routes',
    'gnatsd_varz_mem',
    'gnatsd_varz_cpu',
    'gnatsd_varz_start',
    'gnatsd_varz_cluster_cluster_port',
    'gnatsd_varz_http_req_stats_varz',
    'gnatsd_connz_num_connections',
    'gnatsd_connz_total',
    'gnatsd_connz_offset',
    'gnatsd_connz_limit',
    'gnatsd_connz_pending_bytes',
    'gnatsd_connz_subscriptions',
    'gnatsd_connz_in_msgs',
    'gnatsd_connz_out_msgs',
    'gnatsd_connz_in_bytes',
    'gnatsd_connz_out_bytes',
    'gnatsd_routez_num_routes',
    'gnatsd_routez_route_in_msgs',
    'gnatsd_routez_route_out_msgs',
    'gnatsd_routez_route_rtt_seconds',
    'gnatsd_subsz_num_subscriptions',
    'gnatsd_subsz_num_cache',
    'gnatsd_subsz_cache_hit_rate',
    'gnatsd_healthz_status',
    'gnatsd_leafz_conn_nodes_total',
  ]) {
    t.true(names.has(n), `has ${n}`);
  }
  t.true(
    samples.filter((s) => s.name.startsWith('gnatsd_')).every((s) => s.labels.server_id === id),
    'server_id label on every gnatsd series',
  );
  t.is(types.get('gnatsd_varz_in_msgs'), 'gauge');
  t.is(types.get('gnatsd_connz_in_msgs'), 'counter');

  // Values agree with the JSON documents (the traffic is over, so the counters are still).
  t.is(one('gnatsd_varz_in_msgs').value, varz.in_msgs as number);
  t.true(one('gnatsd_varz_in_msgs').value >= 200);
  t.is(one('gnatsd_varz_out_msgs').value, varz.out_msgs as number);
  t.is(one('gnatsd_varz_connections').value, 1);
  t.is(one('gnatsd_varz_version', { value: '2.9.10' }).value, 1);
  t.is(one('gnatsd_varz_server_name', { value: 'A' }).value, 1);
  t.is(one('gnatsd_varz_cluster_name', { value: 'met' }).value, 1);
  t.is(one('gnatsd_varz_start').value, Date.parse(varz.start as string));
  t.is(one('gnatsd_connz_num_connections').value, 1);
  t.is(one('gnatsd_connz_in_msgs').value, varz.in_msgs as number, 'only the one client published');
  t.is(one('gnatsd_routez_num_routes').value, 1);
  const route = ((await getJson(mon, '/routez')).routes as { rid: number; out_msgs: number }[])[0];
  t.is(one('gnatsd_routez_route_out_msgs', { rid: String(route.rid) }).value, route.out_msgs);
  t.true(route.out_msgs >= 100);
  t.is(one('gnatsd_healthz_status').value, 0);

  // skein's own series: one per thread (two client workers and the route thread).
  const threads = samples.filter((s) => s.name === 'skein_worker_in_msgs_total');
  t.deepEqual(threads.map((s) => `${s.labels.thread}:${s.labels.kind}`).sort(), ['0:client', '1:client', '2:route']);
  t.is(
    threads.reduce((n, s) => n + s.value, 0),
    varz.in_msgs as number,
  );
  t.is(
    samples.filter((s) => s.name === 'skein_worker_cross_thread_sent_total' && s.labels.kind === 'client').reduce((n, s) => n + s.value, 0),
    route.out_msgs,
    'every routed message crossed from a worker to the route thread',
  );
  for (const n of [
    'skein_worker_up',
    'skein_worker_connections',
    'skein_worker_subscriptions',
    'skein_worker_out_msgs_total',
    'skein_worker_ring_backlog_bytes',
    'skein_worker_stalls_total',
    'skein_worker_ring_full_total',
    'skein_worker_cross_thread_received_total',
    'skein_worker_slow_consumers_total',
  ]) {
    t.is(samples.filter((s) => s.name === n).length, 3, `${n} for every thread`);
  }

  // The Helm chart runs the exporter with -prefix nats.
  const prefixed = parseExposition((await get(mon, '/metrics?prefix=nats')).body).samples;
  t.true(prefixed.some((s) => s.name === 'nats_varz_in_msgs'));
  t.false(prefixed.some((s) => s.name.startsWith('gnatsd_')));
  t.is((await get(mon, '/metrics?prefix=a-b')).status, 400);
});
