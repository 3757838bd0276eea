// The one Options type. Filled from two front ends (YAML config file, command-line flags) and
// validated here; everything else reads Options, never raw YAML or argv.
// OWNER: config helper (loaders + validation). The type below is the contract the core uses.

export interface UserPermissions {
  publish?: { allow?: string[]; deny?: string[] };
  subscribe?: { allow?: string[]; deny?: string[] };
}

export interface UserEntry {
  user: string;
  password: string;
  permissions?: UserPermissions;
}

export interface AuthorizationOptions {
  user?: string;
  password?: string;
  token?: string;
  users?: UserEntry[];
  timeoutMs: number; // `timeout` in seconds in the file (may be fractional); default 2s
}

export interface ClusterOptions {
  name?: string;
  host: string;
  port: number;
  authorization?: { user?: string; password?: string; token?: string; timeoutMs: number };
  routes: string[];
  noAdvertise: boolean;
  connectRetries: number;
}

export interface GatewayOptions {
  name: string;
  host: string;
  port: number;
  authorization?: { user?: string; password?: string; token?: string; timeoutMs: number };
  gateways: { name: string; urls: string[] }[];
}

export interface Options {
  configFile?: string;
  serverName?: string; // default: server id (filled by the server at start)
  host: string; // default 0.0.0.0
  port: number; // default 4222; -1 means random (the server resolves it to 0 for listen)
  workers: number; // default os.availableParallelism()
  maxPayload: number; // 1048576
  maxControlLine: number; // 4096
  maxPending: number; // 67108864
  maxConnections: number; // 65536
  maxSubscriptions: number; // 0 = unlimited
  pingIntervalMs: number; // 2 minutes
  pingMax: number; // 2
  writeDeadlineMs: number; // 10 s
  authorization?: AuthorizationOptions;
  cluster?: ClusterOptions;
  gateway?: GatewayOptions;
  httpPort?: number; // monitoring (`http_port` / `-m`); 0/undefined = off
  debug: boolean;
  trace: boolean;
  pidFile?: string;
}
