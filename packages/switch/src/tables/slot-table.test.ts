import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlotTable } from './slot-table.js';

describe('SlotTable', () => {
  it('behaves like a bounded LRU map under random operations', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.constantFrom('set', 'get', 'del'), fc.integer({ min: 0, max: 12 })), {
          maxLength: 200,
        }),
        (cap, ops) => {
          const t = new SlotTable(cap);
          const model = new Map<number, true>(); // insertion order = LRU order (oldest first)
          for (const [op, k] of ops) {
            const a = k * 2654435761;
            const s = t.find(a, k, 7);
            expect(s >= 0).toBe(model.has(k));
            if (op === 'get' && s >= 0) {
              t.touch(s);
              model.delete(k);
              model.set(k, true);
            } else if (op === 'del' && s >= 0) {
              t.remove(s);
              model.delete(k);
            } else if (op === 'set' && s < 0) {
              if (t.full) {
                const oldest = model.keys().next().value!;
                expect(t.keyB[t.tail]).toBe(oldest);
                t.remove(t.tail);
                model.delete(oldest);
              }
              expect(t.insert(a, k, 7)).toBeGreaterThanOrEqual(0);
              model.set(k, true);
            }
            expect(t.size).toBe(model.size);
            const order: number[] = [];
            for (let x = t.tail; x >= 0; x = t.newerThan(x)) order.push(t.keyB[x]!);
            expect(order).toEqual([...model.keys()]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('insert returns -1 when full; clear empties it', () => {
    const t = new SlotTable(2);
    expect(t.insert(1, 1, 1)).toBe(0);
    expect(t.insert(2, 2, 2)).toBe(1);
    expect(t.insert(3, 3, 3)).toBe(-1);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.find(1, 1, 1)).toBe(-1);
    expect(t.insert(3, 3, 3)).toBe(0);
  });

  it('keys are compared as uint32 (negative inputs normalised)', () => {
    const t = new SlotTable(4);
    const s = t.insert(-1, -2, 5);
    expect(t.find(0xffffffff, 0xfffffffe, 5)).toBe(s);
  });

  it('refuses impossible capacities', () => {
    expect(() => new SlotTable(0)).toThrow(RangeError);
    expect(() => new SlotTable(1.5)).toThrow(RangeError);
    expect(() => new SlotTable(2 ** 27)).toThrow(RangeError);
  });
});
