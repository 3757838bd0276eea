// /metrics: Prometheus text exposition (format 0.0.4), built in, with the series names
// prometheus-nats-exporter derives from the same endpoints, so dashboards and alerts written for
// `gnatsd_*` work against skein without the sidecar:
//   * `gnatsd_<endpoint>_<field>` gauges for the numeric fields of /varz and /subsz, nested
//     objects flattened with `_` (`gnatsd_varz_cluster_cluster_port`,
//     `gnatsd_varz_http_req_stats_varz`); times as epoch milliseconds; the id, name and version
//     strings as label gauges (`gnatsd_varz_version{server_id,value="2.9.10"} 1`);
//   * /connz's page summary: `gnatsd_connz_{num_connections,total,offset,limit,pending_bytes,
//     subscriptions}` gauges and `gnatsd_connz_{in,out}_{msgs,bytes}` counters;
//   * /routez: `gnatsd_routez_num_routes` and per route `gnatsd_routez_route_*`;
//   * /gatewayz (with gateways): per connection `gnatsd_gatewayz_{outbound,inbound}_gateway_*`
//     (`_info`, `_configured`, `_conn_rtt` in seconds, `_conn_{pending_bytes,in_msgs,out_msgs,
//     in_bytes,out_bytes,subscriptions}`), labelled as the exporter's gatewayz collector does;
//   * /healthz: `gnatsd_healthz_status` (0 = ok), /leafz: `gnatsd_leafz_conn_nodes_total`.
// The `server_id` label is the server's id, as the exporter's -use_internal_server_id (what the
// official Helm chart passes) gives it. `?prefix=nats` gives the `nats_*` names of `-prefix nats`.
// Plus skein's own per-thread series, `skein_worker_*`, labelled by thread and kind.
//
// A small writer rather than prom-client: every scrape is built from fresh snapshots (the
// exporter's model), so a registry of long-lived metric objects would only be copied into.

import { threadCounters, type ThreadInfo } from './live.ts';

export interface MetricsInput {
  serverId: string;
  varz: Record<string, unknown>;
  connz: Record<string, unknown>;
  routez: Record<string, unknown>;
  subsz: Record<string, unknown>;
  healthz: Record<string, unknown>;
  /** /gatewayz, or null without gateways. */
  gatewayz?: Record<string, unknown> | null;
  threads: ThreadInfo[];
}

type Labels = Record<string, string | number>;
type MetricType = 'gauge' | 'counter' | 'untyped';

/** Collects samples grouped into families, then writes them in the text format. */
class Exposition {
  private readonly families = new Map<string, { type: MetricType; help: string; lines: string[] }>();

  add(name: string, type: MetricType, help: string, labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    let f = this.families.get(name);
    if (f === undefined) {
      f = { type, help, lines: [] };
      this.families.set(name, f);
    }
    f.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
  }

  text(): string {
    let out = '';
    for (const [name, f] of this.families) {
      out += `# HELP ${name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${f.type}\n`;
      for (const l of f.lines) out += `${l}\n`;
    }
    return out;
  }
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatValue(v: number): string {
  return String(v);
}

/** A JSON key as a metric name part: `/varz` → `varz`, anything else not [a-zA-Z0-9_] → `_`. */
function sanitize(key: string): string {
  return key.replace(/^\/+/, '').replace(/[^a-zA-Z0-9_]/g, '_');
}

/** String fields the exporter turns into label gauges, and time fields it turns into epoch ms. */
const LABEL_KEYS = new Set(['server_id', 'server_name', 'version', 'name', 'domain', 'leader']);
const TIME_KEYS = new Set(['start', 'config_load_time']);

/** The exporter's generic collector: every numeric field, nested objects flattened with `_`. */
function generic(e: Exposition, ns: string, endpoint: string, doc: Record<string, unknown>, serverId: string, prefix = ''): void {
  for (const [k, v] of Object.entries(doc)) {
    const field = prefix + sanitize(k);
    const name = `${ns}_${endpoint}_${field}`;
    if (typeof v === 'number') {
      e.add(name, 'gauge', field, { server_id: serverId }, v);
    } else if (typeof v === 'string') {
      if (TIME_KEYS.has(k) && prefix === '') e.add(name, 'gauge', field, { server_id: serverId }, Date.parse(v));
      else if (LABEL_KEYS.has(k)) e.add(name, 'gauge', field, { server_id: serverId, value: v }, 1);
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      generic(e, ns, endpoint, v as Record<string, unknown>, serverId, `${field}_`);
    }
  }
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

/** "2.5ms" → seconds (Go duration strings). */
function durationSeconds(s: unknown): number {
  if (typeof s !== 'string') return NaN;
  const units: Record<string, number> = { ns: 1e-9, µs: 1e-6, us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let total = 0;
  let matched = '';
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|µs|us|ms|s|m|h)/g)) {
    total += Number(m[1]) * units[m[2]];
    matched += m[0];
  }
  return matched === s ? total : NaN;
}

