import { defineConfig } from 'vitest/config';

// `npm run fuzz`: the *.fuzz.ts suites, each running FUZZ_RUNS cases per property (their own default
// otherwise) and printing how many ran.
export default defineConfig({
  test: {
    include: ['src/**/*.fuzz.ts'],
    testTimeout: 3_600_000,
    reporters: ['default'],
  },
});
