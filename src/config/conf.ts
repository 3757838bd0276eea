// nats-server's .conf format (conf/lex.go and conf/parse.go in nats-server 2.9.10), read into
// the config tree that both config front ends produce. src/config/config.ts turns a YAML document
// into the same tree and reads Options from it through one set of field tables, so every key
// check is shared by both formats.
//
// The grammar, as nats-server reads it:
//   * `key: value`, `key = value` and `key value`; entries end at a new line, `,` or `;`.
//   * Maps `{ }`, arrays `[ ]` (items separated by `,` or new lines, trailing `,` allowed).
//     A whole file may be wrapped in `{ }` (the Helm chart renders it so, JSON-like).
//   * Comments from `#` or `//` to the end of the line (where a key or a value may end).
//   * Strings: "double quoted" (escapes \t \n \r \" \\ \xHH), 'single quoted' (raw), or
//     bare (up to white space, `,`, `;`, `]`, `}` or a new line; `#` inside is kept).
//     A bare `true/false/yes/no/on/off` is a boolean; a bare `$NAME` a variable reference.
//   * Numbers: integers with size suffixes (`k m g t p e` = powers of 1000; with `b`, `i` or
//     `ib` = powers of 1024; `2KB` = 2048), floats, `YYYY-MM-DDTHH:MM:SSZ` dates (kept as
//     text), and IP:port forms such as 127.0.0.1:4222 (a string). `10s` is a string, so
//     durations written bare work; `2m` is the integer 2000000 (a size), as in nats-server.
//   * `include path` (bare or quoted; relative to the including file's directory) merges
//     another file's top-level keys where it stands; its variables are its own.
//   * `$NAME` resolves to a key defined earlier in an enclosing map, innermost first, else
//     to the environment variable NAME, whose text is read as a .conf value. A key used as a
//     variable is not an unknown field (nats-server: token.IsUsedVariable). `$2a$...` is a
//     bcrypt hash, not a variable.
//
// Deliberate differences (none changes what a file both accept means): errors carry
// file:line:col (nats-server's lexer gives only a line); an include cycle is an error (it
// recurses until the stack overflows); an absolute include path is absolute (Go's
// filepath.Join would put it under the including file's directory); an unknown size suffix
// (`1kbb`) and a key with nothing after it at the end of the file are errors (nats-server
// drops them silently); a number directly before `]` is a number (nats-server makes it a
// string); a date is kept as text (nats-server makes it a time no key accepts).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, type SourcePosition } from './options.ts';

export type ConfScalar = string | number | boolean | null;

/** A scalar; `at` is where its text starts. */
export interface ConfValue {
  kind: 'scalar';
  value: ConfScalar;
  at: SourcePosition;
}

export interface ConfList {
  kind: 'list';
  items: ConfNode[];
  at: SourcePosition;
}

export interface ConfEntry {
  key: string;
  keyAt: SourcePosition;
  value: ConfNode;
  /** Referenced as `$key` somewhere: not an unknown field even if no field table knows it. */
  usedAsVariable: boolean;
}

export interface ConfMap {
  kind: 'map';
  entries: ConfEntry[];
  at: SourcePosition;
}

/** The config tree both front ends produce (YAML: src/config/config.ts; .conf: here). */
export type ConfNode = ConfValue | ConfList | ConfMap;

export interface ConfParseContext {
  /** Environment for `$NAME` references not defined in the file. */
  env: Record<string, string | undefined>;
  /** Reads an included file (tests may replace it). */
  readFile: (file: string) => string;
}

const defaultContext = (): ConfParseContext => ({
  env: process.env,
  readFile: (file) => readFileSync(file, 'utf8'),
});

/** Parses .conf text read from `file` (a path; includes are relative to its directory). Throws ConfigError. */
export function parseConf(text: string, file: string, context: ConfParseContext = defaultContext()): ConfMap {
  return new ConfParser(text, file, context, [path.resolve(file)]).document();
}

