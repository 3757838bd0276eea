// Seeded input generators for the fuzz tests (test/fuzz.test.ts): protocol frames per
// connection role, mutations of them, and random split points. One role per protocol the
// server parses (client, route; a gateway role is one more entry in `roles`). Everything
// is driven by a small seeded PRNG, so a failure names its seed and replays exactly.
//
// Budget: SKEIN_FUZZ_SECONDS scales every fuzz test (default: a few seconds each, for the
// suite); SKEIN_FUZZ_SEED fixes the seed (default: a new one per run, printed on failure).

/** A seeded PRNG (mulberry32): floats in [0, 1). */
export type Rng = () => number;

export function prng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function fuzzSeed(): number {
  const v = process.env.SKEIN_FUZZ_SEED;
  return v !== undefined && v !== '' ? Number(v) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
}

/** This test's time budget in ms: `defaultSeconds`, or SKEIN_FUZZ_SECONDS for a long run. */
export function fuzzBudgetMs(defaultSeconds: number): number {
  const v = Number(process.env.SKEIN_FUZZ_SECONDS);
  return (Number.isFinite(v) && v > 0 ? v : defaultSeconds) * 1000;
}

export const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
const chance = (rng: Rng, p: number): boolean => rng() < p;

/** Bytes as a latin1 string (one char per byte): frames are built and mutated as strings. */
function randomBytes(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(int(rng, 0, 255));
  return s;
}

// Tokens the generators draw subjects from: plain, wildcards, odd bytes, long ones. The
// bystander's subject (`bystander.*`) is never generated.
const TOKENS = ['f', 'foo', 'bar', 'q', '*', '>', '\xff', '\xc3\xbc', '_INBOX', 'a\x01', '$G', 'x'.repeat(40)];

function subject(rng: Rng, wildcards: boolean): string {
  const n = int(rng, 1, 4);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    let t = pick(rng, TOKENS);
    if (!wildcards && (t === '*' || t === '>')) t = 'w';
    parts.push(t);
  }
  if (chance(rng, 0.03)) parts.splice(int(rng, 0, parts.length), 0, ''); // an empty token
  return `fz.${parts.join('.')}`;
}

function payload(rng: Rng): string {
  const n = chance(rng, 0.1) ? int(rng, 200, 3000) : int(rng, 0, 24);
  return chance(rng, 0.5) ? 'p'.repeat(n) : randomBytes(rng, n);
}

function headerBlock(rng: Rng): string {
  return chance(rng, 0.1) ? '' : `NATS/1.0\r\nK: ${int(rng, 0, 999)}\r\n\r\n`;
}

const SP = [' ', ' ', ' ', '  ', '\t'];
const sp = (rng: Rng): string => pick(rng, SP);
const caseOf = (rng: Rng, op: string): string => (chance(rng, 0.1) ? op.toLowerCase() : op);

/** A well-formed (or nearly: sizes always match) client frame. */
function clientFrame(rng: Rng, sids: string[]): string {
  const r = rng();
  if (r < 0.3) {
    const p = payload(rng);
    const reply = chance(rng, 0.3) ? `${sp(rng)}${subject(rng, false)}` : '';
    return `${caseOf(rng, 'PUB')}${sp(rng)}${subject(rng, false)}${reply}${sp(rng)}${p.length}\r\n${p}\r\n`;
  }
  if (r < 0.4) {
    const h = headerBlock(rng);
    const p = payload(rng);
    return `${caseOf(rng, 'HPUB')} ${subject(rng, false)} ${h.length} ${h.length + p.length}\r\n${h}${p}\r\n`;
  }
  if (r < 0.6) {
    const sid = String(int(rng, 1, 40));
    sids.push(sid);
    const queue = chance(rng, 0.3) ? `${sp(rng)}${pick(rng, ['g', 'g2', '\xfe', 'q.*'])}` : '';
    return `${caseOf(rng, 'SUB')}${sp(rng)}${subject(rng, true)}${queue}${sp(rng)}${sid}\r\n`;
  }
  if (r < 0.7) {
    const sid = sids.length > 0 ? pick(rng, sids) : '1';
    return `${caseOf(rng, 'UNSUB')} ${sid}${chance(rng, 0.3) ? ` ${int(rng, 0, 5)}` : ''}\r\n`;
  }
  if (r < 0.8) return pick(rng, ['PING\r\n', 'PONG\r\n', 'ping\r\n', '+OK\r\n', 'PING\n']);
  if (r < 0.88) return `CONNECT ${JSON.stringify(pick(rng, CONNECTS))}\r\n`;
  if (r < 0.92) return `INFO {"x":${int(rng, 0, 9)}}\r\n`;
  return pick(rng, ["-ERR 'x'\r\n", 'MSG a 1 0\r\n\r\n', 'RS+ $G a\r\n', 'SUB a\r1\r\n', 'PUB a\r1\r\nx\r\n']);
}

const CONNECTS: Record<string, unknown>[] = [
  { verbose: false, pedantic: false },
  { verbose: true, pedantic: true, headers: true },
  { verbose: false, pedantic: false, headers: true, no_responders: true },
  { echo: false },
  { protocol: 1, verbose: false },
  { protocol: 2 },
  { user: 'nobody', pass: 'x' },
];

