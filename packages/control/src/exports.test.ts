import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { Endianness, type RegisterMountRequest, Transport } from '@onehost/proto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectExports, connectMembership } from './client.js';
import type { ControlServer } from './server.js';
import { codeOf, joinRequest, startTestServer, tlsOf } from './testing/harness.js';
import { makeTestPki, type TestPki } from './testing/pki.js';

let pki: TestPki;
let dir: string;
const open: { close(): unknown }[] = [];
const track = <T extends { close(): unknown }>(x: T): T => {
  open.push(x);
  return x;
};

beforeAll(async () => {
  pki = await makeTestPki();
  dir = await mkdtemp(join(tmpdir(), 'onehost-exports-'));
});
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ganesha = { offset: 2, length: 2, endianness: Endianness.ENDIANNESS_BIG };
const mount = (nodeName: string, exports: [string, number][]): RegisterMountRequest => ({
  nodeName,
  mountPorts: [
    { transport: Transport.TRANSPORT_TCP, port: 20048 },
    { transport: Transport.TRANSPORT_UDP, port: 20049 },
  ],
  exports: exports.map(([path, exportId]) => ({ path, exportId })),
  handleLayout: { ...ganesha },
});

type Name = 'n1' | 'n2' | 'n3';
const addr: Record<Name, number> = { n1: 11, n2: 12, n3: 13 };
async function joined(s: ControlServer, name: Name) {
  await track(connectMembership(`127.0.0.1:${s.port}`, tlsOf(pki.nodes[name]))).join(
    joinRequest(name, addr[name]),
  );
  return track(connectExports(`127.0.0.1:${s.port}`, tlsOf(pki.nodes[name])));
}
const listing = (s: ControlServer) =>
  track(connectExports(`127.0.0.1:${s.port}`, tlsOf(pki.operator))).listExports();

