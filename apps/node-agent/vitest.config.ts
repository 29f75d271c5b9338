import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Suites build namespaces and start processes; one file at a time keeps 2 shared cores usable.
    fileParallelism: false,
  },
});
