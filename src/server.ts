// The main thread: owns the client listener, starts the worker pool, and hands each
// accepted socket to the worker with the fewest connections. Bytes never pass through
// here: the socket itself moves (Node >= 24.21 transferable sockets).
//
// With a cluster configured, main also owns the route listener and one more thread joins
// the shared layout: the route thread (workers/route.ts, its own one-thread pool, index =
// number of client workers). Accepted route sockets move there; it dials routes itself.

import net from 'node:net';
import os from 'node:os';
import fs from 'node:fs';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { pack, unpack } from 'msgpackr';
import type { Options } from './options.ts';
import { createLayout, nextConnectionId, ThreadCounters, type SharedLayout } from './shared.ts';
import { InterestLog, InterestOp } from './interest.ts';
import { Doorbell } from './ring.ts';
import { newServerId, newClusterName, clientConnectUrls, PROTOCOL_VERSION, SKEIN_VERSION, type ServerIdentity } from './info.ts';
import type { ControlMessage } from './control.ts';
import { log } from './log.ts';
import { hasPlaintextPasswords, PLAINTEXT_PASSWORDS_WARNING } from './auth.ts';
import { Monitor } from './monitor/monitor.ts';
import { Ring } from './ring.ts';

interface WorkerSlot {
  thread: number;
  /** A client worker, or the route thread. */
  kind: 'client' | 'route';
  port: MessagePort | null;
  ready: boolean;
  stopped: boolean;
  generation: number;
}

export class Server {
  readonly opts: Options;
  readonly identity: ServerIdentity;
  private layout!: SharedLayout;
  private pool!: Piscina;
  private routePool: Piscina | null = null;
  private listener: net.Server | null = null;
  private routeListener: net.Server | null = null;
  private clusterPort = 0;
  private clusterDynamic = false;
  private heldRoutes: net.Socket[] = [];
  private readonly slots: WorkerSlot[] = [];
  private counters: ThreadCounters[] = [];
  private shuttingDown = false;
  private readonly faultInjection = process.env.SKEIN_FAULT_INJECTION === '1';
  private readyWaiters: (() => void)[] = [];
  private held: net.Socket[] = [];
  /** Monitoring HTTP endpoints (src/monitor/); its counters exist whether or not it listens. */
  readonly monitor: Monitor;
  private backlogRings: Ring[][] = [];

  constructor(opts: Options) {
    this.opts = opts;
    const serverId = newServerId();
    this.identity = { serverId, serverName: opts.serverName ?? serverId, host: opts.host, port: opts.port };
    if (opts.cluster !== undefined) {
      // A cluster without a name gets a random one (nats-server: nuid), adopted away later
      // if a peer's name wins the negotiation. Clients see it in INFO `cluster` from the start.
      this.clusterDynamic = opts.cluster.name === undefined;
      this.identity.cluster = opts.cluster.name ?? newClusterName();
    }
    this.monitor = new Monitor(this.monitorHost());
  }

  /** What the monitor may see of the server: threads, counters and listeners, no internals. */
  private monitorHost(): ConstructorParameters<typeof Monitor>[0] {
    const threads = this.opts.workers + (this.opts.cluster !== undefined ? 1 : 0);
    return {
      opts: this.opts,
      identity: this.identity,
      threadKinds: Array.from({ length: threads }, (_, t) => (t < this.opts.workers ? 'client' : 'route')),
      post: (t, msg) => {
        const slot = this.slots[t];
        if (slot === undefined || !slot.ready || slot.port === null) return false;
        slot.port.postMessage(pack(msg));
        return true;
      },
      threadReady: (t) => this.slots[t]?.ready === true,
      connections: (t) => this.counters[t]?.connections() ?? 0,
      ringBacklog: (t) => {
        let n = 0;
        for (const r of this.backlogRings[t] ?? []) n += r.backlogBytes();
        return n;
      },
      clusterPort: () => this.clusterPort,
      listening: () => ({ server: this.listener?.listening === true, route: this.opts.cluster === undefined || this.routeListener?.listening === true }),
    };
  }

  get port(): number {
    return this.identity.port;
  }

