import { parseIpv4, TCP_FLAGS } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { DecisionOut, KIND, NO_PORT } from './decision.js';
import { DROP } from './drop-reason.js';
import { MessageSwitch } from './message-switch.js';
import { configFrom, EXAMPLE_YAML } from './testing/example-config.js';
import {
  echoReply,
  echoRequest,
  fragments,
  ganeshaHandle,
  icmpError,
  mountCall,
  nfsCall,
  rawIpPacket,
  rpcCall,
  tcpPacket,
  udpPacket,
  xdrOpaque,
} from './testing/packet-builder.js';

const VIP = '203.0.113.10';
const VIP2 = '203.0.113.11';
const CLIENT = '203.0.113.5';
const { SYN, ACK, FIN, RST } = TCP_FLAGS;

function switchWith(yaml = EXAMPLE_YAML): MessageSwitch {
  const sw = new MessageSwitch({ clock: () => 0 });
  sw.load(configFrom(yaml));
  return sw;
}

function decide(sw: MessageSwitch, pkt: Uint8Array, now = 0): DecisionOut {
  const out = new DecisionOut();
  sw.decide(pkt, 0, pkt.length, now, out);
  return out;
}

const tcp = (dstPort: number, flags: number, srcPort = 5555, dst = VIP, src = CLIENT, seq = 1000) =>
  tcpPacket({ src, dst, srcPort, dstPort, flags, seq });
const udp = (dstPort: number, payload?: Uint8Array, srcPort = 5555, dst = VIP, src = CLIENT) =>
  udpPacket({ src, dst, srcPort, dstPort, payload });

// Node ids in EXAMPLE_YAML: gw 1, n1 2, n2 3, n3 4.
type Want =
  | { kind: 'forward'; node: number; port?: number }
  | { kind: 'local'; port?: number }
  | { kind: 'drop'; reason: number };

