import { describe, expect, test } from 'vitest';
import { errorInfo, OK } from '../errors.js';
import {
  pad4,
  XDR_BAD_BOOL,
  XDR_BAD_RANGE,
  XDR_LENGTH_OVER_CAP,
  XDR_LENGTH_PAST_END,
  XDR_TRUNCATED,
  XdrReader,
  XdrWriter,
} from './xdr.js';

function words(...ws: number[]): Uint8Array {
  const w = new XdrWriter();
  for (const x of ws) w.u32(x);
  return w.bytes();
}

describe('pad4', () => {
  test('rounds up to a multiple of 4, exactly for lengths past 2^31', () => {
    expect([0, 1, 2, 3, 4, 5, 1024].map(pad4)).toEqual([0, 4, 4, 4, 4, 8, 1024]);
    expect(pad4(0xfffffffe)).toBe(0x100000000);
    expect(pad4(0xffffffff)).toBe(0x100000000);
  });
});

describe('XdrReader', () => {
  test('reads what XdrWriter wrote (RFC 4506 §4.1-4.11)', () => {
    const msg = new XdrWriter(8)
      .u32(0xdeadbeef)
      .i32(-5)
      .bool(true)
      .bool(false)
      .u64(0x0123456789abcdefn)
      .u64(2 ** 40 + 7)
      .opaque(Uint8Array.of(1, 2, 3))
      .string('héllo')
      .fixedOpaque(Uint8Array.of(9, 8, 7, 6, 5))
      .bytes();
    const r = new XdrReader().reset(msg);
    expect(r.u32()).toBe(0xdeadbeef);
    expect(r.i32()).toBe(-5);
    expect(r.bool()).toBe(true);
    expect(r.bool()).toBe(false);
    expect(r.u64Big()).toBe(0x0123456789abcdefn);
    expect(r.u64()).toBe(2 ** 40 + 7);
    expect([r.hi, r.lo]).toEqual([256, 7]);
    expect(r.opaque(3)).toBe(3);
    expect([...msg.subarray(r.itemOff, r.itemOff + r.itemLen)]).toEqual([1, 2, 3]);
    expect(r.string(16)).toBe(6);
    expect(r.text()).toBe('héllo');
    expect(r.fixedOpaque(5)).toBe(5);
    expect([...msg.subarray(r.itemOff, r.itemOff + r.itemLen)]).toEqual([9, 8, 7, 6, 5]);
    expect(r.error).toBe(OK);
    expect(r.remaining).toBe(0);
    expect(r.pos).toBe(msg.length);
  });

  test('padding is part of the item: the cursor lands on the next multiple of 4', () => {
    const msg = new XdrWriter().opaque(Uint8Array.of(1)).u32(42).bytes();
    expect(msg.length).toBe(12);
    const r = new XdrReader().reset(msg);
    r.opaque(10);
    expect(r.pos).toBe(8);
    expect(r.u32()).toBe(42);
  });

  test('works inside a sub-range of a larger buffer', () => {
    const buf = new Uint8Array(32).fill(0xff);
    buf.set(words(7, 8), 8);
    const r = new XdrReader().reset(buf, 8, 16);
    expect([r.u32(), r.u32(), r.u32()]).toEqual([7, 8, 0]);
    expect(r.error).toBe(XDR_TRUNCATED);
  });

  test('the cap is checked before the end: a huge length with nothing after it is over the cap', () => {
    const r = new XdrReader().reset(words(2000));
    expect(r.opaque(1024)).toBe(-1);
    expect(r.error).toBe(XDR_LENGTH_OVER_CAP);
    expect(errorInfo(XDR_LENGTH_OVER_CAP)?.kind).toBe('malformed');
    expect(new XdrReader().reset(words(0xffffffff)).string(0xfffffffe)).toBe(-1);
  });

  test('named: XDR length past the end (padding included)', () => {
    const r = new XdrReader().reset(Uint8Array.of(0, 0, 0, 3, 0x61, 0x62, 0x63));
    expect(r.opaque(16)).toBe(-1);
    expect(r.error).toBe(XDR_LENGTH_PAST_END);
    expect(errorInfo(XDR_LENGTH_PAST_END)?.name).toBe('xdr_length_past_end');
    const huge = new XdrReader().reset(words(0xfffffffc));
    expect(huge.opaque(0xffffffff)).toBe(-1);
    expect(huge.error).toBe(XDR_LENGTH_PAST_END);
  });

  test('a length word cut short is truncated', () => {
    const r = new XdrReader().reset(Uint8Array.of(0, 0, 0));
    expect(r.opaque(8)).toBe(-1);
    expect(r.error).toBe(XDR_TRUNCATED);
    expect(new XdrReader().reset(Uint8Array.of(0, 0, 0, 0, 0, 0, 0)).u64()).toBe(0);
    const f = new XdrReader().reset(Uint8Array.of(1, 2, 3));
    expect(f.fixedOpaque(3)).toBe(-1);
    expect(f.error).toBe(XDR_TRUNCATED);
    expect(new XdrReader().reset(Uint8Array.of()).fixedOpaque(-1)).toBe(-1);
  });

  test('errors are sticky: later reads return 0 or -1 and do not move', () => {
    const r = new XdrReader().reset(words(2, 5, 6));
    expect(r.bool()).toBe(false);
    expect(r.error).toBe(XDR_BAD_BOOL);
    const pos = r.pos;
    expect(r.u32()).toBe(0);
    expect(r.u64()).toBe(0);
    expect(r.opaque(4)).toBe(-1);
    expect(r.fixedOpaque(4)).toBe(-1);
    expect(r.text()).toBe('');
    expect(r.pos).toBe(pos);
    expect(r.remaining).toBe(0);
    r.fail(XDR_TRUNCATED);
    expect(r.error).toBe(XDR_BAD_BOOL);
  });

  test('reset rejects a range outside the buffer and clears a previous error', () => {
    const buf = new Uint8Array(8);
    for (const [off, end] of [
      [-1, 4],
      [0, 9],
      [6, 5],
      [Number.NaN, 4],
    ] as const) {
      const r = new XdrReader().reset(buf, off, end);
      expect(r.error).toBe(XDR_BAD_RANGE);
      expect(r.u32()).toBe(0);
    }
    const r = new XdrReader().reset(buf, 9);
    expect(r.reset(buf).error).toBe(OK);
    expect(r.u32()).toBe(0);
  });
});

describe('XdrWriter', () => {
  test('pads opaque data with zero bytes and grows its buffer', () => {
    const w = new XdrWriter(4);
    w.opaque(Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd, 0xee));
    expect([...w.bytes()]).toEqual([0, 0, 0, 5, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0, 0, 0]);
    expect(w.reset().bytes().length).toBe(0);
  });

  test('throws RangeError on values that do not fit', () => {
    const w = new XdrWriter();
    expect(() => w.u32(-1)).toThrow(RangeError);
    expect(() => w.u32(2 ** 32)).toThrow(RangeError);
    expect(() => w.u32(1.5)).toThrow(RangeError);
    expect(() => w.i32(2 ** 31)).toThrow(RangeError);
    expect(() => w.u64(-1n)).toThrow(RangeError);
    expect(() => w.u64(1n << 64n)).toThrow(RangeError);
    expect(() => w.u64(2 ** 60)).toThrow(RangeError);
    expect(() => w.opaque(new Uint8Array(5), 4)).toThrow(RangeError);
    expect(() => w.string('abc', 2)).toThrow(RangeError);
    expect(w.pos).toBe(0);
  });
});
