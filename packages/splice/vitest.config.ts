import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // property tests of many runs: seconds when the other suites run beside them
    testTimeout: 30_000,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts', 'src/**/*.fuzz.ts', 'src/index.ts', 'src/testing/**'],
      thresholds: { lines: 90 },
      reporter: ['text-summary'],
    },
  },
});
