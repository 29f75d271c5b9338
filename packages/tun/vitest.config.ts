import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // real TUN devices, namespaces and worker threads: seconds when the other suites run beside them
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
