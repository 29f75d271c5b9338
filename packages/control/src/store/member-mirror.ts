import { decodeSnapshot, type EtcdKeys, type KeyValue, type Snapshot } from './etcd-layout.js';

/** one key as last seen: its value (null: deleted) and the revision that wrote it */
interface Seen {
  value: string | null;
  revision: number;
}

/**
 * MemberMirror is this gateway's copy of the keys an admission reads (the members and the id counter),
 * kept by the store's watch and by its own commits, so that admitting a node costs one transaction
 * instead of a read of the whole prefix (with a thousand members, that read made every admission slow
 * and joins time out). Each key keeps the newest revision seen: a commit applied after the watch has
 * already delivered a later change to the same key does not undo it, and a delete is remembered so a
 * late put cannot bring the key back. Correctness never rests on the mirror being current: every
 * admission's transaction compares the counter's revision, and one that lost is tried again.
 */
export class MemberMirror {
  private readonly keys = new Map<string, Seen>();
  private cached: Snapshot | null = null;

  constructor(
    private readonly source: string,
    private readonly layout: EtcdKeys,
  ) {}

  /** holds says whether `key` is one the mirror keeps. */
  holds(key: string): boolean {
    return key === this.layout.counter || key.startsWith(this.layout.members);
  }

  /** apply records `key` as `value` (null: deleted) at `revision`, unless it has seen a newer one. */
  apply(key: string, value: string | null, revision: number): void {
    if (!this.holds(key)) return;
    const had = this.keys.get(key);
    if (had !== undefined && had.revision >= revision) return;
    this.keys.set(key, { value, revision });
    this.cached = null;
  }

  /** counterRevision is the id counter's revision as the mirror holds it ('0': never written). */
  get counterRevision(): string {
    const c = this.keys.get(this.layout.counter);
    return c?.value == null ? '0' : String(c.revision);
  }

  /**
   * snapshot is the mirror as a Snapshot (exports not kept: admissions do not read them). Throws
   * StoreFileError like decodeSnapshot for a malformed value: the caller then reads etcd itself.
   */
  snapshot(): Snapshot {
    if (this.cached === null) {
      const kvs: KeyValue[] = [];
      for (const [key, s] of this.keys)
        if (s.value !== null) kvs.push({ key, value: s.value, modRevision: String(s.revision) });
      this.cached = decodeSnapshot(this.source, this.layout, kvs);
    }
    return this.cached;
  }
}