const cases: { name: string; packet: () => Uint8Array; want: Want; box: string }[] = [
  {
    name: 'box 515 no: not a cluster address is dropped',
    packet: () => tcp(80, SYN, 5555, '203.0.113.99'),
    want: { kind: 'drop', reason: DROP.NOT_CLUSTER_ADDRESS },
    box: '515',
  },
  {
    name: "box 515 no: a node's internal address from outside is denied (management bypass only for allowed sources)",
    packet: () => tcp(22, SYN, 5555, '198.18.0.12'),
    want: { kind: 'drop', reason: DROP.MANAGEMENT_DENIED },
    box: '515',
  },
  {
    name: "box 515 no: a management source reaches the node's internal address, bypassing the switch table",
    packet: () => tcp(22, SYN, 5555, '198.18.0.12', '203.0.113.200'),
    want: { kind: 'forward', node: 3 },
    box: 'bypass',
  },
  {
    name: 'box 525 no: ICMP echo to the cluster address goes to the gateway',
    packet: () => echoRequest(CLIENT, VIP),
    want: { kind: 'local' },
    box: '525',
  },
  {
    name: "box 525: an echo reply whose identifier is in n1's block goes to n1 (the node's own ping)",
    packet: () => echoReply(CLIENT, VIP, 40123),
    want: { kind: 'forward', node: 2 },
    box: '525',
  },
  {
    name: 'box 525: an echo reply whose identifier is in no block is the gateway’s',
    packet: () => echoReply(CLIENT, VIP, 7),
    want: { kind: 'local' },
    box: '525',
  },
  {
    name: 'box 525 no: another protocol (GRE) goes to the gateway',
    packet: () => rawIpPacket(CLIENT, VIP, 47, new Uint8Array(8)),
    want: { kind: 'local' },
    box: '525',
  },
  {
    name: 'claim 6, box 560: null function routes to the fixed node',
    packet: () => tcp(22, SYN),
    want: { kind: 'forward', node: 2 },
    box: '560',
  },
  {
    name: 'box 580: a fixed entry naming the gateway is handled locally',
    packet: () => tcp(25, SYN),
    want: { kind: 'local' },
    box: '580',
  },
  {
    name: 'claims 4-5, box 550: no entry, port in a node block → that node, port unchanged',
    packet: () => tcp(41234, ACK),
    want: { kind: 'forward', node: 3 },
    box: '550',
  },
  {
    name: "box 550 → 580: a port in the gateway's own block is local",
    packet: () => udp(49001),
    want: { kind: 'local' },
    box: '550',
  },
  {
    name: 'box 545 no: an unknown port goes to the gateway',
    packet: () => tcp(9999, SYN),
    want: { kind: 'local' },
    box: '545',
  },
  {
    name: 'claims 1-3, box 565 mount: MNT dirpath → longest export → node, destination port → its mountd port',
    packet: () => udp(20048, mountCall('/srv/home/alice')),
    want: { kind: 'forward', node: 3, port: 8081 },
    box: '565',
  },
  {
    name: 'box 565 mount: a deeper export wins (longest match)',
    packet: () => udp(20048, mountCall('/srv/home/shared/x')),
    want: { kind: 'forward', node: 4 },
    box: '565',
  },
  {
    name: 'box 565 mount: the node whose mountd port equals the cluster port keeps the port',
    packet: () => udp(20048, mountCall('/srv/projects')),
    want: { kind: 'forward', node: 2 },
    box: '565',
  },
  {
    name: 'mount: the dirpath is found after an AUTH_SYS credential (walks the XDR)',
    packet: () => udp(20048, mountCall('/srv/home', 1, 44)),
    want: { kind: 'forward', node: 3, port: 8081 },
    box: '565',
  },
  {
    name: 'mount: UMNT follows the export too (the node holds the mount state)',
    packet: () => udp(20048, mountCall('/srv/projects/x', 3)),
    want: { kind: 'forward', node: 2 },
    box: '565',
  },
  {
    name: 'mount: a call to another RPC program goes to the gateway',
    packet: () => udp(20048, rpcCall({ prog: 100003, vers: 3, proc: 1, args: xdrOpaque('/srv/home') })),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'nfs: an NFSv2 call goes to the gateway (NFSv3 handles only)',
    packet: () => udp(2049, rpcCall({ prog: 100003, vers: 2, proc: 1, args: ganeshaHandle(2) })),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'nfs: a handle longer than 64 bytes goes to the gateway',
    packet: () => udp(2049, nfsCall(new Uint8Array(65))),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'Fig. 8 box 820: an unmatched dirpath goes to the gateway',
    packet: () => udp(20048, mountCall('/srv/projectsX')),
    want: { kind: 'local' },
    box: '820',
  },
  {
    name: 'mount: EXPORT calls go to the gateway',
    packet: () => udp(20048, mountCall('', 5)),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'mount: NULL calls go to the gateway',
    packet: () => udp(20048, mountCall('', 0)),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'mount: a malformed RPC goes to the gateway',
    packet: () => udp(20048, new Uint8Array([1, 2, 3, 4, 5, 6, 7])),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: "Fig. 9: an NFSv3 call → the handle's export id → node",
    packet: () => udp(2049, nfsCall(ganeshaHandle(2))),
    want: { kind: 'forward', node: 3 },
    box: '565',
  },
  {
    name: 'nfs: an unknown export id goes to the gateway',
    packet: () => udp(2049, nfsCall(ganeshaHandle(77))),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'nfs: NULL goes to the gateway',
    packet: () => udp(2049, nfsCall(new Uint8Array(0), 0)),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'portmap: always the gateway',
    packet: () => udp(111, new Uint8Array(40)),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'port-block function on an explicit entry: the owner of the port, or the gateway',
    packet: () => udp(7000),
    want: { kind: 'local' },
    box: '565',
  },
  {
    name: 'claim 12: connection manager, non-SYN without entry is discarded (Fig. 10)',
    packet: () => tcp(80, ACK),
    want: { kind: 'drop', reason: DROP.NO_CONNECTION },
    box: '565',
  },
  {
    name: 'truncated IPv4 is dropped and counted',
    packet: () => new Uint8Array([0x45, 0, 0]),
    want: { kind: 'drop', reason: DROP.TRUNCATED },
    box: 'wire',
  },
  {
    name: 'malformed IPv4 (IHL < 5) is dropped and counted',
    packet: () => {
      const p = tcp(80, SYN);
      p[0] = 0x44;
      return p;
    },
    want: { kind: 'drop', reason: DROP.MALFORMED },
    box: 'wire',
  },
];

