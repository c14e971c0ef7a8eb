/**
 * `npm run bench -- [--quick] [--json FILE] [--cmd TEMPLATE] [--vs TEMPLATE] [--python PATH] [--sizes JSON]`:
 * the Markdown table goes to stdout, progress to stderr. Built into dist/bench/bench.js.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupAll, FULL_SIZES, QUICK_SIZES, runBench, type BenchSizes } from './harness.js';
import { formatMarkdown } from './report.js';

// dist/bench/bench.js → the repository root.
const root = fileURLToPath(new URL('../../', import.meta.url));
const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

const DEFAULT_TEMPLATE = `${quote(process.execPath)} ${quote(`${root}dist/main/cli.js`)} startworkermanager --host 127.0.0.1 --port {port} --dir {dir}`;

const USAGE = `Usage: npm run bench -- [--quick] [--json FILE] [--cmd TEMPLATE] [--vs TEMPLATE] [--python PATH] [--sizes JSON]
  --cmd     the manager to measure (default: this one, ${DEFAULT_TEMPLATE})
  --vs      a second manager, measured in the same run; the table gets its columns and the ratios
            Templates are split like shell words; {port} and {dir} (the FuncNodes config dir) are filled in.
  --quick   fewer repetitions and 10 s idle windows (under two minutes per manager)
  --json    also write every sample and summary to FILE
  --python  worker interpreter (default: the stand-in, test/standin/python)
  --sizes   JSON overriding sizes, e.g. '{"clients":10,"statusSizes":[0,100]}'`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      json: { type: 'string' },
      cmd: { type: 'string' },
      vs: { type: 'string' },
      python: { type: 'string' },
      sizes: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(`${USAGE}\n`);
  const sizes: BenchSizes = { ...(values.quick ? QUICK_SIZES : FULL_SIZES), ...(values.sizes ? (JSON.parse(values.sizes) as Partial<BenchSizes>) : {}) };
  const managers = [{ label: 'A', template: values.cmd ?? DEFAULT_TEMPLATE }];
  if (values.vs) managers.push({ label: 'B', template: values.vs });
  const report = await runBench({
    managers,
    python: values.python ?? `${root}test/standin/python`,
    sizes,
    log: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
  });
  process.stdout.write(formatMarkdown(report));
  if (values.json) await writeFile(values.json, `${JSON.stringify(report, null, 2)}\n`);
}

// Ctrl-C or a kill: end every manager and worker of this run before going.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanupAll();
    process.exit(130);
  });
}

try {
  await main();
} catch (err) {
  cleanupAll();
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
}
