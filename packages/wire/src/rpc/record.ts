import { put32, u32 } from '../bytes.js';
import { type Checked, checked, defineError, OK } from '../errors.js';

/*
 * RFC 5531 §11 record marking (RPC over TCP): a record is one or more fragments; each fragment is a
 * 4-byte header, bit 31 = last fragment and bits 0-30 = fragment length, followed by that many bytes.
 *
 * +-+-------------------------------------------+------------------+
 * |L|        fragment length (31 bits)          | fragment bytes   |  ... until a fragment with L = 1
 * +-+-------------------------------------------+------------------+
 */
export const RECORD_MARK = 4;
export const LAST_FRAGMENT = 0x80000000;
export const MAX_FRAGMENT_LENGTH = 0x7fffffff;
/** Default cap on a whole record: an NFSv3 WRITE of 1 MiB plus its headers. */
export const DEFAULT_MAX_RECORD_SIZE = 1048576 + 4096;
/** Default cap on fragments per record (zero-length fragments cost nothing else, so count them). */
export const DEFAULT_MAX_FRAGMENTS = 256;

/** The buffer ends before the last fragment does (a stream reader waits for more). */
export const RECORD_TRUNCATED = defineError(640, 'truncated', 'record_truncated');
/** The fragment lengths seen so far add up to more than the cap: rejected on the mark, before any data. */
export const RECORD_TOO_LARGE = defineError(641, 'malformed', 'record_too_large');
export const RECORD_TOO_MANY_FRAGMENTS = defineError(642, 'malformed', 'record_too_many_fragments');
/** A record handler threw; the stream position is lost, so the assembler stays closed. */
export const RECORD_HANDLER_FAILED = defineError(643, 'malformed', 'record_handler_failed');
/** `push` was given a range outside its buffer (a caller bug; the assembler is not closed). */
export const RECORD_BAD_RANGE = defineError(644, 'malformed', 'record_bad_range');

const EMPTY = new Uint8Array(0);

/**
 * RecordView checks one complete record at the start of buf[off, off+len) (bytes after it are left
 * alone). After `bind` returns OK, `len` is the record's size on the wire (marks included), the record
 * holds `fragments` fragments and `recordLength` payload bytes, all inside the buffer. A single-fragment
 * record (what Linux, libnfs and ganesha send) is contiguous at buf[payloadOffset, +recordLength).
 */
export class RecordView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  fragments = 0;
  recordLength = 0;
  /** payloadOffset: where the first fragment's bytes start (the whole payload when `contiguous`). */
  payloadOffset = 0;
  firstFragmentLength = 0;

  /**
   * bind walks the fragments of the record at buf[off, off+len). Each mark is checked against the caps
   * (RECORD_TOO_LARGE, RECORD_TOO_MANY_FRAGMENTS) before its length is used; RECORD_TRUNCATED when the
   * buffer ends first. Never throws, never allocates.
   */
  bind(
    buf: Uint8Array,
    off = 0,
    len = buf.length - off,
    maxRecordSize = DEFAULT_MAX_RECORD_SIZE,
    maxFragments = DEFAULT_MAX_FRAGMENTS,
  ): number {
    if (!(off >= 0 && len >= 0 && off + len <= buf.length)) return RECORD_TRUNCATED;
    const end = off + len;
    let p = off;
    let total = 0;
    let frags = 0;
    let firstLen = 0;
    for (;;) {
      if (end - p < RECORD_MARK) return RECORD_TRUNCATED;
      const mark = u32(buf, p);
      const fl = mark & MAX_FRAGMENT_LENGTH;
      if (++frags > maxFragments) return RECORD_TOO_MANY_FRAGMENTS;
      total += fl;
      if (total > maxRecordSize) return RECORD_TOO_LARGE;
      if (frags === 1) firstLen = fl;
      p += RECORD_MARK;
      if (fl > end - p) return RECORD_TRUNCATED;
      p += fl;
      if (mark >= LAST_FRAGMENT) break;
    }
    this.buf = buf;
    this.off = off;
    this.len = p - off;
    this.fragments = frags;
    this.recordLength = total;
    this.payloadOffset = off + RECORD_MARK;
    this.firstFragmentLength = firstLen;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<RecordView> {
    const v = new RecordView();
    return checked(v.bind(buf, off, len), v);
  }

  /** contiguous: one fragment, so the payload is buf[payloadOffset, payloadOffset + recordLength). */
  get contiguous(): boolean {
    return this.fragments === 1;
  }

  /**
   * copyPayload concatenates the fragments into dst at dstOff; returns the bytes written, or -1 (and
   * writes nothing) when dst has no room for `recordLength` bytes.
   */
  copyPayload(dst: Uint8Array, dstOff = 0): number {
    if (!(dstOff >= 0 && dstOff + this.recordLength <= dst.length)) return -1;
    let p = this.off;
    let q = dstOff;
    for (let i = 0; i < this.fragments; i++) {
      const fl = u32(this.buf, p) & MAX_FRAGMENT_LENGTH;
      dst.set(this.buf.subarray(p + RECORD_MARK, p + RECORD_MARK + fl), q);
      p += RECORD_MARK + fl;
      q += fl;
    }
    return q - dstOff;
  }

  /** payload returns the record's bytes: a subarray when contiguous, else a new concatenated copy. */
  payload(): Uint8Array {
    if (this.contiguous) return this.buf.subarray(this.payloadOffset, this.payloadOffset + this.recordLength);
    const out = new Uint8Array(this.recordLength);
    this.copyPayload(out);
    return out;
  }
}

