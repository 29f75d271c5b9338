import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // real nft, tc and bpftool runs: seconds when the other suites run beside them
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // the tests change the kernel of namespaces they create: one file at a time
    fileParallelism: false,
  },
});
