import { put32 } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { FlowMap6, fold16 } from './flow-map6.js';

const addr = (w0: number, w1 = 0, w2 = 0, w3 = 0): Uint8Array => {
  const a = new Uint8Array(16);
  put32(a, 0, w0 >>> 0);
  put32(a, 4, w1 >>> 0);
  put32(a, 8, w2 >>> 0);
  put32(a, 12, w3 >>> 0);
  return a;
};

describe('FlowMap6', () => {
  it('keeps (address, port) pairs apart like a Map would, read in place at an offset', () => {
    const m = new FlowMap6<number>();
    const ref = new Map<string, number>();
    let x = 777;
    const next = () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x;
    };
    for (let i = 0; i < 5000; i++) {
      const a = i % 5 === 0 ? addr(0x20010db8, 0x113, 0, 0x10) : addr(0x20010db8, next(), next(), next());
      const port = next() & 0xffff;
      m.set(a, port, i);
      ref.set(`${Buffer.from(a).toString('hex')}:${port}`, i);
    }
    expect(m.size).toBe(ref.size);
    const buf = new Uint8Array(40);
    for (const [k, v] of ref) {
      const [hex, p] = k.split(':') as [string, string];
      buf.set(Buffer.from(hex, 'hex'), 8);
      expect(m.get(buf, 8, Number(p))).toBe(v);
    }
    expect([...m.entries()].length).toBe(ref.size);
  });

  it('tells apart addresses whose folds collide, deletes and sweeps', () => {
    const a = addr(0x20010db8);
    const b = addr(0x20010db8 ^ Math.imul(1, 0x9e3779b1), 1);
    expect(fold16(a, 0)).toBe(fold16(b, 0));
    const m = new FlowMap6<string>();
    m.set(a, 2049, 'a');
    m.set(b, 2049, 'b');
    m.set(b, 2049, 'B');
    expect(m.size).toBe(2);
    expect(m.get(a, 0, 2049)).toBe('a');
    expect(m.get(b, 0, 2049)).toBe('B');
    expect(m.get(a, 0, 2050)).toBeUndefined();
    expect(m.delete(a, 0, 2049)).toBe(true);
    expect(m.delete(a, 0, 2049)).toBe(false);
    expect(m.get(b, 0, 2049)).toBe('B');
    m.set(a, 1, 'x');
    m.sweep((v) => v !== 'B');
    expect(m.size).toBe(1);
    expect(m.get(b, 0, 2049)).toBeUndefined();
    expect(m.get(a, 0, 1)).toBe('x');
    m.set(b, 3, 'y');
    m.deleteOldest();
    expect([m.size, m.get(a, 0, 1), m.get(b, 0, 3)]).toEqual([1, undefined, 'y']);
    m.clear();
    expect(m.size).toBe(0);
  });
});
