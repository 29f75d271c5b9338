/**
 * StateStore keeps routing-function state (connection tables, cursors) across snapshot swaps: a new
 * snapshot's functions find the state of the same entry under the same key. Keys the newest snapshot
 * did not ask for are dropped when it is swapped in.
 */
export class StateStore {
  private readonly values = new Map<string, unknown>();

  /** get returns the value under key, making it first when absent; records the key in `used`. */
  get<T>(key: string, make: () => T, used: Set<string>): T {
    used.add(key);
    if (this.values.has(key)) return this.values.get(key) as T;
    const v = make();
    this.values.set(key, v);
    return v;
  }

  /** retainOnly drops every key not in `keys`. */
  retainOnly(keys: ReadonlySet<string>): void {
    for (const k of [...this.values.keys()]) if (!keys.has(k)) this.values.delete(k);
  }

  get size(): number {
    return this.values.size;
  }
}
