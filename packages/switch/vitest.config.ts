import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // property tests of many runs: seconds when the other suites run beside them
    testTimeout: 30_000,
    coverage: { include: ['src/**/*.ts'], exclude: ['src/**/*.test.ts', 'src/**/*.fuzz.ts', 'src/bench/**'] },
  },
});
