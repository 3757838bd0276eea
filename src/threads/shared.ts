// The shared-memory layout handed to every thread: one inbox per thread (a multi-producer
// ring every other thread writes its records into), one interest log per thread, the
// interest generation word, doorbells, liveness flags and connection counters. Created once
// by the main thread; threads attach to the same SharedArrayBuffers.
//
// Everything is linear in the number of threads: N inboxes of a fixed size (smaller as N
// grows, so the total stays bounded), N logs with N reader cursors each. The big buffers are
// reserved, not touched: the kernel backs a page only once a thread writes it, so idle
// threads cost their headers and nothing else.
//
// Thread roles are part of the layout: threads [0, workers) are client workers, then one thread
// per server-to-server role the server runs (route, gateway, leaf, in that order). Who may
// forward to whom follows from the roles (threads/roles.ts), never from thread numbers.

import { Inbox, inboxBytes } from './ring.ts';
import { InterestLog, interestLogBytes } from './interest.ts';
import { ThreadRole, type ThreadRoleCode } from './roles.ts';
import { directTableBytes } from './direct.ts';

export interface SharedLayout {
  threads: number;
  /** Each thread's role, by index. */
  roles: ThreadRoleCode[];
  /** The client workers: threads [0, workers). */
  workers: number;
  /** The route thread's index, or -1 without a cluster. */
  routeThread: number;
  /** The gateway thread's index, or -1 without gateways. */
  gatewayThread: number;
  /** The leaf thread's index, or -1 without leafnodes. */
  leafThread: number;
  /** All inboxes: thread t's at t * inboxStride. */
  inboxes: SharedArrayBuffer;
  inboxCapacity: number;
  inboxStride: number;
  /** All interest logs: thread t's at t * logStride. */
  logs: SharedArrayBuffer;
  logCapacity: number;
  logStride: number;
  /** One Int32 bumped by every interest log append. */
  interestGen: SharedArrayBuffer;
  doorbells: SharedArrayBuffer;
  alive: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /** One Int32: the last connection id handed out. Clients (cid) and routes (rid) share it, as in nats-server. */
  ids: SharedArrayBuffer;
  /** The client workers' direct-delivery slots (direct.ts). */
  direct: SharedArrayBuffer;
}

/** Most threads one layout takes (workers plus the route, gateway and leaf threads). */
export const MAX_LAYOUT_THREADS = 1024;

/** The next connection id (cid/rid), unique across every thread of the server. */
export function nextConnectionId(ids: SharedArrayBuffer): number {
  return Atomics.add(new Int32Array(ids), 0, 1) + 1;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * One inbox's data bytes: 4 MiB for a few threads, shrinking to 1 MiB from 64 threads on (at
 * most 1 GiB reserved in total for 1024). A message larger than a block (a quarter of it)
 * crosses in pieces, so max_payload does not size it.
 */
export function inboxCapacity(threads: number): number {
  if (threads <= 8) return 4 * 1024 * 1024;
  if (threads < 64) return 2 * 1024 * 1024;
  return 1024 * 1024;
}

/** One interest log's bytes: room for the largest SUB a client may send, 64 MiB in total at most otherwise. */
export function logCapacity(threads: number, maxControlLine: number): number {
  const share = Math.min(4 * 1024 * 1024, Math.max(256 * 1024, nextPow2(Math.floor((64 * 1024 * 1024) / Math.max(1, threads)))));
  return Math.max(share, nextPow2(2 * (maxControlLine + 64)));
}

/** The server-to-server threads a server runs next to its client workers. */
export interface PeerThreads {
  route?: boolean;
  gateway?: boolean;
  leaf?: boolean;
}

/** Each thread's role: `workers` client workers, then one thread per role in `peers`, in order. */
export function layoutRoles(workers: number, peers: PeerThreads): ThreadRoleCode[] {
  const roles: ThreadRoleCode[] = Array.from({ length: workers }, () => ThreadRole.worker);
  if (peers.route === true) roles.push(ThreadRole.route);
  if (peers.gateway === true) roles.push(ThreadRole.gateway);
  if (peers.leaf === true) roles.push(ThreadRole.leaf);
  return roles;
}

/** `workers` client workers, then a thread for each server-to-server role in `peers`. */
export function createLayout(workers: number, maxControlLine: number, peers: PeerThreads = {}): SharedLayout {
  const roles = layoutRoles(workers, peers);
  const routeThread = roles.indexOf(ThreadRole.route);
  const gatewayThread = roles.indexOf(ThreadRole.gateway);
  const leafThread = roles.indexOf(ThreadRole.leaf);
  const threads = roles.length;
  if (workers < 1 || threads > MAX_LAYOUT_THREADS) throw new Error(`a layout takes 1 to ${MAX_LAYOUT_THREADS} threads, not ${threads}`);
  const icap = inboxCapacity(threads);
  const istride = align(inboxBytes(icap, threads));
  const lcap = logCapacity(threads, maxControlLine);
  const lstride = align(interestLogBytes(lcap, threads));
  const layout: SharedLayout = {
    threads,
    roles,
    workers,
    routeThread,
    gatewayThread,
    leafThread,
    inboxes: new SharedArrayBuffer(threads * istride),
    inboxCapacity: icap,
    inboxStride: istride,
    logs: new SharedArrayBuffer(threads * lstride),
    logCapacity: lcap,
    logStride: lstride,
    interestGen: new SharedArrayBuffer(4),
    doorbells: new SharedArrayBuffer(threads * 8),
    alive: new SharedArrayBuffer(threads * 4),
    counters: new SharedArrayBuffer(threads * 4),
    ids: new SharedArrayBuffer(4),
    direct: new SharedArrayBuffer(directTableBytes(workers)),
  };
  // Every thread reads every other thread's log from the start.
  for (let t = 0; t < threads; t++) {
    const lg = openLog(layout, t);
    for (let r = 0; r < threads; r++) if (r !== t) lg.openReader(r, 0);
  }
  return layout;
}

/** Page-align each thread's share, so one thread's traffic touches only its own pages. */
function align(bytes: number): number {
  return Math.ceil(bytes / 4096) * 4096;
}

/** Thread t's inbox. */
export function openInbox(layout: SharedLayout, t: number): Inbox {
  return new Inbox(layout.inboxes, t * layout.inboxStride, layout.inboxCapacity, layout.threads);
}

/** Thread t's interest log. */
export function openLog(layout: SharedLayout, t: number): InterestLog {
  return new InterestLog(layout.logs, t * layout.logStride, layout.logCapacity, layout.threads, layout.interestGen);
}

/**
 * One thread's connection count, for the main thread's placement: main adds when it hands
 * a socket over, the owning worker subtracts when the connection closes.
 */
export class ThreadCounters {
  private readonly conns: Int32Array;
  private readonly thread: number;

  constructor(sab: SharedArrayBuffer, thread: number) {
    this.conns = new Int32Array(sab);
    this.thread = thread;
  }

  addConnections(delta: number): void {
    Atomics.add(this.conns, this.thread, delta);
  }

  connections(): number {
    return Atomics.load(this.conns, this.thread);
  }

  resetConnections(): void {
    Atomics.store(this.conns, this.thread, 0);
  }
}
