import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab } from '@onehost/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, SPLICE_KERNEL, startNfs6Cluster } from './cluster.js';
import { kernelSpliceCounters } from './ksplice.js';

// Issue 16: MOUNT and NFS over TCP to the IPv6 cluster address, through delayed binding
// (docs/splice.md), in both data path modes, with the real libnfs tools against the real nfs-ganesha on
// n1 (/srv/projects) and n2 (/srv/home, writable). The URL's address is unbracketed
// (`nfs://2001:db8:113::80/srv/home`): libnfs 4.0 cannot resolve a bracketed one.

const VIP6 = '2001:db8:113::80';
/** what nfs-cp copies each way */
const COPY = 8 * 1024 * 1024;
const TOOL_TIMEOUT_MS = 60_000;
const HANDED_OVER = { outcome: 'handed_over' };

describe('MOUNT and NFS over TCP to the IPv6 cluster address (libnfs)', () => {
  let cluster: Cluster;
  let lab: Lab;
  const url = (path: string) => `nfs://${VIP6}${path}`;
  const handedOver = () => cluster.metric('onehost_splice_flows_total', HANDED_OVER);
  const segments = async () => ({
    kernel: await cluster.metric('onehost_splice_segments_total', { path: 'kernel' }),
    gateway: await cluster.metric('onehost_splice_segments_total', { path: 'gateway' }),
    agent: await cluster.metric('onehost_splice_segments_total', { path: 'agent' }),
  });
  const drops = (reason: string) => cluster.metric('onehost_drops_total', { reason });

  beforeAll(async () => {
    cluster = await startNfs6Cluster(VIP6);
    lab = cluster.lab;
    await writeFile(join(lab.nfsOf('n1').tree, 'only-on-n1.txt'), 'n1\n');
    await writeFile(join(lab.nfsOf('n2').tree, 'only-on-n2.txt'), 'n2\n');
    await cluster.waitForMount(['n1', 'n2'], 'tcp');
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('nfs-ls lists /srv/projects from n1 and /srv/home from n2, each session handed over to the node', async () => {
    for (const [path, name] of [
      ['/srv/projects', 'only-on-n1.txt'],
      ['/srv/home', 'only-on-n2.txt'],
    ] as const) {
      const before = await handedOver();
      const { stdout } = await lab.exec('c1', 'nfs-ls', [url(path)], { timeoutMs: TOOL_TIMEOUT_MS });
      expect(stdout, path).toContain(name);
      // its MOUNT connection and its NFS connection, each after the NULL call the gateway answered
      expect(await handedOver()).toBeGreaterThanOrEqual(before + 2);
    }
    await expect(lab.exec('c1', 'nfs-ls', [url('/srv')], { timeoutMs: TOOL_TIMEOUT_MS })).rejects.toThrow(
      /MNT3ERR_NOENT/,
    );
    expect(await drops('ipv6_unsupported')).toBe(0);
  });

  it(`nfs-cp writes ${COPY >> 20} MiB into n2's export and reads them back: sha256 equal at the server and in the copy; both directions shifted without the agent`, async () => {
    const data = randomBytes(COPY);
    const sha = createHash('sha256').update(data).digest('hex');
    const dir = join(lab.runDir, 'nfs6-copies');
    await mkdir(dir, { recursive: true });
    const local = join(dir, 'up.bin');
    const back = join(dir, 'down.bin');
    const atServer = join(lab.nfsOf('n2').tree, 'written-over-ipv6.bin');
    await writeFile(local, data);
    try {
      const before = await segments();
      const up = await lab.exec('c1', 'nfs-cp', [local, url('/srv/home/written-over-ipv6.bin')], {
        timeoutMs: TOOL_TIMEOUT_MS,
      });
      expect(up.stdout.trim()).toBe(`copied ${COPY} bytes`);
      expect(
        createHash('sha256')
          .update(await readFile(atServer))
          .digest('hex'),
        'at the server',
      ).toBe(sha);
      // the client's segments (all the data of a write): shifted by the gateway's tc program (ks_gw6)
      // in kernel mode, by its user space in tun mode; the agent saw the sessions' ends only
      const after = await segments();
      if (DATAPATH === 'kernel')
        expect(after.kernel - before.kernel, 'shifted by the gateway’s tc program').toBeGreaterThan(50);
      else expect(after.gateway - before.gateway, 'shifted by the gateway’s user space').toBeGreaterThan(50);
      expect(after.agent - before.agent, 'sent to the agent').toBeLessThan(100);
      const k0 = await kernelSpliceCounters(lab, 'n2', 'eth0');
      const down = await lab.exec('c1', 'nfs-cp', [url('/srv/home/written-over-ipv6.bin'), back], {
        timeoutMs: TOOL_TIMEOUT_MS,
      });
      expect(down.stdout.trim()).toBe(`copied ${COPY} bytes`);
      const k1 = await kernelSpliceCounters(lab, 'n2', 'eth0');
      if (SPLICE_KERNEL) {
        // the node's segments (the read's data) shifted by its tc program from ks_node6, not the agent
        expect(k1!.nodeShifted - k0!.nodeShifted, "n2's segments shifted in the kernel").toBeGreaterThan(100);
        expect(k1!.nodeNoFlow, 'marked without a flow entry').toBe(0);
      } else expect(k1, '--no-splice-kernel: no program').toBeNull();
      expect(
        createHash('sha256')
          .update(await readFile(back))
          .digest('hex'),
        'read back',
      ).toBe(sha);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(atServer, { force: true });
    }
  });
});
