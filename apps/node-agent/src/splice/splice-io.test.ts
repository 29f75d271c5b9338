import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJournal } from '@onehost/kernel';
import { Lab, type Netns, requireRoot, waitFor } from '@onehost/testkit';
import {
  IPPROTO,
  Ipv4View,
  ipv4ToString,
  parseIpv4,
  TCP_FLAGS,
  TcpView,
  writeIpv4Header,
  writeTcpHeader,
} from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeConfig } from '../config.js';
import { BYPASS_MARK, SPLICE_MARK } from '../nft.js';
import { NET_CLI, type NetState, snapshotWith } from '../testing/harness.js';
import { SPLICE_RULE_PRIORITY, SPLICE_TABLE, SPLICE_TUN } from './splice-io.js';
import { SPLICE_AGENT, SpliceAgent } from './testing/splice-agent.js';

requireRoot();

const GW = '198.18.0.1';
const NOT_GW = '198.18.0.2';
const N1 = '198.18.0.11';
const VIP = '203.0.113.80';
const CLIENT = '203.0.113.10';
const NODE_PORT = 8081; // the node's mountd, say: the agent also restores its replies to 81
const CLUSTER_PORT = 81;
const SPLICE_PORT = 7472;

interface Segment {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  options?: number[];
  payload?: Uint8Array;
}

/** tcpPacket builds IPv4 + TCP with both checksums right (the TUN path checks them in software). */
function tcpPacket(s: Segment): Buffer {
  const options = Uint8Array.from(s.options ?? []);
  const payload = s.payload ?? new Uint8Array(0);
  const tcpLen = 20 + options.length + payload.length;
  const p = Buffer.alloc(20 + tcpLen);
  const src = parseIpv4(s.src);
  const dst = parseIpv4(s.dst);
  writeIpv4Header(p, 0, { src, dst, protocol: IPPROTO.TCP, payloadLength: tcpLen, dontFragment: true });
  const hl = writeTcpHeader(p, 20, {
    srcPort: s.sport,
    dstPort: s.dport,
    seq: s.seq,
    ack: s.ack ?? 0,
    flags: s.flags,
    window: s.window ?? 65535,
    options,
  });
  p.set(payload, 20 + hl);
  const tcp = new TcpView();
  tcp.bind(p, 20, tcpLen);
  tcp.computeChecksum(src, dst);
  return p;
}

interface Seen {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  payload: Buffer;
  checksumsOk: boolean;
  length: number;
  /** The MSS option, -1 when there is none. */
  mss: number;
}

/** parse reads a captured IPv4/TCP packet; null for anything else. */
function parse(hex: string, offloadFlags = 0): Seen | null {
  const buf = Buffer.from(hex, 'hex');
  const ip = new Ipv4View();
  if (ip.bind(buf) !== 0 || ip.protocol !== IPPROTO.TCP) return null;
  const t = new TcpView();
  if (t.bind(buf, ip.headerLength, ip.totalLength - ip.headerLength) !== 0) return null;
  return {
    src: ipv4ToString(ip.src),
    dst: ipv4ToString(ip.dst),
    sport: t.srcPort,
    dport: t.dstPort,
    seq: t.seq,
    ack: t.ack,
    flags: t.flags,
    payload: Buffer.from(buf.subarray(t.payloadOffset, t.payloadOffset + t.payloadLength)),
    // With offloads (bit 0: NEEDS_CSUM) the TCP checksum field holds only the pseudo header's sum: the
    // kernel completes it where the packet finally leaves.
    checksumsOk: ip.verifyChecksum() && ((offloadFlags & 1) !== 0 || t.verifyChecksum(ip.src, ip.dst)),
    length: ip.totalLength,
    mss: t.mss(),
  };
}