const MAX_INCLUDE_DEPTH = 32;

// conf/parse.go: one letter is a power of 1000; with b, i or ib a power of 1024.
const SIZE_MULTIPLIERS = new Map<string, number>([['', 1]]);
['k', 'm', 'g', 't', 'p', 'e'].forEach((letter, i) => {
  SIZE_MULTIPLIERS.set(letter, 1000 ** (i + 1));
  for (const s of ['b', 'i', 'ib']) SIZE_MULTIPLIERS.set(letter + s, 1024 ** (i + 1));
});

const SUFFIX_LETTERS = 'kKmMgGtTpPeE';
const BOOLEANS = new Map([['true', true], ['yes', true], ['on', true], ['false', false], ['no', false], ['off', false]]);

const isBlank = (c: string): boolean => c === ' ' || c === '\t';
const isNewline = (c: string): boolean => c === '\n' || c === '\r';
const isSpace = (c: string): boolean => isBlank(c) || isNewline(c) || c === '\v' || c === '\f';
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const EOF = '';

/** Shown in messages the way nats-server's lexer shows a rune ('\n' escaped). */
const shown = (c: string): string => (c === '\n' ? '\\n' : c === EOF ? 'EOF' : c);

class ConfParser {
  private readonly text: string;
  private readonly file: string;
  private readonly context: ConfParseContext;
  private readonly includeStack: string[];
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  /** Open maps, outermost first: the scopes `$NAME` looks in. */
  private readonly scopes: ConfMap[] = [];

  constructor(text: string, file: string, context: ConfParseContext, includeStack: string[]) {
    // A UTF-8 byte order mark is not part of the first key.
    this.text = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    this.file = file;
    this.context = context;
    this.includeStack = includeStack;
  }

  // ------------------------------------------------------------------ characters

  private peek(offset = 0): string {
    return this.text[this.pos + offset] ?? EOF;
  }

  private next(): string {
    const c = this.text[this.pos] ?? EOF;
    if (c === EOF) return c;
    this.pos++;
    if (c === '\n') {
      this.line++;
      this.lineStart = this.pos;
    }
    return c;
  }

  private here(): SourcePosition {
    return { file: this.file, line: this.line, col: this.pos - this.lineStart + 1 };
  }

  private fail(reason: string, at: SourcePosition = this.here()): never {
    throw new ConfigError('SYNTAX', reason, at);
  }

  private skipBlanks(): void {
    while (isBlank(this.peek())) this.next();
  }

  /** White space, new lines and whole comments. */
  private skipSpaceAndComments(): void {
    for (;;) {
      const c = this.peek();
      if (isSpace(c)) this.next();
      else if (this.atComment()) this.skipComment();
      else return;
    }
  }

  private atComment(): boolean {
    const c = this.peek();
    return c === '#' || (c === '/' && this.peek(1) === '/');
  }

  private skipComment(): void {
    while (this.peek() !== EOF && !isNewline(this.peek())) this.next();
  }

  // ------------------------------------------------------------------ structure

  document(): ConfMap {
    const root: ConfMap = { kind: 'map', entries: [], at: { file: this.file, line: 1, col: 1 } };
    this.scopes.push(root);
    this.skipSpaceAndComments();
    if (this.peek() === '{') {
      // The whole file as one map (JSON style, as the Helm chart renders it).
      this.next();
      this.mapBody(root, '}');
      this.skipSpaceAndComments();
      while (this.peek() === ';' || this.peek() === ',') {
        this.next();
        this.skipSpaceAndComments();
      }
      if (this.peek() !== EOF) this.fail(`Unexpected '${shown(this.peek())}' after the closing '}' of the file`);
    } else {
      this.mapBody(root, EOF);
    }
    this.scopes.pop();
    return root;
  }

