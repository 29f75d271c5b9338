import { put16, put32, u16, u32 } from './bytes.js';
import { checksum, csumReplace16, fold, pseudoHeaderSum, sum16 } from './checksum.js';
import { type Checked, checked, defineError, OK } from './errors.js';
import { IPPROTO } from './ipv4.js';

/*
 * RFC 9293 §3.1
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          Source Port          |       Destination Port        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        Sequence Number                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Acknowledgment Number                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Data |       |C|E|U|A|P|R|S|F|                               |
 * | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           Checksum            |         Urgent Pointer        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           [Options]                           |
 */
const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ = 4;
const ACK = 8;
const DATA_OFFSET = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;

export const TCP_MIN_HEADER = 20;

export const TCP_FLAGS = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018). */
export const TCP_OPTION = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

export const TCP_TRUNCATED = defineError(101, 'truncated', 'tcp_truncated');
export const TCP_DATA_OFFSET_TOO_SMALL = defineError(102, 'malformed', 'tcp_data_offset_too_small');
export const TCP_DATA_OFFSET_PAST_END = defineError(103, 'truncated', 'tcp_data_offset_past_end');

/**
 * TcpView is a reusable view over one TCP segment (header + payload). After `bind` returns OK the whole
 * header including options lies inside [off, off+len). Options are walked lazily and bounded by the
 * header: a malformed option list makes option lookups return -1, never read past the header.
 */
