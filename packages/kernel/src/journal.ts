import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { dstKey, type Host, isMarkRule, localHost, type MarkRule, routeArgs } from './host.js';

/**
 * Change is one thing a daemon changed in the kernel, recorded *before* it is made (write-ahead), with
 * what is needed to undo it. Undoing a change that was recorded but never made is harmless.
 */
export type Change =
  /** A sysctl (key relative to /proc/sys, with slashes) and its value before. */
  | { kind: 'sysctl'; key: string; previous: string }
  /** An nftables table owned entirely. */
  | { kind: 'nft-table'; family: string; name: string }
  /** An address added. */
  | { kind: 'addr'; dev: string; cidr: string }
  /** A link created. */
  | { kind: 'link'; name: string }
  /**
   * A route added or replaced in the main table: `dst` and `protocol` find ours again; the routes it
   * replaced (same destination and metric) are re-added from `previous` (ip route arguments).
   */
  | { kind: 'route'; dst: string; protocol: string; previous: string[][]; family?: 6 }
  /** A policy-routing rule selected by a mark: `ip rule add priority P fwmark F lookup T`. */
  | ({ kind: 'rule' } & MarkRule)
  /** A route added to a table of its own (not main): `ip route add DST dev DEV table T`. */
  | { kind: 'table-route'; table: number; dst: string; dev: string }
  /** A rule given by its `ip rule` selector and action, e.g. priority 100 iif eth0 to … lookup 4789. */
  | { kind: 'rule-args'; args: string[]; family?: 6 }
  /** Every rule at this preference, IPv4 and IPv6, is ours (rules made and removed at run time, e.g. one per node). */
  | { kind: 'rules-at'; priority: number }
  /** Every route in tables from..to is ours (one table per node, made at run time). */
  | { kind: 'tables'; from: number; to: number }
  /** The `local` table's rule moved from preference 0 to `priority` (the IPv6 one with `family` 6). */
  | { kind: 'local-rule'; priority: number; family?: 6 }
  /** A proxy neighbour entry: the host answers ARP for `address` on `dev` (`ip neigh add proxy`). */
  | { kind: 'neigh-proxy'; dev: string; address: string };

/** Journal is a state file: everything one daemon changed, in order. */
export interface Journal {
  version: 1;
  /** the node (or gateway) name of the daemon that wrote it */
  nodeName: string;
  /** Pid of the process that applied it (a dead pid means it crashed or exited without restoring). */
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
   * open continues the state file this process created (to record changes made after apply). Throws when
   * there is none, when it is not a state file, or when another process wrote it.
   */
  static async open(path: string): Promise<JournalFile> {
    const journal = await readJournal(path);
    if (journal === undefined) throw new Error(`${path}: no state file (apply the configuration first)`);
    if (journal.pid !== process.pid) {
      throw new Error(`${path} was written by pid ${journal.pid}, not by this process`);
    }
    return new JournalFile(path, journal);
  }

