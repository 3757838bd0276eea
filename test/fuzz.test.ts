// Fuzzing the parsers, in process and through a running server. Frames of each protocol the
// server reads (client, route; helpers/fuzz.ts `roles`), valid or mutated, are cut at random
// points:
// - in process, a parser must never throw and must report exactly the same operations
//   whether a stream arrives in one piece or in random pieces;
// - against a server, no input may crash it, log an internal error, or disturb a bystander
//   connection pair that checks every message arrives, in order, between rounds.
// Each test runs for a time budget (a few seconds in the suite). For a long run:
//   SKEIN_FUZZ_SECONDS=600 npm test -- test/fuzz.test.ts
// and a failure prints its seed, to replay with SKEIN_FUZZ_SEED=<seed>.

import test, { type ExecutionContext } from 'ava';
import { Parser, type ProtocolHandler, type ParseErrorKind } from '../src/protocol/client-parser.ts';
import { PeerParser, type PeerParserHandler, type PeerOpCode } from '../src/protocol/peer-parser.ts';
import type { MsgView } from '../src/protocol/msg-view.ts';
import { ConnKind } from '../src/conn/base.ts';
import { fuzzBudgetMs, fuzzSeed, int, prng, roles, splitRandomly, stream, type Rng, type Role } from './helpers/fuzz.ts';
import { rawConnect, rawSession, type RawClient } from './helpers/raw.ts';
import { testImpl, useServer, type ServerHandle } from './helpers/server.ts';

const impl = testImpl();

// ------------------------------------------------------------------ in-process parsers

/** Records what the client parser reports, as text; closes on the first error as ClientConn does. */
class ClientRecorder implements ProtocolHandler {
  closing = false;
  readonly awaitingConnect = false;
  readonly headersEnabled = true;
  readonly pedantic = true;
  readonly maxPayload = 4096;
  readonly maxControlLine = 1024;
  readonly events: string[] = [];
  onConnect(json: string): void {
    this.events.push(`CONNECT ${json}`);
  }
  onPubArgs(sb: Buffer, ss: number, se: number): void {
    this.events.push(`PUBARGS ${sb.toString('latin1', ss, se)}`);
  }
  onPub(m: MsgView): void {
    const subject = m.sb.toString('latin1', m.ss, m.se);
    const reply = m.rs >= 0 ? m.sb.toString('latin1', m.rs, m.re) : null;
    const body = m.pb.toString('latin1', m.ps, m.pe);
    this.events.push(`PUB ${subject} ${reply} ${m.hdr} ${JSON.stringify(body)}`);
    if (m.ts >= 0) {
      // The tail handed on for delivery must be exactly ` [reply ]size\r\n<payload>\r\n`, the
      // size as the client wrote it (leading zeros are echoed, as nats-server does).
      const got = m.tb.toString('latin1', m.ts, m.te);
      const head = ` ${reply !== null ? `${reply} ` : ''}`;
      const size = /^(\d+)\r\n/.exec(got.slice(head.length));
      if (
        !got.startsWith(head) ||
        size === null ||
        Number(size[1]) !== m.pe - m.ps ||
        got.slice(head.length + size[0].length) !== `${body}\r\n`
      ) {
        this.events.push(`BAD TAIL ${JSON.stringify(got)}`);
      }
    }
  }
  /** Subjects, queues and sids handed over as strings: each must be the input's bytes, one char per byte. */
  readonly names: string[] = [];
  onSub(subject: string, queue: string | null, sid: string): void {
    this.events.push(`SUB ${subject} ${queue} ${sid}`);
    this.names.push(subject, sid, ...(queue !== null ? [queue] : []));
  }
  onUnsub(sid: string, max: number): void {
    this.events.push(`UNSUB ${sid} ${max}`);
    this.names.push(sid);
  }
  onPing(): void {
    this.events.push('PING');
  }
  onPong(): void {
    this.events.push('PONG');
  }
  onClientErr(text: string): void {
    this.events.push(`-ERR ${text}`);
    this.closing = true;
  }
  onProtocolError(kind: ParseErrorKind): void {
    this.events.push(`ERROR ${kind}`);
    this.closing = true;
  }
}

