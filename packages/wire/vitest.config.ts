import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: [
        'src/**/*.test.ts',
        'src/**/*.fuzz.ts',
        'src/**/*.test-util.ts',
        'src/testing/**',
        'src/bench/**',
      ],
      thresholds: { lines: 90 },
      reporter: ['text-summary'],
    },
  },
});