  /**
   * adopt takes over the state file a process that is gone left behind, keeping its changes (the values
   * to restore are still the ones from before the first run), or starts a new one when there is none.
   * Throws when its writer still runs, or the file is not a state file.
   */
  static async adopt(path: string, nodeName: string, alive: (pid: number) => boolean): Promise<JournalFile> {
    const journal = await readJournal(path);
    if (journal === undefined) return JournalFile.create(path, nodeName);
    if (journal.pid !== process.pid && alive(journal.pid))
      throw new Error(`${path} belongs to a running process (pid ${journal.pid})`);
    const file = new JournalFile(path, { ...journal, nodeName, pid: process.pid, complete: false });
    await file.flush();
    return file;
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

  /** has tells whether an equal change is recorded already. */
  has(change: Change): boolean {
    const text = JSON.stringify(change);
    return this.journal.changes.some((c) => JSON.stringify(c) === text);
  }

  /** recordOnce records a change unless an equal one is recorded already (an adopted journal). */
  async recordOnce(change: Change): Promise<void> {
    if (!this.has(change)) await this.record(change);
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
    throw new Error(`${path} is not a state file of ours`);
  return journal;
}

/** removeJournal deletes a state file (and a leftover temporary file). */
export async function removeJournal(path: string): Promise<void> {
  for (const p of [path, `${path}.tmp`]) await unlink(p).catch(() => undefined);
}

/** undoChange undoes one recorded change in `host`; what is already gone stays gone. Throws a CommandError. */
export async function undoChange(change: Change, host: Host = localHost): Promise<void> {
  switch (change.kind) {
    case 'sysctl':
      if (await host.sysctlExists(change.key)) await host.writeSysctl(change.key, change.previous);
      return;
    case 'nft-table':
      if (await host.nftTableExists(change.family, change.name))
        await host.run('nft', ['delete', 'table', change.family, change.name]);
      return;
    case 'addr': {
      const address = change.cidr.split('/')[0]!;
      if ((await host.linkExists(change.dev)) && (await host.hasAddress(change.dev, address)))
        await host.ip('addr', 'del', change.cidr, 'dev', change.dev);
      return;
    }
    case 'link':
      if (await host.linkExists(change.name)) await host.ip('link', 'del', change.name);
      return;
    case 'route': {
      const six = change.family === 6;
      const ip = (...a: string[]) => (six ? host.ip('-6', ...a) : host.ip(...a));
      for (const r of six ? await host.routes6('main') : await host.routes('main'))
        if (r.dst === change.dst && r.protocol === change.protocol) await ip('route', 'del', ...routeArgs(r));
      for (const args of change.previous) await ip('route', 'replace', ...args);
      return;
    }
    case 'rule': {
      // `ip rule add` refuses a duplicate today; should there be copies anyway, take out every one.
      const n = (await host.rules()).filter((x) => isMarkRule(x, change)).length;
      for (let i = 0; i < n; i++)
        await host.ip(
          'rule',
          'del',
          'priority',
          String(change.priority),
          'fwmark',
          `0x${change.fwmark.toString(16)}`,
          'lookup',
          String(change.table),
        );
      return;
    }
    case 'table-route': {
      const routes = await host.routes(change.table);
      if (routes.some((r) => r.dst === dstKey(change.dst) && r.dev === change.dev))
        await host.ip('route', 'del', change.dst, 'dev', change.dev, 'table', String(change.table));
      return;
    }
    case 'rule-args':
      // Each `del` removes one copy; stop when none is left (the command fails then).
      for (let i = 0; i < 64; i++) {
        const del =
          change.family === 6
            ? host.ip('-6', 'rule', 'del', ...change.args)
            : host.ip('rule', 'del', ...change.args);
        const gone = await del.then(
          () => false,
          () => true,
        );
        if (gone) return;
      }
      return;
    case 'rules-at': {
      // both families: the kernel fast path's IPv6 mark rules sit at the same preference
      const n = (await host.rules()).filter((r) => r.priority === change.priority).length;
      await host
        .ipBatch(
          Array.from({ length: n }, () => `rule del priority ${change.priority}`),
          true,
        )
        .catch(() => undefined);
      // a host without IPv6 lists no IPv6 rules
      const n6 = (await host.rules6().catch(() => [])).filter((r) => r.priority === change.priority).length;
      await host
        .ipBatch(
          Array.from({ length: n6 }, () => `rule del priority ${change.priority}`),
          true,
          6,
        )
        .catch(() => undefined);
      return;
    }
    case 'tables': {
      const tables = new Set<number>();
      for (const r of await host.routes('all')) {
        const t = Number(r.table);
        if (Number.isInteger(t) && t >= change.from && t <= change.to) tables.add(t);
      }
      await host.ipBatch(
        [...tables].map((t) => `route flush table ${t}`),
        true,
      );
      const tables6 = new Set<number>();
      for (const r of await host.routes6('all')) {
        const t = Number(r.table);
        if (Number.isInteger(t) && t >= change.from && t <= change.to) tables6.add(t);
      }
      for (const t of tables6)
        await host.ip('-6', 'route', 'flush', 'table', String(t)).catch(() => undefined);
      return;
    }
    case 'neigh-proxy':
      if (await host.linkExists(change.dev))
        await host.ip('neigh', 'del', 'proxy', change.address, 'dev', change.dev).catch(() => undefined);
      return;
    case 'local-rule': {
      const six = change.family === 6;
      const rules = six ? await host.rules6() : await host.rules();
      const ip = (...a: string[]) => (six ? host.ip('-6', ...a) : host.ip(...a));
      const isLocal = (r: { table?: string; priority?: number }, p: number) =>
        r.table === 'local' && r.priority === p;
      if (!rules.some((r) => isLocal(r, 0))) await ip('rule', 'add', 'priority', '0', 'lookup', 'local');
      if (rules.some((r) => isLocal(r, change.priority)))
        await ip('rule', 'del', 'priority', String(change.priority), 'lookup', 'local');
      return;
    }
  }
}

/** RestoreReport says what {@link restoreJournal} did. */
export interface RestoreReport {
  /** False when there was no state file (nothing to do). */
  found: boolean;
  /** Number of recorded changes undone. */
  undone: number;
}

/**
 * restoreJournal undoes, newest first, every change recorded in `stateFile`, then deletes the file.
 * Undoing is idempotent: a change that was recorded but never made, or already undone, is skipped.
 * Throws an AggregateError when some change could not be undone; the state file is kept so that a later
 * restore tries again.
 */
export async function restoreJournal(stateFile: string, host: Host = localHost): Promise<RestoreReport> {
  const journal = await readJournal(stateFile);
  if (!journal) return { found: false, undone: 0 };
  const errors: unknown[] = [];
  for (const change of [...journal.changes].reverse()) {
    try {
      await undoChange(change, host);
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) {
    throw new AggregateError(
      errors,
      `restore from ${stateFile}: ${errors.length} change(s) could not be undone: ${errors.map((e) => (e as Error).message).join('; ')}`,
    );
  }
  await removeJournal(stateFile);
  return { found: true, undone: journal.changes.length };
}
