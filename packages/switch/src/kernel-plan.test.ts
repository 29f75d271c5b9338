import { parseIpv4, TCP_FLAGS } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { FUNCTION_SLOT, functionSlotName } from './counters.js';
import { DecisionOut } from './decision.js';
import { FLOW_OP, FlowLog, type KernelPlan } from './kernel-plan.js';
import { MessageSwitch } from './message-switch.js';
import { configFrom } from './testing/example-config.js';
import { tcp6Packet, tcpPacket, udp6Packet, udpPacket } from './testing/packet-builder.js';

const { SYN, ACK, FIN } = TCP_FLAGS;
const VIP = '203.0.113.10';
const CLIENT = '203.0.113.5';

function yaml(states: Record<string, string> = {}): string {
  const node = (id: number, name: string) =>
    `  - { id: ${id}, name: ${name}, address: 198.18.0.${10 + id}, state: ${states[name] ?? 'active'} }`;
  return [
    'gateway: gw',
    'clusterAddresses: [{ network: outside, address: 203.0.113.10 }]',
    'nodes:',
    node(1, 'gw'),
    node(2, 'n1'),
    node(3, 'n2'),
    node(4, 'n3'),
    'portBlocks: [{ node: n1, from: 40000, to: 40999 }]',
    'entries:',
    '  - { protocol: tcp, port: 80, function: connection, policy: round-robin, nodes: [n1, n2, n3] }',
    '  - { protocol: tcp, port: 81, function: connection, policy: least-conn, nodes: [n1, n2, n3] }',
    '  - { protocol: tcp, port: 443, function: connection, policy: maglev, rederive: true, maglevSize: 251, nodes: [n1, n2, n3] }',
    '  - { protocol: udp, port: 53, function: udp-flow, nodes: [n2, n3], idleTimeout: 30, maglevSize: 13 }',
    '  - { protocol: tcp, port: 5201, function: fixed, node: n1, backup: n2 }',
    '  - { protocol: tcp, port: 6000, function: port-block }',
    '  - { protocol: tcp, port: 111, function: portmap }',
    '  - { protocol: udp, port: 20048, function: mount }',
    '  - { protocol: tcp, port: 2049, function: nfs }',
  ].join('\n');
}

interface Rec {
  op: number;
  protocol: number;
  port: number;
  vip: number;
  client: number;
  clientPort: number;
  node: number;
  timeoutMs: number;
}

function drain(log: FlowLog): Rec[] {
  const out: Rec[] = [];
  log.drain((op, protocol, port, vip, client, clientPort, node, timeoutMs) =>
    out.push({ op, protocol, port, vip, client, clientPort, node, timeoutMs }),
  );
  return out;
}

function plans(sw: MessageSwitch): Record<string, KernelPlan | undefined> {
  const out: Record<string, KernelPlan | undefined> = {};
  for (const e of sw.snapshot!.entries.values())
    out[`${e.protocol === 6 ? 'tcp' : 'udp'}/${e.port}`] = e.fn.kernel?.();
  return out;
}

describe('kernel plans', () => {
  it('each function says how the kernel runs it with this snapshot’s nodes', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml({ n2: 'draining' })));
    const p = plans(sw);
    expect(p['tcp/5201']).toEqual({ path: 'kernel', kind: 'fixed', node: 2 });
    expect(p['tcp/6000']).toEqual({ path: 'kernel', kind: 'port-block' });
    expect(p['tcp/111']).toEqual({ path: 'kernel', kind: 'local' });
    expect(p['udp/20048']).toEqual({ path: 'user', why: 'MOUNT dirpath' });
    expect(p['tcp/2049']).toEqual({ path: 'user', why: 'NFS file handle' });
    const rr = p['tcp/80'] as Extract<KernelPlan, { kind: 'connection' }>;
    // draining n2 keeps its flows but takes no new ones
    expect(rr).toMatchObject({ policy: 'round-robin', active: [2, 4], maglev: null, rederive: false });
    expect(rr.timeouts).toEqual({ syn: 60_000, established: 900_000, fin: 120_000, rst: 10_000 });
    const mg = p['tcp/443'] as Extract<KernelPlan, { kind: 'connection' }>;
    expect(mg.maglev?.size).toBe(251);
    expect(mg.maglev?.table).toHaveLength(251);
    expect(new Set(mg.maglev!.table)).toEqual(new Set([2, 4]));
    const uf = p['udp/53'] as Extract<KernelPlan, { kind: 'udp-flow' }>;
    expect(uf).toMatchObject({ idleMs: 30_000, maxEntries: 262_144 });
    expect(new Set(uf.maglev.table)).toEqual(new Set([4]));
  });

  it('a fixed entry names its backup while the primary is down, and none when both are', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml({ n1: 'down' })));
    expect(plans(sw)['tcp/5201']).toEqual({ path: 'kernel', kind: 'fixed', node: 3 });
    sw.load(configFrom(yaml({ n1: 'down', n2: 'down' })));
    expect(plans(sw)['tcp/5201']).toEqual({ path: 'kernel', kind: 'fixed', node: -1 });
  });
});

