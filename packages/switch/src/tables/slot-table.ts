import { hash3, hashWords } from '../hash.js';

/** Words per slot in `u32` (32 bytes: two slots per 64-byte cache line). */
export const SLOT_WORDS = 8;
/**
 * A wide table (IPv6 flows) keys by six words (a 128-bit address and two more words) and keeps each
 * slot in its own 64-byte line: key 0-5, hash 6, value 7, aux 8, deadline at words 14-15.
 */
export const WIDE_KEY_WORDS = 6;
const WIDE_SLOT_WORDS = 16;
const WIDE_HASH = 6;
const WIDE_VALUE = 7;
const WIDE_AUX = 8;
const WIDE_EXPIRES_F64 = 7;
const A = 0;
const B = 1;
const C = 2;
/** the key's full hash (its home position is hash & mask), kept so deletion never rehashes. */
const HASH = 3;
/** owner's 24-bit value (e.g. node << 8 | state) in the low bits, control bits in the top byte. */
const VALUE = 4;
/** owner's second word (e.g. TCP ISN or a rewritten port). */
const AUX = 5;
/** expiry deadline as float64 at u32 words 6-7 (f64 index slot * 4 + 3). */
const EXPIRES_F64 = 3;

const USED = 0x01000000;
const REF = 0x02000000;
const CTL = 0xff000000 | 0;
const VALUE_MASK = 0x00ffffff;

/** MAX_LOAD keeps linear probes short: the table has at least capacity / MAX_LOAD slots. */
const MAX_LOAD = 0.75;

/**
 * SlotTable is a bounded hash table keyed by three uint32 words, laid out for the packet loop: open
 * addressing with linear probing over one ArrayBuffer where each slot's key, hash, owner values,
 * control bits and deadline sit together in 32 bytes. A lookup usually touches one cache line, and no
 * JS object exists per entry (the garbage collector never walks them). Keys and words are handled as
 * int32 (`x | 0`) so the packet loop passes small integers the engine never boxes. Deletion shifts the following
 * entries back (no tombstones), so slot numbers are valid only until the next remove.
 *
 * Eviction is CLOCK (second chance), an approximation of least-recently-used that needs no list
 * updates per packet: `touch` sets a referenced bit; `victim` advances a hand over the slots, clearing
 * referenced bits, and returns the first entry that is expired or was not referenced since the hand
 * last passed it.
 */
export class SlotTable {
  /** the most entries the table holds. */
  readonly capacity: number;
  /** number of slots (a power of two). */
  readonly slotCount: number;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** key words per slot: 3, or WIDE_KEY_WORDS for a wide table (`findWide`, `insertWide`). */
  readonly keyWords: number;
  private readonly mask: number;
  /** the layout: words per slot, where the hash, value and aux words sit, the deadline's f64 index */
  private readonly stride: number;
  private readonly hashAt: number;
  private readonly valueAt: number;
  private readonly auxAt: number;
  private readonly f64Stride: number;
  private readonly expiresAt: number;
  private hand = 0;
  private sweepAt = 0;
  size = 0;

