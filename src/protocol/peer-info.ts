// The INFO and CONNECT of the server-to-server roles (routes now; gateways and leafnodes use
// the same two objects), decoded into typed objects with Go encoding/json semantics as
// nats-server decodes them (protocol/gojson.ts), so a field of the wrong type is an error and
// never a silent default; and encoded in nats-server's field order (Go marshals struct fields
// in declaration order).

import { decodeGoJson, type GoStruct, type JsonDecodeError } from './gojson.ts';
import { CLIENT_OPTS, defaultConnectFields, type ConnectFields } from './connect.ts';

/** server.go Info: the INFO one server sends another (JSON names; Go's zero values when absent). */
export interface ServerInfo {
  server_id: string;
  server_name: string;
  version: string;
  proto: number;
  git_commit: string;
  go: string;
  host: string;
  port: number;
  headers: boolean;
  auth_required: boolean;
  tls_required: boolean;
  tls_verify: boolean;
  tls_available: boolean;
  max_payload: number;
  jetstream: boolean;
  ip: string;
  client_id: number;
  client_ip: string;
  nonce: string;
  cluster: string;
  cluster_dynamic: boolean;
  domain: string;
  connect_urls: string[];
  ws_connect_urls: string[];
  ldm: boolean;
  // Route specific.
  import: object | null;
  export: object | null;
  lnoc: boolean;
  info_on_connect: boolean;
  connect_info: boolean;
  // Gateway specific.
  gateway: string;
  gateway_urls: string[];
  gateway_url: string;
  gateway_cmd: number;
  /** Base64, as Go marshals a []byte. */
  gateway_cmd_payload: string;
  gateway_nrp: boolean;
  gateway_iom: boolean;
  // Leafnode specific.
  leafnode_urls: string[];
  remote_account: string;
}

/** server.go Info as encoding/json sees it: each field's Go type, in declaration order, and whether it is omitempty. */
const INFO_FIELDS: [keyof ServerInfo, GoStruct['fields'][string], boolean][] = [
  ['server_id', 'string', false],
  ['server_name', 'string', false],
  ['version', 'string', false],
  ['proto', 'int', false],
  ['git_commit', 'string', true],
  ['go', 'string', false],
  ['host', 'string', false],
  ['port', 'int', false],
  ['headers', 'bool', false],
  ['auth_required', 'bool', true],
  ['tls_required', 'bool', true],
  ['tls_verify', 'bool', true],
  ['tls_available', 'bool', true],
  ['max_payload', 'int32', false],
  ['jetstream', 'bool', true],
  ['ip', 'string', true],
  ['client_id', 'uint64', true],
  ['client_ip', 'string', true],
  ['nonce', 'string', true],
  ['cluster', 'string', true],
  ['cluster_dynamic', 'bool', true],
  ['domain', 'string', true],
  ['connect_urls', '[]string', true],
  ['ws_connect_urls', '[]string', true],
  ['ldm', 'bool', true],
  ['import', 'server.SubjectPermission', true],
  ['export', 'server.SubjectPermission', true],
  ['lnoc', 'bool', true],
  ['info_on_connect', 'bool', true],
  ['connect_info', 'bool', true],
  ['gateway', 'string', true],
  ['gateway_urls', '[]string', true],
  ['gateway_url', 'string', true],
  ['gateway_cmd', 'uint8', true],
  ['gateway_cmd_payload', '[]uint8', true],
  ['gateway_nrp', 'bool', true],
  ['gateway_iom', 'bool', true],
  ['leafnode_urls', '[]string', true],
  ['remote_account', 'string', true],
];

const INFO: GoStruct = { name: 'Info', fields: Object.fromEntries(INFO_FIELDS.map(([k, t]) => [k, t])) };

export function emptyServerInfo(): ServerInfo {
  return {
    server_id: '',
    server_name: '',
    version: '',
    proto: 0,
    git_commit: '',
    go: '',
    host: '',
    port: 0,
    headers: false,
    auth_required: false,
    tls_required: false,
    tls_verify: false,
    tls_available: false,
    max_payload: 0,
    jetstream: false,
    ip: '',
    client_id: 0,
    client_ip: '',
    nonce: '',
    cluster: '',
    cluster_dynamic: false,
    domain: '',
    connect_urls: [],
    ws_connect_urls: [],
    ldm: false,
    import: null,
    export: null,
    lnoc: false,
    info_on_connect: false,
    connect_info: false,
    gateway: '',
    gateway_urls: [],
    gateway_url: '',
    gateway_cmd: 0,
    gateway_cmd_payload: '',
    gateway_nrp: false,
    gateway_iom: false,
    leafnode_urls: [],
    remote_account: '',
  };
}

/** A peer's INFO, or why it is refused (processInfo: json.Unmarshal into Info). */
export function decodeServerInfo(json: string): ServerInfo | JsonDecodeError {
  const info = emptyServerInfo();
  return decodeGoJson(json, [INFO], info) ?? info;
}

function isEmptyValue(v: unknown): boolean {
  return v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0);
}

/** An INFO as nats-server marshals it: its fields in order, omitempty ones only when set. */
export function serverInfoJson(info: Partial<ServerInfo>): string {
  const out: Record<string, unknown> = {};
  for (const [key, , omitEmpty] of INFO_FIELDS) {
    const v = info[key];
    if (omitEmpty ? isEmptyValue(v) : v === undefined) continue;
    out[key] = v;
  }
  return JSON.stringify(out);
}

/**
 * A route's (or gateway's) CONNECT: nats-server unmarshals it into ClientOpts (as any
 * CONNECT) and then into route.go connectInfo, so a wrong type in either is an error.
 */
export interface PeerConnect extends ConnectFields {
  cluster: string;
  cluster_dynamic: boolean;
  lnoc: boolean;
  gateway: string;
}

/** route.go connectInfo. */
const CONNECT_INFO: GoStruct = {
  name: 'connectInfo',
  fields: {
    echo: 'bool',
    verbose: 'bool',
    pedantic: 'bool',
    user: 'string',
    pass: 'string',
    tls_required: 'bool',
    headers: 'bool',
    name: 'string',
    cluster: 'string',
    cluster_dynamic: 'bool',
    lnoc: 'bool',
    gateway: 'string',
  },
};

/** A peer's CONNECT, or why it is refused. Absent fields are Go's zero values (a route does not default to verbose). */
export function decodePeerConnect(json: string): PeerConnect | JsonDecodeError {
  const c: PeerConnect = {
    ...defaultConnectFields(),
    echo: false,
    verbose: false,
    pedantic: false,
    cluster: '',
    cluster_dynamic: false,
    lnoc: false,
    gateway: '',
  };
  return decodeGoJson(json, [CLIENT_OPTS, CONNECT_INFO], c) ?? c;
}

export interface RouteConnectInfo {
  user?: string;
  pass?: string;
  name: string;
  cluster: string;
  dynamic: boolean;
  tls?: boolean; // cluster.tls is configured
}

/** route.go connectInfo, in field order, `lnoc` included: we speak LS+/LS-/LMSG with the origin cluster. */
export function routeConnectJson(c: RouteConnectInfo): string {
  const o: Record<string, unknown> = { echo: true, verbose: false, pedantic: false };
  if (c.user) o.user = c.user;
  if (c.pass) o.pass = c.pass;
  o.tls_required = c.tls === true;
  o.headers = true;
  o.name = c.name;
  o.cluster = c.cluster;
  if (c.dynamic) o.cluster_dynamic = true;
  o.lnoc = true;
  return JSON.stringify(o);
}
