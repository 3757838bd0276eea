// Client and route credentials as nats-server 2.9.10 checks them (auth.go): bcrypt or
// plaintext passwords and tokens, nkey users signing the INFO nonce, and users named by a
// client certificate (`verify_and_map`).
//
// A bcrypt comparison costs 50-300 ms and an nkey signature check about 10 ms in JavaScript:
// neither may run on a thread that owns sockets. They run on a small hashing thread
// (workers/auth.ts) that each thread starts the first time it needs one; the connection's
// input waits for the answer (InputGate), the thread's other connections do not.

import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { ConnectFields } from '../protocol/connect.ts';
import type { AuthorizationOptions, NkeyUserEntry, Options, UserEntry, UserPermissions } from '../config/options.ts';
import { mapCertificateToUser } from './tls.ts';
import { log } from '../log.ts';

/**
 * node:crypto and nkeys, loaded on first use: every worker imports this file, and a server
 * without nonces or nkey users should not pay for them in each worker.
 */
function crypto(): typeof import('node:crypto') {
  return process.getBuiltinModule('node:crypto');
}

let nkeys: typeof import('@nats-io/nkeys') | null = null;
function fromPublic(key: string): ReturnType<typeof import('@nats-io/nkeys').fromPublic> {
  nkeys ??= createRequire(import.meta.url)('@nats-io/nkeys') as typeof import('@nats-io/nkeys');
  return nkeys.fromPublic(key);
}

/** auth.go validBcryptPrefix: what nats-server treats as a bcrypt hash rather than a password. */
const BCRYPT = /^\$2[abxy]\$\d{2}\$.*/;

export function isBcrypt(password: string): boolean {
  return password.startsWith('$') && BCRYPT.test(password);
}

/** nkeys.IsValidPublicUserKey: a well-formed public key (checksum included) of a user ('U'). */
export function isValidPublicUserKey(key: string): boolean {
  if (!key.startsWith('U')) return false;
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** server.go generateNonce: 11 random bytes, base64url without padding (15 characters). */
export function newNonce(): string {
  return crypto().randomBytes(11).toString('base64url');
}

/** Constant-time string equality (lengths are hidden by comparing digests). */
function sameSecret(a: string, b: string): boolean {
  const c = crypto();
  const ha = c.createHash('sha256').update(a).digest();
  const hb = c.createHash('sha256').update(b).digest();
  return c.timingSafeEqual(ha, hb) && a.length === b.length;
}

/** auth.go checkAuthforWarnings: any plaintext password in the client authorization. */
export function hasPlaintextPasswords(a: AuthorizationOptions | undefined, tlsMap: boolean): boolean {
  if (a === undefined) return false;
  if (a.password !== undefined && a.password !== '' && !isBcrypt(a.password)) return true;
  for (const u of a.users ?? []) {
    if (u.password === '' && tlsMap) continue; // users named by their certificate
    if (!isBcrypt(u.password)) return true;
  }
  return false;
}

export const PLAINTEXT_PASSWORDS_WARNING = 'Plaintext passwords detected, use nkeys or bcrypt';

// ---------------------------------------------------------------------------------------
// The hashing thread, seen from a thread that owns sockets

type CheckRequest =
  { id: number; kind: 'bcrypt'; hash: string; password: string } | { id: number; kind: 'nkey'; nkey: string; nonce: string; sig: string };

/**
 * Runs bcrypt comparisons and nkey signature checks on a thread of its own, started on first
 * use and unref'd (it never keeps a thread alive). One per thread that owns sockets.
 */
export class CredentialChecker {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, (ok: boolean) => void>();

  /** Start the thread now (it takes a moment), so the first CONNECT does not wait for it. */
  warm(): void {
    if (this.worker === null) this.spawn();
  }

  bcrypt(hash: string, password: string): Promise<boolean> {
    return this.ask({ id: 0, kind: 'bcrypt', hash, password });
  }

  nkey(nkey: string, nonce: string, sig: string): Promise<boolean> {
    return this.ask({ id: 0, kind: 'nkey', nkey, nonce, sig });
  }

  private ask(req: CheckRequest): Promise<boolean> {
    const w = this.worker ?? this.spawn();
    req.id = this.nextId++;
    return new Promise<boolean>((resolve) => {
      this.pending.set(req.id, resolve);
      w.postMessage(req);
    });
  }

  private spawn(): Worker {
    const w = new Worker(new URL('../../workers/auth.ts', import.meta.url));
    w.unref();
    w.on('message', (m: { id: number; ok: boolean }) => {
      const done = this.pending.get(m.id);
      this.pending.delete(m.id);
      done?.(m.ok);
    });
    const fail = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = null;
      log.error(`Credential check thread stopped (${why}); pending checks fail`);
      for (const done of this.pending.values()) done(false);
      this.pending.clear();
    };
    w.on('error', (err) => fail(err.message));
    w.on('exit', (code) => fail(`exit code ${code}`));
    this.worker = w;
    return w;
  }

  close(): void {
    const w = this.worker;
    this.worker = null;
    if (w !== null) void w.terminate();
    for (const done of this.pending.values()) done(false);
    this.pending.clear();
  }
}

/** `server` is a configured password or token, `given` the client's: bcrypt off-thread, else constant time. */
export function comparePasswords(checker: CredentialChecker, server: string, given: string): boolean | Promise<boolean> {
  if (isBcrypt(server)) return checker.bcrypt(server, given);
  return sameSecret(server, given);
}

// ---------------------------------------------------------------------------------------
// Client authentication (auth.go processClientOrLeafAuthentication, the parts skein has)

