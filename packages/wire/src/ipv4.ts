import { i32, put16, put32, u16, u32 } from './bytes.js';
import { checksum, csumReplace16, csumReplace32, fold, sum16 } from './checksum.js';
import { type Checked, checked, defineError, OK } from './errors.js';

/*
 * RFC 791 §3.1
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version|  IHL  |Type of Service|          Total Length         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |         Identification        |Flags|      Fragment Offset    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Time to Live |    Protocol   |         Header Checksum       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       Source Address                          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Destination Address                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Options                    |    Padding    |
 */
const VER_IHL = 0;
const TOS = 1;
const TOTAL_LENGTH = 2;
const ID = 4;
const FLAGS_FRAG = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC = 12;
const DST = 16;

export const IPV4_MIN_HEADER = 20;
export const IPV4_MAX_HEADER = 60;

/** IP protocol numbers we act on (IANA "Assigned Internet Protocol Numbers"). */
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17 } as const;

/** Flag bits in the flags/fragment-offset word (RFC 791 §3.1). */
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const FRAG_MASK = 0x1fff;

export const IPV4_TRUNCATED = defineError(1, 'truncated', 'ipv4_truncated');
export const IPV4_BAD_VERSION = defineError(2, 'malformed', 'ipv4_bad_version');
export const IPV4_IHL_TOO_SMALL = defineError(3, 'malformed', 'ipv4_ihl_too_small');
export const IPV4_IHL_PAST_END = defineError(4, 'truncated', 'ipv4_ihl_past_end');
export const IPV4_TOTAL_LENGTH_BELOW_HEADER = defineError(5, 'malformed', 'ipv4_total_length_below_header');
export const IPV4_TOTAL_LENGTH_PAST_BUFFER = defineError(6, 'truncated', 'ipv4_total_length_past_buffer');
export const IPV4_BAD_CHECKSUM = defineError(7, 'malformed', 'ipv4_bad_checksum');
export const IPV4_FRAGMENT_OVERFLOW = defineError(8, 'malformed', 'ipv4_fragment_overflow');

/**
 * Ipv4View is a reusable view over one IPv4 header and its payload. After `bind` returns OK:
 * the header (IHL*4 bytes) and the payload up to Total Length lie inside the buffer, so no getter can read
 * out of bounds; trailing bytes past Total Length (Ethernet padding) are excluded from `len`.
 */
export class Ipv4View {
  buf: Uint8Array = EMPTY;
  off = 0;
  /** Total Length, i.e. the packet trimmed of trailing bytes. */
  len = 0;
  headerLength = 0;

  /** bind checks and points the view at buf[off, off+len); returns OK or an IPV4_* code. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): number {
    const code = this.check(buf, off, len, false);
    if (code !== OK) return code;
    this.buf = buf;
    this.off = off;
    this.headerLength = (buf[off]! & 0x0f) << 2;
    this.len = u16(buf, off + TOTAL_LENGTH);
    return OK;
  }

  /**
   * bindQuoted binds a header quoted inside an ICMP error (RFC 792): only the header and whatever part of
   * the original payload was quoted are present, so Total Length is not checked against the buffer and
   * `len` is the quoted length.
   */
  bindQuoted(buf: Uint8Array, off: number, len: number): number {
    const code = this.check(buf, off, len, true);
    if (code !== OK) return code;
    this.buf = buf;
    this.off = off;
    this.headerLength = (buf[off]! & 0x0f) << 2;
    this.len = Math.min(len, u16(buf, off + TOTAL_LENGTH));
    return OK;
  }

