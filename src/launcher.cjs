#!/usr/bin/env node
// The `skein` command (package.json "bin", and `npm start`). It must run under ANY Node.js,
// because `#!/usr/bin/env node` picks whatever Node is first on PATH (often an old system
// one), so it is plain ES5-style CommonJS: no syntax or API newer than Node 4 outside the
// branches that only run on a suitable runtime.
//
// It starts src/main.ts with the Node.js runtime skein brings: the npm package `node`,
// installed beside skein (node_modules/node/bin/node, nested under skein or hoisted next to
// it, as `npm ci`, `npm install -g` and `npx` lay it out). When that runtime is missing (npm
// ci --ignore-scripts) a machine Node >= 24.21 will do; an older one is never used: one line
// says what to do and the exit code is 1.
//
// When the Node running this file is the one chosen, main.ts is imported in this process
// (no second process: signals and exit codes are the server's own). Otherwise main.ts runs
// in a child process: the signals nats-server acts on are forwarded to it, and its exit code
// (or the signal that ended it) becomes this process's.

'use strict';

var childProcess = require('child_process');
var fs = require('fs');
var path = require('path');

// Transferable sockets (a socket moved to a worker thread with postMessage) need 24.21.
var MIN_MAJOR = 24;
var MIN_MINOR = 21;
var MIN_TEXT = MIN_MAJOR + '.' + MIN_MINOR;
// The signals nats-server handles (stop, reload, reopen log, lame duck).
var FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];

var packageRoot = path.resolve(__dirname, '..');
var mainFile = path.join(packageRoot, 'src', 'main.ts');
// Node strips TypeScript types except under node_modules; an installed skein needs a hook.
var installed = realpath(packageRoot).split(path.sep).indexOf('node_modules') >= 0;
var hooksFile = path.join(packageRoot, 'src', 'node-modules-hooks.cjs');

function realpath(p) {
  try {
    return fs.realpathSync(p);
  } catch (e) {
    return p;
  }
}

function suitable(version) {
  var parts = String(version).replace(/^v/, '').split('.');
  var major = Number(parts[0]);
  var minor = Number(parts[1]);
  return major > MIN_MAJOR || (major === MIN_MAJOR && minor >= MIN_MINOR);
}

function isExecutableFile(file) {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants ? fs.constants.X_OK : 1);
    return true;
  } catch (e) {
    return false;
  }
}

/** The `node` package's binary in the nearest node_modules from skein's root up, or null. */
function bundledRuntime() {
  var dir = packageRoot;
  for (;;) {
    var pkgDir = path.join(dir, 'node_modules', 'node');
    var bin = path.join(pkgDir, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
    var version = null;
    try {
      version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
    } catch (e) {
      version = null;
    }
    // Without its install script (npm ci --ignore-scripts) the package has no bin/node.
    if (version !== null && suitable(version) && isExecutableFile(bin)) return bin;
    var parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function sameFile(a, b) {
  try {
    var sa = fs.statSync(a);
    var sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch (e) {
    return false;
  }
}

function fail(line) {
  process.stderr.write('skein: ' + line + '\n');
  process.exit(1);
}

/**
 * Node's compile cache (type-stripped, compiled modules kept on disk, in the OS temp directory
 * unless NODE_COMPILE_CACHE says otherwise; NODE_DISABLE_COMPILE_CACHE turns it off): enabled
 * before main.ts loads, the main thread never loads the type stripper (about 30 MB) once the
 * cache is warm, and the worker threads inherit it (src/server.ts).
 */
function compileCacheDir() {
  return process.env.NODE_COMPILE_CACHE || path.join(require('os').tmpdir(), 'node-compile-cache');
}

function runHere() {
  var mod = require('module');
  if (typeof mod.enableCompileCache === 'function') {
    var r = mod.enableCompileCache(compileCacheDir());
    if (r && r.directory) process.env.NODE_COMPILE_CACHE = r.directory;
  }
  // `new Function` keeps `import()` out of this file's syntax, so Node versions that cannot
  // parse it still reach the runtime check above instead of a SyntaxError.
  var load = new Function('u', 'return import(u)');
  var url = require('url').pathToFileURL(mainFile).href;
  load(url).catch(function (err) {
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write('\n');
    process.exit(1);
  });
}

function runChild(runtime) {
  var nodeArgs = installed ? ['--require', hooksFile] : [];
  var env = Object.assign({}, process.env);
  if (!env.NODE_COMPILE_CACHE && !env.NODE_DISABLE_COMPILE_CACHE) env.NODE_COMPILE_CACHE = compileCacheDir();
  var child = childProcess.spawn(runtime, nodeArgs.concat([mainFile], process.argv.slice(2)), { stdio: 'inherit', env: env });
  var exited = false;
  FORWARDED_SIGNALS.forEach(function (signal) {
    // A terminal's Ctrl-C reaches the child too (same process group); a second SIGINT is
    // harmless to the server, and a signal sent to this process alone must still reach it.
    process.on(signal, function () {
      if (!exited) {
        try { child.kill(signal); } catch (e) { /* already gone */ }
      }
    });
  });
  child.on('error', function (err) {
    fail('cannot start ' + runtime + ': ' + err.message);
  });
  child.on('exit', function (code, signal) {
    exited = true;
    if (signal) {
      // Die of the same signal, so a shell or supervisor sees what the server saw.
      process.removeAllListeners(signal);
      try { process.kill(process.pid, signal); } catch (e) { /* fall through */ }
      var numbers = require('os').constants.signals;
      process.exit(128 + (numbers[signal] || 0));
    }
    process.exit(code === null ? 1 : code);
  });
}

// In this process when it is the right runtime and no hook is needed (the hook must be
// preloaded so that worker threads get it too).
var bundled = bundledRuntime();
if (bundled !== null) {
  if (sameFile(bundled, process.execPath) && !installed) runHere();
  else runChild(bundled);
} else if (suitable(process.versions.node)) {
  if (installed) runChild(process.execPath);
  else runHere();
} else {
  fail('needs Node.js >= ' + MIN_TEXT + '; this is ' + process.version + ' (' + process.execPath + ') and the runtime ' +
    'skein brings (npm package "node") is missing (installed with --ignore-scripts?): run "npm rebuild node" in ' +
    packageRoot + ', or put Node.js >= ' + MIN_TEXT + ' first on PATH');
}
