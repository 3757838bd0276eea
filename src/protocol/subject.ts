// Subject rules of nats-server 2.9: tokens split on '.', no empty tokens, a token is a
// wildcard only when it is exactly '*' (one token) or exactly '>' (one or more, last only).

/** A subscription subject: non-empty tokens, '>' only as the last token. */
export function isValidSubscribeSubject(subject: string): boolean {
  if (subject.length === 0) return false;
  let tokenStart = 0;
  for (let i = 0; i <= subject.length; i++) {
    if (i === subject.length || subject.charCodeAt(i) === 46 /* . */) {
      const len = i - tokenStart;
      if (len === 0) return false;
      if (len === 1 && subject.charCodeAt(tokenStart) === 62 /* > */ && i !== subject.length) return false;
      tokenStart = i + 1;
    }
  }
  return true;
}

/** A literal publish subject (what pedantic mode checks): valid and no wildcard tokens. */
export function isValidLiteralSubject(subject: string): boolean {
  if (!isValidSubscribeSubject(subject)) return false;
  let tokenStart = 0;
  for (let i = 0; i <= subject.length; i++) {
    if (i === subject.length || subject.charCodeAt(i) === 46) {
      if (i - tokenStart === 1) {
        const c = subject.charCodeAt(tokenStart);
        if (c === 42 /* * */ || c === 62 /* > */) return false;
      }
      tokenStart = i + 1;
    }
  }
  return true;
}

/**
 * Does `pattern` (may hold wildcards) match `subject`? Tokens of `subject` are taken
 * literally, so a subject `foo.*` is matched by patterns `foo.*`, `foo.>` and `>`, the way
 * nats-server's sublist matches a permission list against a wildcard subscription.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  // As nats-server's Sublist.Match: a subject with an empty token matches nothing (so
  // `PUB orders..x` under a publish allow list `orders.>` is a permissions violation).
  for (let i = 0; i < s.length; i++) if (s[i] === '') return false;
  for (let i = 0; i < p.length; i++) {
    const pt = p[i];
    if (pt === '>') return s.length > i;
    if (i >= s.length) return false;
    if (pt !== '*' && pt !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Is every subject matched by `sub` also matched by `pattern` (for deny checks on wildcard subs)? */
export function isSubsetMatch(sub: string, pattern: string): boolean {
  const s = sub.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < s.length; i++) {
    if (i >= p.length) return false;
    const pt = p[i];
    const st = s[i];
    if (pt === '>') return true;
    if (st === '>') return false;
    if (pt === '*') continue;
    if (st === '*' || pt !== st) return false;
  }
  return s.length === p.length;
}

/** Does b[s, e) begin with `_GR_.`, the prefix reserved for replies routed through gateways? */
export function isGatewayRouted(b: Uint8Array, s: number, e: number): boolean {
  return e - s >= 5 && b[s] === 95 && b[s + 1] === 71 && b[s + 2] === 82 && b[s + 3] === 95 && b[s + 4] === 46;
}