  async start(): Promise<void> {
    const o = this.opts;
    log.info(`Starting skein`);
    log.info(`  Version:  ${SKEIN_VERSION} (nats protocol ${PROTOCOL_VERSION})`);
    log.info(`  Node:     ${process.version}`);
    log.info(`  Name:     ${this.identity.serverName}`);
    log.info(`  ID:       ${this.identity.serverId}`);
    log.info(`  Workers:  ${o.workers}`);
    if (o.configFile !== undefined) log.info(`Using configuration file: ${o.configFile}`);
    if (o.pidFile !== undefined) fs.writeFileSync(o.pidFile, String(process.pid));
    if (hasPlaintextPasswords(o.authorization, o.tls?.map === true)) log.warn(PLAINTEXT_PASSWORDS_WARNING);
    await this.monitor.start();

    // Bind first so a random port (-1) is known before workers build their INFO.
    const listener = net.createServer({ pauseOnConnect: true, noDelay: true }, (s) => this.accept(s));
    this.listener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host: o.host, port: o.port < 0 ? 0 : o.port, backlog: 4096 }, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => log.error(`Client listener error: ${err.message}`));
    this.identity.port = (listener.address() as net.AddressInfo).port;

    const clustered = o.cluster !== undefined;
    if (clustered) await this.listenForRoutes();
    this.layout = createLayout(o.workers + (clustered ? 1 : 0), o.maxPayload, o.maxControlLine);
    this.counters = [];
    for (let t = 0; t < this.layout.threads; t++) this.counters.push(new ThreadCounters(this.layout.counters, t));
    // Monitoring reads ring fill levels (bytes waiting into each thread); it never writes them.
    this.backlogRings = [];
    for (let to = 0; to < this.layout.threads; to++) {
      const into: Ring[] = [];
      for (let from = 0; from < this.layout.threads; from++) {
        const sab = this.layout.rings[from * this.layout.threads + to];
        if (sab !== null) into.push(new Ring(sab));
      }
      this.backlogRings.push(into);
    }
    this.pool = new Piscina({
      filename: new URL('../workers/worker.ts', import.meta.url).href,
      minThreads: o.workers,
      maxThreads: o.workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
      maxQueue: 'auto',
    });
    if (clustered) {
      this.routePool = new Piscina({
        filename: new URL('../workers/route.ts', import.meta.url).href,
        minThreads: 1,
        maxThreads: 1,
        idleTimeout: Infinity,
        concurrentTasksPerWorker: 1,
        atomics: 'disabled',
        maxQueue: 'auto',
      });
    }
    const ready = new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    for (let t = 0; t < this.layout.threads; t++) {
      this.slots.push({ thread: t, kind: t < o.workers ? 'client' : 'route', port: null, ready: false, stopped: false, generation: 0 });
      this.runWorker(t, false);
    }
    await ready;
    log.info(`Listening for client connections on ${hostPort(o.host, this.identity.port)}`);
    if (o.tls !== undefined) log.info('TLS required for client connections');
    if (clustered) {
      log.info(`Cluster name is ${this.identity.cluster}`);
      if (this.clusterDynamic) log.warn('Cluster name was dynamically generated, consider setting one');
      log.info(`Listening for route connections on ${hostPort(o.cluster!.host, this.clusterPort)}`);
    }
    this.monitor.setReady(true);
    log.info(`Server is ready`);
  }

  /** Bind the cluster port (a random one if -1) before the route thread builds its INFO. */
  private async listenForRoutes(): Promise<void> {
    const c = this.opts.cluster!;
    const listener = net.createServer({ pauseOnConnect: true, noDelay: true }, (s) => this.acceptRoute(s));
    this.routeListener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host: c.host, port: c.port < 0 ? 0 : c.port, backlog: 1024 }, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => log.error(`Route listener error: ${err.message}`));
    this.clusterPort = (listener.address() as net.AddressInfo).port;
  }

  /** Move an accepted route socket to the route thread (held while it starts). */
  private acceptRoute(socket: net.Socket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    const slot = this.slots.find((s) => s.kind === 'route');
    if (slot === undefined || !slot.ready || slot.port === null) {
      this.heldRoutes.push(socket);
      return;
    }
    const cid = nextConnectionId(this.layout.ids);
    slot.port.postMessage({ socket, msg: pack({ cid }) }, [socket as unknown as ArrayBuffer]);
  }

  private runWorker(thread: number, replacement: boolean): void {
    const slot = this.slots[thread];
    const { port1, port2 } = new MessageChannel();
    slot.port = port1;
    slot.ready = false;
    slot.generation++;
    const generation = slot.generation;
    port1.on('message', (m: Uint8Array) => this.onControl(thread, unpack(m) as ControlMessage));
    const task = slot.kind === 'client'
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
        replacement,
        stats: this.monitor.statsBuffer,
      };
    const pool = slot.kind === 'client' ? this.pool : this.routePool!;
    pool.run(task, { transferList: [port2] }).then(
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
    log.error(`${slot.kind === 'route' ? 'Route thread' : `Worker ${thread}`} failed, its connections are closed; starting a replacement: ${err.stack ?? err.message}`);
    slot.ready = false;
    slot.port?.close();
    slot.port = null;
    Atomics.store(new Int32Array(this.layout.alive), thread, 0);
    this.counters[thread].resetConnections();
    // Others must stop waiting on the dead thread's log cursor and drop its interest.
    for (let t = 0; t < this.layout.threads; t++) if (t !== thread) new InterestLog(this.layout.logs[t]).closeReader(thread);
    const own = new InterestLog(this.layout.logs[thread]);
    own.adoptWriter();
    own.append(InterestOp.reset, '', null, 0);
    for (let t = 0; t < this.layout.threads; t++) new Doorbell(this.layout.doorbells, t).ringAlways();
    this.runWorker(thread, true);
  }

  private onControl(thread: number, msg: ControlMessage): void {
    switch (msg.type) {
      case 'ready': {
        const slot = this.slots[thread];
        if (slot.generation > 1) log.info(`${slot.kind === 'route' ? 'Route thread' : `Worker ${thread}`} replaced and ready`);
        slot.ready = true;
        if (this.slots.every((s) => s.ready)) {
          for (const w of this.readyWaiters.splice(0)) w();
        }
        if (slot.kind === 'route') for (const sock of this.heldRoutes.splice(0)) this.acceptRoute(sock);
        else for (const sock of this.held.splice(0)) this.accept(sock);
        break;
      }
      case 'cluster-info':
        this.broadcastInfo(msg.cluster, msg.connectUrls);
        break;
      case 'snapshot-request':
        for (const s of this.slots) {
          if (s.thread !== msg.from && s.ready && s.port !== null) s.port.postMessage(pack(msg));
        }
        break;
      case 'snapshot':
        this.slots[msg.to].port?.postMessage(pack(msg));
        break;
      case 'stopped':
        this.slots[thread].stopped = true;
        break;
      case 'monitor-reply':
        this.monitor.onReply(msg);
        break;
      default:
        break;
    }
  }

  /** Choose the worker with the fewest connections (shared counters) and move the socket there. */
  private accept(socket: net.Socket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    let best = -1;
    let bestCount = Infinity;
    let total = 0;
    for (const s of this.slots) {
      if (s.kind !== 'client') continue;
      const n = this.counters[s.thread].connections();
      total += n;
      if (s.ready && s.port !== null && n < bestCount) {
        best = s.thread;
        bestCount = n;
      }
    }
    if (best < 0) {
      // No worker ready yet (start-up or a replacement in progress): hold the socket.
      this.held.push(socket);
      return;
    }
    const cid = nextConnectionId(this.layout.ids);
    const reject = total >= this.opts.maxConnections;
    this.monitor.connectionAccepted();
    // Count it now, not when the worker gets to it, so a burst of accepts spreads out.
    this.counters[best].addConnections(1);
    const port = this.slots[best].port!;
    port.postMessage({ socket, msg: pack({ cid, reject }) }, [socket as unknown as ArrayBuffer]);
  }

  /** Test hook (SKEIN_FAULT_INJECTION=1): make the route thread throw, to exercise its replacement. */
  crashRouteThread(): void {
    if (!this.faultInjection) return;
    const slot = this.slots.find((s) => s.kind === 'route');
    slot?.port?.postMessage(pack({ type: 'crash' } satisfies ControlMessage));
  }

  /** Push a new cluster name / client URL list to every worker (async INFO to clients). */
  broadcastInfo(cluster: string | undefined, connectUrls: string[] | undefined): void {
    this.identity.cluster = cluster;
    this.identity.connectUrls = connectUrls;
    const msg = pack({ type: 'info', cluster, connectUrls } satisfies ControlMessage);
    for (const s of this.slots) if (s.kind === 'client') s.port?.postMessage(msg);
  }

  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    log.info('Initiating Shutdown...');
    this.monitor.setReady(false);
    this.monitor.stop();
    this.listener?.close();
    this.routeListener?.close();
    for (const s of this.heldRoutes.splice(0)) s.destroy();
    const graceMs = 2000;
    for (const s of this.slots) s.port?.postMessage(pack({ type: 'shutdown', graceMs } satisfies ControlMessage));
    const deadline = Date.now() + graceMs + 1000;
    while (Date.now() < deadline && !this.slots.every((s) => s.stopped || s.port === null)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.pool.destroy();
    await this.routePool?.destroy();
    if (this.opts.pidFile !== undefined) {
      try {
        fs.unlinkSync(this.opts.pidFile);
      } catch {
        // already gone
      }
    }
    log.info('Server Exiting..');
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function cpuCount(): number {
  return os.availableParallelism();
}
