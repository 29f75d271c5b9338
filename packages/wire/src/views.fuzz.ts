import fc from 'fast-check';
import { describe, it } from 'vitest';
import { checkEveryView, checkSummary, mutatedGolden, randomInput } from './testing/view-properties.js';

// `npm run fuzz`: the view properties at ≥ 10M cases in all (FUZZ_RUNS per property overrides).
const perProperty = Number(process.env.FUZZ_RUNS) || 5_000_000;
let total = 0;

describe('views fuzz', () => {
  for (const [name, arb] of [
    ['random bytes', randomInput],
    ['mutated golden packets', mutatedGolden],
  ] as const) {
    it(name, () => {
      const t0 = Date.now();
      fc.assert(
        fc.property(arb, ({ buf, off, len }) => {
          checkEveryView(buf, off, len);
          checkSummary(buf, off, len);
        }),
        { numRuns: perProperty },
      );
      total += perProperty;
      console.log(
        `fuzz views/${name}: ${perProperty} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s (total ${total})`,
      );
    });
  }
});