/** Who a client turned out to be: a name for the logs, and the permissions that apply. */
export interface AuthGrant {
  user: string;
  permissions?: UserPermissions;
}

export type AuthVerdict = AuthGrant | null;

export class ClientAuthenticator {
  /** Clients must authenticate (some user, nkey, token or users list is configured). */
  readonly required: boolean;
  /** nkey users exist: every INFO carries a nonce for them to sign. */
  readonly usesNonce: boolean;
  private readonly auth: AuthorizationOptions | undefined;
  private readonly users = new Map<string, UserEntry>();
  private readonly nkeys = new Map<string, NkeyUserEntry>();
  private readonly tlsMap: boolean;
  private readonly checker: CredentialChecker;

  constructor(opts: Options, checker: CredentialChecker) {
    const a = opts.authorization;
    this.auth = a;
    this.checker = checker;
    for (const u of a?.users ?? []) this.users.set(u.user, u);
    for (const n of a?.nkeys ?? []) this.nkeys.set(n.nkey, n);
    this.tlsMap = opts.tls?.map === true;
    this.required = a !== undefined && (a.token !== undefined || a.user !== undefined || this.users.size > 0 || this.nkeys.size > 0);
    this.usesNonce = this.nkeys.size > 0;
    const hashed = (p: string | undefined): boolean => p !== undefined && isBcrypt(p);
    if (this.nkeys.size > 0 || hashed(a?.password) || hashed(a?.token) || [...this.users.values()].some((u) => hashed(u.password)))
      checker.warm();
  }

  /**
   * The CONNECT's credentials against the configuration. `nonce` is the one this
   * connection's INFO carried; `peerCert` the DER of its verified client certificate. A
   * Promise when the answer needs the hashing thread.
   */
  authenticate(c: ConnectFields, nonce: string, peerCert: Buffer | null, logPrefix: string): AuthVerdict | Promise<AuthVerdict> {
    const a = this.auth;
    if (!this.required || a === undefined) return { user: '' };
    if (this.nkeys.size > 0 && c.nkey !== '') {
      const entry = this.nkeys.get(c.nkey);
      if (entry === undefined) return null;
      if (c.sig === '') {
        log.debug(`${logPrefix} - Signature missing`);
        return null;
      }
      const grant: AuthGrant = { user: c.nkey, permissions: entry.permissions };
      return this.checker.nkey(c.nkey, nonce, c.sig).then((ok) => (ok ? grant : null));
    }
    let user: UserEntry | undefined;
    if (this.users.size > 0) {
      if (this.tlsMap) {
        if (peerCert === null) {
          log.debug(`${logPrefix} - User required in cert, no peer certificates found`);
          return null;
        }
        const found = mapCertificateToUser(peerCert, [...this.users.keys()]);
        if (found === null) return null;
        log.debug(`${logPrefix} - Using ${found.via} found in cert for auth [${JSON.stringify(found.user)}]`);
        if (c.user !== '') log.warn(`User ${JSON.stringify(c.user)} found in connect proto, but user required from cert`);
        user = this.users.get(found.user);
      } else if (c.user !== '') {
        user = this.users.get(c.user);
        if (user === undefined) return null;
      }
    }
    if (user !== undefined) {
      const grant: AuthGrant = { user: user.user, permissions: user.permissions };
      return settle(comparePasswords(this.checker, user.password, c.pass), grant);
    }
    if (a.token !== undefined) return settle(comparePasswords(this.checker, a.token, c.auth_token), { user: '' });
    if (a.user !== undefined) {
      if (c.user !== a.user) return null;
      return settle(comparePasswords(this.checker, a.password ?? '', c.pass), { user: c.user });
    }
    return null;
  }
}

function settle(ok: boolean | Promise<boolean>, grant: AuthGrant): AuthVerdict | Promise<AuthVerdict> {
  if (typeof ok === 'boolean') return ok ? grant : null;
  return ok.then((yes) => (yes ? grant : null));
}

// ---------------------------------------------------------------------------------------
// Holding a connection's input while its credentials are checked elsewhere

/**
 * Before the connection is authenticated, its input goes to the parser one line at a time,
 * so that when a line (CONNECT) starts a check on the hashing thread, nothing after it is
 * parsed until the answer arrives: those bytes are held, and the socket is paused.
 * Only the bytes before authentication take this path; afterwards input goes straight on.
 */
export class InputGate {
  /** A check is running: input is held. */
  waiting = false;
  private held: Buffer[] = [];

  /**
   * `parse` gets the input; `lineByLine()` says whether the connection is still before its
   * CONNECT (split at line ends) and `waiting` is set by the CONNECT handler when it starts
   * a check.
   */
  feed(chunk: Buffer, parse: (b: Buffer) => void, lineByLine: () => boolean): void {
    if (this.waiting) {
      this.held.push(Buffer.from(chunk)); // (the caller may reuse its read buffer)
      return;
    }
    let i = 0;
    while (i < chunk.length) {
      if (!lineByLine()) {
        parse(i === 0 ? chunk : chunk.subarray(i));
        return;
      }
      const nl = chunk.indexOf(10, i);
      const end = nl < 0 ? chunk.length : nl + 1;
      parse(i === 0 && end === chunk.length ? chunk : chunk.subarray(i, end));
      i = end;
      if (this.waiting) {
        if (i < chunk.length) this.held.push(Buffer.from(chunk.subarray(i)));
        return;
      }
    }
  }

  /** The check answered: hand back what was held (feed it again, in order). */
  release(): Buffer[] {
    this.waiting = false;
    const held = this.held;
    this.held = [];
    return held;
  }
}
