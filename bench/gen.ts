// Load-generator process: one role (publishers, subscribers, requesters, responders, idle
// connections, wildcard interest) over raw sockets, driven by the bench runner over IPC.
// Started by bench/runner.ts with child_process.fork; never run by hand.

import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import { SeqChecker } from './check.ts';
import type { ChildMsg, GenSpec, ParentMsg, PubConnSpec, ReqConnSpec, Report, SubConnSpec } from './ipc.ts';
import { buildPubTemplate, connectRaw, CONNECT_LINE, PROBE_SID, ProtocolReader, seqBits, writeSeq } from './protocol.ts';
import type { ReaderEvents } from './protocol.ts';

const PROGRESS_INTERVAL_MS = 200;
const POOL_BUFFERS = 4;

function nowNs(): number {
  return Number(process.hrtime.bigint());
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function send(msg: ChildMsg): void {
  if (process.connected) process.send!(msg);
}

let exiting = false;
const sockets: net.Socket[] = [];

function fail(message: string): void {
  if (exiting) return;
  send({ type: 'error', message });
}

// One raw connection: reader wired to the socket, PING answered, PONGs resolve barriers in order.
class Conn {
  readonly sock: net.Socket;
  private readonly reader: ProtocolReader;
  private readonly pongWaiters: (() => void)[] = [];
  onPongHook: (() => void) | null = null;
  afterFeed: (() => void) | null = null;
  closed = false;

  constructor(sock: net.Socket, label: string, onMsg: ReaderEvents['onMsg']) {
    this.sock = sock;
    sockets.push(sock);
    this.reader = new ProtocolReader({
      onMsg,
      onPing: () => {
        sock.write('PONG\r\n');
      },
      onPong: () => {
        const w = this.pongWaiters.shift();
        if (w) w();
        if (this.onPongHook) this.onPongHook();
      },
      onInfo: () => {},
      onErr: (line) => fail(`${label}: server sent ${line}`),
    });
    sock.on('data', (d: Buffer) => {
      try {
        this.reader.feed(d);
      } catch (e) {
        fail(`${label}: ${(e as Error).message}`);
        sock.destroy();
        return;
      }
      if (this.afterFeed) this.afterFeed();
    });
    sock.on('error', (e) => fail(`${label}: ${e.message}`));
    sock.on('close', () => {
      this.closed = true;
      fail(`${label}: connection closed by the server`);
    });
    sock.resume();
  }

  // PING/PONG round trip: once it returns, the server has processed everything sent before.
  barrier(): Promise<void> {
    return new Promise((resolve) => {
      this.pongWaiters.push(resolve);
      this.sock.write('PING\r\n');
    });
  }
}

async function open(url: string, label: string, onMsg: ReaderEvents['onMsg'], setup = ''): Promise<Conn> {
  const sock = await connectRaw(url);
  const c = new Conn(sock, label, onMsg);
  sock.write(CONNECT_LINE + setup);
  await c.barrier();
  return c;
}

function noMsg(label: string): ReaderEvents['onMsg'] {
  return () => fail(`${label}: unexpected MSG`);
}

// ---------------------------------------------------------------------------------------------

interface Role {
  probe?(subjects: string[]): void;
  go(): void;
  progress(): number;
  finish(): Promise<Report>;
}

class Publishers implements Role {
  private conns: Conn[] = [];
  private specs: PubConnSpec[] = [];
  private sent: number[] = [];
  private firstWriteNs = 0;
  private pongNs = 0;
  private cpuAtGo = 0;
  private cpuUsed = 0;

  async init(url: string, specs: PubConnSpec[]): Promise<void> {
    this.specs = specs;
    this.sent = specs.map(() => 0);
    this.conns = await Promise.all(specs.map((_, k) => open(url, `pub ${k}`, noMsg(`pub ${k}`))));
  }

  probe(subjects: string[]): void {
    const frames = subjects.map((s) => `PUB ${s} 0\r\n\r\n`).join('');
    for (const c of this.conns) c.sock.write(frames);
  }

  go(): void {
    this.cpuAtGo = cpuUs();
    this.firstWriteNs = nowNs();
    Promise.all(this.conns.map((c, k) => this.publish(c, k))).then(
      () => {
        this.pongNs = nowNs();
        this.cpuUsed = cpuUs() - this.cpuAtGo;
        send({ type: 'done' });
      },
      (e: Error) => fail(e.message),
    );
  }

  private async publish(c: Conn, k: number): Promise<void> {
    if (this.specs[k].rate !== undefined) return this.publishPaced(c, k);
    const { subjects, size, count } = this.specs[k];
    const t = buildPubTemplate(subjects, size, null);
    const free: Buffer[] = [];
    for (let p = 0; p < POOL_BUFFERS; p++) free.push(Buffer.from(t.buf));
    let wakeFree: (() => void) | null = null;
    let wakeDrain: (() => void) | null = null;
    c.sock.on('drain', () => {
      if (wakeDrain) {
        const w = wakeDrain;
        wakeDrain = null;
        w();
      }
    });
    let seq = 0;
    while (seq < count) {
      if (c.closed) throw new Error(`pub ${k}: connection closed after ${seq} messages`);
      let buf = free.pop();
      if (buf === undefined) {
        await new Promise<void>((r) => (wakeFree = r));
        buf = free.pop()!;
      }
      const m = Math.min(t.frames, count - seq);
      for (let f = 0; f < m; f++) writeSeq(buf, t.payloadAt[f], size, seq + f);
      const out = m === t.frames ? buf : buf.subarray(0, t.frameEnd[m - 1]);
      const owned = buf;
      const ok = c.sock.write(out, () => {
        free.push(owned);
        if (wakeFree) {
          const w = wakeFree;
          wakeFree = null;
          w();
        }
      });
      seq += m;
      this.sent[k] = seq;
      if (!ok) await new Promise<void>((r) => (wakeDrain = r));
    }
    await c.barrier();
  }

  /**
   * Paced: `batch` messages in one write every `intervalMs`, as a client that publishes a few
   * messages at a time (the server gets one small read per batch). A late tick catches up
   * (its write carries every message due by then).
   */
  private async publishPaced(c: Conn, k: number): Promise<void> {
    const { subjects, size, count, rate } = this.specs[k];
    const { batch, intervalMs } = rate!;
    const t = buildPubTemplate(subjects, size, null);
    const start = nowNs();
    let seq = 0;
    await new Promise<void>((resolve, reject) => {
      const tick = (): void => {
        if (c.closed) {
          clearInterval(timer);
          reject(new Error(`pub ${k}: connection closed after ${seq} messages`));
          return;
        }
        const due = Math.min(count, Math.floor((nowNs() - start) / (intervalMs * 1e6) + 1) * batch);
        while (seq < due) {
          const m = Math.min(t.frames, due - seq);
          const buf = Buffer.from(t.buf.subarray(0, t.frameEnd[m - 1]));
          for (let f = 0; f < m; f++) writeSeq(buf, t.payloadAt[f], size, seq + f);
          c.sock.write(buf);
          seq += m;
        }
        this.sent[k] = seq;
        if (seq >= count) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, intervalMs);
      tick();
    });
    await c.barrier();
  }

  progress(): number {
    return this.sent.reduce((a, b) => a + b, 0);
  }

  async finish(): Promise<Report> {
    return { role: 'pub', sent: this.progress(), firstWriteNs: this.firstWriteNs, pongNs: this.pongNs, cpuUs: this.cpuUsed };
  }
}

class Subscribers implements Role {
  private conns: Conn[] = [];
  private checkers: SeqChecker[] = [];
  private specs: SubConnSpec[] = [];
  private total = 0;
  private expectTotal = 0;
  private firstRecvNs = 0;
  private lastRecvNs = 0;
  private cpuAtGo = 0;
  private cpuUsed = -1;

  async init(url: string, specs: SubConnSpec[], expectTotal: number): Promise<void> {
    this.specs = specs;
    this.expectTotal = expectTotal;
    this.checkers = specs.map((s) => new SeqChecker(s.mode, seqBits(s.size), s.total));
    this.conns = await Promise.all(
      specs.map(async (s, k) => {
        const checker = this.checkers[k];
        let probed = false;
        const onMsg = (sid: number, seq: number): void => {
          if (sid === PROBE_SID) {
            if (!probed) {
              probed = true;
              send({ type: 'probed', conn: k });
            }
            return;
          }
          checker.push(seq);
        };
        const setup = `SUB ${s.subject}${s.queue ? ' ' + s.queue : ''} 1\r\nSUB ${s.probe} ${PROBE_SID}\r\n`;
        const c = await open(url, `sub ${k}`, onMsg, setup);
        let before = 0;
        c.afterFeed = () => {
          const got = checker.received - before;
          if (got === 0) return;
          before = checker.received;
          this.onReceived(got);
        };
        return c;
      }),
    );
  }

  private onReceived(got: number): void {
    const t = nowNs();
    if (this.total === 0) this.firstRecvNs = t;
    this.lastRecvNs = t;
    const wasShort = this.total < this.expectTotal;
    this.total += got;
    if (wasShort && this.total >= this.expectTotal) {
      this.cpuUsed = cpuUs() - this.cpuAtGo;
      send({ type: 'done' });
    }
  }

  go(): void {
    this.cpuAtGo = cpuUs();
    if (this.expectTotal === 0) send({ type: 'done' });
  }

  progress(): number {
    return this.total;
  }

  async finish(): Promise<Report> {
    // Barrier per connection: anything the server had queued for us before it is counted.
    await Promise.all(this.conns.filter((c) => !c.closed).map((c) => c.barrier()));
    if (this.cpuUsed < 0) this.cpuUsed = cpuUs() - this.cpuAtGo;
    return {
      role: 'sub',
      received: this.total,
      firstRecvNs: this.firstRecvNs,
      lastRecvNs: this.lastRecvNs,
      checks: this.checkers.map((ch, k) => ch.result(this.specs[k].expect)),
      seen: this.checkers.map((ch) => ch.seen),
      cpuUs: this.cpuUsed,
    };
  }
}

class Responder implements Role {
  private answered = 0;
  private cpuAtGo = 0;
  private out = Buffer.allocUnsafe(64 * 1024);
  private o = 0;

  async init(url: string, subject: string, queue: string, probe: string): Promise<void> {
    let probed = false;
    const onMsg = (sid: number, seq: number, size: number, b: Buffer, rs: number, re: number): void => {
      if (sid === PROBE_SID) {
        if (!probed) {
          probed = true;
          send({ type: 'probed', conn: 0 });
        }
        return;
      }
      if (rs < 0) {
        fail('responder: request without a reply subject');
        return;
      }
      this.reply(b, rs, re, size, seq);
    };
    const c = await open(url, 'responder', onMsg, `SUB ${subject} ${queue} 1\r\nSUB ${probe} ${PROBE_SID}\r\n`);
    c.afterFeed = () => {
      if (this.o === 0) return;
      c.sock.write(Buffer.from(this.out.subarray(0, this.o)));
      this.o = 0;
    };
  }

  // Appends "PUB <reply> <size>\r\n<payload carrying seq>\r\n"; flushed once per read.
  private reply(b: Buffer, rs: number, re: number, size: number, seq: number): void {
    const need = 4 + (re - rs) + 12 + size + 2;
    if (this.o + need > this.out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.o + need));
      this.out.copy(bigger, 0, 0, this.o);
      this.out = bigger;
    }
    const out = this.out;
    let o = this.o;
    o += out.write('PUB ', o, 'latin1');
    o += b.copy(out, o, rs, re);
    o += out.write(` ${size}\r\n`, o, 'latin1');
    out.fill(0x78, o, o + size);
    writeSeq(out, o, size, seq);
    o += size;
    out[o++] = 13;
    out[o++] = 10;
    this.o = o;
    this.answered++;
  }

  go(): void {
    this.cpuAtGo = cpuUs();
  }

  progress(): number {
    return this.answered;
  }

  async finish(): Promise<Report> {
    return { role: 'rep', answered: this.answered, cpuUs: cpuUs() - this.cpuAtGo };
  }
}

