import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzzRuns } from './testing/fixtures.js';
import {
  checkEveryView,
  checkSummary,
  goldenPackets,
  mutatedGolden,
  randomInput,
} from './testing/view-properties.js';

describe('views never throw nor read out of bounds', () => {
  it('golden packets bind (sanity for the mutation corpus)', () => {
    for (const p of goldenPackets) expect(checkEveryView(p, 0, p.length)).toBeGreaterThanOrEqual(1);
  });

  it('random bytes', () => {
    fc.assert(
      fc.property(randomInput, ({ buf, off, len }) => {
        checkEveryView(buf, off, len);
        checkSummary(buf, off, len);
      }),
      { numRuns: fuzzRuns() },
    );
  });

  it('mutated golden packets', () => {
    fc.assert(
      fc.property(mutatedGolden, ({ buf, off, len }) => {
        checkEveryView(buf, off, len);
        checkSummary(buf, off, len);
      }),
      { numRuns: fuzzRuns() },
    );
  });
});