describe('Fig. 5 inbound flow, one case per branch', () => {
  for (const c of cases) {
    it(c.name, () => {
      const sw = switchWith();
      const out = decide(sw, c.packet());
      const want = c.want;
      expect(out.kind).toBe(KIND[want.kind.toUpperCase() as 'FORWARD' | 'LOCAL' | 'DROP']);
      if (want.kind === 'forward') {
        expect(out.node).toBe(want.node);
        expect(out.port).toBe(want.port ?? NO_PORT);
      }
      if (want.kind === 'local') expect(out.port).toBe(want.port ?? NO_PORT);
      if (want.kind === 'drop') {
        expect(out.reason).toBe(want.reason);
        expect(sw.counters.drops[want.reason]).toBe(1);
      }
      expect(sw.counters.decisions[out.kind]).toBe(1);
      const e = switchWith().explain(c.packet(), { now: 0 });
      expect(e.decision.kind).toBe(want.kind);
      if (c.box !== 'bypass' && c.box !== 'wire') expect(e.trace.join(' ')).toContain(c.box);
    });
  }
});

describe('explain', () => {
  it('traces the boxes of a maglev SYN like the issue example', () => {
    const sw = switchWith();
    const e = sw.explain(tcp(443, SYN), { now: 0 });
    expect(e.decision.kind).toBe('forward');
    expect(e.trace[0]).toMatch(/^515 203\.0\.113\.10 is the cluster address of outside \(default\)$/);
    expect(e.trace[1]).toBe('535 tcp/443 hit → 565 connection');
    expect(e.trace[2]).toMatch(/^connection: SYN → maglev slot \d+ → n[123]$/);
    expect(e.trace[3]).toMatch(/^580 → n[123]$/);
    expect(e.packet).toMatchObject({
      protocol: 'tcp',
      src: CLIENT,
      dst: VIP,
      srcPort: 5555,
      dstPort: 443,
      flags: 'SYN',
    });
  });

  it('dry run leaves the connection table untouched', () => {
    const sw = switchWith();
    expect(sw.explain(tcp(80, SYN), { now: 0, dryRun: true }).decision.kind).toBe('forward');
    expect(decide(sw, tcp(80, ACK)).reason).toBe(DROP.NO_CONNECTION);
    expect(sw.explain(tcp(80, SYN), { now: 0 }).decision.kind).toBe('forward');
    expect(decide(sw, tcp(80, ACK)).kind).toBe(KIND.FORWARD);
  });

  it('dry run does not advance round robin', () => {
    const sw = switchWith();
    const a = sw.explain(tcp(80, SYN, 1), { dryRun: true }).decision;
    const b = sw.explain(tcp(80, SYN, 2), { dryRun: true }).decision;
    expect(a).toEqual(b);
  });

  it('explainFlow answers for a described flow, as a dry run by default', () => {
    const sw = switchWith();
    const q = {
      protocol: 'tcp' as const,
      src: '203.0.113.5',
      dst: '203.0.113.10',
      srcPort: 40000,
      dstPort: 443,
    };
    const a = sw.explainFlow(q);
    expect(a.decision.kind).toBe('forward');
    expect(a.trace[2]).toMatch(/^connection: SYN → maglev slot \d+ → n[123]$/);
    expect(sw.explainFlow({ ...q, tcpFlags: ACK }).decision).toEqual(a.decision); // re-derived: same node
    expect(sw.explainFlow({ ...q, dstPort: 80, tcpFlags: ACK }).decision).toEqual({
      kind: 'drop',
      reason: 'no_connection',
    });
    const m = sw.explainFlow({
      protocol: 'udp',
      src: '203.0.113.5',
      dst: '203.0.113.10',
      srcPort: 800,
      dstPort: 20048,
      payload: mountCall('/srv/home'),
    });
    expect(m.decision).toMatchObject({ kind: 'forward', nodeName: 'n2', port: 8081 });
    expect(() => sw.explainFlow({ ...q, srcPort: 70000 })).toThrow(RangeError);
    expect(() => sw.explainFlow({ ...q, dst: '2001:db8::1' })).toThrow(/different address families/);
  });

  it('explains a wire error without a packet description', () => {
    const e = switchWith().explain(new Uint8Array([0x45]));
    expect(e.decision).toEqual({ kind: 'drop', reason: 'truncated' });
    expect(e.trace[0]).toMatch(/^wire: ipv4_truncated/);
    expect(e.packet).toBeUndefined();
  });

  it('a switch without a table drops everything as not ours', () => {
    const sw = new MessageSwitch();
    expect(sw.explain(tcp(80, SYN)).decision).toEqual({ kind: 'drop', reason: 'not_cluster_address' });
  });
});