  /** Entries up to `closer` ('}' consumed, or the end of the file for the top level). */
  private mapBody(map: ConfMap, closer: '}' | typeof EOF): void {
    const topLevel = closer === EOF;
    for (;;) {
      this.skipSpaceAndComments();
      const c = this.peek();
      if (c === EOF) {
        if (topLevel) return;
        this.fail('Unexpected EOF processing map.');
      }
      if (c === closer) {
        this.next();
        return;
      }
      if (c === ',' || c === ';') {
        // An empty entry (`port: 1;;`): nothing to read, as nats-server.
        this.next();
        continue;
      }
      if (c === '=' || c === ':') this.fail(`Unexpected key separator '${c}'`);
      if (c === ']') this.fail(`Unexpected array end '${c}' processing map.`);
      if (c === '}') this.fail(`Unexpected '${c}' where a key should start`);
      this.entry(map);
      // What may follow a value: blanks, a comment, then a new line, `,`, `;` or the closer.
      this.skipBlanks();
      if (this.atComment()) this.skipComment();
      const end = this.peek();
      if (isNewline(end) || end === ',' || end === ';') {
        this.next();
      } else if (end !== closer && !(end === EOF && topLevel)) {
        if (end === EOF) this.fail('Unexpected EOF processing map.');
        this.fail(topLevel
          ? `Expected a top-level value to end with a new line, comment or EOF, but got '${shown(end)}' instead.`
          : `Expected a map value terminator ',' or a map terminator '}', but got '${shown(end)}' instead.`);
      }
    }
  }

  /** One `key [=|:] value`, or an `include`. */
  private entry(map: ConfMap): void {
    const keyAt = this.here();
    const quote = this.peek();
    let key: string;
    if (quote === '"' || quote === "'") {
      this.next();
      const start = this.pos;
      while (this.peek() !== quote) {
        if (this.peek() === EOF) this.fail('Unexpected EOF processing quoted key.', keyAt);
        this.next();
      }
      key = this.text.slice(start, this.pos);
      this.next();
    } else {
      const start = this.pos;
      while (this.peek() !== EOF && !isSpace(this.peek()) && this.peek() !== '=' && this.peek() !== ':') this.next();
      key = this.text.slice(start, this.pos);
      if (key.toLowerCase() === 'include' && isSpace(this.peek())) {
        this.include(map, keyAt);
        return;
      }
    }
    // Key separator: white space (new lines too), then an optional `=` or `:`, then blanks.
    while (isSpace(this.peek())) this.next();
    // nats-server drops a key with nothing after it at the end of the file; that is a mistake.
    if (this.peek() === EOF) this.fail(`key ${JSON.stringify(key)} has no value`, keyAt);
    if (this.peek() === '=' || this.peek() === ':') {
      this.next();
      this.skipBlanks();
    }
    const value = this.value();
    setEntry(map, { key, keyAt, value, usedAsVariable: false });
  }

