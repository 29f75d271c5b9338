import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildFlowPacket,
  type ClusterConfig,
  type ControlServer,
  connectExports,
  connectMembership,
  createClusterCa,
  type IssuedCertificate,
  identityOfCertificate,
  issueCertificate,
  LocalGatewayRegistry,
  startControlServer,
} from '@onehost/control';
import { SwitchDocBackend } from '@onehost/control/testing';
import { Endianness, Transport } from '@onehost/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram, usageExitCode } from './program.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

const CLUSTER: ClusterConfig = {
  addresses: [{ network: 'outside', address: '203.0.113.10', isDefault: true }],
  vxlan: { vni: 4242, udpPort: 4789, gatewayAddresses: ['198.18.0.1'] },
  interconnectPrefixes: ['198.18.0.0/15'],
};

const doc = () => ({
  gateway: 'gw',
  clusterAddresses: [{ network: 'outside', address: '203.0.113.10', default: true }],
  nodes: [
    { id: 1, name: 'n1', address: '198.18.0.11' },
    { id: 2, name: 'n2', address: '198.18.0.12' },
    { id: 3, name: 'n3', address: '198.18.0.13' },
    { id: 4, name: 'gw', address: '198.18.0.1' },
  ],
  entries: [
    {
      protocol: 'tcp',
      port: 80,
      function: 'connection',
      policy: 'round-robin',
      nodes: ['n1', 'n2', 'n3'],
      maxEntries: 1024,
    },
    { protocol: 'tcp', port: 22, function: 'fixed', node: 'n1' },
  ],
});

type Result = { code: number; out: string[]; err: string[] };

/** ctl runs onehostctl in this process with its output captured. */
async function ctl(...args: string[]): Promise<Result> {
  const out: string[] = [];
  const err: string[] = [];
  let code = -1;
  const program = buildProgram({ out: (l) => out.push(l), err: (l) => err.push(l) }, (c) => {
    code = c;
  });
  const quiet = (c: typeof program) => {
    c.exitOverride();
    c.configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => err.push(s) });
    for (const sub of c.commands) quiet(sub);
  };
  quiet(program);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    code = usageExitCode(e);
  }
  return { code, out, err };
}