describe('the flow log', () => {
  it('is silent until enabled', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml()));
    const p = tcpPacket({ src: CLIENT, dst: VIP, srcPort: 1000, dstPort: 81, flags: SYN });
    sw.decide(p, 0, p.length, 0, new DecisionOut());
    expect(sw.flowLog.size).toBe(0);
  });

  it('records the flows user space decides, for the kernel to learn', () => {
    const sw = new MessageSwitch();
    sw.flowLog.enabled = true;
    sw.load(configFrom(yaml()));
    const out = new DecisionOut();
    const send = (port: number, flags: number, srcPort = 1000) => {
      const p = tcpPacket({ src: CLIENT, dst: VIP, srcPort, dstPort: port, flags });
      sw.decide(p, 0, p.length, 0, out);
      return out.node;
    };
    const node = send(81, SYN);
    send(81, ACK);
    send(81, FIN | ACK);
    const vip = parseIpv4(VIP);
    const client = parseIpv4(CLIENT);
    const base = { protocol: 6, port: 81, vip, client, clientPort: 1000, node };
    expect(drain(sw.flowLog)).toEqual([
      { op: FLOW_OP.UPSERT, ...base, timeoutMs: 60_000 },
      { op: FLOW_OP.UPSERT, ...base, timeoutMs: 900_000 },
      { op: FLOW_OP.UPSERT, ...base, timeoutMs: 120_000 },
    ]);
    expect(sw.flowLog.size).toBe(0);
    // no entry, not a SYN: dropped, and the kernel told to forget the flow
    send(80, ACK, 2000);
    expect(drain(sw.flowLog)).toEqual([
      { op: FLOW_OP.REMOVE, protocol: 6, port: 80, vip, client, clientPort: 2000, node: -1, timeoutMs: 0 },
    ]);
    const u = udpPacket({ src: CLIENT, dst: VIP, srcPort: 5353, dstPort: 53 });
    sw.decide(u, 0, u.length, 0, out);
    expect(drain(sw.flowLog)).toEqual([
      {
        op: FLOW_OP.UPSERT,
        protocol: 17,
        port: 53,
        vip,
        client,
        clientPort: 5353,
        node: out.node,
        timeoutMs: 30_000,
      },
    ]);
    // explain (a dry run) logs nothing
    sw.explain(tcpPacket({ src: CLIENT, dst: VIP, srcPort: 3000, dstPort: 81, flags: SYN }), {
      dryRun: true,
    });
    expect(sw.flowLog.size).toBe(0);
  });

  it('a flow whose node went down is removed and, re-derived, upserted on its new node', () => {
    const sw = new MessageSwitch();
    sw.flowLog.enabled = true;
    sw.load(configFrom(yaml()));
    const out = new DecisionOut();
    const p = tcpPacket({ src: CLIENT, dst: VIP, srcPort: 7000, dstPort: 443, flags: SYN });
    sw.decide(p, 0, p.length, 0, out);
    const first = out.node;
    drain(sw.flowLog);
    const name = sw.snapshot!.nodes.nameOf(first);
    sw.load(configFrom(yaml({ [name]: 'down' })));
    const a = tcpPacket({ src: CLIENT, dst: VIP, srcPort: 7000, dstPort: 443, flags: ACK });
    sw.decide(a, 0, a.length, 1, out);
    expect(out.node).not.toBe(first);
    expect(drain(sw.flowLog)).toEqual([
      expect.objectContaining({
        op: FLOW_OP.UPSERT,
        port: 443,
        clientPort: 7000,
        node: out.node,
        timeoutMs: 900_000,
      }),
    ]);
  });

  it('records IPv6 flows with their addresses: cluster address, then client', () => {
    const sw = new MessageSwitch();
    sw.flowLog.enabled = true;
    const VIP6 = '2001:db8::10';
    sw.load(
      configFrom(
        yaml().replace(
          'clusterAddresses: [{ network: outside, address: 203.0.113.10 }]',
          `clusterAddresses: [{ network: outside, address: 203.0.113.10 }, { network: outside, address: "${VIP6}" }]`,
        ),
      ),
    );
    const out = new DecisionOut();
    const got: { rec: Rec; family: number; addr6: number[] }[] = [];
    const drain6 = () =>
      sw.flowLog.drain((op, protocol, port, vip, client, clientPort, node, timeoutMs, family) =>
        got.push({
          rec: { op, protocol, port, vip, client, clientPort, node, timeoutMs },
          family,
          addr6: [...sw.flowLog.addr6],
        }),
      );
    const syn = tcp6Packet({ src: '2001:db8:1::5', dst: VIP6, srcPort: 1000, dstPort: 81, flags: SYN });
    sw.decide(syn, 0, syn.length, 0, out);
    const node = out.node;
    const ack = tcp6Packet({ src: '2001:db8:1::5', dst: VIP6, srcPort: 1000, dstPort: 81, flags: ACK });
    sw.decide(ack, 0, ack.length, 0, out);
    const lost = tcp6Packet({ src: '2001:db8:1::5', dst: VIP6, srcPort: 2000, dstPort: 80, flags: ACK });
    sw.decide(lost, 0, lost.length, 0, out);
    const u = udp6Packet({ src: '2001:db8:1::5', dst: VIP6, srcPort: 5353, dstPort: 53 });
    sw.decide(u, 0, u.length, 0, out);
    // and an IPv4 record between them keeps its family
    const p4 = tcpPacket({ src: CLIENT, dst: VIP, srcPort: 1000, dstPort: 81, flags: SYN });
    sw.decide(p4, 0, p4.length, 0, out);
    expect(drain6()).toBe(5);
    const addrs = [...syn.subarray(24, 40), ...syn.subarray(8, 24)];
    const v6 = { protocol: 6, port: 81, vip: 0, client: 0, clientPort: 1000, node };
    expect(got.map((g) => [g.family, g.rec])).toEqual([
      [6, { op: FLOW_OP.UPSERT, ...v6, timeoutMs: 60_000 }],
      [6, { op: FLOW_OP.UPSERT, ...v6, timeoutMs: 900_000 }],
      [6, { op: FLOW_OP.REMOVE, ...v6, port: 80, clientPort: 2000, node: -1, timeoutMs: 0 }],
      [6, expect.objectContaining({ op: FLOW_OP.UPSERT, protocol: 17, port: 53, clientPort: 5353 })],
      [4, expect.objectContaining({ op: FLOW_OP.UPSERT, vip: parseIpv4(VIP), client: parseIpv4(CLIENT) })],
    ]);
    for (const g of got.slice(0, 4)) expect(g.addr6).toEqual(addrs);
  });

  it('is bounded: past its capacity records are dropped and counted', () => {
    const log = new FlowLog(2);
    log.enabled = true;
    for (let i = 0; i < 5; i++) log.remove(6, 80, 1, 2, i);
    expect(log.size).toBe(2);
    expect(log.dropped).toBe(3);
    expect(drain(log).map((r) => r.clientPort)).toEqual([0, 1]);
  });
});