  private include(map: ConfMap, at: SourcePosition): void {
    this.skipBlanks();
    const c = this.peek();
    let name: string;
    if (c === '"' || c === "'") {
      this.next();
      const start = this.pos;
      while (this.peek() !== c) {
        if (this.peek() === EOF) this.fail('Unexpected EOF in quoted include', at);
        this.next();
      }
      name = this.text.slice(start, this.pos);
      this.next();
    } else {
      if (isNewline(c) || c === EOF) this.fail('Expected include value but found new line');
      if (c === '[' || c === '{' || c === '(') this.fail(`Expected include value but found start of ${c === '[' ? 'an array' : c === '{' ? 'a map' : 'a block'}`);
      if (isDigit(c) || c === '-') this.fail('Expected include value but found start of a number');
      const start = this.pos;
      while (!isSpace(this.peek()) && this.peek() !== EOF && this.peek() !== ';' && this.peek() !== '}') this.next();
      name = this.text.slice(start, this.pos);
    }
    const file = path.resolve(path.dirname(this.file), name);
    const shownName = JSON.stringify(name);
    if (this.includeStack.includes(file)) {
      this.fail(`error parsing include file ${shownName}: include cycle: ${[...this.includeStack, file].join(' -> ')}`, at);
    }
    if (this.includeStack.length >= MAX_INCLUDE_DEPTH) {
      this.fail(`error parsing include file ${shownName}: includes nested deeper than ${MAX_INCLUDE_DEPTH}`, at);
    }
    let text: string;
    try {
      text = this.context.readFile(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOENT' ? 'no such file or directory'
        : e.code === 'EACCES' ? 'permission denied'
        : e.code === 'EISDIR' ? 'is a directory'
        : e.message;
      this.fail(`error parsing include file ${shownName}: open ${file}: ${why}`, at);
    }
    // Errors inside the included file carry that file's own positions.
    const included = new ConfParser(text, file, this.context, [...this.includeStack, file]).document();
    for (const e of included.entries) setEntry(map, e);
  }

  // ------------------------------------------------------------------ values

  private value(): ConfNode {
    const at = this.here();
    const c = this.peek();
    if (c === EOF) this.fail('Unexpected EOF, expected a value');
    if (isNewline(c)) this.fail('Expected value but found new line');
    if (c === '[') return this.list(at);
    if (c === '{') {
      this.next();
      const map: ConfMap = { kind: 'map', entries: [], at };
      this.scopes.push(map);
      this.mapBody(map, '}');
      this.scopes.pop();
      return map;
    }
    if (c === '"') return { kind: 'scalar', value: this.doubleQuoted(), at };
    if (c === "'") return { kind: 'scalar', value: this.singleQuoted(), at };
    if (c === '(') return { kind: 'scalar', value: this.block(), at };
    if (c === '-') return this.negativeNumber(at);
    if (isDigit(c)) return this.numberOrString(at);
    if (c === '.') this.fail('Floats must start with a digit');
    return this.bare(at, '');
  }

  private list(at: SourcePosition): ConfList {
    this.next(); // [
    const list: ConfList = { kind: 'list', items: [], at };
    for (;;) {
      this.skipSpaceAndComments();
      const c = this.peek();
      if (c === ']') {
        this.next();
        return list;
      }
      if (c === ',') this.fail("Unexpected array value terminator ','.");
      if (c === EOF) this.fail('Unexpected EOF processing array.');
      list.items.push(this.value());
      this.skipBlanks();
      if (this.atComment()) this.skipComment();
      const end = this.peek();
      if (end === ',' || isNewline(end)) {
        this.next();
      } else if (end !== ']') {
        if (end === EOF) this.fail('Unexpected EOF processing array.');
        this.fail(`Expected an array value terminator ',' or an array terminator ']', but got '${shown(end)}' instead.`);
      }
    }
  }

  private doubleQuoted(): string {
    const start = this.here();
    this.next(); // "
    let out = '';
    for (;;) {
      const at = this.here();
      const c = this.next();
      if (c === EOF) this.fail('Unexpected EOF in a quoted string', start);
      if (c === '"') return out;
      out += c === '\\' ? this.escape(at) : c;
    }
  }

  private singleQuoted(): string {
    const start = this.here();
    this.next(); // '
    const from = this.pos;
    while (this.peek() !== "'") {
      if (this.peek() === EOF) this.fail('Unexpected EOF in a quoted string', start);
      this.next();
    }
    const s = this.text.slice(from, this.pos);
    this.next();
    return s;
  }

  /** After a backslash (double-quoted and bare strings); `at` is the backslash. */
  private escape(at: SourcePosition): string {
    const c = this.next();
    switch (c) {
      case 't': return '\t';
      case 'n': return '\n';
      case 'r': return '\r';
      case '"': return '"';
      case '\\': return '\\';
      case 'x': {
        const hex = this.next() + this.next();
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
          this.fail(/[\n\r]/.test(hex) || hex.length < 2
            ? "Expected two hexadecimal digits after '\\x', but hit end of line"
            : `Expected two hexadecimal digits after '\\x', but got '${hex}'`, at);
        }
        return String.fromCharCode(Number.parseInt(hex, 16));
      }
      default:
        return this.fail(`Invalid escape character '${shown(c)}'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.`, at);
    }
  }

