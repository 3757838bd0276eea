// The text formats nats-server's monitoring endpoints inherit from Go: time.Duration strings,
// RFC 3339 times with nanoseconds, the `uptime`/`idle` strings (monitor.go myUptime),
// encoding/json's MarshalIndent, net/url's query parsing and the strconv errors its 400 answers
// quote. Tools parse these (nats-top, prometheus-nats-exporter), so they must match.
//
// Pure functions; used on the main thread only.

/** A Go time.Duration's String() for `ns` nanoseconds: `0s`, `304µs`, `2.371397ms`, `1m30.5s`. */
export function goDurationNs(ns: number): string {
  let u = Math.round(Math.abs(ns));
  if (u === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  if (u < 1e3) return `${sign}${u}ns`;
  if (u < 1e6) return `${sign}${fraction(u, 1e3)}µs`;
  if (u < 1e9) return `${sign}${fraction(u, 1e6)}ms`;
  const h = Math.floor(u / 3.6e12);
  u -= h * 3.6e12;
  const m = Math.floor(u / 6e10);
  u -= m * 6e10;
  let s = `${fraction(u, 1e9)}s`;
  if (h > 0 || m > 0) s = `${m}m${s}`;
  if (h > 0) s = `${h}h${s}`;
  return sign + s;
}

/** `v / unit` with the fraction's trailing zeros dropped, as Go's fmtFrac. */
function fraction(v: number, unit: number): string {
  const whole = Math.floor(v / unit);
  const rest = v - whole * unit;
  if (rest === 0) return String(whole);
  const digits = String(unit).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}

/**
 * A connection's RTT as nats-server reports it (client.go getRTT): between 1µs and 1ms it is
 * truncated to microseconds, otherwise to nanoseconds. `ms` may be fractional.
 */
export function rttString(ms: number): string {
  let ns = Math.round(ms * 1e6);
  if (ns > 1e3 && ns < 1e6) ns = Math.floor(ns / 1e3) * 1e3;
  return goDurationNs(ns);
}

/** monitor.go myUptime: whole seconds as `1y2d3h4m5s`, leading zero units left out. */
export function uptimeString(ms: number): string {
  const tsecs = Math.max(0, Math.floor(ms / 1000));
  const tmins = Math.floor(tsecs / 60);
  const thrs = Math.floor(tmins / 60);
  const tdays = Math.floor(thrs / 24);
  const tyrs = Math.floor(tdays / 365);
  if (tyrs > 0) return `${tyrs}y${tdays % 365}d${thrs % 24}h${tmins % 60}m${tsecs % 60}s`;
  if (tdays > 0) return `${tdays}d${thrs % 24}h${tmins % 60}m${tsecs % 60}s`;
  if (thrs > 0) return `${thrs}h${tmins % 60}m${tsecs % 60}s`;
  if (tmins > 0) return `${tmins}m${tsecs % 60}s`;
  return `${tsecs}s`;
}

/** Wall-clock now in milliseconds with a sub-millisecond fraction. */
export function preciseNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * A time as Go marshals a UTC time.Time: RFC 3339 with the fraction's trailing zeros trimmed.
 * A double holding epoch milliseconds is exact to about a microsecond, so that is the precision
 * printed (Go prints up to nanoseconds; parsers take either).
 */
export function rfc3339(ms: number): string {
  let whole = Math.floor(ms);
  let us = Math.round((ms - whole) * 1000);
  if (us === 1000) {
    whole++;
    us = 0;
  }
  const base = new Date(whole).toISOString(); // 2026-12-01T15:25:31.713Z
  const frac = String((whole % 1000) * 1000 + us)
    .padStart(6, '0')
    .replace(/0+$/, '');
  return `${base.slice(0, 19)}${frac === '' ? '' : `.${frac}`}Z`;
}

/**
 * encoding/json MarshalIndent(v, "", "  "): two-space indent, and the HTML-safe escapes Go
 * applies inside strings (<, >, & and the two JavaScript line terminators). Those characters
 * can only occur inside JSON strings, so replacing them in the text is exact.
 */
export function marshalIndent(v: unknown): string {
  return goEscape(JSON.stringify(v, null, 2));
}

/** encoding/json Marshal (compact), with Go's escapes. */
export function marshal(v: unknown): string {
  return goEscape(JSON.stringify(v));
}

function goEscape(s: string): string {
  return s.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A Go map marshals with its keys sorted. */
export function sortedMap<V>(entries: Iterable<[string, V]>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const [k, v] of [...entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) out[k] = v;
  return out;
}

// ------------------------------------------------------------------------ query strings

/**
 * net/url ParseQuery as r.URL.Query() uses it: `&`-separated pairs, `+` is a space, a pair with
 * a bad escape or a `;` is dropped (Go >= 1.17), the first value of a key wins in Get().
 */
export function parseQuery(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of raw.split('&')) {
    if (part === '' || part.includes(';')) continue;
    const eq = part.indexOf('=');
    const key = unescapeQuery(eq < 0 ? part : part.slice(0, eq));
    const value = unescapeQuery(eq < 0 ? '' : part.slice(eq + 1));
    if (key === null || value === null) continue;
    if (!out.has(key)) out.set(key, value);
  }
  return out;
}

function unescapeQuery(s: string): string | null {
  if (!s.includes('%') && !s.includes('+')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */) {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) return null;
      bytes.push(parseInt(h, 16));
      i += 2;
    } else if (c === 43 /* + */) {
      bytes.push(32);
    } else {
      for (const b of Buffer.from(s[i], 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** strconv.Quote, for the values nats-server echoes in its 400 answers. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 0xfffd) out += '\\ufffd';
    else out += ch;
  }
  return `${out}"`;
}

/** A query value that strconv rejected: the 400 answer's text. */
export class QueryError extends Error {
  readonly code = 'BAD_QUERY';
}

/** monitor.go decodeBool: empty is false; otherwise strconv.ParseBool. */
export function decodeBool(q: Map<string, string>, param: string): boolean {
  const v = q.get(param) ?? '';
  if (v === '') return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new QueryError(`Error decoding boolean for '${param}': strconv.ParseBool: parsing ${goQuote(v)}: invalid syntax`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** monitor.go decodeInt: empty is 0; otherwise strconv.Atoi (64-bit). */
export function decodeInt(q: Map<string, string>, param: string): number {
  const v = q.get(param) ?? '';
  if (v === '') return 0;
  const fail = (why: string): never => {
    throw new QueryError(`Error decoding int for '${param}': strconv.Atoi: parsing ${goQuote(v)}: ${why}`);
  };
  if (!/^[+-]?[0-9]+$/.test(v)) fail('invalid syntax');
  const n = BigInt(v);
  if (n < INT64_MIN || n > INT64_MAX) fail('value out of range');
  return Number(n);
}

/** monitor.go decodeUint64: empty is 0; otherwise strconv.ParseUint(v, 10, 64). */
export function decodeUint64(q: Map<string, string>, param: string): number {
  const v = q.get(param) ?? '';
  if (v === '') return 0;
  const fail = (why: string): never => {
    throw new QueryError(`Error decoding uint64 for '${param}': strconv.ParseUint: parsing ${goQuote(v)}: ${why}`);
  };
  if (!/^[0-9]+$/.test(v)) fail('invalid syntax');
  if (BigInt(v) > UINT64_MAX) fail('value out of range');
  return Number(v);
}
