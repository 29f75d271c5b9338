import { describe, expect, it } from 'vitest';
import { PortBlocks } from './port-blocks.js';

describe('PortBlocks (boxes 545/550)', () => {
  const b = new PortBlocks([
    { node: 3, from: 41000, to: 41999 },
    { node: 0, from: 40000, to: 40999 },
  ]);
  it.each([
    [39999, -1],
    [40000, 0],
    [40999, 0],
    [41000, 3],
    [41999, 3],
    [42000, -1],
    [0, -1],
    [65535, -1],
  ])('port %i → node %i', (port, node) => expect(b.ownerOf(port)).toBe(node));

  it('lists blocks sorted', () => expect(b.blocks.map((x) => x.from)).toEqual([40000, 41000]));

  it('refuses overlaps, inverted and out-of-range blocks', () => {
    expect(
      () =>
        new PortBlocks([
          { node: 1, from: 10, to: 20 },
          { node: 2, from: 20, to: 30 },
        ]),
    ).toThrow(/overlap/);
    expect(() => new PortBlocks([{ node: 1, from: 20, to: 10 }])).toThrow(RangeError);
    expect(() => new PortBlocks([{ node: 1, from: 0, to: 10 }])).toThrow(RangeError);
    expect(() => new PortBlocks([{ node: 1, from: 1, to: 65536 }])).toThrow(RangeError);
    expect(() => new PortBlocks([{ node: 65535, from: 1, to: 2 }])).toThrow(RangeError);
  });
});
