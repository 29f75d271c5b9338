import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Lab, sweepStaleNamespaces } from './lab.js';
import { requireRoot } from './require-root.js';
import { run } from './run.js';
import { waitFor } from './wait-for.js';

requireRoot();

async function namespaceList(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Lab', () => {
  const labs: Lab[] = [];
  afterAll(async () => {
    for (const lab of labs) await lab.cleanup().catch(() => undefined);
  });

  it('creates namespaces joined by a veth that carries a ping, and cleanup removes everything', async () => {
    const lab = new Lab();
    labs.push(lab);
    const a = await lab.netns();
    const b = await lab.netns();
    expect(a.name).toMatch(/^oh-/);
    expect(a.name).not.toBe(b.name);
    const pair = await lab.veth(a, b, { aAddress: '198.18.0.1/24', bAddress: '198.18.0.2/24' });
    expect(pair.a.length).toBeLessThanOrEqual(15);
    const { stdout } = await a.exec('ping', ['-c', '1', '-W', '2', '198.18.0.2']);
    expect(stdout).toContain('1 received');
    const stats = await b.linkStats(pair.b);
    expect(stats.rxPackets).toBeGreaterThan(0);

    const sleeper = b.spawn('sleep', ['30']);
    expect(alive(sleeper.pid)).toBe(true);
    // The spawned command runs inside b: its network namespace differs from ours (once `ip netns exec`
    // has entered it, which happens after spawn returns).
    const { stdout: nsOfSelf } = await run('readlink', ['/proc/self/ns/net']);
    await waitFor(
      async () => (await run('readlink', [`/proc/${sleeper.pid}/ns/net`])).stdout.trim() !== nsOfSelf.trim(),
      { what: 'the child in the namespace', timeoutMs: 5000 },
    );

    const rootPair = await lab.veth(a, null);
    expect((await run('ip', ['link', 'show', 'dev', rootPair.b])).stdout).toContain(rootPair.b);

    await lab.cleanup();
    const left = await namespaceList();
    expect(left).not.toContain(a.name);
    expect(left).not.toContain(b.name);
    expect(alive(sleeper.pid)).toBe(false);
    await expect(run('ip', ['link', 'show', 'dev', rootPair.b])).rejects.toThrow(/does not exist/);
    // A second cleanup is harmless.
    await lab.cleanup();
    await expect(lab.netns()).rejects.toThrow(/already cleaned up/);
  });

  it('gives parallel labs distinct names', async () => {
    const one = new Lab();
    const two = new Lab();
    labs.push(one, two);
    const [x, y] = await Promise.all([one.netns(), two.netns()]);
    expect(x.name).not.toBe(y.name);
    expect(one.linkName()).not.toBe(two.linkName());
    await Promise.all([one.cleanup(), two.cleanup()]);
    const left = await namespaceList();
    expect(left).not.toContain(x.name);
    expect(left).not.toContain(y.name);
  });

  it('sweeps namespaces left by dead processes and spares live ones', async () => {
    const lab = new Lab();
    labs.push(lab);
    const live = await lab.netns();
    expect(live.name).toMatch(new RegExp(`^oh-${process.pid.toString(36)}-`));
    // A pid that has just exited stands for a test run that crashed.
    const dead = spawnSync('true').pid!;
    const stale = `oh-${dead.toString(36)}-zz1`;
    lab.defer(() => run('ip', ['netns', 'del', stale]).catch(() => undefined));
    await run('ip', ['netns', 'add', stale]);
    const removed = await sweepStaleNamespaces();
    expect(removed).toContain(stale);
    expect(removed).not.toContain(live.name);
    const left = await namespaceList();
    expect(left).not.toContain(stale);
    expect(left).toContain(live.name);
    await lab.cleanup();
  });

  it('stops a process that ignores SIGTERM', async () => {
    const lab = new Lab();
    labs.push(lab);
    const ns = await lab.netns();
    const stubborn = ns.spawn('sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done']);
    await stubborn.waitForOutput('ready');
    await stubborn.stop(200);
    expect(stubborn.running).toBe(false);
    expect(stubborn.exitStatus()?.signal).toBe('SIGKILL');
    await lab.cleanup();
  });

  it('runs deferred actions and reports a failed command with its stderr', async () => {
    const lab = new Lab();
    labs.push(lab);
    const ns = await lab.netns();
    let ran = false;
    lab.defer(() => {
      ran = true;
    });
    await expect(ns.ip('link', 'show', 'dev', 'nosuchdev0')).rejects.toThrow(/nosuchdev0.*does not exist/);
    await lab.cleanup();
    expect(ran).toBe(true);
  });
});
