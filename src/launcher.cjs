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
// (no second process: signals and exit codes are the server's own). Otherwise this file runs
// again in a child process on the chosen runtime and imports main.ts there: the signals
// nats-server acts on are forwarded to it (held until it says it handles them), and its exit
// code (or the signal that ended it) becomes this process's.

'use strict';

// From this file's first line, the operation signals are ours. Until the server's own handlers
// take over (src/main.ts, in this process or in the child) they are queued: by default
// SIGHUP and SIGUSR2 would kill the process without a word, and SIGUSR1 would open Node's
// inspector (an unauthenticated debugger on 127.0.0.1:9229) for the process's whole life.
var OPERATION_SIGNALS = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'];
var earlySignals = [];
var onOperationSignal = function (signal) {
  earlySignals.push(signal);
};
OPERATION_SIGNALS.forEach(function (signal) {
  process.on(signal, function () {
    if (signal === 'SIGUSR1') closeInspector();
    onOperationSignal(signal);
  });
});
// A SIGUSR1 that came while node was still starting (before the line above) may have opened
// the inspector: close it now and for a while (node opens it asynchronously), as main.ts does.
closeInspector();
var inspectorGuard = setInterval(closeInspector, 20);
if (inspectorGuard.unref) inspectorGuard.unref();
setTimeout(function () {
  clearInterval(inspectorGuard);
}, 10000).unref();

function closeInspector() {
  var inspector;
  try {
    inspector = require('inspector');
  } catch (e) {
    return;
  }
  if (typeof inspector.url !== 'function' || inspector.url() === undefined) return;
  inspector.close();
  process.stderr.write('skein: closed the Node.js inspector that a SIGUSR1 opened while skein was starting\n');
}

// Started by a launcher in another process (runChild): say when the signals are handled, so
// that it forwards the ones it holds.
var launchedChild = process.env.SKEIN_LAUNCHER_CHILD === '1';
delete process.env.SKEIN_LAUNCHER_CHILD;
if (launchedChild && typeof process.send === 'function') {
  process.send('skein:signals-handled', function () {
    process.disconnect();
  });
}

var childProcess = require('child_process');
var fs = require('fs');
var path = require('path');

// Transferable sockets (a socket moved to a worker thread with postMessage) need 24.21.
var MIN_MAJOR = 24;
var MIN_MINOR = 21;
var MIN_TEXT = MIN_MAJOR + '.' + MIN_MINOR;

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
  // main.ts takes the queued signals over once its handlers are installed.
  global[Symbol.for('skein.launcher.signals')] = {
    take: function () {
      onOperationSignal = function () {}; // main.ts's own handlers act from now on
      return earlySignals.splice(0);
    },
  };
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
  // The child runs this file too, so that it queues the operation signals from its first
  // line; it says so over IPC, and until then the ones that come here are held, not sent
  // to a node still starting up (which would die of SIGHUP or open its inspector on SIGUSR1).
  env.SKEIN_LAUNCHER_CHILD = '1';
  var child = childProcess.spawn(runtime, nodeArgs.concat([__filename], process.argv.slice(2)), {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: env,
  });
  var exited = false;
  var childHandles = false;
  var forward = function (signal) {
    if (exited) return;
    try {
      child.kill(signal);
    } catch (e) {
      /* already gone */
    }
  };
  child.on('message', function (m) {
    if (m !== 'skein:signals-handled' || childHandles) return;
    childHandles = true;
    earlySignals.splice(0).forEach(forward);
  });
  child.on('disconnect', function () {
    // The child never said (an older skein, or it exited): hand over what is held anyway.
    if (!childHandles) {
      childHandles = true;
      earlySignals.splice(0).forEach(forward);
    }
  });
  onOperationSignal = function (signal) {
    if (childHandles) forward(signal);
    else earlySignals.push(signal);
  };
  // A terminal's Ctrl-C reaches the child too (same process group); a second SIGINT is
  // harmless to the server, and a signal sent to this process alone must still reach it.
  // Stopping needs no hand-over: a child still starting dies of it, as it should.
  ['SIGINT', 'SIGTERM'].forEach(function (signal) {
    process.on(signal, function () {
      forward(signal);
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
      try {
        process.kill(process.pid, signal);
      } catch (e) {
        /* fall through */
      }
      var numbers = require('os').constants.signals;
      process.exit(128 + (numbers[signal] || 0));
    }
    process.exit(code === null ? 1 : code);
  });
}

// In this process when it is the right runtime and no hook is needed (the hook must be
// preloaded so that worker threads get it too).
var bundled = launchedChild ? null : bundledRuntime();
if (launchedChild) {
  runHere(); // the parent launcher chose this runtime and preloaded the hook if needed
} else if (bundled !== null) {
  if (sameFile(bundled, process.execPath) && !installed) runHere();
  else runChild(bundled);
} else if (suitable(process.versions.node)) {
  if (installed) runChild(process.execPath);
  else runHere();
} else {
  fail(
    'needs Node.js >= ' +
      MIN_TEXT +
      '; this is ' +
      process.version +
      ' (' +
      process.execPath +
      ') and the runtime ' +
      'skein brings (npm package "node") is missing (installed with --ignore-scripts?): run "npm rebuild node" in ' +
      packageRoot +
      ', or put Node.js >= ' +
      MIN_TEXT +
      ' first on PATH',
  );
}
