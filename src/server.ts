// The main thread: owns the client listener, starts the worker pool, and hands each
// accepted socket to the worker with the fewest connections. Bytes never pass through
// here: the socket itself moves (Node >= 24.21 transferable sockets).
//
// With a cluster configured, main also owns the route listener and one more thread joins
// the shared layout: the route thread (workers/route.ts, its own one-thread pool, index =
// number of client workers). Accepted route sockets move there; it dials routes itself.
// With a leafnodes block, likewise the leaf listener and the leaf thread (workers/leaf.ts, its
// own one-thread pool, after the route thread): accepted leaf sockets move there; it dials the
// remotes itself.
//
// Operations also run here (main.ts maps the signals): config reload (src/config/reload.ts plans
// it; every worker and the route thread get the new options by control message), lame duck
// mode, log file reopening, the pid file and the ports file.

import { DirectTable } from './threads/direct.ts';
import net from 'node:net';
import os from 'node:os';
import module from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Options } from './config/options.ts';
import {
  createLayout,
  layoutRoles,
  nextConnectionId,
  openInbox,
  openLog,
  ThreadCounters,
  MAX_LAYOUT_THREADS,
  type SharedLayout,
} from './threads/shared.ts';
import { ThreadRole, type ThreadRoleCode } from './threads/roles.ts';
import { InterestOp } from './threads/interest.ts';
import { Doorbell } from './threads/ring.ts';
import { newServerId, newClusterName, clientConnectUrls, PROTOCOL_VERSION, SKEIN_VERSION, type ServerIdentity } from './protocol/info.ts';
import { fromPort, type ControlMessage, type SocketHandOff } from './threads/control.ts';
import { configureLog, log, reopenLogFile } from './log.ts';
import { joinHostPort, listenLikeGo } from './protocol/hostport.ts';
import { hasPlaintextPasswords, PLAINTEXT_PASSWORDS_WARNING } from './conn/auth.ts';

import { Monitor } from './monitor/monitor.ts';
import { gatewayInfoAddress } from './cluster/gateway-control.ts';
import { leafInfoUrl } from './cluster/leaf-control.ts';
import type { Inbox } from './threads/ring.ts';
import { planReload, ReloadError } from './config/reload.ts';
import { DEFAULT_LAME_DUCK_DURATION_MS, DEFAULT_LAME_DUCK_GRACE_PERIOD_MS, goDuration } from './config/options.ts';
import { compactSoon, exposeGcToNewThreads, startMemoryReducer } from './threads/memory.ts';
import { stripSources, type StrippedSources } from './threads/sources.ts';

/**
 * V8 grows a thread's young generation up to 48 MiB under allocation bursts (connection
 * churn, SUB/UNSUB storms), which with a few threads was a good part of a busy server's RSS.
 * The hot path allocates almost nothing, so a smaller one costs no throughput we could
 * measure (pubsub within run-to-run noise at 6 and 48 MiB). See the README's memory model.
 */
const WORKER_HEAP_LIMITS = { maxYoungGenerationSizeMb: 12 };
/** Each thread role's entry under workers/. */
const ENTRIES: Record<ThreadRoleCode, string> = {
  [ThreadRole.worker]: 'worker.ts',
  [ThreadRole.route]: 'route.ts',
  [ThreadRole.gateway]: 'gateway.ts',
  [ThreadRole.leaf]: 'leaf.ts',
};
/** After start-up, workers compact their heaps 16 at a time, 20 ms apart (see settle). */
const SETTLE_SPREAD = 16;
const SETTLE_STAGGER_MS = 20;

interface WorkerSlot {
  thread: number;
  /** A client worker, or the route thread (the layout's role of the thread). */
  role: ThreadRoleCode;
  port: MessagePort | null;
  ready: boolean;
  stopped: boolean;
  generation: number;
}

