// Server identity and the INFO line, in nats-server's field order.

import { randomBytes } from 'node:crypto';
import type { Options } from './options.ts';

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
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A 56-character id starting with 'N', shaped like nats-server's nkey public key. */
export function newServerId(): string {
  const bytes = randomBytes(55);
  let id = 'N';
  for (const b of bytes) id += BASE32[b & 31];
  return id;
}

export function clientInfoJson(id: ServerIdentity, opts: Options, authRequired: boolean, cid: number, clientIp: string): string {
  const info: Record<string, unknown> = {
    server_id: id.serverId,
    server_name: id.serverName,
    version: PROTOCOL_VERSION,
    proto: 1,
    go: `skein ${SKEIN_VERSION} (node ${process.version})`,
    host: id.host,
    port: id.port,
    headers: true,
  };
  if (authRequired) info.auth_required = true;
  info.max_payload = opts.maxPayload;
  info.client_id = cid;
  if (clientIp !== '') info.client_ip = clientIp.startsWith('::ffff:') ? clientIp.slice(7) : clientIp;
  if (id.cluster !== undefined && id.cluster !== '') info.cluster = id.cluster;
  if (id.connectUrls !== undefined && id.connectUrls.length > 0) info.connect_urls = id.connectUrls;
  return `INFO ${JSON.stringify(info)} \r\n`;
}
