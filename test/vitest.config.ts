import { defineConfig } from 'vitest/config';

// One lab at a time: each suite builds a whole cluster of namespaces, and the machine has two cores.
export default defineConfig({
  test: {
    include: ['src/**/*.e2e.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