export class Server {
  /** The running options; replaced as a whole by a reload. */
  opts: Options;
  readonly identity: ServerIdentity;
  private layout!: SharedLayout;
  private pool!: Piscina;
  private routePool: Piscina | null = null;
  private gatewayPool: Piscina | null = null;
  private gatewayListener: net.Server | null = null;
  private gatewayPort = 0;
  /** The gateway thread's last word on its outbounds, for a (replacement) route thread. */
  private gatewayOutbounds: Extract<ControlMessage, { type: 'gateway-outbounds' }> | null = null;
  /** The route thread's registered peers (gateway URL, server name) and gateway gossip, by server id and gateway name. */
  private readonly gatewayRoutePeers = new Map<string, Extract<ControlMessage, { type: 'gateway-route-peer' }>>();
  private readonly gatewayGossip = new Map<string, Extract<ControlMessage, { type: 'gateway-gossip' }>>();
  private leafPool: Piscina | null = null;
  /** Skein's sources, type-stripped once for every pool thread (workers/boot.mjs). */
  private sources: StrippedSources | null = null;
  private leafListener: net.Server | null = null;
  /** The leaf listener's port (0: this server accepts no leafs). */
  private leafPort = 0;
  private listener: net.Server | null = null;
  private routeListener: net.Server | null = null;
  private clusterPort = 0;
  /** The client listener took 0.0.0.0 as a dual-stack socket (the host has IPv6). */
  private dualStack = false;
  private clusterDynamic = false;
  /** Sockets a route, gateway or leafnode listener accepted while that thread starts, by role. */
  private readonly heldPeers = new Map<ThreadRoleCode, net.Socket[]>();
  private readonly slots: WorkerSlot[] = [];
  private counters: ThreadCounters[] = [];
  private shuttingDown = false;
  private readonly faultInjection = process.env.SKEIN_FAULT_INJECTION === '1';
  private readyWaiters: (() => void)[] = [];
  /** Every thread has reported ready once: until then accepted sockets wait (see accept). */
  private allThreadsReady = false;
  private held: net.Socket[] = [];
  /** Monitoring HTTP endpoints (src/monitor/); its counters exist whether or not it listens. */
  readonly monitor: Monitor;
  /** Each thread's inbox, for monitoring's view of what waits into it (read only). */
  private inboxes: Inbox[] = [];
  /** start() has finished: signals that arrive earlier wait for it. */
  private started: Promise<void> | null = null;
  /** Lame duck mode (SIGUSR2): no new clients; the existing ones are closed over lame_duck_duration. */
  private lameDuck = false;
  /** This server's own client URLs, left out of connect_urls once in lame duck mode. */
  private ownClientUrls: string[] = [];
  /** The ports file written at start (ports_file_dir), removed at exit. */
  private portsFile: string | undefined;

  constructor(opts: Options) {
    this.opts = opts;
    const serverId = newServerId();
    this.identity = { serverId, serverName: opts.serverName ?? serverId, host: opts.host, port: opts.port };
    if (opts.cluster !== undefined) {
      // A cluster without a name gets a random one (nats-server: nuid), adopted away later
      // if a peer's name wins the negotiation. Clients see it in INFO `cluster` from the start.
      this.clusterDynamic = opts.cluster.name === undefined;
      this.identity.cluster = opts.cluster.name ?? newClusterName();
    } else if (opts.gateway !== undefined) {
      // Without a cluster block the gateway names the cluster (client INFO `cluster`, varz), as
      // in nats-server.
      this.identity.cluster = opts.gateway.name;
    }
    this.monitor = new Monitor(this.monitorHost());
  }

  /** What the monitor may see of the server: threads, counters and listeners, no internals. */
  private monitorHost(): ConstructorParameters<typeof Monitor>[0] {
    const workers = Math.min(this.opts.workers, MAX_LAYOUT_THREADS - 1);
    const roles = layoutRoles(workers, {
      route: this.opts.cluster !== undefined,
      gateway: this.opts.gateway !== undefined,
      leaf: this.opts.leafNodes !== undefined,
    });
    const server = this; // eslint-disable-line @typescript-eslint/no-this-alias
    return {
      // A getter: a config reload replaces the options object.
      get opts(): Options {
        return server.opts;
      },
      identity: this.identity,
      threadKinds: roles.map((r) =>
        r === ThreadRole.worker ? 'client' : r === ThreadRole.gateway ? 'gateway' : r === ThreadRole.leaf ? 'leaf' : 'route',
      ),
      post: (t, msg) => {
        const slot = this.slots[t];
        if (slot === undefined || !slot.ready || slot.port === null) return false;
        slot.port.postMessage(msg);
        return true;
      },
      threadReady: (t) => this.slots[t]?.ready === true,
      connections: (t) => this.counters[t]?.connections() ?? 0,
      ringBacklog: (t) => {
        let n = 0;
        n += this.inboxes[t]?.backlogBytes() ?? 0;
        return n;
      },
      clusterPort: () => this.clusterPort,
      gatewayPort: () => this.gatewayPort,
      leafPort: () => this.leafPort,
      listening: () => ({
        server: this.listener?.listening === true,
        route: this.opts.cluster === undefined || this.routeListener?.listening === true,
      }),
    };
  }

  get port(): number {
    return this.identity.port;
  }

  async start(): Promise<void> {
    this.started = this.startListening();
    return this.started;
  }

