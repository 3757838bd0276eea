// Monitoring-port helpers: the port a server logged, HTTP GETs, and the "shape" of a JSON
// document (key sets and JSON types, recursively) that the field tests compare between skein
// and nats-server 2.9.10.

import type { ServerHandle } from './server.ts';

/** The monitoring port from `Starting http monitor on host:port` (both implementations log it). */
export async function monitorPort(srv: ServerHandle, timeoutMs = 20_000): Promise<number> {
  const m = await srv.waitForLog(/Starting http monitor on \S+:(\d+)/, timeoutMs);
  return Number(m[1]);
}

/** The route listener's port from `Listening for route connections on host:port`. */
export async function clusterPortOf(srv: ServerHandle, timeoutMs = 20_000): Promise<number> {
  const m = await srv.waitForLog(/Listening for route connections on \S+:(\d+)/, timeoutMs);
  return Number(m[1]);
}

export interface HttpAnswer {
  status: number;
  type: string;
  body: string;
}

export async function get(port: number, path: string, init: RequestInit = {}): Promise<HttpAnswer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

export async function getJson(port: number, path: string): Promise<Record<string, unknown>> {
  const a = await get(port, path);
  if (a.status !== 200) throw new Error(`GET ${path}: ${a.status} ${a.body}`);
  return JSON.parse(a.body) as Record<string, unknown>;
}

/** Fields whose value is a Go map (keys are data, not schema): compared as 'map' only. */
const MAPS = new Set(['http_req_stats', 'outbound_gateways', 'inbound_gateways']);

/**
 * A document's schema as seen on the wire: objects become their keys (sorted) with each
 * value's shape; arrays the merged shape of their elements (`[]` when empty); scalars their
 * JSON type. In a merged array element a key missing from some elements is marked `key?` and
 * a value of several types reads `number|string`, whatever the elements' order. Two documents
 * with the same shape have the same keys and types everywhere.
 */
export function shapeOf(v: unknown, key = ''): unknown {
  if (MAPS.has(key)) return v !== null && typeof v === 'object' && !Array.isArray(v) ? 'map' : typeof v;
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? '[]' : [mergeShapes(v.map((e) => shapeOf(e)))];
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = shapeOf((v as Record<string, unknown>)[k], k);
    return out;
  }
  return typeof v;
}

const isRecord = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

function mergeShapes(shapes: unknown[]): unknown {
  if (shapes.every(isRecord)) {
    const keys = [...new Set(shapes.flatMap((s) => Object.keys(s)))].sort();
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const present = shapes.filter((s) => k in s).map((s) => s[k]);
      out[present.length === shapes.length ? k : `${k}?`] = mergeShapes(present);
    }
    return out;
  }
  if (shapes.every(Array.isArray)) {
    const inner = shapes.filter((s) => s.length > 0).map((s) => s[0]);
    return inner.length === 0 ? [] : [mergeShapes(inner)];
  }
  return [...new Set(shapes.map((s) => JSON.stringify(s)))].sort().join('|');
}

/** Paths (a.b[].c) where two shapes differ, for a readable failure. */
export function shapeDiff(a: unknown, b: unknown, at = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    if (Array.isArray(a) && Array.isArray(b)) return shapeDiff(a[0], b[0], `${at}[]`);
    if (!Array.isArray(a) && !Array.isArray(b)) {
      const out: string[] = [];
      const ka = Object.keys(a);
      const kb = Object.keys(b);
      for (const k of ka)
        if (!kb.includes(k)) out.push(`${at}.${k}: only in the first (${JSON.stringify((a as Record<string, unknown>)[k])})`);
      for (const k of kb)
        if (!ka.includes(k)) out.push(`${at}.${k}: only in the second (${JSON.stringify((b as Record<string, unknown>)[k])})`);
      for (const k of ka)
        if (kb.includes(k)) out.push(...shapeDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`));
      return out;
    }
  }
  return [`${at}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}
