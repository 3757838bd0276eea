// nats-server-style log lines: `[pid] 2026/01/02 15:04:05.000000 [INF] message`.
// Works on any thread: worker threads write to process.stderr, which Node forwards to the
// main thread's stderr; log lines are rare (never per message), so that hop is harmless.

export type Level = 'INF' | 'DBG' | 'TRC' | 'WRN' | 'ERR' | 'FTL';

let debugEnabled = false;
let traceEnabled = false;

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

function timestamp(): string {
  const d = new Date();
  const micros = d.getMilliseconds() * 1000;
  return `${d.getFullYear()}/${pad(d.getMonth() + 1, 2)}/${pad(d.getDate(), 2)} ` +
    `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(micros, 6)}`;
}

function write(level: Level, msg: string): void {
  process.stderr.write(`[${process.pid}] ${timestamp()} [${level}] ${msg}\n`);
}

export const log = {
  info(msg: string): void { write('INF', msg); },
  warn(msg: string): void { write('WRN', msg); },
  error(msg: string): void { write('ERR', msg); },
  fatal(msg: string): void { write('FTL', msg); },
  debug(msg: string): void { if (debugEnabled) write('DBG', msg); },
  trace(msg: string): void { if (traceEnabled) write('TRC', msg); },
};
