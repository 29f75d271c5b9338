import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isTempFileOf, writeFileAtomic } from './atomic-write.js';
import type { ControlStore } from './control-store.js';
import { parseStore, serializeStore } from './file-format.js';
import type { ExportsRecord, MemberRecord, StoreContents } from './records.js';

/**
 * FileStore is the embedded store: state in memory, persisted to one JSON file (see README "Store
 * file") with atomic replacement. Concurrent writes coalesce: each put resolves once a write that
 * began after it is on disk. Without a path it keeps state in memory only.
 */
export class FileStore implements ControlStore {
  private members = new Map<string, MemberRecord>();
  private exports = new Map<string, ExportsRecord>();
  private nextNodeId = 1;
  private inFlight: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;

  /** path is the store file, or null for a store in memory only. */
  constructor(readonly path: string | null) {}

  /**
   * load reads the file (a missing file is an empty store) and removes temporary files a crash left.
   * Throws StoreFileError for a malformed file, or the file system's error.
   */
  async load(): Promise<StoreContents> {
    if (this.path !== null) {
      const path = this.path;
      const dir = dirname(path);
      for (const name of await readdir(dir).catch(() => [] as string[]))
        if (isTempFileOf(path, name)) await rm(join(dir, name), { force: true });
      let text: string | null = null;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (text !== null) {
        const c = parseStore(path, text);
        this.members = new Map(c.members.map((m) => [m.name, m]));
        this.exports = new Map(c.exports.map((e) => [e.nodeName, e]));
        this.nextNodeId = c.nextNodeId;
      }
    }
    return this.contents();
  }

  putMember(m: MemberRecord): Promise<void> {
    this.members.set(m.name, structuredClone(m));
    this.nextNodeId = Math.max(this.nextNodeId, m.id + 1);
    return this.persist();
  }

  deleteMember(name: string): Promise<void> {
    this.members.delete(name);
    return this.persist();
  }

  putExports(r: ExportsRecord): Promise<void> {
    this.exports.set(r.nodeName, structuredClone(r));
    return this.persist();
  }

  deleteExports(nodeName: string): Promise<void> {
    this.exports.delete(nodeName);
    return this.persist();
  }

  async close(): Promise<void> {
    await this.inFlight.catch(() => {});
  }

  private contents(): StoreContents {
    return {
      members: [...this.members.values()].map((m) => structuredClone(m)),
      exports: [...this.exports.values()].map((e) => structuredClone(e)),
      nextNodeId: this.nextNodeId,
    };
  }

  private persist(): Promise<void> {
    if (this.path === null) return Promise.resolve();
    // A write not yet started will carry this change too.
    if (this.queued !== null) return this.queued;
    const path = this.path;
    const write = this.inFlight
      .catch(() => {})
      .then(() => {
        this.queued = null;
        // Serialized now, synchronously: later changes queue another write.
        return writeFileAtomic(path, serializeStore(this.contents()));
      });
    this.queued = write;
    this.inFlight = write;
    return write;
  }
}
