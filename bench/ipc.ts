// Messages between the bench runner (parent) and its load-generator processes (bench/gen.ts).
// Timestamps are process.hrtime (CLOCK_MONOTONIC) in nanoseconds, comparable across processes
// on one host. CPU times are process.cpuUsage() user + system, in microseconds, measured from
// 'go' to the process's own end of work.

import type { CheckMode, CheckResult } from './check.ts';

export interface PubConnSpec {
  subjects: string[]; // cycled per message: message k goes to subjects[k % subjects.length]
  size: number;
  count: number;
  rate?: Rate; // paced publishing; absent: as fast as the server takes it
}

/** `batch` messages in one write every `intervalMs` (a client writing a few messages per read). */
export interface Rate {
  batch: number;
  intervalMs: number;
}

export interface SubConnSpec {
  subject: string;
  queue?: string;
  probe: string; // subject of the probe subscription (sid PROBE_SID)
  mode: CheckMode;
  expect: number; // messages this connection must receive, -1 for a queue-group member
  total: number; // messages its publisher sends (sizes the queue-group bitset)
  size: number;
}

export interface ReqConnSpec {
  subject: string;
  inbox: string;
  size: number;
  count: number; // measured requests
  warmup: number; // requests before those, not recorded
}

export type GenSpec =
  | { role: 'pub'; url: string; conns: PubConnSpec[] }
  | { role: 'sub'; url: string; conns: SubConnSpec[]; expectTotal: number }
  | { role: 'idle'; url: string; count: number; prefix: string; concurrency: number }
  | { role: 'interest'; url: string; count: number; prefix: string }
  | { role: 'rep'; url: string; subject: string; queue: string; probe: string }
  | { role: 'req'; url: string; conns: ReqConnSpec[] };

export type ParentMsg =
  { type: 'init'; spec: GenSpec } | { type: 'probe'; subjects: string[] } | { type: 'go' } | { type: 'finish' } | { type: 'exit' };

export interface PubReport {
  role: 'pub';
  sent: number;
  firstWriteNs: number;
  pongNs: number; // the PONG after the last PUB: the server has processed every PUB
  cpuUs: number;
}

export interface SubReport {
  role: 'sub';
  received: number;
  firstRecvNs: number;
  lastRecvNs: number;
  checks: CheckResult[]; // per connection
  seen: (Uint8Array | null)[]; // per connection, 'increasing' mode only
  cpuUs: number;
}

export interface ReqReport {
  role: 'req';
  completed: number; // measured requests answered
  firstSendNs: number; // first measured request
  lastRecvNs: number;
  histogram: string; // hdr-histogram-js compressed base64, nanoseconds
  problems: string[];
  cpuUs: number;
}

export interface RepReport {
  role: 'rep';
  answered: number;
  cpuUs: number;
}

export interface IdleReport {
  role: 'idle' | 'interest';
  connections: number;
  alive: number;
  subscriptions: number;
  unexpected: number; // messages received, which these connections should never get
  cpuUs: number;
}

export type Report = PubReport | SubReport | ReqReport | RepReport | IdleReport;

export type ChildMsg =
  | { type: 'ready' }
  | { type: 'probed'; conn: number }
  | { type: 'progress'; n: number }
  | { type: 'done' } // publisher/requester finished, or subscriber reached its expected count
  | { type: 'final'; report: Report }
  | { type: 'error'; message: string };
