import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // property tests of many runs: seconds when the other suites run beside them
    testTimeout: 30_000,
    // `npm run coverage`; not part of `test`: under V8's coverage instrumentation the allocation test
    // (decide-allocation.test.ts) measures the instrumentation's own allocations (≈ 4 bytes per packet)
    coverage: { include: ['src/**/*.ts'], exclude: ['src/**/*.test.ts', 'src/**/*.fuzz.ts', 'src/bench/**'] },
  },
});
