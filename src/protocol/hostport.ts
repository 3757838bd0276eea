// host:port and URLs as nats-server reads and writes them (Go's net.JoinHostPort and
// net.SplitHostPort, route/gateway/leaf URLs): the one home for them, used by the config front
// ends, the server's "Listening on" lines, INFO's connect_urls, the cluster's dialling and the
// monitor.

import type { Server } from 'node:net';

/** net.JoinHostPort: an IPv6 host goes in brackets. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** net.SplitHostPort: "host:port", "[v6]:port", ":port"; undefined for anything else. */
export function splitHostPort(s: string): { host: string; port: string } | undefined {
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || s[end + 1] !== ':') return undefined;
    return { host: s.slice(1, end), port: s.slice(end + 2) };
  }
  const colon = s.lastIndexOf(':');
  if (colon < 0 || s.indexOf(':') !== colon) return undefined;
  return { host: s.slice(0, colon), port: s.slice(colon + 1) };
}

/** A URL's host name, an IPv6 address without its brackets (Go's url.URL.Hostname). */
export function urlHostname(u: URL): string {
  return u.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Why a route/gateway/cluster URL cannot be dialled, or undefined when it can. */
export function urlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return 'parse';
  }
  if (!url.hostname) return 'no host';
  if (!url.port) return 'no port';
  return undefined;
}

/** The URL with its password shown as `xxxxx`, as nats-server logs URLs (url.URL.Redacted). */
export function redactedUrl(u: URL): string {
  if (u.password === '') return u.href;
  const c = new URL(u.href);
  c.password = 'xxxxx';
  return c.href;
}

/** A URL's host:port as written (the text itself when it does not parse), as /varz shows route URLs. */
export function urlHostPort(text: string): string {
  try {
    return new URL(text).host;
  } catch {
    return text;
  }
}

/**
 * Binds `server` where nats-server would. Go's net.Listen("tcp", "0.0.0.0:p") opens one
 * dual-stack socket (IPv6, IPv4 arriving as mapped addresses) wherever the OS has IPv6, so
 * nats-server on its default host also answers on [::1]; Node binds 0.0.0.0 for IPv4 only.
 * So 0.0.0.0 is bound as `::` with ipv6Only off, falling back to 0.0.0.0 when the host has
 * no IPv6. Resolves with whether the socket is dual stack (the ports file then lists the
 * IPv6 addresses too). Runs on the main thread (listeners live there).
 */
export async function listenLikeGo(server: Server, host: string, port: number, backlog: number): Promise<{ dualStack: boolean }> {
  const bind = (h: string): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: h, port, backlog, ipv6Only: false }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  if (host !== '0.0.0.0') {
    await bind(host);
    return { dualStack: host === '::' };
  }
  try {
    await bind('::');
    return { dualStack: true };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EINVAL') throw err;
  }
  await bind('0.0.0.0');
  return { dualStack: false };
}

/** A cluster or leafnodes `advertise`: "host:port" or "host" (then `defaultPort`); a scheme and a trailing slash are ignored. */
export function splitAdvertise(adv: string, defaultPort: number): [string, number] {
  const text = adv.replace(/^[a-z-]+:\/\//i, '').replace(/\/$/, '');
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    const port = text[end + 1] === ':' ? Number(text.slice(end + 2)) : defaultPort;
    return [text.slice(1, end), port];
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0 || text.indexOf(':') !== colon) return [text, defaultPort];
  return [text.slice(0, colon), Number(text.slice(colon + 1))];
}
