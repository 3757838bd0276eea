// What the main thread asks a thread for monitoring (a `monitor` control message) and the
// records the thread answers with (collect.ts builds them; endpoints.ts turns them into
// nats-server's JSON). Shapes only: the control messages (threads/control.ts) carry them
// without pulling in the code that collects them.

/** How much subscription detail a connection record carries. */
export const SubsMode = { none: 0, subjects: 1, detail: 2 } as const;
export type SubsModeValue = (typeof SubsMode)[keyof typeof SubsMode];

/** What the main thread asks a thread for. */
export type MonitorQuery =
  /** Client workers: open and/or recently closed connections. */
  | { kind: 'connz'; open: boolean; closed: boolean; subs: SubsModeValue }
  /** Client workers: sublist statistics, and with `list` every client subscription. */
  | { kind: 'subsz'; list: boolean }
  /** Route thread: the registered routes. */
  | { kind: 'routez'; subs: SubsModeValue }
  /** Route thread: the cluster as known from gossip, for the live page. */
  | { kind: 'cluster' }
  /** Gateway thread: /gatewayz as nats-server shows it (accs=1, gw_name=). */
  | { kind: 'gatewayz'; accs: boolean; gwName: string }
  /** Leaf thread: its leaf connections. */
  | { kind: 'leafz'; subs: boolean };

export interface SubRecord {
  subject: string;
  queue: string | null;
  sid: string;
  msgs: number;
  max: number;
  cid: number;
}

/** One client connection, open or closed. */
export interface ConnRecord {
  cid: number;
  ip: string;
  port: number;
  start: number;
  last: number;
  /** Close time; 0 while open. */
  stop: number;
  reason: string;
  rttMs: number;
  pending: number;
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  numSubs: number;
  name: string;
  lang: string;
  version: string;
  /** The CONNECT user name (`user=` filter, closed `authorized_user`). */
  user: string;
  /** What nats-server's getRawAuthUser gives: the user, else the token. */
  authUser: string;
  /** `1.3`, and the suite's Go name, once a TLS handshake completed; '' otherwise. */
  tlsVersion: string;
  tlsCipher: string;
  subs?: SubRecord[];
}

export interface SubszReply {
  subscriptions: number;
  inserts: number;
  removes: number;
  matches: number;
  cacheHits: number;
  cacheEntries: number;
  fanoutTotal: number;
  fanoutMax: number;
  list?: SubRecord[];
}

export interface RouteRecord {
  rid: number;
  remoteId: string;
  remoteName: string;
  didSolicit: boolean;
  isConfigured: boolean;
  ip: string;
  port: number;
  start: number;
  last: number;
  rttMs: number;
  pending: number;
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  numSubs: number;
  /** `subscriptions_list` (subjects) or the detail as [subject, queue] pairs. */
  subs?: [string, string | null][];
  connectUrls: string[];
  /** The peer's own route URL as it gossips it (`ip`), or its host:port. */
  routeUrl: string;
}

/** One leaf connection (/leafz), as nats-server's LeafInfo. */
export interface LeafRecord {
  lid: number;
  name: string;
  isSpoke: boolean;
  ip: string;
  port: number;
  rttMs: number;
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  numSubs: number;
  subs?: string[];
}

/** The leaf thread's answer to `leafz`: its connections and what its remotes dial (/varz leaf.remotes). */
export interface LeafzReply {
  leafs: LeafRecord[];
  remotes: { urls: string[] }[];
}

export interface ClusterReply {
  name: string;
  routes: RouteRecord[];
}
