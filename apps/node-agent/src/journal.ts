import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Change is one thing the agent changed, recorded *before* it is made (write-ahead), with what is
 * needed to undo it. Undoing a change that was recorded but never made is harmless.
 */
export type Change =
  /** A sysctl (key relative to /proc/sys) and its value before. */
  | { kind: 'sysctl'; key: string; previous: string }
  /** An nftables table the agent owns entirely. */
  | { kind: 'nft-table'; family: string; name: string }
  /** An address the agent added. */
  | { kind: 'addr'; dev: string; cidr: string }
  /** A link the agent created. */
  | { kind: 'link'; name: string }
  /**
   * A route the agent added or replaced in the main table: `dst` and `protocol` find ours again; the
   * routes it replaced (same destination and metric) are re-added from `previous` (ip route arguments).
   */
  | { kind: 'route'; dst: string; protocol: string; previous: string[][] }
  /** A policy-routing rule the agent added: `ip rule add priority P fwmark F lookup T`. */
  | { kind: 'rule'; priority: number; fwmark: number; table: number }
  /** A route the agent added to a table of its own (not main): `ip route add DST dev DEV table T`. */
  | { kind: 'table-route'; table: number; dst: string; dev: string };

/** Journal is the state file: everything the agent changed, in order. */
export interface Journal {
  version: 1;
  nodeName: string;
  /** Pid of the agent that applied it (a dead pid means it crashed or exited without restoring). */
  pid: number;
  startedAt: string;
  /** True once every step of apply finished. */
  complete: boolean;
  changes: Change[];
}

/** JournalFile writes the state file atomically (temporary file, fsync, rename) on every change. */
export class JournalFile {
  private constructor(
    readonly path: string,
    private journal: Journal,
  ) {}

  /** create starts a new state file. Throws on I/O errors. */
  static async create(path: string, nodeName: string): Promise<JournalFile> {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    const file = new JournalFile(path, {
      version: 1,
      nodeName,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      complete: false,
      changes: [],
    });
    await file.flush();
    return file;
  }

  /**
   * open continues the state file this process created (to record changes made after apply, e.g. by
   * SpliceIo). Throws when there is none, when it is not a state file, or when another process wrote it.
   */
  static async open(path: string): Promise<JournalFile> {
    const journal = await readJournal(path);
    if (journal === undefined) throw new Error(`${path}: no state file (apply the node configuration first)`);
    if (journal.pid !== process.pid) {
      throw new Error(`${path} was written by pid ${journal.pid}, not by this process`);
    }
    return new JournalFile(path, journal);
  }

  /** current returns a copy of the journal as written. */
  get current(): Journal {
    return structuredClone(this.journal);
  }

  /** record appends a change and makes it durable before returning. Throws on I/O errors. */
  async record(change: Change): Promise<void> {
    this.journal.changes.push(change);
    await this.flush();
  }

  /** markComplete records that apply finished. */
  async markComplete(): Promise<void> {
    this.journal.complete = true;
    await this.flush();
  }

  private async flush(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const handle = await open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(this.journal, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.path);
  }
}

/** readJournal reads a state file; undefined when there is none. Throws when it is not a journal. */
export async function readJournal(path: string): Promise<Journal | undefined> {
  if (!existsSync(path)) return undefined;
  const journal = JSON.parse(await readFile(path, 'utf8')) as Journal;
  if (journal.version !== 1 || !Array.isArray(journal.changes))
    throw new Error(`${path} is not an agent state file`);
  return journal;
}

/** removeJournal deletes a state file (and a leftover temporary file). */
export async function removeJournal(path: string): Promise<void> {
  for (const p of [path, `${path}.tmp`]) await unlink(p).catch(() => undefined);
}
