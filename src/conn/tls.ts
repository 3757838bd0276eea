// The `tls` block, shared by every role that speaks TLS (clients now, routes now, gateways
// later): nats-server's names mapped to OpenSSL's, the files read once, a secure context per
// thread, the accepting and the dialling handshakes, and the certificate names that
// `verify_and_map` maps to users.
//
// nats-server (Go crypto/tls) semantics kept here (opts.go parseTLS, GenTLSConfig,
// getTLSConfig): TLS 1.2 at least; `cipher_suites` choose the TLS 1.2 suites only (Go does
// not let TLS 1.3 suites be configured, so all three stay on); the server's cipher order
// wins; `verify` requires a client certificate that chains to `ca_file`; routes (and later
// gateways) always require and verify the peer's certificate, both ways, with `ca_file` as
// the roots for both directions; `insecure` only skips verifying the server we dial.
//
// The PEM files are read on the main thread when the options are loaded (loadTlsFiles) and
// travel inside Options; each thread builds its secure context once (secureContextFor).

import fs from 'node:fs';
import type { SecureContext, TLSSocket } from 'node:tls';
import net from 'node:net';
import type { TlsOptions } from '../config/options.ts';

/**
 * node:tls and node:crypto, loaded on first use: every worker imports this file, and a server
 * without TLS should not pay for them in each worker (about 2.5 MB a thread).
 */
function tlsLib(): typeof import('node:tls') {
  return process.getBuiltinModule('node:tls');
}

function x509(pem: string): void {
  new (process.getBuiltinModule('node:crypto').X509Certificate)(pem);
}

// ---------------------------------------------------------------------------------------
// Names: Go's (what nats-server configs contain) to OpenSSL's

/**
 * ciphersuites.go cipherMap, to OpenSSL names. `null`: a suite OpenSSL 3 (Node's TLS library)
 * no longer implements; a config naming it is refused rather than silently weakened or ignored.
 */
const CIPHERS: Record<string, string | null> = {
  TLS_RSA_WITH_RC4_128_SHA: null,
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: 'DES-CBC3-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_RC4_128_SHA: null,
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_RC4_128_SHA: null,
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: 'ECDHE-RSA-DES-CBC3-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  // TLS 1.3 suites: accepted as in nats-server, where (Go) they cannot be turned off either.
  TLS_AES_128_GCM_SHA256: 'TLS_AES_128_GCM_SHA256',
  TLS_AES_256_GCM_SHA384: 'TLS_AES_256_GCM_SHA384',
  TLS_CHACHA20_POLY1305_SHA256: 'TLS_CHACHA20_POLY1305_SHA256',
};
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** ciphersuites.go defaultCipherSuites. */
export const DEFAULT_CIPHER_SUITES = [
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305',
  'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305',
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
];

/** ciphersuites.go curvePreferenceMap, to OpenSSL group names. */
const CURVES: Record<string, string> = {
  X25519: 'X25519',
  CurveP256: 'P-256',
  CurveP384: 'P-384',
  CurveP521: 'P-521',
};
export const DEFAULT_CURVE_PREFERENCES = ['X25519', 'CurveP256', 'CurveP384', 'CurveP521'];

/** Why a Go cipher suite name cannot be used (nats-server's wording first), or undefined. */
export function cipherProblem(name: string): string | undefined {
  if (!(name in CIPHERS)) return `unrecognized cipher ${name}`;
  if (CIPHERS[name] === null) return `cipher ${name} is not available in skein's TLS library (OpenSSL 3 removed RC4)`;
  return undefined;
}

/** Why a Go curve name cannot be used, or undefined. */
export function curveProblem(name: string): string | undefined {
  return name in CURVES ? undefined : `unrecognized curve preference ${name}`;
}

