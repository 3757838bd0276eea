// Leased ports, for the few tests that must know a server's port before it starts: a cluster
// whose members list each other (and themselves) in their route lists, and a server
// restarted on the ports it had. Everything else binds port -1 and reads the port back from
// the server's log (server.ts).
//
// Leases come from a range below the kernel's ephemeral range, so neither `listen(0)` nor an
// outgoing connection's local port can land on one, and each lease is a lock file created
// with O_EXCL in one directory shared by every test process on the machine (ava runs each
// test file in its own process, and other suites may run beside ours). A lease is held for
// the life of the test that took it, across server restarts; lock files of dead processes
// are taken over.

import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const lockDir = path.join(os.tmpdir(), 'skein-test-ports');
const held = new Set<number>();

process.on('exit', () => {
  for (const port of held) {
    try {
      rmSync(lockFile(port), { force: true });
    } catch {
      /* best effort */
    }
  }
});

function lockFile(port: number): string {
  return path.join(lockDir, String(port));
}

/** [first, last] of the lease range: below the ephemeral range, above well-known services. */
function leaseRange(): [number, number] {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    /* not Linux: keep the IANA default */
  }
  const last = Math.min(ephemeralLow - 1, 32767);
  return [Math.max(10000, last - 12000), last];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryLock(port: number): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile(port), 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(lockFile(port), 'latin1'));
    } catch {
      /* removed meanwhile */
    }
    // A lock file being written right now reads empty: treat it as held.
    if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) return false;
    try {
      rmSync(lockFile(port), { force: true });
    } catch {
      return false;
    }
  }
  return false;
}

/** Whether nothing (outside the lease protocol) listens on 127.0.0.1:port right now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export interface PortLease {
  port: number;
  release(): void;
}

/** Leases one port; release it (or let the process exit) when the servers using it are gone. */
export async function leasePort(): Promise<PortLease> {
  mkdirSync(lockDir, { recursive: true });
  const [first, last] = leaseRange();
  const size = last - first + 1;
  const start = Math.floor(Math.random() * size);
  for (let k = 0; k < size; k++) {
    const port = first + ((start + k) % size);
    if (held.has(port) || !tryLock(port)) continue;
    if (!(await bindable(port))) {
      rmSync(lockFile(port), { force: true });
      continue;
    }
    held.add(port);
    return {
      port,
      release: () => {
        if (!held.delete(port)) return;
        try {
          rmSync(lockFile(port), { force: true });
        } catch {
          /* best effort */
        }
      },
    };
  }
  throw new Error(`no port to lease in ${first}-${last} (lock files in ${lockDir})`);
}
