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
  let a = (init + a0) | 0;
  let b = (init + b0) | 0;
  let c = init;
  // __jhash_final
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

/** fnv1a32 hashes a string's UTF-16 code units with a seed (Maglev's per-node offset and skip). */
export function fnv1a32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