/** The OpenSSL cipher string: the chosen TLS 1.2 suites in order, then every TLS 1.3 suite. */
export function openSslCiphers(t: TlsOptions): string {
  const names = (t.cipherSuites ?? DEFAULT_CIPHER_SUITES).map((n) => CIPHERS[n]).filter((n): n is string => !!n);
  const tls12 = names.filter((n) => !n.startsWith('TLS_'));
  return [...tls12, ...TLS13_SUITES].join(':');
}

export function openSslCurves(t: TlsOptions): string {
  return (t.curvePreferences ?? DEFAULT_CURVE_PREFERENCES).map((n) => CURVES[n]).join(':');
}

// ---------------------------------------------------------------------------------------
// Loading (main thread, once)

/**
 * opts.go GenTLSConfig: cert and key go together; both files and the CA are read and checked
 * now, so a bad path is a config error at start (and with -t), not a failed handshake later.
 * Fills t.cert / t.key / t.ca. Throws Error with nats-server's wording.
 */
export async function loadTlsFiles(t: TlsOptions): Promise<void> {
  if (t.certFile && !t.keyFile) throw new Error("missing 'key_file' in TLS configuration");
  if (!t.certFile && t.keyFile) throw new Error("missing 'cert_file' in TLS configuration");
  if (t.certFile && t.keyFile) {
    let cert: string;
    let key: string;
    try {
      cert = await fs.promises.readFile(t.certFile, 'utf8');
      key = await fs.promises.readFile(t.keyFile, 'utf8');
    } catch (err) {
      throw new Error(`error parsing X509 certificate/key pair: ${fileError(err)}`);
    }
    try {
      tlsLib().createSecureContext({ cert, key });
      x509(cert);
    } catch (err) {
      throw new Error(`error parsing X509 certificate/key pair: ${(err as Error).message}`);
    }
    t.cert = cert;
    t.key = key;
  }
  if (t.caFile) {
    let ca: string;
    try {
      ca = await fs.promises.readFile(t.caFile, 'utf8');
    } catch (err) {
      throw new Error(fileError(err));
    }
    try {
      x509(ca);
      tlsLib().createSecureContext({ ca });
    } catch {
      throw new Error('failed to parse root ca certificate');
    }
    t.ca = ca;
  }
  // Build one context now so that a cipher or curve OpenSSL refuses fails the config, too.
  try {
    buildSecureContext(t);
  } catch (err) {
    throw new Error(`TLS configuration refused by OpenSSL: ${(err as Error).message}`);
  }
}

function fileError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
  return `open ${e.path ?? ''}: ${why}`;
}

// ---------------------------------------------------------------------------------------
// Secure contexts (one per thread per block)

function buildSecureContext(t: TlsOptions): SecureContext {
  return tlsLib().createSecureContext({
    cert: t.cert,
    key: t.key,
    ca: t.ca,
    minVersion: 'TLSv1.2',
    ciphers: openSslCiphers(t),
    ecdhCurve: openSslCurves(t),
    honorCipherOrder: true, // Go's PreferServerCipherSuites
  });
}

const contexts = new WeakMap<TlsOptions, SecureContext>();

/** The secure context for a `tls` block, built once per thread (the block is this thread's copy of the options). */
export function secureContextFor(t: TlsOptions): SecureContext {
  let ctx = contexts.get(t);
  if (ctx === undefined) {
    ctx = buildSecureContext(t);
    contexts.set(t, ctx);
  }
  return ctx;
}

// ---------------------------------------------------------------------------------------
// Handshakes. Both return the TLSSocket at once; the caller waits for `secure` (accepting) or
// `secureConnect` (dialling), runs its own deadline, and listens for `error`.

/**
 * The accepting side, on a socket this thread owns (nats-server: tls.Server on the conn).
 * `requireCert`: the peer must present a certificate; whether it verified is checked with
 * peerVerifyError() once `secure` fires (Node completes the handshake and reports it there).
 */
export function acceptTls(socket: net.Socket, t: TlsOptions, requireCert: boolean): TLSSocket {
  return new (tlsLib().TLSSocket)(socket, {
    isServer: true,
    secureContext: secureContextFor(t),
    requestCert: requireCert,
    rejectUnauthorized: requireCert,
  });
}

