import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'jobs/**/*.test.ts', 'test/**/*.test.ts'],
    // Each file gets its own ClickHouse and PostgreSQL database and Redis stream, so files may run
    // in parallel; two at a time suits the 2-core machines this runs on.
    maxWorkers: 2,
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.data/vitest-results.json' }]],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