/** outbound lists every packet the agent has seen in its TUN so far, parsed, from event index `from`. */
function outbound(agent: SpliceAgent, from = 0): Seen[] {
  return agent.events
    .slice(from)
    .filter((e) => e.ev === 'outbound')
    .flatMap((e) =>
      (e.packets as string[]).map((p, i) =>
        parse(p, (e.offload as { flags: number }[] | undefined)?.[i]?.flags ?? 0),
      ),
    )
    .filter((s): s is Seen => s !== null);
}

const hex = (p: Uint8Array) => Buffer.from(p).toString('hex');

describe('SpliceIo in a node namespace', () => {
  const lab = new Lab();
  let gw: Netns;
  let node: Netns;
  let dir: string;
  let configFile: string;
  let stateFile: string;
  let baseline: NetState;
  let agent: SpliceAgent;
  let gwIf: string;
  const nodeExec = (file: string, args: string[]) => node.exec(file, args);
  // One client connection per test that needs one: distinct client ports.
  let clientPort = 40000;

  const rules = async () =>
    JSON.parse((await node.ip('-j', 'rule', 'show')).stdout) as Array<{ priority: number; fwmark?: string }>;
  const ourRule = async () =>
    (await rules()).some(
      (r) => r.priority === SPLICE_RULE_PRIORITY && r.fwmark === `0x${SPLICE_MARK.toString(16)}`,
    );
  /** ourRule6: the IPv6 twin of the rule (IPv6 hand-overs, on a kernel with force_forwarding) */
  const ourRule6 = async () =>
    (
      JSON.parse((await node.ip('-j', '-6', 'rule', 'show')).stdout) as Array<{
        priority: number;
        fwmark?: string;
      }>
    ).some((r) => r.priority === SPLICE_RULE_PRIORITY && r.fwmark === `0x${SPLICE_MARK.toString(16)}`);
  const linkThere = (dev: string) =>
    node.ip('link', 'show', 'dev', dev).then(
      () => true,
      () => false,
    );
  const tableRoutes = () =>
    node.ip('-j', 'route', 'show', 'table', String(SPLICE_TABLE)).then(
      (r) => JSON.parse(r.stdout) as Array<{ dst: string; dev: string }>,
      () => [],
    );
  /** gwCounts reads the gateway's counters: [from the node's port, from the cluster port]. */
  const gwCounts = async () => {
    const { stdout } = await gw.exec('nft', ['list', 'chain', 'netdev', 'probe', 'in']);
    return [...stdout.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
  };

  /** handshake injects a SYN from CLIENT:port and waits for the kernel's SYN-ACK in the TUN. */
  async function handshake(a: SpliceAgent, port: number, isn: number): Promise<Seen> {
    const from = a.events.length;
    const syn = tcpPacket({
      ...{ src: CLIENT, dst: VIP, sport: port, dport: NODE_PORT, seq: isn, flags: TCP_FLAGS.SYN },
      options: [2, 4, 0x05, 0xb4], // MSS 1460
    });
    expect((await a.request('inject', { hex: hex(syn) })).ok).toBe(true);
    await waitFor(() => outbound(a, from).some((s) => s.dport === port && s.flags & TCP_FLAGS.SYN), {
      what: 'the SYN-ACK in the TUN',
    });
    return outbound(a, from).find((s) => s.dport === port && s.flags & TCP_FLAGS.SYN)!;
  }

  beforeAll(async () => {
    gw = await lab.netns();
    node = await lab.netns();
    await gw.sysctl('net.ipv6.conf.all.disable_ipv6', 1);
    await gw.sysctl('net.ipv6.conf.default.disable_ipv6', 1);
    // IPv6 stays on in the node (the agent turns it off on its TUN), without duplicate address
    // detection so that addresses do not change state between snapshots.
    await node.sysctl('net.ipv6.conf.default.accept_dad', 0);
    // Strict reverse-path filtering, as many distributions set it: new devices (the TUN) start with it.
    await node.sysctl('net.ipv4.conf.all.rp_filter', 1);
    await node.sysctl('net.ipv4.conf.default.rp_filter', 1);
    const pair = await lab.veth(gw, node, { aAddress: `${GW}/24`, bAddress: `${N1}/24` });
    gwIf = pair.a;
    await gw.ip('addr', 'add', `${NOT_GW}/24`, 'dev', gwIf);
    dir = await mkdtemp(join(tmpdir(), 'oh-splice-'));
    lab.defer(() => rm(dir, { recursive: true, force: true }));
    stateFile = join(dir, 'n1-state.json');
    const config: NodeConfig = {
      nodeName: 'n1',
      internal: { address: N1, interface: pair.b },
      gateways: [GW],
      networks: [{ name: 'outside', address: VIP, default: true }],
      portBlock: { lo: 50000, hi: 50999 },
      vxlan: { vni: 42 },
      mountPorts: [{ proto: 'tcp', nodePort: NODE_PORT, clusterPort: CLUSTER_PORT }],
      splice: { capturePorts: [NODE_PORT, 2049] },
      stateFile,
    };
    configFile = join(dir, 'n1.json');
    await writeFile(configFile, JSON.stringify(config));
    // Count, at the gateway, what the node sends to the client (nothing is routed on from there).
    await gw.exec('nft', ['-f', '-'], {
      input: [
        'table netdev probe {',
        '  chain in {',
        `    type filter hook ingress device "${gwIf}" priority 0;`,
        `    ip saddr ${VIP} ip daddr ${CLIENT} tcp sport ${NODE_PORT} counter`,
        `    ip saddr ${VIP} ip daddr ${CLIENT} tcp sport ${CLUSTER_PORT} counter`,
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    baseline = await snapshotWith(nodeExec);
    agent = await SpliceAgent.start(node, configFile);
    await agent.request('listen', { address: VIP, port: NODE_PORT });
  });

  afterAll(async () => {
    await lab.cleanup();
  });

  it('sets up the TUN, the rule, the table and the capture chain, each recorded in the state file', async () => {
    const [link] = JSON.parse(
      (await node.ip('-j', '-d', 'link', 'show', 'dev', SPLICE_TUN)).stdout,
    ) as Array<{
      mtu: number;
      flags: string[];
    }>;
    expect(link!.mtu).toBe(65535);
    expect(link!.flags).toContain('UP');
    const conf = async (key: string) => (await node.exec('sysctl', ['-n', key])).stdout.trim();
    expect(await conf(`net.ipv4.conf.${SPLICE_TUN}.rp_filter`)).toBe('0');
    // No IPv6 on it: no router solicitations or MLD reports among the captured packets.
    const [addrs] = JSON.parse((await node.ip('-j', 'addr', 'show', 'dev', SPLICE_TUN)).stdout) as Array<{
      addr_info: Array<{ family: string }>;
    }>;
    expect(addrs!.addr_info.filter((a) => a.family === 'inet6')).toEqual([]);
    expect(await ourRule()).toBe(true);
    expect(await tableRoutes()).toEqual([expect.objectContaining({ dst: 'default', dev: SPLICE_TUN })]);
    // IPv6: forwarded from the TUN by the device's own switch, routed into it by the same mark
    expect(await conf(`net.ipv6.conf.${SPLICE_TUN}.force_forwarding`)).toBe('1');
    expect(await conf('net.ipv6.conf.all.forwarding')).toBe('0');
    expect(await ourRule6()).toBe(true);
    const routes6 = JSON.parse(
      (await node.ip('-j', '-6', 'route', 'show', 'table', String(SPLICE_TABLE))).stdout,
    ) as Array<{ dst: string; dev: string }>;
    expect(routes6).toEqual([expect.objectContaining({ dst: 'default', dev: SPLICE_TUN })]);
    const { stdout: table } = await node.exec('nft', ['list', 'table', 'ip', 'onehost_agent']);
    expect(table).toMatch(
      new RegExp(
        `ip saddr ${VIP} tcp sport \\{ 2049, ${NODE_PORT} \\} oifname != "lo" meta mark != 0x0000${BYPASS_MARK.toString(16)} meta mark set 0x0000${SPLICE_MARK.toString(16)} counter`,
      ),
    );
    expect(table).toContain(`meta mark 0x0000${BYPASS_MARK.toString(16)} notrack`);
    const kinds = (await readJournal(stateFile))!.changes.map((c) => c.kind);
    expect(kinds.slice(-4)).toEqual(['link', 'table-route', 'rule', 'rule-args']);
    // A second SpliceIo in the same namespace is refused before it records or changes anything.
    const again = await agent.request('open');
    expect(again).toMatchObject({ ok: false, message: expect.stringContaining('already exists') });
    expect((await readJournal(stateFile))!.changes.map((c) => c.kind)).toEqual(kinds);
  });

  it("replays a handshake: the kernel's SYN-ACK reaches onOutbound from the node's port; ACK and data reach the listener", async () => {
    const port = clientPort++;
    const isn = 0x10000000;
    const synAck = await handshake(agent, port, isn);
    expect(synAck).toMatchObject({ src: VIP, dst: CLIENT, sport: NODE_PORT, dport: port, ack: isn + 1 });
    expect(synAck.flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK)).toBe(TCP_FLAGS.SYN | TCP_FLAGS.ACK);
    // The IPv4 header is complete; the TCP checksum is complete or marked partial (offloads).
    expect(synAck.checksumsOk).toBe(true);
    // The MSS is the interconnect's (MTU 1500), where the SYN-ACK was routed first, not the TUN's.
    expect(synAck.mss).toBe(1460);
    const base = { src: CLIENT, dst: VIP, sport: port, dport: NODE_PORT, ack: (synAck.seq + 1) >>> 0 };
    const from = agent.events.length;
    const ack = tcpPacket({ ...base, seq: isn + 1, flags: TCP_FLAGS.ACK });
    const body = Buffer.from('MNT /srv/home');
    const data = tcpPacket({ ...base, seq: isn + 1, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH, payload: body });
    expect((await agent.request('inject', { hex: hex(ack) })).ok).toBe(true);
    expect((await agent.request('inject', { hex: hex(data) })).ok).toBe(true);
    await agent.waitEvent(
      (e) => e.ev === 'data' && e.hex === body.toString('hex'),
      'the bytes at the listener',
    );
    expect(agent.events.some((e) => e.ev === 'accepted' && e.remote === `${CLIENT}:${port}`)).toBe(true);
    // The kernel acknowledges them, into the TUN as well.
    await waitFor(
      () => outbound(agent, from).some((s) => s.dport === port && s.ack === isn + 1 + body.length),
      {
        what: 'the ACK of the data in the TUN',
      },
    );
    // The server's answer, checksums complete or marked partial, although the socket
    // was set up on the interconnect's route (veth: segmentation and checksum offload).
    const sent = agent.events.length;
    await agent.request('write', { remote: `${CLIENT}:${port}`, size: 8000 });
    const answer = () => outbound(agent, sent).filter((s) => s.dport === port && s.payload.length > 0);
    await waitFor(() => answer().reduce((n, s) => n + s.payload.length, 0) >= 8000, {
      what: "the listener's 8000 bytes in the TUN",
    });
    // With TSO on the TUN the 8000 bytes may come as one super-packet or as segments; all of them, in order.
    expect(Buffer.concat(answer().map((s) => s.payload)).length).toBe(8000);
    expect(answer().every((s) => s.checksumsOk)).toBe(true);
    // Nothing of it left by the interconnect.
    expect(await gwCounts()).toEqual([0, 0]);
  });

  it('sends out by the normal routes with the bypass mark: not captured again, not tracked, port left as is', async () => {
    // A spliced connection, so that conntrack has an entry for the 4-tuple the agent sends on.
    const port = clientPort++;
    await handshake(agent, port, 1000);
    // Watch the node's output after conntrack: the bypass packets must be untracked. Without the
    // notrack rule they would be INVALID: their sequence numbers are the client's view, out of the
    // window conntrack learnt from the node's side.
    await node.exec('nft', ['-f', '-'], {
      input: [
        'table ip probe {',
        '  chain out {',
        '    type filter hook output priority filter + 10; policy accept;',
        `    meta mark 0x${BYPASS_MARK.toString(16)} ct state untracked counter`,
        `    meta mark 0x${BYPASS_MARK.toString(16)} counter`,
        '  }',
        // after splice_out (mangle - 1): what it captured of this test's connection only, SYN-ACKs left
        // out (the node's kernel may still retransmit the handshake's, on a loaded machine even this one's)
        '  chain captured {',
        '    type route hook output priority mangle; policy accept;',
        `    meta mark 0x${SPLICE_MARK.toString(16)} tcp dport ${port} tcp flags & syn == 0 counter`,
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    try {
      const before = { gw: await gwCounts(), stats: (await agent.request('stats')).stats };
      const capturedHere = async () => {
        const { stdout } = await node.exec('nft', ['list', 'chain', 'ip', 'probe', 'captured']);
        return Number(/counter packets (\d+)/.exec(stdout)?.[1] ?? Number.NaN);
      };
      const capturedBefore = await capturedHere();
      const eventsBefore = agent.events.length;
      // From the node's port, a capture port and a port the agent restores for MOUNT: the Splicer sends
      // what it rewrote, and the kernel must neither capture it nor touch it.
      const out = tcpPacket({
        ...{ src: VIP, dst: CLIENT, sport: NODE_PORT, dport: port, seq: 0x80000000, ack: 0x40000000 },
        ...{ flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH, payload: Buffer.from('reply') },
      });
      expect((await agent.request('sendOut', { hex: hex(out) })).ok).toBe(true);
      await waitFor(async () => (await gwCounts())[0] === before.gw[0]! + 1, {
        what: 'the packet at the gateway, source port unchanged',
      });
      expect((await gwCounts())[1]).toBe(before.gw[1]);
      expect(await capturedHere()).toBe(capturedBefore);
      // not back in the agent's TUN (its counters also see the kernel's SYN-ACK retransmissions of the
      // handshake above, so look for this very packet)
      expect(
        outbound(agent, eventsBefore).some((x) => x.dport === port && x.payload.toString() === 'reply'),
      ).toBe(false);
      const stats = (await agent.request('stats')).stats as { sentOut: number };
      expect(stats.sentOut).toBe((before.stats as typeof stats).sentOut + 1);
      const { stdout } = await node.exec('nft', ['list', 'chain', 'ip', 'probe', 'out']);
      expect([...stdout.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]))).toEqual([1, 1]);
      // The control: the same packet from a raw socket without the mark is captured.
      const from = agent.events.length;
      expect((await agent.request('sendUnmarked', { hex: hex(out) })).ok).toBe(true);
      await waitFor(
        () => outbound(agent, from).some((s) => s.dport === port && s.payload.toString() === 'reply'),
        { what: 'the unmarked packet in the TUN' },
      );
      expect(await capturedHere()).toBe(capturedBefore + 1);
    } finally {
      await node.exec('nft', ['delete', 'table', 'ip', 'probe']);
    }
  });

  it('delivers datagrams from a gateway and drops (and counts) the others', async () => {
    const send = (from: string, payload: string) =>
      gw.exec('node', [SPLICE_AGENT, 'send', from, N1, String(SPLICE_PORT), payload]);
    const before = (await agent.request('stats')).stats as { messages: number; notFromGateway: number };
    await send(NOT_GW, '01aa');
    await waitFor(
      async () =>
        ((await agent.request('stats')).stats as typeof before).notFromGateway === before.notFromGateway + 1,
      { what: 'the datagram from elsewhere counted' },
    );
    await send(GW, '02bbcc');
    const msg = await agent.waitEvent((e) => e.ev === 'message', 'the datagram from the gateway');
    expect(msg).toMatchObject({ from: GW, hex: '02bbcc' });
    expect(agent.events.filter((e) => e.ev === 'message')).toHaveLength(1);
    const after = (await agent.request('stats')).stats as typeof before;
    expect(after.messages).toBe(before.messages + 1);
  });

  it('follows the capture ports of the config', async () => {
    await agent.request('capture', { ports: [2049] });
    const list = async () =>
      (await node.exec('nft', ['list', 'chain', 'ip', 'onehost_agent', 'splice_out'])).stdout;
    expect(await list()).toMatch(/tcp sport 2049 oifname/);
    // Not captured any more: the kernel's SYN-ACK leaves by the interconnect (and the MOUNT restore applies).
    const [fromNode, fromCluster] = await gwCounts();
    const from = agent.events.length;
    const port = clientPort++;
    const syn = tcpPacket({
      src: CLIENT,
      dst: VIP,
      sport: port,
      dport: NODE_PORT,
      seq: 1,
      flags: TCP_FLAGS.SYN,
    });
    expect((await agent.request('inject', { hex: hex(syn) })).ok).toBe(true);
    await waitFor(async () => (await gwCounts())[1]! > fromCluster!, {
      what: 'the uncaptured SYN-ACK at the gateway, from the cluster port',
    });
    expect((await gwCounts())[0]).toBe(fromNode);
    expect(outbound(agent, from).filter((s) => s.dport === port)).toEqual([]);
    await agent.request('capture', { ports: [NODE_PORT, 2049] });
    expect(await list()).toMatch(new RegExp(`tcp sport \\{ 2049, ${NODE_PORT} \\}`));
  });

  it('leaves the rule behind after a crash; restore removes it all; a new agent works; close and restore leave nothing', async () => {
    // Only what was captured ever came out of the TUN: IPv4 TCP from the cluster address.
    const packets = agent.events.filter((e) => e.ev === 'outbound').flatMap((e) => e.packets as string[]);
    expect(packets.map((p) => parse(p)?.src ?? p)).toEqual(packets.map(() => VIP));
    await agent.kill('SIGKILL');
    // The device went with the process, its route with the device; the rule and the table stay.
    await waitFor(async () => !(await linkThere(SPLICE_TUN)), { what: 'the TUN to go with the process' });
    expect(await tableRoutes()).toEqual([]);
    expect(await ourRule()).toBe(true);
    expect(await ourRule6()).toBe(true);
    await node.exec('node', [NET_CLI, 'restore', '--state', stateFile]);
    expect(await ourRule()).toBe(false);
    expect(await ourRule6()).toBe(false);
    expect(await snapshotWith(nodeExec)).toEqual(baseline);

    agent = await SpliceAgent.start(node, configFile);
    await agent.request('listen', { address: VIP, port: NODE_PORT });
    const synAck = await handshake(agent, clientPort++, 42);
    expect(synAck.ack).toBe(43);

    await agent.request('close');
    expect(await ourRule()).toBe(false);
    expect(await ourRule6()).toBe(false);
    expect(await linkThere(SPLICE_TUN)).toBe(false);
    expect(await tableRoutes()).toEqual([]);
    // An open that fails half-way (nothing to bind to) takes down what it had set up.
    const bad = await agent.request('open', { overrides: { listenAddress: '198.18.0.99' } });
    expect(bad).toMatchObject({ ok: false, message: expect.stringContaining('EADDRNOTAVAIL') });
    expect(await ourRule()).toBe(false);
    expect(await linkThere(SPLICE_TUN)).toBe(false);
    const { report } = await agent.request('restore');
    expect(report).toMatchObject({ found: true });
    await agent.end();
    expect(await snapshotWith(nodeExec)).toEqual(baseline);
  });
});
