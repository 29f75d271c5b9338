/**
 * Deterministic 32-bit hashes. Every gateway must compute the same values for the same inputs (Maglev
 * tables, flow hashes), so nothing here is seeded at random or depends on the JS engine's string hashing.
 */

/** fmix32 is MurmurHash3's finaliser: a bijective avalanche of one 32-bit word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * hash3 mixes three 32-bit words into one, returned as an int32 (a small integer the engine never boxes;
 * mask it, or `>>> 0` it before a modulo).
 */
export function hash3(a: number, b: number, c: number): number {
  let h = mix(a ^ 0x9e3779b9);
  h = mix((h ^ b) + 0x7f4a7c15);
  return mix((h ^ c) + 0x165667b1);
}

/** hashWords mixes n int32 words of k from `at` into one int32, as hash3 does for three. */
export function hashWords(k: Int32Array, at: number, n: number): number {
  let h = mix(k[at]! ^ 0x9e3779b9);
  for (let i = 1; i < n; i++) h = mix((h ^ k[at + i]!) + 0x7f4a7c15 + i);
  return h;
}

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** FLOW_SEED is the third word of a client flow's hash. */
export const FLOW_SEED = 0x4f4e4548;

/** flowHash is the hash of a client flow (source address, source port) that picks a Maglev slot (uint32). */
export function flowHash(srcAddr: number, srcPort: number): number {
  return jhashAddrPort(srcAddr, srcPort, FLOW_SEED);
}

const rol32 = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/**
 * jhashAddrPort is the Linux kernel's `jhash()` (Bob Jenkins' lookup3, include/linux/jhash.h) of the
 * 8 bytes nftables hashes for `jhash ip saddr . th sport`: the address in network order, then the port in
 * network order padded with two zero bytes (nftables keeps each part of a concatenation in a 32-bit
 * register). Equal to what the kernel computes, so a Maglev table written into an nftables map picks the
 * same slot for a flow as the switch does. Returns a uint32.
 */
export function jhashAddrPort(srcAddr: number, srcPort: number, seed: number): number {
  // jhash's tail reads bytes one by one into little-endian words
  const a0 =
    ((srcAddr >>> 24) & 0xff) |
    (((srcAddr >>> 16) & 0xff) << 8) |
    (((srcAddr >>> 8) & 0xff) << 16) |
    ((srcAddr & 0xff) << 24);
  const b0 = ((srcPort >>> 8) & 0xff) | ((srcPort & 0xff) << 8);
  const init = (0xdeadbeef + 8 + seed) | 0;
  const a = (init + a0) | 0;
  const b = (init + b0) | 0;
  const c = init;
  return jhashFinal(a, b, c);
}

/**
 * reciprocalScale maps a uint32 hash onto [0, size) the way the kernel's `reciprocal_scale` does
 * (`(hash * size) >> 32`), which is what nftables' `jhash … mod size` uses.
 */
export function reciprocalScale(hash: number, size: number): number {
  // hash < 2^32 and size < 2^21 keep the product below 2^53: exact in a double
  return Math.floor(((hash >>> 0) * size) / 4294967296);
}

/** maglevSlot is the Maglev slot of a client flow: the slot nftables' `jhash ip saddr . th sport mod size seed FLOW_SEED` reads. */
export function maglevSlot(srcAddr: number, srcPort: number, size: number): number {
  return reciprocalScale(jhashAddrPort(srcAddr, srcPort, FLOW_SEED), size);
}

/**
 * jhashBytes is the Linux kernel's `jhash()` (include/linux/jhash.h) of k[0, len): words read
 * little-endian (the kernel's unaligned CPU reads on x86), a mix per 12 bytes but the last 1 to 12, which
 * the tail adds byte by byte before the final mix. Returns a uint32. For explain, not per packet.
 */
