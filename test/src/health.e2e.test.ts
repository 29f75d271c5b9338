import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';

// Health checks run by the agents: nginx stopped on n2 under load takes n2 out of the round-robin entry
// (and only that entry) within fall × interval; started again, n2 is back after rise × interval.
const INTERVAL_MS = 200;
let dir: string;
let c: Cluster;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'onehost-health-'));
  const file = join(dir, 'health.yaml');
  await writeFile(
    file,
    `healthChecks:
  - { name: web, kind: http, port: 80, path: /, covers: [tcp/80], intervalMs: ${INTERVAL_MS}, timeoutMs: 150, rise: 2, fall: 2, jitterMs: 20 }
  - { name: ssh, kind: tcp, port: 22, covers: [tcp/2222], intervalMs: 1000 }
`,
  );
  c = await startCluster({ agentArgs: () => ['--health-checks', file] });
});
afterAll(async () => {
  await c?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface MemberJson {
  name: string;
  health: { name: string; healthy: boolean; detail: string }[];
}
const members = async () => JSON.parse(await c.ctl(['members', '--json'])) as MemberJson[];
const check = (ms: MemberJson[], node: string, name: string) =>
  ms.find((m) => m.name === node)?.health.find((h) => h.name === name);

/** nodesOf asks the cluster address `n` times, each on a new connection; the nodes that answered. */
async function nodesOf(n: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) seen.push((await c.curl('c1', `http://${c.vip}/`)).trim());
  return seen;
}

describe(`health checks (${DATAPATH})`, () => {
  it('reach the gateway: members shows each check', async () => {
    await waitFor(
      async () => {
        const ms = await members();
        return ['n1', 'n2', 'n3'].every((n) => check(ms, n, 'web')?.healthy === true);
      },
      { what: 'every node’s web check healthy', timeoutMs: 10_000, intervalMs: 100 },
    );
    // nothing listens on 22 in the lab: that check fails, and covers an entry of its own only
    const ms = await members();
    expect(check(ms, 'n1', 'ssh')).toMatchObject({ healthy: false, detail: 'connection refused' });
    expect(await c.ctl(['members'])).toMatch(/ssh: tcp 22 connection refused since/);
  });

  it('nginx stopped on n2: n2 leaves the entry its check covers, new requests never reach it', async () => {
    const url = `http://${c.vip}/`;
    const load = c.lab.exec('c1', 'wrk', ['-t1', '-c4', '-d6s', '-H', 'Connection: close', url], {
      timeoutMs: 30_000,
    });
    // a second of load before the failure
    const t0 = Date.now();
    await waitFor(() => Date.now() - t0 >= 1000, {
      what: 'a second of load',
      timeoutMs: 2000,
      intervalMs: 50,
    });
    const stopped = Date.now();
    await c.lab.stopNginx('n2');
    await waitFor(async () => check(await members(), 'n2', 'web')?.healthy === false, {
      what: 'n2’s web check failing',
      timeoutMs: 5000,
      intervalMs: 50,
    });
    const detectedMs = Date.now() - stopped;
    // from now on no new connection goes to n2, and none fails
    const after = await nodesOf(30);
    expect(after).not.toContain('n2');
    expect(new Set(after)).toEqual(new Set(['n1', 'n3']));
    const explain = await c.ctl(['explain', '--flow', `tcp 203.0.113.10:41000 ${c.vip}:80 syn`]);
    expect(explain).toMatch(/health: n2 skipped: http \/ (connection refused|no answer in 150 ms) since/);
    // n2 stays in the entries its failing check does not cover, and stays a member
    expect((await members()).find((m) => m.name === 'n2')).toBeDefined();
    const wrk = (await load).stdout;
    const requests = Number(/(\d+) requests in/.exec(wrk)?.[1]);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(wrk);
    const errors = sock ? sock.slice(1).reduce((a, x) => a + Number(x), 0) : 0;
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(wrk)?.[1] ?? 0);
    console.log(
      `health: n2's nginx stopped; check failing after ${detectedMs} ms (fall 2 × ${INTERVAL_MS} ms); wrk ${requests} requests, ${errors + non2xx} failed in all (refused by n2 until its check failed); after it, 30 of 30 new connections reached n1 or n3`,
    );
    expect(requests).toBeGreaterThan(100);
    // the failures are the requests n2 refused before the check noticed: a few intervals' worth at most
    expect(errors + non2xx).toBeLessThan(requests / 10);
  });

  it('nginx back on n2: n2 takes new requests again after rise × interval', async () => {
    await c.lab.startNginx('n2');
    await waitFor(async () => check(await members(), 'n2', 'web')?.healthy === true, {
      what: 'n2’s web check passing again',
      timeoutMs: 5000,
      intervalMs: 50,
    });
    await waitFor(async () => (await nodesOf(6)).includes('n2'), {
      what: 'n2 answering through the cluster address',
      timeoutMs: 5000,
      intervalMs: 100,
    });
  });
});
