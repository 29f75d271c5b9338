import { describe, expect, it } from 'vitest';
import {
  allocatePortBlock,
  checkPortBlockConfig,
  DEFAULT_PORT_RANGE,
  type PortRange,
} from './port-blocks.js';

describe('allocatePortBlock', () => {
  it('carves aligned, disjoint blocks from the range in order', () => {
    const taken: PortRange[] = [];
    for (let i = 0; i < 3; i++) {
      const b = allocatePortBlock(DEFAULT_PORT_RANGE, 1024, taken)!;
      taken.push(b);
    }
    expect(taken).toEqual([
      { lo: 32768, hi: 33791 },
      { lo: 33792, hi: 34815 },
      { lo: 34816, hi: 35839 },
    ]);
  });

  it('reuses a freed slot and steps around blocks from an older configuration', () => {
    const range = { lo: 40000, hi: 40999 };
    expect(allocatePortBlock(range, 100, [{ lo: 40100, hi: 40199 }])).toEqual({ lo: 40000, hi: 40099 });
    // an old block of another size straddling two slots blocks both
    expect(
      allocatePortBlock(range, 100, [
        { lo: 40000, hi: 40099 },
        { lo: 40150, hi: 40249 },
      ]),
    ).toEqual({ lo: 40300, hi: 40399 });
  });

  it('returns null when no whole block is left', () => {
    const range = { lo: 50000, hi: 50249 };
    const a = allocatePortBlock(range, 100, [])!;
    const b = allocatePortBlock(range, 100, [a])!;
    expect(b).toEqual({ lo: 50100, hi: 50199 });
    expect(allocatePortBlock(range, 100, [a, b])).toBeNull();
  });

  it('refuses ranges outside 1024-65535 and block sizes that do not fit', () => {
    expect(() => checkPortBlockConfig({ lo: 80, hi: 2000 }, 100)).toThrow(/1024-65535/);
    expect(() => checkPortBlockConfig({ lo: 5000, hi: 4000 }, 100)).toThrow(/lo ≤ hi/);
    expect(() => checkPortBlockConfig({ lo: 40000, hi: 40099 }, 101)).toThrow(/block size 101/);
    expect(() => checkPortBlockConfig(DEFAULT_PORT_RANGE, 1024)).not.toThrow();
  });
});
