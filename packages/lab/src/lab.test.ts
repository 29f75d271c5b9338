import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireRoot, run, waitFor } from '@onehost/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, openLab, SERVICE_PORTS, sweepOrphans } from './lab.js';
import { labPrefix } from './plan.js';
import { readState } from './state.js';
import { alive, listNamespaces } from './teardown.js';

requireRoot();

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

function testId(): string {
  return `x${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
}

function curl(lab: Lab, host: string, url: string): Promise<string> {
  return lab.exec(host, 'curl', ['-sS', '--max-time', '5', url]).then((r) => r.stdout);
}

describe('lab', () => {
  const labs: Lab[] = [];
  const cliIds: string[] = [];
  afterAll(async () => {
    for (const lab of labs) await lab.cleanup().catch(() => undefined);
    for (const id of cliIds) await run('node', [cli, 'down', '--id', id]).catch(() => undefined);
  });

  it('routes clients to every node through the gateway, serves real pages and removes everything', async () => {
    const lab = await createLab();
    labs.push(lab);
    expect(lab.names.nodes).toHaveLength(3);
    expect(lab.addresses.nodes).toEqual(['198.18.0.11', '198.18.0.12', '198.18.0.13']);

    for (const [i, node] of lab.plan.nodes.entries()) {
      // Each client reaches each node's own address by plain routing through the gateway host.
      const client = lab.plan.clients[i % lab.plan.clients.length]!.name;
      expect(await curl(lab, client, `http://${node.address}/`)).toBe(`${node.name}\n`);
    }
    expect(
      await curl(lab, 'c2', `http://${lab.addresses.gateway.outside}:${SERVICE_PORTS.gatewayHttp}/`),
    ).toBe('gw\n');
    // The route to the path went through the gateway: the TTL dropped by one on the way.
    const { stdout: ping } = await lab.exec('c1', 'ping', ['-c', '1', '-W', '2', lab.addresses.nodes[0]!]);
    expect(ping).toMatch(/ttl=63/);
    // The interconnect carries full-size packets plus the 50 bytes of VXLAN overhead, without fragmenting.
    const { stdout: big } = await lab.exec('n1', 'ping', [
      '-c',
      '1',
      '-W',
      '2',
      '-M',
      'do',
      '-s',
      '1522',
      '198.18.0.1',
    ]);
    expect(big).toContain('1 received');
    await expect(
      lab.exec('c1', 'ping', ['-c', '1', '-W', '1', '-M', 'do', '-s', '1522', lab.addresses.gateway.outside]),
    ).rejects.toThrow(/message too long|mtu=1500/i);
    // iperf3 answers a short test.
    const { stdout: iperf } = await lab.exec('c1', 'iperf3', [
      '-c',
      lab.addresses.nodes[2]!,
      '-n',
      '1M',
      '-J',
    ]);
    expect(JSON.parse(iperf).end.sum_received.bytes).toBeGreaterThan(0);

    // A detached daemon started through the hook runs inside the host's namespace and is recorded.
    const extra = await lab.startIn('gw', 'extra', 'sh', ['-c', 'echo started; exec sleep 30']);
    await waitFor(async () => (await readFile(extra.log, 'utf8')).includes('started'), {
      what: 'the daemon log',
    });
    const { stdout: gwPids } = await run('ip', ['netns', 'pids', lab.names.gateway]);
    expect(gwPids.split(/\s+/)).toContain(String(extra.pid));
    expect((await readState(lab.runDir))!.daemons.map((d) => d.name)).toContain('extra');

    const daemons = lab.daemons();
    expect(daemons.map((d) => d.name).sort()).toEqual(
      ['extra', 'iperf3 n1', 'iperf3 n2', 'iperf3 n3', 'nginx gw', 'nginx n1', 'nginx n2', 'nginx n3'].sort(),
    );
    const child = lab.spawn('n2', 'sleep', ['30']);
    expect(alive(child.pid)).toBe(true);
    await lab.cleanup();
    expect(await listNamespaces(lab.prefix)).toEqual([]);
    for (const d of daemons) expect(alive(d.pid), d.name).toBe(false);
    expect(alive(child.pid)).toBe(false);
    expect(existsSync(lab.runDir)).toBe(false);
  });

  it('CLI: up is idempotent, status reports health, up repairs, down removes everything twice over', async () => {
    const id = testId();
    cliIds.push(id);
    await run('node', [cli, 'up', '--id', id, '--nodes', '2', '--clients', '1']);
    const first = await openLab(id);
    expect(first).toBeDefined();
    const pids = first!.daemons().map((d) => d.pid);
    expect(pids).toHaveLength(5);

    // A second up finds a healthy lab and leaves it alone.
    await run('node', [cli, 'up', '--id', id, '--nodes', '2', '--clients', '1']);
    expect((await openLab(id))!.daemons().map((d) => d.pid)).toEqual(pids);
    const { stdout } = await run('node', [cli, 'status', '--id', id, '--json']);
    expect(JSON.parse(stdout).status.healthy).toBe(true);

    // A dead service makes it unhealthy; up rebuilds it.
    process.kill(pids[0]!, 'SIGKILL');
    await waitFor(() => !alive(pids[0]!), { what: 'the killed daemon to end' });
    expect((await first!.status()).daemons.filter((d) => !d.alive).map((d) => d.pid)).toEqual([pids[0]]);
    await expect(run('node', [cli, 'status', '--id', id])).rejects.toThrow(/exit 1/);
    await run('node', [cli, 'up', '--id', id, '--nodes', '2', '--clients', '1']);
    const rebuilt = (await openLab(id))!;
    expect((await rebuilt.status()).healthy).toBe(true);
    expect(await curl(rebuilt, 'c1', 'http://198.18.0.12/')).toBe('n2\n');
    const livePids = rebuilt.daemons().map((d) => d.pid);

    await run('node', [cli, 'down', '--id', id]);
    expect(await listNamespaces(labPrefix(id))).toEqual([]);
    for (const pid of [...pids, ...livePids]) expect(alive(pid)).toBe(false);
    await run('node', [cli, 'down', '--id', id]);
    await expect(run('node', [cli, 'status', '--id', id])).rejects.toThrow(/not up/);
  });

  it('runs NFS servers: own rpcbind per node, different trees, export ids and MOUNT ports; a restart moves the random one', async () => {
    const hostSrv = readdirSync('/srv').sort();
    const lab = await createLab({ nodes: 2, clients: 1, services: false, nfs: true });
    labs.push(lab);
    expect(lab.nfs.map((n) => [n.node, n.path, n.exportId, n.mntPort])).toEqual([
      ['n1', '/srv/projects', 11, undefined],
      ['n2', '/srv/home', 12, 20050],
    ]);
    const n1 = await lab.mountdPorts('n1');
    expect(await lab.mountdPorts('n2')).toEqual({ udp: 20050, tcp: 20050 });
    expect(n1.udp).toBeGreaterThan(0);
    expect([n1.udp, n1.tcp]).not.toContain(20050);
    // Each node's rpcbind lists its own server only: n2's port is nowhere in n1's list.
    const list1 = (await lab.exec('n1', 'rpcinfo', ['-p', '127.0.0.1'])).stdout;
    expect(list1).not.toContain('20050');
    expect((await lab.exec('n1', 'showmount', ['-e', '127.0.0.1'])).stdout).toMatch(/^\/srv\/projects /m);
    expect((await lab.exec('n2', 'showmount', ['-e', '127.0.0.1'])).stdout).toMatch(/^\/srv\/home /m);
    // Files put in the tree are served (libnfs, NFSv3 over TCP through the node's portmapper).
    await writeFile(join(lab.nfsOf('n1').tree, 'hello.txt'), 'hello from n1\n');
    const cat = () =>
      lab.exec('n1', 'nfs-cat', ['nfs://127.0.0.1/srv/projects/hello.txt']).then((r) => r.stdout);
    expect(await cat()).toBe('hello from n1\n');

    const before = lab.nfsOf('n1').ganeshaPid;
    const moved = await lab.restartGanesha('n1');
    expect(alive(before)).toBe(false);
    expect(lab.nfsOf('n1').ganeshaPid).not.toBe(before);
    expect(moved).not.toEqual(n1); // new random ports (UDP and TCP each 1 in ~28000 to repeat)
    expect(await cat()).toBe('hello from n1\n');
    expect((await lab.status()).healthy).toBe(true);

    const daemons = lab.daemons();
    expect(daemons.map((d) => d.name).sort()).toEqual([
      'ganesha n1',
      'ganesha n2',
      'rpcbind n1',
      'rpcbind n2',
    ]);
    await lab.cleanup();
    for (const d of daemons) expect(alive(d.pid), d.name).toBe(false);
    // The trees were mounted on /srv inside the servers' own mount namespaces only.
    expect(readdirSync('/srv').sort()).toEqual(hostSrv);
  });

  it('removes the lab of a test process that was killed', async () => {
    const script = `import { createLab } from ${JSON.stringify(dist)};
const lab = await createLab({ nodes: 1, clients: 1 });
console.log('ready ' + lab.id);
setInterval(() => {}, 1000);`;
    const child = spawn('node', ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const id = await waitFor(() => /ready (\w+)/.exec(out)?.[1], {
      what: 'the child lab',
      timeoutMs: 20_000,
    });
    const orphan = (await openLab(id))!;
    const daemonPids = orphan.daemons().map((d) => d.pid);
    expect(await listNamespaces(labPrefix(id))).toHaveLength(4);
    child.kill('SIGKILL');
    await waitFor(() => child.exitCode !== null || child.signalCode !== null, { what: 'the child to die' });

    expect(await sweepOrphans()).toContain(id);
    expect(await listNamespaces(labPrefix(id))).toEqual([]);
    for (const pid of daemonPids) expect(alive(pid)).toBe(false);
  });
});
