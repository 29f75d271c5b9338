import { describe, expect, it } from 'vitest';
import { parseHex } from './hex.js';

describe('parseHex', () => {
  it('accepts separators and a 0x prefix', () => {
    expect([...parseHex('0x45 00:00-28')]).toEqual([0x45, 0, 0, 0x28]);
    expect([...parseHex('ABcd')]).toEqual([0xab, 0xcd]);
  });
  it('names the problem', () => {
    expect(() => parseHex('')).toThrow('no bytes given');
    expect(() => parseHex('450')).toThrow('odd number of hex digits (3)');
    expect(() => parseHex('45zz')).toThrow('not hex: unexpected "z"');
  });
});