/**
 * The dialling side (routes, later gateways): present our certificate, verify the peer's
 * chain against ca_file and its name against `host` (a hostname or an IP), unless `insecure`.
 */
export function dialTls(socket: net.Socket, t: TlsOptions, host: string): TLSSocket {
  const isIp = net.isIP(host) !== 0;
  return tlsLib().connect({
    socket,
    secureContext: secureContextFor(t),
    servername: isIp ? undefined : host,
    rejectUnauthorized: !t.insecure,
    checkServerIdentity: (_name, cert) => tlsLib().checkServerIdentity(host, cert),
  });
}

/**
 * After `secure` on an accepting socket that required a certificate: why the certificate is
 * refused (Go's wording for the common cases), or null when it verified. A TLSSocket that no
 * tls.Server created never fills `authorized`, so this asks the TLS handle for OpenSSL's
 * verification result (`ssl.verifyError()`, the call tls.Server makes for it).
 */
export function peerVerifyError(s: TLSSocket): string | null {
  const handle = (s as unknown as { ssl?: { verifyError(): (Error & { code?: string }) | null } }).ssl;
  const err = handle?.verifyError() ?? null;
  if (err === null)
    return s.getPeerCertificate() && Object.keys(s.getPeerCertificate()).length > 0 ? null : "tls: client didn't provide a certificate";
  switch (err.code) {
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'tls: failed to verify client certificate: x509: certificate signed by unknown authority';
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return 'tls: failed to verify client certificate: x509: certificate has expired or is not yet valid';
    default:
      return `tls: failed to verify client certificate: ${err.message.replace(/;.*$/, '')}`;
  }
}

/** crypto/tls alert.go: the alert texts Go puts after `remote error: tls: `. */
const GO_ALERTS: Record<number, string> = {
  0: 'close notify',
  10: 'unexpected message',
  20: 'bad record MAC',
  21: 'decryption failed',
  22: 'record overflow',
  30: 'decompression failure',
  40: 'handshake failure',
  42: 'bad certificate',
  43: 'unsupported certificate',
  44: 'revoked certificate',
  45: 'expired certificate',
  46: 'unknown certificate',
  47: 'illegal parameter',
  48: 'unknown certificate authority',
  49: 'access denied',
  50: 'error decoding message',
  51: 'error decrypting message',
  70: 'protocol version not supported',
  71: 'insufficient security level',
  80: 'internal error',
  86: 'inappropriate fallback',
  90: 'user canceled',
  100: 'no renegotiation',
  109: 'missing extension',
  110: 'unsupported extension',
  112: 'unrecognized name',
  113: 'bad certificate status response',
  115: 'unknown PSK identity',
  116: 'certificate required',
  120: 'no application protocol',
};

/**
 * A handshake error as nats-server words the common ones (Go's crypto/tls texts), so that an
 * operator's grep for them keeps working; otherwise OpenSSL's reason.
 */
export function handshakeErrorText(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  // The peer refused us with an alert: Go's crypto/tls says `remote error: tls: <alert>`.
  const alert = /SSL alert number (\d+)/.exec(err.message);
  if (alert !== null) {
    const n = Number(alert[1]);
    return `remote error: tls: ${GO_ALERTS[n] ?? `alert(${n})`}`;
  }
  switch (code) {
    // Dialling: the peer's certificate did not verify (Go's x509 texts).
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'x509: certificate signed by unknown authority';
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return 'x509: certificate has expired or is not yet valid';
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_HTTP_REQUEST':
    case 'ERR_SSL_HTTPS_PROXY_REQUEST':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return 'tls: first record does not look like a TLS handshake';
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
      return "tls: client didn't provide a certificate";
    default:
      return err.message.replace(/^error:[0-9A-F]+:SSL routines:[^:]*:/i, '');
  }
}

