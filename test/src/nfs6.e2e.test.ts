import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '@onehost/lab';
import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startNfs6Cluster } from './cluster.js';

// Issue 16 item 2: MOUNT, NFS and the portmapper through the IPv6 cluster address, with the real
// nfs-ganesha on n1 (/srv/projects, export id 11, random MOUNT ports) and n2 (/srv/home, export id 12,
// MOUNT port 20050). ganesha listens on both families (`*:2049`); the client is nfs-rpc-client.py over
// UDP. Over TCP (delayed binding, in both data path modes): nfs6-tcp.e2e.test.ts.

const CLIENT = fileURLToPath(new URL('./nfs-rpc-client.py', import.meta.url));
const VIP6 = '2001:db8:113::80';
const MOUNT_PORT = 20048;
const BIG = 1536 * 1024;

interface Mnt {
  status: number;
  handle?: string;
  from: [string, number];
}

/** exportIdOf reads the export id nfs-ganesha keeps in bytes 2-3 of its handles. */
const exportIdOf = (handle: string) => Number.parseInt(handle.slice(4, 8), 16);

describe('MOUNT, NFS and the portmapper through the IPv6 cluster address', () => {
  let cluster: Cluster;
  let lab: Lab;
  let bigSha: string;
  const notes = 'alice: one host, two families\n';

  async function client<T>(req: Record<string, unknown>): Promise<T> {
    const { stdout } = await lab.exec('c1', 'python3', [CLIENT, JSON.stringify({ host: VIP6, ...req })], {
      timeoutMs: 30_000,
    });
    return JSON.parse(stdout) as T;
  }
  const mnt = (path: string) => client<Mnt>({ op: 'mnt', path, mountPort: MOUNT_PORT });

  beforeAll(async () => {
    cluster = await startNfs6Cluster(VIP6);
    lab = cluster.lab;
    const big = randomBytes(BIG);
    bigSha = createHash('sha256').update(big).digest('hex');
    await writeFile(join(lab.nfsOf('n1').tree, 'big.bin'), big);
    await writeFile(join(lab.nfsOf('n2').tree, 'notes.txt'), notes);
    await cluster.waitForMount(['n1', 'n2'], 'udp');
    // n1's random mountd port is restored on its replies once the agent has registered it
    await waitFor(async () => (await mnt('/srv/projects').catch(() => null))?.from[1] === MOUNT_PORT, {
      what: 'n1 answers MOUNT over IPv6 from the cluster port',
      timeoutMs: 10_000,
    });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('the portmapper answers GETPORT over IPv6 with the cluster’s MOUNT port', async () => {
    // PMAPPROC_GETPORT (RFC 1833 §3.2): prog 100005, vers 3, IPPROTO_UDP, port 0
    const args = [100005, 3, 17, 0].map((n) => n.toString(16).padStart(8, '0')).join('');
    const r = await client<{ reply: { acceptStat?: number }; from: [string, number]; hex: string }>({
      op: 'call',
      port: 111,
      prog: 100000,
      vers: 2,
      proc: 3,
      args,
    });
    expect(r.reply.acceptStat).toBe(0);
    expect(r.from).toEqual([VIP6, 111]);
    expect(Number.parseInt(r.hex.slice(-8), 16)).toBe(MOUNT_PORT);
  });

  it('MNT over UDP: /srv/projects gets n1’s handle, /srv/home n2’s; replies come from the cluster’s MOUNT port', async () => {
    const projects = await mnt('/srv/projects');
    const home = await mnt('/srv/home');
    for (const r of [projects, home]) {
      expect(r.status).toBe(0);
      expect(r.from).toEqual([VIP6, MOUNT_PORT]);
    }
    expect(exportIdOf(projects.handle!)).toBe(11);
    expect(exportIdOf(home.handle!)).toBe(12);
  });

  it('LOOKUP and READ over UDP: a 1.5 MiB file on n1 and a small one on n2 read back with the right sha256', async () => {
    const projects = (await mnt('/srv/projects')).handle!;
    const home = (await mnt('/srv/home')).handle!;
    const big = await client<{ status: number; handle: string; size: number }>({
      op: 'lookup',
      handle: projects,
      name: 'big.bin',
    });
    expect([big.status, big.size, exportIdOf(big.handle)]).toEqual([0, BIG, 11]);
    const read = await client<{ status: number; bytes: number; sha256: string }>({
      op: 'readall',
      handle: big.handle,
      // 16 KiB replies leave n1 in fragments: they fit the 1500-byte outside link because n1's route
      // to the outside carries its MTU (the gateway says it at join; test/src/reply-mtu.e2e.test.ts)
      chunk: 16384,
    });
    expect(read).toMatchObject({ status: 0, bytes: BIG, sha256: bigSha });
    const file = await client<{ status: number; handle: string }>({
      op: 'lookup',
      handle: home,
      name: 'notes.txt',
    });
    expect(file.status).toBe(0);
    const text = await client<{ sha256: string }>({ op: 'readall', handle: file.handle, chunk: 4096 });
    expect(text.sha256).toBe(createHash('sha256').update(notes).digest('hex'));
  });
});
