import { put32, u32 } from '../bytes.js';
import { defineError, OK } from '../errors.js';

/*
 * XDR (RFC 4506): every item is a multiple of 4 bytes, big-endian (§3). Variable-length opaque data and
 * strings (§4.10, §4.11) are a 4-byte length followed by the bytes and 0-3 zero bytes of padding.
 */

/** A fixed-size item (u32, hyper, fixed opaque) runs past the end of the data. */
export const XDR_TRUNCATED = defineError(600, 'truncated', 'xdr_truncated');
/** A variable-length item declares more bytes than the caller's maximum (RFC 4506 §4.10 `<max>`). */
export const XDR_LENGTH_OVER_CAP = defineError(601, 'malformed', 'xdr_length_over_cap');
/** A variable-length item declares more bytes (with padding) than remain. */
export const XDR_LENGTH_PAST_END = defineError(602, 'truncated', 'xdr_length_past_end');
/** A boolean is neither 0 nor 1 (RFC 4506 §4.4). */
export const XDR_BAD_BOOL = defineError(603, 'malformed', 'xdr_bad_bool');
/** The range given to `XdrReader.reset` does not lie inside the buffer. */
export const XDR_BAD_RANGE = defineError(604, 'malformed', 'xdr_bad_range');

const EMPTY = new Uint8Array(0);
const TWO_32 = 4294967296;

/** pad4 is the XDR size of n bytes of opaque data: n rounded up to a multiple of 4 (exact up to 2^53). */
export function pad4(n: number): number {
  return n + ((4 - (n & 3)) & 3);
}

/**
 * XdrReader is a reusable cursor over buf[pos, end). Errors are sticky: the first failure stores its code
 * in `error`, and every later read returns 0 (or -1 for lengths) without moving, so a caller can read a
 * whole structure and check `error` once. Never throws, never allocates (except `u64Big` and `text`).
 */
export class XdrReader {
  buf: Uint8Array = EMPTY;
  pos = 0;
  end = 0;
  /** OK, or the code of the first failed read. */
  error = OK;
  /** itemOff and itemLen locate the bytes of the last opaque/string/fixed opaque read, inside `buf`. */
  itemOff = 0;
  itemLen = 0;
  /** hi and lo are the halves of the last hyper read by `u64`. */
  hi = 0;
  lo = 0;

  /** reset points the cursor at buf[off, end) and clears the error; a bad range sets XDR_BAD_RANGE. */
  reset(buf: Uint8Array, off = 0, end = buf.length): this {
    this.buf = buf;
    this.itemOff = off;
    this.itemLen = 0;
    if (!(off >= 0 && end <= buf.length && off <= end)) {
      this.pos = 0;
      this.end = 0;
      this.error = XDR_BAD_RANGE;
    } else {
      this.pos = off;
      this.end = end;
      this.error = OK;
    }
    return this;
  }

  /** remaining is the number of unread bytes (0 after an error). */
  get remaining(): number {
    return this.error === OK ? this.end - this.pos : 0;
  }

  /** fail records `code` unless an earlier error is already recorded. */
  fail(code: number): void {
    if (this.error === OK) this.error = code;
  }

  /** u32 reads an unsigned int (RFC 4506 §4.2). */
  u32(): number {
    if (this.error !== OK) return 0;
    if (this.end - this.pos < 4) {
      this.error = XDR_TRUNCATED;
      return 0;
    }
    const v = u32(this.buf, this.pos);
    this.pos += 4;
    return v;
  }

  /** i32 reads a signed int (RFC 4506 §4.1). */
  i32(): number {
    return this.u32() | 0;
  }

  /** bool reads a boolean (RFC 4506 §4.4); values other than 0 and 1 set XDR_BAD_BOOL. */
  bool(): boolean {
    const v = this.u32();
    if (v > 1) this.fail(XDR_BAD_BOOL);
    return v === 1;
  }

  /**
   * u64 reads an unsigned hyper (RFC 4506 §4.5) into `hi` and `lo` and returns hi * 2^32 + lo, which is
   * exact below 2^53 (file offsets and sizes in practice). Use `hi`/`lo` or `u64Big` when it must be exact.
   */
  u64(): number {
    if (this.error !== OK) return 0;
    if (this.end - this.pos < 8) {
      this.error = XDR_TRUNCATED;
      return 0;
    }
    this.hi = u32(this.buf, this.pos);
    this.lo = u32(this.buf, this.pos + 4);
    this.pos += 8;
    return this.hi * TWO_32 + this.lo;
  }