describe('claim 16: failover of fixed entries', () => {
  it('routes to the backup when the primary is down, and drops when both are', () => {
    const down1 = EXAMPLE_YAML.replace(
      'name: n1, address: 198.18.0.11',
      'name: n1, address: 198.18.0.11, state: down',
    );
    const sw = switchWith(down1);
    const out = decide(sw, tcp(22, SYN));
    expect(out.kind).toBe(KIND.FORWARD);
    expect(out.node).toBe(3);
    expect(sw.counters.toJSON().events.backup_used).toBe(1);
    const both = down1.replace(
      'name: n2, address: 198.18.0.12',
      'name: n2, address: 198.18.0.12, state: down',
    );
    const sw2 = switchWith(both);
    expect(decide(sw2, tcp(22, SYN)).reason).toBe(DROP.NODE_DOWN);
  });

  it('a draining primary keeps its fixed port', () => {
    const sw = switchWith(
      EXAMPLE_YAML.replace(
        'name: n1, address: 198.18.0.11',
        'name: n1, address: 198.18.0.11, state: draining',
      ),
    );
    expect(decide(sw, tcp(22, SYN)).node).toBe(2);
  });

  it("a down port-block owner's ports are dropped (nobody else can answer)", () => {
    const sw = switchWith(
      EXAMPLE_YAML.replace('name: n2, address: 198.18.0.12', 'name: n2, address: 198.18.0.12, state: down'),
    );
    expect(decide(sw, tcp(41234, ACK)).reason).toBe(DROP.PORT_BLOCK_OWNER_DOWN);
  });
});

describe('claim 15: the destination address is never rewritten', () => {
  it('decide leaves the packet bytes untouched', () => {
    const sw = switchWith();
    const pkt = udp(20048, mountCall('/srv/home'));
    const copy = pkt.slice();
    const out = decide(sw, pkt);
    expect(out.port).toBe(8081);
    expect(pkt).toEqual(copy);
  });
});

describe('cluster addresses per network', () => {
  it('the second network address is a cluster address too', () => {
    const sw = switchWith();
    const e = sw.explain(tcp(22, SYN, 5555, VIP2));
    expect(e.decision).toMatchObject({ kind: 'forward', nodeName: 'n1' });
    expect(e.trace[0]).toContain('cluster address of second');
  });
});

