import { randomUUID } from 'node:crypto';
import { defineConfig } from 'vitest/config';
import { RUN_MARKER } from './test/orphans.js';

// Every process the tests start inherits this, so the closing reporter can find any left running.
process.env[RUN_MARKER] ??= randomUUID();

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests spawn real processes and bind real ports; two cores do not gain from more forks.
    maxWorkers: 2,
    reporters: ['default', './test/closing-line-reporter.ts'],
  },
});