/** monitor.go myUptime strings ("1d2h3m4s") → seconds. */
function uptimeSeconds(s: unknown): number {
  if (typeof s !== 'string') return NaN;
  const units: Record<string, number> = { y: 365 * 86400, d: 86400, h: 3600, m: 60, s: 1 };
  let total = 0;
  for (const m of s.matchAll(/(\d+)([ydhms])/g)) total += Number(m[1]) * units[m[2]];
  return total;
}

/** The exporter's gatewayz collector: one set of series per gateway connection, outbound and inbound. */
function gatewayzMetrics(e: Exposition, ns: string, id: string, z: Record<string, unknown>): void {
  const local = String(z.name ?? '');
  type Remote = { configured?: boolean; connection?: Record<string, unknown> };
  const one = (kind: string, remote: string, r: Remote): void => {
    const c = r.connection ?? {};
    const base = `${ns}_gatewayz_${kind}_gateway`;
    e.add(
      `${base}_info`,
      'gauge',
      'info',
      {
        gateway_name: local,
        remote_gateway_name: remote,
        server_id: id,
        start: String(c.start ?? ''),
        last_activity: String(c.last_activity ?? ''),
        uptime: String(c.uptime ?? ''),
        idle: String(c.idle ?? ''),
      },
      0,
    );
    e.add(
      `${base}_configured`,
      'gauge',
      'configured',
      { gateway_name: local, remote_gateway_name: remote, server_id: id },
      r.configured === true ? 1 : 0,
    );
    const l = { gateway_name: local, cid: num(c.cid), remote_gateway_name: remote, server_id: id };
    e.add(`${base}_conn_rtt`, 'gauge', 'rtt', l, durationSeconds(c.rtt));
    e.add(`${base}_conn_pending_bytes`, 'gauge', 'pending_bytes', l, num(c.pending_bytes));
    e.add(`${base}_conn_in_msgs`, 'gauge', 'in_msgs', l, num(c.in_msgs));
    e.add(`${base}_conn_out_msgs`, 'gauge', 'out_msgs', l, num(c.out_msgs));
    e.add(`${base}_conn_in_bytes`, 'gauge', 'in_bytes', l, num(c.in_bytes));
    e.add(`${base}_conn_out_bytes`, 'gauge', 'out_bytes', l, num(c.out_bytes));
    e.add(`${base}_conn_subscriptions`, 'gauge', 'subscriptions', l, num(c.subscriptions));
  };
  for (const [name, r] of Object.entries((z.outbound_gateways ?? {}) as Record<string, Remote>)) one('outbound', name, r);
  for (const [name, list] of Object.entries((z.inbound_gateways ?? {}) as Record<string, Remote[]>))
    for (const r of list) one('inbound', name, r);
}