describe('ICMP errors follow the flow they quote', () => {
  it('a fragmentation-needed about a connection reaches that connection node', () => {
    const sw = switchWith();
    const syn = decide(sw, tcp(80, SYN, 6000));
    const node = syn.node;
    // The node's reply went out from the cluster address to the client; a router on the way answers.
    const reply = tcpPacket({ src: VIP, dst: CLIENT, srcPort: 80, dstPort: 6000, flags: ACK });
    const out = decide(sw, icmpError('203.0.113.1', VIP, 3, 4, reply));
    expect(out.kind).toBe(KIND.FORWARD);
    expect(out.node).toBe(node);
  });

  it('an ICMP error quoting an unknown connection is dropped', () => {
    const reply = tcpPacket({ src: VIP, dst: CLIENT, srcPort: 80, dstPort: 6001, flags: ACK });
    expect(decide(switchWith(), icmpError('203.0.113.1', VIP, 3, 4, reply)).reason).toBe(
      DROP.ICMP_UNKNOWN_FLOW,
    );
  });

  it('an ICMP error quoting a port-block flow reaches the block owner', () => {
    const out = tcpPacket({ src: VIP, dst: CLIENT, srcPort: 40007, dstPort: 443, flags: SYN });
    const d = decide(switchWith(), icmpError('203.0.113.1', VIP, 11, 0, out));
    expect(d.kind).toBe(KIND.FORWARD);
    expect(d.node).toBe(2);
  });

  it('an ICMP error quoting a fixed-entry flow reaches the fixed node', () => {
    const out = tcpPacket({ src: VIP, dst: CLIENT, srcPort: 22, dstPort: 6000, flags: ACK });
    expect(decide(switchWith(), icmpError('203.0.113.1', VIP, 3, 4, out)).node).toBe(2);
  });

  it("an ICMP error quoting the gateway's own flow (no entry, no block) is local", () => {
    const out = tcpPacket({ src: VIP, dst: CLIENT, srcPort: 9999, dstPort: 6000, flags: ACK });
    expect(decide(switchWith(), icmpError('203.0.113.1', VIP, 3, 4, out)).kind).toBe(KIND.LOCAL);
  });

  it('an ICMP error quoting a packet not from a cluster address is local', () => {
    const out = tcpPacket({ src: '203.0.113.77', dst: CLIENT, srcPort: 80, dstPort: 6000, flags: ACK });
    expect(decide(switchWith(), icmpError('203.0.113.1', VIP, 3, 4, out)).kind).toBe(KIND.LOCAL);
  });
});

describe('IP fragments', () => {
  it("later fragments follow the first fragment's decision", () => {
    const sw = switchWith();
    // An NFS WRITE-sized datagram: the handle sits in the first fragment, the data in the rest.
    const call = nfsCall(ganeshaHandle(2), 7);
    const payload = new Uint8Array(call.length + 300);
    payload.set(call);
    const parts = fragments(udp(2049, payload), 96);
    expect(parts.length).toBeGreaterThan(2);
    const first = decide(sw, parts[0]!);
    expect(first.kind).toBe(KIND.FORWARD);
    expect(first.node).toBe(3);
    for (const f of parts.slice(1)) {
      const d = decide(sw, f);
      expect(d.kind).toBe(KIND.FORWARD);
      expect(d.node).toBe(3);
    }
    expect(sw.counters.toJSON().events.fragment_followed).toBe(parts.length - 1);
  });

  it('a later fragment without its first is dropped, and so is one after the timeout', () => {
    const sw = switchWith();
    const parts = fragments(udp(53, new Uint8Array(200)), 64);
    expect(decide(sw, parts[1]!).reason).toBe(DROP.FRAGMENT_UNKNOWN);
    decide(sw, parts[0]!, 0);
    expect(decide(sw, parts[1]!, 29_999).kind).toBe(KIND.FORWARD);
    expect(decide(sw, parts[2]!, 30_000).reason).toBe(DROP.FRAGMENT_UNKNOWN);
  });

  it('the fragment memory is bounded', () => {
    const sw = switchWith();
    for (let id = 0; id < 200; id++)
      decide(
        sw,
        fragments(udp(53, new Uint8Array(100)), 64)[0]!.map((b, i) => (i === 5 ? id : b)),
      );
    expect(sw.counters.toJSON().events.fragment_evicted).toBeGreaterThan(0);
  });
});

