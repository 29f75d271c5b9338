import { describe, expect, test } from 'vitest';
import { errorInfo, OK } from '../errors.js';
import { fixtureNames, loadRpc } from './fixtures.test-util.js';
import {
  encodeRecord,
  LAST_FRAGMENT,
  RECORD_BAD_RANGE,
  RECORD_HANDLER_FAILED,
  RECORD_TOO_LARGE,
  RECORD_TOO_MANY_FRAGMENTS,
  RECORD_TRUNCATED,
  RecordAssembler,
  RecordView,
  writeRecordMark,
} from './record.js';

const TCP = fixtureNames().filter((n) => n.endsWith('-tcp'));

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The TCP payloads of the golden fixtures, record marks included. */
function goldenSegments(): Uint8Array[] {
  return TCP.map((n) => {
    const f = loadRpc(n);
    return f.packet.slice(f.payloadOff, f.payloadOff + f.payloadLen);
  });
}

function mark(len: number, last: boolean): Uint8Array {
  const b = new Uint8Array(4);
  writeRecordMark(b, 0, len, last);
  return b;
}

describe('RecordView', () => {
  test('golden TCP segments are one single-fragment record each', () => {
    const v = new RecordView();
    for (const name of TCP) {
      const f = loadRpc(name);
      expect(v.bind(f.packet, f.payloadOff, f.payloadLen)).toBe(OK);
      expect([v.fragments, v.contiguous, v.len, v.recordLength, v.payloadOffset]).toEqual([
        1,
        true,
        f.payloadLen,
        f.len,
        f.off,
      ]);
      expect(v.payload()).toEqual(f.packet.subarray(f.off, f.off + f.len));
    }
  });

  test('multi-fragment record: fragments concatenated, trailing bytes left alone', () => {
    const msg = Uint8Array.from({ length: 30 }, (_, i) => i);
    const wire = concat([encodeRecord(msg, 7), Uint8Array.of(0xee, 0xee)]);
    const v = new RecordView();
    expect(v.bind(wire)).toBe(OK);
    expect([v.fragments, v.contiguous, v.recordLength, v.len, v.firstFragmentLength]).toEqual([
      5,
      false,
      30,
      50,
      7,
    ]);
    expect(v.payload()).toEqual(msg);
    const dst = new Uint8Array(32).fill(0xff);
    expect(v.copyPayload(dst, 2)).toBe(30);
    expect(dst.subarray(2)).toEqual(msg);
    expect(v.copyPayload(dst, 3)).toBe(-1);
    expect(v.copyPayload(new Uint8Array(29))).toBe(-1);
  });

  test('an empty message is one empty last fragment', () => {
    const wire = encodeRecord(new Uint8Array(0));
    expect([...wire]).toEqual([0x80, 0, 0, 0]);
    const v = new RecordView();
    expect(v.bind(wire)).toBe(OK);
    expect([v.fragments, v.recordLength, v.payload().length]).toEqual([1, 0, 0]);
    expect(() => encodeRecord(wire, 0)).toThrow(RangeError);
    expect(() => encodeRecord(wire, 2 ** 31)).toThrow(RangeError);
  });

  test('named: record mark larger than the cap, with only the mark present', () => {
    const v = new RecordView();
    expect(v.bind(mark(0x7fffffff, true))).toBe(RECORD_TOO_LARGE);
    expect(v.bind(mark(1001, true), 0, 4, 1000)).toBe(RECORD_TOO_LARGE);
    expect(v.bind(concat([mark(1000, true), new Uint8Array(1000)]), 0, 1004, 1000)).toBe(OK);
    // The cap is on the whole record: the second fragment's mark tips it over.
    expect(v.bind(concat([mark(600, false), new Uint8Array(600), mark(600, true)]), 0, 608, 1000)).toBe(
      RECORD_TOO_LARGE,
    );
    expect(errorInfo(RECORD_TOO_LARGE)?.kind).toBe('malformed');
  });

  test('too many fragments, even empty ones', () => {
    const marks = concat(Array.from({ length: 300 }, () => mark(0, false)));
    expect(new RecordView().bind(marks)).toBe(RECORD_TOO_MANY_FRAGMENTS);
    expect(new RecordView().bind(encodeRecord(new Uint8Array(8), 1), 0, 40, 100, 7)).toBe(
      RECORD_TOO_MANY_FRAGMENTS,
    );
  });

  test('truncated at every cut point of a multi-fragment record', () => {
    const wire = encodeRecord(
      Uint8Array.from({ length: 21 }, (_, i) => i + 1),
      8,
    );
    const v = new RecordView();
    for (let cut = 0; cut < wire.length; cut++) expect(v.bind(wire, 0, cut)).toBe(RECORD_TRUNCATED);
    expect(v.bind(wire)).toBe(OK);
    expect(v.bind(wire, -1, 4)).toBe(RECORD_TRUNCATED);
    expect(v.bind(wire, 0, wire.length + 1)).toBe(RECORD_TRUNCATED);
  });

  test('parse', () => {
    expect(RecordView.parse(encodeRecord(Uint8Array.of(1, 2, 3, 4))).ok).toBe(true);
    const bad = RecordView.parse(mark(4, true));
    expect(bad.ok === false && bad.error.name).toBe('record_truncated');
  });

  test('writeRecordMark sets bit 31 only for the last fragment', () => {
    expect([...mark(0x7fffffff, false)]).toEqual([0x7f, 0xff, 0xff, 0xff]);
    expect([...mark(5, true)]).toEqual([0x80, 0, 0, 5]);
    expect(LAST_FRAGMENT).toBe(2 ** 31);
  });
});