class Requesters implements Role {
  private conns: Conn[] = [];
  private specs: ReqConnSpec[] = [];
  private starts: ((onDone: () => void) => void)[] = [];
  // hdr-histogram-js costs ~100 ms to load (it decodes a WebAssembly build), so only the
  // requester process loads it.
  private hdr: typeof import('hdr-histogram-js') | null = null;
  private hist: Histogram | null = null;
  private completed = 0;
  private firstSendNs = 0;
  private lastRecvNs = 0;
  private problems: string[] = [];
  private cpuAtGo = 0;
  private cpuUsed = -1;

  async init(url: string, specs: ReqConnSpec[]): Promise<void> {
    this.hdr = (await import('hdr-histogram-js')).default;
    this.hist = this.hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 3 });
    this.specs = specs;
    this.conns = await Promise.all(specs.map((s, k) => this.openOne(url, s, k)));
  }

  private async openOne(url: string, s: ReqConnSpec, k: number): Promise<Conn> {
    const head = Buffer.from(`PUB ${s.subject} ${s.inbox} ${s.size}\r\n`, 'latin1');
    const frame = Buffer.alloc(head.length + s.size + 2, 0x78);
    head.copy(frame);
    frame[frame.length - 2] = 13;
    frame[frame.length - 1] = 10;
    const mask = seqBits(s.size) >= 32 ? 0xffffffff : 2 ** seqBits(s.size) - 1;
    const last = s.warmup + s.count;
    let next = 0; // sequence of the request in flight
    let sentAt = 0;
    let onDone: () => void = () => {};
    let sock: net.Socket | null = null;
    const issue = (): void => {
      writeSeq(frame, head.length, s.size, next);
      if (next === s.warmup) {
        const t = nowNs();
        if (this.firstSendNs === 0 || t < this.firstSendNs) this.firstSendNs = t;
      }
      sentAt = performance.now();
      // Safe to reuse `frame`: its previous contents reached the server, which has answered.
      sock!.write(frame);
    };
    const onMsg = (sid: number, seq: number): void => {
      if (sid !== 1) return;
      const rtt = performance.now() - sentAt;
      if (mask !== 0 && seq !== (next & mask) >>> 0) {
        if (this.problems.length < 5) this.problems.push(`requester ${k}: reply carried ${seq}, request was ${next}`);
      }
      if (next >= s.warmup) {
        this.hist!.recordValue(Math.min(Math.max(1, Math.round(rtt * 1e6)), 60e9));
        this.completed++;
      }
      next++;
      if (next < last) issue();
      else {
        this.lastRecvNs = Math.max(this.lastRecvNs, nowNs());
        onDone();
      }
    };
    const c = await open(url, `req ${k}`, onMsg, `SUB ${s.inbox} 1\r\n`);
    sock = c.sock;
    this.starts[k] = (done) => {
      onDone = done;
      if (last === 0) done();
      else issue();
    };
    return c;
  }

  probe(subjects: string[]): void {
    const frames = subjects.map((s) => `PUB ${s} 0\r\n\r\n`).join('');
    for (const c of this.conns) c.sock.write(frames);
  }

  go(): void {
    this.cpuAtGo = cpuUs();
    let pending = this.conns.length;
    for (const start of this.starts) {
      start(() => {
        if (--pending === 0) {
          this.cpuUsed = cpuUs() - this.cpuAtGo;
          send({ type: 'done' });
        }
      });
    }
  }

  progress(): number {
    return this.completed;
  }

  async finish(): Promise<Report> {
    if (this.cpuUsed < 0) this.cpuUsed = cpuUs() - this.cpuAtGo;
    const expected = this.specs.reduce((a, s) => a + s.count, 0);
    if (this.completed !== expected) this.problems.unshift(`${this.completed} of ${expected} requests answered`);
    return {
      role: 'req',
      completed: this.completed,
      firstSendNs: this.firstSendNs,
      lastRecvNs: this.lastRecvNs,
      histogram: this.hdr!.encodeIntoCompressedBase64(this.hist!),
      problems: this.problems,
      cpuUs: this.cpuUsed,
    };
  }
}

