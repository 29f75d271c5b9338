import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // the tests change the kernel of namespaces they create: one file at a time
    fileParallelism: false,
  },
});
