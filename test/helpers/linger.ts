// Loaded by ava (package.json "require") in every test file's process before its tests. When the
// file's tests are done, the process should end by itself; if a timer, socket or child that a
// test started keeps it alive, ava would wait for its inactivity timeout and fail the run
// without naming a test. This names the file's leftovers and ends the process instead, which
// ava reports as the file exiting with a non-zero code.

import { registerCompletionHandler } from 'ava';

const GRACE_MS = 10_000;

registerCompletionHandler(() => {
  setTimeout(() => {
    const left = process.getActiveResourcesInfo(); // refed ones: not this timer
    process.stderr.write(
      `test file still running ${GRACE_MS / 1000} s after its tests ended; open (stdio pipes included): ${left.join(', ')}\n`,
    );
    process.exit(1);
  }, GRACE_MS).unref();
});
