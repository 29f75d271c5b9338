import { hash3 } from '../hash.js';

/**
 * SlotTable is a bounded hash table over typed arrays, keyed by three uint32 words, with an intrusive
 * LRU list: no JS object per entry, so a million entries cost tens of bytes each and the garbage
 * collector never walks them. Values live in the owner's parallel arrays, indexed by the slot number.
 *
 * Collisions chain through `next`; buckets hold slot + 1 (0 = empty) so fresh zeroed arrays need no
 * initialising pass; slots are handed out from a high-water mark, then recycled through a free list.
 * `expires` is the owner's deadline (milliseconds, the owner's clock); the table only stores it.
 */
export class SlotTable {
  readonly capacity: number;
  readonly keyA: Uint32Array;
  readonly keyB: Uint32Array;
  readonly keyC: Uint32Array;
  readonly expires: Float64Array;
  private readonly buckets: Int32Array;
  private readonly mask: number;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly newer: Int32Array;
  private readonly older: Int32Array;
  private freeHead = -1;
  private used = 0;
  /** most and least recently used slots, -1 when empty. */
  head = -1;
  tail = -1;
  size = 0;

  /** constructor throws RangeError when capacity is not an integer in [1, 2^26]. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 26) {
      throw new RangeError(`slot table capacity must be an integer in [1, 2^26], got ${capacity}`);
    }
    this.capacity = capacity;
    let nb = 1;
    while (nb < capacity) nb <<= 1;
    this.buckets = new Int32Array(nb);
    this.mask = nb - 1;
    this.keyA = new Uint32Array(capacity);
    this.keyB = new Uint32Array(capacity);
    this.keyC = new Uint32Array(capacity);
    this.expires = new Float64Array(capacity);
    this.next = new Int32Array(capacity);
    this.prev = new Int32Array(capacity);
    this.newer = new Int32Array(capacity);
    this.older = new Int32Array(capacity);
  }

  /** bytes held by the typed arrays (for sizing reports). */
  get byteLength(): number {
    return this.buckets.byteLength + this.capacity * (4 * 3 + 8 + 4 * 4);
  }

  get full(): boolean {
    return this.size === this.capacity;
  }

  /** find returns the slot holding the key, or -1. */
  find(a: number, b: number, c: number): number {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    const ka = this.keyA;
    const kb = this.keyB;
    const kc = this.keyC;
    let s = this.buckets[hash3(a, b, c) & this.mask]! - 1;
    while (s >= 0) {
      if (ka[s] === a && kb[s] === b && kc[s] === c) return s;
      s = this.next[s]!;
    }
    return -1;
  }

  /**
   * insert takes a free slot for a key that is not present and makes it the most recent; returns the
   * slot, or -1 when the table is full (the owner evicts `tail` first: it must release its values).
   */
  insert(a: number, b: number, c: number): number {
    let s = this.freeHead;
    if (s >= 0) this.freeHead = this.next[s]!;
    else if (this.used < this.capacity) s = this.used++;
    else return -1;
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    this.keyA[s] = a;
    this.keyB[s] = b;
    this.keyC[s] = c;
    const bi = hash3(a, b, c) & this.mask;
    const first = this.buckets[bi]! - 1;
    this.next[s] = first;
    this.prev[s] = -1;
    if (first >= 0) this.prev[first] = s;
    this.buckets[bi] = s + 1;
    this.linkHead(s);
    this.size++;
    return s;
  }

  /** remove frees a slot that `find` or `insert` returned. */
  remove(s: number): void {
    const n = this.next[s]!;
    const p = this.prev[s]!;
    if (p >= 0) this.next[p] = n;
    else this.buckets[hash3(this.keyA[s]!, this.keyB[s]!, this.keyC[s]!) & this.mask] = n + 1;
    if (n >= 0) this.prev[n] = p;
    this.unlinkLru(s);
    this.next[s] = this.freeHead;
    this.freeHead = s;
    this.size--;
  }

  /** touch makes a slot the most recently used. */
  touch(s: number): void {
    if (this.head === s) return;
    this.unlinkLru(s);
    this.linkHead(s);
  }

  /** olderThan returns the next less recently used slot after s, or -1. */
  olderThan(s: number): number {
    return this.older[s]!;
  }

  /** newerThan returns the next more recently used slot after s, or -1. */
  newerThan(s: number): number {
    return this.newer[s]!;
  }

  clear(): void {
    this.buckets.fill(0);
    this.freeHead = -1;
    this.used = 0;
    this.head = -1;
    this.tail = -1;
    this.size = 0;
  }

  private linkHead(s: number): void {
    const h = this.head;
    this.newer[s] = -1;
    this.older[s] = h;
    if (h >= 0) this.newer[h] = s;
    else this.tail = s;
    this.head = s;
  }

  private unlinkLru(s: number): void {
    const nw = this.newer[s]!;
    const ol = this.older[s]!;
    if (nw >= 0) this.older[nw] = ol;
    else this.head = ol;
    if (ol >= 0) this.newer[ol] = nw;
    else this.tail = nw;
  }
}
