// Server identity and the INFO line, in nats-server's field order.

import os from 'node:os';
import net from 'node:net';
import type { Options } from '../config/options.ts';
import { joinHostPort } from './hostport.ts';

/** The protocol version we speak; clients use it for feature detection. */
export const PROTOCOL_VERSION = '2.9.10';
export const SKEIN_VERSION = '0.1.0';

export interface ServerIdentity {
  serverId: string;
  serverName: string;
  host: string;
  port: number;
  /** Cluster name, once known (configured or negotiated). */
  cluster?: string;
  /** Client URLs of this server and its cluster peers (`host:port`), for client failover. */
  connectUrls?: string[];
  /** Set only for the one INFO that announces lame duck mode (`"ldm":true`). */
  lameDuckMode?: boolean;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * node:crypto, loaded on first use: ids are made on the main thread and the route thread, and
 * a worker that imports this file for the INFO line should not pay for crypto (about 1 MB each).
 */
function randomBytes(n: number): Buffer {
  return process.getBuiltinModule('node:crypto').randomBytes(n);
}

/** A 56-character id starting with 'N', shaped like nats-server's nkey public key. */
export function newServerId(): string {
  const bytes = randomBytes(55);
  let id = 'N';
  for (const b of bytes) id += BASE32[b & 31];
  return id;
}

const NUID_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A 22-character random cluster name, like the nuid nats-server generates for an unnamed cluster. */
export function newClusterName(): string {
  let name = '';
  for (const b of randomBytes(22)) name += NUID_CHARS[b % 62];
  return name;
}

/**
 * This server's client URLs for `connect_urls` (server.go getClientConnectURLs):
 * `client_advertise` if set; for a wildcard host every global unicast interface address;
 * otherwise host:port.
 */
export function clientConnectUrls(opts: Options, port: number): string[] {
  if (opts.clientAdvertise !== undefined && opts.clientAdvertise !== '') {
    const adv = opts.clientAdvertise;
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(adv) ?? /^([^:]+)(?::(\d+))?$/.exec(adv);
    if (m !== null) return [joinHostPort(m[1], m[2] !== undefined ? Number(m[2]) : port)];
    return [adv];
  }
  const host = opts.host;
  if (host === '0.0.0.0' || host === '::' || host === '') {
    const urls: string[] = [];
    for (const addrs of Object.values(os.networkInterfaces())) {
      for (const a of addrs ?? []) {
        if (a.internal || !net.isIP(a.address)) continue;
        if (a.family === 'IPv6' && /^fe80:/i.test(a.address)) continue; // link-local: not global unicast
        urls.push(joinHostPort(a.address, port));
      }
    }
    if (urls.length > 0) return urls;
  }
  return [joinHostPort(host, port)];
}

/**
 * A client INFO in two parts around the per-connection fields (client_id, client_ip, nonce),
 * so a worker builds the JSON once and only splices those in for each new connection. Key
 * order is nats-server's.
 */
export interface ClientInfoParts {
  /** `INFO {... ,"client_id":` */
  readonly head: string;
  /** `,"cluster":...} \r\n` */
  readonly tail: string;
}

export function clientInfoParts(id: ServerIdentity, opts: Options, authRequired: boolean): ClientInfoParts {
  const before: Record<string, unknown> = {
    server_id: id.serverId,
    server_name: id.serverName,
    version: PROTOCOL_VERSION,
    proto: 1,
    go: `skein ${SKEIN_VERSION} (node ${process.version})`,
    host: id.host,
    port: id.port,
    headers: true,
  };
  if (authRequired) before.auth_required = true;
  if (opts.tls !== undefined) {
    before.tls_required = true;
    if (opts.tls.verify) before.tls_verify = true;
  }
  before.max_payload = opts.maxPayload;
  const after: Record<string, unknown> = {};
  if (id.cluster !== undefined && id.cluster !== '') after.cluster = id.cluster;
  if (id.connectUrls !== undefined && id.connectUrls.length > 0) after.connect_urls = id.connectUrls;
  if (id.lameDuckMode === true) after.ldm = true;
  const afterJson = JSON.stringify(after);
  return {
    head: `INFO ${JSON.stringify(before).slice(0, -1)},"client_id":`,
    tail: `${afterJson === '{}' ? '' : `,${afterJson.slice(1, -1)}`}} \r\n`,
  };
}

export function clientInfoFrom(parts: ClientInfoParts, cid: number, clientIp: string, nonce = ''): string {
  const ip = clientIp.startsWith('::ffff:') ? clientIp.slice(7) : clientIp;
  return `${parts.head}${cid}${ip !== '' ? `,"client_ip":${JSON.stringify(ip)}` : ''}${nonce !== '' ? `,"nonce":${JSON.stringify(nonce)}` : ''}${parts.tail}`;
}

export function clientInfoJson(
  id: ServerIdentity,
  opts: Options,
  authRequired: boolean,
  cid: number,
  clientIp: string,
  nonce = '',
): string {
  return clientInfoFrom(clientInfoParts(id, opts, authRequired), cid, clientIp, nonce);
}
