import { describe, expect, it } from 'vitest';
import { FlowMap } from './flow-map.js';

describe('FlowMap', () => {
  it('keeps (address, port) pairs apart, across the whole address range, like a Map would', () => {
    const m = new FlowMap<number>();
    const ref = new Map<string, number>();
    let x = 12345;
    for (let i = 0; i < 20_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const addr = i % 7 === 0 ? 0xcb00710a : x; // many ports of one address, many addresses
      const port = (x >>> 7) & 0xffff;
      m.set(addr, port, i);
      ref.set(`${addr}:${port}`, i);
    }
    expect(m.size).toBe(ref.size);
    for (const [k, v] of ref) {
      const [a, p] = k.split(':').map(Number) as [number, number];
      expect(m.get(a, p)).toBe(v);
    }
    expect(m.get(0xcb00710b, 1)).toBeUndefined();
    expect(m.has(0xffffffff, 65535)).toBe(false);
  });

  it('deletes, drops the oldest, lists and clears', () => {
    const m = new FlowMap<string>();
    m.set(0xcb00710a, 1, 'a');
    m.set(0xcb00710a, 2, 'b');
    m.set(0xcb00710a, 2, 'B');
    expect(m.size).toBe(2);
    expect(m.delete(0xcb00710a, 3)).toBe(false);
    expect(m.delete(0xcb00710a, 1)).toBe(true);
    expect([...m.entries()]).toEqual([[0xcb00710a, 2, 'B']]);
    m.set(1, 1, 'c');
    m.deleteOldest();
    expect(m.size).toBe(1);
    m.clear();
    expect(m.size).toBe(0);
    expect(m.delete(1, 1)).toBe(false);
  });
});

describe('FlowMap.sweep', () => {
  it('keeps what the callback keeps and removes the rest, chains included', () => {
    const m = new FlowMap<number>();
    for (let i = 0; i < 1000; i++) m.set(0xcb00710a, i, i);
    m.sweep((v, addr, port) => v % 3 === 0 && addr === 0xcb00710a && port === v);
    expect(m.size).toBe(334);
    expect(m.get(0xcb00710a, 3)).toBe(3);
    expect(m.get(0xcb00710a, 4)).toBeUndefined();
    m.sweep(() => false);
    expect(m.size).toBe(0);
  });
});
