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
  return hash3(srcAddr, srcPort, FLOW_SEED) >>> 0;
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
