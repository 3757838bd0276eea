// The differential test file: every exchange below is run on fresh raw connections against
// nats-server 2.9.10 and against the implementation under test (SKEIN_TEST_IMPL, default
// skein), and the normalized transcripts (INFO's volatile fields replaced, server close
// recorded) must be equal byte for byte. Each case also states what nats-server is expected
// to answer, so a case that exercises nothing fails instead of passing vacuously.
//
// Scripts avoid nondeterminism that nats-server itself has: one publish never matches two
// subscriptions of the same connection (nats-server's delivery order there is map order),
// and queue groups with several candidates are tested by counting in protocol.test.ts.

import test from 'ava';
import { missingInOrder, runOnPair, startPair, type Pair, type ServerSetup } from './helpers/oracle.ts';
import type { ExchangeOptions, Step } from './helpers/raw.ts';

interface Case {
  title: string;
  script: Step[];
  /** Fragments nats-server's transcript must contain, in order. */
  expect: string[];
  /** Fragments nats-server's transcript must not contain. */
  absent?: string[];
  /** Own server pair with this setup; default: the shared default-config pair. */
  server?: ServerSetup;
  opts?: ExchangeOptions;
  timeoutMs?: number;
}

const QUIET = 'CONNECT {"verbose":false,"pedantic":false}\r\n';
const QUIET_HDRS = 'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n';
const CLOSED = '[closed by server]';
const UNKNOWN_OP = "-ERR 'Unknown Protocol Operation'";

const BOB_PERMS = {
  natsServer: `authorization {
  users: [
    {user: bob, password: pw, permissions: {publish: {allow: ["foo.>"]}, subscribe: {allow: ["foo.*", "bar v1"], deny: ["foo.secret"]}}}
    {user: carol, password: pw2, permissions: {publish: ["pub.>"], subscribe: {deny: ["secret.>"]}}}
  ]
}
`,
  skein: `authorization:
  users:
    - user: bob
      password: pw
      permissions:
        publish: {allow: ["foo.>"]}
        subscribe: {allow: ["foo.*", "bar v1"], deny: ["foo.secret"]}
    - user: carol
      password: pw2
      permissions:
        publish: ["pub.>"]
        subscribe: {deny: ["secret.>"]}
`,
};

/** A user whose permissions name a non-ASCII subject (UTF-8 in both config files). */
const UTF8_PERMS = {
  natsServer:
    'authorization { users: [ {user: u, password: p, permissions: {publish: {allow: ["ü.>", "ctl.>"]}, subscribe: {allow: ["ü.*", "ctl.>"]}}} ] }\n',
  skein:
    'authorization:\n  users:\n    - {user: u, password: p, permissions: {publish: {allow: ["ü.>", "ctl.>"]}, subscribe: {allow: ["ü.*", "ctl.>"]}}}\n',
};

/** An unrestricted user and one restricted to orders.> (second-CONNECT re-authentication). */
const USERS = {
  natsServer: `authorization { users: [
  {user: admin, password: apw}
  {user: guest, password: gpw, permissions: {publish: {allow: ["orders.>"]}, subscribe: {allow: ["orders.>"]}}}
] }
`,
  skein: `authorization:
  users:
    - {user: admin, password: apw}
    - {user: guest, password: gpw, permissions: {publish: {allow: ["orders.>"]}, subscribe: {allow: ["orders.>"]}}}
`,
};

