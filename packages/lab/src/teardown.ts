import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { run, waitFor } from '@onehost/testkit';

/** listNamespaces returns the names of network namespaces that start with `prefix`. */
export async function listNamespaces(prefix: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(prefix));
}

/** pidsIn returns the pids of processes whose network namespace is `netns` (empty when it is gone). */
export async function pidsIn(netns: string): Promise<number[]> {
  const out = await run('ip', ['netns', 'pids', netns]).catch(() => ({ stdout: '' }));
  return out.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

/** alive tells whether a process with this pid exists and has not ended (a zombie has ended). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // Daemons are reparented to init, which may reap them late: their exit shows as state Z.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * stopPids sends SIGTERM to each pid, waits up to `graceMs` for them to end, then SIGKILLs the rest and
 * waits for those too. Never throws for processes that are already gone; throws if one survives SIGKILL.
 */
export async function stopPids(pids: readonly number[], graceMs = 3000): Promise<void> {
  const live = pids.filter(alive);
  if (live.length === 0) return;
  for (const pid of live) signal(pid, 'SIGTERM');
  const ended = await waitFor(() => live.every((p) => !alive(p)), {
    what: `pids ${live.join(',')} to end`,
    timeoutMs: graceMs,
  }).catch(() => false);
  if (ended) return;
  for (const pid of live.filter(alive)) signal(pid, 'SIGKILL');
  await waitFor(() => live.every((p) => !alive(p)), {
    what: `pids ${live.join(',')} to die`,
    timeoutMs: 5000,
  });
}

/**
 * destroyByPrefix stops every process inside the namespaces whose name starts with `prefix` (found by
 * `ip netns pids`, ended by pid), deletes those namespaces and removes `runDir` when given. Every process
 * in a lab namespace was started for the lab, so this finds daemons even after the process that started
 * them crashed. Idempotent. Throws an AggregateError naming what it could not remove.
 */
export async function destroyByPrefix(prefix: string, runDir?: string): Promise<void> {
  if (!prefix.startsWith('ohl-') || prefix.length < 6)
    throw new Error(`refusing to destroy prefix "${prefix}"`);
  const errors: unknown[] = [];
  const names = await listNamespaces(prefix);
  const pids = (await Promise.all(names.map(pidsIn))).flat();
  try {
    await stopPids(pids);
  } catch (err) {
    errors.push(err);
  }
  for (const name of names) {
    await run('ip', ['netns', 'del', name]).catch((err) => errors.push(err));
  }
  if (runDir) await rm(runDir, { recursive: true, force: true }).catch((err) => errors.push(err));
  if (errors.length > 0) throw new AggregateError(errors, `lab ${prefix}: teardown left things behind`);
}
