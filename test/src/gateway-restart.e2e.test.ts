import { join } from 'node:path';
import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { type Download, download as fetchAt } from './downloads.js';

// A gateway killed with SIGKILL in the middle of long downloads, and started again: the kernel keeps
// forwarding while no gateway runs, and the new gateway adopts what it finds, so every download of every
// kernel-path function completes, byte for byte. In tun mode every packet needs the gateway process, so
// the downloads stall until it is back; the functions that keep no per-connection state in it (Maglev
// with rederive, fixed, the port blocks) resume then, and round robin cannot: its table died with the
// process (docs/fastpath.md). That is what this test checks in each mode.

const SIZE = 24 * 1024 * 1024;
const RATE = '4M'; // bytes per second per download: each lasts about 6 s
const PER_FUNCTION = 3;

let c: Cluster;

beforeAll(async () => {
  c = await startCluster({
    // liveness is not what this test is about: in tun mode the gateway forwards every download in user
    // space at full CPU after its restart, and the lab's 350 ms heartbeat timeout would flap nodes (and
    // move the fixed entry's flows to its backup, which resets them)
    gatewayYaml: (y) =>
      y
        .replace('timeoutMs: 350', 'timeoutMs: 1500')
        .replace(
          /^entries:\n/m,
          'entries:\n' +
            '  - { protocol: tcp, port: 8443, function: connection, policy: maglev, rederive: true, nodes: [n1, n2, n3] }\n' +
            '  - { protocol: tcp, port: 8444, function: fixed, node: n2, backup: n3 }\n',
        ),
  });
  // a large file on every node (nginx :80 serves its html directory; python serves it on 8443/8444) and
  // on c1 (for the nodes' own downloads, whose replies come back by the port blocks)
  for (const host of ['n1', 'n2', 'n3', 'c1']) {
    const dir = join(c.lab.runDir, host, host === 'c1' ? 'www' : 'nginx/html');
    await c.lab.exec(host, 'sh', ['-c', `mkdir -p ${dir} && head -c ${SIZE} /dev/urandom > ${dir}/big`]);
    const ports = host === 'c1' ? [9000] : [8443, 8444];
    for (const port of ports) {
      const p = c.lab.spawn(host, 'python3', [
        '-m',
        'http.server',
        String(port),
        '--bind',
        '0.0.0.0',
        '--directory',
        dir,
      ]);
      await waitFor(
        async () => (await c.lab.exec(host, 'ss', ['-ltn', `sport = :${port}`])).stdout.includes('LISTEN'),
        {
          what: `a file server on ${host}:${port}`,
        },
      );
      void p;
    }
  }
}, 180_000);
afterAll(async () => {
  await c?.stop();
});

/** download runs a rate-limited curl in `host` (downloads.ts). */
const download = (what: string, host: string, url: string): Download => fetchAt(c.lab, what, host, url, RATE);

