import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pidAlive } from '@onehost/kernel';

/** NodeLocked is thrown when another live agent holds the node's lock; nothing was touched. */
export class NodeLocked extends Error {
  constructor(
    readonly lockFile: string,
    readonly pid: number,
  ) {
    super(`another agent (pid ${pid}) runs this node: ${lockFile} is its lock; this one changes nothing`);
    this.name = 'NodeLocked';
  }
}

/** NodeLock is held for the agent's whole life: one agent per node (per state file). */
export interface NodeLock {
  readonly path: string;
  /** release removes the lock file if it is still this process's; never throws. */
  release(): Promise<void>;
}

/**
 * lockNode takes `<stateFile>.lock` for this process, before anything else is done: a second agent
 * started for a node that runs one must leave the running one's configuration, state file and
 * membership alone. The file is created exclusively (O_EXCL) and holds the owner's pid; a lock whose
 * owner is gone (a `kill -9`, a crash) is taken over. Throws NodeLocked when its owner is alive.
 */
export async function lockNode(
  stateFile: string,
  alive: (pid: number) => boolean = pidAlive,
): Promise<NodeLock> {
  const path = `${stateFile}.lock`;
  await mkdir(dirname(path), { recursive: true });
  // Two rounds: a stale lock is removed once, then created exclusively (a racing agent may win it).
  for (let round = 0; round < 3; round++) {
    try {
      const f = await open(path, 'wx', 0o644);
      try {
        await f.writeFile(`${process.pid}\n`);
      } finally {
        await f.close();
      }
      return { path, release: () => releaseLock(path) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await lockOwner(path);
    // an empty file: its owner is between creating and writing it, unless that was long ago (a crash)
    if (owner === null && (await ageMs(path)) < EMPTY_LOCK_GRACE_MS) throw new NodeLocked(path, 0);
    // (a pid ≤ 0 is nobody: kill(-1, 0) would ask about every process)
    if (owner !== null && owner > 0 && owner !== process.pid && alive(owner))
      throw new NodeLocked(path, owner);
    await unlink(path).catch(() => undefined);
  }
  throw new NodeLocked(path, (await lockOwner(path)) ?? 0);
}

const EMPTY_LOCK_GRACE_MS = 5000;

async function ageMs(path: string): Promise<number> {
  try {
    return Date.now() - (await stat(path)).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** lockOwner: the pid in the lock, null for an empty file, -1 when absent or unreadable. */
async function lockOwner(path: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return -1; // gone meanwhile: nobody's
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : text.trim() === '' ? null : -1;
}

async function releaseLock(path: string): Promise<void> {
  if ((await lockOwner(path)) !== process.pid) return;
  await unlink(path).catch(() => undefined);
}