/** collect runs a stream through a fresh assembler in the given segments; returns records and the code. */
function collect(
  segments: readonly Uint8Array[],
  options?: { maxRecordSize?: number; maxFragments?: number },
) {
  const records: Uint8Array[] = [];
  const a = new RecordAssembler((buf, off, len) => records.push(buf.slice(off, off + len)), options);
  let code = OK;
  for (const s of segments) {
    code = a.push(s);
    if (code !== OK) break;
  }
  return { records, code, a };
}

/** hex joins records into one string: one cheap comparison instead of thousands of deep equalities. */
function hex(records: readonly Uint8Array[]): string {
  return records.map((r) => Buffer.from(r.buffer, r.byteOffset, r.length).toString('hex')).join(',');
}

/** split cuts a stream at the given offsets. */
function split(stream: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [0, ...cuts.filter((c) => c > 0 && c < stream.length).sort((x, y) => x - y), stream.length];
  return at.slice(1).map((end, i) => stream.subarray(at[i], end));
}

describe('RecordAssembler', () => {
  const golden = goldenSegments();
  const messages = golden.map((s) => s.subarray(4));
  // The same messages, re-framed in small fragments.
  const stream = concat([...golden, ...messages.map((m) => encodeRecord(m, 13))]);
  const expected = hex([...messages, ...messages]);

  test('whole segments: each golden record is handed over in place, without a copy', () => {
    const seen: Uint8Array[] = [];
    const a = new RecordAssembler((buf, off, len) => {
      seen.push(buf);
      expect(buf.subarray(off, off + len)).toEqual(messages[seen.length - 1]);
    });
    for (const s of golden) expect(a.push(s)).toBe(OK);
    expect(seen).toEqual(golden);
    for (const [i, b] of seen.entries()) expect(b).toBe(golden[i]);
    expect([a.records, a.buffered, a.atBoundary]).toEqual([golden.length, 0, true]);
  });

  test('the stream cut at every single point yields the same records', () => {
    let failures = 0;
    for (let cut = 0; cut <= stream.length; cut++) {
      const { records, code, a } = collect(split(stream, [cut]));
      if (code !== OK || hex(records) !== expected || !a.atBoundary) failures++;
    }
    expect(failures).toBe(0);
  });

  test('one byte at a time', () => {
    const bytes = Array.from(stream, (_, i) => stream.subarray(i, i + 1));
    const { records, code } = collect(bytes);
    expect(code).toBe(OK);
    expect(hex(records)).toBe(expected);
  });

  test('a partial record is held, then completed', () => {
    const a = new RecordAssembler(() => {});
    expect(a.push(stream, 0, 6)).toBe(OK);
    expect([a.buffered, a.atBoundary, a.records]).toEqual([2, false, 0]);
    expect(a.push(stream, 6, golden[0]!.length - 6)).toBe(OK);
    expect([a.buffered, a.atBoundary, a.records]).toEqual([0, true, 1]);
  });

  test('named: record mark larger than the cap fails on the mark, allocating nothing', () => {
    const { records, code, a } = collect([Uint8Array.of(0x80), Uint8Array.of(0x10, 0, 0)], {
      maxRecordSize: 4096,
    });
    expect(code).toBe(RECORD_TOO_LARGE);
    expect(records).toEqual([]);
    expect(a.capacity).toBe(0);
    // Closed: the stream cannot be resynchronised, so everything after fails the same way.
    expect(a.push(golden[0]!)).toBe(RECORD_TOO_LARGE);
    a.reset();
    expect(a.push(golden[0]!)).toBe(OK);
    expect(a.records).toBe(1);
  });

  test('a mark claiming 2 GiB under a huge cap grows the buffer only with what arrived', () => {
    const a = new RecordAssembler(() => {}, { maxRecordSize: 0x7fffffff });
    expect(a.push(concat([mark(0x7fffffff, true), new Uint8Array(10)]))).toBe(OK);
    expect(a.buffered).toBe(10);
    expect(a.capacity).toBeLessThanOrEqual(1024);
    expect(a.push(new Uint8Array(5000))).toBe(OK);
    expect(a.capacity).toBeLessThanOrEqual(2 * 5010);
  });

  test('the cap counts the whole record across fragments', () => {
    const wire = encodeRecord(new Uint8Array(100), 30);
    expect(collect([wire], { maxRecordSize: 100 }).records.length).toBe(1);
    expect(collect([wire], { maxRecordSize: 99 }).code).toBe(RECORD_TOO_LARGE);
  });

  test('too many fragments', () => {
    const wire = encodeRecord(new Uint8Array(8), 1);
    expect(collect([wire], { maxFragments: 8 }).records.length).toBe(1);
    expect(collect([wire], { maxFragments: 7 }).code).toBe(RECORD_TOO_MANY_FRAGMENTS);
    const empties = concat(Array.from({ length: 300 }, () => mark(0, false)));
    expect(collect([empties]).code).toBe(RECORD_TOO_MANY_FRAGMENTS);
    expect(collect([encodeRecord(new Uint8Array(0))], { maxFragments: 0 }).code).toBe(
      RECORD_TOO_MANY_FRAGMENTS,
    );
  });

  test('a handler that throws closes the assembler', () => {
    const a = new RecordAssembler(() => {
      throw new Error('consumer bug');
    });
    expect(() => a.push(golden[0]!)).toThrow('consumer bug');
    expect(a.push(golden[1]!)).toBe(RECORD_HANDLER_FAILED);
  });

  test('a range outside the segment is refused without closing', () => {
    const a = new RecordAssembler(() => {});
    expect(a.push(golden[0]!, 2, golden[0]!.length)).toBe(RECORD_BAD_RANGE);
    expect(a.error).toBe(OK);
    expect(a.push(golden[0]!)).toBe(OK);
  });
});
