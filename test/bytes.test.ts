// The word-wise copy and compare of the hot path (src/protocol/bytes.ts putDV, sameBytesDV):
// every length up to past the native-copy threshold, at every alignment of source and
// destination, with random bytes (every bit pattern a word can hold, not only text), first
// while the functions are cold and then again after thousands of calls have had them
// optimized, since optimized code reads 8-byte words differently.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { putDV, sameBytesDV, viewOf } from '../src/protocol/bytes.ts';

const MAX_LEN = 300;

test('putDV copies exactly the bytes asked for, at any length and alignment', (t) => {
  t.timeout(60_000);
  const src = randomBytes(MAX_LEN + 16);
  const sv = viewOf(src);
  const dst = Buffer.alloc(MAX_LEN + 32);
  const dv = viewOf(dst);
  let copies = 0;
  for (let pass = 0; pass < 4; pass++) {
    for (let len = 0; len <= MAX_LEN; len++) {
      for (let s = 0; s < 8; s++) {
        for (let o = 0; o < 8; o++) {
          dst.fill(0xa5);
          const end = putDV(dv, o, sv, s, s + len);
          copies++;
          if (end !== o + len) return t.fail(`length ${len} from ${s} to ${o}: returned ${end}`);
          if (!dst.subarray(o, o + len).equals(src.subarray(s, s + len)))
            return t.fail(`length ${len} from ${s} to ${o}: the copy differs (pass ${pass})`);
          // Nothing before or after the copy was touched.
          for (let i = 0; i < o; i++) if (dst[i] !== 0xa5) return t.fail(`length ${len} from ${s} to ${o}: byte ${i} before it changed`);
          for (let i = o + len; i < dst.length; i++)
            if (dst[i] !== 0xa5) return t.fail(`length ${len} from ${s} to ${o}: byte ${i} after it changed`);
        }
      }
    }
  }
  t.is(copies, 4 * (MAX_LEN + 1) * 64);
});

test('sameBytesDV finds a difference in any byte, at any length and alignment', (t) => {
  t.timeout(60_000);
  let compares = 0;
  for (let pass = 0; pass < 3; pass++) {
    for (let len = 0; len <= 100; len++) {
      const key = randomBytes(len);
      const kv = viewOf(key);
      for (let s = 0; s < 8; s++) {
        const hay = randomBytes(len + 16);
        key.copy(hay, s);
        const hv = viewOf(hay);
        compares++;
        if (!sameBytesDV(kv, hv, s, s + len)) return t.fail(`length ${len} at ${s}: equal bytes compared unequal`);
        // A shorter or longer range is never the same.
        if (len > 0 && sameBytesDV(kv, hv, s, s + len - 1)) return t.fail(`length ${len} at ${s}: a shorter range compared equal`);
        if (sameBytesDV(kv, hv, s, s + len + 1)) return t.fail(`length ${len} at ${s}: a longer range compared equal`);
        for (let i = 0; i < len; i++) {
          // Flip one bit of byte i (the highest and the lowest in turn).
          const bit = i % 2 === 0 ? 0x80 : 0x01;
          hay[s + i] ^= bit;
          const same = sameBytesDV(kv, hv, s, s + len);
          hay[s + i] ^= bit;
          compares++;
          if (same) return t.fail(`length ${len} at ${s}: a change in byte ${i} went unseen (pass ${pass})`);
        }
      }
    }
  }
  t.true(compares > 3 * 8 * 5000);
});