/** A well-formed (sizes match) route frame, after the handshake. */
function routeFrame(rng: Rng, _sids: string[]): string {
  const r = rng();
  if (r < 0.35) {
    const p = payload(rng);
    let mid = '';
    const q = int(rng, 0, 2);
    const queues = Array.from({ length: q }, () => pick(rng, ['g', 'g2', '\xfe']));
    if (q > 0) mid = ` ${chance(rng, 0.5) ? `+ ${subject(rng, false)}` : '|'} ${queues.join(' ')}`;
    else if (chance(rng, 0.3)) mid = ` ${subject(rng, false)}`;
    return `${caseOf(rng, 'RMSG')} $G ${subject(rng, false)}${mid} ${p.length}\r\n${p}\r\n`;
  }
  if (r < 0.45) {
    const h = headerBlock(rng);
    const p = payload(rng);
    if (chance(rng, 0.3)) {
      // A leaf's message passed on by an lnoc peer: the origin cluster first, both sizes always.
      const hb = chance(rng, 0.5) ? h : '';
      const reply = chance(rng, 0.3) ? ` ${subject(rng, false)}` : '';
      return `LMSG ${pick(rng, ['LC', 'o2'])} $G ${subject(rng, false)}${reply} ${hb.length} ${hb.length + p.length}\r\n${hb}${p}\r\n`;
    }
    return `HMSG $G ${subject(rng, false)} ${h.length} ${h.length + p.length}\r\n${h}${p}\r\n`;
  }
  if (r < 0.65) {
    const queue = chance(rng, 0.3) ? ` ${pick(rng, ['g', 'g2', '\xfe'])} ${int(rng, 0, 5)}` : '';
    return `${caseOf(rng, 'RS+')} ${pick(rng, ['$G', '$G', '$SYS', 'acc'])} ${subject(rng, true)}${queue}\r\n`;
  }
  if (r < 0.75) return `RS- $G ${subject(rng, true)}${chance(rng, 0.3) ? ' g' : ''}\r\n`;
  if (r < 0.8) return `LS+ $G ${subject(rng, true)}\r\n`;
  if (r < 0.9) return pick(rng, ['PING\r\n', 'PONG\r\n', '+OK\r\n']);
  if (r < 0.95) return `INFO {"server_id":"FUZZ","cluster":"fuzz","port":${int(rng, 0, 9)}}\r\n`;
  return pick(rng, ['LMSG $G a 1\r\nx\r\n', 'RMSG $G a + 1\r\nx\r\n', 'RMSG\r\n', 'MSG a 1\r\n']);
}

/** Random changes to a frame stream: flipped, inserted, deleted, repeated and swapped bytes. */
export function mutate(rng: Rng, s: string): string {
  const n = int(rng, 1, 4);
  for (let k = 0; k < n && s.length > 0; k++) {
    const at = int(rng, 0, s.length - 1);
    switch (int(rng, 0, 8)) {
      case 0:
        s = s.slice(0, at) + String.fromCharCode(int(rng, 0, 255)) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at) + pick(rng, ['\r', '\n', ' ', '\t', '\r\n', '\x00', '*', '>', '.', '-', '9']) + s.slice(at);
        break;
      case 2:
        s = s.slice(0, at) + s.slice(at + int(rng, 1, 8));
        break;
      case 3: {
        const len = int(rng, 1, 32);
        s = s.slice(0, at) + s.slice(at, at + len).repeat(int(rng, 2, 4)) + s.slice(at + len);
        break;
      }
      case 4:
        s = s.slice(0, at) + String(pick(rng, [0, 1, 99999, 4294967296, -1, 999999999])) + s.slice(at + 1);
        break;
      case 5:
        s = s.slice(0, at);
        break;
      case 6:
        s = s.slice(0, at) + randomBytes(rng, int(rng, 1, 16)) + s.slice(at);
        break;
      case 7: {
        // ASCII case only: the stream stays one char per byte
        const c = s.charCodeAt(at);
        s = s.slice(0, at) + String.fromCharCode(c >= 97 && c <= 122 ? c - 32 : c >= 65 && c <= 90 ? c + 32 : c) + s.slice(at + 1);
        break;
      }
      default:
        s = s.slice(0, at) + 'x'.repeat(int(rng, 100, 5000)) + s.slice(at);
        break;
    }
  }
  return s;
}

/** Cuts `s` at random points: one-byte pieces, small ones and big ones. */
export function splitRandomly(rng: Rng, s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    const len = chance(rng, 0.2) ? 1 : chance(rng, 0.5) ? int(rng, 1, 16) : int(rng, 16, 4096);
    out.push(s.slice(i, i + len));
    i += len;
  }
  return out;
}

export interface Role {
  readonly name: string;
  /** One frame of this protocol; `sids` collects subscription ids for later UNSUBs. */
  frame(rng: Rng, sids: string[]): string;
}

/** The protocols the server parses. A gateway role goes here when gateways exist. */
export const roles: Record<'client' | 'route', Role> = {
  client: { name: 'client', frame: clientFrame },
  route: { name: 'route', frame: routeFrame },
};

/**
 * A stream for one connection: `frames` frames of the role, valid as generated or mutated
 * (about half the streams), or now and then random bytes only.
 */
export function stream(rng: Rng, role: Role, frames: number): string {
  if (chance(rng, 0.05)) return randomBytes(rng, int(rng, 1, 512));
  const sids: string[] = [];
  let s = '';
  for (let i = 0; i < frames; i++) s += role.frame(rng, sids);
  return chance(rng, 0.5) ? mutate(rng, s) : s;
}