describe('TCP MOUNT and NFS: delayed binding', () => {
  it('the gateway takes the flow until it is handed over; a dry run routes its record; then segments go spliced', () => {
    const sw = switchWith();
    expect(decide(sw, tcp(20048, SYN, 7000)).kind).toBe(KIND.LOCAL);
    const withRecord = (payload: Uint8Array, flags = ACK | TCP_FLAGS.PSH) =>
      tcpPacket({ src: CLIENT, dst: VIP, srcPort: 7000, dstPort: 20048, flags, payload });
    const rec = mountCall('/srv/home');
    const marked = new Uint8Array(4 + rec.length);
    new DataView(marked.buffer).setUint32(0, (0x80000000 | rec.length) >>> 0);
    marked.set(rec, 4);
    expect(decide(sw, withRecord(marked)).kind).toBe(KIND.LOCAL);
    const asked = sw.explain(withRecord(marked), { dryRun: true });
    expect(asked.decision).toMatchObject({ kind: 'forward', node: 3, port: 8082 });
    expect(decide(sw, tcp(20048, ACK, 7000)).kind).toBe(KIND.LOCAL);
    expect(sw.bindSplicedFlow(parseIpv4(CLIENT), 7000, parseIpv4(VIP), 20048, 3)).toBe(true);
    const later = decide(sw, tcp(20048, ACK, 7000));
    expect(later.kind).toBe(KIND.FORWARD);
    expect(later.node).toBe(3);
    expect(later.port).toBe(NO_PORT);
    expect(sw.explain(tcp(20048, ACK, 7000), { dryRun: true }).decision).toMatchObject({ spliced: true });
    expect(decide(sw, tcp(20048, ACK, 7001)).kind).toBe(KIND.LOCAL);
    // a new SYN on the same client port is a new connection: the gateway's again
    expect(decide(sw, tcp(20048, SYN, 7000)).kind).toBe(KIND.LOCAL);
    expect(decide(sw, tcp(20048, ACK, 7000)).kind).toBe(KIND.LOCAL);
  });

  it('refuses to bind where no TCP payload-routed entry is', () => {
    const sw = switchWith();
    expect(sw.bindSplicedFlow(parseIpv4(CLIENT), 7000, parseIpv4(VIP), 80, 3)).toBe(false);
    expect(sw.bindSplicedFlow(parseIpv4(CLIENT), 7000, parseIpv4(CLIENT), 20048, 3)).toBe(false);
  });
});

describe('connection flows across cluster addresses', () => {
  it('the same client port to two cluster addresses are two connections', () => {
    const sw = switchWith();
    decide(sw, tcp(80, SYN, 5000, VIP));
    expect(decide(sw, tcp(80, ACK, 5000, VIP2)).reason).toBe(DROP.NO_CONNECTION);
    expect(decide(sw, tcp(80, ACK, 5000, VIP)).kind).toBe(KIND.FORWARD);
  });
});

describe('decideBatch', () => {
  it('fills the per-packet arrays like decide', () => {
    const sw = switchWith();
    const pkts = [tcp(22, SYN), udp(20048, mountCall('/srv/home')), tcp(80, ACK), echoRequest(CLIENT, VIP)];
    const total = pkts.reduce((n, p) => n + p.length, 0);
    const buf = new Uint8Array(total + 3);
    const offsets = new Int32Array(pkts.length);
    const lengths = new Int32Array(pkts.length);
    let o = 3;
    pkts.forEach((p, i) => {
      buf.set(p, o);
      offsets[i] = o;
      lengths[i] = p.length;
      o += p.length;
    });
    const kinds = new Uint8Array(4);
    const nodes = new Int32Array(4);
    const ports = new Int32Array(4);
    const reasons = new Uint8Array(4);
    sw.decideBatch(buf, offsets, lengths, 4, 0, kinds, nodes, ports, reasons);
    expect([...kinds]).toEqual([KIND.FORWARD, KIND.FORWARD, KIND.DROP, KIND.LOCAL]);
    expect([...nodes]).toEqual([2, 3, -1, -1]);
    expect([...ports]).toEqual([-1, 8081, -1, -1]);
    expect([...reasons]).toEqual([0, 0, DROP.NO_CONNECTION, 0]);
  });

  it('never reads outside the buffer for bad offsets', () => {
    const sw = switchWith();
    const out = new DecisionOut();
    expect(sw.decide(new Uint8Array(10), 5, 20, 0, out)).toBe(KIND.DROP);
    expect(sw.decide(new Uint8Array(10), -1, 5, 0, out)).toBe(KIND.DROP);
  });
});

