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
const LOWER = new Map(Object.keys(FIELDS).map((k) => [k.toLowerCase(), k]));

export function defaultConnectFields(): ConnectFields {
  return {
    echo: true, verbose: true, pedantic: true, tls_required: false, new_account: false, headers: false,
    no_responders: false, nkey: '', jwt: '', sig: '', auth_token: '', user: '', pass: '', name: '',
    lang: '', version: '', account: '', protocol: 0,
  };
}

const INT_SOURCE = /^-?(0|[1-9][0-9]*)$/;

/** Merge `json` into `into`. Returns an error text, or null on success. */
export function decodeConnect(json: string, into: ConnectFields): string | null {
  const numberSources = new Map<object, Map<string, string>>();
  let root: unknown;
  try {
    // The reviver's third argument (source text access) tells 1 from 1.0 and 1e0, as Go does.
    root = JSON.parse(json, function (this: object, key: string, value: unknown, ctx?: { source?: string }) {
      if (typeof value === 'number' && ctx?.source !== undefined) {
        let m = numberSources.get(this);
        if (m === undefined) numberSources.set(this, (m = new Map()));
        m.set(key, ctx.source);
      }
      return value;
    } as (key: string, value: unknown) => unknown);
  } catch (err) {
    return `invalid JSON: ${(err as Error).message}`;
  }
  if (root === null) return null;
  if (typeof root !== 'object' || Array.isArray(root)) return 'CONNECT is not a JSON object';
  const sources = numberSources.get(root as object);
  const target = into as unknown as Record<string, unknown>;
  for (const [rawKey, value] of Object.entries(root as Record<string, unknown>)) {
    const field = FIELDS[rawKey] !== undefined ? rawKey : LOWER.get(rawKey.toLowerCase());
    if (field === undefined || value === null) continue;
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
      case 'int': {
        const src = sources?.get(rawKey) ?? String(value);
        if (typeof value !== 'number' || !INT_SOURCE.test(src) || !Number.isSafeInteger(value)) {
          return `cannot unmarshal ${JSON.stringify(value)} into field ${field} of type int`;
        }
        target[field] = value;
        break;
      }
      case 'object':
        if (typeof value !== 'object' || Array.isArray(value)) return `cannot unmarshal ${typeof value} into field ${field}`;
        break;
    }
  }
  return null;
}
