// JSON decoding with Go encoding/json semantics into typed objects, which is how nats-server
// reads every CONNECT and INFO (json.Unmarshal into ClientOpts, connectInfo, Info). The object
// is merged over the target; keys match the field names exactly or case-insensitively; `null`
// (top level or per field) changes nothing; unknown keys are ignored; a known field of the
// wrong JSON type (a string for a bool, 1.5 or 1e0 for an int, a number too large for its Go
// type) is an error worded as Go words it, and nats-server then closes the connection.
// Not on any hot path: a connection sends a few of these in its life.

/** The Go type of a field, as its error messages name it. */
export type GoType = 'bool' | 'string' | 'int' | 'int32' | 'uint8' | 'uint64' | '[]string' | '[]uint8' | 'server.SubjectPermission';

/** A Go struct as encoding/json sees it: its name (for error texts) and its JSON fields. */
export interface GoStruct {
  readonly name: string;
  readonly fields: Readonly<Record<string, GoType>>;
}

/** What encoding/json returns for a field of the wrong type (an UnmarshalTypeError). */
export class JsonTypeError {
  readonly struct: string;
  readonly field: string;
  /** The JSON value's kind as Go reports it: `string`, `number`, `number 1.5`, `bool`, `array`, `object`. */
  readonly value: string;
  readonly goType: GoType | 'string';
  /** The value's source text. */
  readonly source: string;

  constructor(struct: string, field: string, value: string, goType: GoType | 'string', source: string) {
    this.struct = struct;
    this.field = field;
    this.value = value;
    this.goType = goType;
    this.source = source;
  }

  /** Go's text, which nats-server logs: `json: cannot unmarshal string into Go struct field ClientOpts.verbose of type bool`. */
  get message(): string {
    return `json: cannot unmarshal ${this.value} into Go struct field ${this.struct}.${this.field} of type ${this.goType}`;
  }
}

/** The text is not JSON, or not an object. */
export class JsonSyntaxError {
  readonly message: string;

  constructor(message: string) {
    this.message = message;
  }
}

export type JsonDecodeError = JsonTypeError | JsonSyntaxError;

/**
 * Go's encoding/json matches a key to a field exactly, else case-insensitively with Unicode
 * simple folding: on top of ASCII case, U+017F (long s) matches 's' and U+212A (Kelvin
 * sign) matches 'k' (fold.go). Our field names are ASCII, so that is the whole rule.
 */
function fold(key: string): string {
  return key
    .replace(/\u017f/g, 's')
    .replace(/\u212a/g, 'k')
    .toLowerCase();
}

const foldedFields = new WeakMap<GoStruct, Map<string, string>>();

function fieldOf(st: GoStruct, key: string): string | undefined {
  if (Object.hasOwn(st.fields, key)) return key;
  let folded = foldedFields.get(st);
  if (folded === undefined) {
    folded = new Map(Object.keys(st.fields).map((k) => [fold(k), k]));
    foldedFields.set(st, folded);
  }
  return folded.get(fold(key));
}

const INT_SOURCE = /^-?(0|[1-9][0-9]*)$/;
const INT_RANGE: Partial<Record<GoType, [bigint, bigint]>> = {
  int: [-(2n ** 63n), 2n ** 63n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint8: [0n, 255n],
  uint64: [0n, 2n ** 64n - 1n],
};

/** How Go names a JSON value's kind in an UnmarshalTypeError. */
function kindOf(value: unknown): string {
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'string') return 'string';
  return Array.isArray(value) ? 'array' : 'object';
}

/**
 * Decode `json` into `into`, one struct after the other as nats-server unmarshals the same
 * text into each (a route CONNECT goes into ClientOpts, then into connectInfo). Within a struct
 * Go decodes every field it can and reports the first type error; the next struct is not
 * tried after an error. Keys are applied in the order they appear, duplicates included
 * (`{"verbose":true,"VERBOSE":false}` ends false, as Go decodes it).
 */