export class TcpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  headerLength = 0;

  /** bind checks and points the view at a segment of `len` bytes (the IPv4 payload); OK or TCP_* code. */
  bind(buf: Uint8Array, off: number, len: number): number {
    if (off < 0 || len < TCP_MIN_HEADER || off + len > buf.length) return TCP_TRUNCATED;
    const hl = (buf[off + DATA_OFFSET]! >>> 4) << 2;
    if (hl < TCP_MIN_HEADER) return TCP_DATA_OFFSET_TOO_SMALL;
    if (hl > len) return TCP_DATA_OFFSET_PAST_END;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.headerLength = hl;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<TcpView> {
    const v = new TcpView();
    return checked(v.bind(buf, off, len), v);
  }

  get srcPort(): number {
    return u16(this.buf, this.off + SRC_PORT);
  }
  get dstPort(): number {
    return u16(this.buf, this.off + DST_PORT);
  }
  get seq(): number {
    return u32(this.buf, this.off + SEQ);
  }
  get ack(): number {
    return u32(this.buf, this.off + ACK);
  }
  get dataOffset(): number {
    return this.buf[this.off + DATA_OFFSET]! >>> 4;
  }
  get flags(): number {
    return this.buf[this.off + FLAGS]!;
  }
  get syn(): boolean {
    return (this.buf[this.off + FLAGS]! & TCP_FLAGS.SYN) !== 0;
  }
  get fin(): boolean {
    return (this.buf[this.off + FLAGS]! & TCP_FLAGS.FIN) !== 0;
  }
  get rst(): boolean {
    return (this.buf[this.off + FLAGS]! & TCP_FLAGS.RST) !== 0;
  }
  get ackFlag(): boolean {
    return (this.buf[this.off + FLAGS]! & TCP_FLAGS.ACK) !== 0;
  }
  get window(): number {
    return u16(this.buf, this.off + WINDOW);
  }
  get checksum(): number {
    return u16(this.buf, this.off + CHECKSUM);
  }
  get urgentPointer(): number {
    return u16(this.buf, this.off + URGENT);
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  get payloadLength(): number {
    return this.len - this.headerLength;
  }

  /**
   * findOption returns the buffer index of option `kind` (its kind byte), or -1 when absent or when the
   * option list is malformed before reaching it (length < 2 or running past the header).
   */
  findOption(kind: number): number {
    const b = this.buf;
    const end = this.off + this.headerLength;
    let i = this.off + TCP_MIN_HEADER;
    while (i < end) {
      const k = b[i]!;
      if (k === TCP_OPTION.END) return -1;
      if (k === TCP_OPTION.NOP) {
        i++;
        continue;
      }
      if (i + 1 >= end) return -1;
      const l = b[i + 1]!;
      if (l < 2 || i + l > end) return -1;
      if (k === kind) return i;
      i += l;
    }
    return -1;
  }

  /** mss returns the MSS option value (RFC 9293 §3.7.1), or -1 when there is no well-formed one. */
  mss(): number {
    const i = this.findOption(TCP_OPTION.MSS);
    if (i < 0 || this.buf[i + 1] !== 4) return -1;
    return u16(this.buf, i + 2);
  }

  /** setMss rewrites an existing MSS option and patches the checksum; false when there is none. */
  setMss(mss: number): boolean {
    const i = this.findOption(TCP_OPTION.MSS);
    if (i < 0 || this.buf[i + 1] !== 4) return false;
    const old = u16(this.buf, i + 2);
    put16(this.buf, i + 2, mss);
    // The option is 2-byte aligned relative to the header only if `i - off` is even; patch the word(s) it spans.
    this.patchSpan(i + 2, old, mss);
    return true;
  }

  /** clampMss lowers the MSS option to `max` when it is larger (SYN MSS clamping); true when changed. */
  clampMss(max: number): boolean {
    const cur = this.mss();
    if (cur < 0 || cur <= max) return false;
    return this.setMss(max);
  }

  setSrcPort(port: number): void {
    const old = this.srcPort;
    put16(this.buf, this.off + SRC_PORT, port);
    put16(this.buf, this.off + CHECKSUM, csumReplace16(this.checksum, old, port & 0xffff));
  }
  setDstPort(port: number): void {
    const old = this.dstPort;
    put16(this.buf, this.off + DST_PORT, port);
    put16(this.buf, this.off + CHECKSUM, csumReplace16(this.checksum, old, port & 0xffff));
  }
  setSeq(seq: number): void {
    const old = this.seq;
    put32(this.buf, this.off + SEQ, seq);
    this.patch32(old, seq >>> 0);
  }
  setAck(ack: number): void {
    const old = this.ack;
    put32(this.buf, this.off + ACK, ack);
    this.patch32(old, ack >>> 0);
  }

  /** verifyChecksum over pseudo header + segment (RFC 9293 §3.1). */
  verifyChecksum(src: number, dst: number): boolean {
    const s = sum16(this.buf, this.off, this.len, pseudoHeaderSum(src, dst, IPPROTO.TCP, this.len));
    return fold(s) === 0xffff;
  }
  /** computeChecksum recomputes and stores the checksum for the given addresses. */
  computeChecksum(src: number, dst: number): void {
    put16(this.buf, this.off + CHECKSUM, 0);
    const c = checksum(this.buf, this.off, this.len, pseudoHeaderSum(src, dst, IPPROTO.TCP, this.len));
    put16(this.buf, this.off + CHECKSUM, c);
  }

  private patch32(oldV: number, newV: number): void {
    let c = csumReplace16(this.checksum, oldV >>> 16, newV >>> 16);
    c = csumReplace16(c, oldV & 0xffff, newV & 0xffff);
    put16(this.buf, this.off + CHECKSUM, c);
  }

  /** patchSpan updates the checksum for a 16-bit value written at buffer index i, aligned or not. */
  private patchSpan(i: number, oldV: number, newV: number): void {
    if (((i - this.off) & 1) === 0) {
      put16(this.buf, this.off + CHECKSUM, csumReplace16(this.checksum, oldV, newV));
      return;
    }
    // Unaligned: the value straddles two checksum words (hi byte ends one, lo byte starts the next).
    const b = this.buf;
    const w1Old = (b[i - 1]! << 8) | (oldV >>> 8);
    const w1New = (b[i - 1]! << 8) | (newV >>> 8);
    const tail = i + 2 < this.off + this.len ? b[i + 2]! : 0;
    const w2Old = ((oldV & 0xff) << 8) | tail;
    const w2New = ((newV & 0xff) << 8) | tail;
    const c = csumReplace16(csumReplace16(this.checksum, w1Old, w1New), w2Old, w2New);
    put16(this.buf, this.off + CHECKSUM, c);
  }
}

const EMPTY = new Uint8Array(0);

export interface TcpHeaderFields {
  srcPort: number;
  dstPort: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  /** raw option bytes, length a multiple of 4 */
  options?: Uint8Array;
}

/** writeTcpHeader writes a header (checksum 0) at buf[off]; returns its length. Compute the checksum after the payload. */
export function writeTcpHeader(buf: Uint8Array, off: number, f: TcpHeaderFields): number {
  const optLen = f.options?.length ?? 0;
  const hl = TCP_MIN_HEADER + optLen;
  put16(buf, off + SRC_PORT, f.srcPort);
  put16(buf, off + DST_PORT, f.dstPort);
  put32(buf, off + SEQ, f.seq ?? 0);
  put32(buf, off + ACK, f.ack ?? 0);
  buf[off + DATA_OFFSET] = (hl >>> 2) << 4;
  buf[off + FLAGS] = f.flags;
  put16(buf, off + WINDOW, f.window ?? 65535);
  put16(buf, off + CHECKSUM, 0);
  put16(buf, off + URGENT, 0);
  if (f.options) buf.set(f.options, off + TCP_MIN_HEADER);
  return hl;
}
