// Delivery checks: every message arrived, once, in order. A run that fails them is reported
// FAILED, whatever its speed.
//
// Publishers embed a sequence number (0, 1, 2, ... per publisher) in the first min(size, 4)
// payload bytes. A subscriber connection checks the numbers it sees:
//   - 'exact': it must see every message of one publisher, in order (1->1, fan-out, pairs).
//   - 'increasing': it sees a subset (a queue-group member), strictly increasing; the members'
//     bitsets are merged afterwards to prove that together they saw each message exactly once.
// Payloads shorter than 4 bytes carry the sequence modulo 2^(8 * size); 0-byte payloads carry
// none, so only the count is checked and the order is reported as unchecked.

export type CheckMode = 'exact' | 'increasing';

export interface CheckResult {
  ok: boolean;
  received: number;
  expected: number;
  orderChecked: boolean;
  misordered: number; // messages whose sequence number was not the one due
  firstProblem: string | null;
}

export class SeqChecker {
  readonly mode: CheckMode;
  readonly bits: number;
  received = 0;
  misordered = 0;
  firstProblem: string | null = null;
  private readonly mask: number;
  private last = -1;
  readonly seen: Uint8Array | null;

  // `bits`: sequence bits per payload (see seqBits); `total`: messages the publisher sends,
  // needed by 'increasing' mode for its bitset.
  constructor(mode: CheckMode, bits: number, total = 0) {
    this.mode = mode;
    this.bits = bits;
    this.mask = bits >= 32 ? 0xffffffff : bits === 0 ? 0 : 2 ** bits - 1;
    this.seen = mode === 'increasing' && bits >= 32 ? new Uint8Array(Math.ceil(total / 8)) : null;
  }

  push(seq: number): void {
    const n = this.received++;
    if (this.bits === 0) return;
    if (this.mode === 'exact') {
      const due = (n & this.mask) >>> 0;
      if (seq !== due) {
        if (this.misordered++ === 0) this.firstProblem = `message #${n} carried sequence ${seq}, expected ${due}`;
      }
      return;
    }
    if (seq <= this.last) {
      if (this.misordered++ === 0) this.firstProblem = `message #${n} carried sequence ${seq} after ${this.last}`;
    }
    this.last = seq;
    const seen = this.seen;
    if (seen !== null && seq >>> 3 < seen.length) seen[seq >>> 3] |= 1 << (seq & 7);
  }

  // The verdict for a connection that should have received `expected` messages
  // ('increasing' mode: pass -1, the group total is checked by mergeGroup).
  result(expected: number): CheckResult {
    let firstProblem = this.firstProblem;
    let ok = this.misordered === 0;
    if (expected >= 0 && this.received !== expected) {
      ok = false;
      const diff = this.received < expected ? `${expected - this.received} lost` : `${this.received - expected} extra`;
      firstProblem = `received ${this.received} of ${expected} (${diff})` + (firstProblem ? `; ${firstProblem}` : '');
    }
    return {
      ok,
      received: this.received,
      expected,
      orderChecked: this.bits > 0,
      misordered: this.misordered,
      firstProblem,
    };
  }
}

// Checks that queue-group members together received each of `total` messages exactly once.
// `seen` are the members' bitsets (null when the payload was too small to carry sequences).
export function mergeGroup(received: number[], seen: (Uint8Array | null)[], total: number): CheckResult {
  const sum = received.reduce((a, b) => a + b, 0);
  let problem: string | null = null;
  if (sum !== total) {
    problem = `group received ${sum} of ${total} (${sum < total ? `${total - sum} lost` : `${sum - total} extra`})`;
  }
  const bitsets = seen.filter((s): s is Uint8Array => s !== null);
  if (problem === null && bitsets.length === seen.length && bitsets.length > 0) {
    const union = new Uint8Array(Math.ceil(total / 8));
    let overlap = 0;
    for (const s of bitsets) {
      for (let k = 0; k < union.length; k++) {
        overlap += popcount(union[k] & s[k]);
        union[k] |= s[k];
      }
    }
    let covered = 0;
    for (let k = 0; k < union.length; k++) covered += popcount(union[k]);
    if (overlap > 0 || covered !== total) {
      problem = `group saw ${covered} distinct of ${total} sequences, ${overlap} delivered to more than one member`;
    }
  }
  return {
    ok: problem === null,
    received: sum,
    expected: total,
    orderChecked: bitsets.length === seen.length && bitsets.length > 0,
    misordered: 0,
    firstProblem: problem,
  };
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55;
  x = (x & 0x33) + ((x >>> 2) & 0x33);
  return (x + (x >>> 4)) & 0x0f;
}
