import { describe, expect, it } from 'vitest';
import { waitFor } from './wait-for.js';

describe('waitFor', () => {
  it('resolves with the first truthy value', async () => {
    let n = 0;
    const value = await waitFor(() => (++n >= 3 ? { n } : undefined), { what: 'three polls', intervalMs: 1 });
    expect(value).toEqual({ n: 3 });
  });

  it('throws naming what it waited for and the last value', async () => {
    const start = Date.now();
    await expect(waitFor(() => 0, { what: 'the moon', timeoutMs: 60, intervalMs: 10 })).rejects.toThrow(
      /timed out after 60 ms waiting for the moon \(last value: 0\)/,
    );
    expect(Date.now() - start).toBeGreaterThanOrEqual(55);
  });

  it('reports the last error a condition threw', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('not yet');
        },
        { what: 'a throwing probe', timeoutMs: 30, intervalMs: 5 },
      ),
    ).rejects.toThrow(/a throwing probe \(last error: not yet\)/);
  });

  it('accepts async conditions', async () => {
    let n = 0;
    const v = await waitFor(async () => ++n === 2, { what: 'async', intervalMs: 1 });
    expect(v).toBe(true);
  });
});
