// CONNECT JSON decoding with Go encoding/json semantics, which is what nats-server applies:
// the object is merged over the connection's current options; keys match the field names
// exactly or case-insensitively; `null` (top level or per field) changes nothing; unknown
// keys are ignored; a known field of the wrong JSON type (a string for a bool, 1.5 or 1e0
// for an int) is an error, and nats-server then closes the connection without -ERR.

export interface ConnectFields {
  echo: boolean;
  verbose: boolean;
  pedantic: boolean;
  tls_required: boolean;
  new_account: boolean;
  headers: boolean;
  no_responders: boolean;
  nkey: string;
  jwt: string;
  sig: string;
  auth_token: string;
  user: string;
  pass: string;
  name: string;
  lang: string;
  version: string;
  account: string;
  protocol: number;
}

type Kind = 'bool' | 'string' | 'int' | 'object';

const FIELDS: Record<string, Kind> = {
  echo: 'bool', verbose: 'bool', pedantic: 'bool', tls_required: 'bool', new_account: 'bool',
  headers: 'bool', no_responders: 'bool',
  nkey: 'string', jwt: 'string', sig: 'string', auth_token: 'string', user: 'string', pass: 'string',
  name: 'string', lang: 'string', version: 'string', account: 'string',
  protocol: 'int',
  import: 'object', export: 'object', // route/leaf permissions: type-checked, otherwise unused here
};
/**
 * Go's encoding/json matches a key to a field exactly, else case-insensitively with Unicode
 * simple folding: on top of ASCII case, U+017F (long s) matches 's' and U+212A (Kelvin
 * sign) matches 'k' (fold.go). Our field names are ASCII, so that is the whole rule.
 */
function fold(key: string): string {
  return key.replace(/\u017f/g, 's').replace(/\u212a/g, 'k').toLowerCase();
}
const FOLDED = new Map(Object.keys(FIELDS).map((k) => [fold(k), k]));

export function defaultConnectFields(): ConnectFields {
  return {
    echo: true, verbose: true, pedantic: true, tls_required: false, new_account: false, headers: false,
    no_responders: false, nkey: '', jwt: '', sig: '', auth_token: '', user: '', pass: '', name: '',
    lang: '', version: '', account: '', protocol: 0,
  };
}

const INT_SOURCE = /^-?(0|[1-9][0-9]*)$/;

/**
 * Merge `json` into `into`. Returns an error text, or null on success. Keys are applied in
 * the order they appear, duplicates included (`{"verbose":true,"VERBOSE":false,"verbose":true}`
 * ends verbose, as Go decodes it; JSON.parse would keep one value per exact key).
 */
export function decodeConnect(json: string, into: ConnectFields): string | null {
  let root: unknown;
  try {
    root = JSON.parse(json);
  } catch (err) {
    return `invalid JSON: ${(err as Error).message}`;
  }
  if (root === null) return null;
  if (typeof root !== 'object' || Array.isArray(root)) return 'CONNECT is not a JSON object';
  const target = into as unknown as Record<string, unknown>;
  for (const [rawKey, source] of topLevelPairs(json)) {
    const field = FIELDS[rawKey] !== undefined ? rawKey : FOLDED.get(fold(rawKey));
    if (field === undefined) continue;
    const value = JSON.parse(source) as unknown;
    if (value === null) continue;
    const kind = FIELDS[field];
    switch (kind) {
      case 'bool':
        if (typeof value !== 'boolean') return `cannot unmarshal ${typeof value} into field ${field} of type bool`;
        target[field] = value;
        break;
      case 'string':
        if (typeof value !== 'string') return `cannot unmarshal ${typeof value} into field ${field} of type string`;
        target[field] = value;
        break;
      case 'int':
        // The source text tells 1 from 1.0 and 1e0, as Go does.
        if (typeof value !== 'number' || !INT_SOURCE.test(source) || !Number.isSafeInteger(value)) {
          return `cannot unmarshal ${source} into field ${field} of type int`;
        }
        target[field] = value;
        break;
      case 'object':
        if (typeof value !== 'object' || Array.isArray(value)) return `cannot unmarshal ${typeof value} into field ${field}`;
        break;
    }
  }
  return null;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * The key and the value's source text of every member of the top-level object, in order.
 * Only for text JSON.parse accepted as an object: no error handling needed.
 */
function topLevelPairs(json: string): [string, string][] {
  const pairs: [string, string][] = [];
  let i = json.indexOf('{') + 1;
  const skipWs = () => { while (WS.has(json.charCodeAt(i))) i++; };
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