  private async startListening(): Promise<void> {
    const o = this.opts;
    log.info(`Starting skein`);
    log.info(`  Version:  ${SKEIN_VERSION} (nats protocol ${PROTOCOL_VERSION})`);
    log.info(`  Node:     ${process.version}`);
    log.info(`  Name:     ${this.identity.serverName}`);
    log.info(`  ID:       ${this.identity.serverId}`);
    const workers = Math.min(o.workers, MAX_LAYOUT_THREADS - 1);
    if (workers < o.workers) log.warn(`${o.workers} workers requested; the shared layout takes at most ${workers}: running ${workers}`);
    log.info(`  Workers:  ${workers}`);
    useCompileCache();
    if (o.configFile !== undefined) log.info(`Using configuration file: ${o.configFile}`);
    // The pid of this process, the one that handles the signals (server.go logPid).
    if (o.pidFile !== undefined) {
      try {
        fs.writeFileSync(o.pidFile, String(process.pid), { mode: 0o660 });
      } catch (err) {
        throw new Error(`Could not write pidfile: ${(err as Error).message}`);
      }
    }
    if (hasPlaintextPasswords(o.authorization, o.tls?.map === true)) log.warn(PLAINTEXT_PASSWORDS_WARNING);
    await this.monitor.start();

    // Bind first so a random port (-1) is known before workers build their INFO.
    const listener = net.createServer({ pauseOnConnect: true, noDelay: true }, (s) => this.accept(s));
    this.listener = listener;
    this.dualStack = (await listenLikeGo(listener, o.host, o.port < 0 ? 0 : o.port, 4096)).dualStack;
    listener.on('error', (err) => log.error(`Client listener error: ${err.message}`));
    this.identity.port = (listener.address() as net.AddressInfo).port;

    const clustered = o.cluster !== undefined;
    if (clustered) await this.listenForRoutes();
    const gateways = o.gateway !== undefined;
    if (gateways) await this.listenForGateways();
    const leafs = o.leafNodes !== undefined;
    if (leafs && o.leafNodes!.port !== 0) await this.listenForLeafs();
    this.layout = createLayout(workers, o.maxControlLine, { route: clustered, gateway: gateways, leaf: leafs });
    this.counters = [];
    for (let t = 0; t < this.layout.threads; t++) this.counters.push(new ThreadCounters(this.layout.counters, t));
    // Monitoring reads inbox fill levels (bytes waiting into each thread); it never writes them.
    this.inboxes = [];
    for (let t = 0; t < this.layout.threads; t++) this.inboxes.push(openInbox(this.layout, t));
    this.sources = stripSources(new URL('..', import.meta.url));
    exposeGcToNewThreads();
    this.pool = threadPool(workers);
    if (clustered) this.routePool = threadPool(1);
    if (gateways) this.gatewayPool = threadPool(1);
    if (leafs) this.leafPool = threadPool(1);
    const ready = new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    for (let t = 0; t < this.layout.threads; t++) {
      this.slots.push({ thread: t, role: this.layout.roles[t], port: null, ready: false, stopped: false, generation: 0 });
      this.runWorker(t, false);
    }
    await ready;
    startMemoryReducer();
    this.settle();
    log.info(`Listening for client connections on ${joinHostPort(o.host, this.identity.port)}`);
    if (o.tls !== undefined) log.info('TLS required for client connections');
    if (clustered) {
      log.info(`Cluster name is ${this.identity.cluster}`);
      if (this.clusterDynamic) log.warn('Cluster name was dynamically generated, consider setting one');
      log.info(`Listening for route connections on ${joinHostPort(o.cluster!.host, this.clusterPort)}`);
    }
    if (gateways) {
      log.info(`Gateway name is ${o.gateway!.name}`);
      // 2.9.10's plural, which operators and the tests grep for.
      log.info(`Listening for gateways connections on ${joinHostPort(o.gateway!.host, this.gatewayPort)}`);
    }
    if (this.leafPort !== 0) log.info(`Listening for leafnode connections on ${joinHostPort(o.leafNodes!.host, this.leafPort)}`);
    this.monitor.setReady(true);
    this.ownClientUrls = clientConnectUrls(o, this.identity.port);
    this.writePortsFile();
    log.info(`Server is ready`);
  }

  /**
   * Start-up is over: each client worker (and this thread) runs one memory-reducing GC, a few
   * at a time, so an idle pool holds what it needs and not what loading it took (about 2 MB
   * per worker, mostly young generation; measured in bench/README.md, Scaling). A regular
   * full GC does not shrink it; V8's last-resort collection does.
   */
  private settle(): void {
    compactSoon(0);
    for (const s of this.slots) {
      if (s.role === ThreadRole.worker && s.port !== null)
        s.port.postMessage({ type: 'settle', delayMs: SETTLE_STAGGER_MS * (s.thread % SETTLE_SPREAD) } satisfies ControlMessage);
    }
  }

  /** Bind the cluster port (a random one if -1) before the route thread builds its INFO. */
  private async listenForRoutes(): Promise<void> {
    const c = this.opts.cluster!;
    this.routeListener = this.peerListener(ThreadRole.route);
    this.clusterPort = await bindPeerListener(this.routeListener, c.host, c.port, 'Route');
  }

