import { u32 } from '@onehost/wire';
import { FlowMap } from './flow-map.js';

/** fold16 folds the 16 bytes at buf[off] into an int32 (a hash key, never an address). */
export function fold16(buf: Uint8Array, off: number): number {
  return (
    u32(buf, off) ^
    Math.imul(u32(buf, off + 4), 0x9e3779b1) ^
    Math.imul(u32(buf, off + 8), 0x85ebca6b) ^
    Math.imul(u32(buf, off + 12), 0xc2b2ae35)
  );
}

/** same16: the 16 bytes of `a` equal those at buf[off]. */
export function same16(a: Uint8Array, buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== buf[off + i]) return false;
  return true;
}

interface Entry6<V> {
  addr: Uint8Array;
  value: V;
}

/**
 * FlowMap6 is FlowMap for IPv6 addresses (16 bytes, read in place): a FlowMap keyed by the address's fold
 * holds the few entries whose folds collide, each with its whole address. `get` and `delete` do not
 * allocate; `set` of a new key copies the address.
 */
export class FlowMap6<V> {
  private readonly inner = new FlowMap<Entry6<V>[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(buf: Uint8Array, off: number, port: number): V | undefined {
    const chain = this.inner.get(fold16(buf, off), port);
    if (chain === undefined) return undefined;
    for (let i = 0; i < chain.length; i++) if (same16(chain[i]!.addr, buf, off)) return chain[i]!.value;
    return undefined;
  }

  set(addr: Uint8Array, port: number, value: V): void {
    const f = fold16(addr, 0);
    let chain = this.inner.get(f, port);
    if (chain === undefined) {
      chain = [];
      this.inner.set(f, port, chain);
    }
    for (const e of chain)
      if (same16(e.addr, addr, 0)) {
        e.value = value;
        return;
      }
    chain.push({ addr: addr.slice(0, 16), value });
    this.count++;
  }

  delete(buf: Uint8Array, off: number, port: number): boolean {
    const f = fold16(buf, off);
    const chain = this.inner.get(f, port);
    if (chain === undefined) return false;
    for (let i = 0; i < chain.length; i++) {
      if (!same16(chain[i]!.addr, buf, off)) continue;
      if (chain.length === 1) this.inner.delete(f, port);
      else chain.splice(i, 1);
      this.count--;
      return true;
    }
    return false;
  }

  /** deleteOldest removes the entries of the key inserted first (a bound, as FlowMap's). */
  deleteOldest(): void {
    this.count -= this.inner.deleteOldest()?.length ?? 0;
  }

  /** sweep calls `keep` for every entry and removes those it returns false for. */
  sweep(keep: (value: V, addr: Uint8Array, port: number) => boolean): void {
    this.inner.sweep((chain, _f, port) => {
      let w = 0;
      for (let r = 0; r < chain.length; r++) {
        const e = chain[r]!;
        if (keep(e.value, e.addr, port)) chain[w++] = e;
        else this.count--;
      }
      chain.length = w;
      return w > 0;
    });
  }

  /** entries lists [addr, port, value] (allocates; off the packet path). */
  *entries(): IterableIterator<[Uint8Array, number, V]> {
    for (const [, port, chain] of this.inner.entries())
      for (const e of [...chain]) yield [e.addr, port, e.value];
  }

  clear(): void {
    this.inner.clear();
    this.count = 0;
  }
}
