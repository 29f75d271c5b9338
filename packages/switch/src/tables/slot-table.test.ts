import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlotTable } from './slot-table.js';

describe('SlotTable', () => {
  it('behaves like a bounded map under random operations; eviction picks a used slot', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.constantFrom('set', 'get', 'del'), fc.integer({ min: 0, max: 12 })), {
          maxLength: 200,
        }),
        (cap, ops) => {
          const t = new SlotTable(cap);
          const model = new Map<number, number>(); // key → aux
          for (const [op, k] of ops) {
            const a = k * 2654435761;
            const s = t.find(a, k, 7);
            expect(s >= 0).toBe(model.has(k));
            if (s >= 0) expect(t.aux(s)).toBe(model.get(k));
            if (op === 'get' && s >= 0) t.touch(s);
            else if (op === 'del' && s >= 0) {
              t.remove(s);
              model.delete(k);
            } else if (op === 'set' && s < 0) {
              if (t.full) {
                const v = t.victim(0);
                expect(t.isUsed(v)).toBe(true);
                const victimKey = t.key(v, 1);
                expect(model.has(victimKey)).toBe(true);
                t.remove(v);
                model.delete(victimKey);
              }
              const n = t.insert(a, k, 7);
              expect(n).toBeGreaterThanOrEqual(0);
              t.setAux(n, k * 3);
              t.setExpires(n, 1e12);
              model.set(k, k * 3);
            }
            expect(t.size).toBe(model.size);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('CLOCK gives a second chance to slots used since the hand passed, and takes expired ones first', () => {
    const t = new SlotTable(3);
    const s = [1, 2, 3].map((k) => {
      const x = t.insert(k, k, k);
      t.setExpires(x, 100);
      return x;
    });
    t.touch(s[0]!);
    expect(t.victim(0)).toBe(s[1]); // 1 was used: skipped (bit cleared); 2 was not
    t.touch(s[1]!);
    t.touch(s[2]!);
    expect(t.victim(0)).toBe(s[0]); // every bit set: one turn clears them, the hand comes back
    t.touch(s[0]!);
    t.touch(s[1]!);
    t.touch(s[2]!);
    t.setExpires(s[2]!, 50);
    expect(t.victim(60)).toBe(s[2]); // expired beats referenced
  });

  it('nextExpired sweeps over the slots', () => {
    const t = new SlotTable(4);
    for (let k = 0; k < 4; k++) t.setExpires(t.insert(k, 0, 0), k < 2 ? 10 : 1000);
    const a = t.nextExpired(20, t.slotCount);
    expect(t.key(a, 0)).toBeLessThan(2);
    t.remove(a);
    const b = t.nextExpired(20, t.slotCount);
    expect(t.key(b, 0)).toBeLessThan(2);
    t.remove(b);
    expect(t.nextExpired(20, t.slotCount)).toBe(-1);
    expect(t.size).toBe(2);
  });

  it('insert returns -1 when full; clear empties it; remove keeps probe runs intact', () => {
    const t = new SlotTable(2);
    expect(t.insert(1, 1, 1)).toBeGreaterThanOrEqual(0);
    expect(t.insert(2, 2, 2)).toBeGreaterThanOrEqual(0);
    expect(t.insert(3, 3, 3)).toBe(-1);
    expect(t.victim(0)).toBeGreaterThanOrEqual(0);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.victim(0)).toBe(-1);
    expect(t.find(1, 1, 1)).toBe(-1);
    expect(t.insert(3, 3, 3)).toBeGreaterThanOrEqual(0);
    // a full table: removal from the middle of probe runs
    const u = new SlotTable(64);
    for (let k = 0; k < 64; k++) u.insert(k, 0, 0);
    for (let k = 0; k < 64; k += 2) u.remove(u.find(k, 0, 0));
    for (let k = 0; k < 64; k++) expect(u.find(k, 0, 0) >= 0).toBe(k % 2 === 1);
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