  /** Bind the gateway port (a random one if -1) before the gateway and route threads build their INFO. */
  private async listenForGateways(): Promise<void> {
    const g = this.opts.gateway!;
    this.gatewayListener = this.peerListener(ThreadRole.gateway);
    this.gatewayPort = await bindPeerListener(this.gatewayListener, g.host, g.port, 'Gateway');
  }

  /** Bind the leafnode port (a random one if -1) before the leaf thread builds its INFO. */
  private async listenForLeafs(): Promise<void> {
    const l = this.opts.leafNodes!;
    this.leafListener = this.peerListener(ThreadRole.leaf);
    this.leafPort = await bindPeerListener(this.leafListener, l.host, l.port, 'Leafnode');
  }

  /** A listener whose accepted sockets go to the thread of `role`. */
  private peerListener(role: ThreadRoleCode): net.Server {
    return net.createServer({ pauseOnConnect: true, noDelay: true }, (s) => this.acceptPeer(role, s));
  }

  /** The sockets held for the thread of `role` while it starts. */
  private heldFor(role: ThreadRoleCode): net.Socket[] {
    let held = this.heldPeers.get(role);
    if (held === undefined) this.heldPeers.set(role, (held = []));
    return held;
  }

  /** Move an accepted route, gateway or leaf socket to the thread of `role` (held while it starts). */
  private acceptPeer(role: ThreadRoleCode, socket: net.Socket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    const slot = this.slots.find((s) => s.role === role);
    if (slot === undefined || !slot.ready || slot.port === null) {
      this.heldFor(role).push(socket);
      return;
    }
    const cid = nextConnectionId(this.layout.ids);
    slot.port.postMessage({ socket, cid } satisfies SocketHandOff, [socket as unknown as ArrayBuffer]);
  }

  /** A control message for the thread of `role`, if it runs and is ready. */
  private postTo(role: ThreadRoleCode, msg: ControlMessage): void {
    const slot = this.slots.find((s) => s.role === role);
    if (slot !== undefined && slot.ready && slot.port !== null) slot.port.postMessage(msg);
  }

  private runWorker(thread: number, replacement: boolean): void {
    const slot = this.slots[thread];
    const { port1, port2 } = new MessageChannel();
    slot.port = port1;
    slot.ready = false;
    slot.generation++;
    const generation = slot.generation;
    port1.on('message', (m: unknown) => this.onControl(thread, fromPort(m) as ControlMessage));
    const task =
      slot.role === ThreadRole.gateway
        ? {
            thread,
            port: port2,
            layout: this.layout,
            options: this.opts,
            identity: this.identity,
            gatewayPort: this.gatewayPort,
            replacement,
            stats: this.monitor.statsBuffer,
          }
        : slot.role === ThreadRole.worker
          ? {
              thread,
              port: port2,
              layout: this.layout,
              options: this.opts,
              identity: this.identity,
              replacement,
              faultInjection: this.faultInjection,
              stats: this.monitor.statsBuffer,
            }
          : slot.role === ThreadRole.leaf
            ? {
                thread,
                port: port2,
                layout: this.layout,
                options: this.opts,
                identity: this.identity,
                leafPort: this.leafPort,
                replacement,
                stats: this.monitor.statsBuffer,
              }
            : {
                thread,
                port: port2,
                layout: this.layout,
                options: this.opts,
                identity: this.identity,
                clusterName: this.identity.cluster!,
                clusterDynamic: this.clusterDynamic,
                clusterPort: this.clusterPort,
                clientUrls: clientConnectUrls(this.opts, this.identity.port),
                gatewayUrl:
                  this.opts.gateway !== undefined ? joinHostPort(...gatewayInfoAddress(this.opts.gateway, this.gatewayPort)) : undefined,
                gatewayOutbounds: this.gatewayOutbounds?.outbounds,
                leafUrl:
                  this.leafPort !== 0 && this.opts.leafNodes?.noAdvertise !== true
                    ? leafInfoUrl(this.opts.leafNodes!, this.leafPort)
                    : undefined,
                replacement,
                stats: this.monitor.statsBuffer,
              };
    const pool =
      slot.role === ThreadRole.worker
        ? this.pool
        : slot.role === ThreadRole.gateway
          ? this.gatewayPool!
          : slot.role === ThreadRole.leaf
            ? this.leafPool!
            : this.routePool!;
    const entry = ENTRIES[slot.role];
    const boot = { entry: new URL(`../workers/${entry}`, import.meta.url).href, sources: this.sources };
    pool.run({ ...task, boot }, { transferList: [port2] }).then(
      () => {
        if (!this.shuttingDown) this.onWorkerDied(thread, generation, new Error('worker task ended unexpectedly'));
      },
      (err: Error) => {
        if (!this.shuttingDown) this.onWorkerDied(thread, generation, err);
      },
    );
  }

