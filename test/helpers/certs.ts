// Certificates for TLS tests, made once per test process with the openssl CLI into a temp
// directory (removed at exit): a CA, a server certificate for localhost / 127.0.0.1 (also
// used as the route certificate, so it carries no extended key usage), client certificates
// with a full subject or an e-mail SAN, and a client certificate from an unrelated CA.
// Plus a raw TLS client that speaks the 2.9 upgrade (plaintext INFO, then the handshake).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

export interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** CN=alice,OU=nats.io,O=Synadia,ST=CA,C=US */
  aliceCert: string;
  aliceKey: string;
  /** CN=bob with e-mail SAN bob@example.com */
  bobCert: string;
  bobKey: string;
  /** CN=carol: signed by the CA, mapped to no user */
  carolCert: string;
  carolKey: string;
  /** Signed by another CA. */
  rogueCert: string;
  rogueKey: string;
}

export const ALICE_SUBJECT = 'CN=alice,OU=nats.io,O=Synadia,ST=CA,C=US';

let made: Certs | undefined;

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function leaf(dir: string, name: string, subject: string, ext: string, ca = 'ca'): void {
  writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(
    dir,
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}-key.pem`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  );
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}-key.pem`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  );
}

/** The test run's certificates (made on first use). */
export function certs(): Certs {
  if (made !== undefined) return made;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skein-certs-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const ca of ['ca', 'other-ca']) {
    openssl(
      dir,
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${ca}-key.pem`,
      '-out',
      `${ca}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=skein test ${ca}`,
    );
  }
  leaf(dir, 'server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  leaf(dir, 'alice', '/C=US/ST=CA/O=Synadia/OU=nats.io/CN=alice', 'basicConstraints=CA:FALSE\n');
  leaf(dir, 'bob', '/CN=bob', 'subjectAltName=email:bob@example.com\n');
  leaf(dir, 'carol', '/CN=carol', 'basicConstraints=CA:FALSE\n');
  leaf(dir, 'rogue', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\n', 'other-ca');
  const p = (f: string): string => path.join(dir, f);
  made = {
    dir,
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server-key.pem'),
    aliceCert: p('alice.pem'),
    aliceKey: p('alice-key.pem'),
    bobCert: p('bob.pem'),
    bobKey: p('bob-key.pem'),
    carolCert: p('carol.pem'),
    carolKey: p('carol-key.pem'),
    rogueCert: p('rogue.pem'),
    rogueKey: p('rogue-key.pem'),
  };
  return made;
}

/** A nats client's `tls` option for a client certificate (or none). */
export function clientTls(c: Certs, who?: 'alice' | 'bob' | 'carol' | 'rogue'): Record<string, string> {
  if (who === undefined) return { caFile: c.ca };
  return { caFile: c.ca, certFile: c[`${who}Cert`], keyFile: c[`${who}Key`] };
}

export interface RawTls {
  info: Record<string, unknown>;
  socket: tls.TLSSocket;
  send(s: string): void;
  /** Waits until what arrived matches; returns everything received so far. */
  expect(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the server closed the connection. */
  closed(timeoutMs?: number): Promise<void>;
  close(): void;
}

/**
 * The 2.9 upgrade by hand: read the plaintext INFO, then a TLS handshake (with the client
 * certificate given). Rejects when the handshake fails.
 */
export function rawTls(port: number, c: Certs, who?: 'alice' | 'bob' | 'carol' | 'rogue', timeoutMs = 5000): Promise<RawTls> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no INFO / handshake in time'));
    }, timeoutMs);
    let head = '';
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const onInfo = (d: Buffer): void => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n');
      if (end < 0) return;
      sock.off('data', onInfo);
      sock.pause();
      const info = JSON.parse(head.slice(5, end).trim()) as Record<string, unknown>;
      const s = tls.connect({
        socket: sock,
        ca: readFileSync(c.ca),
        servername: 'localhost',
        ...(who !== undefined ? { cert: readFileSync(c[`${who}Cert`]), key: readFileSync(c[`${who}Key`]) } : {}),
      });
      let text = '';
      let isClosed = false;
      const waiters = new Set<() => void>();
      const wake = (): void => {
        for (const w of [...waiters]) w();
      };
      s.on('data', (b: Buffer) => {
        text += b.toString('latin1');
        wake();
      });
      s.on('close', () => {
        isClosed = true;
        wake();
      });
      s.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
        isClosed = true;
        wake();
      });
      s.once('secureConnect', () => {
        clearTimeout(timer);
        const wait = (ok: () => boolean, ms: number, what: string): Promise<void> =>
          new Promise((res, rej) => {
            const t = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`timed out waiting for ${what}; got ${JSON.stringify(text)}`));
            }, ms);
            const check = (): void => {
              if (ok()) {
                clearTimeout(t);
                waiters.delete(check);
                res();
              }
            };
            waiters.add(check);
            check();
          });
        resolve({
          info,
          socket: s,
          send: (x) => {
            if (!isClosed) s.write(x);
          },
          expect: async (re, ms = 5000) => {
            await wait(() => re.test(text) || isClosed, ms, String(re));
            if (!re.test(text)) throw new Error(`closed before ${re}; got ${JSON.stringify(text)}`);
            return text;
          },
          closed: (ms = 5000) => wait(() => isClosed, ms, 'close'),
          close: () => s.destroy(),
        });
      });
    };
    sock.on('data', onInfo);
  });
}