  /** u64Big reads an unsigned hyper exactly as a bigint (allocates: off the hot path). */
  u64Big(): bigint {
    this.u64();
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /**
   * opaque reads variable-length opaque data `opaque<max>` (RFC 4506 §4.10): the declared length is
   * checked against `max` first (XDR_LENGTH_OVER_CAP), then against the end, padding included
   * (XDR_LENGTH_PAST_END). The bytes are left in place at buf[itemOff, itemOff+itemLen).
   * Returns the length, or -1 on error.
   */
  opaque(max: number): number {
    if (this.error !== OK) return -1;
    if (this.end - this.pos < 4) {
      this.error = XDR_TRUNCATED;
      return -1;
    }
    const n = u32(this.buf, this.pos);
    if (n > max) {
      this.error = XDR_LENGTH_OVER_CAP;
      return -1;
    }
    if (pad4(n) > this.end - this.pos - 4) {
      this.error = XDR_LENGTH_PAST_END;
      return -1;
    }
    this.itemOff = this.pos + 4;
    this.itemLen = n;
    this.pos += 4 + pad4(n);
    return n;
  }

  /** string reads `string<max>` (RFC 4506 §4.11); same encoding and checks as `opaque`. */
  string(max: number): number {
    return this.opaque(max);
  }

  /** fixedOpaque skips fixed-length opaque data `opaque[n]` (RFC 4506 §4.9), padding included. */
  fixedOpaque(n: number): number {
    if (this.error !== OK) return -1;
    if (n < 0 || pad4(n) > this.end - this.pos) {
      this.error = XDR_TRUNCATED;
      return -1;
    }
    this.itemOff = this.pos;
    this.itemLen = n;
    this.pos += pad4(n);
    return n;
  }

  /** text decodes the last item read as UTF-8 (allocates: off the hot path); "" after an error. */
  text(): string {
    if (this.error !== OK) return '';
    return utf8.decode(this.buf.subarray(this.itemOff, this.itemOff + this.itemLen));
  }
}

const utf8 = new TextDecoder('utf-8');
const utf8enc = new TextEncoder();

/**
 * XdrWriter builds XDR into a growing buffer, for replies the gateway answers itself (off the hot path).
 * Methods return `this` so calls chain; `bytes()` copies out the result.
 */
export class XdrWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  /** reset empties the writer, keeping its buffer. */
  reset(): this {
    this.pos = 0;
    return this;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.pos + n, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** u32 writes an unsigned int; throws RangeError when v is not an integer in [0, 2^32). */
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v >= TWO_32) throw new RangeError(`not a u32: ${v}`);
    this.room(4);
    put32(this.buf, this.pos, v);
    this.pos += 4;
    return this;
  }

  /** i32 writes a signed int; throws RangeError outside [-2^31, 2^31). */
  i32(v: number): this {
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new RangeError(`not an i32: ${v}`);
    return this.u32(v >>> 0);
  }

  bool(v: boolean): this {
    return this.u32(v ? 1 : 0);
  }

  /** u64 writes an unsigned hyper from a bigint or a safe integer; throws RangeError otherwise. */
  u64(v: bigint | number): this {
    const b = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
    if (b < 0n || b >= 1n << 64n) throw new RangeError(`not a u64: ${v}`);
    this.u32(Number(b >> 32n));
    return this.u32(Number(b & 0xffffffffn));
  }

  /** opaque writes `opaque<max>`; throws RangeError when the data is longer than `max`. */
  opaque(data: Uint8Array, max = 0xffffffff): this {
    if (data.length > max) throw new RangeError(`opaque of ${data.length} bytes exceeds ${max}`);
    this.u32(data.length);
    return this.fixedOpaque(data);
  }

  /** string writes `string<max>` as UTF-8; throws RangeError when the encoding is longer than `max`. */
  string(s: string, max = 0xffffffff): this {
    return this.opaque(utf8enc.encode(s), max);
  }

  /** fixedOpaque writes the bytes and zero padding to a multiple of 4 (RFC 4506 §4.9). */
  fixedOpaque(data: Uint8Array): this {
    const n = pad4(data.length);
    this.room(n);
    this.buf.set(data, this.pos);
    this.buf.fill(0, this.pos + data.length, this.pos + n);
    this.pos += n;
    return this;
  }

  /** raw appends bytes as they are (already XDR: no length, no padding added). */
  raw(data: Uint8Array): this {
    this.room(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
    return this;
  }

  /** bytes returns a copy of what has been written. */
  bytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
