// nats-server-style log lines: `[pid] 2026/01/02 15:04:05.000000 [INF] message` (without the
// time when `logtime` is off, as nats-server -T=false).
// Works on any thread: worker threads write to process.stderr, which Node forwards to the
// main thread's stderr; log lines are rare (never per message), so that hop is harmless.
// With a log file (`log_file` / -l) every thread opens the file itself in append mode and
// writes whole lines, so lines from different threads never interleave; SIGUSR1 makes every
// thread reopen it (log rotation), as nats-server's ReOpenLogFile.

import fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';

export type Level = 'INF' | 'DBG' | 'TRC' | 'WRN' | 'ERR' | 'FTL';

let debugEnabled = false;
let traceEnabled = false;
let logtime = true;
let logFile: string | undefined;
let logFd: number | null = null;

/** What a thread's logger follows: the logging options (a subset of Options). */
export interface LogSettings {
  debug: boolean;
  trace: boolean;
  logtime?: boolean;
  logFile?: string;
}

/**
 * Apply logging options on this thread. Opens the log file (append) when it changed; throws
 * the open error, leaving the previous destination in place.
 */
export function configureLog(o: LogSettings): void {
  if ((o.logFile ?? undefined) !== logFile) {
    const fd = o.logFile !== undefined ? fs.openSync(o.logFile, 'a', 0o640) : null;
    closeLogFile();
    logFd = fd;
    logFile = o.logFile;
  }
  debugEnabled = o.debug;
  traceEnabled = o.trace;
  logtime = o.logtime ?? true;
}

/**
 * Reopen the log file (after it was moved away by log rotation). Returns false when this
 * thread does not log to a file. Throws the open error, keeping the old file.
 */
export function reopenLogFile(): boolean {
  if (logFile === undefined) return false;
  const fd = fs.openSync(logFile, 'a', 0o640);
  closeLogFile();
  logFd = fd;
  return true;
}

/**
 * A reload on a worker or role thread: `configureLog`, and a file that cannot be opened is
 * logged as `<who>: cannot open the log file: ...` while the previous destination stays.
 */
export function reconfigureLog(o: LogSettings, who: string): void {
  try {
    configureLog(o);
  } catch (err) {
    log.error(`${who}: cannot open the log file: ${(err as Error).message}`);
  }
}

/** SIGUSR1 on a worker or role thread: `reopenLogFile`, a failure logged as `<who>: cannot reopen the log file: ...`. */
export function reopenLog(who: string): void {
  try {
    reopenLogFile();
  } catch (err) {
    log.error(`${who}: cannot reopen the log file: ${(err as Error).message}`);
  }
}

export function logFilePath(): string | undefined {
  return logFile;
}

function closeLogFile(): void {
  if (logFd === null) return;
  try {
    fs.closeSync(logFd);
  } catch {
    // already closed
  }
  logFd = null;
}

export function setLogLevels(debug: boolean, trace: boolean): void {
  debugEnabled = debug;
  traceEnabled = trace;
}

export function isDebug(): boolean {
  return debugEnabled;
}

export function isTrace(): boolean {
  return traceEnabled;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

// Wall-clock time with real microseconds: Date has milliseconds only, so the time comes from
// the monotonic clock (performance.now()) added to a wall-clock anchor, at first this thread's
// high-resolution start time (performance.timeOrigin). Re-anchored on Date.now() whenever the
// two drift more than 2 ms apart (the wall clock was set), and never earlier than this
// thread's last line, so a thread's lines stay in order.
let anchorWallMs = performance.timeOrigin;
let anchorMonoMs = 0;
let lastMs = 0;

function nowMicros(): number {
  const mono = performance.now();
  const wall = Date.now();
  let ms = anchorWallMs + (mono - anchorMonoMs);
  if (Math.abs(ms - wall) > 2) {
    anchorWallMs = wall;
    anchorMonoMs = mono;
    ms = wall;
  }
  if (ms < lastMs) ms = lastMs;
  lastMs = ms;
  return Math.floor(ms * 1000);
}

function timestamp(): string {
  const micros = nowMicros();
  const d = new Date(Math.floor(micros / 1000));
  return (
    `${d.getFullYear()}/${pad(d.getMonth() + 1, 2)}/${pad(d.getDate(), 2)} ` +
    `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(micros % 1_000_000, 6)}`
  );
}

function write(level: Level, msg: string): void {
  const line = logtime ? `[${process.pid}] ${timestamp()} [${level}] ${msg}\n` : `[${process.pid}] [${level}] ${msg}\n`;
  if (logFd !== null) {
    try {
      fs.writeSync(logFd, line);
      return;
    } catch {
      // The file went bad (disk full, removed mount): the line still goes somewhere.
    }
  }
  if (!isMainThread) {
    // A worker's process.stderr hops through the main thread's event loop, so a line could
    // come out after what the thread sent on a socket right after logging it (a test, or an
    // operator, reading both sees them out of order). Straight to fd 2 instead, whole lines.
    try {
      fs.writeSync(2, line);
      return;
    } catch {
      // EAGAIN on a full non-blocking pipe: the forwarded stream still gets it.
    }
  }
  process.stderr.write(line);
}

export const log = {
  info(msg: string): void {
    write('INF', msg);
  },
  warn(msg: string): void {
    write('WRN', msg);
  },
  error(msg: string): void {
    write('ERR', msg);
  },
  fatal(msg: string): void {
    write('FTL', msg);
  },
  debug(msg: string): void {
    if (debugEnabled) write('DBG', msg);
  },
  trace(msg: string): void {
    if (traceEnabled) write('TRC', msg);
  },
};