/** writeRecordMark stores a fragment header at buf[off]; `last` sets bit 31 (RFC 5531 §11). */
export function writeRecordMark(buf: Uint8Array, off: number, fragmentLength: number, last: boolean): void {
  put32(buf, off, ((last ? LAST_FRAGMENT : 0) + (fragmentLength & MAX_FRAGMENT_LENGTH)) >>> 0);
}

/**
 * encodeRecord frames a message as a record of fragments of at most `maxFragment` bytes (one fragment
 * by default; an empty message is one empty last fragment). Throws RangeError when maxFragment is not
 * an integer in [1, 2^31).
 */
export function encodeRecord(msg: Uint8Array, maxFragment = MAX_FRAGMENT_LENGTH): Uint8Array {
  if (!Number.isInteger(maxFragment) || maxFragment < 1 || maxFragment > MAX_FRAGMENT_LENGTH) {
    throw new RangeError(`bad fragment size ${maxFragment}`);
  }
  const frags = Math.max(1, Math.ceil(msg.length / maxFragment));
  const out = new Uint8Array(msg.length + frags * RECORD_MARK);
  let p = 0;
  for (let i = 0; i < frags; i++) {
    const from = i * maxFragment;
    const n = Math.min(maxFragment, msg.length - from);
    writeRecordMark(out, p, n, i === frags - 1);
    out.set(msg.subarray(from, from + n), p + RECORD_MARK);
    p += RECORD_MARK + n;
  }
  return out;
}

/**
 * RecordHandler receives one complete record as buf[off, off+len). The bytes are only valid during the
 * call (they may be the pushed segment or the assembler's own buffer): copy them to keep them.
 */
export type RecordHandler = (buf: Uint8Array, off: number, len: number) => void;

export interface RecordAssemblerOptions {
  /** Cap on a record's payload; a mark that would pass it fails at once (RECORD_TOO_LARGE). */
  maxRecordSize?: number;
  maxFragments?: number;
}

/**
 * RecordAssembler turns a TCP byte stream, pushed in segments of any size, into complete records
 * (RFC 5531 §11). A record that arrives whole in one segment as a single fragment is handed over in
 * place, without a copy; otherwise fragments are gathered into an internal buffer that grows only with
 * the bytes that actually arrived and never past `maxRecordSize`. A cap violation closes the assembler:
 * every later `push` returns the same code (the stream cannot be resynchronised).
 */
export class RecordAssembler {
  readonly maxRecordSize: number;
  readonly maxFragments: number;
  /** OK, or the code that closed the assembler. */
  error = OK;
  /** records delivered so far. */
  records = 0;
  private readonly onRecord: RecordHandler;
  private acc: Uint8Array = EMPTY;
  private accLen = 0;
  private mark = 0;
  private markHave = 0;
  private inFragment = false;
  private fragLeft = 0;
  private fragLast = false;
  private fragments = 0;