/** "1.3", "1.2" as nats-server prints TLS versions. */
export function tlsVersionText(s: TLSSocket): string {
  const v = s.getProtocol() ?? '';
  const m = /^TLSv(\d(?:\.\d)?)$/.exec(v);
  return m ? (m[1].includes('.') ? m[1] : `${m[1]}.0`) : v;
}

/** The negotiated suite under its Go name when there is one (nats-server logs those). */
export function tlsCipherText(s: TLSSocket): string {
  const c = s.getCipher();
  if (!c) return '';
  for (const [go, ossl] of Object.entries(CIPHERS)) if (ossl === c.name) return go;
  return c.standardName ?? c.name;
}

// ---------------------------------------------------------------------------------------
// verify_and_map: which user a client certificate names (auth.go checkClientTLSCertSubject)

interface Atv {
  oid: string;
  value: string | null; // null: not a string type
}

interface CertNames {
  emails: string[];
  dnsNames: string[];
  uris: string[];
  /** Subject RDNs in certificate order; each RDN is a set of attributes. */
  rdns: Atv[][];
}

/**
 * The user a certificate maps to, trying what nats-server tries, in its order: e-mail SANs,
 * DNS SANs, URI SANs (each looked up literally), then the subject as a distinguished name
 * (equal, then the same RDNs in any order), then the subject in Go's RFC 2253 form with the
 * domain components appended, then without them. `users` are the configured user names.
 * Returns the user name and what matched, or null.
 */
export function mapCertificateToUser(raw: Buffer, users: string[]): { user: string; via: string } | null {
  let names: CertNames;
  try {
    names = certNames(raw);
  } catch {
    return null;
  }
  const known = new Set(users);
  for (const e of names.emails) if (known.has(e)) return { user: e, via: 'email' };
  for (const d of names.dnsNames) if (known.has(d)) return { user: d, via: 'SAN' };
  for (const u of names.uris) if (known.has(u)) return { user: u, via: 'URI' };

  const certDn = ldapDnOf(names.rdns);
  if (certDn !== null) {
    const parsed: [string, Dn][] = [];
    for (const u of users) {
      const dn = parseDn(u);
      if (dn === null) continue;
      if (dnEqual(dn, certDn)) return { user: u, via: 'DistinguishedNameMatch' };
      parsed.push([u, dn]);
    }
    for (const [u, dn] of parsed) if (rdnsMatch(dn, certDn)) return { user: u, via: 'DistinguishedNameMatch' };
  }
  const rdn = goRdnString(names.rdns);
  const dcs = names.rdns
    .flat()
    .filter((a) => a.oid === OID_DC && a.value !== null)
    .map((a) => `DC=${a.value}`);
  if (dcs.length > 0) {
    const withDcs = `${rdn},${dcs.join(',')}`;
    if (known.has(withDcs)) return { user: withDcs, via: 'RDNSequence' };
  }
  if (known.has(rdn)) return { user: rdn, via: 'certificate subject' };
  return null;
}

/** The certificate subject as nats-server prints it in its logs (Go's RFC 2253 form). */
export function certificateSubject(raw: Buffer): string {
  try {
    return goRdnString(certNames(raw).rdns);
  } catch {
    return '';
  }
}

const OID_DC = '0.9.2342.19200300.100.1.25';
const OID_SAN = '2.5.29.17';

/** crypto/x509/pkix attributeTypeNames, in Name.ToRDNSequence's order. */
const PKIX_ORDER: [string, string][] = [
  ['2.5.4.6', 'C'],
  ['2.5.4.8', 'ST'],
  ['2.5.4.7', 'L'],
  ['2.5.4.9', 'STREET'],
  ['2.5.4.17', 'POSTALCODE'],
  ['2.5.4.10', 'O'],
  ['2.5.4.11', 'OU'],
  ['2.5.4.3', 'CN'],
  ['2.5.4.5', 'SERIALNUMBER'],
];
/** internal/ldap attributeTypeNames. */
const LDAP_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.17': 'POSTALCODE',
  [OID_DC]: 'DC',
};

