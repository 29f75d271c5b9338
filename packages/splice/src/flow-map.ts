/**
 * FlowMap maps (IPv4 address, port) to a value without allocating on lookups: a JS Map keyed by a number
 * that does not fit a small integer (address × 65536 + port) boxes it on every call, so this one keys a Map
 * by a 30-bit hash (always a small integer) and keeps the few colliding entries in a short chain. Inserting
 * allocates (the entry, sometimes a chain); `get`, `has`, `delete` and `set` of a present key do not.
 *
 * Addresses are uint32, or an int32 with the same bits (`addr | 0`), which is what entries keep and what the
 * packet path passes (`Ipv4View.srcI32`): an int32 is a small integer, while a uint32 of 2^31 or more (all
 * of 203.0.113.0/24 and 198.18.0.0/15) becomes a heap number wherever it crosses a call that is not
 * inlined, or sits in a field. `entries` and `sweep` give addresses back as uint32.
 */
export class FlowMap<V> {
  private readonly buckets = new Map<number, Entry<V>[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(addr: number, port: number): V | undefined {
    addr |= 0;
    const chain = this.buckets.get(hash(addr, port));
    if (chain === undefined) return undefined;
    for (let i = 0; i < chain.length; i++) {
      const e = chain[i]!;
      if (e.addr === addr && e.port === port) return e.value;
    }
    return undefined;
  }

  has(addr: number, port: number): boolean {
    return this.get(addr, port) !== undefined;
  }

  set(addr: number, port: number, value: V): void {
    addr |= 0;
    const h = hash(addr, port);
    let chain = this.buckets.get(h);
    if (chain === undefined) {
      chain = [];
      this.buckets.set(h, chain);
    }
    for (let i = 0; i < chain.length; i++) {
      const e = chain[i]!;
      if (e.addr === addr && e.port === port) {
        e.value = value;
        return;
      }
    }
    chain.push({ addr, port, value });
    this.count++;
  }

  delete(addr: number, port: number): boolean {
    addr |= 0;
    const h = hash(addr, port);
    const chain = this.buckets.get(h);
    if (chain === undefined) return false;
    for (let i = 0; i < chain.length; i++) {
      const e = chain[i]!;
      if (e.addr === addr && e.port === port) {
        // Shifted by hand: splice would allocate the array of removed entries.
        for (let j = i + 1; j < chain.length; j++) chain[j - 1] = chain[j]!;
        chain.length--;
        if (chain.length === 0) this.buckets.delete(h);
        this.count--;
        return true;
      }
    }
    return false;
  }

  /**
   * deleteOldest removes the entry inserted first (a bound: callers keep the map from growing) and
   * returns its value.
   */
  deleteOldest(): V | undefined {
    for (const [h, chain] of this.buckets) {
      const e = chain.shift();
      if (chain.length === 0) this.buckets.delete(h);
      this.count--;
      return e?.value;
    }
    return undefined;
  }

  /**
   * sweep calls `keep` for every entry and removes those it returns false for, without copying the map
   * (a timer's walk over every flow).
   */
  sweep(keep: (value: V, addr: number, port: number) => boolean): void {
    for (const [h, chain] of this.buckets) {
      let w = 0;
      for (let r = 0; r < chain.length; r++) {
        const e = chain[r]!;
        if (keep(e.value, e.addr >>> 0, e.port)) chain[w++] = e;
        else this.count--;
      }
      chain.length = w;
      if (w === 0) this.buckets.delete(h);
    }
  }

  /** entries lists [addr, port, value] (allocates; off the packet path). */
  *entries(): IterableIterator<[number, number, V]> {
    for (const chain of [...this.buckets.values()])
      for (const e of [...chain]) yield [e.addr >>> 0, e.port, e.value];
  }

  clear(): void {
    this.buckets.clear();
    this.count = 0;
  }
}

interface Entry<V> {
  /** the address as int32 (`addr | 0`): a small integer, never a heap number. */
  addr: number;
  port: number;
  value: V;
}

/** hash folds an address (int32) and a port into 30 bits (a small integer on every V8 platform). */
function hash(addr: number, port: number): number {
  return (Math.imul(addr, 0x9e3779b1) ^ Math.imul(port, 0x85ebca6b) ^ (addr >>> 17)) & 0x3fffffff;
}
