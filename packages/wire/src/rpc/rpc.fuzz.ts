import fc from 'fast-check';
import { describe, it } from 'vitest';
import { rpcProperties } from './properties.test-util.js';

// `npm run fuzz`: the RPC properties at ≥ 10M cases in all (FUZZ_RUNS per property overrides).
const perProperty = Number(process.env.FUZZ_RUNS) || Math.ceil(10_000_000 / rpcProperties.length);
let total = 0;

describe('rpc fuzz', () => {
  for (const { name, property } of rpcProperties) {
    it(name, () => {
      const t0 = Date.now();
      fc.assert(property, { numRuns: perProperty });
      total += perProperty;
      console.log(
        `fuzz rpc/${name}: ${perProperty} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s (total ${total})`,
      );
    });
  }
});
