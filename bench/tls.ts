// `--tls`: the client connections of a run use TLS (the 2.9 upgrade: plaintext INFO, then
// the handshake). The CLI makes a throwaway CA and a server certificate for 127.0.0.1 with
// the openssl CLI and publishes their paths in the environment, which the load-generator
// processes inherit: servers start with --tls --tlscert --tlskey (skein and nats-server
// take the same flags), and connectRaw upgrades each socket after INFO.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type net from 'node:net';

const ENV_CA = 'BENCH_TLS_CA';
const ENV_CERT = 'BENCH_TLS_CERT';
const ENV_KEY = 'BENCH_TLS_KEY';

/** Makes the certificates (removed at exit) and turns TLS on for this process and its children. */
export function enableBenchTls(): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-tls-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const ossl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bench CA');
  ossl('req', ...ec, '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ossl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca-key.pem',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
  process.env[ENV_CA] = path.join(dir, 'ca.pem');
  process.env[ENV_CERT] = path.join(dir, 'server.pem');
  process.env[ENV_KEY] = path.join(dir, 'server-key.pem');
}

export function benchTlsOn(): boolean {
  return process.env[ENV_CA] !== undefined;
}

/** Server flags for a TLS run (the same for skein and nats-server); none otherwise. */
export function benchTlsServerArgs(): string[] {
  const cert = process.env[ENV_CERT];
  const key = process.env[ENV_KEY];
  return cert && key ? ['--tls', '--tlscert', cert, '--tlskey', key] : [];
}

let ca: Buffer | undefined;

/** Upgrades a connected socket that has read the INFO; resolves once the handshake is done. */
export function upgradeToTls(sock: net.Socket, timeoutMs: number): Promise<tls.TLSSocket> {
  ca ??= readFileSync(process.env[ENV_CA]!);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket: sock, ca, servername: 'localhost' });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`TLS handshake: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      resolve(s);
    });
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(new Error(`TLS handshake: ${e.message}`));
    };
    s.once('error', onError);
  });
}
