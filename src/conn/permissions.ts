// Per-user publish/subscribe permissions with nats-server's semantics: an allow list (if
// present) must match, then a deny list must not. Subscribe entries may carry a queue
// ("bar v1": subject bar only with queue v1). Wildcard subscriptions that overlap a deny
// entry are allowed, but messages on the denied subjects are filtered at delivery.
// Configured subjects are UTF-8 text; they are compared in the byte form subjects have on
// the wire (SUBJECT_ENCODING), so `ü.>` matches the bytes c3 bc and nothing else.

import type { UserPermissions } from '../config/options.ts';
import { subjectMatches, isSubsetMatch } from '../protocol/subject.ts';
import { subjectBytesOf } from '../protocol/bytes.ts';

interface Entry {
  subject: string;
  queue: string | null;
}

function parseEntries(list: string[] | undefined): Entry[] | null {
  if (list === undefined) return null;
  return list.map((raw) => {
    const parts = raw.trim().split(/[ \t]+/);
    return { subject: subjectBytesOf(parts[0]), queue: parts.length > 1 ? subjectBytesOf(parts[1]) : null };
  });
}

function queueMatches(queue: string, entries: Entry[]): boolean {
  for (const e of entries) {
    const q = e.queue!;
    if (q === queue || ((q.includes('*') || q.includes('>')) && isSubsetMatch(queue, q))) return true;
  }
  return false;
}

const PCACHE_MAX = 1024;

export class Permissions {
  private readonly pubAllow: Entry[] | null;
  private readonly pubDeny: Entry[] | null;
  private readonly subAllow: Entry[] | null;
  private readonly subDeny: Entry[] | null;
  private readonly pubCache = new Map<string, boolean>();

  constructor(p: UserPermissions) {
    this.pubAllow = parseEntries(p.publish?.allow);
    this.pubDeny = parseEntries(p.publish?.deny);
    this.subAllow = parseEntries(p.subscribe?.allow);
    this.subDeny = parseEntries(p.subscribe?.deny);
  }

  get hasPublish(): boolean {
    return this.pubAllow !== null || this.pubDeny !== null;
  }

  get hasSubscribe(): boolean {
    return this.subAllow !== null || this.subDeny !== null;
  }

  get hasSubscribeDeny(): boolean {
    return this.subDeny !== null;
  }

  canPublish(subject: string): boolean {
    const hit = this.pubCache.get(subject);
    if (hit !== undefined) return hit;
    let allowed = true;
    if (this.pubAllow !== null) allowed = this.pubAllow.some((e) => subjectMatches(e.subject, subject));
    if (allowed && this.pubDeny !== null) allowed = !this.pubDeny.some((e) => subjectMatches(e.subject, subject));
    if (this.pubCache.size >= PCACHE_MAX) this.pubCache.clear();
    this.pubCache.set(subject, allowed);
    return allowed;
  }

  canSubscribe(subject: string, queue: string | null): boolean {
    let allowed = true;
    if (this.subAllow !== null) {
      const hits = this.subAllow.filter((e) => subjectMatches(e.subject, subject));
      allowed = hits.some((e) => e.queue === null);
      const qhits = hits.filter((e) => e.queue !== null);
      if (queue !== null && qhits.length > 0) allowed = queueMatches(queue, qhits);
    }
    if (allowed && this.subDeny !== null) {
      const hits = this.subDeny.filter((e) => subjectMatches(e.subject, subject));
      allowed = !hits.some((e) => e.queue === null);
      const qhits = hits.filter((e) => e.queue !== null);
      if (queue !== null && qhits.length > 0) allowed = !queueMatches(queue, qhits);
    }
    return allowed;
  }

  /** Deny subjects inside the scope of wildcard subscription `subject`, for delivery filtering. */
  denyOverlapping(subject: string): string[] | null {
    if (this.subDeny === null) return null;
    const within = this.subDeny.filter((e) => e.queue === null && isSubsetMatch(e.subject, subject)).map((e) => e.subject);
    return within.length > 0 ? within : null;
  }
}
