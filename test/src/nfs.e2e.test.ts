import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_NFS, type Lab } from '@onehost/lab';
import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from './cluster.js';

// The patent's Examples 1-2 (Figs. 7-9) with real servers: nfs-ganesha and rpcbind on n1 (/srv/projects,
// export id 11, random MOUNT ports) and n2 (/srv/home, export id 12, MOUNT port 20050); the cluster's
// MOUNT port is 20048, its NFS port 2049, its portmapper 111 (infra/lab/gateway.yaml). n3 exports
// /srv/projects too, which the gateway must refuse. Outside clients: rpcinfo and showmount
// (nfs-common), and nfs-rpc-client.py for MOUNT and NFSv3 over UDP, which no stock tool sends.

const CLIENT = fileURLToPath(new URL('./nfs-rpc-client.py', import.meta.url));
/** the demo's checks of a node with NFS: nginx, and NFS and MOUNT answering NULL */
const HEALTH = fileURLToPath(new URL('../../infra/lab/health-nfs.yaml', import.meta.url));
const MOUNT_PORT = 20048;
const NFS_PORT = 2049;
const NFS3ERR_STALE = 70;
const NFS3ERR_NOENT = 2;
const MNT3ERR_NOENT = 2;
const BIG = 1536 * 1024;
const NFS = [...DEFAULT_NFS, { node: 'n3', path: '/srv/projects', exportId: 13, mntPort: 20051 }];

interface Mnt {
  status: number;
  handle?: string;
  from: [string, number];
}
interface Reply {
  xid: number;
  replyStat?: 'accepted' | 'denied';
  acceptStat?: number;
  rejectStat?: number;
  authStat?: number;
  low?: number;
  high?: number;
  results?: number;
}

/** exportIdOf reads the export id nfs-ganesha keeps in bytes 2-3 of its handles (DESIGN.md §2). */
const exportIdOf = (handle: string) => Number.parseInt(handle.slice(4, 8), 16);

