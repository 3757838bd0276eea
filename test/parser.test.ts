// The byte parser on its own: the same input fed in one chunk, byte by byte and in random
// splits must produce the same operations; errors are classified as nats-server does.

import test from 'ava';
import { Parser, type ProtocolHandler, type ParseErrorKind } from '../src/protocol/client-parser.ts';
import type { MsgView } from '../src/protocol/msg-view.ts';

class Recorder implements ProtocolHandler {
  ops: string[] = [];
  tails: string[] = [];
  closing = false;
  awaitingConnect = false;
  headersEnabled = true;
  pedantic = false;
  maxPayload = 1024;
  maxControlLine = 64;
  onConnect(json: string): void {
    this.ops.push(`CONNECT ${json}`);
  }
  onPubArgs(): void {}
  onPub(m: MsgView): void {
    if (m.ts >= 0) this.tails.push(m.tb.toString('latin1', m.ts, m.te));
    const reply = m.rs >= 0 ? ` ${m.sb.toString('latin1', m.rs, m.re)}` : '';
    this.ops.push(`PUB ${m.sb.toString('latin1', m.ss, m.se)}${reply} hdr=${m.hdr} [${m.pb.toString('latin1', m.ps, m.pe)}]`);
  }
  onSub(subject: string, queue: string | null, sid: string): void {
    this.ops.push(`SUB ${subject} ${queue ?? '-'} ${sid}`);
  }
  onUnsub(sid: string, max: number): void {
    this.ops.push(`UNSUB ${sid} ${max}`);
  }
  onPing(): void {
    this.ops.push('PING');
  }
  onPong(): void {
    this.ops.push('PONG');
  }
  onClientErr(text: string): void {
    this.ops.push(`ERR ${text}`);
    this.closing = true;
  }
  onProtocolError(kind: ParseErrorKind): void {
    this.ops.push(`!${kind}`);
    this.closing = true;
  }
}

function run(input: Buffer, splits: number[]): string[] {
  const r = new Recorder();
  const p = new Parser(r);
  let at = 0;
  for (const s of [...splits, input.length]) {
    if (s <= at) continue;
    p.parse(input.subarray(at, s));
    at = s;
    if (r.closing) break;
  }
  return r.ops;
}

const session = Buffer.from(
  'CONNECT {"verbose":false}\r\nsub foo 1\r\nSUB\tbar  q 2\r\nPUB foo 5\r\nhello\r\n' +
    'PUB foo reply 0\r\n\r\nHPUB foo r 3 7\r\nhd:abcd\r\npub foo\t\t 2\r\nhi\r\n' +
    'PUB bin 4\r\n\r\n\r\n\r\nUNSUB 1 5\r\nunsub 2\r\nPINGXYZ\r\nPONG\nINFO {}\r\n',
);

test('one chunk, byte by byte and random splits give the same operations', (t) => {
  const whole = run(session, []);
  t.deepEqual(whole, [
    'CONNECT {"verbose":false}',
    'SUB foo - 1',
    'SUB bar q 2',
    'PUB foo hdr=-1 [hello]',
    'PUB foo reply hdr=-1 []',
    'PUB foo r hdr=3 [hd:abcd]',
    'PUB foo hdr=-1 [hi]',
    'PUB bin hdr=-1 [\r\n\r\n]',
    'UNSUB 1 5',
    'UNSUB 2 0',
    'PING',
    'PONG',
  ]);
  const bytes = Array.from({ length: session.length }, (_v, i) => i + 1);
  t.deepEqual(run(session, bytes), whole);
  for (let k = 0; k < 50; k++) {
    const cuts = Array.from({ length: 6 }, () => Math.floor(Math.random() * session.length)).sort((a, b) => a - b);
    t.deepEqual(run(session, cuts), whole, `splits ${cuts.join(',')}`);
  }
});

test('PUB frames with any byte in their tokens parse the same in one chunk (fast path) as byte by byte', (t) => {
  // Tokens of 0-40 bytes, mostly ordinary, sometimes a control byte, TAB, DEL or a UTF-8 byte,
  // at every alignment: the fast path scans them four bytes at a time and must find exactly
  // the separators (or the frame it must leave to the general path) that bytes one by one do.
  const odd = [0, 1, 9, 11, 13, 31, 32, 33, 127, 128, 160, 255, 0xc3, 0xa9];
  const token = (): number[] =>
    Array.from({ length: Math.floor(Math.random() * 41) }, () =>
      Math.random() < 0.04 ? odd[Math.floor(Math.random() * odd.length)] : 33 + Math.floor(Math.random() * 94),
    );
  for (let k = 0; k < 200; k++) {
    const frames: Buffer[] = [];
    for (let f = 0; f < 20; f++) {
      const size = Math.floor(Math.random() * 12);
      const reply = Math.random() < 0.3 ? [32, ...token()] : [];
      const line = [...Buffer.from('PUB '), ...token(), 32, ...reply, ...Buffer.from(` ${size}`)];
      frames.push(Buffer.from([...line, 13, 10, ...Buffer.alloc(size, 120), 13, 10]));
    }
    const input = Buffer.concat(frames);
    const bytes = Array.from({ length: input.length }, (_v, i) => i + 1);
    t.deepEqual(run(input, []), run(input, bytes), input.toString('latin1'));
  }
});