  /** A worker threw: its connections are gone; clear its interest and start a replacement. */
  private onWorkerDied(thread: number, generation: number, err: Error): void {
    const slot = this.slots[thread];
    if (slot.generation !== generation) return;
    log.error(`${threadName(slot.role, thread)} failed, its connections are closed; starting a replacement: ${err.stack ?? err.message}`);
    slot.ready = false;
    slot.port?.close();
    slot.port = null;
    Atomics.store(new Int32Array(this.layout.alive), thread, 0);
    // Nobody writes its sockets from elsewhere any more (broker/direct.ts).
    if (thread < this.layout.workers) new DirectTable(this.layout.direct).clearWorker(thread);
    if (slot.role === ThreadRole.route) {
      // Its routes are gone: the gateway thread forgets their gateway URLs and server names.
      for (const m of this.gatewayRoutePeers.values()) this.postTo(ThreadRole.gateway, { ...m, add: false });
      this.gatewayRoutePeers.clear();
    }
    this.counters[thread].resetConnections();
    // Others must stop waiting on the dead thread's log cursor and drop its interest.
    for (let t = 0; t < this.layout.threads; t++) if (t !== thread) openLog(this.layout, t).closeReader(thread);
    const own = openLog(this.layout, thread);
    own.adoptWriter();
    own.append(InterestOp.reset, '', null, 0);
    for (let t = 0; t < this.layout.threads; t++) new Doorbell(this.layout.doorbells, t).ringAlways();
    this.runWorker(thread, true);
  }

  private onControl(thread: number, msg: ControlMessage): void {
    switch (msg.type) {
      case 'ready': {
        const slot = this.slots[thread];
        if (slot.generation > 1) log.info(`${threadName(slot.role, thread)} replaced and ready`);
        slot.ready = true;
        if (this.slots.every((s) => s.ready)) {
          this.allThreadsReady = true;
          for (const w of this.readyWaiters.splice(0)) w();
        }
        if (slot.role === ThreadRole.route) {
          for (const sock of this.heldFor(ThreadRole.route).splice(0)) this.acceptPeer(ThreadRole.route, sock);
          if (this.gatewayOutbounds !== null) slot.port!.postMessage(this.gatewayOutbounds);
        } else if (slot.role === ThreadRole.gateway) {
          // What the route thread said before this gateway thread was ready.
          for (const m of this.gatewayRoutePeers.values()) slot.port!.postMessage(m);
          for (const m of this.gatewayGossip.values()) slot.port!.postMessage(m);
          for (const sock of this.heldFor(ThreadRole.gateway).splice(0)) this.acceptPeer(ThreadRole.gateway, sock);
        } else if (slot.role === ThreadRole.leaf)
          for (const sock of this.heldFor(ThreadRole.leaf).splice(0)) this.acceptPeer(ThreadRole.leaf, sock);
        else for (const sock of this.held.splice(0)) this.accept(sock);
        break;
      }
      case 'cluster-info':
        this.broadcastInfo(msg.cluster, msg.connectUrls);
        break;
      case 'gateway-outbounds':
        this.gatewayOutbounds = msg;
        this.postTo(ThreadRole.route, msg);
        break;
      case 'gateway-route-peer':
        // Kept, so a gateway thread that starts (or restarts) after the routes hears of them all.
        if (msg.add) this.gatewayRoutePeers.set(msg.serverId, msg);
        else this.gatewayRoutePeers.delete(msg.serverId);
        this.postTo(ThreadRole.gateway, msg);
        break;
      case 'gateway-gossip':
        this.gatewayGossip.set(msg.gateway, msg);
        this.postTo(ThreadRole.gateway, msg);
        break;
      case 'snapshot-request':
        for (const s of this.slots) {
          if (s.thread !== msg.from && s.ready && s.port !== null) s.port.postMessage(msg);
        }
        break;
      case 'snapshot':
        this.slots[msg.to].port?.postMessage(msg);
        break;
      case 'stopped':
        this.slots[thread].stopped = true;
        break;
      case 'monitor-reply':
        this.monitor.onReply(msg);
        break;
      case 'fault':
        // A client asked for a route thread crash (SKEIN_FAULT_INJECTION=1 only: workers send this only then).
        if (msg.target === 'route') this.crashRouteThread();
        else if (msg.target === 'gateway') this.crashThread(ThreadRole.gateway);
        else if (msg.target === 'leaf') this.crashThread(ThreadRole.leaf);
        break;
      case 'leaf-urls':
        // Route thread: the route peers' leaf URLs changed; the leaf thread tells its leafs.
        this.postAll(msg, ThreadRole.leaf);
        break;
      default:
        break;
    }
  }