describe('MOUNT, NFS and the portmapper through the cluster address', () => {
  let cluster: Cluster;
  let lab: Lab;
  let vip: string;
  let bigSha: string;
  const notes = 'alice: the cluster looks like one host\n';

  /** client runs nfs-rpc-client.py in c1 with one request; resolves with its JSON answer. */
  async function client<T>(req: Record<string, unknown>, host = 'c1'): Promise<T> {
    const { stdout } = await lab.exec(host, 'python3', [CLIENT, JSON.stringify({ host: vip, ...req })], {
      timeoutMs: 30_000,
    });
    return JSON.parse(stdout) as T;
  }
  const mnt = (path: string) => client<Mnt>({ op: 'mnt', path, mountPort: MOUNT_PORT });

  const metric = (name: string, labels: Record<string, string> = {}) => cluster.metric(name, labels);

  const registrations = () => cluster.mountRegistrations();

  /** restored counts the agent's "mount reply ports restored" logs (its nftables rule changed). */
  const restored = (node: string) =>
    (
      cluster.agents
        .get(node)
        ?.output()
        .match(/"msg":"mount reply ports restored"/g) ?? []
    ).length;

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 3,
      nfs: NFS,
      agents: ['n1', 'n2'],
      agentArgs: (name, l) => [
        '--ganesha-config',
        l.nfsOf(name).config,
        '--mount-check-ms',
        '200',
        '--health-checks',
        HEALTH,
      ],
    });
    lab = cluster.lab;
    vip = cluster.vip;
    const big = randomBytes(BIG);
    bigSha = createHash('sha256').update(big).digest('hex');
    await writeFile(join(lab.nfsOf('n1').tree, 'big.bin'), big);
    await writeFile(join(lab.nfsOf('n2').tree, 'notes.txt'), notes);
    await cluster.waitForMount(['n1', 'n2'], 'udp');
    // and restore their mountd replies' port (right after registering: the answer names the cluster's)
    for (const n of ['n1', 'n2'])
      await waitFor(() => restored(n) >= 1, { what: `${n} restores`, timeoutMs: 5000 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('rpcinfo -p shows one server: the portmapper, MOUNT and NFS on the cluster ports only', async () => {
    const { stdout } = await lab.exec('c1', 'rpcinfo', ['-p', vip]);
    const rows = stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/).slice(0, 4).join(' '))
      .sort();
    expect(rows).toEqual(
      [
        '100000 2 tcp 111',
        '100000 2 udp 111',
        '100000 3 tcp 111',
        '100000 3 udp 111',
        '100000 4 tcp 111',
        '100000 4 udp 111',
        '100005 1 tcp 20048',
        '100005 1 udp 20048',
        '100005 3 tcp 20048',
        '100005 3 udp 20048',
        '100003 3 tcp 2049',
        '100003 3 udp 2049',
      ].sort(),
    );
    // the nodes' own mountd ports are theirs alone
    const n1 = await lab.mountdPorts('n1');
    for (const p of [n1.udp, n1.tcp, 20050]) expect(stdout).not.toContain(` ${p} `);
  });

  it('rpcinfo -u and -t reach MOUNT v3 and NFS v3 at the cluster address', async () => {
    for (const flag of ['-u', '-t'])
      for (const prog of ['100005', '100003']) {
        const { stdout } = await lab.exec('c1', 'rpcinfo', [flag, vip, prog, '3']);
        expect(stdout.trim()).toBe(`program ${prog} version 3 ready and waiting`);
      }
  });

  it('showmount -e lists both nodes’ exports as one server’s', async () => {
    const { stdout } = await lab.exec('c1', 'showmount', ['-e', vip]);
    expect(stdout).toBe(`Export list for ${vip}:\n/srv/home     (everyone)\n/srv/projects (everyone)\n`);
  });

  it('MNT over UDP: /srv/projects gets n1’s handle, /srv/home n2’s; replies come from the cluster’s MOUNT port', async () => {
    const n1Before = await metric('onehost_forwarded_packets_total', { node: 'n1' });
    const n2Before = await metric('onehost_forwarded_packets_total', { node: 'n2' });
    const projects = await mnt('/srv/projects');
    const home = await mnt('/srv/home');
    for (const r of [projects, home]) {
      expect(r.status).toBe(0);
      expect(r.handle!.slice(0, 2)).toBe('43'); // a ganesha handle
      // the node's mountd answered on its own port; its agent put the cluster's port back (claim 3)
      expect(r.from).toEqual([vip, MOUNT_PORT]);
    }
    expect(exportIdOf(projects.handle!)).toBe(11);
    expect(exportIdOf(home.handle!)).toBe(12);
    expect(await metric('onehost_forwarded_packets_total', { node: 'n1' })).toBeGreaterThan(n1Before);
    expect(await metric('onehost_forwarded_packets_total', { node: 'n2' })).toBeGreaterThan(n2Before);
    // a subdirectory of an export goes to the same node (longest match, Fig. 8)
    expect((await mnt('/srv/projects/sub')).from).toEqual([vip, MOUNT_PORT]);
  });

  it('GETATTR, LOOKUP and READ over UDP reach the node serving the handle; a 1.5 MiB file reads back byte for byte', async () => {
    const projects = (await mnt('/srv/projects')).handle!;
    const home = (await mnt('/srv/home')).handle!;
    const root = await client<{ status: number; type: number }>({ op: 'getattr', handle: projects });
    expect([root.status, root.type]).toEqual([0, 2]); // NF3DIR
    const big = await client<{ status: number; handle: string; size: number }>({
      op: 'lookup',
      handle: projects,
      name: 'big.bin',
    });
    expect([big.status, big.size, exportIdOf(big.handle)]).toEqual([0, BIG, 11]);
    const read = await client<{ status: number; bytes: number; reads: number; sha256: string }>({
      op: 'readall',
      handle: big.handle,
      chunk: 16384,
    });
    expect(read).toMatchObject({ status: 0, bytes: BIG, sha256: bigSha });
    expect(read.reads).toBeGreaterThanOrEqual(BIG / 16384);

    const file = await client<{ status: number; handle: string; size: number }>({
      op: 'lookup',
      handle: home,
      name: 'notes.txt',
    });
    expect([file.status, file.size, exportIdOf(file.handle)]).toEqual([0, notes.length, 12]);
    const text = await client<{ sha256: string }>({ op: 'readall', handle: file.handle, chunk: 4096 });
    expect(text.sha256).toBe(createHash('sha256').update(notes).digest('hex'));
    // n2 serves /srv/home only: big.bin is not there
    expect((await client<{ status: number }>({ op: 'lookup', handle: home, name: 'big.bin' })).status).toBe(
      NFS3ERR_NOENT,
    );
  });

  it('CREATE, WRITE (unstable) and COMMIT over UDP write a 1.5 MiB file into n2’s writable export; the server’s file is what was sent', async () => {
    const home = (await mnt('/srv/home')).handle!;
    const name = 'written-over-udp.bin';
    const size = 1536 * 1024;
    // 8 KiB writes: each call is fragmented on the outside link (fragments follow their first)
    const w = await client<{
      status: number;
      bytes: number;
      sha256: string;
      verifiers: number;
      handle: string;
    }>({
      op: 'writeall',
      handle: home,
      name,
      size,
      chunk: 8192,
      seed: 7,
    });
    const atServer = join(lab.nfsOf('n2').tree, name);
    try {
      expect(w).toMatchObject({ status: 0, bytes: size, verifiers: 1 });
      expect(exportIdOf(w.handle)).toBe(12);
      expect(
        createHash('sha256')
          .update(await readFile(atServer))
          .digest('hex'),
      ).toBe(w.sha256);
      // and it reads back through the cluster address
      const back = await client<{ sha256: string }>({ op: 'readall', handle: w.handle, chunk: 16384 });
      expect(back.sha256).toBe(w.sha256);
    } finally {
      await rm(atServer, { force: true });
    }
  });

  it('a handle with an export id no node registered is stale, a path no node exports NOENT: both answered by the gateway, counted', async () => {
    const stale = (await mnt('/srv/projects')).handle!.replace(/^(....)..../, '$103e7'); // export id 999
    const staleBefore = await metric('onehost_rpc_calls_total', {
      service: 'nfs',
      transport: 'udp',
      outcome: 'stale',
    });
    const unknownBefore = await metric('onehost_rpc_routing_events_total', { event: 'nfs_unknown_export' });
    const r = await client<{ status: number; from: [string, number] }>({ op: 'getattr', handle: stale });
    expect(r).toEqual({ status: NFS3ERR_STALE, from: [vip, NFS_PORT] });
    expect(
      await metric('onehost_rpc_calls_total', { service: 'nfs', transport: 'udp', outcome: 'stale' }),
    ).toBe(staleBefore + 1);
    expect(await metric('onehost_rpc_routing_events_total', { event: 'nfs_unknown_export' })).toBe(
      unknownBefore + 1,
    );

    const noentBefore = await metric('onehost_rpc_calls_total', { service: 'mount', outcome: 'noent' });
    expect(await mnt('/srv/nothing')).toEqual({ status: MNT3ERR_NOENT, from: [vip, MOUNT_PORT] });
    expect(await metric('onehost_rpc_calls_total', { service: 'mount', outcome: 'noent' })).toBe(
      noentBefore + 1,
    );
  });

  it('a third node claiming /srv/projects is refused with a clear error and counted; MNT still reaches n1', async () => {
    const before = await metric('onehost_export_conflicts_total', { field: 'path' });
    const n3 = await cluster.startAgent('n3');
    await n3.waitForOutput(
      'the gateway refused the mount registration: ALREADY_EXISTS: exports[0].path: /srv/projects is already exported by n1',
      10_000,
    );
    expect(await metric('onehost_export_conflicts_total', { field: 'path' })).toBeGreaterThan(before);
    expect((await registrations()).map((r) => r.nodeName).sort()).toEqual(['n1', 'n2']);
    expect(exportIdOf((await mnt('/srv/projects')).handle!)).toBe(11);
    await n3.stop(5000);
  });

  it('restarting nfs-ganesha on n1 (new random MOUNT ports) is picked up: the next MNT works', async () => {
    const before = await lab.mountdPorts('n1');
    const handle = (await mnt('/srv/projects')).handle!;
    const restores = restored('n1');
    let moved = await lab.restartGanesha('n1');
    // a new random port repeats the old one once in ~28000 starts; restart once more then
    if (moved.udp === before.udp) moved = await lab.restartGanesha('n1');
    expect(moved.udp).not.toBe(before.udp);
    await waitFor(
      async () => (await registrations()).find((r) => r.nodeName === 'n1')?.mountPorts.udp === moved.udp,
      {
        what: 'the new mountd port at the gateway',
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    await waitFor(() => restored('n1') > restores, { what: 'n1 restores the new port', timeoutMs: 5000 });
    const again = await mnt('/srv/projects');
    expect(again).toEqual({ status: 0, handle, from: [vip, MOUNT_PORT] }); // ganesha handles survive restarts
    const big = await client<{ status: number }>({ op: 'lookup', handle, name: 'big.bin' });
    expect(big.status).toBe(0);
  });

  it('ganesha stopped on n2: MOUNT and NFS calls for its export are answered at once with an error, and work when it is back', async () => {
    const handle = (await mnt('/srv/home')).handle!;
    const checkOf = async () =>
      (
        JSON.parse(await cluster.ctl(['members', '--json'])) as {
          name: string;
          health: { name: string; healthy: boolean }[];
        }[]
      )
        .find((m) => m.name === 'n2')
        ?.health.find((h) => h.name === 'nfs')?.healthy;
    expect(await checkOf()).toBe(true);
    await lab.stopGanesha('n2');
    await waitFor(async () => (await checkOf()) === false, {
      what: 'n2’s nfs check failing',
      timeoutMs: 5000,
      intervalMs: 100,
    });
    const t0 = Date.now();
    expect(await mnt('/srv/home')).toEqual({ status: MNT3ERR_NOENT, from: [vip, MOUNT_PORT] });
    const r = await client<{ status: number }>({ op: 'getattr', handle });
    expect(r.status).toBe(NFS3ERR_STALE);
    expect(Date.now() - t0).toBeLessThan(3000); // answered, not retried into a timeout
    expect(exportIdOf((await mnt('/srv/projects')).handle!)).toBe(11); // n1 unaffected
    await lab.startGanesha('n2');
    await waitFor(async () => (await mnt('/srv/home')).status === 0, {
      what: 'MNT of /srv/home working again',
      timeoutMs: 15_000,
      intervalMs: 200,
    });
    expect((await client<{ status: number }>({ op: 'getattr', handle })).status).toBe(0);
  });

  it('malformed MOUNT, NFS and portmapper payloads get the RFC 5531 answer or none, counted; no crash, other traffic unaffected', async () => {
    const hex = (...words: number[]) => words.map((w) => (w >>> 0).toString(16).padStart(8, '0')).join('');
    const header = (prog: number, vers: number, proc: number, rpcvers = 2) =>
      hex(0x0e2e0001, 0, rpcvers, prog, vers, proc);
    const none = hex(0, 0, 0, 0); // AUTH_NONE credential and verifier
    const path = (s: string) =>
      hex(s.length) + Buffer.from(s.padEnd(Math.ceil(s.length / 4) * 4, '\0')).toString('hex');
    type Case = [what: string, port: number, datagram: string, expect: Partial<Reply> | null];
    const cases: Case[] = [
      ['truncated MNT header', MOUNT_PORT, header(100005, 3, 1).slice(0, 30), null],
      [
        'MNT with a 4 GiB dirpath length',
        MOUNT_PORT,
        header(100005, 3, 1) + none + hex(0xfffffff0),
        { acceptStat: 4 },
      ],
      ['NFS program at the MOUNT port', MOUNT_PORT, header(100003, 3, 0) + none, { acceptStat: 1 }],
      ['MOUNT v4', MOUNT_PORT, header(100005, 4, 0) + none, { acceptStat: 2, low: 1, high: 3 }],
      ['RPC version 3', MOUNT_PORT, header(100005, 3, 0, 3) + none, { rejectStat: 0, low: 2, high: 2 }],
      [
        'credential of 4 GiB',
        MOUNT_PORT,
        header(100005, 3, 5) + hex(1, 0xffffff00),
        { rejectStat: 1, authStat: 1 },
      ],
      [
        'AUTH_SYS body cut short',
        MOUNT_PORT,
        `${header(100005, 3, 5) + hex(1, 8, 0, 200)}${hex(0, 0)}`,
        { rejectStat: 1, authStat: 1 },
      ],
      [
        'RPCSEC_GSS credential',
        NFS_PORT,
        header(100003, 3, 0) + hex(6, 4, 1) + hex(0, 0),
        { rejectStat: 1, authStat: 2 },
      ],
      ['NFS handle of 4 GiB', NFS_PORT, header(100003, 3, 1) + none + hex(0xffffffff), { acceptStat: 4 }],
      ['NFS procedure 99', NFS_PORT, header(100003, 3, 99) + none + path('x'), { acceptStat: 3 }],
      ['NFSv4 at the cluster', NFS_PORT, header(100003, 4, 0) + none, { acceptStat: 2, low: 3, high: 3 }],
      ['a reply sent as a call', NFS_PORT, hex(1, 1, 0, 0, 0, 0), null],
      ['PMAP GETPORT without its mapping', 111, header(100000, 2, 3) + none + hex(100005), { acceptStat: 4 }],
      ['PMAP CALLIT', 111, header(100000, 2, 5) + none + hex(100005, 3, 0, 0), { acceptStat: 3 }],
      ['MOUNT at the portmapper', 111, header(100005, 3, 0) + none, { acceptStat: 1 }],
      ['empty datagram', 111, '', null],
    ];
    const dropsBefore = await metric('onehost_rpc_dropped_total', { reason: 'truncated' });
    const answered = await metric('onehost_rpc_calls_total');
    for (const [what, port, datagram, want] of cases) {
      const r = await client<{ reply: Reply | null; from?: [string, number] }>({
        op: 'raw',
        port,
        hex: datagram,
        timeout: want === null ? 0.3 : 2,
      });
      if (want === null) expect(r.reply, what).toBeNull();
      else {
        expect(r.reply, what).toMatchObject({ xid: 0x0e2e0001, ...want });
        expect(r.from, what).toEqual([vip, port]);
      }
    }
    expect(await metric('onehost_rpc_dropped_total', { reason: 'truncated' })).toBeGreaterThanOrEqual(
      dropsBefore + 2,
    );
    expect(await metric('onehost_rpc_dropped_total', { reason: 'not_call' })).toBeGreaterThanOrEqual(1);
    expect(await metric('onehost_rpc_calls_total')).toBe(
      answered + cases.filter((c) => c[3] !== null).length,
    );

    // TCP: a record mark asking for 2 GiB closes the connection (the stream cannot be resynchronised)
    const tcp = await client<{ closed: boolean; replies: Reply[] }>({
      op: 'tcp',
      port: 111,
      hex: 'fffffff0deadbeef',
    });
    expect(tcp).toEqual({ closed: true, replies: [] });
    expect(
      await metric('onehost_rpc_dropped_total', {
        service: 'portmap',
        transport: 'tcp',
        reason: 'record_error',
      }),
    ).toBe(1);

    // a bounded fuzz of the three ports from mutations of valid calls
    const seeds = [
      header(100005, 3, 1) + none + path('/srv/home'),
      `${header(100003, 3, 1) + none + hex(8)}4300000c00000000`,
      header(100000, 2, 3) + none + hex(100005, 3, 17, 0),
      header(100005, 3, 5) + none,
    ];
    const fuzz = await client<{ sent: number }>({
      op: 'fuzz',
      ports: [MOUNT_PORT, NFS_PORT, 111],
      seeds,
      count: 400,
      seed: 6,
    });
    expect(fuzz.sent).toBe(1200);

    // the gateway is alive and serves; the nodes' traffic is unaffected
    expect(cluster.gateway.running).toBe(true);
    const { stdout } = await lab.exec('c2', 'rpcinfo', ['-t', vip, '100005', '3']);
    expect(stdout).toContain('ready and waiting');
    const home = await client<Mnt>({ op: 'mnt', path: '/srv/home', mountPort: MOUNT_PORT }, 'c2');
    expect([home.status, home.from]).toEqual([0, [vip, MOUNT_PORT]]);
    const file = await client<{ handle: string }>(
      { op: 'lookup', handle: home.handle, name: 'notes.txt' },
      'c2',
    );
    expect(
      (await client<{ sha256: string }>({ op: 'readall', handle: file.handle, chunk: 4096 }, 'c2')).sha256,
    ).toBe(createHash('sha256').update(notes).digest('hex'));
    expect(exportIdOf((await mnt('/srv/projects')).handle!)).toBe(11);
  });

  it('a node that leaves takes its exports with it; back, it registers again', async () => {
    await cluster.agents.get('n2')!.stop(5000); // SIGTERM: Leave
    await waitFor(async () => !(await registrations()).some((r) => r.nodeName === 'n2'), {
      what: 'n2’s registration removed',
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect((await lab.exec('c1', 'showmount', ['-e', vip])).stdout).toBe(
      `Export list for ${vip}:\n/srv/projects (everyone)\n`,
    );
    expect(await mnt('/srv/home')).toEqual({ status: MNT3ERR_NOENT, from: [vip, MOUNT_PORT] });

    const n2 = await cluster.startAgent('n2');
    await n2.waitForOutput('"msg":"mount registered"', 10_000);
    expect(exportIdOf((await mnt('/srv/home')).handle!)).toBe(12);
  });
});
