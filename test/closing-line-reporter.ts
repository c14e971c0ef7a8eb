import type { Reporter, TestModule } from 'vitest/node';
import { reapLeftovers, RUN_MARKER } from './orphans.js';

/**
 * Prints the plain `N passed, N failed[, N skipped]` line CI reads; a file that fails to load counts as
 * failed, and so do worker or manager processes the run left behind (one failure listing them all).
 */
export default class ClosingLineReporter implements Reporter {
  async onTestRunEnd(testModules: ReadonlyArray<TestModule>): Promise<void> {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      let cases = 0;
      for (const test of mod.children.allTests()) {
        cases++;
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (cases === 0 && mod.state() === 'failed') failed++;
    }
    const runId = process.env[RUN_MARKER];
    const orphans = runId === undefined ? [] : await reapLeftovers(runId);
    if (orphans.length > 0) {
      failed++;
      process.exitCode = 1;
      process.stdout.write(`\nFAIL: processes left running after the tests (now killed):\n${orphans.map((o) => `  ${o}`).join('\n')}\n`);
    }
    const tail = skipped > 0 ? `, ${skipped} skipped` : '';
    process.stdout.write(`\n${passed} passed, ${failed} failed${tail}\n`);
  }
}