class PeerRecorder implements PeerParserHandler {
  closing = false;
  readonly events: string[] = [];
  onControl(op: PeerOpCode, line: Buffer, as: number, ae: number): void {
    this.events.push(`OP ${op} ${line.toString('latin1', as, ae)}`);
  }
  onMsg(m: MsgView): void {
    const b = m.sb;
    const queues: string[] = [];
    for (let i = 0; i < m.queueCount; i++) queues.push(b.toString('latin1', m.queues[2 * i], m.queues[2 * i + 1]));
    this.events.push(
      `MSG ${m.os >= 0 ? m.ob.toString('latin1', m.os, m.oe) : '-'} ${b.toString('latin1', m.accountStart, m.accountEnd)} ${b.toString('latin1', m.ss, m.se)} ` +
        `${m.rs >= 0 ? b.toString('latin1', m.rs, m.re) : null} [${queues.join(',')}] ${m.hdr} ` +
        `${JSON.stringify(m.pb.toString('latin1', m.ps, m.pe))}`,
    );
    if (m.ts >= 0) {
      // A tail handed on (to a ring record, then a delivery) must be exactly ` [reply ][hdr ]size
      // \r\n<payload>\r\n` and follow the subject, the sizes as the peer wrote them.
      const got = m.tb.toString('latin1', m.ts, m.te);
      const head = ` ${m.rs >= 0 ? `${b.toString('latin1', m.rs, m.re)} ` : ''}`;
      const sizes = (m.hdr >= 0 ? /^(\d+) (\d+)\r\n/ : /^()(\d+)\r\n/).exec(got.slice(head.length));
      if (
        m.ts !== m.se ||
        m.tb !== m.sb ||
        m.queueCount !== 0 ||
        !got.startsWith(head) ||
        sizes === null ||
        Number(sizes[2]) !== m.pe - m.ps ||
        (m.hdr >= 0 && Number(sizes[1]) !== m.hdr) ||
        got.slice(head.length + sizes[0].length) !== `${m.pb.toString('latin1', m.ps, m.pe)}\r\n`
      ) {
        this.events.push(`BAD TAIL ${JSON.stringify(got)}`);
      }
    }
  }
  onParseError(kind: 'op' | 'args'): void {
    this.events.push(`ERROR ${kind}`);
    this.closing = true;
  }
}

interface InProcessParser {
  role: Role;
  /**
   * Feeds the chunks to a fresh parser; returns what it reported, and the names (subjects,
   * queues, sids) it handed over as strings. Throws what the parser throws.
   */
  run(chunks: Buffer[]): { events: string[]; names: string[] };
}

const inProcess: InProcessParser[] = [
  {
    role: roles.client,
    run(chunks) {
      const h = new ClientRecorder();
      const p = new Parser(h);
      for (const c of chunks) if (!h.closing) p.parse(c);
      return { events: h.events, names: h.names };
    },
  },
  {
    role: roles.route,
    // One server-to-server parser for every kind: the same frames through each row of its
    // operation table (what a gateway or a leafnode does not accept is an error there).
    run(chunks) {
      const events: string[] = [];
      for (const kind of [ConnKind.route, ConnKind.gateway, ConnKind.leaf]) {
        const h = new PeerRecorder();
        const p = new PeerParser(h, kind);
        for (const c of chunks) if (!h.closing) p.parse(c);
        for (const e of h.events) events.push(`${kind} ${e}`);
      }
      return { events, names: [] }; // positions into the input, no strings
    },
  },
];

for (const parser of inProcess) {
  test(`${parser.role.name} parser: random and mutated frames parse the same whole and cut at random points, and never throw`, (t) => {
    const budgetMs = fuzzBudgetMs(2);
    t.timeout(budgetMs + 60_000);
    const seed = fuzzSeed();
    const rng = prng(seed);
    const deadline = Date.now() + budgetMs;
    let streams = 0;
    while (Date.now() < deadline) {
      streams++;
      const input = stream(rng, parser.role, int(rng, 1, 30));
      const whole = Buffer.from(input, 'latin1');
      const pieces = splitRandomly(rng, input).map((s) => Buffer.from(s, 'latin1'));
      let a: string[];
      let b: string[];
      let names: string[];
      try {
        ({ events: a, names } = parser.run([whole]));
        b = parser.run(pieces).events;
      } catch (err) {
        t.fail(`seed ${seed}, stream ${streams}: the parser threw ${(err as Error).stack}\ninput: ${JSON.stringify(input)}`);
        return;
      }
      if (a.join('\n') !== b.join('\n')) {
        t.deepEqual(
          b,
          a,
          `seed ${seed}, stream ${streams}: split input parsed differently\ninput: ${JSON.stringify(input)}\n` +
            `pieces: ${JSON.stringify(pieces.map((p) => p.length))}`,
        );
        return;
      }
      // Bytes are bytes: `SUB \xff` must not come out as U+FFFD.
      const lossy = names.find((n) => !input.includes(n));
      if (lossy !== undefined) {
        t.fail(`seed ${seed}, stream ${streams}: ${JSON.stringify(lossy)} is not bytes of the input\ninput: ${JSON.stringify(input)}`);
        return;
      }
      const bad = a.find((e) => e.startsWith('BAD TAIL'));
      if (bad !== undefined) {
        t.fail(`seed ${seed}, stream ${streams}: ${bad}\ninput: ${JSON.stringify(input)}`);
        return;
      }
    }
    t.log(`${streams} streams, seed ${seed}`);
    t.pass();
  });
}

// ------------------------------------------------------------------ against a server

interface Bystander {
  /** Publishes a batch and waits until the subscriber has all of it, in order. */
  check(): Promise<void>;
}

