// Reads into one buffer per thread, reused for every read of every connection that opts in,
// instead of a fresh 64 KiB buffer per read. Node allocates each read of a plain socket as a new ArrayBuffer; V8 counts
// them as external memory and, for a peer that streams hundreds of MB per second (a route,
// gateway or leaf carrying 1 KiB messages), answers with a full mark-compact every 64 MB or
// so: 19 of them in three seconds on a route thread, measured with --trace-gc. A reused
// buffer removes them, and with them the page faults and heap growth (mprotect) of fresh
// memory on every read: for a plain client publishing 1 KiB messages, server CPU per message
// fell by about a quarter.
//
// Node offers this as `net.Socket`'s `onread` option, but only to a socket it constructs:
// sockets accepted by main and moved to this thread, or dialled before the choice is made,
// are constructed elsewhere. So the option's two slots are found by name on a probe socket
// made with it, and set on the live socket together with the handle's useUserBuffer, as the
// constructor does (net.js, Node 24: kBuffer, kBufferCb; initSocketHandle). Anything missing
// (another runtime) and the caller reads with 'data' events as before.
//
// A chunk handed on is valid only during the call: whoever keeps input past it copies it
// (the peer parser does for a split line or payload; InputGate for held input). Sharing the
// buffer between the thread's sockets is safe for that reason: libuv reads one socket at a
// time and calls back before the next read.

import { Socket } from 'node:net';

interface OnreadSlots {
  buffer: symbol;
  callback: symbol;
}

let slots: OnreadSlots | null | undefined;

function onreadSlots(): OnreadSlots | null {
  if (slots !== undefined) return slots;
  const probe = new Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } });
  const own = Object.getOwnPropertySymbols(probe);
  const buffer = own.find((s) => s.description === 'kBuffer');
  const callback = own.find((s) => s.description === 'kBufferCb');
  probe.destroy();
  slots = buffer !== undefined && callback !== undefined ? { buffer, callback } : null;
  return slots;
}

/**
 * Bytes per read: four times Node's own 64 KiB. A read returns only what the socket holds, so
 * a large read happens only for a connection that streams faster than it is taken; then each
 * read costs one wake-up of every thread its messages cross, one pass of the loop and one
 * write per receiving connection for four times the messages. Measured on a 2-core VM
 * against 64 KiB, alternating (server CPU per message): 1->1 4 KiB `-w1` 6.6-7.9 -> 5.2-5.7
 * us, 16 KiB 28-32 -> 22-26 us, 1 KiB across two workers 2.5-2.9 -> 2.0-2.5 us, across a
 * route 4.4-4.7 -> 3.8-4.2 us, 16 B unchanged; 1 MiB was worse again (larger blocks crowd
 * the inboxes). What other connections of the thread wait for one read is bounded by it:
 * about 2 ms of 16-byte messages.
 */
export const READ_BUFFER_BYTES = 256 * 1024;

/** This thread's read buffer (every module instance is per thread). */
let threadBuffer: Buffer | null = null;

/**
 * Does `b` lie in this thread's read buffer, whose bytes the next read of any socket on this
 * thread overwrites? Whoever would keep a view of input past the read (a large payload written
 * by reference) copies it instead.
 */
export function inThreadReadBuffer(b: Uint8Array): boolean {
  return threadBuffer !== null && b.buffer === threadBuffer.buffer;
}

/**
 * From now on `s` reads into this thread's read buffer and hands `onChunk` a view of each read,
 * valid only during the call; no 'data' events. False (nothing changed) when this runtime's
 * socket does not have what this needs, or `s` is not a plain TCP socket that is reading.
 */
export function readIntoOwnBuffer(s: Socket, onChunk: (chunk: Buffer) => void): boolean {
  const found = onreadSlots();
  const handle = (s as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } | null })._handle ?? null;
  if (found === null || 'encrypted' in s || handle === null || typeof handle.useUserBuffer !== 'function') return false;
  const buf = (threadBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES));
  const live = s as unknown as Record<symbol, unknown>;
  live[found.buffer] = buf;
  live[found.callback] = (nread: number): boolean => {
    onChunk(buf.subarray(0, nread));
    return true;
  };
  handle.useUserBuffer(buf);
  return true;
}