  /** Choose the worker with the fewest connections (shared counters) and move the socket there. */
  private accept(socket: net.Socket): void {
    if (this.shuttingDown || this.lameDuck) {
      socket.destroy();
      return;
    }
    let best = -1;
    let bestCount = Infinity;
    let total = 0;
    for (const s of this.slots) {
      if (s.role !== ThreadRole.worker) continue;
      const n = this.counters[s.thread].connections();
      total += n;
      if (s.ready && s.port !== null && n < bestCount) {
        best = s.thread;
        bestCount = n;
      }
    }
    if (best < 0 || !this.allThreadsReady) {
      // Start-up (placement needs every worker, or the first ones would get every early
      // connection) or no worker ready (replacements in progress): hold the socket.
      this.held.push(socket);
      return;
    }
    const cid = nextConnectionId(this.layout.ids);
    const reject = total >= this.opts.maxConnections;
    this.monitor.connectionAccepted();
    // Count it now, not when the worker gets to it, so a burst of accepts spreads out.
    this.counters[best].addConnections(1);
    const port = this.slots[best].port!;
    port.postMessage({ socket, cid, reject } satisfies SocketHandOff, [socket as unknown as ArrayBuffer]);
  }

  /** Test hook (SKEIN_FAULT_INJECTION=1): make the thread of a role throw, to exercise its replacement. */
  private crashThread(role: ThreadRoleCode): void {
    if (!this.faultInjection) return;
    this.slots.find((s) => s.role === role)?.port?.postMessage({ type: 'crash' } satisfies ControlMessage);
  }

  /** Test hook (SKEIN_FAULT_INJECTION=1): make the route thread throw, to exercise its replacement. */
  crashRouteThread(): void {
    if (!this.faultInjection) return;
    const slot = this.slots.find((s) => s.role === ThreadRole.route);
    slot?.port?.postMessage({ type: 'crash' } satisfies ControlMessage);
  }

  /** Push a new cluster name / client URL list to every worker (async INFO to clients). */
  broadcastInfo(cluster: string | undefined, connectUrls: string[] | undefined): void {
    // In lame duck mode clients are offered only the other servers (server.go sendLDMToClients).
    if (this.lameDuck && connectUrls !== undefined) connectUrls = connectUrls.filter((u) => !this.ownClientUrls.includes(u));
    this.identity.cluster = cluster;
    this.identity.connectUrls = connectUrls;
    const msg = { type: 'info', cluster, connectUrls } satisfies ControlMessage;
    // The leaf thread too: a cluster name adopted from a peer is what its leafs are told.
    for (const s of this.slots) if (s.role === ThreadRole.worker || s.role === ThreadRole.leaf) s.port?.postMessage(msg);
  }

  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    log.info('Initiating Shutdown...');
    this.monitor.setReady(false);
    this.monitor.stop();
    this.listener?.close();
    this.routeListener?.close();
    this.gatewayListener?.close();
    this.leafListener?.close();
    for (const held of this.heldPeers.values()) for (const s of held.splice(0)) s.destroy();
    const graceMs = 2000;
    for (const s of this.slots) s.port?.postMessage({ type: 'shutdown', graceMs } satisfies ControlMessage);
    const deadline = Date.now() + graceMs + 1000;
    while (Date.now() < deadline && !this.slots.every((s) => s.stopped || s.port === null)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.pool.destroy();
    await this.routePool?.destroy();
    await this.gatewayPool?.destroy();
    await this.leafPool?.destroy();
    if (this.opts.pidFile !== undefined) {
      try {
        fs.unlinkSync(this.opts.pidFile);
      } catch {
        // already gone
      }
    }
    this.removePortsFile();
    log.info('Server Exiting..');
  }

  // ------------------------------------------------------------------ operations

  /** Run `fn` once start() is done (a signal may arrive while the server starts). */
  private async whenStarted(): Promise<boolean> {
    if (this.started === null) return false;
    try {
      await this.started;
    } catch {
      return false;
    }
    return !this.shuttingDown;
  }

  private postAll(msg: ControlMessage, role?: ThreadRoleCode): void {
    for (const s of this.slots) if (role === undefined || s.role === role) s.port?.postMessage(msg);
  }

