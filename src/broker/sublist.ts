// The subject index: a token trie with '*' and '>' branches and a bounded result cache,
// as nats-server's sublist (cache capped at 1024 entries, swept down to 512). A generation
// counter moves on every insert or remove so callers holding derived caches notice staleness.
// Single-threaded: each worker owns its own Sublist.

import { subjectMatches } from '../protocol/subject.ts';

export interface Interest {
  readonly subject: string;
  readonly queue: string | null;
}

export interface QueueGroup<T> {
  readonly name: string;
  readonly members: T[];
}

export interface MatchResult<T> {
  readonly psubs: T[];
  readonly qgroups: QueueGroup<T>[];
}

interface Level<T> {
  nodes: Map<string, Node<T>>;
  pwc: Node<T> | null;
  fwc: Node<T> | null;
}

interface Node<T> {
  next: Level<T> | null;
  psubs: Set<T>;
  qsubs: Map<string, Set<T>>;
}

const CACHE_MAX = 1024;
const CACHE_SWEEP_TO = 512;

function newLevel<T>(): Level<T> {
  return { nodes: new Map(), pwc: null, fwc: null };
}

function newNode<T>(): Node<T> {
  return { next: null, psubs: new Set(), qsubs: new Map() };
}

function nodeIsEmpty<T>(n: Node<T>): boolean {
  return n.psubs.size === 0 && n.qsubs.size === 0 && (n.next === null || levelIsEmpty(n.next));
}

function levelIsEmpty<T>(l: Level<T>): boolean {
  return l.nodes.size === 0 && l.pwc === null && l.fwc === null;
}

export class Sublist<T extends Interest> {
  private readonly root: Level<T> = newLevel();
  private readonly cache = new Map<string, MatchResult<T>>();
  private count = 0;
  /** Moves on every change; derived caches compare it to spot stale entries. */
  generation = 0;
  inserts = 0;
  removes = 0;
  matches = 0;
  cacheHits = 0;

