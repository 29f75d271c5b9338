/**
 * Internet checksum (RFC 1071) as small composable pieces, plus the RFC 1624 incremental update used when
 * the gateway or agent rewrites a port, an address or the MSS option without touching the rest.
 *
 * Sums are kept unfolded in a JS number (exact up to 2^53, i.e. far beyond any IPv4 packet) and folded once.
 */

/** sum16 adds the big-endian 16-bit words of buf[off, off+len) to `initial`; an odd last byte is padded. */
export function sum16(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (len & 1) sum += buf[i]! << 8;
  return sum;
}

/** fold reduces an unfolded sum to 16 bits with end-around carry. */
export function fold(sum: number): number {
  if (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** checksum is the one's complement of the folded sum of buf[off, off+len) (RFC 1071 §1). */
export function checksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~fold(sum16(buf, off, len, initial)) & 0xffff;
}

/** pseudoHeaderSum is the unfolded sum of the IPv4 pseudo header (RFC 793 §3.1, RFC 768). */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, l4Length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + l4Length;
}

/**
 * csumReplace16 updates checksum `hc` for a 16-bit field changing from `oldWord` to `newWord`,
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Eqn. 3 (not eqn. 2) so a result of 0x0000 cannot appear
 * where a full recomputation would give 0xffff.
 */
export function csumReplace16(hc: number, oldWord: number, newWord: number): number {
  let s = (~hc & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** csumReplace32 updates checksum `hc` for a 32-bit field (an IPv4 address) changing from oldV to newV. */
export function csumReplace32(hc: number, oldV: number, newV: number): number {
  return csumReplace16(csumReplace16(hc, oldV >>> 16, newV >>> 16), oldV & 0xffff, newV & 0xffff);
}

/** referenceChecksum is the slow, obvious RFC 1071 sum kept for tests: byte pairs, fold at every step. */
export function referenceChecksum(bytes: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    const hi = bytes[i]!;
    const lo = i + 1 < bytes.length ? bytes[i + 1]! : 0;
    sum += hi * 256 + lo;
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return ~sum & 0xffff;
}