export function metricsText(input: MetricsInput, namespace = 'gnatsd'): string {
  const e = new Exposition();
  const id = input.serverId;
  const ns = namespace;
  const sid = { server_id: id };

  generic(e, ns, 'varz', input.varz, id);

  const c = input.connz;
  e.add(`${ns}_connz_num_connections`, 'gauge', 'num_connections', sid, num(c.num_connections));
  e.add(`${ns}_connz_total`, 'gauge', 'total', sid, num(c.total));
  e.add(`${ns}_connz_offset`, 'gauge', 'offset', sid, num(c.offset));
  e.add(`${ns}_connz_limit`, 'gauge', 'limit', sid, num(c.limit));
  const sums = { pending_bytes: 0, subscriptions: 0, in_msgs: 0, out_msgs: 0, in_bytes: 0, out_bytes: 0 };
  for (const conn of (c.connections as Record<string, unknown>[] | null) ?? []) {
    for (const k of Object.keys(sums) as (keyof typeof sums)[]) sums[k] += num(conn[k]);
  }
  e.add(`${ns}_connz_pending_bytes`, 'gauge', 'pending_bytes', sid, sums.pending_bytes);
  e.add(`${ns}_connz_subscriptions`, 'gauge', 'subscriptions', sid, sums.subscriptions);
  e.add(`${ns}_connz_in_bytes`, 'counter', 'in_bytes', sid, sums.in_bytes);
  e.add(`${ns}_connz_out_bytes`, 'counter', 'out_bytes', sid, sums.out_bytes);
  e.add(`${ns}_connz_in_msgs`, 'counter', 'in_msgs', sid, sums.in_msgs);
  e.add(`${ns}_connz_out_msgs`, 'counter', 'out_msgs', sid, sums.out_msgs);

  const r = input.routez;
  e.add(`${ns}_routez_num_routes`, 'gauge', 'num_routes', sid, num(r.num_routes));
  for (const route of (r.routes as Record<string, unknown>[] | null) ?? []) {
    const rl = { server_id: id, rid: num(route.rid) };
    e.add(
      `${ns}_routez_route_info`,
      'gauge',
      'route_info',
      {
        server_id: id,
        rid: num(route.rid),
        remote_id: String(route.remote_id ?? ''),
        remote_name: '',
        account: '',
        ip: String(route.ip ?? ''),
        compression: '',
      },
      1,
    );
    e.add(`${ns}_routez_route_rtt_seconds`, 'gauge', 'rtt_seconds', rl, durationSeconds(route.rtt));
    e.add(`${ns}_routez_route_subscriptions`, 'gauge', 'subscriptions', rl, num(route.subscriptions));
    e.add(`${ns}_routez_route_uptime_seconds`, 'gauge', 'uptime_seconds', rl, uptimeSeconds(route.uptime));
    e.add(`${ns}_routez_route_in_msgs`, 'gauge', 'in_msgs', rl, num(route.in_msgs));
    e.add(`${ns}_routez_route_out_msgs`, 'gauge', 'out_msgs', rl, num(route.out_msgs));
    e.add(`${ns}_routez_route_in_bytes`, 'gauge', 'in_bytes', rl, num(route.in_bytes));
    e.add(`${ns}_routez_route_out_bytes`, 'gauge', 'out_bytes', rl, num(route.out_bytes));
  }

  generic(e, ns, 'subsz', input.subsz, id);

  if (input.gatewayz) gatewayzMetrics(e, ns, id, input.gatewayz);

  const healthy = input.healthz.status === 'ok';
  e.add(`${ns}_healthz_status`, 'gauge', 'status', sid, healthy ? 0 : 1);
  e.add(`${ns}_healthz_status_value`, 'gauge', 'status_value', { server_id: id, value: String(input.healthz.status) }, healthy ? 1 : 0);
  e.add(`${ns}_leafz_conn_nodes_total`, 'gauge', 'nodes_total', sid, num(input.varz.leafnodes));

  const families: [string, MetricType, string, string][] = [
    ['skein_worker_up', 'gauge', 'alive', '1 while the thread runs (0 while it is being replaced)'],
    ['skein_worker_connections', 'gauge', 'connections', 'client connections (client workers) or registered routes (route thread)'],
    [
      'skein_worker_subscriptions',
      'gauge',
      'subscriptions',
      "client subscriptions (client workers) or the route peers' subscriptions (route thread)",
    ],
    ['skein_worker_in_msgs_total', 'counter', 'in_msgs', "messages read from this thread's connections"],
    [
      'skein_worker_out_msgs_total',
      'counter',
      'out_msgs',
      "messages this thread wrote to connections (its own, and other workers' it wrote to directly)",
    ],
    ['skein_worker_in_bytes_total', 'counter', 'in_bytes', "payload bytes read from this thread's connections"],
    [
      'skein_worker_out_bytes_total',
      'counter',
      'out_bytes',
      "payload bytes this thread wrote to connections (its own, and other workers' it wrote to directly)",
    ],
    ['skein_worker_cross_thread_sent_total', 'counter', 'cross_sent', 'messages this thread put into rings to other threads'],
    ['skein_worker_cross_thread_received_total', 'counter', 'cross_received', "messages this thread took from other threads' rings"],
    [
      'skein_worker_direct_sent_total',
      'counter',
      'direct_sent',
      "messages this thread wrote straight into other workers' subscribers' sockets",
    ],
    ['skein_worker_ring_backlog_bytes', 'gauge', 'ring_backlog_bytes', 'bytes waiting in the rings into this thread'],
    ['skein_worker_stalls_total', 'counter', 'stalls', 'publishers paused because a subscriber they feed was backed up'],
    ['skein_worker_ring_full_total', 'counter', 'ring_full', 'publishers paused because a ring to another thread was full'],
    ['skein_worker_slow_consumers_total', 'counter', 'slow_consumers', 'connections closed as slow consumers'],
  ];
  const rows = input.threads.map((t) => ({ t, c: threadCounters(t) }));
  for (const [name, type, key, help] of families) {
    for (const { t, c } of rows) {
      const v = key === 'alive' ? (t.alive ? 1 : 0) : num(c[key]);
      e.add(name, type, help, { server_id: id, thread: t.thread, kind: t.kind }, v);
    }
  }
  return e.text();
}
