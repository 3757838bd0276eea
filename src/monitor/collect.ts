// The thread side of monitoring: what a client worker or the route thread answers when the main
// thread asks (a `monitor` control message, msgpack on the thread's MessagePort). Only ever
// runs on request, on the thread that owns the connections; nothing here is on the hot path.
// The records are raw facts (times in epoch milliseconds); the main thread turns them into
// nats-server's JSON (endpoints.ts).

import type { Broker } from '../broker/broker.ts';
import type { ClientConn } from '../conn/client.ts';
import type { RouteControl } from '../cluster/route-control.ts';
import type { RouteConn } from '../conn/route.ts';
import type { LeafControl } from '../cluster/leaf-control.ts';
import type { TLSSocket } from 'node:tls';
import { tlsCipherText, tlsVersionText } from '../conn/tls.ts';
import { shown } from '../protocol/bytes.ts';
import type { ClusterReply, ConnRecord, LeafzReply, MonitorQuery, RouteRecord, SubRecord, SubszReply, SubsModeValue } from './query.ts';
import { SubsMode } from './query.ts';

/** nats-server keeps this many closed connections (MaxClosedClients). */
export const MAX_CLOSED_CONNECTIONS = 10_000;

function plainIp(addr: string): string {
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

function subsOf(conn: ClientConn, mode: SubsModeValue): SubRecord[] | undefined {
  if (mode === SubsMode.none || conn.subs.size === 0) return undefined;
  const out: SubRecord[] = [];
  for (const s of conn.subs.values()) {
    // Subjects are bytes (one char per byte); JSON shows them as UTF-8 text, as Go's encoder does.
    out.push({
      subject: shown(s.subject),
      queue: s.queue === null ? null : shown(s.queue),
      sid: shown(s.sid),
      msgs: s.delivered,
      max: s.max,
      cid: conn.cid,
    });
  }
  return out;
}

/** A TLS connection whose handshake completed (nats-server leaves out ones still shaking hands). */
function tlsOf(conn: ClientConn): TLSSocket | null {
  const s = conn.socket as Partial<TLSSocket>;
  return s.encrypted === true && conn.tlsDeadline === 0 && typeof s.getProtocol === 'function' && s.getProtocol() !== null
    ? (s as TLSSocket)
    : null;
}

function connRecord(broker: Broker, conn: ClientConn, subs: SubsModeValue): ConnRecord {
  const token = broker.opts.authorization?.token;
  const tls = tlsOf(conn);
  return {
    cid: conn.cid,
    ip: plainIp(conn.remoteAddr),
    port: conn.remotePort,
    start: conn.startedAt,
    last: conn.lastInboundAt,
    stop: 0,
    reason: '',
    rttMs: conn.rttMs,
    pending: conn.closed ? 0 : conn.pendingBytes,
    inMsgs: conn.inMsgs,
    outMsgs: conn.outMsgs,
    inBytes: conn.inBytes,
    outBytes: conn.outBytes,
    numSubs: conn.subs.size,
    name: conn.name,
    lang: conn.lang,
    version: conn.version,
    user: conn.user,
    authUser: conn.user !== '' ? conn.user : token !== undefined && conn.connectReceived ? token : '',
    tlsVersion: tls === null ? '' : tlsVersionText(tls),
    tlsCipher: tls === null ? '' : tlsCipherText(tls),
    subs: subsOf(conn, subs),
  };
}

/**
 * The worker's recently closed connections, as nats-server keeps them (server.go
 * saveClosedClient): the connection's facts at close, with every subscription's detail.
 * Bounded; the oldest goes first. Runs on the owning worker only.
 */
export class ClosedConnections {
  private readonly ring: (ConnRecord | undefined)[];
  private next = 0;
  private count = 0;

  constructor(capacity = MAX_CLOSED_CONNECTIONS) {
    this.ring = new Array<ConnRecord | undefined>(capacity);
  }

  add(broker: Broker, conn: ClientConn): void {
    const rec = connRecord(broker, conn, SubsMode.detail);
    rec.stop = Date.now();
    rec.reason = conn.closeReason;
    this.ring[this.next] = rec;
    this.next = (this.next + 1) % this.ring.length;
    if (this.count < this.ring.length) this.count++;
  }

  /** Oldest first. */
  list(): ConnRecord[] {
    const out: ConnRecord[] = [];
    const cap = this.ring.length;
    for (let i = 0; i < this.count; i++) out.push(this.ring[(this.next - this.count + i + cap) % cap]!);
    return out;
  }
}

function withSubs(rec: ConnRecord, mode: SubsModeValue): ConnRecord {
  if (mode === SubsMode.detail || rec.subs === undefined) return rec;
  return { ...rec, subs: mode === SubsMode.none ? undefined : rec.subs };
}

/** A client worker's answer. Runs on that worker. */
export function answerWorker(broker: Broker, closed: ClosedConnections, q: MonitorQuery): unknown {
  switch (q.kind) {
    case 'connz': {
      const out: ConnRecord[] = [];
      if (q.open) for (const c of broker.conns) out.push(connRecord(broker, c, q.subs));
      if (q.closed) for (const r of closed.list()) out.push(withSubs(r, q.subs));
      return out;
    }
    case 'subsz': {
      const sl = broker.sublist;
      const fan = sl.cacheFanout();
      let subscriptions = 0;
      let list: SubRecord[] | undefined;
      if (q.list) list = [];
      for (const c of broker.conns) {
        subscriptions += c.subs.size;
        if (list !== undefined) for (const r of subsOf(c, SubsMode.detail) ?? []) list.push(r);
      }
      const reply: SubszReply = {
        subscriptions,
        inserts: sl.inserts,
        removes: sl.removes,
        matches: sl.matches,
        cacheHits: sl.cacheHits,
        cacheEntries: fan.entries,
        fanoutTotal: fan.total,
        fanoutMax: fan.max,
        list,
      };
      return reply;
    }
    default:
      return null;
  }
}

function routeRecord(r: RouteConn, subs: SubsModeValue): RouteRecord {
  let list: [string, string | null][] | undefined;
  if (subs !== SubsMode.none && r.subs.size > 0)
    list = [...r.subs.values()].map((s) => [shown(s.subject), s.queue === null ? null : shown(s.queue)]);
  const info = r.remoteInfo;
  const ip = info?.ip ?? '';
  const host = info?.host ?? r.remoteAddr;
  const port = info?.port ?? 0;
  return {
    rid: r.cid,
    remoteId: r.remoteId,
    remoteName: r.remoteName,
    didSolicit: r.didSolicit,
    isConfigured: r.explicit,
    ip: r.remoteAddr,
    port: r.remotePort,
    start: r.startedAt,
    last: r.lastInboundAt,
    rttMs: r.rttMs,
    pending: r.closed ? 0 : r.pendingBytes,
    inMsgs: r.inMsgs,
    outMsgs: r.outMsgs,
    inBytes: r.inBytes,
    outBytes: r.outBytes,
    numSubs: r.subs.size,
    subs: list,
    connectUrls: r.connectUrls,
    routeUrl: ip !== '' ? ip : `nats-route://${host.includes(':') ? `[${host}]` : host}:${port}/`,
  };
}

/** The route thread's answer. Runs on the route thread. */
export function answerRoute(cluster: RouteControl, q: MonitorQuery): unknown {
  switch (q.kind) {
    case 'routez':
      return [...cluster.registeredRoutes()].map((r) => routeRecord(r, q.subs));
    case 'cluster': {
      const reply: ClusterReply = { name: cluster.name, routes: [...cluster.registeredRoutes()].map((r) => routeRecord(r, SubsMode.none)) };
      return reply;
    }
    default:
      return null;
  }
}

/** The leaf thread's answer. Runs on the leaf thread. */
export function answerLeaf(leaf: LeafControl, q: MonitorQuery): unknown {
  if (q.kind !== 'leafz') return null;
  const reply: LeafzReply = {
    leafs: [...leaf.registered()].map((c) => ({
      lid: c.cid,
      name: c.remoteName,
      isSpoke: c.toHub,
      // A dialled connection shows the hub's address, an accepted one the leaf's (as nats-server's).
      ip: plainIp(c.remoteAddr),
      port: c.remotePort,
      rttMs: c.rttMs,
      inMsgs: c.inMsgs,
      outMsgs: c.outMsgs,
      inBytes: c.inBytes,
      outBytes: c.outBytes,
      numSubs: c.subs.size,
      // Queue subscriptions are listed by subject, as nats-server lists them.
      subs: q.subs ? [...c.subs.values()].map((s) => shown(s.subject)) : undefined,
    })),
    remotes: leaf.remoteUrls(),
  };
  return reply;
}