/** A healthy subscriber and publisher on their own connections (so on both workers). */
async function bystander(t: ExecutionContext, port: number): Promise<Bystander> {
  const { c: sub } = await rawSession(port);
  const { c: pub } = await rawSession(port);
  t.teardown(() => {
    sub.close();
    pub.close();
  });
  sub.send('SUB bystander.x 1\r\n');
  await sub.ping();
  let seq = 0;
  return {
    async check() {
      let batch = '';
      for (let i = 0; i < 20; i++, seq++) batch += `PUB bystander.x ${String(seq).length}\r\n${seq}\r\n`;
      pub.send(batch);
      await pub.ping();
      await sub.expect(`MSG bystander.x 1 ${String(seq - 1).length}\r\n${seq - 1}\r\n`);
      const got = [...sub.data().matchAll(/MSG bystander\.x 1 \d+\r\n(\d+)\r\n/g)].map((m) => Number(m[1]));
      if (got.length !== seq || got.some((v, i) => v !== i))
        throw new Error(`bystander out of order or short: ${got.slice(-25).join(',')}`);
      if (/-ERR/.test(sub.data() + pub.data())) throw new Error('the bystander got an -ERR');
    },
  };
}

function assertServerFine(t: ExecutionContext, srv: ServerHandle, seed: number): void {
  t.false(srv.exited(), `seed ${seed}: the server exited\n${srv.output().slice(-4000)}`);
  const internal = /[Ii]nternal error|\n\s+at \S|\bTypeError\b|\bRangeError\b|Uncaught/.exec(srv.output());
  t.is(internal, null, `seed ${seed}: the server logged ${internal?.[0]}\n${srv.output().slice(-4000)}`);
}

/** Sends one fuzzed stream in random pieces (some right after another, some a little later), then closes. */
async function throwStream(c: RawClient, rng: Rng, input: string): Promise<void> {
  for (const piece of splitRandomly(rng, input)) {
    if (c.isClosed()) break;
    c.send(Buffer.from(piece, 'latin1'));
    if (rng() < 0.1) await new Promise((r) => setTimeout(r, int(rng, 0, 3)));
  }
  await c.readAll(20, 5000).catch(() => undefined);
  c.close();
}

const FAKE_ROUTE_CONNECT = (id: string): string =>
  `CONNECT ${JSON.stringify({ echo: true, verbose: false, pedantic: false, tls_required: false, headers: true, name: id, cluster: 'fuzz' })}\r\n` +
  `INFO ${JSON.stringify({ server_id: id, server_name: id, version: '2.9.10', proto: 2, host: '127.0.0.1', port: 1, headers: true, max_payload: 1048576, cluster: 'fuzz' })}\r\n`;

interface ServerFuzz {
  role: Role;
  /** Opens one connection of this role to the server, handshake done, ready for a fuzzed stream. */
  open(srv: ServerHandle, rng: Rng, n: number): Promise<RawClient>;
}

const againstServer: ServerFuzz[] = [
  {
    role: roles.client,
    async open(srv, rng) {
      const c = await rawConnect(srv.port);
      // Most streams start after a CONNECT, so the fuzzing reaches the connected states.
      if (rng() < 0.8) c.send('CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n');
      return c;
    },
  },
  {
    role: roles.route,
    async open(srv, _rng, n) {
      const c = await rawConnect(srv.clusterPort);
      await c.expect(/^INFO .*\r\n/);
      c.send(FAKE_ROUTE_CONNECT(`NFUZZ${process.pid}X${n}`));
      return c;
    },
  },
];

for (const target of againstServer) {
  test.serial(
    `server: random and mutated ${target.role.name} frames cut at random points never crash it or disturb a bystander`,
    async (t) => {
      const budgetMs = fuzzBudgetMs(5);
      t.timeout(budgetMs + 90_000);
      const seed = fuzzSeed();
      const rng = prng(seed);
      const srv = await useServer(t, {
        impl,
        workers: impl === 'skein' ? 2 : undefined,
        args: ['--cluster', 'nats://127.0.0.1:-1', '--cluster_name', 'fuzz'],
      });
      const by = await bystander(t, srv.port);
      const deadline = Date.now() + budgetMs;
      let conns = 0;
      while (Date.now() < deadline) {
        // A round: a few connections at once, each with its own stream, then the checks.
        const round = Array.from({ length: int(rng, 1, 6) }, async () => {
          const n = conns++;
          const c = await target.open(srv, rng, n);
          await throwStream(c, rng, stream(rng, target.role, int(rng, 1, 40)));
        });
        await Promise.all(round);
        assertServerFine(t, srv, seed);
        try {
          await by.check();
        } catch (err) {
          t.fail(`seed ${seed}, after ${conns} connections: ${(err as Error).message}`);
          return;
        }
      }
      t.log(`${conns} ${target.role.name} connections, seed ${seed}`);
      assertServerFine(t, srv, seed);
    },
  );
}
