import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createClusterCa, issueCertificate } from '@onehost/control';
import { createLab, type Lab } from '@onehost/lab';
import { requireRoot, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATAPATH, GATEWAY_MAIN, withDatapathMode } from './cluster.js';

let lab: Lab;
let dir: string;

/**
 * tablesSorted lists nftables tables, and the objects in each, in name order with counters and timers
 * left out: what a restart re-creates moves to the end of the listing, and traffic moves counters.
 */
function tablesSorted(ruleset: string): string {
  return ruleset
    .split(/^(?=table )/m)
    .map((t) =>
      t
        .replace(/packets \d+ bytes \d+/g, 'packets - bytes -')
        .replace(/ expires \S+/g, '')
        .split(/\n\n|\n(?=\t(?:chain|map|set|counter) )/)
        .map((b) => b.trim())
        .sort()
        .join('\n'),
    )
    .sort()
    .join('\n');
}

/** hostState is everything the gateway may change in its namespace, as text to compare. */
async function hostState(): Promise<string> {
  const q = async (file: string, args: string[]) => (await lab.exec('gw', file, args)).stdout;
  const sysctls = [
    'net.ipv4.ip_forward',
    'net.ipv4.tcp_early_demux',
    'net.ipv4.udp_early_demux',
    'net.ipv4.conf.all.rp_filter',
    'net.ipv4.conf.eth1.rp_filter',
    'net.ipv4.conf.eth1.accept_local',
    'net.ipv4.tcp_syncookies',
    'net.ipv4.neigh.eth0.proxy_delay',
  ];
  return [
    await q('ip', ['rule', 'show']),
    await q('ip', ['neigh', 'show', 'proxy']),
    await q('ip', ['route', 'show', 'table', 'all']),
    await q('ip', ['-4', 'addr', 'show']),
    tablesSorted(await q('nft', ['list', 'ruleset'])),
    await q('ip', ['-d', 'link', 'show', 'type', 'vxlan']),
    ...(await Promise.all(sysctls.map((k) => q('sysctl', [k])))),
  ].join('\n');
}

beforeAll(async () => {
  requireRoot();
  lab = await createLab({ nodes: 1, clients: 1 });
  dir = join(lab.runDir, 'onehost');
  await mkdir(join(dir, 'pki'), { recursive: true });
  const ca = await createClusterCa();
  const gw = await issueCertificate(ca, { role: 'gateway', name: 'gw', hosts: ['198.18.0.1'] });
  await writeFile(join(dir, 'pki/ca.pem'), ca.certPem);
  await writeFile(join(dir, 'pki/gw.pem'), gw.certPem);
  await writeFile(join(dir, 'pki/gw-key.pem'), gw.keyPem);
  const yaml = withDatapathMode(
    await readFile(new URL('../../infra/lab/gateway.yaml', import.meta.url), 'utf8'),
  );
  await writeFile(join(dir, 'gateway.yaml'), yaml);
});
afterAll(async () => {
  await lab?.cleanup();
});

describe('the gateway host configuration', () => {
  it('is undone on a clean stop, and after a crash by the next start', async () => {
    const before = await hostState();
    const start = async () => {
      const p = lab.spawn('gw', process.execPath, [GATEWAY_MAIN, '--config', join(dir, 'gateway.yaml')]);
      await p.waitForOutput('"msg":"ready"', 20_000);
      return p;
    };
    // c1 believes another machine has the cluster address (a previous owner): the gateway's
    // announcement at start corrects its cache
    await lab.exec('c1', 'ip', [
      'neigh',
      'replace',
      '203.0.113.80',
      'lladdr',
      '02:00:00:00:00:01',
      'dev',
      'eth0',
      'nud',
      'stale',
    ]);
    const first = await start();
    const [gwMac] = JSON.parse((await lab.exec('gw', 'ip', ['-j', 'link', 'show', 'dev', 'eth0'])).stdout);
    await waitFor(
      async () =>
        JSON.parse((await lab.exec('c1', 'ip', ['-j', 'neigh', 'show', '203.0.113.80'])).stdout)[0]
          ?.lladdr === gwMac.address,
      { what: "c1's neighbour entry for the cluster address to name the gateway", timeoutMs: 5000 },
    );
    await first.waitForOutput('cluster addresses announced (gratuitous ARP)', 5000);
    const during = await hostState();
    expect(during).not.toBe(before);
    expect(during).toContain('lookup 4789');
    expect(during).toContain('table ip onehost_gateway');
    // its IPv6 twin, with or without IPv6 cluster addresses (the host's own IPv6 is filtered either way)
    expect(during).toContain('table ip6 onehost_gateway');
    if (DATAPATH === 'kernel') {
      // the kernel data path: its table, its device, the rule for the gateway's own mark
      expect(during).toContain('table ip onehost_fastpath');
      expect(during).toMatch(/onehostvx: .*\n.*\n\s+vxlan external/);
      expect(during).toMatch(/fwmark 0x6f48ffff lookup local/);
    } else {
      expect(during).not.toContain('onehost_fastpath');
      expect(during).not.toContain('onehostvx');
    }
    expect(during).toContain('203.0.113.80 dev eth0 proxy');
    // the gateway host's own service answers at the cluster address (no entry, no port block: local)
    expect(
      (await lab.exec('c1', 'curl', ['-sS', '-m', '5', 'http://203.0.113.80:8080/'])).stdout.trim(),
    ).toBe('gw');
    // a client in the outside subnet with no route to the cluster address: the gateway answers its ARP
    await lab.exec('c1', 'ip', ['route', 'del', '203.0.113.80/32']);
    try {
      expect(
        (await lab.exec('c1', 'curl', ['-sS', '-m', '5', 'http://203.0.113.80:8080/'])).stdout.trim(),
      ).toBe('gw');
      const [gwOut] = JSON.parse((await lab.exec('gw', 'ip', ['-j', 'link', 'show', 'dev', 'eth0'])).stdout);
      const [entry] = JSON.parse(
        (await lab.exec('c1', 'ip', ['-j', 'neigh', 'show', '203.0.113.80'])).stdout,
      );
      expect(entry.lladdr).toBe(gwOut.address);
    } finally {
      await lab.exec('c1', 'ip', ['route', 'add', '203.0.113.80/32', 'via', '203.0.113.1']);
    }
    process.kill(first.pid, 'SIGKILL');
    await first.whenExited();
    expect(await hostState()).not.toBe(before); // a crash leaves the rules behind…
    const second = await start(); // …and the next start adopts them, applying its own on top
    expect(await hostState()).toBe(during);
    await second.stop(5000);
    expect(second.exitStatus()).toEqual({ code: 0, signal: null });
    expect(await hostState()).toBe(before);
  });

  it('refuses a switch table the switch would refuse, naming the field, with exit code 2', async () => {
    const bad = (await readFile(join(dir, 'gateway.yaml'), 'utf8')).replace(
      'policy: round-robin',
      'policy: rr',
    );
    await writeFile(join(dir, 'bad.yaml'), bad);
    const r = await lab
      .exec('gw', process.execPath, [GATEWAY_MAIN, '--config', join(dir, 'bad.yaml'), '--check'])
      .then(
        () => 'accepted',
        (e: Error) => e.message,
      );
    expect(r).toMatch(/exit 2/);
    expect(r).toMatch(/entries\[0\]\.policy: must be one of round-robin, maglev, least-conn/);
  });
});