const cases: Case[] = [
  // ---- CONNECT defaults, verbose, pedantic -------------------------------------------
  {
    title: 'CONNECT {} defaults to verbose: +OK after CONNECT, SUB, PUB, UNSUB (even unknown sid)',
    script: ['CONNECT {}\r\n', 'SUB foo 1\r\n', 'PUB foo 2\r\nhi\r\n', 'UNSUB 1\r\n', 'UNSUB 99\r\n', 'PUB foo 2\r\nhi\r\n'],
    expect: ['INFO {', '+OK', '+OK', '+OK\\r\\n\nMSG foo 1 2\\r\\n\nhi', '+OK', '+OK', '+OK'],
    absent: [CLOSED],
  },
  {
    title: 'no CONNECT at all is a verbose session',
    script: ['SUB foo 1\r\n', 'PUB foo 2\r\nhi\r\n'],
    expect: ['+OK\\r\\n\n+OK\\r\\n\nMSG foo 1 2'],
  },
  {
    title: 'verbose false sends no +OK',
    script: [QUIET, 'SUB foo 1\r\n', 'PUB foo 2\r\nhi\r\n', 'UNSUB 1\r\n'],
    expect: ['MSG foo 1 2'],
    absent: ['+OK'],
  },
  {
    title: 'a second CONNECT re-applies the options',
    script: ['CONNECT {}\r\n', 'SUB foo 1\r\n', 'CONNECT {"verbose":false}\r\n', 'PUB foo 2\r\nhi\r\n'],
    expect: ['+OK\\r\\n\n+OK\\r\\n\nMSG foo 1 2'],
  },
  {
    title: 'CONNECT without a space before the JSON is accepted',
    script: ['CONNECT{"verbose":true}\r\n', 'PING\r\n'],
    expect: ['+OK\\r\\n\nPONG'],
  },
  {
    title: 'PING variants: PINGXYZ, lowercase, bare LF; PONG and +OK from the client are ignored',
    script: [QUIET, 'PING\r\n', 'PINGXYZ\r\n', 'ping\r\n', 'PING\n', 'PONG\r\n', 'pong whatever\r\n', '+OK\r\n'],
    expect: ['PONG\\r\\n\nPONG\\r\\n\nPONG\\r\\n\nPONG\\r\\n'],
    absent: ['-ERR', CLOSED],
  },
  {
    title: 'operation names are case-insensitive and arguments split on tabs and space runs',
    script: ['connect {"verbose":false}\r\n', 'sub\tfoo \t 1\r\n', 'pUb  foo\t2\r\nhi\r\n', 'Unsub\t1\r\n', 'pub foo 2\r\nhi\r\n'],
    expect: ['MSG foo 1 2\\r\\n\nhi'],
    absent: ['-ERR', CLOSED, '+OK'],
  },
  {
    title: 'verbose PUB: +OK is queued before the MSG it produces on the same connection',
    script: ['CONNECT {"verbose":true,"pedantic":false}\r\n', 'SUB foo 1\r\nPUB foo 5\r\nhello\r\n'],
    expect: ['+OK\\r\\n\n+OK\\r\\n\n+OK\\r\\n\nMSG foo 1 5\\r\\n\nhello'],
  },
  {
    title: 'pedantic: Invalid Publish Subject, message still delivered to wildcard subscribers',
    script: [
      { conn: 'b', send: QUIET + 'SUB > 3\r\n' },
      { conn: 'c', send: QUIET + 'SUB foo.> 4\r\n' },
      { conn: 'd', send: QUIET + 'SUB foo.* 5\r\n' },
      { conn: 'e', send: QUIET + 'SUB foo.bar 6\r\n' },
      { sync: 'b' },
      { sync: 'c' },
      { sync: 'd' },
      { sync: 'e' },
      'CONNECT {}\r\n',
      'PUB foo.* 0\r\n\r\n',
      'PUB foo.>.bar 0\r\n\r\n',
      'PUB > 0\r\n\r\n',
      { conn: 'b', until: 'MSG > 3' },
      { conn: 'c', until: 'MSG foo.>.bar 4' },
      { conn: 'd', until: 'MSG foo.* 5' },
    ],
    expect: [
      '== a',
      "+OK\\r\\n\n-ERR 'Invalid Publish Subject'\\r\\n\n+OK",
      "-ERR 'Invalid Publish Subject'\\r\\n\n+OK",
      "-ERR 'Invalid Publish Subject'\\r\\n\n+OK",
      '== b',
      'MSG foo.* 3 0',
      'MSG foo.>.bar 3 0',
      'MSG > 3 0',
      '== c',
      'MSG foo.* 4 0',
      'MSG foo.>.bar 4 0',
      '== d',
      'MSG foo.* 5 0',
      '== e',
    ],
    absent: ['MSG foo.* 6', 'MSG foo.>.bar 5', 'MSG > 4', CLOSED],
  },
  {
    title: 'subjects with empty tokens get Invalid Publish Subject and reach nobody, not even >',
    script: [
      { conn: 'b', send: QUIET + 'SUB > 1\r\n' },
      { sync: 'b' },
      'CONNECT {"verbose":false}\r\n',
      'PUB foo..bar 1\r\n1\r\n',
      'PUB .foo 1\r\n2\r\n',
      'PUB foo. 1\r\n3\r\n',
      'CONNECT {"verbose":false,"pedantic":false}\r\n',
      'PUB foo..bar 1\r\n4\r\n',
      'PUB marker 1\r\n5\r\n',
      { conn: 'b', until: 'MSG marker' },
    ],
    expect: [
      '== a',
      "-ERR 'Invalid Publish Subject'",
      "-ERR 'Invalid Publish Subject'",
      "-ERR 'Invalid Publish Subject'",
      '== b',
      'MSG marker 1 1',
    ],
    absent: ['MSG foo..bar', 'MSG .foo', 'MSG foo.', CLOSED],
  },
  {
    title: 'pedantic off: no Invalid Publish Subject error',
    script: ['CONNECT {"verbose":false,"pedantic":false}\r\n', 'SUB foo.* 1\r\n', 'PUB foo.* 1\r\nx\r\n'],
    expect: ['MSG foo.* 1 1'],
    absent: ['-ERR'],
  },

  // ---- SUB / UNSUB ---------------------------------------------------------------------
  {
    title: 'UNSUB with max delivers exactly max then removes the subscription',
    script: [QUIET, 'SUB foo 1\r\n', 'UNSUB 1 2\r\n', 'PUB foo 1\r\na\r\n', 'PUB foo 1\r\nb\r\n', 'PUB foo 1\r\nc\r\n'],
    expect: ['MSG foo 1 1\\r\\n\na', 'MSG foo 1 1\\r\\n\nb'],
    absent: ['\nc\\r\\n'],
  },
  {
    title: 'UNSUB with max at or below the delivered count removes at once',
    script: [
      QUIET,
      'SUB foo 1\r\n',
      'PUB foo 1\r\na\r\n',
      'PUB foo 1\r\nb\r\n',
      'UNSUB 1 2\r\n',
      'PUB foo 1\r\nc\r\n',
      'SUB bar 2\r\n',
      'UNSUB 2 0\r\n',
      'PUB bar 1\r\nd\r\n',
      'SUB baz 3\r\n',
      'UNSUB 3 x\r\n',
      'PUB baz 1\r\ne\r\n',
    ],
    expect: ['\na\\r\\n', '\nb\\r\\n'],
    absent: ['\nc\\r\\n', '\nd\\r\\n', '\ne\\r\\n', '-ERR'],
  },
  {
    title: 'duplicate sid is ignored: the first subscription stays, verbose still +OK',
    script: ['CONNECT {"pedantic":false}\r\n', 'SUB foo 1\r\n', 'SUB bar 1\r\n', 'PUB bar 1\r\nx\r\n', 'PUB foo 1\r\ny\r\n'],
    expect: ['+OK', '+OK', '+OK', '+OK', '+OK\\r\\n\nMSG foo 1 1\\r\\n\ny'],
    absent: ['MSG bar', '-ERR'],
  },
  {
    title: 'SUB with an invalid subject: Invalid Subject, connection stays open',
    script: [
      QUIET,
      'SUB foo..bar 3\r\n',
      'SUB foo.>.bar 4\r\n',
      'SUB .foo 5\r\n',
      'SUB foo. 6\r\n',
      'SUB foo.*bar 7\r\n',
      'PUB foo.*bar 1\r\nz\r\n',
    ],
    expect: ["-ERR 'Invalid Subject'", "-ERR 'Invalid Subject'", "-ERR 'Invalid Subject'", "-ERR 'Invalid Subject'", 'MSG foo.*bar 7 1'],
    absent: [CLOSED],
  },
  {
    title: 'SUB with a wrong argument count closes silently',
    script: [QUIET, 'SUB foo\r\n'],
    expect: ['INFO {', CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'SUB with four arguments closes silently',
    script: [QUIET, 'SUB foo q 1 extra\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: "SUB and UNSUB split arguments on CR too, and a CR in the arguments drops the line's last byte",
    script: [
      QUIET,
      'SUB a\r1\r\n',
      'SUB b 2\r\r\n',
      'SUB c 3\rq\r\n',
      'SUB \rd 4\r\n',
      'SUB f 6\r\nUNSUB 6\r1\r\n',
      'PUB a 1\r\n1\r\nPUB b 1\r\n2\r\nPUB c 1\r\n3\r\nPUB d 1\r\n4\r\nPUB f 1\r\n5\r\nPUB f 1\r\n6\r\n',
    ],
    expect: ['MSG a 1 1\\r\\n\n1', 'MSG b 2 1\\r\\n\n2', 'MSG c q 1\\r\\n\n3', 'MSG d 4 1\\r\\n\n4', 'MSG f 6 1\\r\\n\n5'],
    absent: ['-ERR', CLOSED, '\\n6'],
  },
  {
    title: 'a SUB whose CR is not last loses its last byte instead: one argument left closes silently',
    script: [QUIET, 'SUB e\r5\nPING\r\n'],
    expect: [CLOSED],
    absent: ['-ERR', 'PONG'],
  },
  {
    title: 'PUB does not split on CR: PUB x\\r1 closes silently',
    script: [QUIET, 'PUB x\r1\r\nz\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'UNSUB with no arguments: Unknown Protocol Operation',
    script: [QUIET, 'UNSUB\r\n'],
    expect: [UNKNOWN_OP, CLOSED],
  },
  {
    title: 'UNSUB with three arguments closes silently',
    script: [QUIET, 'UNSUB 1 2 3\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },

  // ---- PUB framing --------------------------------------------------------------------
  {
    title: 'PUB with one argument closes silently',
    script: [QUIET, 'PUB foo\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'PUB with four arguments closes silently',
    script: [QUIET, 'PUB foo bar baz 1\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'PUB with a non-numeric size closes silently',
    script: [QUIET, 'PUB foo abc\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'PUB with an overflowing size closes silently',
    script: [QUIET, 'PUB foo 99999999999999999999999\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'PUB with a negative size closes silently',
    script: [QUIET, 'PUB foo -1\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'PUB directly followed by CR: Unknown Protocol Operation',
    script: [QUIET, 'PUB\r\n'],
    expect: [UNKNOWN_OP, CLOSED],
  },
  {
    title: 'payload not followed by CRLF: Unknown Protocol Operation',
    script: [QUIET, 'SUB foo 1\r\n', 'PUB foo 2\r\nhiXX'],
    expect: [UNKNOWN_OP, CLOSED],
    absent: ['MSG'],
  },
  {
    title: 'payload followed by LF only: Unknown Protocol Operation',
    script: [QUIET, 'PUB foo 2\r\nhi\n'],
    expect: [UNKNOWN_OP, CLOSED],
  },
  {
    title: 'payload may contain CRLF and be empty',
    script: [QUIET, 'SUB foo 1\r\n', 'PUB foo 6\r\na\r\nb\r\n\r\n', 'PUB foo 0\r\n\r\n', 'PUB foo reply.x 0\r\n\r\n'],
    expect: ['MSG foo 1 6\\r\\n\na\\r\\n\nb\\r\\n\n\\r\\n', 'MSG foo 1 0\\r\\n\n\\r\\n', 'MSG foo 1 reply.x 0\\r\\n\n\\r\\n'],
    absent: ['-ERR'],
  },
  {
    title: 'extra spaces and tabs around arguments are ignored; a size with leading zeros is echoed as sent',
    script: [
      QUIET,
      'SUB foo 1 \r\n',
      'SUB  bar\tq  2\t\r\n',
      'PUB  foo   2 \r\nhi\r\n',
      'PUB foo 2\t\r\nhi\r\n',
      'PUB foo 02\r\nhi\r\n',
      'PUB bar 1\r\nb\r\n',
      'UNSUB 1  \r\n',
      'UNSUB  2 \t 5 \r\n',
      'PUB foo 1\r\nz\r\n',
    ],
    expect: ['MSG foo 1 2\\r\\n\nhi', 'MSG foo 1 2\\r\\n\nhi', 'MSG foo 1 02\\r\\n\nhi', 'MSG bar 2 1\\r\\n\nb'],
    absent: ['-ERR', CLOSED, '\nz\\r\\n'],
  },
  {
    title: 'a size with a plus sign closes silently',
    script: [QUIET, 'PUB foo +2\r\nhi\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'reply subjects are passed through unvalidated, even in pedantic mode',
    script: ['CONNECT {}\r\n', 'SUB foo 1\r\n', 'PUB foo bar.* 1\r\nx\r\n', 'PUB foo bar..x 1\r\nx\r\n', 'PUB foo > 1\r\nx\r\n'],
    expect: ['MSG foo 1 bar.* 1', 'MSG foo 1 bar..x 1', 'MSG foo 1 > 1'],
    absent: ['-ERR', CLOSED],
  },
  {
    title: 'control line split over many writes',
    script: [QUIET, 'SU', 'B fo', 'o 1\r', '\nPUB f', 'oo 3\r\nab', 'c\r', '\n'],
    expect: ['MSG foo 1 3\\r\\n\nabc'],
    absent: ['-ERR'],
  },
  {
    title: 'PUB over the default max_payload: Maximum Payload Violation',
    script: [QUIET, 'PUB foo 1048577\r\n'],
    expect: ["-ERR 'Maximum Payload Violation'", CLOSED],
  },
  {
    title: 'max_payload from the config: shown in INFO and enforced',
    server: { config: { natsServer: 'max_payload: 1024\n', skein: 'max_payload: 1024\n' } },
    script: [QUIET, 'SUB foo 1\r\n', `PUB foo 1024\r\n${'x'.repeat(1024)}\r\n`, 'PUB foo 1025\r\n'],
    expect: ['"max_payload":1024', 'MSG foo 1 1024', "-ERR 'Maximum Payload Violation'", CLOSED],
  },
  {
    title: 'control line over max_control_line: maximum control line exceeded',
    server: { config: { natsServer: 'max_control_line: 64\n', skein: 'max_control_line: 64\n' } },
    script: [QUIET, 'SUB foo 1\r\n', `SUB ${'a'.repeat(70)} 2\r\n`],
    expect: ["-ERR 'maximum control line exceeded'", CLOSED],
  },
  {
    title: 'control line over max_control_line is refused before its LF arrives',
    server: { config: { natsServer: 'max_control_line: 64\n', skein: 'max_control_line: 64\n' } },
    script: [QUIET, `PUB ${'a'.repeat(100)}`, { waitClose: 'a' }],
    expect: ["-ERR 'maximum control line exceeded'", CLOSED],
  },
  {
    title: 'control line at max_control_line is accepted',
    server: { config: { natsServer: 'max_control_line: 64\n', skein: 'max_control_line: 64\n' } },
    // "SUB " + 62 bytes of arguments + CRLF: the limit counts the bytes after the keyword.
    script: [QUIET, `SUB ${'a'.repeat(58)} 12\r\n`, `PUB ${'a'.repeat(58)} 1\r\nz\r\n`],
    expect: [`MSG ${'a'.repeat(58)} 12 1`],
    absent: ['-ERR'],
  },

  // ---- Subjects, wildcards, queue groups ---------------------------------------------------
  {
    title: 'wildcard matching, including * and > published literally',
    script: [
      { conn: 'b', send: QUIET + 'SUB foo.* 1\r\n' },
      { conn: 'c', send: QUIET + 'SUB foo.> 2\r\n' },
      { conn: 'd', send: QUIET + 'SUB > 3\r\n' },
      { conn: 'e', send: QUIET + 'SUB foo.bar 4\r\n' },
      { conn: 'f', send: QUIET + 'SUB *.*.baz 5\r\n' },
      { sync: 'b' },
      { sync: 'c' },
      { sync: 'd' },
      { sync: 'e' },
      { sync: 'f' },
      QUIET,
      'PUB foo 1\r\n1\r\n',
      'PUB foo.bar 1\r\n2\r\n',
      'PUB foo.bar.baz 1\r\n3\r\n',
      'PUB foo.* 1\r\n4\r\n',
      'PUB foo.> 1\r\n5\r\n',
      'PUB *.*.baz 1\r\n6\r\n',
      'PUB foo.*bar 1\r\n7\r\n',
      'PUB x.y.baz 1\r\n8\r\n',
      { conn: 'd', until: 'MSG x.y.baz' },
    ],
    expect: [
      '== b',
      'MSG foo.bar 1 1',
      'MSG foo.* 1 1',
      'MSG foo.> 1 1',
      'MSG foo.*bar 1 1',
      '== c',
      'MSG foo.bar 2 1',
      'MSG foo.bar.baz 2 1',
      'MSG foo.* 2 1',
      'MSG foo.> 2 1',
      'MSG foo.*bar 2 1',
      '== d',
      'MSG foo 3 1',
      'MSG foo.bar 3 1',
      'MSG x.y.baz 3 1',
      '== e',
      'MSG foo.bar 4 1',
      '== f',
      'MSG foo.bar.baz 5 1',
      'MSG *.*.baz 5 1',
      'MSG x.y.baz 5 1',
    ],
    absent: ['MSG foo 1 ', 'MSG foo 2 ', 'MSG foo.* 4', 'MSG foo.> 4', 'MSG *.*.baz 1 ', '-ERR'],
  },
  {
    title: 'queue groups: one member per group plus a plain subscriber each get every message',
    script: [
      { conn: 'b', send: QUIET + 'SUB foo g1 1\r\n' },
      { conn: 'c', send: QUIET + 'SUB foo.* g2 2\r\n' },
      { conn: 'd', send: QUIET + 'SUB foo 3\r\n' },
      { sync: 'b' },
      { sync: 'c' },
      { sync: 'd' },
      QUIET,
      'PUB foo 1\r\n1\r\n',
      'PUB foo.x 1\r\n2\r\n',
      'PUB foo 1\r\n3\r\n',
      { conn: 'b', until: /MSG foo 1 1\r\n3/ },
      { conn: 'c', until: 'MSG foo.x' },
      { conn: 'd', until: /MSG foo 3 1\r\n3/ },
    ],
    expect: [
      '== b',
      'MSG foo 1 1\\r\\n\n1',
      'MSG foo 1 1\\r\\n\n3',
      '== c',
      'MSG foo.x 2 1\\r\\n\n2',
      '== d',
      'MSG foo 3 1\\r\\n\n1',
      'MSG foo 3 1\\r\\n\n3',
    ],
    absent: ['MSG foo.x 1', 'MSG foo.x 3'],
  },
  {
    title: 'queue group with echo false skips the publisher and picks the other member',
    script: [
      { conn: 'b', send: QUIET + 'SUB foo g 7\r\n' },
      { sync: 'b' },
      'CONNECT {"verbose":false,"pedantic":false,"echo":false}\r\n',
      'SUB foo g 1\r\n',
      'PUB foo 1\r\n1\r\n',
      'PUB foo 1\r\n2\r\n',
      'PUB foo 1\r\n3\r\n',
      { conn: 'b', until: /MSG foo 7 1\r\n3/ },
    ],
    expect: ['== a', '== b', 'MSG foo 7 1\\r\\n\n1', 'MSG foo 7 1\\r\\n\n2', 'MSG foo 7 1\\r\\n\n3'],
    absent: ['MSG foo 1 '],
  },
  {
    title: 'queue name _sys_ is refused',
    script: [QUIET, 'SUB foo _sys_ 1\r\n', 'PUB foo 1\r\nx\r\n'],
    expect: ['-ERR \'Permissions Violation for Subscription to "foo" using queue "_sys_"\''],
    absent: ['MSG', CLOSED],
  },
  {
    title: 'queue names may contain wildcard characters',
    script: [QUIET, 'SUB foo q.* 1\r\n', 'PUB foo 1\r\nx\r\n'],
    expect: ['MSG foo 1 1'],
    absent: ['-ERR'],
  },

  // ---- Subjects, queue names and sids are bytes ------------------------------------------
  // nats-server never decodes them: bytes that are not UTF-8 are distinct subjects, and a
  // message is delivered with its subject exactly as published. (Each subscriber on its own
  // connection, so the connections spread over workers.)
  {
    title: 'subjects are bytes: \\xff, \\xfe, UTF-8 ü and latin1 ü are four subjects, each delivered as sent',
    script: [
      { conn: 'a', send: QUIET + 'SUB \xff 1\r\n' },
      { conn: 'b', send: QUIET + 'SUB \xfe 2\r\n' },
      { conn: 'c', send: QUIET + 'SUB \xc3\xbc 3\r\n' },
      { conn: 'd', send: QUIET + 'SUB \xfc 4\r\n' },
      { conn: 'e', send: QUIET + 'SUB x.* 5\r\n' },
      { sync: 'a' },
      { sync: 'b' },
      { sync: 'c' },
      { sync: 'd' },
      { sync: 'e' },
      {
        conn: 'p',
        send: QUIET + 'PUB \xff 1\r\nA\r\nPUB \xfe 1\r\nB\r\nPUB \xc3\xbc 1\r\nC\r\nPUB \xfc 1\r\nD\r\nPUB x.\xff\xfe 1\r\nE\r\n',
      },
      { conn: 'a', until: 'A\r\n' },
      { conn: 'b', until: 'B\r\n' },
      { conn: 'c', until: 'C\r\n' },
      { conn: 'd', until: 'D\r\n' },
      { conn: 'e', until: 'E\r\n' },
    ],
    expect: [
      '== a',
      'MSG \\xff 1 1\\r\\n\nA',
      '== b',
      'MSG \\xfe 2 1\\r\\n\nB',
      '== c',
      'MSG \\xc3\\xbc 3 1\\r\\n\nC',
      '== d',
      'MSG \\xfc 4 1\\r\\n\nD',
      '== e',
      'MSG x.\\xff\\xfe 5 1\\r\\n\nE',
      '== p',
    ],
    absent: ['MSG \\xfe 1', 'MSG \\xff 2', 'MSG \\xfc 3', 'MSG \\xc3\\xbc 4', '-ERR', CLOSED],
  },
  {
    title: 'sids and queue names are bytes: UNSUB \\xff\\xfe leaves sid \\xfe\\xff; queues \\xff and \\xfe are two groups',
    script: [
      { conn: 'a', send: QUIET + 'SUB s1 \xff\xfe\r\nSUB s2 \xfe\xff\r\nUNSUB \xff\xfe\r\n' },
      { conn: 'q1', send: QUIET + 'SUB q \xff 1\r\n' },
      { conn: 'q2', send: QUIET + 'SUB q \xfe 2\r\n' },
      { sync: 'a' },
      { sync: 'q1' },
      { sync: 'q2' },
      { conn: 'p', send: QUIET + 'PUB s1 1\r\n1\r\nPUB s2 1\r\n2\r\nPUB q 1\r\n3\r\n' },
      { conn: 'a', until: 'MSG s2' },
      { conn: 'q1', until: 'MSG q' },
      { conn: 'q2', until: 'MSG q' },
    ],
    expect: ['== a', 'MSG s2 \\xfe\\xff 1\\r\\n\n2', '== p', '== q1', 'MSG q 1 1\\r\\n\n3', '== q2', 'MSG q 2 1\\r\\n\n3'],
    absent: ['MSG s1', '-ERR', CLOSED],
  },
  {
    title: 'permission subjects from the config are UTF-8 and match the same bytes on the wire',
    server: { config: UTF8_PERMS },
    script: ['CONNECT {"verbose":false,"pedantic":false,"user":"u","pass":"p"}\r\n', 'SUB \xc3\xbc.a 1\r\n', 'PUB \xc3\xbc.a 1\r\nx\r\n'],
    expect: ['MSG \\xc3\\xbc.a 1 1\\r\\n\nx'],
    absent: ['-ERR', CLOSED],
  },

  // ---- Echo, headers, no_responders ---------------------------------------------------------
  {
    title: 'echo false: the publisher never receives its own messages, others do',
    script: [
      { conn: 'b', send: QUIET + 'SUB foo 2\r\n' },
      { sync: 'b' },
      'CONNECT {"verbose":false,"pedantic":false,"echo":false}\r\n',
      'SUB foo 1\r\n',
      'PUB foo 1\r\nx\r\n',
      { conn: 'b', until: 'MSG foo 2 1' },
    ],
    expect: ['== a', '== b', 'MSG foo 2 1'],
    absent: ['MSG foo 1 1'],
  },
  {
    title: 'HPUB is delivered as HMSG; headers are not validated; hdr_len 0 becomes MSG',
    script: [
      QUIET_HDRS,
      'SUB h 1\r\n',
      'HPUB h 3 5\r\nabcde\r\n',
      'HPUB h 0 2\r\nhi\r\n',
      'HPUB h reply 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\n',
      'HPUB h 16 16\r\nNATS/1.0 503\r\n\r\n\r\n',
    ],
    expect: [
      'HMSG h 1 3 5\\r\\n\nabcde',
      'MSG h 1 2\\r\\n\nhi',
      'HMSG h 1 reply 18 23\\r\\n\nNATS/1.0\\r\\n\nA: b\\r\\n\n\\r\\n\nhello',
      'HMSG h 1 16 16',
    ],
    absent: ['-ERR'],
  },
  {
    title: 'verbose and pedantic apply to HPUB: +OK, and Invalid Publish Subject with delivery',
    script: [
      'CONNECT {"headers":true}\r\n',
      'SUB h.> 1\r\n',
      'HPUB h.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n',
      'HPUB h.* 12 14\r\nNATS/1.0\r\n\r\nhi\r\n',
      'UNSUB 1 1\r\n',
    ],
    expect: [
      '+OK\\r\\n\n+OK\\r\\n\n+OK\\r\\n\nHMSG h.x 1 12 14',
      "-ERR 'Invalid Publish Subject'\\r\\n\n+OK\\r\\n\nHMSG h.* 1 12 14\\r\\n\nNATS/1.0\\r\\n\n\\r\\n\nhi\\r\\n\n+OK",
    ],
    absent: [CLOSED],
  },
  {
    title: 'a subscriber without headers gets the payload only, as MSG',
    script: [
      { conn: 'b', send: QUIET + 'SUB h 4\r\n' },
      { sync: 'b' },
      QUIET_HDRS,
      'HPUB h 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\n',
      'HPUB h r 3 3\r\nabc\r\n',
      { conn: 'b', until: /MSG h 4 r 0\r\n\r\n/ },
    ],
    expect: ['== b', 'MSG h 4 5\\r\\n\nhello', 'MSG h 4 r 0'],
    absent: ['HMSG'],
  },
  {
    title: 'HPUB without headers negotiated closes silently',
    script: [QUIET, 'HPUB h 3 5\r\nabcde\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'HPUB with hdr_len greater than total closes silently',
    script: [QUIET_HDRS, 'HPUB h 6 5\r\nabcde\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'HPUB with two arguments closes silently',
    script: [QUIET_HDRS, 'HPUB h 5\r\nabcde\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  {
    title: 'HPUB over max_payload: Maximum Payload Violation',
    script: [QUIET_HDRS, 'HPUB h 10 1048577\r\n'],
    expect: ["-ERR 'Maximum Payload Violation'", CLOSED],
  },
  {
    title: "no_responders: exact 503 HMSG to the publisher's reply subscription",
    script: [
      'CONNECT {"verbose":true,"pedantic":true,"lang":"node","version":"1.0","protocol":1,"headers":true,"no_responders":true}\r\n',
      'PING\r\n',
      'SUB _INBOX.x 9\r\n',
      'PUB nobody.here _INBOX.x 2\r\nhi\r\n',
    ],
    expect: ['+OK\\r\\n\nPONG\\r\\n\n+OK\\r\\n\n+OK\\r\\n\nHMSG _INBOX.x 9 16 16\\r\\n\nNATS/1.0 503\\r\\n\n\\r\\n\n\\r\\n'],
  },
  {
    title: 'no_responders: nothing when someone is subscribed, or when the publisher has no reply subscription',
    script: [
      { conn: 'b', send: QUIET + 'SUB svc 1\r\n' },
      { sync: 'b' },
      'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n',
      'SUB _INBOX.y 2\r\n',
      'PUB svc _INBOX.y 1\r\nq\r\n',
      'PUB nobody _INBOX.z 1\r\nq\r\n',
      { conn: 'b', until: 'MSG svc 1 _INBOX.y 1' },
    ],
    expect: ['== a', '== b', 'MSG svc 1 _INBOX.y 1'],
    absent: ['503'],
  },
  {
    title: 'no_responders without headers: error and close',
    script: ['CONNECT {"verbose":false,"no_responders":true}\r\n'],
    expect: ["-ERR 'no responders requires headers support'", CLOSED],
  },
  {
    title: 'CONNECT protocol 2: invalid client protocol',
    script: ['CONNECT {"verbose":false,"protocol":2}\r\n'],
    expect: ["-ERR 'invalid client protocol'", CLOSED],
  },
  {
    title: 'CONNECT protocol 0 is accepted',
    script: ['CONNECT {"verbose":false,"protocol":0}\r\n', 'SUB foo 1\r\nPUB foo 1\r\nx\r\n'],
    expect: ['MSG foo 1 1'],
    absent: ['-ERR', CLOSED],
  },
  {
    title: 'CONNECT with an account: Authorization Violation',
    script: ['CONNECT {"verbose":false,"account":"A"}\r\n'],
    expect: ["-ERR 'Authorization Violation'", CLOSED],
  },
  {
    title: 'CONNECT with new_account: Authorization Violation',
    script: ['CONNECT {"verbose":false,"new_account":true}\r\n'],
    expect: ["-ERR 'Authorization Violation'", CLOSED],
  },
  {
    title: 'CONNECT with invalid JSON closes silently',
    script: ['CONNECT {"verbose":fals\r\n'],
    expect: [CLOSED],
    absent: ['-ERR'],
  },
  // CONNECT JSON is decoded as nats-server does (Go's encoding/json into a typed struct).
  ...[
    '{"verbose":"yes"}',
    '{"pedantic":1}',
    '{"verbose":0}',
    '{"protocol":"1"}',
    '{"protocol":1.5}',
    '{"protocol":1e0}',
    '{"headers":"true"}',
    '{"no_responders":"x"}',
    '{"user":{}}',
    '{"pass":[]}',
    '{"auth_token":7}',
    '{"name":5}',
    '{"lang":true}',
    '{"sig":123}',
    '[]',
    '"str"',
    '42',
    'true',
    '{"verbose":false} trailing',
    '{"verbose":false}}',
  ].map((json): Case => ({
    title: `CONNECT ${json} (a field of the wrong type, or not an object) closes silently`,
    script: [`CONNECT ${json}\r\nSUB x 1\r\n`],
    expect: [CLOSED],
    absent: ['-ERR', '+OK'],
  })),
  ...[
    ['null', '+OK\\r\\n\n+OK'],
    ['{"echo":null,"verbose":null}', '+OK\\r\\n\n+OK'],
    ['{"foo":1,"bar":{"x":[1,2]}}', '+OK\\r\\n\n+OK'],
    ['{"verbose":false,"verbose":true}', '+OK\\r\\n\n+OK'],
    ['{"VERBOSE":false,"Pedantic":false}', ''],
    [' \t{"verbose":false}', ''],
    // Go folds keys with Unicode simple folding: U+017F (long s) is an s.
    ['{"verbo\\u017fe":false,"pedantic":false}', ''],
    ['{"verbo\xc5\xbfe":false,"pedantic":false}', ''], // the same, as raw UTF-8 bytes
    // Keys apply in order, duplicates in another case included.
    ['{"verbose":false,"VERBOSE":true,"verbose":false}', ''],
    ['{"verbose":true,"VERBOSE":false,"verbose":true}', '+OK\\r\\n\n+OK'],
  ].map(([json, verboseOk]): Case => ({
    title: `CONNECT ${json} is accepted (null is no-op, unknown keys ignored, last duplicate wins, keys case-insensitive)`,
    script: [`CONNECT ${json}\r\nSUB x 1\r\nPUB x 1\r\nz\r\n`],
    expect: verboseOk ? [verboseOk, 'MSG x 1 1'] : ['MSG x 1 1'],
    absent: verboseOk ? ['-ERR', CLOSED] : ['-ERR', CLOSED, '+OK'],
  })),
  {
    title: "CONNECT keys fold as Go's encoding/json: U+212A (Kelvin sign) is a k, in auth_token",
    server: { config: { natsServer: 'authorization { token: s3cret }\n', skein: 'authorization: {token: s3cret}\n' } },
    script: ['CONNECT {"verbose":false,"auth_to\\u212aen":"s3cret"}\r\nSUB x 1\r\nPUB x 1\r\nz\r\n'],
    expect: ['MSG x 1 1'],
    absent: ['-ERR', CLOSED],
  },
  {
    title: 'CONNECT protocol -1: invalid client protocol',
    script: ['CONNECT {"verbose":false,"protocol":-1}\r\n'],
    expect: ["-ERR 'invalid client protocol'", CLOSED],
  },
  {
    title: 'credentials sent to a server without auth are ignored',
    script: ['CONNECT {"verbose":false,"user":"x","pass":"y","auth_token":"z"}\r\n', 'SUB foo 1\r\nPUB foo 1\r\nx\r\n'],
    expect: ['MSG foo 1 1'],
    absent: ['-ERR', CLOSED],
  },

  // ---- Reserved subjects ----------------------------------------------------------------------
  {
    title: 'publishing to _GR_. is a permissions violation; the message is dropped',
    script: [QUIET, 'SUB _GR_.> 1\r\n', 'PUB _GR_.abc.def.x 1\r\nx\r\n', 'PUB ok 1\r\nx\r\n'],
    expect: ['-ERR \'Permissions Violation for Publish to "_GR_.abc.def.x"\''],
    absent: ['MSG', CLOSED],
  },
  {
    title: 'reserved reply prefixes _R_., _GR_. and $JS.ACK. are refused',
    script: [
      QUIET,
      'SUB foo 1\r\n',
      'PUB foo _R_.abc 1\r\nx\r\n',
      'PUB foo _GR_.a.b 1\r\nx\r\n',
      'PUB foo $JS.ACK.x 1\r\nx\r\n',
      'PUB foo _R 1\r\ny\r\n',
    ],
    expect: [
      '-ERR \'Permissions Violation for Publish with Reply of "_R_.abc"\'',
      '-ERR \'Permissions Violation for Publish with Reply of "_GR_.a.b"\'',
      '-ERR \'Permissions Violation for Publish with Reply of "$JS.ACK.x"\'',
      'MSG foo 1 _R 1',
    ],
    absent: ['MSG foo 1 _R_', 'MSG foo 1 _GR_', 'MSG foo 1 $JS', CLOSED],
  },

  // ---- Operations a client may not send --------------------------------------------------
  {
    title: '-ERR from the client closes the connection',
    script: [QUIET, "-ERR 'boom'\r\n"],
    expect: [CLOSED],
  },
  {
    title: 'INFO from the client is ignored',
    script: [QUIET, 'INFO {"server_id":"x","foo":1}\r\n', 'INFO{}\r\n', 'SUB foo 1\r\nPUB foo 1\r\nx\r\n'],
    expect: ['MSG foo 1 1'],
    absent: ['-ERR', CLOSED],
  },
  {
    title: 'MSG from the client: Unknown Protocol Operation',
    script: [QUIET, 'MSG foo 1 2\r\nhi\r\n'],
    expect: [UNKNOWN_OP, CLOSED],
  },
  {
    title: 'route operation RS+ from a client: Unknown Protocol Operation',
    script: [QUIET, 'RS+ $G foo\r\n'],
    expect: [UNKNOWN_OP, CLOSED],
  },
  {
    title: 'an unknown word: Unknown Protocol Operation',
    script: [QUIET, 'HELLO world\r\n'],
    expect: [UNKNOWN_OP, CLOSED],
  },
  {
    title: 'SUB directly followed by its subject without a space: Unknown Protocol Operation',
    script: [QUIET, 'SUBfoo 1\r\n'],
    expect: [UNKNOWN_OP, CLOSED],
  },

  // ---- Limits -----------------------------------------------------------------------------------
  {
    title: 'max_subscriptions: the extra SUB gets maximum subscriptions exceeded, connection stays',
    server: { config: { natsServer: 'max_subscriptions: 2\n', skein: 'max_subscriptions: 2\n' } },
    script: [QUIET, 'SUB a 1\r\n', 'SUB b 2\r\n', 'SUB c 3\r\n', 'PUB c 1\r\nx\r\n', 'PUB b 1\r\ny\r\n'],
    expect: ["-ERR 'maximum subscriptions exceeded'", 'MSG b 2 1'],
    absent: ['MSG c', CLOSED],
  },
  {
    title: 'max_connections: INFO first, then maximum connections exceeded and close',
    server: { config: { natsServer: 'max_connections: 1\n', skein: 'max_connections: 1\n' }, readiness: 'log' },
    script: [QUIET, { sync: 'a' }, { open: 'b' }, { waitClose: 'b' }],
    expect: ['== a', 'PONG', '== b', 'INFO {', "-ERR 'maximum connections exceeded'", CLOSED],
  },

  // ---- Authorization ------------------------------------------------------------------------
  {
    title: 'user/pass auth: auth_required in INFO, good credentials work',
    server: { args: ['--user', 'alice', '--pass', 'secret'] },
    script: ['CONNECT {"verbose":false,"user":"alice","pass":"secret"}\r\n', 'SUB foo 1\r\nPUB foo 1\r\nx\r\n'],
    expect: ['"auth_required":true', 'MSG foo 1 1'],
    absent: ['-ERR', CLOSED],
  },
  {
    title: 'user/pass auth: a wrong password is an Authorization Violation',
    server: { args: ['--user', 'alice', '--pass', 'secret'] },
    script: ['CONNECT {"verbose":false,"user":"alice","pass":"bad"}\r\n'],
    expect: ["-ERR 'Authorization Violation'", CLOSED],
  },
  {
    title: 'user/pass auth: missing credentials are an Authorization Violation',
    server: { args: ['--user', 'alice', '--pass', 'secret'] },
    script: ['CONNECT {"verbose":false}\r\n'],
    expect: ["-ERR 'Authorization Violation'", CLOSED],
  },
  {
    title: 'auth required: a first operation other than CONNECT is an Authorization Violation',
    server: { args: ['--user', 'alice', '--pass', 'secret'] },
    script: ['SUB foo 1\r\n'],
    expect: ['"auth_required":true', "-ERR 'Authorization Violation'", CLOSED],
  },
  {
    title: 'auth required: PING before CONNECT is an Authorization Violation',
    server: { args: ['--user', 'alice', '--pass', 'secret'] },
    script: ['PING\r\n'],
    expect: ["-ERR 'Authorization Violation'", CLOSED],
    absent: ['PONG'],
  },
  {
    title: 'token auth: right token works, wrong token is an Authorization Violation',
    server: { args: ['--auth', 's3cr3t'] },
    script: [
      'CONNECT {"verbose":true,"auth_token":"s3cr3t"}\r\n',
      'SUB foo 1\r\n',
      { conn: 'b', send: 'CONNECT {"auth_token":"nope"}\r\n' },
    ],
    expect: ['== a', '"auth_required":true', '+OK\\r\\n\n+OK\\r\\n', '== b', "-ERR 'Authorization Violation'", CLOSED],
  },
  {
    title: 'auth timeout: no CONNECT within the timeout gives Authentication Timeout',
    server: {
      config: {
        natsServer: 'authorization {\n  user: alice\n  password: secret\n  timeout: 1\n}\n',
        skein: 'authorization:\n  user: alice\n  password: secret\n  timeout: 1\n',
      },
    },
    script: [{ open: 'a' }, { waitClose: 'a', timeoutMs: 4000 }],
    expect: ["-ERR 'Authentication Timeout'", CLOSED],
    timeoutMs: 20000,
  },
  {
    title: 'users list: good login works, unknown user and wrong password are refused',
    server: { config: BOB_PERMS },
    script: [
      'CONNECT {"verbose":false,"user":"bob","pass":"pw"}\r\n',
      'SUB foo.a 1\r\nPUB foo.a 1\r\nx\r\n',
      { conn: 'b', send: 'CONNECT {"verbose":false,"user":"mallory","pass":"pw"}\r\n' },
      { conn: 'c', send: 'CONNECT {"verbose":false,"user":"bob","pass":"pw2"}\r\n' },
    ],
    expect: ['== a', 'MSG foo.a 1 1', '== b', "-ERR 'Authorization Violation'", CLOSED, '== c', "-ERR 'Authorization Violation'", CLOSED],
  },
  {
    title: 'users list permissions: each Permissions Violation text',
    server: { config: BOB_PERMS },
    script: [
      'CONNECT {"verbose":false,"pedantic":false,"user":"bob","pass":"pw"}\r\n',
      'PUB baz 1\r\nx\r\n',
      'SUB baz 1\r\n',
      'SUB bar v2 2\r\n',
      'SUB bar 3\r\n',
      'SUB bar v1 4\r\n',
      'SUB foo.secret 5\r\n',
      'SUB foo.ok 6\r\n',
      'PUB foo.ok _R_.abc 1\r\nx\r\n',
      'PUB _GR_.abc.def.x 1\r\nx\r\n',
      'PUB foo.ok 1\r\ny\r\n',
    ],
    expect: [
      '-ERR \'Permissions Violation for Publish to "baz"\'',
      '-ERR \'Permissions Violation for Subscription to "baz"\'',
      '-ERR \'Permissions Violation for Subscription to "bar" using queue "v2"\'',
      '-ERR \'Permissions Violation for Subscription to "bar"\'',
      '-ERR \'Permissions Violation for Subscription to "foo.secret"\'',
      '-ERR \'Permissions Violation for Publish with Reply of "_R_.abc"\'',
      '-ERR \'Permissions Violation for Publish to "_GR_.abc.def.x"\'',
      'MSG foo.ok 6 1\\r\\n\ny',
    ],
    absent: [CLOSED, 'MSG foo.ok 6 _R_'],
  },
  // ---- A second CONNECT is authenticated again (client.go processConnect) -----------------
  {
    title: 'a second CONNECT with a wrong password: Authorization Violation and close',
    server: { config: USERS },
    script: [
      'CONNECT {"verbose":false,"pedantic":false,"user":"admin","pass":"apw"}\r\n',
      { sync: 'a' },
      'CONNECT {"user":"guest","pass":"wrong"}\r\nSUB x 1\r\nPUB x 1\r\nz\r\n',
    ],
    expect: ["-ERR 'Authorization Violation'", CLOSED],
    absent: ['MSG'],
  },
  {
    title: "a second CONNECT as another valid user gets that user's permissions; subscriptions made before stay",
    server: { config: USERS },
    script: [
      { conn: 'b', send: 'CONNECT {"verbose":false,"pedantic":false,"user":"admin","pass":"apw"}\r\n' },
      { sync: 'b' },
      'CONNECT {"verbose":false,"pedantic":false,"user":"admin","pass":"apw"}\r\nSUB x 1\r\nSUB orders.> 2\r\n',
      { sync: 'a' },
      'CONNECT {"user":"guest","pass":"gpw"}\r\nPUB x 1\r\nz\r\nSUB y 3\r\nPUB orders.a 1\r\nw\r\n',
      { sync: 'a' },
      { conn: 'b', send: 'PUB x 1\r\nv\r\n' },
      { until: 'MSG x 1 1' },
    ],
    expect: [
      '== a',
      '-ERR \'Permissions Violation for Publish to "x"\'',
      '-ERR \'Permissions Violation for Subscription to "y"\'',
      'MSG orders.a 2 1\\r\\n\nw',
      'MSG x 1 1\\r\\n\nv',
      '== b',
    ],
    absent: [CLOSED, 'MSG x 1 1\\r\\n\nz'],
  },
  {
    title: 'a second CONNECT from a restricted user to an unrestricted one lifts the restrictions',
    server: { config: USERS },
    script: [
      'CONNECT {"verbose":false,"pedantic":false,"user":"guest","pass":"gpw"}\r\nSUB x 1\r\n',
      { sync: 'a' },
      'CONNECT {"user":"admin","pass":"apw"}\r\nSUB x 2\r\nPUB x 1\r\nz\r\n',
    ],
    expect: ['-ERR \'Permissions Violation for Subscription to "x"\'', 'MSG x 2 1\\r\\n\nz'],
    absent: [CLOSED, 'Publish to'],
  },
  {
    title: 'a second CONNECT without credentials keeps the ones merged from the first',
    server: { config: USERS },
    script: [
      'CONNECT {"verbose":false,"pedantic":false,"user":"guest","pass":"gpw"}\r\n',
      { sync: 'a' },
      'CONNECT {"verbose":false}\r\nPUB x 1\r\nz\r\n',
    ],
    expect: ['-ERR \'Permissions Violation for Publish to "x"\''],
    absent: [CLOSED, 'Authorization Violation'],
  },
  {
    title: 'a second CONNECT with a wrong token: Authorization Violation and close',
    server: { config: { natsServer: 'authorization { token: s3cret }\n', skein: 'authorization: {token: s3cret}\n' } },
    script: ['CONNECT {"verbose":false,"auth_token":"s3cret"}\r\n', { sync: 'a' }, 'CONNECT {"auth_token":"nope"}\r\n'],
    expect: ["-ERR 'Authorization Violation'", CLOSED],
  },
  {
    title: 'PUB orders..x under a publish allow list orders.> is a permissions violation',
    server: { config: USERS },
    script: [
      'CONNECT {"verbose":false,"pedantic":false,"user":"guest","pass":"gpw"}\r\nSUB orders.> 1\r\nPUB orders..x 1\r\nv\r\nPUB orders.x 1\r\nw\r\n',
    ],
    expect: ['-ERR \'Permissions Violation for Publish to "orders..x"\'', 'MSG orders.x 1 1'],
    absent: [CLOSED, 'MSG orders..x'],
  },
  {
    title: "-ERR texts quote subjects as Go's %q: quotes, control characters and bytes that are not UTF-8 escaped",
    server: { config: UTF8_PERMS },
    script: [
      'CONNECT {"verbose":false,"pedantic":false,"user":"u","pass":"p"}\r\n',
      'PUB a\x01"\xff\xc3\xbc\x7f\\ 1\r\nz\r\n',
      'SUB \xfe\x02 q\x03 9\r\n',
      'SUB \xfc.a 10\r\n',
      'PUB \xfc.a 1\r\nz\r\n',
      'PUB ctl.a _R_.\x01 0\r\n\r\n',
      'SUB \xc3\xbc.a 11\r\nPUB \xc3\xbc.a 1\r\nx\r\n',
    ],
    expect: [
      '-ERR \'Permissions Violation for Publish to "a\\\\x01\\\\"\\\\xff\\xc3\\xbc\\\\x7f\\\\\\\\"\'',
      '-ERR \'Permissions Violation for Subscription to "\\\\xfe\\\\x02" using queue "q\\\\x03"\'',
      '-ERR \'Permissions Violation for Subscription to "\\\\xfc.a"\'',
      '-ERR \'Permissions Violation for Publish to "\\\\xfc.a"\'',
      '-ERR \'Permissions Violation for Publish with Reply of "_R_.\\\\x01"\'',
      'MSG \\xc3\\xbc.a 11 1',
    ],
    absent: [CLOSED],
  },
  {
    title: 'users list permissions: verbose sends -ERR instead of +OK for a refused PUB',
    server: { config: BOB_PERMS },
    script: [
      'CONNECT {"verbose":true,"pedantic":false,"user":"bob","pass":"pw"}\r\n',
      'PUB baz 1\r\nx\r\n',
      'PUB foo.x 1\r\nx\r\n',
      'SUB nope 1\r\n',
    ],
    expect: [
      '+OK\\r\\n\n-ERR \'Permissions Violation for Publish to "baz"\'\\r\\n\n+OK\\r\\n\n-ERR \'Permissions Violation for Subscription to "nope"\'\\r\\n',
    ],
  },
  {
    title: 'users list permissions: plain list form and subscribe deny only',
    server: { config: BOB_PERMS },
    script: [
      'CONNECT {"verbose":false,"pedantic":false,"user":"carol","pass":"pw2"}\r\n',
      'SUB secret.x 1\r\n',
      'SUB anything 2\r\n',
      'PUB anything 1\r\nx\r\n',
      'PUB pub.x 1\r\nx\r\n',
      'SUB pub.> 3\r\n',
      'PUB pub.y 1\r\nz\r\n',
    ],
    expect: [
      '-ERR \'Permissions Violation for Subscription to "secret.x"\'',
      '-ERR \'Permissions Violation for Publish to "anything"\'',
      'MSG pub.y 3 1\\r\\n\nz',
    ],
    absent: [CLOSED, 'MSG anything'],
  },
];

// The default-config pair is shared by the cases without their own setup; they run serially
// so that one case's wildcard subscribers never see another case's messages.
let shared: Pair | undefined;

test.before(async () => {
  shared = await startPair();
});

test.after.always(async () => {
  await shared?.stop();
});

for (const c of cases) {
  test.serial(c.title, async (t) => {
    t.timeout(c.timeoutMs ?? 60_000);
    let pair = shared!;
    if (c.server) {
      pair = await startPair(c.server);
      t.teardown(() => pair.stop());
    }
    const { ref, sut } = await runOnPair(pair, c.script, c.opts);
    const missing = missingInOrder(ref.text, c.expect);
    t.is(missing, undefined, `nats-server's transcript lacks ${JSON.stringify(missing)} (in order):\n${ref.text}`);
    for (const a of c.absent ?? []) {
      t.false(ref.text.includes(a), `nats-server's transcript unexpectedly has ${JSON.stringify(a)}:\n${ref.text}`);
    }
    t.is(sut.text, ref.text);
  });
}