  /**
   * SIGHUP: run with `next` (the config file read again, flags laid over it). Throws
   * ReloadError, leaving everything as it was, when a change cannot be reloaded.
   */
  async reload(next: Options): Promise<void> {
    if (!(await this.whenStarted())) throw new ReloadError('the server is not running');
    const plan = planReload(this.opts, next, { port: this.identity.port, clusterPort: this.clusterPort, threads: this.layout.threads });
    if (plan.logging) {
      try {
        configureLog(next);
      } catch (err) {
        throw new ReloadError(`error opening file: ${(err as Error).message}`);
      }
    }
    this.opts = next;
    this.identity.host = next.host;
    for (const line of plan.lines) log.info(line);
    if (plan.pidFile && next.pidFile !== undefined) {
      try {
        fs.writeFileSync(next.pidFile, String(process.pid), { mode: 0o660 });
      } catch (err) {
        log.error(`Failed to write pidfile: ${(err as Error).message}`);
      }
    }
    if (plan.portsFileDir !== null) {
      this.removePortsFile();
      this.writePortsFile();
    }
    // max_connections went down: close the newest connections over the limit (reload.go maxConnOption).
    const excess = this.closeExcess(plan.maxConnections);
    this.ownClientUrls = clientConnectUrls(next, this.identity.port);
    for (const s of this.slots) {
      if (s.port === null) continue;
      if (s.role === ThreadRole.worker) {
        s.port.postMessage({ type: 'reload', options: next, closeExcess: excess.get(s.thread) ?? 0 } satisfies ControlMessage);
      } else {
        s.port.postMessage({
          type: 'reload',
          options: next,
          closeExcess: 0,
          clientUrls: this.ownClientUrls,
          routesAdded: plan.routes.add,
          routesRemoved: plan.routes.remove,
        } satisfies ControlMessage);
      }
    }
    this.monitor.configLoadedAt = Date.now(); // /varz config_load_time, as nats-server's configTime
    log.info('Reloaded server configuration');
  }

  /** How many connections each client worker must close to fall within `max` (none when null). */
  private closeExcess(max: number | null): Map<number, number> {
    const plan = new Map<number, number>();
    if (max === null) return plan;
    const workers = this.slots
      .filter((s) => s.role === ThreadRole.worker)
      .map((s) => ({ thread: s.thread, n: this.counters[s.thread].connections() }));
    let excess = workers.reduce((sum, w) => sum + w.n, 0) - max;
    if (excess <= 0) return plan;
    log.info(`Closed ${excess} connections to fall within max_connections`);
    workers.sort((a, b) => b.n - a.n);
    for (const w of workers) {
      const k = Math.min(w.n, excess);
      if (k > 0) plan.set(w.thread, k);
      excess -= k;
    }
    return plan;
  }

  /** SIGUSR1: reopen the log file on every thread (log rotation), as nats-server's ReOpenLogFile. */
  reopenLogFile(): void {
    if (this.opts.logFile === undefined) {
      log.info('File log re-open ignored, not a file logger');
      return;
    }
    try {
      reopenLogFile();
    } catch (err) {
      log.error(`Error re-opening log file ${this.opts.logFile}: ${(err as Error).message}`);
      return;
    }
    this.postAll({ type: 'reopen-log' });
    log.info('File log re-opened');
  }

  get inLameDuckMode(): boolean {
    return this.lameDuck;
  }

  /**
   * SIGUSR2 (server.go lameDuckMode): stop accepting clients, tell routes and clients, wait
   * the grace period, then close the clients spread over the rest of lame_duck_duration (at
   * most 1s apart). Resolves true when the server should now shut down (exit 0), false when
   * there was nothing to do (already in lame duck mode, shutting down, not started).
   */
  async lameDuckMode(): Promise<boolean> {
    if (this.lameDuck || !(await this.whenStarted()) || this.lameDuck) return false;
    this.lameDuck = true;
    log.info('Entering lame duck mode, stop accepting new clients');
    this.listener?.close();
    this.listener = null;
    for (const s of this.held.splice(0)) s.destroy();
    const clients = (): number =>
      this.slots.reduce((n, s) => n + (s.role === ThreadRole.worker ? this.counters[s.thread].connections() : 0), 0);
    if (clients() === 0) return !this.shuttingDown;

    const others = this.opts.cluster?.noAdvertise ? [] : (this.identity.connectUrls ?? []).filter((u) => !this.ownClientUrls.includes(u));
    this.identity.connectUrls = others;
    this.postAll({ type: 'ldm' }, ThreadRole.route);
    this.postAll({ type: 'ldm', connectUrls: others }, ThreadRole.worker);

    const durationMs = this.opts.lameDuckDurationMs ?? DEFAULT_LAME_DUCK_DURATION_MS;
    const graceMs = this.opts.lameDuckGracePeriodMs ?? DEFAULT_LAME_DUCK_GRACE_PERIOD_MS;
    log.debug(`Lame duck mode: grace period ${goDuration(graceMs)}, duration ${goDuration(durationMs)}`);
    if (!(await this.sleepUnlessShutdown(graceMs))) return false;
    log.info('Closing existing clients');
    const n = clients();
    if (n > 0) {
      // The whole close window, as nats-server paces it: one client per interval of
      // (duration - grace) / clients, never more than 1s apart. Each worker spreads its own
      // clients over the same window.
      const spreadMs = durationMs - graceMs > 0 ? durationMs - graceMs : 1000;
      const intervalMs = Math.min(1000, Math.max(spreadMs / n, 1));
      this.postAll({ type: 'ldm-close', windowMs: intervalMs * n }, ThreadRole.worker);
      const deadline = Date.now() + intervalMs * n + 5000;
      while (clients() > 0 && Date.now() < deadline) {
        if (!(await this.sleepUnlessShutdown(50))) return false;
      }
    }
    return !this.shuttingDown;
  }

