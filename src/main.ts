// CLI entry: `node src/main.ts [flags]` (npm start). Thin: options in, server up, signals.

import { loadOptions, ConfigError } from './options.ts';
import { Server } from './server.ts';
import { setLogLevels, log } from './log.ts';

async function main(): Promise<void> {
  let result;
  try {
    result = await loadOptions(process.argv.slice(2));
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
    case 'run':
      break;
  }
  const opts = result.options;
  setLogLevels(opts.debug, opts.trace);
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
  // As nats-server: SIGINT exits 0, SIGTERM exits 1.
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(1));
  if (process.env.SKEIN_FAULT_INJECTION === '1') process.on('SIGUSR2', () => server.crashRouteThread());
  try {
    await server.start();
  } catch (err) {
    log.fatal(`Error starting server: ${(err as Error).message}`);
    process.exit(1);
  }
}

await main();
