// CLI entry: `node src/main.ts [flags]` (npm start). Thin: options in, server up, signals.
//
// Signals, as nats-server's (signal.go): SIGINT shuts down cleanly and exits 0, SIGTERM exits 1
// (and is ignored in lame duck mode); SIGHUP reloads the config file; SIGUSR1 reopens the log
// file; SIGUSR2 enters lame duck mode. None of them kills the server or opens Node's
// inspector, which SIGUSR1 does by default (an unauthenticated debugger on 127.0.0.1:9229:
// anyone on the host could run code in the server).
//
// Why not node's --disable-sigusr1: it leaves SIGUSR1 blocked in every thread, so the
// signal never reaches JavaScript and the log file could not be reopened. Instead the
// handlers below are installed when this module starts running: a JavaScript SIGUSR1 handler
// replaces the inspector's. A SIGUSR1 that arrives while node is still loading the modules
// may have started the inspector already: it is closed here, again once the server is
// ready, and on every SIGUSR1.

import inspector from 'node:inspector';
import { ConfigError } from './config/options.ts';
import { loadOptions } from './config/load.ts';
import { Server } from './server.ts';
import { configureLog, log } from './log.ts';
import { ReloadError } from './config/reload.ts';
import { sendSignal } from './config/signal.ts';

const argv = process.argv.slice(2);

function closeInspector(): void {
  if (inspector.url() === undefined) return;
  inspector.close();
  log.warn('Closed the Node.js inspector that a SIGUSR1 opened while skein was starting');
}

// First of all: the signals are ours. Until the server exists they are queued.
const OPERATION_SIGNALS = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;
let onSignal: ((sig: NodeJS.Signals) => void) | null = null;
const early: NodeJS.Signals[] = [];
for (const sig of OPERATION_SIGNALS) {
  process.on(sig, () => {
    if (sig === 'SIGUSR1') closeInspector();
    if (onSignal !== null) onSignal(sig);
    else early.push(sig);
  });
}
// Started by src/launcher.cjs: it queued the signals that came while the modules loaded.
const launcherSignals = (globalThis as Record<symbol, unknown>)[Symbol.for('skein.launcher.signals')] as
  { take(): NodeJS.Signals[] } | undefined;
if (launcherSignals !== undefined) early.push(...launcherSignals.take());
// Node may start the inspector for one early SIGUSR1 twice over (a V8 interrupt and a libuv
// async, whichever runs first): close it now, and keep checking until the server is ready.
closeInspector();
const inspectorGuard = setInterval(closeInspector, 20);
inspectorGuard.unref();

// How Go names the signals in nats-server's `Trapped "..." signal` debug line.
const GO_SIGNAL_NAMES: Partial<Record<NodeJS.Signals, string>> = {
  SIGINT: 'interrupt',
  SIGTERM: 'terminated',
  SIGHUP: 'hangup',
  SIGUSR1: 'user defined signal 1',
  SIGUSR2: 'user defined signal 2',
};

async function main(): Promise<void> {
  let result;
  try {
    result = await loadOptions(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`skein: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  switch (result.kind) {
    case 'help':
    case 'version':
      process.stdout.write(result.text.endsWith('\n') ? result.text : `${result.text}\n`);
      return;
    case 'check':
      process.stdout.write(`skein: configuration file ${result.options.configFile ?? '(none)'} is valid\n`);
      return;
    case 'signal': {
      const problem = sendSignal(result.command, result.pid);
      if (problem !== null) {
        process.stderr.write(`skein: ${problem}\n`);
        process.exit(1);
      }
      return;
    }
    case 'run':
      break;
  }
  const opts = result.options;
  try {
    configureLog(opts);
  } catch (err) {
    process.stderr.write(`skein: error opening file: ${(err as Error).message}\n`);
    process.exit(1);
  }
  for (const w of result.warnings) log.warn(w.message);
  // `skein --signal CMD` without a pid finds the server by this name (as nats-server uses pgrep).
  process.title = 'skein';
  const server = new Server(opts);
  let exiting = false;
  const stop = (code: number): void => {
    if (exiting) return;
    exiting = true;
    server.shutdown().then(
      () => process.exit(code),
      (err: Error) => {
        log.error(`shutdown failed: ${err.stack}`);
        process.exit(1);
      },
    );
  };
  const trapped = (sig: NodeJS.Signals): void => log.debug(`Trapped ${JSON.stringify(GO_SIGNAL_NAMES[sig] ?? sig)} signal`);

  process.on('SIGINT', () => {
    trapped('SIGINT');
    stop(0);
  });
  process.on('SIGTERM', () => {
    trapped('SIGTERM');
    // signal.go: a lame duck finishes its work; SIGINT still stops it at once.
    if (!server.inLameDuckMode) stop(1);
  });
  onSignal = (sig) => {
    trapped(sig);
    switch (sig) {
      case 'SIGHUP':
        void reload(server);
        break;
      case 'SIGUSR1':
        server.reopenLogFile();
        break;
      case 'SIGUSR2':
        void server.lameDuckMode().then((done) => {
          if (done) stop(0);
        });
        break;
      default:
        break;
    }
  };
  for (const sig of early.splice(0)) onSignal(sig);
  try {
    await server.start();
  } catch (err) {
    log.fatal(`Error starting server: ${(err as Error).message}`);
    process.exit(1);
  }
  clearInterval(inspectorGuard);
  closeInspector();
}

/** SIGHUP: read the config file again (flags over it) and apply what changed, or say why not. */
async function reload(server: Server): Promise<void> {
  if (server.opts.configFile === undefined) {
    log.error('Failed to reload server configuration: can only reload config when a file is provided using -c or --config');
    return;
  }
  try {
    const result = await loadOptions(argv);
    if (result.kind !== 'run') return;
    for (const w of result.warnings) log.warn(w.message);
    await server.reload(result.options);
  } catch (err) {
    if (!(err instanceof ConfigError) && !(err instanceof ReloadError)) throw err;
    log.error(`Failed to reload server configuration: ${err.message}`);
  }
}

await main();