  get size(): number {
    return this.count;
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  insert(sub: T): void {
    const tokens = sub.subject.split('.');
    let level = this.root;
    let node: Node<T> | null = null;
    for (const t of tokens) {
      if (t === '*') {
        node = level.pwc ??= newNode();
      } else if (t === '>') {
        node = level.fwc ??= newNode();
      } else {
        node = level.nodes.get(t) ?? null;
        if (node === null) {
          node = newNode();
          level.nodes.set(t, node);
        }
      }
      level = node.next ??= newLevel();
    }
    if (node === null) return;
    if (sub.queue === null) {
      node.psubs.add(sub);
    } else {
      let group = node.qsubs.get(sub.queue);
      if (group === undefined) {
        group = new Set();
        node.qsubs.set(sub.queue, group);
      }
      group.add(sub);
    }
    this.count++;
    this.inserts++;
    this.changed(sub.subject);
  }

  remove(sub: T): boolean {
    const tokens = sub.subject.split('.');
    const path: { level: Level<T>; token: string; node: Node<T> }[] = [];
    let level = this.root;
    let node: Node<T> | null = null;
    for (const t of tokens) {
      node = t === '*' ? level.pwc : t === '>' ? level.fwc : (level.nodes.get(t) ?? null);
      if (node === null) return false;
      path.push({ level, token: t, node });
      if (node.next === null) break;
      level = node.next;
    }
    if (node === null || path.length !== tokens.length) return false;
    let removed: boolean;
    if (sub.queue === null) {
      removed = node.psubs.delete(sub);
    } else {
      const group = node.qsubs.get(sub.queue);
      removed = group !== undefined && group.delete(sub);
      if (group !== undefined && group.size === 0) node.qsubs.delete(sub.queue);
    }
    if (!removed) return false;
    // Prune empty nodes bottom-up so long-lived servers do not accumulate dead branches.
    for (let i = path.length - 1; i >= 0; i--) {
      const { level: l, token, node: n } = path[i];
      if (!nodeIsEmpty(n)) break;
      if (token === '*') l.pwc = null;
      else if (token === '>') l.fwc = null;
      else l.nodes.delete(token);
    }
    this.count--;
    this.removes++;
    this.changed(sub.subject);
    return true;
  }

  /** Every subscription matching the literal subject `subject`; cached. */
  match(subject: string): MatchResult<T> {
    this.matches++;
    const hit = this.cache.get(subject);
    if (hit !== undefined) {
      this.cacheHits++;
      return hit;
    }
    const psubs: T[] = [];
    const groups = new Map<string, T[]>();
    const tokens = subject.split('.');
    for (const t of tokens) if (t.length === 0) return this.store(subject, { psubs, qgroups: [] });
    this.matchLevel(this.root, tokens, 0, psubs, groups);
    const qgroups: QueueGroup<T>[] = [];
    for (const [name, members] of groups) qgroups.push({ name, members });
    return this.store(subject, { psubs, qgroups });
  }

  /** Fan-out over the cached results (nats-server's SublistStats max_fanout/avg_fanout). */
  cacheFanout(): { entries: number; total: number; max: number } {
    let total = 0;
    let max = 0;
    for (const r of this.cache.values()) {
      const n = r.psubs.length + r.qgroups.length;
      total += n;
      if (n > max) max = n;
    }
    return { entries: this.cache.size, total, max };
  }

  /** Every subscription held, for dumps and monitoring. */
  all(): T[] {
    const out: T[] = [];
    const walk = (l: Level<T>): void => {
      const visit = (n: Node<T>): void => {
        for (const s of n.psubs) out.push(s);
        for (const g of n.qsubs.values()) for (const s of g) out.push(s);
        if (n.next !== null) walk(n.next);
      };
      for (const n of l.nodes.values()) visit(n);
      if (l.pwc !== null) visit(l.pwc);
      if (l.fwc !== null) visit(l.fwc);
    };
    walk(this.root);
    return out;
  }

  private store(subject: string, result: MatchResult<T>): MatchResult<T> {
    this.cache.set(subject, result);
    if (this.cache.size > CACHE_MAX) {
      // Sweep the oldest entries (Map keeps insertion order).
      let excess = this.cache.size - CACHE_SWEEP_TO;
      for (const key of this.cache.keys()) {
        if (excess-- <= 0) break;
        this.cache.delete(key);
      }
    }
    return result;
  }

  /** Routes cached on the generation must be resolved again (something they derive from changed). */
  touch(): void {
    this.generation++;
  }

  private changed(pattern: string): void {
    this.generation++;
    if (this.cache.size === 0) return;
    // Drop only the cached results this subscription could be part of.
    for (const key of this.cache.keys()) {
      if (subjectMatches(pattern, key)) this.cache.delete(key);
    }
  }

  private matchLevel(level: Level<T>, tokens: string[], i: number, psubs: T[], groups: Map<string, T[]>): void {
    for (; i < tokens.length; i++) {
      if (level.fwc !== null) this.collect(level.fwc, psubs, groups);
      if (level.pwc !== null && level.pwc.next !== null) {
        if (i === tokens.length - 1) this.collect(level.pwc, psubs, groups);
        else this.matchLevel(level.pwc.next, tokens, i + 1, psubs, groups);
      } else if (level.pwc !== null && i === tokens.length - 1) {
        this.collect(level.pwc, psubs, groups);
      }
      const node = level.nodes.get(tokens[i]);
      if (node === undefined) return;
      if (i === tokens.length - 1) {
        this.collect(node, psubs, groups);
        return;
      }
      if (node.next === null) return;
      level = node.next;
    }
  }

  private collect(node: Node<T>, psubs: T[], groups: Map<string, T[]>): void {
    for (const s of node.psubs) psubs.push(s);
    for (const [name, members] of node.qsubs) {
      let g = groups.get(name);
      if (g === undefined) {
        g = [];
        groups.set(name, g);
      }
      for (const s of members) g.push(s);
    }
  }
}
