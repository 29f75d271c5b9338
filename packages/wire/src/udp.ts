import { put16, u16 } from './bytes.js';
import { checksum, csumReplace16, fold, pseudoHeaderSum, sum16 } from './checksum.js';
import { type Checked, checked, defineError, OK } from './errors.js';
import { IPPROTO } from './ipv4.js';

/*
 * RFC 768
 *  0      7 8     15 16    23 24    31
 * +--------+--------+--------+--------+
 * |     Source      |   Destination   |
 * |      Port       |      Port       |
 * +--------+--------+--------+--------+
 * |                 |                 |
 * |     Length      |    Checksum     |
 * +--------+--------+--------+--------+
 */
const SRC_PORT = 0;
const DST_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;

export const UDP_HEADER = 8;

export const UDP_TRUNCATED = defineError(201, 'truncated', 'udp_truncated');
export const UDP_LENGTH_TOO_SMALL = defineError(202, 'malformed', 'udp_length_too_small');
export const UDP_LENGTH_PAST_END = defineError(203, 'truncated', 'udp_length_past_end');

/**
 * UdpView is a reusable view over one datagram. After `bind` returns OK, `len` is the UDP Length field
 * (bytes past it are ignored) and lies inside the buffer.
 * Checksum 0 means "none computed" (RFC 768); a computed 0 is sent as 0xffff.
 */
export class UdpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** bind checks and points the view at a datagram within `len` bytes; OK or a UDP_* code. */
  bind(buf: Uint8Array, off: number, len: number): number {
    if (off < 0 || len < UDP_HEADER || off + len > buf.length) return UDP_TRUNCATED;
    const l = u16(buf, off + LENGTH);
    if (l < UDP_HEADER) return UDP_LENGTH_TOO_SMALL;
    if (l > len) return UDP_LENGTH_PAST_END;
    this.buf = buf;
    this.off = off;
    this.len = l;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<UdpView> {
    const v = new UdpView();
    return checked(v.bind(buf, off, len), v);
  }

  get srcPort(): number {
    return u16(this.buf, this.off + SRC_PORT);
  }
  get dstPort(): number {
    return u16(this.buf, this.off + DST_PORT);
  }
  get length(): number {
    return u16(this.buf, this.off + LENGTH);
  }
  get checksum(): number {
    return u16(this.buf, this.off + CHECKSUM);
  }
  /** hasChecksum is false when the sender left the field 0 (RFC 768). */
  get hasChecksum(): boolean {
    return this.checksum !== 0;
  }
  get payloadOffset(): number {
    return this.off + UDP_HEADER;
  }
  get payloadLength(): number {
    return this.len - UDP_HEADER;
  }

  /** verifyChecksum: true when there is no checksum (0) or it is correct. */
  verifyChecksum(src: number, dst: number): boolean {
    if (!this.hasChecksum) return true;
    return (
      fold(sum16(this.buf, this.off, this.len, pseudoHeaderSum(src, dst, IPPROTO.UDP, this.len))) === 0xffff
    );
  }
  /** computeChecksum stores the checksum; a computed 0 is stored as 0xffff (RFC 768). */
  computeChecksum(src: number, dst: number): void {
    put16(this.buf, this.off + CHECKSUM, 0);
    const c = checksum(this.buf, this.off, this.len, pseudoHeaderSum(src, dst, IPPROTO.UDP, this.len));
    put16(this.buf, this.off + CHECKSUM, c === 0 ? 0xffff : c);
  }
  setSrcPort(port: number): void {
    const old = this.srcPort;
    put16(this.buf, this.off + SRC_PORT, port);
    this.patch(old, port & 0xffff);
  }
  setDstPort(port: number): void {
    const old = this.dstPort;
    put16(this.buf, this.off + DST_PORT, port);
    this.patch(old, port & 0xffff);
  }
  /** patch keeps "no checksum" as 0 and maps a computed 0 to 0xffff. */
  private patch(oldWord: number, newWord: number): void {
    const c = this.checksum;
    if (c === 0) return;
    const n = csumReplace16(c, oldWord, newWord);
    put16(this.buf, this.off + CHECKSUM, n === 0 ? 0xffff : n);
  }
}

const EMPTY = new Uint8Array(0);

/** writeUdpHeader writes the 8-byte header (checksum 0) for a payload of `payloadLength`; returns 8. */
export function writeUdpHeader(
  buf: Uint8Array,
  off: number,
  srcPort: number,
  dstPort: number,
  payloadLength: number,
): number {
  put16(buf, off + SRC_PORT, srcPort);
  put16(buf, off + DST_PORT, dstPort);
  put16(buf, off + LENGTH, UDP_HEADER + payloadLength);
  put16(buf, off + CHECKSUM, 0);
  return UDP_HEADER;
}
