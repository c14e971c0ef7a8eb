#!/usr/bin/env node
/** `fnwm`: the headless Workermanager and its command-line client. */
import { fileURLToPath } from 'node:url';
import { CliError, runCli } from './cli/commands.js';

const io = {
  out: (line: string) => process.stdout.write(`${line}\n`),
  err: (line: string) => process.stderr.write(`${line}\n`),
  cliScript: fileURLToPath(import.meta.url),
  env: process.env,
};

try {
  process.exitCode = await runCli(process.argv.slice(2), io);
} catch (err) {
  const known = err instanceof CliError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  // Node's argument errors run over several lines; the first says what is wrong.
  const message = known ? ((err as Error).message.split('\n')[0] ?? '') : ((err as Error).stack ?? String(err));
  io.err(`fnwm: ${message}`);
  process.exitCode = 1;
}
