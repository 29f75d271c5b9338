import { decodeSnapshot, type EtcdKeys, type Snapshot } from './etcd-layout.js';
import { StoreFileError } from './file-format.js';
import type { MemberRecord } from './records.js';

/** one key as last seen: its record (null: deleted; an Error: malformed) and the revision that wrote it */
interface Seen {
  record: MemberRecord | number | Error | null;
  revision: number;
}

/**
 * MemberMirror is this gateway's copy of the keys an admission reads (the members and the id counter),
 * kept by the store's watch and by its own commits, so that admitting a node costs one transaction
 * instead of a read of the whole prefix (with a thousand members, that read made every admission slow
 * and joins time out). Values are decoded once, when they arrive. Each key keeps the newest revision
 * seen: a commit applied after the watch has already delivered a later change to the same key does not
 * undo it, and a delete is remembered so a late put cannot bring the key back. Correctness never rests
 * on the mirror being current: every admission's transaction compares the counter's revision, and one
 * that lost is tried again.
 */
export class MemberMirror {
  private readonly keys = new Map<string, Seen>();
  private cached: Snapshot | null = null;

  constructor(
    private readonly source: string,
    private readonly layout: EtcdKeys,
  ) {}

  /** apply records `key` as `value` (null: deleted) at `revision`, unless it has seen a newer one. */
  apply(key: string, value: string | null, revision: number): void {
    const counter = key === this.layout.counter;
    if (!counter && !key.startsWith(this.layout.members)) return;
    const had = this.keys.get(key);
    if (had !== undefined && had.revision >= revision) return;
    this.keys.set(key, { record: value === null ? null : this.decode(key, value, counter), revision });
    this.cached = null;
  }

  /** counterRevision is the id counter's revision as the mirror holds it ('0': never written). */
  get counterRevision(): string {
    const c = this.keys.get(this.layout.counter);
    return c === undefined || c.record === null ? '0' : String(c.revision);
  }

  /**
   * snapshot is the mirror as a Snapshot (exports not kept: admissions do not read them). Throws
   * StoreFileError like decodeSnapshot for a malformed value: the caller then reads etcd itself.
   */
  snapshot(): Snapshot {
    if (this.cached !== null) return this.cached;
    const members: MemberRecord[] = [];
    const memberRevisions = new Map<string, string>();
    let counter = 1;
    for (const s of this.keys.values()) {
      if (s.record instanceof Error) throw s.record;
      if (typeof s.record === 'number') counter = s.record;
      else if (s.record !== null) {
        members.push(s.record);
        memberRevisions.set(s.record.name, String(s.revision));
      }
    }
    members.sort((a, b) => a.id - b.id);
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      if (i > 0 && members[i - 1]!.id === m.id)
        throw new StoreFileError(this.source, this.layout.member(m.name), `duplicate id ${m.id}`);
      counter = Math.max(counter, m.id + 1);
    }
    this.cached = {
      members,
      exports: [],
      nextNodeId: counter,
      counterRevision: this.counterRevision,
      memberRevisions,
    };
    return this.cached;
  }

  /** decode reads one value as decodeSnapshot would; what it refuses is kept as the error. */
  private decode(key: string, value: string, counter: boolean): MemberRecord | number | Error {
    try {
      const snap = decodeSnapshot(this.source, this.layout, [{ key, value, modRevision: '1' }]);
      return counter ? snap.nextNodeId : snap.members[0]!;
    } catch (err) {
      return err as Error;
    }
  }
}