describe('RegisterMount', () => {
  it('stores each node registration and refuses a path or export id another node claims', async () => {
    const s = track(await startTestServer(pki));
    const n1 = await joined(s, 'n1');
    const n2 = await joined(s, 'n2');
    expect(await n1.registerMount(mount('n1', [['/srv/projects', 1]]))).toEqual({
      nodeId: 1,
      exportCount: 1,
      clusterMountPorts: [], // this gateway routes no MOUNT port
    });
    expect(await codeOf(n2.registerMount(mount('n2', [['/srv/projects', 7]])))).toEqual({
      code: status.ALREADY_EXISTS,
      details: 'exports[0].path: /srv/projects is already exported by n1',
    });
    expect(await codeOf(n2.registerMount(mount('n2', [['/srv/home', 1]])))).toEqual({
      code: status.ALREADY_EXISTS,
      details: 'exports[0].export_id: 1 is already used by n1 (for /srv/projects)',
    });
    await n2.registerMount(mount('n2', [['/srv/home', 2]]));
    // a node replaces its own registration freely
    await n1.registerMount(
      mount('n1', [
        ['/srv/projects', 1],
        ['/srv/scratch', 3],
      ]),
    );
    const all = await listing(s);
    expect(all.map((n) => [n.nodeId, n.nodeName, n.exports.map((e) => `${e.path}#${e.exportId}`)])).toEqual([
      [1, 'n1', ['/srv/projects#1', '/srv/scratch#3']],
      [2, 'n2', ['/srv/home#2']],
    ]);
    expect(all[0]?.mountPorts).toEqual([
      { transport: Transport.TRANSPORT_TCP, port: 20048 },
      { transport: Transport.TRANSPORT_UDP, port: 20049 },
    ]);
    expect(all[0]?.handleLayout).toEqual(ganesha);
    expect(s.counters.get('Exports/RegisterMount', 'ALREADY_EXISTS')).toBe(2);
    expect(s.exports.conflicts).toEqual({ path: 1, exportId: 1 });
  });

  it("answers with the cluster's MOUNT ports as they are at the time of the call", async () => {
    let ports: { tcp?: number; udp?: number } = { udp: 20048 };
    const s = track(await startTestServer(pki, { clusterMountPorts: () => ports }));
    const n1 = await joined(s, 'n1');
    expect((await n1.registerMount(mount('n1', [['/srv/projects', 1]]))).clusterMountPorts).toEqual([
      { transport: Transport.TRANSPORT_UDP, port: 20048 },
    ]);
    ports = { tcp: 635, udp: 636 };
    expect((await n1.registerMount(mount('n1', [['/srv/projects', 1]]))).clusterMountPorts).toEqual([
      { transport: Transport.TRANSPORT_TCP, port: 635 },
      { transport: Transport.TRANSPORT_UDP, port: 636 },
    ]);
  });

  it('drops a leaving node registration, which frees its paths, also across a restart', async () => {
    const storePath = join(dir, 'exports.json');
    const first = await startTestServer(pki, { storePath });
    const n1 = await joined(first, 'n1');
    await n1.registerMount(mount('n1', [['/srv/projects', 1]]));
    const n2 = await joined(first, 'n2');
    await n2.registerMount(mount('n2', [['/srv/home', 2]]));
    await track(connectMembership(`127.0.0.1:${first.port}`, tlsOf(pki.nodes.n1))).leave('n1');
    expect((await listing(first)).map((n) => n.nodeName)).toEqual(['n2']);
    for (const x of open.splice(0)) x.close();
    await first.close();

    const second = track(await startTestServer(pki, { storePath }));
    expect((await listing(second)).map((n) => [n.nodeName, n.exports[0]?.path])).toEqual([
      ['n2', '/srv/home'],
    ]);
    const n3 = await joined(second, 'n3');
    expect((await n3.registerMount(mount('n3', [['/srv/projects', 1]]))).exportCount).toBe(1);
  });

  it('refuses nodes that have not joined, are down, or register for another node', async () => {
    const s = track(await startTestServer(pki));
    const n3 = track(connectExports(`127.0.0.1:${s.port}`, tlsOf(pki.nodes.n3)));
    expect(await codeOf(n3.registerMount(mount('n3', [['/srv/a', 1]])))).toEqual({
      code: status.FAILED_PRECONDITION,
      details: 'node_name: n3 has not joined',
    });
    const n1 = await joined(s, 'n1');
    expect((await codeOf(n1.registerMount(mount('n2', [['/srv/a', 1]])))).code).toBe(
      status.PERMISSION_DENIED,
    );
    await s.membership.leave('n1');
    expect((await codeOf(n1.registerMount(mount('n1', [['/srv/a', 1]])))).details).toBe(
      'n1 is down (left): join first',
    );
    const asNode = track(connectExports(`127.0.0.1:${s.port}`, tlsOf(pki.nodes.n1)));
    expect((await codeOf(asNode.listExports())).code).toBe(status.PERMISSION_DENIED);
  });

  const bad: [string, (r: RegisterMountRequest) => void, string][] = [
    ['a relative path', (r) => (r.exports[0]!.path = 'srv/a'), 'exports[0].path: not absolute: "srv/a"'],
    [
      'a path with ..',
      (r) => (r.exports[0]!.path = '/srv/../etc'),
      'exports[0].path: not normalized (no empty, "." or ".." parts, no trailing "/"): "/srv/../etc"',
    ],
    [
      'a trailing slash',
      (r) => (r.exports[0]!.path = '/srv/a/'),
      'exports[0].path: not normalized (no empty, "." or ".." parts, no trailing "/"): "/srv/a/"',
    ],
    ['an empty path', (r) => (r.exports[0]!.path = ''), 'exports[0].path: required'],
    [
      'a duplicate path',
      (r) => r.exports.push({ path: '/srv/a', exportId: 9 }),
      'exports[1].path: duplicate of exports[0]',
    ],
    [
      'a duplicate id',
      (r) => r.exports.push({ path: '/srv/b', exportId: 1 }),
      'exports[1].export_id: duplicate of exports[0]',
    ],
    [
      'an id too wide',
      (r) => (r.exports[0]!.exportId = 70000),
      'exports[0].export_id: 70000 does not fit in 2 bytes',
    ],
    ['no layout', (r) => delete r.handleLayout, 'handle_layout: required'],
    ['a 5-byte id', (r) => (r.handleLayout!.length = 5), 'handle_layout.length: 1 to 4 bytes: 5'],
    [
      'a range past the handle',
      (r) => (r.handleLayout!.offset = 63),
      'handle_layout.length: offset + length exceeds the 64-byte NFSv3 handle',
    ],
    [
      'no endianness',
      (r) => (r.handleLayout!.endianness = Endianness.ENDIANNESS_UNSPECIFIED),
      'handle_layout.endianness: required: ENDIANNESS_BIG or ENDIANNESS_LITTLE',
    ],
    ['port 0', (r) => (r.mountPorts[0]!.port = 0), 'mount_ports[0].port: not a port (1-65535): 0'],
    [
      'no transport',
      (r) => (r.mountPorts[1]!.transport = Transport.TRANSPORT_UNSPECIFIED),
      'mount_ports[1].transport: required: TRANSPORT_TCP or TRANSPORT_UDP',
    ],
    [
      'two TCP ports',
      (r) => (r.mountPorts[1]!.transport = Transport.TRANSPORT_TCP),
      'mount_ports[1].transport: duplicate of mount_ports[0]',
    ],
    ['exports without ports', (r) => (r.mountPorts = []), 'mount_ports: required when exports are given'],
  ];
  it('refuses malformed registrations naming the field', async () => {
    const s = track(await startTestServer(pki));
    const n1 = await joined(s, 'n1');
    for (const [what, change, details] of bad) {
      const r = mount('n1', [['/srv/a', 1]]);
      change(r);
      expect(await codeOf(n1.registerMount(r)), what).toEqual({ code: status.INVALID_ARGUMENT, details });
    }
    expect(s.counters.get('Exports/RegisterMount', 'INVALID_ARGUMENT')).toBe(bad.length);
    expect(await listing(s)).toEqual([]);
  });
});
