import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checksum,
  csumReplace16,
  csumReplace32,
  fold,
  pseudoHeaderSum,
  referenceChecksum,
  sum16,
} from './checksum.js';
import { fuzzRuns } from './testing/fixtures.js';

describe('checksum', () => {
  it('matches the RFC 1071 §3 worked example (sum 0xddf2)', () => {
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(fold(sum16(b, 0, b.length))).toBe(0xddf2);
    expect(checksum(b, 0, b.length)).toBe(~0xddf2 & 0xffff);
  });

  it('pads an odd trailing byte with zero', () => {
    expect(checksum(Uint8Array.from([0xab]), 0, 1)).toBe(~0xab00 & 0xffff);
  });

  it('folds sums past 32 bits', () => {
    expect(fold(0x1_0000_0000)).toBe(1);
    expect(fold(0xffff_ffff * 3)).toBe(fold(fold(0xffff_ffff) * 3));
  });

  it('pseudo header sums both address halves, protocol and length', () => {
    expect(pseudoHeaderSum(0x01020304, 0x05060708, 6, 20)).toBe(0x0102 + 0x0304 + 0x0506 + 0x0708 + 6 + 20);
  });

  it('equals the slow reference on random data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(checksum(b, 0, b.length)).toBe(referenceChecksum(b));
      }),
      { numRuns: 20_000 },
    );
  });

  // RFC 1624: an incremental update must equal recomputing from scratch.
  it('incremental 16-bit update equals full recomputation for random rewrites', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (data, at, word) => {
          const b = Uint8Array.from(data.length % 2 ? [...data, 0] : data);
          // bytes 0-1 hold the checksum; rewrite another aligned word
          b[0] = 0;
          b[1] = 0;
          const c0 = checksum(b, 0, b.length);
          const i = 2 + 2 * (at % ((b.length - 2) / 2));
          const old = (b[i]! << 8) | b[i + 1]!;
          b[i] = word >>> 8;
          b[i + 1] = word & 0xff;
          // All-zero data has two encodings of zero; real headers never are (version nibble, protocol).
          fc.pre(b.some((x) => x !== 0));
          expect(csumReplace16(c0, old, word)).toBe(checksum(b, 0, b.length));
        },
      ),
      { numRuns: fuzzRuns() },
    );
  });

  it('incremental 32-bit (address) update equals full recomputation', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (data, addr) => {
          const b = Uint8Array.from(data);
          b[10] = 0;
          b[11] = 0;
          const c0 = checksum(b, 0, 20);
          const old = ((b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!) >>> 0;
          b[12] = addr >>> 24;
          b[13] = (addr >>> 16) & 0xff;
          b[14] = (addr >>> 8) & 0xff;
          b[15] = addr & 0xff;
          fc.pre(b.some((x) => x !== 0));
          expect(csumReplace32(c0, old, addr)).toBe(checksum(b, 0, 20));
        },
      ),
      { numRuns: fuzzRuns() },
    );
  });
});