describe('snapshot swap', () => {
  it('keeps connection entries of entries that stay, drops state of removed entries', () => {
    const sw = switchWith();
    decide(sw, tcp(80, SYN, 5001));
    const node = decide(sw, tcp(80, ACK, 5001)).node;
    sw.load(configFrom(EXAMPLE_YAML));
    expect(decide(sw, tcp(80, ACK, 5001)).node).toBe(node);
    sw.load(configFrom(EXAMPLE_YAML.replace(/.*port: 80, function: connection.*\n/, '')));
    sw.load(configFrom(EXAMPLE_YAML));
    expect(decide(sw, tcp(80, ACK, 5001)).reason).toBe(DROP.NO_CONNECTION);
  });

  it('a node removed from the membership loses its flows', () => {
    const sw = switchWith();
    let node = -1;
    let port = 5100;
    while (node !== 4) node = decide(sw, tcp(80, SYN, ++port)).node;
    sw.load(
      configFrom(
        EXAMPLE_YAML.replace('  - { id: 4, name: n3, address: 198.18.0.13 }\n', '')
          .replace(/nodes: \[n1, n2, n3\]/g, 'nodes: [n1, n2]')
          .replace(/.*shared.*\n/, ''),
      ),
    );
    expect(decide(sw, tcp(80, ACK, port)).reason).toBe(DROP.NO_CONNECTION);
    expect(sw.counters.toJSON().events.conn_node_lost).toBe(1);
  });

  it('the version increases with every build', () => {
    const sw = new MessageSwitch();
    const a = sw.build(configFrom(EXAMPLE_YAML));
    const b = sw.build(configFrom(EXAMPLE_YAML));
    expect(b.version).toBeGreaterThan(a.version);
    expect(sw.snapshot).toBeNull();
    sw.swap(b);
    expect(sw.snapshot).toBe(b);
  });
});

describe('listFlows', () => {
  it('lists live flows of every table, filtered and limited', () => {
    const sw = switchWith();
    decide(sw, tcp(80, SYN, 5300), 1000);
    decide(sw, tcp(80, ACK, 5300), 1000);
    decide(sw, tcp(443, SYN, 5301), 1000);
    decide(sw, udp(53, undefined, 5302), 1000);
    const all = sw.listFlows({}, 2000);
    expect(all.total).toBe(3);
    const web = sw.listFlows({ protocol: 'tcp', port: 80 }, 2000);
    expect(web.flows).toEqual([
      {
        protocol: 'tcp',
        port: 80,
        function: 'connection',
        clientAddress: CLIENT,
        clientPort: 5300,
        clusterAddress: VIP,
        node: 2,
        nodeName: 'n1',
        state: 'established',
        expiresInMs: 899_000,
      },
    ]);
    expect(sw.listFlows({ limit: 1 }, 2000)).toMatchObject({ total: 3, flows: [{}] });
    expect(sw.listFlows({ nodeName: 'nobody' }, 2000).total).toBe(0);
    expect(sw.listFlows({}, 10_000_000).total).toBe(0); // all expired
  });
});

describe('FIN/RST rewrite nothing else', () => {
  it('FIN and RST still reach the node', () => {
    const sw = switchWith();
    const n = decide(sw, tcp(80, SYN, 5200)).node;
    expect(decide(sw, tcp(80, FIN | ACK, 5200)).node).toBe(n);
    expect(decide(sw, tcp(80, RST, 5200)).node).toBe(n);
  });
});
