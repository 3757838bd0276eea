// Control messages between the main thread and workers: plain objects on MessagePorts
// (structured clone; a serialisation library would cost every worker its load time and
// memory for a few messages). Never used per message: only for lifecycle, snapshots,
// hand-offs and monitoring requests.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { MonitorQuery } from '../monitor/query.ts';
import type { Options } from '../config/options.ts';

/** A socket moving to a worker (or the route thread), with what it needs to know about it. */
export interface SocketHandOff {
  socket: Socket;
  cid: number;
  /** Over max_connections: send the error and close (clients only). */
  reject?: boolean;
}

export type ControlMessage =
  | { type: 'ready'; thread: number }
  | { type: 'shutdown'; graceMs: number }
  /** Test hook (SKEIN_FAULT_INJECTION=1): the route (or gateway, or leaf) thread throws. */
  | { type: 'crash' }
  /** Worker → main, SKEIN_FAULT_INJECTION=1 only: a client published to $SKEIN.FAULT.CRASH.ROUTE (or .GATEWAY, .LEAF). */
  | { type: 'fault'; target: 'route' | 'gateway' | 'leaf' }
  /**
   * Config reload (SIGHUP): run with these options from now on. Client workers close
   * `closeExcess` connections (max_connections went down); the route thread also gets this
   * server's client URLs and the routes to dial and to drop.
   */
  | { type: 'reload'; options: Options; closeExcess: number; clientUrls?: string[]; routesAdded?: string[]; routesRemoved?: string[] }
  /** SIGUSR1: reopen the log file (each thread has its own descriptor). */
  | { type: 'reopen-log' }
  /**
   * Lame duck mode (SIGUSR2). Route thread: send every route INFO with ldm:true. Client
   * workers: send clients an INFO with ldm:true and only the other servers' URLs.
   */
  | { type: 'ldm'; connectUrls?: string[] }
  /** Lame duck mode, after the grace period: close every client, spread over `windowMs`. */
  | { type: 'ldm-close'; windowMs: number }
  /** New cluster name / client URLs: workers send an async INFO to clients that can take it. */
  | { type: 'info'; cluster?: string; connectUrls?: string[] }
  /** Main → each client worker, once the server is ready: give start-up's memory back (threads/memory.ts). */
  | { type: 'settle'; delayMs: number }
  | { type: 'stopped'; thread: number }
  | { type: 'snapshot-request'; from: number }
  | { type: 'snapshot'; from: number; to: number; position: number; entries: [string, string | null, number][] }
  /**
   * Route thread → main: the cluster name or the cluster's client URLs changed (a peer came
   * or went, a name was adopted). Main pushes it to the client workers (async INFO).
   */
  | { type: 'cluster-info'; cluster: string; connectUrls?: string[] }
  /**
   * Gateway thread → main → route thread: this server's gateway URL (route INFO `gateway_url`)
   * and every gateway it has an outbound to, which each route peer hears as a cmd 1 INFO.
   */
  | { type: 'gateway-outbounds'; gatewayUrl: string; outbounds: { name: string; urls: string[] }[] }
  /** Route thread → main → gateway thread: a route peer registered or went, with its gateway URL and server name. */
  | { type: 'gateway-route-peer'; add: boolean; gatewayUrl: string; serverName: string; serverId: string }
  /** Route thread → main → gateway thread: a route peer's cmd 1 gossip about a gateway. */
  | { type: 'gateway-gossip'; gateway: string; urls: string[] }
  /** Route thread → main → leaf thread: the route peers' leaf URLs (leafnode_urls in leaf INFO). */
  | { type: 'leaf-urls'; urls: string[] }
  /** Main → a thread: monitoring wants the thread's connections or subscriptions (src/monitor/collect.ts). */
  | { type: 'monitor'; id: number; query: MonitorQuery }
  /** The thread's answer to `monitor`. */
  | { type: 'monitor-reply'; id: number; thread: number; data: unknown };

/** On a worker's shutdown: call `done` once its sockets are closed, or after `graceMs`. */
export function whenSocketsClosed(openSockets: () => number, graceMs: number, done: () => void): void {
  const deadline = Date.now() + graceMs;
  const check = (): void => {
    if (openSockets() === 0 || Date.now() > deadline) done();
    else setTimeout(check, 10);
  };
  check();
}

let legacyUnpack: ((b: Uint8Array) => unknown) | null = null;

/**
 * A message as it arrives on a port. Plain objects are the norm; a byte array is a control
 * message msgpackr-encoded (the encoding used before), decoded with msgpackr loaded only then.
 */
export function fromPort(m: unknown): SocketHandOff | ControlMessage {
  if (!(m instanceof Uint8Array)) return m as SocketHandOff | ControlMessage;
  legacyUnpack ??= (createRequire(import.meta.url)('msgpackr') as { unpack: (b: Uint8Array) => unknown }).unpack;
  return legacyUnpack(m) as ControlMessage;
}