/**
 * pkix.Name.ToRDNSequence().String(): the standard attributes regrouped in Go's fixed order
 * (several values of one type form one multi-valued RDN; one CN and one serial number, the
 * last), then printed last RDN first with RFC 2253 escaping. Other attributes are not in it.
 */
function goRdnString(rdns: Atv[][]): string {
  const byOid = new Map<string, string[]>();
  for (const rdn of rdns) {
    for (const a of rdn) {
      if (a.value === null) continue;
      const list = byOid.get(a.oid) ?? [];
      if (a.oid === '2.5.4.3' || a.oid === '2.5.4.5') list.length = 0;
      list.push(a.value);
      byOid.set(a.oid, list);
    }
  }
  const seq: string[] = [];
  for (const [oid, name] of PKIX_ORDER) {
    const values = byOid.get(oid);
    if (
      values === undefined ||
      values.length === 0 ||
      (values.length === 1 && values[0] === '' && (name === 'CN' || name === 'SERIALNUMBER'))
    )
      continue;
    seq.push(values.map((v) => `${name}=${escapeRfc2253(v)}`).join('+'));
  }
  return seq.reverse().join(',');
}

function escapeRfc2253(v: string): string {
  const chars = [...v];
  let out = '';
  chars.forEach((c, k) => {
    let escape = false;
    switch (c) {
      case ',':
      case '+':
      case '"':
      case '\\':
      case '<':
      case '>':
      case ';':
        escape = true;
        break;
      case ' ':
        escape = k === 0 || k === chars.length - 1;
        break;
      case '#':
        escape = k === 0;
        break;
    }
    out += escape ? `\\${c}` : c;
  });
  return out;
}

type Dn = { type: string; value: string }[][];

/** ldap.FromRawCertSubject: RDNs (and their attributes) reversed; an unknown type means no DN. */
function ldapDnOf(rdns: Atv[][]): Dn | null {
  const dn: Dn = [];
  for (let i = rdns.length - 1; i >= 0; i--) {
    const rdn = rdns[i];
    if (rdn.length === 0) continue;
    const attrs: { type: string; value: string }[] = [];
    for (let j = rdn.length - 1; j >= 0; j--) {
      const type = LDAP_NAMES[rdn[j].oid];
      const value = rdn[j].value;
      if (type === undefined || value === null) return null;
      attrs.push({ type, value });
    }
    dn.push(attrs);
  }
  return dn;
}

/** ldap.ParseDN (RFC 4514): `,` separates RDNs, `+` attributes; `\` escapes a special or two hex digits. */
function parseDn(text: string): Dn | null {
  const dn: Dn = [];
  let rdn: { type: string; value: string }[] = [];
  let type = '';
  let buf: number[] = [];
  let trailingSpaces = 0;
  const bytes = Buffer.from(text, 'utf8');
  const take = (): string => {
    const s = Buffer.from(buf.slice(0, buf.length - trailingSpaces)).toString('utf8');
    buf = [];
    trailingSpaces = 0;
    return s;
  };
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 0x5c) {
      // backslash
      trailingSpaces = 0;
      const n = bytes[i + 1];
      if (n === undefined) return null;
      if (' "#+,;<=>\\'.includes(String.fromCharCode(n))) {
        buf.push(n);
        i++;
        continue;
      }
      const hex = bytes.toString('latin1', i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
      buf.push(parseInt(hex, 16));
      i += 2;
    } else if (c === 0x3d) {
      // '='
      type = take();
      if (bytes[i + 1] === 0x23) return null; // BER-encoded value: unsupported, as in nats-server
    } else if (c === 0x2c || c === 0x2b) {
      // ',' '+'
      if (type === '') return null;
      rdn.push({ type, value: take() });
      type = '';
      if (c === 0x2c) {
        dn.push(rdn);
        rdn = [];
      }
    } else if (c === 0x20 && buf.length === 0) {
      continue;
    } else {
      trailingSpaces = c === 0x20 ? trailingSpaces + 1 : 0;
      buf.push(c);
    }
  }
  if (buf.length > 0) {
    if (type === '') return null;
    rdn.push({ type, value: take() });
    dn.push(rdn);
  }
  return dn;
}