/** binary runs dist/main.js as a process. */
function binary(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Only the flags count: no ONEHOST_* from the environment the tests run in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ONEHOST_')));
  return new Promise((resolve) => {
    execFile('node', [MAIN, ...args], { timeout: 20_000, env }, (e, stdout, stderr) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

let dir: string;
let server: ControlServer;
let backend: SwitchDocBackend;
let certs: Record<string, IssuedCertificate>;
/** --gateway, --ca, --cert, --key for `who`. */
let as: (who: string) => string[];

async function writePem(name: string, c: IssuedCertificate): Promise<void> {
  await writeFile(join(dir, `${name}.pem`), c.certPem);
  await writeFile(join(dir, `${name}-key.pem`), c.keyPem, { mode: 0o600 });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'onehostctl-grpc-'));
  const ca = await createClusterCa();
  const [gw, alice, n1, n2] = await Promise.all([
    issueCertificate(ca, { role: 'gateway', name: 'gw', hosts: ['127.0.0.1'] }),
    issueCertificate(ca, { role: 'operator', name: 'alice' }),
    issueCertificate(ca, { role: 'node', name: 'n1' }),
    issueCertificate(ca, { role: 'node', name: 'n2' }),
  ]);
  certs = { gw, alice, n1, n2 };
  await writeFile(join(dir, 'ca.pem'), ca.certPem);
  for (const [name, c] of Object.entries(certs)) await writePem(name, c);
  backend = new SwitchDocBackend(doc());
  server = await startControlServer({
    tls: { caPem: ca.certPem, certPem: gw.certPem, keyPem: gw.keyPem },
    cluster: CLUSTER,
    switchBackend: backend,
    gatewayRegistry: new LocalGatewayRegistry({
      name: 'gw',
      address: '127.0.0.1:7443',
      datapath: 'tun',
      self: () => ({ ready: true, appliedRevision: 0, switchVersion: 2 }),
    }),
    // Nodes join without heartbeating here; a long timeout keeps them active for the whole file.
    heartbeatTimeoutMs: 600_000,
    shutdownGraceMs: 200,
  });
  as = (who) => [
    ...['--gateway', `127.0.0.1:${server.port}`, '--ca', join(dir, 'ca.pem')],
    ...['--cert', join(dir, `${who}.pem`), '--key', join(dir, `${who}-key.pem`)],
  ];
  for (const [name, last] of [
    ['n1', 11],
    ['n2', 12],
  ] as const) {
    const m = connectMembership(`127.0.0.1:${server.port}`, {
      caPem: ca.certPem,
      certPem: certs[name]!.certPem,
      keyPem: certs[name]!.keyPem,
    });
    await m.join({
      nodeName: name,
      internalAddress: `198.18.0.${last}`,
      capabilities: ['vxlan'],
      vxlanMac: `02:00:5e:10:00:${last.toString(16).padStart(2, '0')}`,
    });
    if (name === 'n2') await m.leave('n2');
    m.close();
  }
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('onehostctl members', () => {
  it('prints a table: name, id, state (with the down reason), internal address, block, last seen, health', async () => {
    const r = await ctl('members', ...as('alice'));
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(/^NAME\s+ID\s+STATE\s+INTERNAL ADDRESS\s+BLOCK\s+LAST SEEN\s+HEALTH$/);
    expect(r.out[1]).toMatch(/^n1\s+1\s+active\s+198\.18\.0\.11\s+32768-33791\s+\d+(\.\d)? m?s ago\s+-$/);
    expect(r.out[2]).toMatch(
      /^n2\s+2\s+down \(left\)\s+198\.18\.0\.12\s+33792-34815\s+\d+(\.\d)? m?s ago\s+-$/,
    );
    expect(r.out).toHaveLength(3);
  });

  it('--json, as a process: one JSON document with every member', async () => {
    const r = await binary('members', '--json', ...as('alice'));
    expect(r.code).toBe(0);
    const members = JSON.parse(r.stdout);
    expect(members).toHaveLength(2);
    expect(members[0]).toMatchObject({
      name: 'n1',
      id: 1,
      state: 'active',
      internalAddress: '198.18.0.11',
      vxlanMac: '02:00:5e:10:00:0b',
      capabilities: ['vxlan'],
      block: { lo: 32768, hi: 33791 },
      downReason: '',
    });
    expect(members[0].lastSeenUnixMs).toBeGreaterThan(Date.now() - 60_000);
    expect(members[1]).toMatchObject({ name: 'n2', state: 'down', downReason: 'left' });
  });
});

describe('onehostctl gateways', () => {
  it('lists the gateways: name, address, mode, announcement, health, applied revision, table, age', async () => {
    const r = await ctl('gateways', ...as('alice'));
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(
      /^NAME\s+ADDRESS\s+MODE\s+ANNOUNCEMENT\s+HEALTH\s+APPLIED REVISION\s+TABLE\s+AGE$/,
    );
    expect(r.out[1]).toMatch(/^gw\s+127\.0\.0\.1:7443\s+tun\s+off\s+ready\s+0\s+2\s+\d+(\.\d)? m?s$/);
    expect(r.out).toHaveLength(2);
    const j = await ctl('gateways', '--json', ...as('alice'));
    expect(JSON.parse(j.out.join(''))).toMatchObject({
      gateways: [{ name: 'gw', health: 'ready', drained: false }],
      storeRevision: 0,
    });
  });

  it('gateway drain / undrain set and lift the flag; an unknown gateway: exit 1', async () => {
    expect((await ctl('gateway', 'drain', 'gw', ...as('alice'))).out).toEqual([
      'gateway gw: drained; it withdraws its announcement (health "draining")',
    ]);
    expect((await ctl('gateways', ...as('alice'))).out[1]).toMatch(/\sdraining\s/);
    const undrain = await ctl('gateway', 'undrain', 'gw', ...as('alice'));
    expect(undrain.code).toBe(0);
    expect((await ctl('gateways', ...as('alice'))).out[1]).toMatch(/\sready\s/);
    const r = await ctl('gateway', 'drain', 'gw9', ...as('alice'));
    expect(r.code).toBe(1);
    expect(r.err.join('')).toMatch(/NOT_FOUND: gateway gw9: not registered/);
  });
});

describe('onehostctl routes', () => {
  it('lists the switch entries with a summary of their options, and the table version', async () => {
    const r = await ctl('routes', ...as('alice'));
    expect(r.code).toBe(0);
    expect(r.out).toEqual([
      'PROTO  PORT  FUNCTION    OPTIONS',
      'tcp    22    fixed       node=n1',
      'tcp    80    connection  policy=round-robin nodes=n1,n2,n3 maxEntries=1024',
      `2 entries, table version ${backend.sw.snapshot!.version}`,
    ]);
    const j = JSON.parse((await ctl('routes', '--json', ...as('alice'))).out.join('\n'));
    expect(j.entries[1]).toEqual({
      protocol: 'tcp',
      port: 80,
      function: 'connection',
      options: { policy: 'round-robin', nodes: ['n1', 'n2', 'n3'], maxEntries: 1024 },
    });
  });
});

describe('onehostctl explain (live) and conns', () => {
  const flow = (port: number) => `tcp 203.0.113.7:${port} 203.0.113.10:80 syn`;

  it('explains a flow through the gateway: a dry run by default, in the offline shape with --json', async () => {
    const r = await ctl('explain', ...as('alice'), '--flow', flow(40000), '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out.join('\n'));
    expect(j.decision).toMatchObject({ kind: 'forward' });
    expect(['n1', 'n2', 'n3']).toContain(j.decision.nodeName);
    expect(j.trace.length).toBeGreaterThan(0);
    expect(j.summary).toMatchObject({ protocol: 'tcp', src: '203.0.113.7', dstPort: 80 });
    expect(JSON.parse((await ctl('conns', ...as('alice'), '--json')).out.join('\n')).total).toBe(0);
  });

  it('prints a report for people; a hex packet is explained like its flow', async () => {
    const r = await ctl('explain', ...as('alice'), '--flow', 'tcp 203.0.113.7:41000 203.0.113.10:22 ack');
    expect(r.code).toBe(0);
    expect(r.out[0]).toBe('decision: forward to n1 (node 1)');
    expect(r.out[1]).toBe('packet:   tcp 203.0.113.7:41000 > 203.0.113.10:22 [ACK] 40 bytes');
    expect(r.out[2]).toBe('trace:');
    const hex = Buffer.from(
      buildFlowPacket({
        protocol: 'tcp',
        srcAddress: '203.0.113.7',
        srcPort: 41000,
        dstAddress: '203.0.113.10',
        dstPort: 22,
        tcpFlags: 'A',
        payload: new Uint8Array(0),
      }),
    ).toString('hex');
    const p = await ctl('explain', ...as('alice'), '--packet', hex);
    expect(p.code).toBe(0);
    expect(p.out[0]).toBe('decision: forward to n1 (node 1)');
  });

  it('--update-tables creates connections, which conns lists (filters, limit, table and JSON)', async () => {
    const nodes: string[] = [];
    for (const port of [40001, 40002, 40003]) {
      const r = await ctl('explain', ...as('alice'), '--flow', flow(port), '--update-tables', '--json');
      nodes.push(JSON.parse(r.out.join('\n')).decision.nodeName);
    }
    expect(new Set(nodes).size).toBe(3);
    const all = await ctl('conns', ...as('alice'));
    expect(all.code).toBe(0);
    expect(all.out[0]).toMatch(/^CLIENT\s+ENTRY\s+NODE\s+STATE\s+EXPIRES IN\s+PATH\s+PACKETS\s+SPLICE$/);
    // the switch's own table (this gateway runs no kernel data path), no spliced connection
    expect(all.out[1]).toMatch(/\suser\s+-\s+-$/);
    expect(
      all.out
        .slice(1, 4)
        .map((l) => l.split(/\s+/).slice(0, 4).join(' '))
        .sort(),
    ).toEqual([0, 1, 2].map((i) => `203.0.113.7:${40001 + i} tcp/80 ${nodes[i]} syn`).sort());
    expect(all.out.at(-1)).toBe('3 of 3 connections');
    const one = await ctl('conns', ...as('alice'), '--node', nodes[0]!, '--json');
    expect(JSON.parse(one.out.join('\n'))).toMatchObject({
      total: 1,
      connections: [
        { client: '203.0.113.7:40001', nodeName: nodes[0], state: 'syn', protocol: 'tcp', port: 80 },
      ],
    });
    const limited = await ctl('conns', ...as('alice'), '--limit', '1');
    expect(limited.out.at(-1)).toBe('1 of 3 connections');
    expect((await ctl('conns', ...as('alice'), '--port', '22')).out).toEqual(['0 of 0 connections']);
  });

  it('refuses offline-only flags and a missing input with exit 2', async () => {
    const pcap = await ctl('explain', ...as('alice'), '--pcap', 'x.pcap');
    expect([pcap.code, pcap.err]).toEqual([
      2,
      ['onehostctl explain: --pcap works offline only (with --config)'],
    ]);
    const none = await ctl('explain', ...as('alice'));
    expect(none.code).toBe(2);
    expect(none.err[0]).toMatch(/give exactly one of --packet <hex> or --flow <flow>/);
    const badFlow = await ctl('explain', ...as('alice'), '--flow', 'tcp 203.0.113.7 203.0.113.10:80');
    expect([badFlow.code, badFlow.err[0]]).toEqual([
      2,
      'onehostctl explain: --flow: source must be address:port like 203.0.113.5:40000 or [2001:db8::5]:40000, got "203.0.113.7"',
    ]);
    const both = await ctl('explain', ...as('alice'), '--config', 'c.yaml', '--flow', flow(1));
    expect(both.err).toEqual([
      'onehostctl explain: --config (offline) and --gateway (live) exclude each other',
    ]);
  });
});

describe('onehostctl drain / undrain (as a process)', () => {
  it('drains a node (members shows it) and lifts the drain', async () => {
    const d = await binary('drain', 'n1', ...as('alice'));
    expect([d.code, d.stdout.trim()]).toEqual([
      0,
      'n1: drained, no new connections; existing ones stay (state draining)',
    ]);
    expect(server.membership.members().find((m) => m.name === 'n1')).toMatchObject({
      state: 'draining',
      drained: true,
    });
    expect((await ctl('members', ...as('alice'))).out[1]).toMatch(/^n1\s+1\s+draining\s/);
    const u = await binary('undrain', 'n1', ...as('alice'), '--json');
    expect(u.code).toBe(0);
    expect(JSON.parse(u.stdout)).toMatchObject({ name: 'n1', state: 'active' });
    expect(server.membership.members().find((m) => m.name === 'n1')).toMatchObject({
      state: 'active',
      drained: false,
    });
  });

  it('an unknown node: exit 1 with the gateway’s answer', async () => {
    const r = await binary('drain', 'n9', ...as('alice'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(
      new RegExp(`^onehostctl drain: 127\\.0\\.0\\.1:${server.port}: NOT_FOUND: .*n9`),
    );
  });
});

describe('onehostctl exports', () => {
  it('lists each node’s exports, mountd ports and handle layout', async () => {
    expect((await ctl('exports', ...as('alice'))).out).toEqual(['no exports registered']);
    const e = connectExports(`127.0.0.1:${server.port}`, {
      caPem: certs.n1!.caPem,
      certPem: certs.n1!.certPem,
      keyPem: certs.n1!.keyPem,
    });
    await e.registerMount({
      nodeName: 'n1',
      mountPorts: [{ transport: Transport.TRANSPORT_TCP, port: 20048 }],
      exports: [
        { path: '/srv/home', exportId: 2 },
        { path: '/srv/projects', exportId: 3 },
      ],
      handleLayout: { offset: 2, length: 2, endianness: Endianness.ENDIANNESS_BIG },
    });
    e.close();
    const r = await ctl('exports', ...as('alice'));
    expect(r.out).toEqual([
      'NODE  PATH           EXPORT ID  MOUNTD     ID IN HANDLE',
      'n1    /srv/home      2          tcp 20048  bytes 2-3 big-endian',
      'n1    /srv/projects  3          tcp 20048  bytes 2-3 big-endian',
    ]);
    const j = JSON.parse((await ctl('exports', ...as('alice'), '--json')).out.join('\n'));
    expect(j[0]).toMatchObject({
      nodeName: 'n1',
      mountPorts: { tcp: 20048 },
      exports: [
        { path: '/srv/home', exportId: 2 },
        { path: '/srv/projects', exportId: 3 },
      ],
      handleLayout: { offset: 2, length: 2, endian: 'big' },
    });
  });
});

describe('failures', () => {
  it('a node certificate may not read the cluster: exit 1, PERMISSION_DENIED', async () => {
    const r = await ctl('members', ...as('n1'));
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(/^onehostctl members: 127\.0\.0\.1:\d+: PERMISSION_DENIED: /);
  });

  it('an unreachable gateway: exit 3, said in words', async () => {
    // A port that was free a moment ago.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const args = as('alice');
    args[1] = `127.0.0.1:${port}`;
    const r = await ctl('members', ...args, '--timeout', '2000');
    expect(r.code).toBe(3);
    expect(r.err[0]).toBe(
      `onehostctl members: cannot reach the gateway at 127.0.0.1:${port}: connection refused (no gateway listening there?)`,
    );
  });

  it('a gateway that never answers: exit 3, no answer in the timeout', async () => {
    // Accepts the connection and says nothing, so TLS never completes.
    const silent = createServer(() => {});
    const port = await new Promise<number>((resolve) =>
      silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)),
    );
    try {
      const args = as('alice');
      args[1] = `127.0.0.1:${port}`;
      const r = await ctl('members', ...args, '--timeout', '1000');
      expect(r.code).toBe(3);
      expect(r.err[0]).toBe(
        `onehostctl members: cannot reach the gateway at 127.0.0.1:${port}: no answer in 1 s`,
      );
    } finally {
      silent.close();
    }
  });

  it('a certificate that does not name the address: exit 3, the cause in words', async () => {
    const r = await ctl('members', ...as('alice'), '--server-name', 'elsewhere.example');
    expect(r.code).toBe(3);
    expect(r.err[0]).toMatch(
      /^onehostctl members: cannot reach the gateway at 127\.0\.0\.1:\d+: TLS failed: /,
    );
    expect(r.err.join('\n')).not.toMatch(/Resolution note/);
  });

  it('bad flags and unreadable files: exit 2 naming the flag', async () => {
    const args = as('alice');
    args[args.indexOf('--cert') + 1] = join(dir, 'missing.pem');
    const missing = await ctl('routes', ...args);
    expect([missing.code, missing.err]).toEqual([
      2,
      [`onehostctl routes: --cert: cannot read ${join(dir, 'missing.pem')}: ENOENT`],
    ]);
    const noGateway = await binary('members', ...as('alice').slice(2));
    expect(noGateway.code).toBe(2);
    expect(noGateway.stderr).toContain("required option '--gateway <host:port>' not specified");
    const badLimit = await ctl('conns', ...as('alice'), '--limit', '0');
    expect(badLimit.code).toBe(2);
    expect(badLimit.err.join('')).toContain("option '--limit <n>' argument '0' is invalid");
  });
});

describe('onehostctl ca (as a process)', () => {
  it('init writes the CA, issue writes certificates it signed; the key files are owner-only', async () => {
    const pki = join(dir, 'pki');
    const init = await binary('ca', 'init', '--dir', pki);
    expect(init.code).toBe(0);
    expect(init.stdout.trim()).toBe(`wrote ${join(pki, 'ca.pem')} and ${join(pki, 'ca-key.pem')}`);
    expect((await stat(join(pki, 'ca-key.pem'))).mode & 0o777).toBe(0o600);

    const issue = await binary(
      'ca',
      'issue',
      '--dir',
      pki,
      '--role',
      'gateway',
      '--name',
      'gw',
      '--host',
      '127.0.0.1',
      '--host',
      'localhost',
    );
    expect(issue.code).toBe(0);
    expect(issue.stdout.trim()).toBe(
      `wrote ${join(pki, 'gw.pem')} and ${join(pki, 'gw-key.pem')} (gateway gw)`,
    );
    expect((await stat(join(pki, 'gw-key.pem'))).mode & 0o777).toBe(0o600);
    const caCert = new X509Certificate(await readFile(join(pki, 'ca.pem')));
    const gwCert = new X509Certificate(await readFile(join(pki, 'gw.pem')));
    expect(gwCert.verify(caCert.publicKey)).toBe(true);
    expect(identityOfCertificate(gwCert.toString())).toEqual({ role: 'gateway', name: 'gw' });
    expect(gwCert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(gwCert.subjectAltName).toContain('DNS:localhost');

    const op = await binary('ca', 'issue', '--dir', pki, '--role', 'operator', '--name', 'bob');
    expect(op.code).toBe(0);
    expect(identityOfCertificate(await readFile(join(pki, 'bob.pem'), 'utf8'))).toEqual({
      role: 'operator',
      name: 'bob',
    });

    // What the CLI made works: a control server with its gateway certificate, queried with its operator one.
    const read = (f: string) => readFile(join(pki, f), 'utf8');
    const s = await startControlServer({
      tls: { caPem: await read('ca.pem'), certPem: await read('gw.pem'), keyPem: await read('gw-key.pem') },
      cluster: CLUSTER,
      shutdownGraceMs: 200,
    });
    try {
      const r = await ctl(
        'members',
        '--gateway',
        `127.0.0.1:${s.port}`,
        '--ca',
        join(pki, 'ca.pem'),
        '--cert',
        join(pki, 'bob.pem'),
        '--key',
        join(pki, 'bob-key.pem'),
      );
      expect([r.code, r.out]).toEqual([0, ['no members']]);
    } finally {
      await s.close();
    }
  });

  it('refuses to overwrite (exit 1, unless --force), a bad role or name, or a missing CA (exit 2)', async () => {
    const pki = join(dir, 'pki2');
    expect((await binary('ca', 'init', '--dir', pki)).code).toBe(0);
    const again = await binary('ca', 'init', '--dir', pki);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exist(s); --force overwrites');
    expect((await binary('ca', 'init', '--dir', pki, '--force')).code).toBe(0);
    const role = await binary('ca', 'issue', '--dir', pki, '--role', 'admin', '--name', 'x');
    expect(role.code).toBe(2);
    expect(role.stderr).toContain("option '--role <role>' argument 'admin' is invalid");
    const name = await binary('ca', 'issue', '--dir', pki, '--role', 'node', '--name', 'N_1');
    expect(name.code).toBe(2);
    expect(name.stderr).toContain("option '--name <name>' argument 'N_1' is invalid");
    const host = await binary(
      'ca',
      'issue',
      '--dir',
      pki,
      '--role',
      'gateway',
      '--name',
      'gw',
      '--host',
      'a b',
    );
    expect([host.code, host.stderr.trim()]).toEqual([
      2,
      'onehostctl ca issue: --host: host "a b": not a host name or address',
    ]);
    const noCa = await binary('ca', 'issue', '--dir', join(dir, 'nowhere'), '--role', 'node', '--name', 'n1');
    expect([noCa.code, noCa.stderr.trim()]).toEqual([
      2,
      `onehostctl ca issue: --dir: cannot read ${join(dir, 'nowhere', 'ca.pem')}: ENOENT (onehostctl ca init makes it)`,
    ]);
  });
});