export function jhashBytes(k: Uint8Array, len: number, seed: number): number {
  let a = (0xdeadbeef + len + seed) | 0;
  let b = a;
  let c = a;
  const le = (i: number) => k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24);
  let i = 0;
  let n = len;
  for (; n > 12; n -= 12, i += 12) {
    jhashMix((a + le(i)) | 0, (b + le(i + 4)) | 0, (c + le(i + 8)) | 0);
    a = ABC[0]!;
    b = ABC[1]!;
    c = ABC[2]!;
  }
  if (n === 0) return c >>> 0;
  // the tail: byte j of the last n goes into a, b or c at bit 8 * (j % 4)
  for (let j = 0; j < n; j++) {
    const v = k[i + j]! << (8 * (j % 4));
    if (j < 4) a = (a + v) | 0;
    else if (j < 8) b = (b + v) | 0;
    else c = (c + v) | 0;
  }
  return jhashFinal(a, b, c);
}

/** ABC holds jhashMix's result: three words without an array per call (the switch hashes per packet). */
const ABC = new Int32Array(3);

/** jhashMix is the kernel's __jhash_mix of (a, b, c); leaves the result in ABC. */
function jhashMix(a: number, b: number, c: number): void {
  a = (a - c) | 0;
  a ^= rol32(c, 4);
  c = (c + b) | 0;
  b = (b - a) | 0;
  b ^= rol32(a, 6);
  a = (a + c) | 0;
  c = (c - b) | 0;
  c ^= rol32(b, 8);
  b = (b + a) | 0;
  a = (a - c) | 0;
  a ^= rol32(c, 16);
  c = (c + b) | 0;
  b = (b - a) | 0;
  b ^= rol32(a, 19);
  a = (a + c) | 0;
  c = (c - b) | 0;
  c ^= rol32(b, 4);
  b = (b + a) | 0;
  ABC[0] = a;
  ABC[1] = b;
  ABC[2] = c;
}

/** jhashFinal is the kernel's __jhash_final of (a, b, c); returns c as a uint32. */
function jhashFinal(a: number, b: number, c: number): number {
  c ^= b;
  c = (c - rol32(b, 14)) | 0;
  a ^= c;
  a = (a - rol32(c, 11)) | 0;
  b ^= a;
  b = (b - rol32(a, 25)) | 0;
  c ^= b;
  c = (c - rol32(b, 16)) | 0;
  a ^= c;
  a = (a - rol32(c, 4)) | 0;
  b ^= a;
  b = (b - rol32(a, 14)) | 0;
  c ^= b;
  c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}

/**
 * jhashAddr6Port is jhashBytes of the 20 bytes nftables hashes for `jhash ip6 saddr . th sport`: the
 * IPv6 address at buf[off, off+16), then the port in network order padded with two zero bytes. Reads the
 * address in place (nothing allocated: the switch calls it per packet). Returns a uint32.
 */
export function jhashAddr6Port(buf: Uint8Array, off: number, srcPort: number, seed: number): number {
  const le = (i: number) => buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
  const init = (0xdeadbeef + 20 + seed) | 0;
  // __jhash_mix over the first 12 bytes
  jhashMix((init + le(off)) | 0, (init + le(off + 4)) | 0, (init + le(off + 8)) | 0);
  let a = ABC[0]!;
  let b = ABC[1]!;
  const c = ABC[2]!;
  // the tail: the address's last 4 bytes, then the port's two bytes (and two zero bytes)
  a = (a + le(off + 12)) | 0;
  b = (b + (((srcPort >>> 8) & 0xff) | ((srcPort & 0xff) << 8))) | 0;
  return jhashFinal(a, b, c);
}

/**
 * maglevSlot6 is the slot nftables' `jhash ip6 saddr . th sport mod size seed FLOW_SEED` reads for an
 * IPv6 client whose address is at buf[off, off+16).
 */
export function maglevSlot6(buf: Uint8Array, off: number, srcPort: number, size: number): number {
  return reciprocalScale(jhashAddr6Port(buf, off, srcPort, FLOW_SEED), size);
}

/** fnv1a32 hashes a string's UTF-16 code units with a seed (Maglev's per-node offset and skip). */
export function fnv1a32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