  /** `( ... )`: text up to a line holding only `)`. */
  private block(): string {
    const start = this.here();
    this.next(); // (
    const from = this.pos;
    for (;;) {
      const c = this.peek();
      if (c === EOF) this.fail('Unexpected EOF processing block.', start);
      if (c === '\n' && this.peek(1) === ')' && (this.peek(2) === '\n' || this.peek(2) === EOF)) {
        const s = this.text.slice(from, this.pos);
        this.next();
        this.next();
        return s;
      }
      this.next();
    }
  }

  /** A bare string; `prefix` is what a number-like start already consumed. */
  private bare(at: SourcePosition, prefix: string): ConfNode {
    let s = prefix;
    let escaped = false;
    for (;;) {
      const c = this.peek();
      if (c === EOF || isSpace(c) || c === ',' || c === ';' || c === ']' || c === '}') break;
      const cAt = this.here();
      this.next();
      if (c === "'") break; // nats-server ends a bare string at a quote (and drops it)
      if (c === '\\') {
        s += this.escape(cAt);
        escaped = true;
      } else {
        s += c;
      }
    }
    if (!escaped) {
      const b = BOOLEANS.get(s.toLowerCase());
      if (b !== undefined) return { kind: 'scalar', value: b, at };
      if (s.startsWith('$')) return this.variable(s.slice(1), at);
    }
    return { kind: 'scalar', value: s, at };
  }

  private negativeNumber(at: SourcePosition): ConfNode {
    this.next(); // -
    const c = this.peek();
    if (!isDigit(c)) {
      if (c === '.') this.fail("Floats must start with a digit, not '.'.");
      this.fail(`Expected a digit but got '${shown(c)}'.`);
    }
    let digits = '-';
    while (isDigit(this.peek())) digits += this.next();
    if (this.peek() === '.') return this.float(at, digits);
    if (SUFFIX_LETTERS.includes(this.peek()) && this.peek() !== EOF) return this.sized(at, digits);
    return this.integer(at, digits, '');
  }

  /** Starts with a digit: integer, size, float, date, IP:port, or a string such as `10s`. */
  private numberOrString(at: SourcePosition): ConfNode {
    let digits = '';
    while (isDigit(this.peek())) digits += this.next();
    const c = this.peek();
    if (c === '-') {
      if (digits.length !== 4) this.fail('All ISO8601 dates must be in full Zulu form.');
      return this.date(at, digits);
    }
    if (c === '.') return this.float(at, digits);
    if (SUFFIX_LETTERS.includes(c) && c !== EOF) return this.sized(at, digits);
    if (this.endsNumber(c)) return this.integer(at, digits, '');
    return this.bare(at, digits);
  }

  private endsNumber(c: string): boolean {
    return c === EOF || isSpace(c) || c === '}' || c === ']' || c === ';' || c === ',';
  }

  /** Digits then a size letter (`1k`, `64KB`, `1GiB`); anything else after makes it a string. */
  private sized(at: SourcePosition, digits: string): ConfNode {
    let suffix = this.next();
    while ('bBiI'.includes(this.peek()) && this.peek() !== EOF) suffix += this.next();
    if (!this.endsNumber(this.peek()) && !isDigit(this.peek())) return this.bare(at, digits + suffix);
    return this.integer(at, digits, suffix);
  }

  private integer(at: SourcePosition, digits: string, suffix: string): ConfValue {
    const multiplier = SIZE_MULTIPLIERS.get(suffix.toLowerCase());
    if (multiplier === undefined) this.fail(`invalid size suffix in '${digits}${suffix}'`, at);
    const n = Number(digits) * multiplier;
    if (!Number.isSafeInteger(n)) this.fail(`integer '${digits}${suffix}' is out of the range`, at);
    return { kind: 'scalar', value: n === 0 ? 0 : n, at }; // no -0
  }