describe('per-function packet counts', () => {
  it('count what the packet loop decides, by function, and not explain', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml()));
    const out = new DecisionOut();
    const send = (b: Uint8Array) => sw.decide(b, 0, b.length, 0, out);
    send(tcpPacket({ src: CLIENT, dst: VIP, srcPort: 1, dstPort: 80, flags: SYN }));
    send(tcpPacket({ src: CLIENT, dst: VIP, srcPort: 1, dstPort: 80, flags: ACK }));
    send(tcpPacket({ src: CLIENT, dst: VIP, srcPort: 1, dstPort: 40001, flags: ACK }));
    sw.explain(tcpPacket({ src: CLIENT, dst: VIP, srcPort: 1, dstPort: 80, flags: SYN }));
    const kinds = sw.registry.kinds();
    const c = sw.counters.functionPackets;
    expect(c[kinds.indexOf('connection')]).toBe(2);
    expect(c[FUNCTION_SLOT.UNMATCHED]).toBe(1);
    expect(functionSlotName(kinds.indexOf('connection'), kinds)).toBe('connection');
    expect(functionSlotName(FUNCTION_SLOT.NON_PORT, kinds)).toBe('non_port');
  });
});

describe('least-connections with the kernel’s counts', () => {
  it('picks by the live flows the kernel reports, counting its own picks until the next report', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml()));
    const fn = sw.snapshot!.lookup(6, 81)!.fn;
    const counts = new Int32Array(0x10000);
    counts[2] = 5; // n1
    counts[3] = 1; // n2
    counts[4] = 2; // n3
    fn.setLiveFlows!(counts);
    const out = new DecisionOut();
    const pick = (srcPort: number) => {
      const p = tcpPacket({ src: CLIENT, dst: VIP, srcPort, dstPort: 81, flags: SYN });
      sw.decide(p, 0, p.length, 0, out);
      return out.node;
    };
    // n2 has 1 → 2; n2 ties n3 at 2, the first in order wins → 3; n3 has 2 → 3; tie again → n2
    expect([pick(1), pick(2), pick(3), pick(4)]).toEqual([3, 3, 4, 3]);
    // the report survives a snapshot swap (membership change)
    sw.load(configFrom(yaml()));
    expect(pick(5)).toBe(4);
    sw.snapshot!.lookup(6, 81)!.fn.setLiveFlows!(null);
    expect(pick(6)).toBe(2); // back to its own table: n1 has none of these
  });
});
