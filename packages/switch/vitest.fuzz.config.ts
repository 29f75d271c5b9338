import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['src/**/*.fuzz.ts'], testTimeout: 1_800_000 },
});
