// Client CONNECT decoding with Go encoding/json semantics, which is what nats-server applies
// (protocol/gojson.ts): the object is merged over the connection's current options; keys match
// the field names exactly or case-insensitively; `null` (top level or per field) changes
// nothing; unknown keys are ignored; a known field of the wrong JSON type (a string for a bool,
// 1.5 or 1e0 for an int) is an error, and nats-server then closes the connection without -ERR.

import { decodeGoJson, JsonSyntaxError, type GoStruct, type JsonTypeError } from './gojson.ts';

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

/** client.go ClientOpts: what every CONNECT is unmarshalled into, a route's too. */
export const CLIENT_OPTS: GoStruct = {
  name: 'ClientOpts',
  fields: {
    echo: 'bool',
    verbose: 'bool',
    pedantic: 'bool',
    tls_required: 'bool',
    nkey: 'string',
    jwt: 'string',
    sig: 'string',
    auth_token: 'string',
    user: 'string',
    pass: 'string',
    name: 'string',
    lang: 'string',
    version: 'string',
    protocol: 'int',
    account: 'string',
    new_account: 'bool',
    headers: 'bool',
    no_responders: 'bool',
    // Routes and leafnodes only: type-checked, otherwise unused here.
    import: 'server.SubjectPermission',
    export: 'server.SubjectPermission',
  },
};

export function defaultConnectFields(): ConnectFields {
  return {
    echo: true,
    verbose: true,
    pedantic: true,
    tls_required: false,
    new_account: false,
    headers: false,
    no_responders: false,
    nkey: '',
    jwt: '',
    sig: '',
    auth_token: '',
    user: '',
    pass: '',
    name: '',
    lang: '',
    version: '',
    account: '',
    protocol: 0,
  };
}

/** Merge `json` into `into`. Returns an error text (for the client's log line), or null on success. */
export function decodeConnect(json: string, into: ConnectFields): string | null {
  const err = decodeGoJson(json, [CLIENT_OPTS], into);
  if (err === null) return null;
  if (err instanceof JsonSyntaxError) return err.message === 'not a JSON object' ? 'CONNECT is not a JSON object' : err.message;
  return clientErrorText(err);
}

/** The client's log line names a bad field in skein's own words (kept as they were). */
function clientErrorText(e: JsonTypeError): string {
  const type = typeof JSON.parse(e.source);
  switch (e.goType) {
    case 'bool':
    case 'string':
      return `cannot unmarshal ${type} into field ${e.field} of type ${e.goType}`;
    case 'int':
      return `cannot unmarshal ${e.source} into field ${e.field} of type int`;
    default:
      return `cannot unmarshal ${type} into field ${e.field}`;
  }
}