  private float(at: SourcePosition, digits: string): ConfValue {
    this.next(); // .
    const c = this.peek();
    if (!isDigit(c)) this.fail(`Floats must have a digit after the '.', but got '${shown(c)}' instead.`);
    let fraction = '';
    while (isDigit(this.peek())) fraction += this.next();
    if (this.peek() === '.' && !digits.startsWith('-')) {
      // 127.0.0.1 or 127.0.0.1:4222: an address, as a string.
      let s = `${digits}.${fraction}`;
      while (isDigit(this.peek()) || this.peek() === '.' || this.peek() === ':' || this.peek() === '-') s += this.next();
      return { kind: 'scalar', value: s, at };
    }
    const n = Number(`${digits}.${fraction}`);
    if (!Number.isFinite(n)) this.fail(`float '${digits}.${fraction}' is out of the range`, at);
    return { kind: 'scalar', value: n, at };
  }

  /** `YYYY-MM-DDTHH:MM:SSZ` (kept as text; no skein key takes a date). */
  private date(at: SourcePosition, year: string): ConfValue {
    let s = year;
    for (const f of '-00-00T00:00:00Z') {
      const c = this.next();
      if (f === '0' ? !isDigit(c) : c !== f) {
        this.fail(f === '0'
          ? `Expected digit in ISO8601 datetime, but found '${shown(c)}' instead.`
          : `Expected '${f}' in ISO8601 datetime, but found '${shown(c)}' instead.`);
      }
      s += c;
    }
    return { kind: 'scalar', value: s, at };
  }

  // ------------------------------------------------------------------ variables

  private variable(name: string, at: SourcePosition): ConfNode {
    // conf/parse.go: an unquoted bcrypt hash looks like a reference; it is a plain string.
    if (name.startsWith('2a$')) return { kind: 'scalar', value: `$${name}`, at };
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const entry = this.scopes[i].entries.find((e) => e.key === name);
      if (entry !== undefined) {
        entry.usedAsVariable = true;
        return relocated(entry.value, at);
      }
    }
    const env = this.context.env[name];
    if (env === undefined) this.fail(`variable reference for '${name}' on line ${at.line} can not be found`, at);
    // nats-server reads the variable's text as a value (`pk=<text>`): 4222 is a number.
    let parsed: ConfMap;
    try {
      parsed = new ConfParser(`pk=${env}`, this.file, { ...this.context, env: {} }, this.includeStack).document();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return this.fail(`variable reference for '${name}' on line ${at.line} could not be parsed: ${err.message.replace(/^.*?:\d+:\d+: /, '')}`, at);
    }
    const value = parsed.entries.find((e) => e.key === 'pk')?.value;
    if (value === undefined) return this.fail(`variable reference for '${name}' on line ${at.line} could not be parsed`, at);
    return relocatedDeep(value, at);
  }
}

/** A map keeps one entry per key; a repeated key replaces the earlier one (as a Go map does). */
function setEntry(map: ConfMap, entry: ConfEntry): void {
  const i = map.entries.findIndex((e) => e.key === entry.key);
  if (i >= 0) map.entries.splice(i, 1);
  map.entries.push(entry);
}

/** A variable's value where it is used: the node's own position becomes the reference's. */
function relocated(node: ConfNode, at: SourcePosition): ConfNode {
  return { ...node, at };
}

/** An environment variable's value has no place in any file: every position is the reference's. */
function relocatedDeep(node: ConfNode, at: SourcePosition): ConfNode {
  switch (node.kind) {
    case 'scalar':
      return { ...node, at };
    case 'list':
      return { kind: 'list', items: node.items.map((n) => relocatedDeep(n, at)), at };
    case 'map':
      return {
        kind: 'map',
        at,
        entries: node.entries.map((e) => ({ ...e, keyAt: at, value: relocatedDeep(e.value, at) })),
      };
  }
}
