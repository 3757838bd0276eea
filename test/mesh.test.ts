// The shared layout on one thread: inboxes, staging and commits driven by hand (every endpoint
// lives in this test's thread; Atomics work the same within one thread).

import test from 'ava';
import { createLayout, inboxCapacity, openInbox } from '../src/threads/shared.ts';
import { Mesh, type MeshHandler } from '../src/threads/mesh.ts';

/** A handler that keeps every record it is given (copied), with its producer. */
function collector(): MeshHandler & { got: { from: number; body: Buffer }[] } {
  const got: { from: number; body: Buffer }[] = [];
  return {
    got,
    onRecord(from, data, _view, off, len) {
      got.push({ from, body: Buffer.from(data.subarray(off, off + len)) });
    },
    onInterest() {},
    afterDrain() {},
    onSpace() {},
  };
}

/** Stage one record of `body` from `m` to thread `t`. */
function send(m: Mesh, t: number, body: Buffer): void {
  const o = m.reserve(t, body.length);
  body.copy(m.dst, o);
  m.full = false;
}

test('records of any size cross in order, from several producers at once, larger ones in pieces', (t) => {
  const layout = createLayout(3, 4096);
  const consumer = new Mesh(layout, 0, false);
  const a = new Mesh(layout, 1, false);
  const b = new Mesh(layout, 2, false);
  const h = collector();
  consumer.bind(h);
  a.bind(collector());
  b.bind(collector());
  // Sizes around the block size (a quarter of the inbox) and well past it.
  const block = inboxCapacity(3) / 4;
  const sizes = [1, 100, block - 100, block, block + 1, 3 * block + 7, 16, 0];
  const sent: { from: number; body: Buffer }[] = [];
  sizes.forEach((size, i) => {
    for (const [m, from] of [
      [a, 1],
      [b, 2],
    ] as const) {
      const body = Buffer.alloc(size, (i * 7 + from) & 0xff);
      send(m, 0, body);
      sent.push({ from, body });
    }
    a.flush();
    b.flush();
    // Take everything; producers left with records waiting for space commit them when polled.
    for (let k = 0; k < 100 && (a.hasBacklog || b.hasBacklog || consumer.drainPending()); k++) {
      while (consumer.drainPending()) {
        /* */
      }
      a.poll();
      b.poll();
    }
  });
  t.is(h.got.length, sent.length);
  for (const from of [1, 2]) {
    const mine = h.got.filter((r) => r.from === from).map((r) => r.body);
    const want = sent.filter((r) => r.from === from).map((r) => r.body);
    t.deepEqual(
      mine.map((x) => x.length),
      want.map((x) => x.length),
      `producer ${from}: sizes in order`,
    );
    t.true(
      mine.every((x, i) => x.equals(want[i])),
      `producer ${from}: bytes intact`,
    );
  }
});

test('a producer out of inbox space keeps its records in order and is rung when the consumer frees space', (t) => {
  const layout = createLayout(2, 4096);
  const consumer = new Mesh(layout, 0, false);
  const producer = new Mesh(layout, 1, false);
  const h = collector();
  consumer.bind(h);
  let spaced = 0;
  producer.bind({
    ...collector(),
    onSpace: () => {
      spaced++;
    },
  });
  // Twice what the inbox holds, in 64 KiB records, committed at once.
  const n = Math.ceil((2 * inboxCapacity(2)) / 65536);
  for (let i = 0; i < n; i++) send(producer, 0, Buffer.alloc(65536 - 4, i & 0xff));
  producer.mark();
  producer.flush();
  t.true(producer.hasBacklog, 'some records wait for space');
  // The producer registered as a waiter for space (looked at before the consumer, which would
  // take the registration to ring it).
  const waiters: number[] = [];
  openInbox(layout, 0).takeWaiters((p) => waiters.push(p));
  t.deepEqual(waiters, [1]);
  // Each poll of the producer moves more in; each drain frees space; in the end all arrive, in order.
  for (let k = 0; k < 100 && h.got.length < n; k++) {
    producer.poll();
    while (consumer.drainPending()) {
      /* */
    }
  }
  t.is(h.got.length, n);
  t.true(
    h.got.every((r, i) => r.body[0] === (i & 0xff)),
    'in order',
  );
  t.false(producer.hasBacklog);
  t.true(spaced >= 1, 'onSpace once the backlog is gone');
});

test('a staging buffer dropped after a burst is not mistaken for a blocked destination', (t) => {
  // Thread 1 stages to 0 (its inbox filled up, nobody drains it) and to 2 (a burst larger than
  // the staging buffers kept, fully committed and then dropped) in the same read.
  const layout = createLayout(3, 4096);
  const m = new Mesh(layout, 1, false);
  m.bind(collector());
  // Threads 0 and 2 are alive (their endpoints exist) but never drain.
  void new Mesh(layout, 0, false);
  void new Mesh(layout, 2, false);
  m.mark();
  for (let i = 0; i < Math.ceil((2 * inboxCapacity(3)) / 65536); i++) send(m, 0, Buffer.alloc(65000));
  m.flush();
  t.true(m.hasBacklog);
  m.mark();
  send(m, 2, Buffer.alloc(2 * 1024 * 1024));
  m.flush();
  t.false(m.blockedSinceMark(), 'what went to thread 2 is committed');
});

test('an interest change wakes the route thread, not every worker, until the log needs its readers', (t) => {
  // Threads 0 and 1 are workers, 2 the route thread; all three "sleep" (their doorbells say so).
  const layout = createLayout(2, 4096, { route: true });
  const bells = new Int32Array(layout.doorbells);
  const seq = (th: number): number => Atomics.load(bells, th * 2);
  for (let th = 0; th < 3; th++) Atomics.store(bells, th * 2 + 1, 1);
  const m = new Mesh(layout, 1, false);
  m.bind(collector());
  m.publishInterest('some.subject', null, 1);
  m.flush();
  t.is(seq(0), 0, 'the other worker slept on');
  t.is(seq(2), 1, 'the route thread was rung');
  // Nobody reads: once more than half of the log waits for its readers, all are rung.
  const before = seq(0);
  for (let i = 0; i < layout.logCapacity / 64 && seq(0) === before; i++) {
    m.publishInterest(`s.${'x'.repeat(32)}.${i}`, null, 1);
    m.flush();
  }
  t.true(seq(0) > before, 'workers rung when the log fills up');
});
