import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { NfsServer } from './nfs.js';
import type { LabPlan } from './plan.js';
import type { RouterLayout } from './router.js';
import type { Daemon } from './services.js';

/**
 * Runtime files live under /run: a tmpfs that is empty after a reboot, exactly when the namespaces are
 * gone too. ONEHOST_LAB_RUN_DIR moves it (for a machine without /run).
 */
export const RUN_ROOT = process.env.ONEHOST_LAB_RUN_DIR ?? '/run/onehost-lab';

/** LabState is what a lab records on disk so another process (`down`, `status`) can find it. */
export interface LabState {
  version: 1;
  id: string;
  prefix: string;
  runDir: string;
  plan: LabPlan;
  daemons: Daemon[];
  /** NFS servers (rpcbind + nfs-ganesha) on nodes, when the lab was built with them. */
  nfs?: NfsServer[];
  /** the router and the gateway hosts behind it, when the lab was built with several gateways */
  router?: RouterLayout;
  /** Pid of the process that owns the lab and will clean it up; null for a CLI lab (owned by `down`). */
  ownerPid: number | null;
  createdAt: string;
}

/** runDirOf returns the default runtime directory of lab `id`. */
export function runDirOf(id: string): string {
  return join(RUN_ROOT, id);
}

/** stateFileOf returns the state file inside a lab's runtime directory. */
export function stateFileOf(runDir: string): string {
  return join(runDir, 'state.json');
}

/** writeState writes the state file atomically (temporary file, then rename). Throws on I/O errors. */
export async function writeState(state: LabState): Promise<void> {
  const file = stateFileOf(state.runDir);
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, file);
}

/** readState reads a lab's state file; undefined when there is none. Throws when it is not valid JSON. */
export async function readState(runDir: string): Promise<LabState | undefined> {
  const file = stateFileOf(runDir);
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, 'utf8')) as LabState;
}

/** listStates reads every lab state under `root`; unreadable ones are skipped. */
export async function listStates(root = RUN_ROOT): Promise<LabState[]> {
  if (!existsSync(root)) return [];
  const states: LabState[] = [];
  for (const entry of await readdir(root)) {
    const state = await readState(join(root, entry)).catch(() => undefined);
    if (state) states.push(state);
  }
  return states;
}