function rdnEqual(a: Dn[number], b: Dn[number]): boolean {
  const has = (x: Dn[number], y: Dn[number]): boolean =>
    y.every((ya) => x.some((xa) => xa.type.toLowerCase() === ya.type.toLowerCase() && xa.value === ya.value));
  return a.length === b.length && has(a, b) && has(b, a);
}

function dnEqual(a: Dn, b: Dn): boolean {
  return a.length === b.length && a.every((r, i) => rdnEqual(r, b[i]));
}

function rdnsMatch(a: Dn, b: Dn): boolean {
  return a.length === b.length && a.every((r) => b.some((o) => rdnEqual(r, o)));
}

// ---------------------------------------------------------------------------------------
// Just enough DER to read a certificate's subject and subject alternative names

interface Tlv {
  tag: number;
  start: number; // content
  end: number;
}

function readTlv(b: Buffer, p: number): Tlv {
  const tag = b[p];
  let len = b[p + 1];
  let start = p + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('bad DER length');
    len = 0;
    for (let k = 0; k < n; k++) len = len * 256 + b[start + k];
    start += n;
  }
  const end = start + len;
  if (tag === undefined || end > b.length) throw new Error('truncated DER');
  return { tag, start, end };
}

function children(b: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.start; p < t.end;) {
    const c = readTlv(b, p);
    out.push(c);
    p = c.end;
  }
  return out;
}

function oidText(b: Buffer, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let p = t.start; p < t.end; p++) {
    v = v * 128 + (b[p] & 0x7f);
    if ((b[p] & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 40 ? 0 : v < 80 ? 1 : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

function stringValue(b: Buffer, t: Tlv): string | null {
  const bytes = b.subarray(t.start, t.end);
  switch (t.tag) {
    case 0x0c:
      return bytes.toString('utf8'); // UTF8String
    case 0x13:
    case 0x16:
    case 0x1a:
      return bytes.toString('latin1'); // Printable, IA5, Visible
    case 0x14:
      return bytes.toString('latin1'); // T61String
    case 0x1e: {
      // BMPString: UTF-16BE
      const le = Buffer.from(bytes);
      le.swap16();
      return le.toString('utf16le');
    }
    default:
      return null;
  }
}

function certNames(raw: Buffer): CertNames {
  const cert = readTlv(raw, 0);
  const tbs = children(raw, cert)[0];
  const fields = children(raw, tbs);
  let i = fields[0].tag === 0xa0 ? 1 : 0; // [0] version
  i += 4; // serialNumber, signature, issuer, validity
  const subject = fields[i];
  const rdns: Atv[][] = children(raw, subject).map((set) =>
    children(raw, set).map((seq) => {
      const [oid, value] = children(raw, seq);
      return { oid: oidText(raw, oid), value: stringValue(raw, value) };
    }),
  );
  const names: CertNames = { emails: [], dnsNames: [], uris: [], rdns };
  const ext = fields.find((f) => f.tag === 0xa3);
  if (ext !== undefined) {
    for (const e of children(raw, children(raw, ext)[0])) {
      const parts = children(raw, e);
      if (oidText(raw, parts[0]) !== OID_SAN) continue;
      const octets = parts[parts.length - 1];
      for (const gn of children(raw, readTlv(raw, octets.start))) {
        const v = raw.toString('latin1', gn.start, gn.end);
        if (gn.tag === 0x81) names.emails.push(v);
        else if (gn.tag === 0x82) names.dnsNames.push(v);
        else if (gn.tag === 0x86) names.uris.push(v);
      }
    }
  }
  return names;
}
