import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ClusterConfig,
  type ControlServer,
  createClusterCa,
  issueCertificate,
  type MemberChangeKind,
  startControlServer,
} from '@onehost/control';
import { Lab, type LabProcess, type Netns, requireRoot, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NetState, snapshotWith } from './testing/harness.js';
import { forwardUnixToTcp, type UnixForwarder } from './testing/unix-forwarder.js';

requireRoot();

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const RELAY = fileURLToPath(new URL('./testing/relay.mjs', import.meta.url));
const GW = '198.18.0.1';
const N1 = '198.18.0.11';
const VIP = '203.0.113.80';
const VIP_B = '203.0.113.81';
const CONTROL_PORT = 7443;
const INTERVAL_MS = 100;
const TIMEOUT_MS = 350;
// The first block of the default range (32768-60999, 1024 ports per block).
const BLOCK = { lo: 32768, hi: 33791 };

const cluster = (vip: string): ClusterConfig => ({
  addresses: [{ network: 'outside', address: vip, isDefault: true }],
  vxlan: { vni: 42, udpPort: 4789, gatewayAddresses: [GW] },
  interconnectPrefixes: ['198.18.0.0/15'],
});

interface Log {
  msg: string;
  [k: string]: unknown;
}

/** logs parses the JSON log lines an agent printed so far. */
function logs(p: LabProcess): Log[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Log);
}

function count(p: LabProcess, msg: string | RegExp): number {
  return logs(p).filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg))).length;
}

/** waitLog waits until the agent has logged `msg` `n` times; fails early when the agent exits. */
async function waitLog(p: LabProcess, msg: string | RegExp, n = 1, timeoutMs = 5000): Promise<void> {
  await waitFor(
    () => {
      if (count(p, msg) >= n) return true;
      if (!p.running) throw new Error(`the agent exited: ${p.output().slice(-2000)}`);
      return false;
    },
    { timeoutMs, what: `log "${String(msg)}" ×${n}` },
  );
}

