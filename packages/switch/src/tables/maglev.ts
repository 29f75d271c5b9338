import { fnv1a32 } from '../hash.js';

/** DEFAULT_MAGLEV_SIZE is a prime well above 100 × the node counts we expect (Maglev §3.4). */
export const DEFAULT_MAGLEV_SIZE = 65537;

/** MAX_MAGLEV_SIZE caps table memory (4 bytes per slot). */
export const MAX_MAGLEV_SIZE = 1_000_003;

/** isPrime by trial division (table sizes only, never per packet). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** A Maglev backend: the node id written into slots, and the name its permutation is derived from. */
export interface MaglevBackend {
  id: number;
  name: string;
}

/**
 * buildMaglev fills a lookup table of `size` slots with backend ids by Maglev's population (Eisenbud et
 * al., NSDI 2016, §3.4): each backend walks its own permutation (offset, skip from hashes of its name) and
 * takes turns claiming the next free slot. A pure function: the same backends give the same table on every
 * run and every gateway, whatever order they are listed in (they are sorted by name first). Slot counts
 * differ by at most one between backends. With no backends every slot is -1.
 *
 * Throws RangeError when size is not a prime in [2, MAX_MAGLEV_SIZE] or two backends share a name.
 */
export function buildMaglev(backends: readonly MaglevBackend[], size = DEFAULT_MAGLEV_SIZE): Int32Array {
  if (size > MAX_MAGLEV_SIZE || !isPrime(size)) {
    throw new RangeError(`maglev table size must be a prime in [2, ${MAX_MAGLEV_SIZE}], got ${size}`);
  }
  const table = new Int32Array(size).fill(-1);
  const n = backends.length;
  if (n === 0) return table;
  const sorted = [...backends].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < n; i++) {
    if (sorted[i]!.name === sorted[i - 1]!.name)
      throw new RangeError(`maglev backend name ${sorted[i]!.name} twice`);
  }
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const name = sorted[i]!.name;
    pos[i] = fnv1a32(name, 0x6d61676c) % size;
    skip[i] = size === 2 ? 1 : (fnv1a32(name, 0x65763031) % (size - 1)) + 1;
  }
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = pos[i]!;
      while (table[c]! >= 0) {
        c += skip[i]!;
        if (c >= size) c -= size;
      }
      table[c] = sorted[i]!.id;
      c += skip[i]!;
      if (c >= size) c -= size;
      pos[i] = c;
      if (++filled === size) return table;
    }
  }
}
