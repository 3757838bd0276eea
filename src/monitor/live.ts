// /skeinz: the live page's JSON. This server, its threads (client workers and the route thread)
// with their counters, and the cluster as this server knows it from gossip: every peer it has a
// route to, with that route's counters. Counters are totals; the page turns two snapshots into
// rates, so the server keeps no history. Main thread only.

import { SKEIN_VERSION, PROTOCOL_VERSION } from '../protocol/info.ts';
import { Stat, type StatsReader } from './stats.ts';
import type { ClusterReply, LeafRecord } from './query.ts';
import type { MonitorSource } from './endpoints.ts';
import { rttString } from './gofmt.ts';

export interface ThreadInfo {
  thread: number;
  kind: 'client' | 'route' | 'gateway' | 'leaf';
  alive: boolean;
  /** Client connections (workers) or registered routes (route thread). */
  connections: number;
  ringBacklog: number;
  stats: StatsReader;
}

export function threadCounters(t: ThreadInfo): Record<string, unknown> {
  const s = t.stats;
  return {
    thread: t.thread,
    kind: t.kind,
    alive: t.alive,
    connections: t.connections,
    subscriptions: s.value(t.thread, Stat.subscriptions),
    in_msgs: s.value(t.thread, Stat.inMsgs),
    out_msgs: s.value(t.thread, Stat.outMsgs),
    in_bytes: s.value(t.thread, Stat.inBytes),
    out_bytes: s.value(t.thread, Stat.outBytes),
    cross_sent: s.value(t.thread, Stat.crossSent),
    cross_received: s.value(t.thread, Stat.crossReceived),
    direct_sent: s.value(t.thread, Stat.directSent),
    ring_backlog_bytes: t.ringBacklog,
    stalls: s.value(t.thread, Stat.stalls),
    ring_full: s.value(t.thread, Stat.ringFull),
    slow_consumers: s.value(t.thread, Stat.slowConsumers),
  };
}

/** /gatewayz as the gateway thread answers it (outbound_gateways, inbound_gateways), or null without gateways. */
type GatewayzData = {
  name?: string;
  outbound_gateways?: Record<string, { connection?: Record<string, unknown> }>;
  inbound_gateways?: Record<string, { connection?: Record<string, unknown> }[]>;
} | null;

export function liveSnapshot(
  src: MonitorSource,
  varz: Record<string, unknown>,
  threads: ThreadInfo[],
  cluster: ClusterReply | null,
  gatewayz: GatewayzData = null,
  leafs: LeafRecord[] = [],
): Record<string, unknown> {
  const id = src.identity;
  // The totals from the same reads as the thread rows, so the page's rates add up.
  const rows = threads.map(threadCounters);
  const total = (k: string): number => rows.reduce((n, r) => n + (r[k] as number), 0);
  const server = {
    server_id: id.serverId,
    server_name: id.serverName,
    skein_version: SKEIN_VERSION,
    protocol_version: PROTOCOL_VERSION,
    host: varz.host,
    port: varz.port,
    start: varz.start,
    uptime: varz.uptime,
    cluster: id.cluster ?? '',
    connections: varz.connections,
    total_connections: varz.total_connections,
    subscriptions: varz.subscriptions,
    slow_consumers: varz.slow_consumers,
    routes: varz.routes,
    in_msgs: total('in_msgs'),
    out_msgs: total('out_msgs'),
    in_bytes: total('in_bytes'),
    out_bytes: total('out_bytes'),
    mem: varz.mem,
    cpu: varz.cpu,
    workers: src.opts.workers,
  };
  let clusterView: Record<string, unknown> | null = null;
  if (cluster !== null) {
    const servers: Record<string, unknown>[] = [
      {
        server_id: id.serverId,
        server_name: id.serverName,
        self: true,
        connect_urls: id.connectUrls ?? [],
      },
    ];
    for (const r of [...cluster.routes].sort((a, b) => a.remoteName.localeCompare(b.remoteName))) {
      servers.push({
        server_id: r.remoteId,
        server_name: r.remoteName || r.remoteId,
        self: false,
        connect_urls: r.connectUrls,
        route: {
          rid: r.rid,
          ip: r.ip,
          port: r.port,
          route_url: r.routeUrl,
          did_solicit: r.didSolicit,
          is_configured: r.isConfigured,
          rtt: rttString(r.rttMs),
          subscriptions: r.numSubs,
          pending_bytes: r.pending,
          in_msgs: r.inMsgs,
          out_msgs: r.outMsgs,
          in_bytes: r.inBytes,
          out_bytes: r.outBytes,
        },
      });
    }
    clusterView = { name: cluster.name, servers };
  }
  return {
    now_ms: Date.now(),
    server,
    threads: rows,
    cluster: clusterView,
    gateway_name: gatewayz?.name ?? '',
    gateways: gatewayRows(gatewayz),
    // Every leaf connection, either side (is_spoke: the peer is this server's hub).
    leafs: leafs
      .sort((a, b) => a.lid - b.lid)
      .map((l) => ({
        lid: l.lid,
        name: l.name,
        is_spoke: l.isSpoke,
        ip: l.ip,
        port: l.port,
        rtt: rttString(l.rttMs),
        subscriptions: l.numSubs,
        in_msgs: l.inMsgs,
        out_msgs: l.outMsgs,
        in_bytes: l.inBytes,
        out_bytes: l.outBytes,
      })),
  };
}

/** One row per gateway connection, outbound then inbound, for the live page. */
function gatewayRows(z: GatewayzData): Record<string, unknown>[] {
  if (z === null) return [];
  const rows: Record<string, unknown>[] = [];
  const row = (gateway: string, direction: string, c: Record<string, unknown> | undefined): void => {
    if (c === undefined) return;
    rows.push({
      gateway,
      direction,
      cid: c.cid,
      ip: c.ip,
      port: c.port,
      rtt: c.rtt,
      name: c.name,
      in_msgs: c.in_msgs,
      out_msgs: c.out_msgs,
      in_bytes: c.in_bytes,
      out_bytes: c.out_bytes,
    });
  };
  for (const [name, o] of Object.entries(z.outbound_gateways ?? {})) row(name, 'outbound', o.connection);
  for (const [name, list] of Object.entries(z.inbound_gateways ?? {})) for (const i of list) row(name, 'inbound', i.connection);
  return rows;
}