export function decodeGoJson(json: string, structs: readonly GoStruct[], into: object): JsonDecodeError | null {
  let root: unknown;
  try {
    root = JSON.parse(json);
  } catch (err) {
    return new JsonSyntaxError(`invalid JSON: ${(err as Error).message}`);
  }
  if (root === null) return null;
  if (typeof root !== 'object' || Array.isArray(root)) return new JsonSyntaxError('not a JSON object');
  const pairs = topLevelPairs(json);
  const target = into as Record<string, unknown>;
  for (const st of structs) {
    let first: JsonTypeError | null = null;
    for (const [rawKey, source] of pairs) {
      const field = fieldOf(st, rawKey);
      if (field === undefined) continue;
      const value = JSON.parse(source) as unknown;
      if (value === null) continue;
      const err = store(st, field, st.fields[field], value, source, target);
      if (err !== null) first ??= err;
    }
    if (first !== null) return first;
  }
  return null;
}

function store(
  st: GoStruct,
  field: string,
  type: GoType,
  value: unknown,
  source: string,
  target: Record<string, unknown>,
): JsonTypeError | null {
  switch (type) {
    case 'bool':
      if (typeof value !== 'boolean') return new JsonTypeError(st.name, field, kindOf(value), type, source);
      target[field] = value;
      return null;
    case 'string':
      if (typeof value !== 'string') return new JsonTypeError(st.name, field, kindOf(value), type, source);
      target[field] = value;
      return null;
    case 'int':
    case 'int32':
    case 'uint8':
    case 'uint64': {
      if (typeof value !== 'number') return new JsonTypeError(st.name, field, kindOf(value), type, source);
      // The source text tells 1 from 1.0 and 1e0, as Go does (strconv.ParseInt on the literal).
      const [min, max] = INT_RANGE[type]!;
      if (!INT_SOURCE.test(source) || BigInt(source) < min || BigInt(source) > max) {
        return new JsonTypeError(st.name, field, `number ${source}`, type, source);
      }
      target[field] = value;
      return null;
    }
    case '[]string': {
      if (!Array.isArray(value)) return new JsonTypeError(st.name, field, kindOf(value), type, source);
      const list: string[] = [];
      for (const v of value as unknown[]) {
        // A null element is the zero value; any other non-string is an error on the element.
        if (v !== null && typeof v !== 'string') return new JsonTypeError(st.name, field, kindOf(v), 'string', source);
        list.push(v ?? '');
      }
      target[field] = list;
      return null;
    }
    case '[]uint8':
      // []byte travels as base64 text.
      if (typeof value !== 'string') return new JsonTypeError(st.name, field, kindOf(value), type, source);
      target[field] = value;
      return null;
    case 'server.SubjectPermission':
      if (typeof value !== 'object' || Array.isArray(value)) return new JsonTypeError(st.name, field, kindOf(value), type, source);
      target[field] = value;
      return null;
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * The key and the value's source text of every member of the top-level object, in order.
 * Only for text JSON.parse accepted as an object: no error handling needed.
 */
function topLevelPairs(json: string): [string, string][] {
  const pairs: [string, string][] = [];
  let i = json.indexOf('{') + 1;
  const skipWs = (): void => {
    while (WS.has(json.charCodeAt(i))) i++;
  };
  const stringEnd = (from: number): number => {
    let k = from + 1;
    while (json[k] !== '"') k += json[k] === '\\' ? 2 : 1;
    return k + 1;
  };
  for (;;) {
    skipWs();
    if (json[i] === '}') return pairs;
    const keyEnd = stringEnd(i);
    const key = JSON.parse(json.slice(i, keyEnd)) as string;
    i = keyEnd;
    skipWs();
    i++; // ':'
    skipWs();
    const valueStart = i;
    const c = json[i];
    if (c === '"') {
      i = stringEnd(i);
    } else if (c === '{' || c === '[') {
      let depth = 0;
      do {
        const d = json[i];
        if (d === '"') {
          i = stringEnd(i);
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') depth--;
        i++;
      } while (depth > 0);
    } else {
      while (i < json.length && json[i] !== ',' && json[i] !== '}' && !WS.has(json.charCodeAt(i))) i++;
    }
    pairs.push([key, json.slice(valueStart, i)]);
    skipWs();
    if (json[i] === ',') i++;
  }
}
