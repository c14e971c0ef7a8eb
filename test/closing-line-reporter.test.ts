/**
 * The closing `N passed, N failed` line, tested on small fixture files (test/fixtures/closing-line/, outside
 * the main run's include pattern), each run by a child vitest with only the closing reporter: the line must be
 * the last one and the exit code must agree with it.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { reapLeftovers, RUN_MARKER } from './orphans.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const CONFIG = path.join(ROOT, 'test', 'fixtures', 'closing-line', 'vitest.config.ts');

interface ChildRun {
  stdout: string;
  lastLine: string;
  code: number;
  runId: string;
}

function runFixture(fixture: string, env: Record<string, string> = {}): Promise<ChildRun> {
  // A run id of its own: the child's orphan check must only ever see (and kill) the child's processes.
  const runId = randomUUID();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [VITEST, 'run', '--config', CONFIG],
      { cwd: ROOT, env: { ...process.env, ...env, FNWM_FIXTURE: fixture, [RUN_MARKER]: runId }, maxBuffer: 16 << 20 },
      (err, stdout) => {
        const lines = stdout.trimEnd().split('\n');
        resolve({ stdout, lastLine: lines[lines.length - 1] ?? '', code: err ? Number(err.code) : 0, runId });
      },
    );
  });
}

describe.concurrent('closing line', () => {
  // [fixture, closing line, exit code, the note that says why, where a failure is not a failed test]
  it.each([
    ['passing.fixture.ts', '2 passed, 0 failed', 0, undefined],
    ['failing-test.fixture.ts', '1 passed, 1 failed', 1, undefined],
    ['before-all-throws.fixture.ts', '0 passed, 2 failed', 1, 'before-all-throws.fixture.ts: 2 test(s) did not run'],
    ['nested-before-all-throws.fixture.ts', '1 passed, 1 failed', 1, 'nested-before-all-throws.fixture.ts: 1 test(s) did not run'],
    ['after-all-throws.fixture.ts', '2 passed, 1 failed', 1, 'after-all-throws.fixture.ts: failed outside its tests (1 error(s))'],
    ['unhandled-rejection.fixture.ts', '1 passed, 1 failed', 1, '1 unhandled error(s)'],
    ['does-not-load.fixture.ts', '0 passed, 1 failed', 1, 'does-not-load.fixture.ts: failed outside its tests (1 error(s))'],
    ['no-tests.fixture.ts', '0 passed, 2 failed', 1, 'no-tests.fixture.ts: failed outside its tests (2 error(s))'],
    ['skipped.fixture.ts', '1 passed, 0 failed, 3 skipped', 0, undefined],
    ['todo.fixture.ts', '1 passed, 0 failed, 1 skipped', 0, undefined],
  ])('%s ends with "%s" and exit code %i', async (fixture, line, code, note) => {
    const run = await runFixture(fixture);
    expect({ lastLine: run.lastLine, code: run.code }, run.stdout).toEqual({ lastLine: line, code });
    if (note === undefined) expect(run.stdout).not.toContain('Counted as failed');
    else expect(run.stdout).toContain(`Counted as failed:\n  ${note}\n`);
  });

  it('a process left running is one more failure, listed and killed', async () => {
    const run = await runFixture('leaves-a-process.fixture.ts');
    expect({ lastLine: run.lastLine, code: run.code }, run.stdout).toEqual({ lastLine: '1 passed, 1 failed', code: 1 });
    expect(run.stdout).toMatch(/processes left running after the tests \(now killed\):\n +\d+ .*dist\/main\/cli\.js/);
    expect(await reapLeftovers(run.runId, 0)).toEqual([]);
  });

  it('a run that vitest failed for another reason never ends with 0 failed', async () => {
    const run = await runFixture('passing.fixture.ts', { FNWM_FIXTURE_FAIL_RUN: '1' });
    expect({ lastLine: run.lastLine, code: run.code }, run.stdout).toEqual({ lastLine: '2 passed, 1 failed', code: 1 });
  });
});
