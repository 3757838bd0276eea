// Credential check thread (src/conn/auth.ts CredentialChecker): bcrypt comparisons and nkey
// signature checks, which take far too long (50-300 ms, ~10 ms) for a thread that owns
// sockets. Plain node:worker_threads Worker started by that thread on first use.

import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import { fromPublic } from '@nats-io/nkeys';

type CheckRequest =
  { id: number; kind: 'bcrypt'; hash: string; password: string } | { id: number; kind: 'nkey'; nkey: string; nonce: string; sig: string };

const encoder = new TextEncoder();

/** auth.go: the signature is base64url (raw), or standard base64 as a fallback. */
function decodeSig(sig: string): Uint8Array | null {
  if (/^[A-Za-z0-9_-]+={0,2}$/.test(sig)) return Buffer.from(sig, 'base64url');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) return Buffer.from(sig, 'base64');
  return null;
}

function check(req: CheckRequest): boolean {
  try {
    if (req.kind === 'bcrypt') return bcrypt.compareSync(req.password, req.hash);
    const sig = decodeSig(req.sig);
    if (sig === null || sig.length !== 64) return false;
    return fromPublic(req.nkey).verify(encoder.encode(req.nonce), sig);
  } catch {
    return false;
  }
}

parentPort!.on('message', (req: CheckRequest) => {
  parentPort!.postMessage({ id: req.id, ok: check(req) });
});
