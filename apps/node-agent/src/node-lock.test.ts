import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockNode, NodeLocked } from './node-lock.js';

describe('lockNode: one agent per node', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'onehost-lock-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the lock with this pid, making its directory, and releases it', async () => {
    const state = join(dir, 'a', 'agent-n1.json');
    const lock = await lockNode(state);
    expect(lock.path).toBe(`${state}.lock`);
    expect((await readFile(lock.path, 'utf8')).trim()).toBe(String(process.pid));
    await lock.release();
    expect(existsSync(lock.path)).toBe(false);
  });

  it('refuses while a live process holds it, naming its pid and the file', async () => {
    const state = join(dir, 'agent-n2.json');
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(`${state}.lock`, `${child.pid}\n`);
      const err = (await lockNode(state).catch((e: unknown) => e)) as NodeLocked;
      expect(err).toBeInstanceOf(NodeLocked);
      expect(err.pid).toBe(child.pid);
      expect(err.message).toBe(
        `another agent (pid ${child.pid}) runs this node: ${state}.lock is its lock; this one changes nothing`,
      );
      // the holder's file is untouched
      expect((await readFile(`${state}.lock`, 'utf8')).trim()).toBe(String(child.pid));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes over the lock of a process that is gone (kill -9), and of an old empty file', async () => {
    const state = join(dir, 'agent-n3.json');
    const child = spawn('true', { stdio: 'ignore' });
    await new Promise((r) => child.once('exit', r));
    await writeFile(`${state}.lock`, `${child.pid}\n`);
    const lock = await lockNode(state);
    expect((await readFile(lock.path, 'utf8')).trim()).toBe(String(process.pid));
    await lock.release();

    await writeFile(`${state}.lock`, '');
    const fresh = (await lockNode(state, () => false).catch((e: unknown) => e)) as Error;
    expect(fresh).toBeInstanceOf(NodeLocked); // being written right now by its owner
    const old = new Date(Date.now() - 60_000);
    await utimes(`${state}.lock`, old, old);
    const taken = await lockNode(state);
    await taken.release();
  });

  it('release leaves a lock that another process has taken since', async () => {
    const state = join(dir, 'agent-n4.json');
    const lock = await lockNode(state);
    await writeFile(lock.path, '1\n');
    await lock.release();
    expect((await readFile(lock.path, 'utf8')).trim()).toBe('1');
  });
});