// Many connections that each hold one subscription and otherwise only answer PINGs.
class Idle implements Role {
  private conns: Conn[] = [];
  private unexpected = 0;
  private count = 0;
  private cpuAtGo = 0;

  async init(url: string, count: number, prefix: string, concurrency: number): Promise<void> {
    this.count = count;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const c = await open(url, `idle ${i}`, () => void this.unexpected++, `SUB ${prefix}.${i} 1\r\n`);
        this.conns.push(c);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  }

  go(): void {
    this.cpuAtGo = cpuUs();
  }

  progress(): number {
    return 0;
  }

  async finish(): Promise<Report> {
    const used = cpuUs() - this.cpuAtGo;
    const alive = this.conns.filter((c) => !c.closed);
    // Every idle connection must still answer a PING/PONG at the end of the run.
    await Promise.all(alive.map((c) => c.barrier()));
    return {
      role: 'idle',
      connections: this.count,
      alive: alive.filter((c) => !c.closed).length,
      subscriptions: this.count,
      unexpected: this.unexpected,
      cpuUs: used,
    };
  }
}

// One connection holding `count` subscriptions, mostly with wildcards, none of which match the
// live stream (`<prefix>.<j>.live`, j < 1,000,000): they make the server's subject index big.
export function interestSubject(prefix: string, i: number): string {
  switch (i % 4) {
    case 0:
      return `${prefix}.${1_000_000 + i}.*`;
    case 1:
      return `${prefix}.*.${i}`;
    case 2:
      return `${prefix}.${1_000_000 + i}.>`;
    default:
      return `${prefix}.${1_000_000 + i}.live`;
  }
}