describe('onehost-agent against a control server', () => {
  // The control server runs in this process (host namespace, loopback); the agent runs in n1, a namespace
  // with the interconnect. relay.mjs in the "gateway" namespace listens on 198.18.0.1 and passes each
  // connection through a Unix socket to the forwarder here, which passes it to the server's port. The
  // interconnect addresses stay inside the namespaces.
  const lab = new Lab();
  let gw: Netns;
  let n1: Netns;
  let dir: string;
  let files: Record<string, string>;
  let pem: Record<string, { certPem: string; keyPem: string; caPem: string }>;
  let server: ControlServer;
  let fwd: UnixForwarder;
  let baseline: NetState;
  let agent: LabProcess;
  let n1If: string;
  const events: Array<{ kind: MemberChangeKind; name: string; at: number; reason: string }> = [];
  const stateFile = () => join(dir, 'n1-state.json');
  const n1exec = (file: string, args: string[]) => n1.exec(file, args);

  async function startServer(vip: string): Promise<ControlServer> {
    const s = await startControlServer({
      host: '127.0.0.1',
      port: 0,
      tls: { caPem: pem.gw!.caPem, certPem: pem.gw!.certPem, keyPem: pem.gw!.keyPem },
      cluster: cluster(vip),
      storePath: join(dir, 'control.json'),
      heartbeatIntervalMs: INTERVAL_MS,
      heartbeatTimeoutMs: TIMEOUT_MS,
      shutdownGraceMs: 200,
    });
    s.membership.onChange((c) =>
      events.push({ kind: c.kind, name: c.member.name, at: Date.now(), reason: c.member.downReason }),
    );
    if (fwd !== undefined) fwd.port = s.port;
    return s;
  }

  const member = (name: string) => server.membership.members().find((m) => m.name === name);

  function agentArgs(name: string, cert: string, address = N1): string[] {
    return [
      MAIN,
      ...['--gateway', `${GW}:${CONTROL_PORT}`, '--name', name, '--internal-address', address],
      ...['--ca', files.ca!, '--cert', files[`${cert}.pem`]!, '--key', files[`${cert}-key.pem`]!],
      ...['--state-file', stateFile(), '--vxlan-device', 'vx0'],
    ];
  }

  const startAgent = () => n1.spawn('node', agentArgs('n1', 'n1'));

  /** runOnce runs an agent in n1 to its end and reports its exit code and output. */
  function runOnce(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        'ip',
        ['netns', 'exec', n1.name, 'node', ...args],
        { timeout: 15_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });
  }

  async function linkOf(dev: string): Promise<{ ifindex: number; address: string }> {
    const [link] = JSON.parse((await n1.exec('ip', ['-j', 'link', 'show', 'dev', dev])).stdout);
    return link;
  }

  async function loAddresses(): Promise<string[]> {
    const [lo] = JSON.parse((await n1.exec('ip', ['-j', 'addr', 'show', 'dev', 'lo'])).stdout);
    return (lo.addr_info as Array<{ family: string; local: string }>)
      .filter((a) => a.family === 'inet')
      .map((a) => a.local);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'onehost-agent-'));
    lab.defer(() => rm(dir, { recursive: true, force: true }));
    gw = await lab.netns();
    n1 = await lab.netns();
    // No IPv6 on the interconnect: its duplicate address detection would change the snapshot under us.
    await n1.sysctl('net.ipv6.conf.default.disable_ipv6', 1);
    n1If = (await lab.veth(gw, n1, { aAddress: `${GW}/24`, bAddress: `${N1}/24` })).b;
    const ca = await createClusterCa();
    const [gwCert, n1Cert, n2Cert] = await Promise.all([
      issueCertificate(ca, { role: 'gateway', name: 'gw', hosts: [GW] }),
      issueCertificate(ca, { role: 'node', name: 'n1' }),
      issueCertificate(ca, { role: 'node', name: 'n2' }),
    ]);
    pem = { gw: gwCert, n1: n1Cert, n2: n2Cert };
    files = { ca: join(dir, 'ca.pem') };
    await writeFile(files.ca!, ca.certPem);
    for (const [name, c] of Object.entries(pem)) {
      files[`${name}.pem`] = join(dir, `${name}.pem`);
      files[`${name}-key.pem`] = join(dir, `${name}-key.pem`);
      await writeFile(files[`${name}.pem`]!, c.certPem);
      await writeFile(files[`${name}-key.pem`]!, c.keyPem, { mode: 0o600 });
    }
    server = await startServer(VIP);
    fwd = await forwardUnixToTcp(join(dir, 'control.sock'), server.port);
    const relay = gw.spawn('node', [RELAY, GW, String(CONTROL_PORT), join(dir, 'control.sock')]);
    await relay.waitForOutput('listening');
    baseline = await snapshotWith(n1exec);
  });

  afterAll(async () => {
    await lab.cleanup();
    await server?.close();
    await fwd?.close();
  });

  it('joins, applies and becomes ready: active in members() with its block; the device has the registered MAC', async () => {
    agent = startAgent();
    await waitLog(agent, 'ready');
    const m = member('n1');
    expect(m).toMatchObject({ state: 'active', id: 1, block: BLOCK, internalAddress: N1, downReason: '' });
    expect((await linkOf('vx0')).address).toBe(m!.vxlanMac);
    expect(await loAddresses()).toContain(VIP);
    const range = await n1.exec('sysctl', ['-n', 'net.ipv4.ip_local_port_range']);
    expect(range.stdout.trim().split(/\s+/).map(Number)).toEqual([BLOCK.lo, 33535]);
    const ready = logs(agent).find((l) => l.msg === 'ready')!;
    expect(ready).toMatchObject({ nodeId: 1, portBlock: BLOCK, addresses: [VIP] });
    expect(count(agent, 'applied')).toBe(1);
  });

  it('a second agent for the running node exits 1 and changes nothing: same kernel state, state file, member', async () => {
    const before = await snapshotWith(n1exec);
    const state = await readFile(stateFile(), 'utf8');
    const joins = events.length;
    const r = await runOnce(agentArgs('n1', 'n1'));
    expect(r.code).toBe(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Log);
    expect(lines.map((l) => l.msg)).toEqual([
      `another agent (pid ${agent.pid}) runs this node: ${stateFile()}.lock is its lock; this one changes nothing`,
    ]);
    expect(await snapshotWith(n1exec)).toEqual(before);
    expect(await readFile(stateFile(), 'utf8')).toBe(state);
    expect(events.length).toBe(joins); // it neither joined nor left
    expect(member('n1')).toMatchObject({ state: 'active', id: 1 });
    expect(agent.running).toBe(true);
  });

  it('beats at the interval the gateway asked for, and logs nothing per beat', async () => {
    const linesBefore = logs(agent).length;
    const seen = new Set<number>();
    const t0 = Date.now();
    // Sample the gateway's last-seen time for a second: about one new value per 100 ms beat.
    await waitFor(
      () => {
        const m = member('n1')!;
        seen.add(m.lastSeenUnixMs);
        return m.lastSeenUnixMs >= t0 + 1000;
      },
      { timeoutMs: 3000, intervalMs: 5, what: 'a second of heartbeats' },
    );
    expect(seen.size).toBeGreaterThanOrEqual(6);
    expect(seen.size).toBeLessThanOrEqual(16);
    expect(member('n1')!.state).toBe('active');
    expect(events.filter((e) => e.kind === 'down')).toEqual([]);
    expect(logs(agent).length).toBe(linesBefore);
  });

  it('logs a drain and its lifting once each, from the acknowledgements', async () => {
    await server.membership.drain('n1');
    await waitLog(agent, 'member state changed');
    await server.membership.drain('n1', true);
    await waitLog(agent, 'member state changed', 2);
    const changes = logs(agent).filter((l) => l.msg === 'member state changed');
    expect(changes.map((l) => l.state)).toEqual(['draining', 'active']);
  });

  it('joins again with the same id and block when the control server restarts, without re-applying', async () => {
    const { ifindex } = await linkOf('vx0');
    await server.close();
    await waitLog(agent, 'heartbeat lost; joining again');
    await waitLog(agent, /^cannot join/);
    server = await startServer(VIP);
    expect(member('n1')).toMatchObject({ state: 'down', downReason: 'gateway restart' });
    await waitFor(() => member('n1')?.state === 'active', { what: 'n1 active again' });
    expect(member('n1')).toMatchObject({ id: 1, block: BLOCK });
    await waitLog(agent, 'ready', 2);
    // One warning for the whole outage, however many attempts it took.
    expect(count(agent, /^cannot join/)).toBe(1);
    expect(
      logs(agent)
        .filter((l) => l.msg === 'joined')
        .map((l) => l.rejoin),
    ).toEqual([false, true]);
    expect(count(agent, /^reapplied/)).toBe(0);
    expect((await linkOf('vx0')).ifindex).toBe(ifindex);
  });

  it('re-applies when the gateway answers differently (a new cluster address)', async () => {
    await server.close();
    server = await startServer(VIP_B);
    await waitLog(agent, 'ready', 3);
    expect(count(agent, /^reapplied/)).toBe(1);
    const lo = await loAddresses();
    expect(lo).toContain(VIP_B);
    expect(lo).not.toContain(VIP);
    expect(member('n1')).toMatchObject({ state: 'active', id: 1, block: BLOCK });
  });

  it('puts back what the kernel dropped while the interconnect link was down, once it can join again', async () => {
    const routes = async () =>
      JSON.parse((await n1.exec('ip', ['-j', 'route', 'show', 'default'])).stdout) as Array<{
        prefsrc?: string;
      }>;
    expect((await routes()).map((r) => r.prefsrc)).toEqual([VIP_B]);
    const downs = events.filter((e) => e.kind === 'down').length;
    await n1.ip('link', 'set', n1If, 'down');
    await waitFor(() => events.filter((e) => e.kind === 'down').length > downs, { what: 'n1 down' });
    await waitLog(agent, 'heartbeat lost; joining again', 3);
    // Taking the link down flushed every route through it, the agent's included.
    expect(await routes()).toEqual([]);
    await n1.ip('link', 'set', n1If, 'up');
    await waitLog(agent, 'ready', 4, 10_000);
    expect(count(agent, 'reapplied: parts were gone')).toBe(1);
    const gone = logs(agent).find((l) => l.msg === 'parts of the node configuration are gone');
    expect(gone?.missing).toEqual(
      expect.arrayContaining([`default route src ${VIP_B}`, 'route 198.18.0.0/15']),
    );
    expect((await routes()).map((r) => r.prefsrc)).toEqual([VIP_B]);
    expect(member('n1')).toMatchObject({ state: 'active', id: 1, block: BLOCK });
  });

  it('SIGKILL: the gateway marks the node down within the heartbeat timeout; the next start restores the leftovers', async () => {
    const killedAt = Date.now();
    process.kill(agent.pid, 'SIGKILL');
    const down = await waitFor(
      () => events.find((e) => e.kind === 'down' && e.name === 'n1' && e.at >= killedAt),
      { timeoutMs: 3000, what: 'n1 down' },
    );
    expect(down.at - killedAt).toBeLessThanOrEqual(TIMEOUT_MS);
    await agent.whenExited();
    expect(existsSync(stateFile())).toBe(true);
    expect(await loAddresses()).toContain(VIP_B);

    // this time from a configuration file (relative file names), as a service would start it
    await writeFile(
      join(dir, 'agent.yaml'),
      [
        `gateway: ${GW}:${CONTROL_PORT}`,
        'name: n1',
        `internalAddress: ${N1}`,
        'ca: ca.pem',
        'cert: n1.pem',
        'key: n1-key.pem',
        'stateFile: n1-state.json',
        'vxlanDevice: vx0',
      ].join('\n'),
    );
    agent = n1.spawn('node', [MAIN, '--config', join(dir, 'agent.yaml')]);
    await waitLog(agent, 'restored leftovers of an earlier run');
    await waitLog(agent, 'ready');
    expect(member('n1')).toMatchObject({ state: 'active', id: 1, block: BLOCK });
    expect(count(agent, 'applied')).toBe(1);
  });

  it('SIGTERM: leaves (down, "left"), restores the namespace exactly as it was, exits 0', async () => {
    process.kill(agent.pid, 'SIGTERM');
    await agent.whenExited();
    expect(agent.exitStatus()).toEqual({ code: 0, signal: null });
    expect(member('n1')).toMatchObject({ state: 'down', downReason: 'left' });
    expect(count(agent, 'left the cluster')).toBe(1);
    expect(count(agent, 'restored the node configuration')).toBe(1);
    expect(existsSync(stateFile())).toBe(false);
    expect(existsSync(`${stateFile()}.lock`)).toBe(false);
    expect(await snapshotWith(n1exec)).toEqual(baseline);
  });

  it('refuses a certificate for another node before contacting anyone: exit 2, naming --cert', async () => {
    const r = await runOnce(agentArgs('n1', 'n2'));
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      `onehost-agent: --cert: ${files['n2.pem']} is the certificate of node n2, not of node n1 (--name)`,
    );
    expect(r.stdout).toBe('');
  });

  it('a final refusal by the gateway (address taken) ends it with exit 1 and the reason, changing nothing', async () => {
    // n2 claims n1's internal address, which n1 still holds while down.
    const r = await runOnce(agentArgs('n2', 'n2', N1));
    expect(r.code).toBe(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Log);
    expect(lines.find((l) => l.level === 50)?.msg).toBe(
      `the gateway ${GW}:${CONTROL_PORT} refused to join: ALREADY_EXISTS: internal_address: ${N1} belongs to n1 (node 1, down)`,
    );
    expect(member('n2')).toBeUndefined();
    expect(await snapshotWith(n1exec)).toEqual(baseline);
  });
});
