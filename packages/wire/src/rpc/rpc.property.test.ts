import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzzRuns } from '../testing/fixtures.js';
import { checkViews, goldenMessages, goldenRecords, rpcProperties } from './properties.test-util.js';

describe('RPC views never throw nor read out of bounds', () => {
  it('the golden corpus binds (sanity: mutations start from valid messages)', () => {
    for (const m of goldenMessages) expect(checkViews(m, 0, m.length)).toBeGreaterThanOrEqual(1);
    for (const r of goldenRecords) expect(checkViews(r, 0, r.length)).toBeGreaterThanOrEqual(1);
  });

  for (const { name, property } of rpcProperties) {
    it(name, () => {
      fc.assert(property, { numRuns: fuzzRuns() });
    });
  }
});
