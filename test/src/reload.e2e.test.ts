import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { wrkResult } from './wrk.js';

// Reload without drops: the gateway's file is changed under HTTP load (keep-alive connections and a new
// connection per request) and reloaded 20 times, by SIGHUP and by `onehostctl apply -f`, alternating
// two valid tables and an invalid one. No request may fail; the invalid file is refused with its field.
let c: Cluster;
let file: string;
let tableA: string;
let tableB: string;
let invalid: string;

beforeAll(async () => {
  c = await startCluster();
  file = join(c.dir, 'gateway.yaml');
  tableA = await readFile(file, 'utf8');
  // B: port 80 balances over n1 and n2 only, port 8080 goes to n3, the fragment table grows
  tableB = tableA
    .replace('policy: round-robin, nodes: [n1, n2, n3]', 'policy: round-robin, nodes: [n1, n2]')
    .replace(
      '  - { protocol: tcp, port: 2222,',
      '  - { protocol: tcp, port: 8080, function: fixed, node: n3 }\n  - { protocol: tcp, port: 2222,',
    )
    .replace('maxEntries: 4096', 'maxEntries: 8192');
  invalid = tableB.replace('policy: round-robin, nodes: [n1, n2]', 'policy: round-robbin, nodes: [n1, n2]');
  expect(tableB).not.toBe(tableA);
  expect(invalid).not.toBe(tableB);
});
afterAll(async () => {
  await c?.stop();
});

/**
 * apply runs the onehostctl binary's `apply|diff -f` from the gateway host; resolves with whether it
 * exited 0 and its output (stdout, or the exit code with stderr).
 */
async function ctl(verb: 'apply' | 'diff', text: string): Promise<{ ok: boolean; out: string }> {
  const f = join(c.dir, `next-${verb}.yaml`);
  await writeFile(f, text);
  try {
    return { ok: true, out: await c.cli([verb, '-f', f]) };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

async function reloads(outcome: 'applied' | 'refused'): Promise<number> {
  return c.metric('onehost_reloads_total', { outcome });
}

/** hup writes the gateway's file and sends SIGHUP; waits until the gateway counted the outcome. */
async function hup(text: string, outcome: 'applied' | 'refused'): Promise<void> {
  const before = await reloads(outcome);
  await writeFile(file, text);
  process.kill(c.gateway.pid, 'SIGHUP');
  await waitFor(async () => (await reloads(outcome)) > before, {
    what: `a reload ${outcome} after SIGHUP`,
    timeoutMs: 5000,
    intervalMs: 50,
  });
}

describe(`reload under load (${DATAPATH})`, () => {
  it('diff -f lists the changes and changes nothing', async () => {
    const r = await ctl('diff', tableB);
    expect(r.ok).toBe(true);
    expect(r.out).toContain(
      '~ tcp/80 connection nodes=[n1,n2,n3] policy=round-robin → connection nodes=[n1,n2]',
    );
    expect(r.out).toContain('+ tcp/8080 fixed node=n3');
    expect(r.out).toContain('~ fragments');
    expect(r.out).toContain('3 change(s); apply -f to make them');
    expect((await ctl('diff', tableA)).out).toContain('no changes');
  });

  it('20 reloads (two tables and an invalid one, SIGHUP and apply -f) while wrk runs: no request fails', async () => {
    const url = `http://${c.vip}/`;
    const seconds = 12;
    const keepAlive = c.lab.exec('c1', 'wrk', ['-t1', '-c4', `-d${seconds}s`, url], { timeoutMs: 40_000 });
    const close = c.lab.exec('c1', 'wrk', ['-t1', '-c4', `-d${seconds}s`, '-H', 'Connection: close', url], {
      timeoutMs: 40_000,
    });
    const refusals: string[] = [];
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const text = i % 3 === 2 ? invalid : i % 3 === 1 ? tableB : tableA;
      const valid = text !== invalid;
      if (i % 2 === 0) await hup(text, valid ? 'applied' : 'refused');
      else {
        const r = await ctl('apply', text);
        expect(r.ok).toBe(valid);
        if (!valid) refusals.push(r.out);
      }
      // spread the reloads over the load
      await waitFor(() => Date.now() - started >= ((i + 1) * (seconds - 2) * 1000) / 20, {
        what: 'the next reload’s turn',
        timeoutMs: 15_000,
        intervalMs: 20,
      });
    }
    const ka = wrkResult((await keepAlive).stdout);
    const cl = wrkResult((await close).stdout);
    console.log(`reload under load: ${ka.requests} keep-alive and ${cl.requests} new-connection requests`);
    expect(ka.requests).toBeGreaterThan(100);
    expect(cl.requests).toBeGreaterThan(100);
    expect([ka.failed, cl.failed]).toEqual([0, 0]);
    // the refused file named its field, over gRPC and in the gateway's log (SIGHUP)
    expect(refusals.length).toBeGreaterThan(0);
    for (const r of refusals) expect(r).toContain('entries[0].policy: must be one of round-robin');
    expect(c.gateway.output()).toMatch(/entries\[0\]\.policy: must be one of.*reload refused/);
    expect(await reloads('refused')).toBe(6);
    expect(await reloads('applied')).toBe(14);
  });

  it('the table in force is the last one applied, and new connections follow it', async () => {
    await ctl('apply', tableB);
    expect((await ctl('diff', tableB)).out).toContain('no changes');
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) seen.add((await c.curl('c1', `http://${c.vip}/`)).trim());
    expect([...seen].sort()).toEqual(['n1', 'n2']);
    const ex = JSON.parse(
      await c.ctl(['explain', '--json', '--flow', `tcp 203.0.113.10:40000 ${c.vip}:8080 syn`]),
    ) as { decision: { nodeName?: string } };
    expect(ex.decision.nodeName).toBe('n3');
  });

  it('a key that takes a restart is refused, naming it, and nothing changes', async () => {
    const r = await ctl(
      'apply',
      tableB.replace(
        'heartbeat: { intervalMs: 100, timeoutMs: 350 }',
        'heartbeat: { intervalMs: 100, timeoutMs: 900 }',
      ),
    );
    expect(r.ok).toBe(false);
    expect(r.out).toContain('control.heartbeat.timeoutMs: changes only with a restart');
    expect((await ctl('diff', tableB)).out).toContain('no changes');
  });
});