  constructor(onRecord: RecordHandler, options: RecordAssemblerOptions = {}) {
    this.onRecord = onRecord;
    this.maxRecordSize = options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE;
    this.maxFragments = options.maxFragments ?? DEFAULT_MAX_FRAGMENTS;
  }

  /** buffered: bytes held for the record in progress (payload and partial mark). */
  get buffered(): number {
    return this.accLen + this.markHave;
  }

  /** capacity: bytes allocated for gathering fragments (0 until a record arrives in pieces). */
  get capacity(): number {
    return this.acc.length;
  }

  /** atBoundary: no record is in progress (what a clean end of stream looks like). */
  get atBoundary(): boolean {
    return this.fragments === 0 && this.markHave === 0 && !this.inFragment;
  }

  /** reset forgets any partial record and a previous error, keeping the buffer for reuse. */
  reset(): void {
    this.error = OK;
    this.accLen = 0;
    this.mark = 0;
    this.markHave = 0;
    this.inFragment = false;
    this.fragLeft = 0;
    this.fragLast = false;
    this.fragments = 0;
  }

  /**
   * push feeds seg[off, off+len) and calls the handler for each record it completes; returns OK, or the
   * code that closed the assembler. Rethrows what the handler throws (and closes the assembler).
   */
  push(seg: Uint8Array, off = 0, len = seg.length - off): number {
    if (this.error !== OK) return this.error;
    if (!(off >= 0 && len >= 0 && off + len <= seg.length)) return RECORD_BAD_RANGE;
    const end = off + len;
    let p = off;
    while (p < end) {
      if (!this.inFragment) {
        if (this.fragments === 0 && this.markHave === 0 && end - p >= RECORD_MARK) {
          // A whole one-fragment record in this segment: hand it over in place.
          const m = u32(seg, p);
          const fl = m & MAX_FRAGMENT_LENGTH;
          if (
            m >= LAST_FRAGMENT &&
            fl <= this.maxRecordSize &&
            fl <= end - p - RECORD_MARK &&
            this.maxFragments >= 1
          ) {
            p += RECORD_MARK + fl;
            this.deliver(seg, p - fl, fl);
            continue;
          }
        }
        while (this.markHave < RECORD_MARK && p < end) {
          this.mark = this.mark * 256 + seg[p++]!;
          this.markHave++;
        }
        if (this.markHave < RECORD_MARK) break;
        const m = this.mark;
        this.mark = 0;
        this.markHave = 0;
        const fl = m % LAST_FRAGMENT;
        if (++this.fragments > this.maxFragments) return this.close(RECORD_TOO_MANY_FRAGMENTS);
        if (this.accLen + fl > this.maxRecordSize) return this.close(RECORD_TOO_LARGE);
        this.inFragment = true;
        this.fragLeft = fl;
        this.fragLast = m >= LAST_FRAGMENT;
      }
      if (this.fragLeft > 0) {
        const n = Math.min(this.fragLeft, end - p);
        this.append(seg, p, n);
        p += n;
        this.fragLeft -= n;
        if (this.fragLeft > 0) break;
      }
      this.inFragment = false;
      if (this.fragLast) {
        const n = this.accLen;
        this.accLen = 0;
        this.fragments = 0;
        this.deliver(this.acc, 0, n);
      }
    }
    return OK;
  }

  private close(code: number): number {
    this.error = code;
    return code;
  }

  private append(seg: Uint8Array, p: number, n: number): void {
    const need = this.accLen + n;
    if (need > this.acc.length) {
      // Grow with what arrived (doubling, capped), never to what a mark claims.
      const next = new Uint8Array(Math.min(this.maxRecordSize, Math.max(need, this.acc.length * 2, 1024)));
      next.set(this.acc.subarray(0, this.accLen));
      this.acc = next;
    }
    if (n <= 64) {
      for (let i = 0; i < n; i++) this.acc[this.accLen + i] = seg[p + i]!;
    } else {
      this.acc.set(seg.subarray(p, p + n), this.accLen);
    }
    this.accLen = need;
  }

  private deliver(buf: Uint8Array, off: number, len: number): void {
    this.records++;
    try {
      this.onRecord(buf, off, len);
    } catch (e) {
      this.error = RECORD_HANDLER_FAILED;
      throw e;
    }
  }
}
