import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ClientTls,
  type ControlServer,
  connectMembership,
  createClusterCa,
  issueCertificate,
  startControlServer,
} from '@onehost/control';
import { waitFor } from '@onehost/testkit';
import {
  encodeAcceptedReply,
  MOUNT_PROGRAM,
  PMAP_IPPROTO_TCP,
  PmapMappingView,
  RpcCallView,
  SUCCESS,
  XdrWriter,
} from '@onehost/wire';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MountPortRestore } from './config.js';
import { GANESHA_LAYOUT, MountRegistrar, restoresFor } from './mount-registrar.js';
import { getport } from './rpcbind.js';

/**
 * A stand-in portmapper on loopback answering GETPORT for MOUNT with whatever `ports` holds (0: not
 * registered). The real rpcbind and nfs-ganesha are exercised end to end (test/src/nfs.e2e.test.ts).
 */
async function fakeRpcbind(ports: {
  tcp: number;
  udp: number;
}): Promise<{ sock: Socket; port: number; calls: number[] }> {
  const sock = createSocket('udp4');
  const calls: number[] = [];
  const call = new RpcCallView();
  const mapping = new PmapMappingView();
  sock.on('message', (msg, r) => {
    if (call.bind(msg) !== 0 || mapping.bindCall(call) !== 0) return;
    calls.push(mapping.prot);
    const port =
      mapping.prog !== MOUNT_PROGRAM ? 0 : mapping.prot === PMAP_IPPROTO_TCP ? ports.tcp : ports.udp;
    sock.send(encodeAcceptedReply(call.xid, SUCCESS, new XdrWriter(4).u32(port).bytes()), r.port, r.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  return { sock, port: sock.address().port, calls };
}

interface Line {
  msg: string;
  level: number;
  [k: string]: unknown;
}

describe('MountRegistrar against a control server', () => {
  let dir: string;
  let server: ControlServer;
  let tls: Record<'n1' | 'n2', ClientTls>;
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Line) });
  const cleanup: Array<() => unknown> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'onehost-mount-'));
    const ca = await createClusterCa();
    const gw = await issueCertificate(ca, { role: 'gateway', name: 'gw', hosts: ['127.0.0.1'] });
    const node = async (name: string) => {
      const c = await issueCertificate(ca, { role: 'node', name });
      return { caPem: ca.certPem, certPem: c.certPem, keyPem: c.keyPem };
    };
    tls = { n1: await node('n1'), n2: await node('n2') };
    server = await startControlServer({
      tls: { caPem: ca.certPem, certPem: gw.certPem, keyPem: gw.keyPem },
      cluster: {
        addresses: [{ network: 'outside', address: '203.0.113.80', isDefault: true }],
        vxlan: { vni: 42, udpPort: 4789, gatewayAddresses: ['198.18.0.1'] },
        interconnectPrefixes: ['198.18.0.0/15'],
      },
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 600_000, // no heartbeats here: members stay up
      clusterMountPorts: () => ({ tcp: 20048, udp: 20048 }),
      shutdownGraceMs: 100,
    });
    for (const [name, last] of [
      ['n1', 11],
      ['n2', 12],
    ] as const) {
      const m = connectMembership(`127.0.0.1:${server.port}`, tls[name]);
      await m.join({
        nodeName: name,
        internalAddress: `198.18.0.${last}`,
        capabilities: [],
        vxlanMac: `02:00:5e:10:00:${last}`,
      });
      m.close();
    }
  });
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function registrar(
    name: 'n1' | 'n2',
    rpcbindPort: number,
    more: Partial<ConstructorParameters<typeof MountRegistrar>[0]> = {},
  ) {
    const restores: MountPortRestore[][] = [];
    const r = new MountRegistrar({
      gateway: `127.0.0.1:${server.port}`,
      tls: tls[name],
      nodeName: name,
      rpcbind: { host: '127.0.0.1', port: rpcbindPort },
      handleLayout: GANESHA_LAYOUT,
      intervalMs: 50,
      log: log.child({ node: name }),
      onRestores: async (x) => {
        restores.push(x);
      },
      ...more,
    });
    cleanup.push(() => r.stop());
    return { r, restores };
  }
  const registered = (name: string) => server.exports.get(name);

  it('registers ports and exports, re-registers when mountd moves, and keeps it while mountd is away', async () => {
    const ports = { tcp: 40001, udp: 40002 };
    const rpcbind = await fakeRpcbind(ports);
    cleanup.push(() => rpcbind.sock.close());
    const conf = join(dir, 'ganesha.conf');
    await writeFile(conf, 'EXPORT { Export_Id = 11; Path = /srv/projects; FSAL { Name = VFS; } }\n');
    const { r, restores } = registrar('n1', rpcbind.port, {
      ganeshaConfig: conf,
      exports: [{ path: '/srv/extra', exportId: 21 }],
    });
    r.start();
    await waitFor(() => registered('n1') !== undefined, { what: 'n1 registered' });
    expect(registered('n1')).toMatchObject({
      mountPorts: { tcp: 40001, udp: 40002 },
      exports: [
        { path: '/srv/extra', exportId: 21 },
        { path: '/srv/projects', exportId: 11 },
      ],
      handleLayout: { offset: 2, length: 2, endian: 'big' },
    });
    await waitFor(() => restores.length === 1, { what: 'restores applied' });
    expect(restores[0]).toEqual([
      { proto: 'tcp', nodePort: 40001, clusterPort: 20048 },
      { proto: 'udp', nodePort: 40002, clusterPort: 20048 },
    ]);

    // nfs-ganesha restarts: first gone from rpcbind (the registration stays), then back on new ports.
    ports.tcp = 0;
    ports.udp = 0;
    await waitFor(() => lines.some((l) => l.msg.startsWith('mountd is not registered')), { what: 'warning' });
    expect(registered('n1')?.mountPorts).toEqual({ tcp: 40001, udp: 40002 });
    ports.tcp = 40011;
    ports.udp = 20048; // now equal to the cluster's port over UDP: nothing to restore there
    await waitFor(() => registered('n1')?.mountPorts.tcp === 40011, { what: 'new port registered' });
    await waitFor(() => restores.length === 2, { what: 'new restores' });
    expect(restores[1]).toEqual([{ proto: 'tcp', nodePort: 40011, clusterPort: 20048 }]);

    // a changed configuration is registered too
    await writeFile(conf, 'EXPORT { Export_Id = 11; Path = /srv/projects2; }\n');
    await waitFor(() => registered('n1')?.exports.some((e) => e.path === '/srv/projects2') === true, {
      what: 'new export registered',
    });
    const before = rpcbind.calls.length;
    await waitFor(() => rpcbind.calls.length >= before + 6, { what: 'three more checks' });
    expect(lines.filter((l) => l.msg === 'mount registered').length).toBe(3); // unchanged: not registered again
    expect(lines.filter((l) => l.msg.startsWith('mountd is not registered')).length).toBe(1); // logged once
    await r.stop();
  });

  it('logs a refused conflict once, counted by the gateway, and registers once the other node leaves', async () => {
    const a = await fakeRpcbind({ tcp: 40101, udp: 40102 });
    const b = await fakeRpcbind({ tcp: 40201, udp: 40202 });
    cleanup.push(
      () => a.sock.close(),
      () => b.sock.close(),
    );
    const n1 = registrar('n1', a.port, { exports: [{ path: '/srv/home', exportId: 12 }] });
    n1.r.start();
    await waitFor(() => registered('n1')?.exports[0]?.path === '/srv/home', { what: 'n1 has /srv/home' });
    const conflictsBefore = server.exports.conflicts.path;
    const n2 = registrar('n2', b.port, { exports: [{ path: '/srv/home', exportId: 13 }] });
    n2.r.start();
    const refused = (l: Line) =>
      l.node === 'n2' && l.msg.startsWith('the gateway refused the mount registration');
    await waitFor(() => lines.some(refused), { what: 'refusal logged' });
    const checks = b.calls.length;
    await waitFor(() => b.calls.length >= checks + 6, { what: 'more checks' });
    expect(lines.filter(refused).length).toBe(1);
    expect(lines.find(refused)?.msg).toContain(
      'ALREADY_EXISTS: exports[0].path: /srv/home is already exported by n1',
    );
    expect(lines.find(refused)?.level).toBe(50); // error
    expect(server.exports.conflicts.path).toBeGreaterThan(conflictsBefore);
    expect(registered('n2')).toBeUndefined();

    await n1.r.stop();
    await server.membership.leave('n1');
    await waitFor(() => registered('n2')?.exports[0]?.path === '/srv/home', { what: 'n2 registered' });
  });

  it('restoresFor skips transports without a port on either side or with equal ports', () => {
    expect(restoresFor({ tcp: 1, udp: 2 }, { udp: 2 })).toEqual([]);
    expect(restoresFor({ udp: 3 }, { tcp: 9, udp: 4 })).toEqual([
      { proto: 'udp', nodePort: 3, clusterPort: 4 },
    ]);
  });

  it('getport gives up on a silent portmapper after two attempts', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => silent.close());
    let seen = 0;
    silent.on('message', () => seen++);
    await expect(
      getport({ host: '127.0.0.1', port: silent.address().port, timeoutMs: 50 }, MOUNT_PROGRAM, 3, 17),
    ).rejects.toThrow('did not answer');
    expect(seen).toBe(2);
  });
});