  private check(buf: Uint8Array, off: number, len: number, quoted: boolean): number {
    if (off < 0 || len < IPV4_MIN_HEADER || off + len > buf.length) return IPV4_TRUNCATED;
    const vi = buf[off]!;
    if (vi >>> 4 !== 4) return IPV4_BAD_VERSION;
    const hl = (vi & 0x0f) << 2;
    if (hl < IPV4_MIN_HEADER) return IPV4_IHL_TOO_SMALL;
    if (hl > len) return IPV4_IHL_PAST_END;
    const total = u16(buf, off + TOTAL_LENGTH);
    if (total < hl) return IPV4_TOTAL_LENGTH_BELOW_HEADER;
    if (!quoted && total > len) return IPV4_TOTAL_LENGTH_PAST_BUFFER;
    // RFC 791 §3.2: offset*8 + fragment data must fit the 65535-byte datagram (the "ping of death").
    if (((u16(buf, off + FLAGS_FRAG) & FRAG_MASK) << 3) + total - hl > 65535) return IPV4_FRAGMENT_OVERFLOW;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<Ipv4View> {
    const v = new Ipv4View();
    return checked(v.bind(buf, off, len), v);
  }

  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  get ihl(): number {
    return this.buf[this.off]! & 0x0f;
  }
  get tos(): number {
    return this.buf[this.off + TOS]!;
  }
  get totalLength(): number {
    return u16(this.buf, this.off + TOTAL_LENGTH);
  }
  get id(): number {
    return u16(this.buf, this.off + ID);
  }
  get flags(): number {
    return this.buf[this.off + FLAGS_FRAG]! >>> 5;
  }
  get dontFragment(): boolean {
    return (u16(this.buf, this.off + FLAGS_FRAG) & FLAG_DF) !== 0;
  }
  get moreFragments(): boolean {
    return (u16(this.buf, this.off + FLAGS_FRAG) & FLAG_MF) !== 0;
  }
  /** fragmentOffset in 8-octet units, as on the wire. */
  get fragmentOffset(): number {
    return u16(this.buf, this.off + FLAGS_FRAG) & FRAG_MASK;
  }
  /** isFragment: MF set or a non-zero offset (RFC 791 §3.2). */
  get isFragment(): boolean {
    return (u16(this.buf, this.off + FLAGS_FRAG) & (FLAG_MF | FRAG_MASK)) !== 0;
  }
  get ttl(): number {
    return this.buf[this.off + TTL]!;
  }
  get protocol(): number {
    return this.buf[this.off + PROTOCOL]!;
  }
  get checksum(): number {
    return u16(this.buf, this.off + CHECKSUM);
  }
  get src(): number {
    return u32(this.buf, this.off + SRC);
  }
  get dst(): number {
    return u32(this.buf, this.off + DST);
  }
  /** srcI32 is `src | 0`, never boxed: for keys on the packet path (`src` of 2^31 or more may be). */
  get srcI32(): number {
    return i32(this.buf, this.off + SRC);
  }
  /** dstI32 is `dst | 0`, never boxed. */
  get dstI32(): number {
    return i32(this.buf, this.off + DST);
  }
  /** payloadOffset is an index into `buf` (not relative to `off`). */
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  get payloadLength(): number {
    return this.len - this.headerLength;
  }
  /** options is a subarray (no copy) of the option bytes, empty when IHL is 5. */
  options(): Uint8Array {
    return this.buf.subarray(this.off + IPV4_MIN_HEADER, this.off + this.headerLength);
  }

  /** verifyChecksum: the header sums to 0xffff including its checksum field. */
  verifyChecksum(): boolean {
    return fold(sum16(this.buf, this.off, this.headerLength)) === 0xffff;
  }
  /** computeChecksum recomputes and stores the header checksum. */
  computeChecksum(): void {
    put16(this.buf, this.off + CHECKSUM, 0);
    put16(this.buf, this.off + CHECKSUM, checksum(this.buf, this.off, this.headerLength));
  }
  /** setTtl stores a new TTL and updates the header checksum incrementally (RFC 1624). */
  setTtl(ttl: number): void {
    const o = this.off + TTL;
    const before = u16(this.buf, o);
    this.buf[o] = ttl & 0xff;
    this.patchChecksum16(before, u16(this.buf, o));
  }
  /** setSrc stores a new source address; the header checksum is updated, L4 checksums are not. */
  setSrc(addr: number): void {
    const old = this.src;
    put32(this.buf, this.off + SRC, addr);
    put16(this.buf, this.off + CHECKSUM, csumReplace32(this.checksum, old, addr >>> 0));
  }
  /** setDst stores a new destination address; the header checksum is updated, L4 checksums are not. */
  setDst(addr: number): void {
    const old = this.dst;
    put32(this.buf, this.off + DST, addr);
    put16(this.buf, this.off + CHECKSUM, csumReplace32(this.checksum, old, addr >>> 0));
  }
  private patchChecksum16(oldWord: number, newWord: number): void {
    put16(this.buf, this.off + CHECKSUM, csumReplace16(this.checksum, oldWord, newWord));
  }
}

const EMPTY = new Uint8Array(0);

export interface Ipv4HeaderFields {
  src: number;
  dst: number;
  protocol: number;
  /** payload length in bytes; Total Length = 20 + payloadLength */
  payloadLength: number;
  id?: number;
  ttl?: number;
  tos?: number;
  dontFragment?: boolean;
}

/** writeIpv4Header writes a 20-byte header (no options) with its checksum at buf[off]; returns 20. */
export function writeIpv4Header(buf: Uint8Array, off: number, f: Ipv4HeaderFields): number {
  buf[off + VER_IHL] = 0x45;
  buf[off + TOS] = f.tos ?? 0;
  put16(buf, off + TOTAL_LENGTH, IPV4_MIN_HEADER + f.payloadLength);
  put16(buf, off + ID, f.id ?? 0);
  put16(buf, off + FLAGS_FRAG, f.dontFragment ? FLAG_DF : 0);
  buf[off + TTL] = f.ttl ?? 64;
  buf[off + PROTOCOL] = f.protocol;
  put16(buf, off + CHECKSUM, 0);
  put32(buf, off + SRC, f.src);
  put32(buf, off + DST, f.dst);
  put16(buf, off + CHECKSUM, checksum(buf, off, IPV4_MIN_HEADER));
  return IPV4_MIN_HEADER;
}
