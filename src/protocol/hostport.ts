// host:port and URLs as nats-server reads and writes them (Go's net.JoinHostPort and
// net.SplitHostPort, route/gateway/leaf URLs): the one home for them, used by the config front
// ends, the server's "Listening on" lines, INFO's connect_urls, the cluster's dialling and the
// monitor.

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