describe(`a gateway killed during long downloads, and started again (${DATAPATH})`, () => {
  it('every download of the functions that can survive completes in full', { timeout: 120_000 }, async () => {
    const vip = c.vip;
    const client = c.lab.addresses.clients[0]!;
    const downloads: Download[] = [];
    for (let i = 0; i < PER_FUNCTION; i++) {
      if (DATAPATH === 'kernel') downloads.push(download(`round robin #${i}`, 'c1', `http://${vip}/big`));
      downloads.push(download(`maglev #${i}`, 'c1', `http://${vip}:8443/big`));
      downloads.push(download(`fixed #${i}`, 'c2', `http://${vip}:8444/big`));
      // a node's own download from outside: the replies come to the cluster address and a port of its block
      downloads.push(download(`port block (n${i + 1})`, `n${i + 1}`, `http://${client}:9000/big`));
    }
    // well into the downloads (every one of them established and past its handshake, so none is half-open
    // while no gateway runs), the gateway dies without a word and comes back
    const established = async (host: string, filter: string): Promise<number> =>
      (await c.lab.exec(host, 'ss', ['-Htn', 'state', 'established', filter])).stdout
        .split('\n')
        .filter((l) => l.trim() !== '').length;
    await waitFor(
      async () =>
        (await established('c1', `dst ${vip}`)) >= (DATAPATH === 'kernel' ? 2 : 1) * PER_FUNCTION &&
        (await established('c2', `dst ${vip}`)) >= PER_FUNCTION &&
        (await Promise.all(['n1', 'n2', 'n3'].map((n) => established(n, `dst ${client}`)))).every(
          (k) => k >= 1,
        ),
      { what: 'every download under way', timeoutMs: 15_000, intervalMs: 100 },
    );
    process.kill(c.gateway.pid, 'SIGKILL');
    await c.gateway.whenExited();
    await new Promise((r) => setTimeout(r, 300));
    await c.startGateway();
    if (DATAPATH === 'kernel')
      expect(c.gateway.output()).toMatch(/adopting the kernel fast path a previous gateway left/);
    const results = await Promise.all(downloads.map(async (d) => ({ what: d.what, ...(await d.done) })));
    const failed = results
      .filter((r) => !r.ok || r.bytes !== SIZE)
      .map((r) => `${r.what}: ${r.ok ? `${r.bytes} bytes` : r.detail}`);
    if (failed.length > 0)
      console.log(
        c.gateway
          .output()
          .split('\n')
          .filter((l) => /applying the switch|adopt|join|down|grace/.test(l))
          .join('\n'),
      );
    expect(failed).toEqual([]);
    expect(results).toHaveLength(DATAPATH === 'kernel' ? 4 * PER_FUNCTION : 3 * PER_FUNCTION);
    // the agents are back with the new gateway, which runs its own table over the one it adopted
    for (const n of ['n1', 'n2', 'n3']) await c.waitForState(n, 'active', 10_000);
    if (DATAPATH === 'kernel') {
      await waitFor(
        async () => {
          const s = JSON.parse(await c.ctl(['gateway', 'status', '--json'])) as {
            appliedVersion: number;
            switchVersion: number;
          };
          return s.appliedVersion === s.switchVersion && s.appliedVersion > 0;
        },
        { what: 'the restarted gateway’s table in the kernel', timeoutMs: 10_000 },
      );
    }
    const pages = new Set<string>();
    for (let i = 0; i < 6; i++) pages.add((await c.curl('c1', `http://${vip}/`)).trim());
    expect(pages).toEqual(new Set(['n1', 'n2', 'n3']));
  });

  it('a clean stop removes the kernel data path; a stop that keeps it leaves forwarding to the next start', {
    timeout: 60_000,
  }, async () => {
    if (DATAPATH === 'tun') {
      // no kernel state: a stop is a stop either way
      await c.ctl(['gateway', 'stop', '--keep-datapath']);
      await c.gateway.whenExited();
      expect(c.gateway.exitStatus()).toEqual({ code: 0, signal: null });
      await c.startGateway();
      return;
    }
    const dl = download('fixed across a kept stop', 'c2', `http://${c.vip}:8444/big`);
    await new Promise((r) => setTimeout(r, 1000));
    await c.ctl(['gateway', 'stop', '--keep-datapath']);
    await c.gateway.whenExited();
    expect(c.gateway.exitStatus()).toEqual({ code: 0, signal: null });
    const left = await c.lab.exec('gw', 'nft', ['list', 'tables']);
    expect(left.stdout).toContain('onehost_fastpath');
    await c.startGateway();
    expect(await dl.done).toEqual({ ok: true, bytes: SIZE, detail: '' });
    // a clean stop (SIGTERM) leaves nothing of the data path
    await c.gateway.stop(10_000);
    expect(c.gateway.exitStatus()).toEqual({ code: 0, signal: null });
    expect((await c.lab.exec('gw', 'nft', ['list', 'tables'])).stdout).not.toContain('onehost_fastpath');
    expect((await c.lab.exec('gw', 'ip', ['link'])).stdout).not.toContain('onehostvx');
    await c.startGateway();
  });
});