  /** Wait `ms`; false if the server started shutting down meanwhile (SIGINT during lame duck mode). */
  private async sleepUnlessShutdown(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (!this.shuttingDown && Date.now() < until) {
      await new Promise((r) => setTimeout(r, Math.min(100, until - Date.now())));
    }
    return !this.shuttingDown;
  }

  /**
   * ports_file_dir (server.go logPorts): `<dir>/skein_<pid>.ports` with nats-server's Ports
   * JSON, the URLs this server listens on.
   */
  private writePortsFile(): void {
    const dir = this.opts.portsFileDir;
    if (dir === undefined) return;
    const file = path.join(dir, `skein_${process.pid}.ports`);
    // server.go Ports, in its field order.
    const ports: Record<string, string[]> = {
      nats: listenUrls(this.opts.tls ? 'tls' : 'nats', this.opts.host, this.identity.port, this.dualStack),
    };
    const http = this.monitor.address();
    if (http !== null) ports.monitoring = listenUrls('http', http.host, http.port, this.dualStack);
    const c = this.opts.cluster;
    if (c !== undefined) ports.cluster = listenUrls(c.tls ? 'tls' : 'nats', c.host, this.clusterPort, this.dualStack);
    try {
      // Whole or not at all: a reader never sees a half-written file.
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(ports), { mode: 0o666 });
      fs.renameSync(`${file}.tmp`, file);
      this.portsFile = file;
    } catch (err) {
      log.error(`Error writing ports file (${file}): ${(err as Error).message}`);
    }
  }

  private removePortsFile(): void {
    if (this.portsFile === undefined) return;
    try {
      fs.unlinkSync(this.portsFile);
    } catch (err) {
      log.error(`Error cleaning up ports file ${this.portsFile}: ${(err as Error).message}`);
    }
    this.portsFile = undefined;
  }
}

/**
 * Every thread loads the same modules. With Node's compile cache (on disk, in the OS temp
 * directory unless NODE_COMPILE_CACHE says otherwise; NODE_DISABLE_COMPILE_CACHE turns it off)
 * a thread reuses the compiled code instead of compiling again. Workers take the setting from
 * the environment they inherit; they get their sources type-stripped by the main thread
 * (threads/sources.ts), so a cold cache no longer costs each of them the type stripper.
 */
function useCompileCache(): void {
  const r = module.enableCompileCache(process.env.NODE_COMPILE_CACHE);
  if (r.directory !== undefined && r.directory !== '') process.env.NODE_COMPILE_CACHE = r.directory;
}

/**
 * server.go resolveHostPorts: a wildcard host lists every interface address; 0.0.0.0 is bound
 * dual stack where the host has IPv6 (listenLikeGo), and then lists the IPv6 ones too.
 */
function listenUrls(scheme: string, host: string, port: number, dualStack: boolean): string[] {
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return [`${scheme}://${joinHostPort(host, port)}`];
  const urls: string[] = [];
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (host === '0.0.0.0' && !dualStack && a.family !== 'IPv4') continue;
      urls.push(`${scheme}://${joinHostPort(a.address, port)}`);
    }
  }
  return urls.length > 0 ? urls : [`${scheme}://${joinHostPort(host, port)}`];
}

export function cpuCount(): number {
  return os.availableParallelism();
}

/** How log lines name a thread of `role`. */
/**
 * Bind a route, gateway or leafnode listener (port -1: one the OS picks) as nats-server does
 * (0.0.0.0 as a dual-stack socket), and log its later errors; resolves with the bound port.
 */
async function bindPeerListener(listener: net.Server, host: string, port: number, what: string): Promise<number> {
  await listenLikeGo(listener, host, port < 0 ? 0 : port, 1024);
  listener.on('error', (err) => log.error(`${what} listener error: ${err.message}`));
  return (listener.address() as net.AddressInfo).port;
}

function threadName(role: ThreadRoleCode, thread: number): string {
  if (role === ThreadRole.route) return 'Route thread';
  if (role === ThreadRole.gateway) return 'Gateway thread';
  if (role === ThreadRole.leaf) return 'Leaf thread';
  return `Worker ${thread}`;
}

/**
 * A pool of `threads` long-lived threads, each running one task for the server's life (the
 * client workers, or the one route, gateway or leaf thread), so nothing idles out or queues
 * behind it. Every thread starts in workers/boot.mjs, which loads the role's entry (ENTRIES).
 */
function threadPool(threads: number): Piscina {
  return new Piscina({
    filename: new URL('../workers/boot.mjs', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: 1,
    atomics: 'disabled',
    maxQueue: 'auto',
    resourceLimits: WORKER_HEAP_LIMITS,
  });
}