  /**
   * constructor throws RangeError when capacity is not an integer in [1, 2^26], or keyWords is neither 3
   * nor WIDE_KEY_WORDS.
   */
  constructor(capacity: number, keyWords = 3) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 26) {
      throw new RangeError(`slot table capacity must be an integer in [1, 2^26], got ${capacity}`);
    }
    if (keyWords !== 3 && keyWords !== WIDE_KEY_WORDS)
      throw new RangeError(`slot table keys are 3 or ${WIDE_KEY_WORDS} words, got ${keyWords}`);
    const wide = keyWords === WIDE_KEY_WORDS;
    this.keyWords = keyWords;
    this.stride = wide ? WIDE_SLOT_WORDS : SLOT_WORDS;
    this.hashAt = wide ? WIDE_HASH : HASH;
    this.valueAt = wide ? WIDE_VALUE : VALUE;
    this.auxAt = wide ? WIDE_AUX : AUX;
    this.f64Stride = this.stride >>> 1;
    this.expiresAt = wide ? WIDE_EXPIRES_F64 : EXPIRES_F64;
    this.capacity = capacity;
    let n = 2;
    while (n * MAX_LOAD < capacity) n <<= 1;
    this.slotCount = n;
    this.mask = n - 1;
    const mem = new ArrayBuffer(n * this.stride * 4);
    this.i32 = new Int32Array(mem);
    this.f64 = new Float64Array(mem);
  }

  /** byteLength is the memory the table holds. */
  get byteLength(): number {
    return this.i32.byteLength;
  }

  get full(): boolean {
    return this.size === this.capacity;
  }

  /** find returns the slot holding the key, or -1. */
  find(a: number, b: number, c: number): number {
    a |= 0;
    b |= 0;
    c |= 0;
    const u = this.i32;
    const mask = this.mask;
    let i = hash3(a, b, c) & mask;
    for (;;) {
      const o = i * SLOT_WORDS;
      if ((u[o + VALUE]! & USED) === 0) return -1;
      if (u[o + A] === a && u[o + B] === b && u[o + C] === c) return i;
      i = (i + 1) & mask;
    }
  }

  /** findWide returns the slot of a wide table holding the six words k[at..at+6), or -1. */
  findWide(k: Int32Array, at: number): number {
    const u = this.i32;
    const mask = this.mask;
    let i = hashWords(k, at, WIDE_KEY_WORDS) & mask;
    for (;;) {
      const o = i * WIDE_SLOT_WORDS;
      if ((u[o + WIDE_VALUE]! & USED) === 0) return -1;
      if (
        u[o] === k[at] &&
        u[o + 1] === k[at + 1] &&
        u[o + 2] === k[at + 2] &&
        u[o + 3] === k[at + 3] &&
        u[o + 4] === k[at + 4] &&
        u[o + 5] === k[at + 5]
      )
        return i;
      i = (i + 1) & mask;
    }
  }

  /** insert places a key that is not present; returns its slot, or -1 when full (evict first). */
  insert(a: number, b: number, c: number): number {
    if (this.size >= this.capacity) return -1;
    a |= 0;
    b |= 0;
    c |= 0;
    const u = this.i32;
    const mask = this.mask;
    const h = hash3(a, b, c);
    let i = h & mask;
    while ((u[i * SLOT_WORDS + VALUE]! & USED) !== 0) i = (i + 1) & mask;
    const o = i * SLOT_WORDS;
    u[o + A] = a;
    u[o + B] = b;
    u[o + C] = c;
    u[o + HASH] = h;
    u[o + VALUE] = USED;
    u[o + AUX] = 0;
    this.f64[i * 4 + EXPIRES_F64] = 0;
    this.size++;
    return i;
  }

  /** insertWide places the six words k[at..at+6) in a wide table, as `insert` does. */
  insertWide(k: Int32Array, at: number): number {
    if (this.size >= this.capacity) return -1;
    const u = this.i32;
    const mask = this.mask;
    const h = hashWords(k, at, WIDE_KEY_WORDS);
    let i = h & mask;
    while ((u[i * WIDE_SLOT_WORDS + WIDE_VALUE]! & USED) !== 0) i = (i + 1) & mask;
    const o = i * WIDE_SLOT_WORDS;
    for (let w = 0; w < WIDE_KEY_WORDS; w++) u[o + w] = k[at + w]!;
    u[o + WIDE_HASH] = h;
    u[o + WIDE_VALUE] = USED;
    u[o + WIDE_AUX] = 0;
    this.f64[i * 8 + WIDE_EXPIRES_F64] = 0;
    this.size++;
    return i;
  }

  /** remove frees a slot that `find` or `insert` returned, shifting later entries of its run back. */
  remove(slot: number): void {
    const u = this.i32;
    const mask = this.mask;
    const w = this.stride;
    const value = this.valueAt;
    const hash = this.hashAt;
    let i = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      const jo = j * w;
      if ((u[jo + value]! & USED) === 0) break;
      const home = u[jo + hash]! & mask;
      // j may move to i when its home is not cyclically within (i, j].
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!between) {
        u.copyWithin(i * w, jo, jo + w);
        i = j;
      }
    }
    u[i * w + value] = 0;
    this.size--;
  }

  /** touch marks a slot as recently used (one bit in the slot's own line). */
  touch(s: number): void {
    this.i32[s * this.stride + this.valueAt]! |= REF;
  }

  isUsed(s: number): boolean {
    return (this.i32[s * this.stride + this.valueAt]! & USED) !== 0;
  }

  /** key returns one key word of a slot (0-2, or 0-5 in a wide table) as a uint32. */
  key(s: number, word: number): number {
    return this.i32[s * this.stride + word]! >>> 0;
  }

  expires(s: number): number {
    return this.f64[s * this.f64Stride + this.expiresAt]!;
  }

  setExpires(s: number, t: number): void {
    this.f64[s * this.f64Stride + this.expiresAt] = t;
  }

  /*
   * The hot path reads and computes deadlines only here: a double returned from or passed into a call
   * the JIT chose not to inline is boxed (a heap allocation per packet); booleans and small integers are not.
   */

  /** expired is `expires(s) <= now`. */
  expired(s: number, now: number): boolean {
    return this.f64[s * this.f64Stride + this.expiresAt]! <= now;
  }

  /** setExpiresAfter sets the deadline to now + ttl (ms). */
  setExpiresAfter(s: number, now: number, ttl: number): void {
    this.f64[s * this.f64Stride + this.expiresAt] = now + ttl;
  }

  /** value is the owner's 24-bit word. */
  value(s: number): number {
    return this.i32[s * this.stride + this.valueAt]! & VALUE_MASK;
  }

  setValue(s: number, v: number): void {
    const o = s * this.stride + this.valueAt;
    this.i32[o] = (this.i32[o]! & CTL) | (v & VALUE_MASK);
  }

  /** aux is the owner's second word, as an int32. */
  aux(s: number): number {
    return this.i32[s * this.stride + this.auxAt]!;
  }

  setAux(s: number, v: number): void {
    this.i32[s * this.stride + this.auxAt] = v | 0;
  }

  /**
   * victim returns the slot CLOCK would evict: the first used slot from the hand that is expired at
   * `now` or not referenced since the hand last passed (clearing referenced bits on the way); -1 when
   * the table is empty. The caller removes it.
   */
  victim(now: number): number {
    if (this.size === 0) return -1;
    const u = this.i32;
    const n = this.slotCount;
    // Two turns suffice: the first clears every referenced bit.
    for (let k = 0; k < 2 * n + 1; k++) {
      const s = this.hand;
      this.hand = (s + 1) & this.mask;
      const o = s * this.stride + this.valueAt;
      const v = u[o]!;
      if ((v & USED) === 0) continue;
      if ((v & REF) === 0 || this.expired(s, now)) return s;
      u[o] = v & ~REF;
    }
    return -1;
  }

  /**
   * nextExpired advances a sweep cursor over at most `budget` slots and returns the first used slot
   * expired at `now`, or -1 when none was found within the budget.
   */
  nextExpired(now: number, budget: number): number {
    const u = this.i32;
    for (let k = 0; k < budget; k++) {
      const s = this.sweepAt;
      this.sweepAt = (s + 1) & this.mask;
      if ((u[s * this.stride + this.valueAt]! & USED) !== 0 && this.expired(s, now)) return s;
    }
    return -1;
  }

  clear(): void {
    this.i32.fill(0);
    this.hand = 0;
    this.sweepAt = 0;
    this.size = 0;
  }
}
