// Low-level scanning shared by the client parser (client-parser.ts) and the server-to-server parser
// (peer-parser.ts): byte classes, size fields, argument splitting, control-line limits, and how
// a bad stretch of input is quoted in a log line. Index arithmetic over one Buffer, no strings.

export const SP = 32;
export const TAB = 9;
export const CR = 13;
export const LF = 10;

/** nats-server's MAX_CONTROL_LINE_SIZE does not apply to routes, gateways and leafs
 * (client.go overMaxControlLineLimit); skein caps their control lines so that a garbage stream
 * cannot exhaust memory. */
export const PEER_MAX_CONTROL_LINE = 1024 * 1024;

/** nats-server's maxParseSizeLen: a size field has at most 9 digits (999,999,999). */
const MAX_SIZE_DIGITS = 9;

export function upper(c: number): number {
  return c >= 97 && c <= 122 ? c - 32 : c;
}

export function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

export function isSpace(c: number): boolean {
  return c === SP || c === TAB;
}

/** A size field (parser.go parseSize): digits only, at most 9 of them; -1 otherwise. */
export function parseSize(b: Uint8Array, s: number, e: number): number {
  const len = e - s;
  if (len === 0 || len > MAX_SIZE_DIGITS) return -1;
  let n = 0;
  for (let i = s; i < e; i++) {
    const d = b[i] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * The arguments of one control line, as [start, end) positions in the line's buffer. One
 * instance is reused for every line (a line's arguments are used before the next is split).
 * With a fixed capacity, a line with more arguments reports capacity + 1 (the client's
 * operations have at most 5); a growable list takes any number (a routed message's queue names).
 */
export class ArgList {
  starts: Int32Array;
  ends: Int32Array;
  private readonly growable: boolean;

  constructor(capacity: number, growable: boolean) {
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
    this.growable = growable;
  }

  /**
   * Split b[s, e) on spaces and tabs (and CR too with `cr`: SUB and UNSUB, as nats-server's
   * splitArg; PUB, HPUB and the routed messages split on space and tab only). Returns the count.
   */
  split(b: Uint8Array, s: number, e: number, cr: boolean): number {
    let argc = 0;
    let start = -1;
    for (let i = s; i < e; i++) {
      const c = b[i];
      if (c === SP || c === TAB || (cr && c === CR)) {
        if (start >= 0) {
          if (argc === this.starts.length && !this.grow()) return argc + 1;
          this.starts[argc] = start;
          this.ends[argc++] = i;
          start = -1;
        }
      } else if (start < 0) {
        start = i;
      }
    }
    if (start >= 0) {
      if (argc === this.starts.length && !this.grow()) return argc + 1;
      this.starts[argc] = start;
      this.ends[argc++] = e;
    }
    return argc;
  }

  private grow(): boolean {
    if (!this.growable) return false;
    const starts = new Int32Array(this.starts.length * 2);
    const ends = new Int32Array(this.ends.length * 2);
    starts.set(this.starts);
    ends.set(this.ends);
    this.starts = starts;
    this.ends = ends;
    return true;
  }
}

/**
 * End of the arguments that start at `a` on a line whose '\n' is at `nl`. As nats-server's
 * parser: a CR anywhere after the first argument byte drops the line's last byte, whatever
 * it is (`SUB foo 1\r\r\n` has the arguments `foo 1\r`); without one the arguments run to
 * the '\n'.
 */
export function argsEnd(b: Uint8Array, a: number, nl: number): number {
  if (nl - 1 <= a) return nl;
  if (b[nl - 1] === CR) return nl - 1;
  // A loop, not indexOf: indexOf would scan past the line, to the end of the read.
  for (let i = a + 1; i < nl; i++) if (b[i] === CR) return nl - 1;
  return nl;
}

/** Up to 32 bytes of input from `s`, quoted, for a parser error line (`proto=...`). */
export function snippet(b: Buffer, s: number, e = b.length): string {
  return JSON.stringify(b.toString('latin1', s, Math.min(e, s + 32)));
}
