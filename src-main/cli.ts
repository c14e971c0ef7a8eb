#!/usr/bin/env node
/** `fnwm`: the headless Workermanager and its command-line client. */
import { fileURLToPath } from 'node:url';
import { runCli } from './cli/commands.js';
import { CliError } from './cli/io.js';

// `fnwm worker list | head`: a reader that stops early ends the command quietly, as SIGPIPE would; a
// manager in the foreground (it logs to stderr) keeps running and stops its workers as usual.
const isManager = process.argv.includes('startworkermanager');
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  if (!isManager) process.exit(process.exitCode ?? 0);
});

const io = {
  out: (line: string) => process.stdout.write(`${line}\n`),
  err: (line: string) => process.stderr.write(`${line}\n`),
  cliScript: fileURLToPath(import.meta.url),
  env: process.env,
};

/** After the manager has stopped, the process ends by itself at once; this is only for a handle left open. */
const FORCED_EXIT_MS = 5000;

try {
  process.exitCode = await runCli(process.argv.slice(2), io);
  if (isManager) {
    setTimeout(() => {
      io.err(`fnwm: the Workermanager stopped but something still held the process ${FORCED_EXIT_MS} ms later; exiting`);
      process.exit();
    }, FORCED_EXIT_MS).unref();
  }
} catch (err) {
  const known = err instanceof CliError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  // Node's argument errors run over several lines; the first says what is wrong.
  const message = known ? ((err as Error).message.split('\n')[0] ?? '') : ((err as Error).stack ?? String(err));
  io.err(`fnwm: ${message}`);
  process.exitCode = 1;
}
