// Preloaded (`node --require`) by src/launcher.cjs when skein itself is installed under a
// node_modules folder (npm install -g, npx, a dependency): Node.js strips TypeScript types
// everywhere except there (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), so this load hook
// strips the types of skein's own .ts files and nothing else. Worker threads inherit the
// --require, so the hook is registered in every thread. Runs on Node >= 24.21 only.

'use strict';

const { registerHooks } = require('node:module');
const { readFileSync, realpathSync } = require('node:fs');
const path = require('node:path');
const { fileURLToPath, pathToFileURL } = require('node:url');
const { stripQuietly } = require('./strip-types.cjs');

const skeinRoot = pathToFileURL(realpathSync(path.resolve(__dirname, '..')) + path.sep).href;

registerHooks({
  load(url, context, nextLoad) {
    if (!url.startsWith(skeinRoot) || !url.endsWith('.ts')) return nextLoad(url, context);
    return { format: 'module', source: stripQuietly(readFileSync(fileURLToPath(url), 'utf8')), shortCircuit: true };
  },
});