class Interest implements Role {
  private conn: Conn | null = null;
  private unexpected = 0;
  private count = 0;
  private cpuAtGo = 0;

  async init(url: string, count: number, prefix: string): Promise<void> {
    this.count = count;
    const c = await open(url, 'interest', () => void this.unexpected++);
    const batch = 10_000;
    for (let i = 0; i < count; i += batch) {
      let lines = '';
      for (let k = i; k < Math.min(count, i + batch); k++) lines += `SUB ${interestSubject(prefix, k)} ${k + 1}\r\n`;
      if (!c.sock.write(lines)) await new Promise((r) => c.sock.once('drain', r));
    }
    await c.barrier();
    this.conn = c;
  }

  go(): void {
    this.cpuAtGo = cpuUs();
  }

  progress(): number {
    return 0;
  }

  async finish(): Promise<Report> {
    const used = cpuUs() - this.cpuAtGo;
    const c = this.conn!;
    if (!c.closed) await c.barrier();
    return {
      role: 'interest',
      connections: 1,
      alive: c.closed ? 0 : 1,
      subscriptions: this.count,
      unexpected: this.unexpected,
      cpuUs: used,
    };
  }
}

// ---------------------------------------------------------------------------------------------

async function init(spec: GenSpec): Promise<Role> {
  switch (spec.role) {
    case 'pub': {
      const r = new Publishers();
      await r.init(spec.url, spec.conns);
      return r;
    }
    case 'sub': {
      const r = new Subscribers();
      await r.init(spec.url, spec.conns, spec.expectTotal);
      return r;
    }
    case 'rep': {
      const r = new Responder();
      await r.init(spec.url, spec.subject, spec.queue, spec.probe);
      return r;
    }
    case 'req': {
      const r = new Requesters();
      await r.init(spec.url, spec.conns);
      return r;
    }
    case 'idle': {
      const r = new Idle();
      await r.init(spec.url, spec.count, spec.prefix, spec.concurrency);
      return r;
    }
    case 'interest': {
      const r = new Interest();
      await r.init(spec.url, spec.count, spec.prefix);
      return r;
    }
  }
}

function main(): void {
  let role: Role | null = null;
  let ticker: NodeJS.Timeout | null = null;
  process.on('disconnect', () => process.exit(1));
  process.on('uncaughtException', (e) => {
    fail(`load generator crashed: ${e.stack ?? e.message}`);
    process.exit(1);
  });
  process.on('message', (m: ParentMsg) => {
    switch (m.type) {
      case 'init':
        init(m.spec).then(
          (r) => {
            role = r;
            send({ type: 'ready' });
          },
          (e: Error) => fail(e.message),
        );
        break;
      case 'probe':
        role?.probe?.(m.subjects);
        break;
      case 'go':
        role!.go();
        ticker = setInterval(() => send({ type: 'progress', n: role!.progress() }), PROGRESS_INTERVAL_MS);
        break;
      case 'finish':
        if (ticker) clearInterval(ticker);
        role!.finish().then(
          (report) => send({ type: 'final', report }),
          (e: Error) => fail(e.message),
        );
        break;
      case 'exit':
        exiting = true;
        for (const s of sockets) s.destroy();
        process.disconnect();
        process.exit(0);
    }
  });
}

main();
