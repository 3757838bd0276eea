// `skein --signal CMD[=PID|PIDFILE]` (-sl): send a running server one of nats-server's
// signal commands (signal.go ProcessSignal): stop = SIGKILL, quit = SIGINT, term = SIGTERM,
// reopen = SIGUSR1, reload = SIGHUP, ldm = SIGUSR2. The Helm chart's preStop hook runs
// `nats-server --signal ldm=/var/run/nats/nats.pid`; `skein --signal ldm=...` is the same.
//
// Without a pid, the one running skein server is found by its process name (main.ts names
// the server process `skein`), as nats-server finds `nats-server` with pgrep.

import fs from 'node:fs';

/** The commands of `--signal CMD[=PID|PIDFILE]`, as nats-server's (signal.go ProcessSignal). */
export const SIGNAL_COMMANDS: Record<string, NodeJS.Signals> = {
  stop: 'SIGKILL',
  quit: 'SIGINT',
  term: 'SIGTERM',
  reopen: 'SIGUSR1',
  reload: 'SIGHUP',
  ldm: 'SIGUSR2',
};

/** Sends the command; returns nats-server's error text, or null when the signal went out. */
export function sendSignal(command: string, pidText?: string): string | null {
  const signal = SIGNAL_COMMANDS[command];
  if (signal === undefined) return `unknown signal ${JSON.stringify(command)}`;
  let pid: number;
  if (pidText === undefined) {
    const found = runningServers();
    if (typeof found === 'string') return found;
    if (found.length === 0) return 'no skein processes running';
    if (found.length > 1) return `multiple skein processes running:\n${found.join('\n')}`;
    pid = found[0];
  } else {
    // opts.go maybeReadPidFile: a readable file holds the pid; otherwise the text is the pid.
    let text = pidText;
    try {
      text = fs.readFileSync(pidText, 'utf8').trim();
    } catch {
      // not a file: a pid
    }
    if (!/^\d+$/.test(text)) return `invalid pid: ${text}`;
    pid = Number(text);
  }
  try {
    process.kill(pid, signal);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ESRCH' ? 'no such process' : code === 'EPERM' ? 'operation not permitted' : (err as Error).message;
  }
  return null;
}

/**
 * Pids of processes named `skein` (Linux /proc), other than this one and its ancestors (a
 * launcher running this command). A process whose child is also a candidate is a launcher
 * that forwards signals: the child, the server itself, is the one to signal.
 */
export function runningServers(): number[] | string {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return 'unable to resolve pid, try providing one';
  }
  const parentOf = new Map<number, number>();
  const candidates: number[] = [];
  for (const e of entries) {
    const pid = Number(e);
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    if (open < 0 || close < 0) continue;
    const comm = stat.slice(open + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    parentOf.set(pid, ppid);
    if (comm === 'skein' || comm.startsWith('skein ')) candidates.push(pid);
  }
  const mine = new Set<number>();
  for (let p: number | undefined = process.pid; p !== undefined && p > 0 && !mine.has(p); p = parentOf.get(p)) mine.add(p);
  const others = candidates.filter((p) => !mine.has(p));
  const launchers = new Set(others.map((p) => parentOf.get(p)).filter((p) => p !== undefined && others.includes(p)));
  return others.filter((p) => !launchers.has(p)).sort((a, b) => a - b);
}