test('a canonical PUB frame exposes its MSG tail', (t) => {
  const r = new Recorder();
  new Parser(r).parse(Buffer.from('PUB a.b 3\r\nxyz\r\nPUB a.b r.1 2\r\nhi\r\nPUB  a.b 1\r\nq\r\n'));
  t.is(r.ops.length, 3);
  t.deepEqual(r.tails, [' 3\r\nxyz\r\n', ' r.1 2\r\nhi\r\n']);
});

test('PUB frames with UTF-8 subjects and replies take the fast path (they expose their MSG tail)', (t) => {
  const r = new Recorder();
  const subjects = ['é', 'dé.ü', 'ação.ñandú.€', 'x.ÿÿÿÿÿÿÿÿ.y'];
  const input = subjects.map((s) => `PUB ${s} ${s}.r 2\r\nhi\r\n`).join('');
  new Parser(r).parse(Buffer.from(input, 'utf8'));
  t.is(r.ops.length, subjects.length);
  t.deepEqual(
    r.tails,
    subjects.map((s) => Buffer.from(` ${s}.r 2\r\nhi\r\n`, 'utf8').toString('latin1')),
  );
});

test('errors are classified like nats-server', (t) => {
  const cases: [string, string][] = [
    ['FOO\r\n', '!op'],
    ['PUX foo 1\r\n', '!op'],
    ['PUB\r\n', '!op'],
    ['UNSUB\r\n', '!op'],
    ['PUB foo\r\n', '!args'],
    ['PUB foo bar baz 1\r\n', '!args'],
    ['PUB foo x\r\n', '!args'],
    ['PUB foo 1234567890\r\n', '!args'],
    ['SUB foo\r\n', '!args'],
    ['HPUB foo 5 3\r\n', '!args'],
    ['PUB foo 2000\r\n', '!payload'],
    ['PUB foo 3\r\nabcXY', '!op'],
    [`SUB ${'x'.repeat(70)} 1\r\n`, '!ctl'],
    ["-ERR 'boom'\r\n", "ERR 'boom'"],
  ];
  for (const [input, want] of cases) {
    const ops = run(Buffer.from(input), []);
    t.is(ops[ops.length - 1], want, input);
    const ops1 = run(
      Buffer.from(input),
      Array.from({ length: input.length }, (_v, i) => i + 1),
    );
    t.is(ops1[ops1.length - 1], want, `byte by byte: ${input}`);
  }
});

test('an unterminated control line over the limit is refused before its newline', (t) => {
  const ops = run(Buffer.from(`PUB ${'x'.repeat(100)}`), []);
  t.deepEqual(ops, ['!ctl']);
});

test('pending auth refuses any first operation but CONNECT', (t) => {
  const r = new Recorder();
  r.awaitingConnect = true;
  new Parser(r).parse(Buffer.from('SUB foo 1\r\n'));
  t.deepEqual(r.ops, ['!auth']);
});

test('input held at a PING or UNSUB (barrier says not yet) is parsed from there on resume, however it was split', (t) => {
  class Holder extends Recorder {
    open = false;
    /** Lets one barrier through after each resume. */
    barrier(): boolean {
      const pass = this.open;
      this.open = false;
      return pass;
    }
  }
  const whole = run(session, []);
  for (const cuts of [[], Array.from({ length: session.length }, (_v, i) => i + 1), [17, 40, 41, 90, 160, 161, 170]]) {
    const r = new Holder();
    const p = new Parser(r);
    let at = 0;
    const ops: string[] = [];
    for (const s of [...cuts, session.length]) {
      if (s <= at) continue;
      p.parse(session.subarray(at, s));
      at = s;
      // Each time the parser stops at a barrier, let it through once and resume.
      while (p.held) {
        ops.push(`held before ${r.ops.length}`);
        r.open = true;
        p.resume();
      }
    }
    t.deepEqual(r.ops, whole);
    // Held before the first UNSUB (8 operations in), the second UNSUB and the PING.
    t.deepEqual(ops, ['held before 8', 'held before 9', 'held before 10']);
  }
});
