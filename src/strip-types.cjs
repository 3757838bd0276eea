// Node's TypeScript type stripper without its warning. stripTypeScriptTypes warns that it is
// experimental on each thread's first call; an operator can do nothing with that line (the
// same stripping runs silently for a checkout). Used by node-modules-hooks.cjs (CommonJS, run
// by --require) and src/threads/sources.ts.

'use strict';

const { stripTypeScriptTypes } = require('node:module');

/** The source with its types blanked out (line and column numbers unchanged). */
function stripQuietly(source) {
  const own = Object.getOwnPropertyDescriptor(process, 'emitWarning');
  process.emitWarning = () => {};
  try {
    return stripTypeScriptTypes(source);
  } finally {
    if (own !== undefined) Object.defineProperty(process, 'emitWarning', own);
    else delete process.emitWarning;
  }
}

module.exports = { stripQuietly, canStrip: typeof stripTypeScriptTypes === 'function' };
