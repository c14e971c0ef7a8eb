import type { Reporter, SerializedError, TestCase, TestModule, TestSuite } from 'vitest/node';
import { reapLeftovers, RUN_MARKER } from './orphans.js';

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  /** Why failures were counted that are not failed tests, one line each. */
  notes: string[];
}

/**
 * Counts the run. Failed: failed tests; tests that did not run though declared to (vitest reports those as
 * skipped when a `beforeAll` of theirs failed, or leaves them pending); each error of a module that failed with
 * no such test (a failing `afterAll`, a file that does not load); each unhandled error. Skipped: tests declared
 * `skip`/`todo` (also through `skipIf`/`runIf`, `-t` filters and `only` elsewhere, which vitest records as
 * `skip`), and tests that skip themselves with `ctx.skip()`.
 */
function tally(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): Tally {
  const result: Tally = { passed: 0, failed: 0, skipped: 0, notes: [] };
  for (const mod of modules) {
    let failed = 0;
    let notRun = 0;
    for (const test of mod.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') result.passed++;
      else if (state === 'failed') failed++;
      else if (state === 'pending' || stoppedByHook(test)) notRun++;
      else result.skipped++;
    }
    if (notRun > 0) result.notes.push(`${mod.relativeModuleId}: ${notRun} test(s) did not run`);
    failed += notRun;
    if (failed === 0 && mod.state() === 'failed') {
      const errors = [mod, ...mod.children.allSuites()].reduce((n, suite: TestModule | TestSuite) => n + suite.errors().length, 0);
      failed = Math.max(1, errors);
      result.notes.push(`${mod.relativeModuleId}: failed outside its tests (${errors} error(s))`);
    }
    result.failed += failed;
  }
  if (unhandledErrors.length > 0) {
    result.failed += unhandledErrors.length;
    result.notes.push(`${unhandledErrors.length} unhandled error(s)`);
  }
  return result;
}

/**
 * A skipped test that was declared to run, below a suite with errors of its own (a failed hook). `options.mode`
 * is the mode the test was collected with; the runner's switch to `skip` after a failed `beforeAll` is not
 * in it. A test that called `ctx.skip()` has no such suite.
 */
function stoppedByHook(test: TestCase): boolean {
  if (test.options.mode === 'skip' || test.options.mode === 'todo') return false;
  for (let suite: TestSuite | TestModule = test.parent; ; suite = suite.parent) {
    if (suite.errors().length > 0) return true;
    if (suite.type === 'module') return false;
  }
}

/**
 * Prints the plain `N passed, N failed[, N skipped]` line CI reads, as the last line, and makes the exit code
 * agree with it. Worker or manager processes the run left behind are one more failure (listing them all).
 */
export default class ClosingLineReporter implements Reporter {
  async onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): Promise<void> {
    const { passed, failed: counted, skipped, notes } = tally(testModules, unhandledErrors);
    let failed = counted;
    const runId = process.env[RUN_MARKER];
    const orphans = runId === undefined ? [] : await reapLeftovers(runId);
    if (orphans.length > 0) {
      failed++;
      notes.push(`processes left running after the tests (now killed):\n${orphans.map((o) => `    ${o}`).join('\n')}`);
    }
    // vitest may fail the run for a reason none of the above saw; the line must not say otherwise.
    if (failed === 0 && Number(process.exitCode ?? 0) !== 0) {
      failed++;
      notes.push(`vitest failed the run (exit code ${String(process.exitCode)})`);
    }
    if (failed > 0) process.exitCode = 1;
    if (notes.length > 0) process.stdout.write(`\nCounted as failed:\n${notes.map((n) => `  ${n}`).join('\n')}\n`);
    const tail = skipped > 0 ? `, ${skipped} skipped` : '';
    process.stdout.write(`\n${passed} passed, ${failed} failed${tail}\n`);
  }
}
