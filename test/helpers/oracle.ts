// Differential testing: run the same raw exchange against nats-server 2.9.10 (the reference)
// and the implementation under test, and compare the normalized transcripts byte for byte.

import { exchange, type ExchangeOptions, type Step, type Transcript } from './raw.ts';
import { startServer, testImpl, type ConfigText, type ServerHandle } from './server.ts';

export interface ServerSetup {
  config?: ConfigText;
  args?: string[];
  readiness?: 'connect' | 'log';
}

export interface Pair {
  ref: ServerHandle;
  sut: ServerHandle;
  stop(): Promise<void>;
}

/** Starts nats-server (the reference) and the implementation under test with the same setup. */
export async function startPair(setup: ServerSetup = {}): Promise<Pair> {
  const started = await Promise.allSettled([startServer({ impl: 'nats-server', ...setup }), startServer({ impl: testImpl(), ...setup })]);
  const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(ok.map((s) => s.stop()));
    throw failed.reason;
  }
  const [ref, sut] = ok;
  return {
    ref,
    sut,
    stop: async () => {
      await Promise.all([ref.stop(), sut.stop()]);
    },
  };
}

export interface Compared {
  ref: Transcript;
  sut: Transcript;
}

/** Runs the script against both servers of the pair (concurrently; they are independent). */
export async function runOnPair(pair: Pair, script: Step[], opts: ExchangeOptions = {}): Promise<Compared> {
  const [ref, sut] = await Promise.all([exchange(pair.ref.port, script, opts), exchange(pair.sut.port, script, opts)]);
  return { ref, sut };
}

/**
 * Checks that each expected fragment occurs in the transcript text, in the given order.
 * Returns a description of the first one missing, or undefined. Fragments are matched
 * against the rendered text, where CR and LF show as `\r` and `\n`.
 */
export function missingInOrder(text: string, fragments: string[]): string | undefined {
  let from = 0;
  for (const f of fragments) {
    const i = text.indexOf(f, from);
    if (i < 0) return f;
    from = i + f.length;
  }
  return undefined;
}
