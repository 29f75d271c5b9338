import { parseIpv6, TCP_FLAGS } from '@onehost/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecisionOut, KIND, NO_PORT } from './decision.js';
import { DROP } from './drop-reason.js';
import { maglevSlot6 } from './hash.js';
import { MessageSwitch } from './message-switch.js';
import { DEFAULT_MAGLEV_SIZE } from './tables/maglev.js';
import { configFrom, EXAMPLE_YAML } from './testing/example-config.js';
import {
  echo6Reply,
  fragments,
  fragments6,
  ganeshaHandle,
  icmp6Error,
  ipv6Packet,
  mountCall,
  nfsCall,
  tcp6Packet,
  tcpPacket,
  udp6Packet,
  udpPacket,
} from './testing/packet-builder.js';

// Dual stack: EXAMPLE_YAML's networks each get an IPv6 cluster address too (RFC 3849 documentation prefix).
const VIP6 = '2001:db8::10';
const VIP6B = '2001:db8::11';
const CLIENT6 = '2001:db8:1::5';
const DUAL = EXAMPLE_YAML.replace(
  '  - { network: second, address: 203.0.113.11 }',
  `  - { network: second, address: 203.0.113.11 }\n  - { network: outside, address: "${VIP6}" }\n  - { network: second, address: "${VIP6B}" }`,
);
const { SYN, ACK, FIN } = TCP_FLAGS;
// Node ids in EXAMPLE_YAML: gw 1, n1 2, n2 3, n3 4.
const N1 = 2;
const N2 = 3;
const N3 = 4;

function switchWith(yaml = DUAL): MessageSwitch {
  const sw = new MessageSwitch({ clock: () => 0 });
  sw.load(configFrom(yaml));
  return sw;
}

function decide(sw: MessageSwitch, pkt: Uint8Array, now = 0): DecisionOut {
  const out = new DecisionOut();
  sw.decide(pkt, 0, pkt.length, now, out);
  return out;
}

const tcp6 = (dstPort: number, flags: number, srcPort = 5555, src = CLIENT6, dst = VIP6, seq = 1000) =>
  tcp6Packet({ src, dst, srcPort, dstPort, flags, seq });
const udp6 = (dstPort: number, srcPort = 5555, src = CLIENT6, dst = VIP6) =>
  udp6Packet({ src, dst, srcPort, dstPort });

describe('IPv6 cluster addresses: Fig. 5 for IPv6 packets', () => {
  it('box 515: an IPv6 address that is not a cluster address is dropped', () => {
    const out = decide(switchWith(), tcp6(80, SYN, 5555, CLIENT6, '2001:db8::99'));
    expect([out.kind, out.reason]).toEqual([KIND.DROP, DROP.NOT_CLUSTER_ADDRESS]);
  });

  it('an IPv4-only table drops IPv6 packets as not ours', () => {
    const out = decide(switchWith(EXAMPLE_YAML), tcp6(80, SYN));
    expect([out.kind, out.reason]).toEqual([KIND.DROP, DROP.NOT_CLUSTER_ADDRESS]);
  });

  it('connection manager, round robin: SYNs go n1, n2, n3 and later segments follow their entry', () => {
    const sw = switchWith();
    const nodes = [1, 2, 3].map((i) => decide(sw, tcp6(80, SYN, 6000 + i)).node);
    expect(nodes).toEqual([N1, N2, N3]);
    for (let i = 1; i <= 3; i++) expect(decide(sw, tcp6(80, ACK, 6000 + i)).node).toBe(nodes[i - 1]);
    // a segment without an entry is discarded (Fig. 10), as for IPv4
    expect(decide(sw, tcp6(80, ACK, 7000)).reason).toBe(DROP.NO_CONNECTION);
  });

  it('the flow key is the whole 128-bit source: clients that differ only in their top bits keep their own nodes', () => {
    const sw = switchWith();
    const a = '2001:db8:1::5';
    const b = '2001:db8:2::5';
    const na = decide(sw, tcp6(80, SYN, 6000, a)).node;
    const nb = decide(sw, tcp6(80, SYN, 6000, b)).node;
    expect(na).not.toBe(nb);
    expect(decide(sw, tcp6(80, ACK, 6000, a)).node).toBe(na);
    expect(decide(sw, tcp6(80, ACK, 6000, b)).node).toBe(nb);
  });

  it('IPv4 and IPv6 flows with the same ports live apart, and each cluster address has its own entries', () => {
    const sw = switchWith();
    const v6 = decide(sw, tcp6(80, SYN, 6000)).node;
    const v4 = decide(
      sw,
      tcpPacket({ src: '203.0.113.5', dst: '203.0.113.10', srcPort: 6000, dstPort: 80, flags: SYN }),
    ).node;
    expect(v4).not.toBe(v6);
    expect(decide(sw, tcp6(80, ACK, 6000)).node).toBe(v6);
    expect(decide(sw, tcp6(80, ACK, 6000, CLIENT6, VIP6B)).reason).toBe(DROP.NO_CONNECTION);
  });

  it('maglev with rederive: an IPv6 segment without an entry is placed by its hash, the same on every switch', () => {
    const a = decide(switchWith(), tcp6(443, ACK, 6100)).node;
    const b = decide(switchWith(), tcp6(443, ACK, 6100)).node;
    expect(a).toBeGreaterThan(1);
    expect(b).toBe(a);
  });

  it('maglev and udp-flow place an IPv6 client by the slot the kernel fast path hashes it to', () => {
    const sw = switchWith();
    for (const pkt of [tcp6(443, SYN, 6150), udp6(53, 6151)]) {
      const e = sw.explain(pkt, { dryRun: true });
      // the client address sits at bytes 8-23 of the IPv6 header (RFC 8200 §3)
      const sport = (pkt[40]! << 8) | pkt[41]!;
      const slot = /maglev slot (\d+)/.exec(e.trace.join('\n'))?.[1];
      expect(Number(slot), e.trace.join('\n')).toBe(maglevSlot6(pkt, 8, sport, DEFAULT_MAGLEV_SIZE));
    }
  });

  it('least-conn counts IPv6 flows with the IPv4 ones', () => {
    const sw = switchWith();
    const picks: number[] = [];
    for (let i = 0; i < 3; i++) picks.push(decide(sw, tcp6(8080, SYN, 6200 + i)).node);
    expect(new Set(picks)).toEqual(new Set([N1, N2, N3]));
    // n1 closes: it has the fewest live flows once its entry is gone
    const v4 = decide(
      sw,
      tcpPacket({ src: '203.0.113.5', dst: '203.0.113.10', srcPort: 1, dstPort: 8080, flags: SYN }),
    ).node;
    expect(v4).toBe(N1);
    expect(decide(sw, tcp6(8080, SYN, 6300)).node).toBe(N2);
  });

  it('FIN keeps the entry for its grace period', () => {
    const sw = switchWith();
    const n = decide(sw, tcp6(80, SYN, 6400)).node;
    expect(decide(sw, tcp6(80, FIN | ACK, 6400)).node).toBe(n);
    expect(decide(sw, tcp6(80, ACK, 6400), 1000).node).toBe(n);
  });

  it('fixed entry: its node, its backup when the node is down', () => {
    expect(decide(switchWith(), tcp6(22, SYN)).node).toBe(N1);
    const down = DUAL.replace(
      'name: n1, address: 198.18.0.11',
      'name: n1, address: 198.18.0.11, state: down',
    );
    expect(decide(switchWith(down), tcp6(22, SYN)).node).toBe(N2);
    const local = decide(switchWith(), tcp6(25, SYN));
    expect(local.kind).toBe(KIND.LOCAL);
  });

  it("port blocks (boxes 545/550): replies to a node's own IPv6 connections reach the node owning the port", () => {
    const sw = switchWith();
    expect(decide(sw, tcp6(40500, SYN | ACK, 443)).node).toBe(N1);
    expect(decide(sw, udp6(41500, 53)).node).toBe(N2);
    expect(decide(sw, udp6(7000 /* port-block entry */, 53)).kind).toBe(KIND.LOCAL);
    // ICMPv6 echo replies by their identifier, as the agent maps a node's ping into its block
    expect(decide(sw, echo6Reply(CLIENT6, VIP6, 41001)).node).toBe(N2);
    // a port in no block is the gateway's
    expect(decide(sw, tcp6(50000, ACK, 443)).kind).toBe(KIND.LOCAL);
  });

  it('udp-flow: a flow sticks to its node; a second source may go elsewhere', () => {
    const sw = switchWith();
    const n = decide(sw, udp6(53, 7001)).node;
    expect(n).toBeGreaterThan(1);
    for (let i = 0; i < 5; i++) expect(decide(sw, udp6(53, 7001)).node).toBe(n);
    const listed = sw.listFlows({ protocol: 'udp', port: 53 }).flows;
    expect(listed).toEqual([
      expect.objectContaining({ clientAddress: CLIENT6, clientPort: 7001, clusterAddress: VIP6, node: n }),
    ]);
  });

  it("other ICMPv6 (echo requests) is the gateway host's", () => {
    const req = ipv6Packet(CLIENT6, VIP6, 58, new Uint8Array([128, 0, 0, 0, 0, 1, 0, 1]));
    expect(decide(switchWith(), req).kind).toBe(KIND.LOCAL);
  });

  it('an ICMPv6 error (Packet Too Big) goes where the flow it quotes goes', () => {
    const sw = switchWith();
    const n = decide(sw, tcp6(80, SYN, 6500)).node;
    // the quoted packet left the cluster: VIP6:80 → CLIENT6:6500
    const quoted = tcp6Packet({ src: VIP6, dst: CLIENT6, srcPort: 80, dstPort: 6500, flags: ACK });
    const ptb = icmp6Error('2001:db8:ff::1', VIP6, 2, 0, quoted, 1280);
    const out = decide(sw, ptb);
    expect([out.kind, out.node]).toEqual([KIND.FORWARD, n]);
    const unknown = icmp6Error(
      '2001:db8:ff::1',
      VIP6,
      2,
      0,
      tcp6Packet({ src: VIP6, dst: CLIENT6, srcPort: 80, dstPort: 1, flags: ACK }),
      1280,
    );
    expect(decide(sw, unknown).reason).toBe(DROP.ICMP_UNKNOWN_FLOW);
  });

  it('an atomic fragment (RFC 6946: offset 0, M clear) is routed as the whole packet it is', () => {
    const atomic = tcp6Packet({
      src: CLIENT6,
      dst: VIP6,
      srcPort: 1,
      dstPort: 22,
      flags: SYN,
      exts: [{ type: 44, fragment: { offset: 0, more: false, id: 7 } }],
    });
    expect(decide(switchWith(), atomic).node).toBe(N1);
  });

  it('extension headers are walked to the TCP header; a hostile chain is dropped and counted by name', () => {
    const sw = switchWith();
    const ok = tcp6Packet({
      src: CLIENT6,
      dst: VIP6,
      srcPort: 1,
      dstPort: 22,
      flags: SYN,
      exts: [{ type: 0 }, { type: 60 }, { type: 43 }, { type: 60 }],
    });
    expect(decide(sw, ok).node).toBe(N1);
    const long = tcp6Packet({
      src: CLIENT6,
      dst: VIP6,
      srcPort: 1,
      dstPort: 22,
      flags: SYN,
      exts: Array.from({ length: 7 }, () => ({ type: 60 })),
    });
    expect(decide(sw, long).reason).toBe(DROP.MALFORMED);
    const hbhLate = tcp6Packet({
      src: CLIENT6,
      dst: VIP6,
      srcPort: 1,
      dstPort: 22,
      flags: SYN,
      exts: [{ type: 60 }, { type: 0 }],
    });
    expect(decide(sw, hbhLate).reason).toBe(DROP.MALFORMED);
    expect(sw.counters.toJSON().wireErrors).toEqual({
      ipv6_too_many_ext_headers: 1,
      ipv6_hop_by_hop_not_first: 1,
    });
  });

  it('decideDry decides what explain’s dry run does, and touches no table either', () => {
    const sw = switchWith();
    const out = new DecisionOut();
    for (let i = 0; i < 3; i++) {
      expect(sw.decideDry(tcp6(80, SYN, 6600 + i), 0, tcp6(80, SYN, 6600 + i).length, out)).toBe(
        KIND.FORWARD,
      );
      expect(out.node).toBe(N1);
      expect(sw.explain(tcp6(80, SYN, 6600 + i), { dryRun: true }).decision).toMatchObject({
        kind: 'forward',
        nodeName: 'n1',
      });
    }
    // the round robin's counter did not move, and no connection was made
    expect(decide(sw, tcp6(80, SYN, 6700)).node).toBe(N1);
    expect(decide(sw, tcp6(80, SYN, 6701)).node).toBe(N2);
    // a segment of no connection: the same answer either way
    const ack = tcp6(80, ACK, 6600);
    const kinds = { [KIND.FORWARD]: 'forward', [KIND.LOCAL]: 'local', [KIND.DROP]: 'drop' } as Record<
      number,
      string
    >;
    expect(kinds[sw.decideDry(ack, 0, ack.length, out)]).toBe(
      sw.explain(ack, { dryRun: true }).decision.kind,
    );
  });

  it('explain traces an IPv6 packet through the same boxes and describes it', () => {
    const sw = switchWith();
    const e = sw.explain(tcp6(80, SYN, 6600), { dryRun: true });
    expect(e.decision).toMatchObject({ kind: 'forward', nodeName: 'n1' });
    expect(e.trace[0]).toBe(`515 ${VIP6} is the IPv6 cluster address of outside (default)`);
    expect(e.trace).toContain('535 tcp/80 hit → 565 connection');
    expect(e.packet).toMatchObject({
      protocol: 'tcp',
      src: CLIENT6,
      dst: VIP6,
      srcPort: 6600,
      dstPort: 80,
      flags: 'SYN',
    });
    // a dry run changed nothing
    expect(decide(sw, tcp6(80, SYN, 6601)).node).toBe(N1);
    const mount = sw.explain(tcp6(20048, SYN));
    expect(mount.decision).toMatchObject({ kind: 'local' });
    expect(mount.trace.at(-1)).toBe('mount: TCP flow not handed over yet → the gateway (delayed binding)');
    const mnt = sw.explain(
      udp6Packet({
        src: CLIENT6,
        dst: VIP6,
        srcPort: 700,
        dstPort: 20048,
        payload: mountCall('/srv/home/a'),
      }),
    );
    expect(mnt.decision).toMatchObject({ kind: 'forward', nodeName: 'n2', port: 8081 });
    expect(mnt.trace).toContain(
      'mount: MNT "/srv/home/a" → export /srv/home (825) → n2, mountd port 8081 (claim 3)',
    );
  });

  it('a table swap keeps IPv6 flows, as it keeps IPv4 ones', () => {
    const sw = switchWith();
    const n = decide(sw, tcp6(80, SYN, 6700)).node;
    sw.load(configFrom(DUAL));
    expect(decide(sw, tcp6(80, ACK, 6700)).node).toBe(n);
  });
});

describe('MOUNT, NFS and the portmapper over IPv6', () => {
  const call6 = (dstPort: number, payload: Uint8Array, srcPort = 700) =>
    udp6Packet({ src: CLIENT6, dst: VIP6, srcPort, dstPort, payload });

  it('UDP MOUNT: MNT and UMNT follow the longest export to its node, the port rewritten to its mountd (claim 3)', () => {
    const sw = switchWith();
    const cases: [string, number, number, number][] = [
      ['/srv/home/alice', 1, N2, 8081],
      ['/srv/home/shared/x', 1, N3, NO_PORT],
      ['/srv/projects', 1, N1, NO_PORT],
      ['/srv/projects/x', 3, N1, NO_PORT],
    ];
    for (const [path, proc, node, port] of cases) {
      const out = decide(sw, call6(20048, mountCall(path, proc)));
      expect([out.kind, out.node, out.port], path).toEqual([KIND.FORWARD, node, port]);
    }
  });

  it("UDP MOUNT: NULL, EXPORT, unmatched paths and what it cannot read are the gateway's, as over IPv4", () => {
    const sw = switchWith();
    for (const payload of [
      mountCall('', 0),
      mountCall('', 5),
      mountCall('/srv/projectsX'),
      new Uint8Array(7),
    ])
      expect(decide(sw, call6(20048, payload)).kind).toBe(KIND.LOCAL);
  });

  it('UDP NFS: the handle’s export id names the node; NULL and unknown ids go to the gateway', () => {
    const sw = switchWith();
    expect(decide(sw, call6(2049, nfsCall(ganeshaHandle(2)))).node).toBe(N2);
    expect(decide(sw, call6(2049, nfsCall(ganeshaHandle(1), 6))).node).toBe(N1);
    expect(decide(sw, call6(2049, nfsCall(ganeshaHandle(3)))).port).toBe(NO_PORT);
    expect(decide(sw, call6(2049, nfsCall(ganeshaHandle(77)))).kind).toBe(KIND.LOCAL);
    expect(decide(sw, call6(2049, nfsCall(new Uint8Array(0), 0))).kind).toBe(KIND.LOCAL);
  });

  it('a fragmented NFS call follows its first fragment (which holds the handle) to the node', () => {
    const sw = switchWith();
    const call = nfsCall(ganeshaHandle(2), 7);
    const big = new Uint8Array(call.length + 600);
    big.set(call);
    const parts = fragments6(call6(2049, big), 256, 0x1234);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.map((f) => decide(sw, f).node)).toEqual(parts.map(() => N2));
  });

  it('the portmapper is the gateway’s over IPv6 too', () => {
    const out = decide(switchWith(), udp6(111));
    expect(out.kind).toBe(KIND.LOCAL);
  });

  it('MOUNT and NFS over TCP: the gateway holds the flow, a dry run routes its record, a handed-over flow goes spliced', () => {
    const sw = switchWith();
    const bytes6 = (a: string) => parseIpv6(a);
    for (const port of [20048, 2049]) {
      expect(decide(sw, tcp6(port, SYN, 7000)).kind).toBe(KIND.LOCAL);
      expect(decide(sw, tcp6(port, ACK, 7000)).kind).toBe(KIND.LOCAL);
    }
    const rec = mountCall('/srv/home/a');
    const marked = new Uint8Array(4 + rec.length);
    new DataView(marked.buffer).setUint32(0, (0x80000000 | rec.length) >>> 0);
    marked.set(rec, 4);
    const withRecord = tcp6Packet({
      src: CLIENT6,
      dst: VIP6,
      srcPort: 7000,
      dstPort: 20048,
      flags: ACK | TCP_FLAGS.PSH,
      payload: marked,
    });
    expect(decide(sw, withRecord).kind).toBe(KIND.LOCAL);
    expect(sw.explain(withRecord, { dryRun: true }).decision).toMatchObject({
      kind: 'forward',
      node: N2,
      port: 8082,
    });
    expect(sw.bindSplicedFlow6(bytes6(CLIENT6), 7000, bytes6(VIP6), 2049, N1)).toBe(true);
    const later = decide(sw, tcp6(2049, ACK, 7000));
    expect([later.kind, later.node, later.spliced]).toEqual([KIND.FORWARD, N1, true]);
    expect(sw.explain(tcp6(2049, ACK, 7000), { dryRun: true }).trace.at(-2)).toBe(
      `nfs: TCP flow [${CLIENT6}]:7000 handed over to n1 → its agent`,
    );
    // another client port, another cluster address, the IPv4 twin: not bound
    expect(decide(sw, tcp6(2049, ACK, 7001)).kind).toBe(KIND.LOCAL);
    expect(decide(sw, tcp6(2049, ACK, 7000, CLIENT6, VIP6B)).kind).toBe(KIND.LOCAL);
    // a new SYN on the same client port is a new connection: the gateway's again
    expect(decide(sw, tcp6(2049, SYN, 7000)).kind).toBe(KIND.LOCAL);
    expect(decide(sw, tcp6(2049, ACK, 7000)).kind).toBe(KIND.LOCAL);
    expect(sw.bindSplicedFlow6(bytes6(CLIENT6), 7000, bytes6(CLIENT6), 2049, N1)).toBe(false);
    expect(sw.bindSplicedFlow6(bytes6(CLIENT6), 7000, bytes6(VIP6), 80, N1)).toBe(false);
    expect(sw.counters.drops[DROP.IPV6_UNSUPPORTED]).toBe(0);
  });

  it('an ICMPv6 error quoting a MOUNT datagram goes to the gateway (the quote holds no call)', () => {
    const sw = switchWith();
    const quoted = udp6Packet({ src: VIP6, dst: CLIENT6, srcPort: 20048, dstPort: 700 });
    expect(decide(sw, icmp6Error(CLIENT6, VIP6, 1, 4, quoted)).kind).toBe(KIND.LOCAL);
  });
});

describe('IPv6 properties', () => {
  const addr = fc
    .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 6, maxLength: 6 })
    .map((g) => `2001:db8:${g.map((x) => x.toString(16)).join(':')}`);

  it('every SYN creates a flow whose later segments reach the same node; explain agrees without changing it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(addr, fc.integer({ min: 1024, max: 65535 })), { minLength: 1, maxLength: 40 }),
        (clients) => {
          const sw = switchWith();
          const seen = new Map<string, number>();
          for (const [src, port] of clients) {
            const key = `${src}/${port}`;
            // a repeated (source, port) starts its connection again: the last SYN's node counts
            seen.set(key, decide(sw, tcp6(80, SYN, port, src)).node);
          }
          for (const [key, node] of seen) {
            const [src, port] = key.split('/') as [string, string];
            const e = sw.explain(tcp6(80, ACK, Number(port), src), { dryRun: true });
            expect(e.decision).toMatchObject({ kind: 'forward', node });
            expect(decide(sw, tcp6(80, ACK, Number(port), src)).node).toBe(node);
          }
          expect(sw.listFlows({ port: 80 }).total).toBe(seen.size);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('round robin spreads IPv6 SYNs evenly: counts per node differ by at most one', () => {
    fc.assert(
      fc.property(fc.uniqueArray(addr, { minLength: 1, maxLength: 60 }), (srcs) => {
        const sw = switchWith();
        const count = new Map<number, number>();
        for (const s of srcs) {
          const n = decide(sw, tcp6(80, SYN, 4000, s)).node;
          count.set(n, (count.get(n) ?? 0) + 1);
        }
        const c = [N1, N2, N3].map((n) => count.get(n) ?? 0);
        expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 100 },
    );
  });

  it('no byte string makes decide throw, and its decision is well formed', () => {
    const sw = switchWith();
    const base = tcp6(80, SYN);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(base.length),
        (edits, cut) => {
          const b = base.slice(0, Math.max(cut, 1));
          for (const [i, v] of edits) if (i < b.length) b[i] = v;
          b[0] = (b[0]! & 0x0f) | 0x60;
          const out = decide(sw, b);
          expect([KIND.FORWARD, KIND.LOCAL, KIND.DROP]).toContain(out.kind);
          if (out.kind !== KIND.DROP) expect(out.reason).toBe(0);
          if (out.kind === KIND.FORWARD) expect(out.port).toBe(NO_PORT);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('IPv6 fragments follow their first fragment (RFC 8200 §4.5)', () => {
  /** a UDP datagram of `size` payload bytes from CLIENT6:srcPort, split into fragments of 96 bytes */
  const datagram = (dstPort: number, srcPort: number, id: number, size = 600, src = CLIENT6, dst = VIP6) =>
    fragments6(udp6Packet({ src, dst, srcPort, dstPort, payload: new Uint8Array(size).fill(0x61) }), 96, id);

  it('udp-flow: the first fragment is placed by its ports, and every later one goes to the same node', () => {
    const whole = decide(switchWith(), udp6(53, 7100)).node;
    const sw = switchWith();
    const parts = datagram(53, 7100, 0x80000007);
    expect(parts.length).toBe(7);
    const got = parts.map((f) => decide(sw, f));
    expect(got.map((d) => [d.kind, d.node, d.port])).toEqual(parts.map(() => [KIND.FORWARD, whole, NO_PORT]));
    const c = sw.counters.toJSON();
    expect([c.events.fragment_remembered, c.events.fragment_followed]).toEqual([1, 6]);
    // the flow is the datagram's: a later unfragmented datagram from that port sticks to it
    expect(decide(sw, udp6(53, 7100)).node).toBe(whole);
  });

  it('the datagrams of several sources spread as udp-flow places them; each stays whole on its node', () => {
    const sw = switchWith();
    const alone = switchWith();
    const seen = new Set<number>();
    for (let port = 7200; port < 7212; port++) {
      const n = decide(alone, udp6(53, port)).node;
      seen.add(n);
      const parts = datagram(53, port, port);
      // the later fragments first would be dropped: send them after the first, interleaved with others
      for (const f of parts) expect(decide(sw, f).node).toBe(n);
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('a drop decided for the first fragment is the decision for the rest (an ACK of no connection)', () => {
    const sw = switchWith();
    const first = tcp6Packet({
      src: CLIENT6,
      dst: VIP6,
      srcPort: 5555,
      dstPort: 80,
      flags: ACK,
      payload: new Uint8Array(64),
    });
    const parts = fragments6(first, 32, 9);
    expect(parts.map((f) => decide(sw, f).reason)).toEqual(parts.map(() => DROP.NO_CONNECTION));
    expect(sw.counters.drops[DROP.NO_CONNECTION]).toBe(parts.length);
  });

  it('a later fragment before its first, or after the timeout, is dropped as fragment_unknown', () => {
    const sw = switchWith();
    const parts = datagram(53, 7300, 5);
    expect(decide(sw, parts[1]!).reason).toBe(DROP.FRAGMENT_UNKNOWN);
    expect(decide(sw, parts[0]!, 0).kind).toBe(KIND.FORWARD);
    expect(decide(sw, parts[1]!, 29_999).kind).toBe(KIND.FORWARD);
    expect(decide(sw, parts[2]!, 30_000).reason).toBe(DROP.FRAGMENT_UNKNOWN);
    expect(sw.counters.drops[DROP.FRAGMENT_UNKNOWN]).toBe(2);
  });

  it('the key is source, destination and the 32-bit identification: a change in any one finds nothing', () => {
    const sw = switchWith();
    decide(sw, datagram(53, 7400, 0x00010007)[0]!);
    const later = (id: number, src = CLIENT6, dst = VIP6) =>
      decide(sw, datagram(53, 7400, id, 600, src, dst)[1]!);
    expect(later(0x00010007).kind).toBe(KIND.FORWARD);
    // the identification's upper half counts (IPv4's is 16 bits)
    expect(later(0x00020007).reason).toBe(DROP.FRAGMENT_UNKNOWN);
    expect(later(0x00010007, '2001:db8:1::6').reason).toBe(DROP.FRAGMENT_UNKNOWN);
    expect(later(0x00010007, CLIENT6, VIP6B).reason).toBe(DROP.FRAGMENT_UNKNOWN);
    // and an IPv4 datagram with that identification is another datagram
    const v4 = fragments(
      udpPacket({
        src: '203.0.113.5',
        dst: '203.0.113.10',
        srcPort: 7400,
        dstPort: 53,
        payload: new Uint8Array(200),
      }),
      64,
    ).map((f) => f.map((b, i) => (i === 4 ? 0 : i === 5 ? 7 : b)));
    expect(decide(sw, v4[1]!).reason).toBe(DROP.FRAGMENT_UNKNOWN);
  });

  it('a first fragment that cuts the TCP header short is malformed (RFC 7112 §5), and its later ones are unknown', () => {
    const sw = switchWith();
    const parts = fragments6(
      tcp6Packet({
        src: CLIENT6,
        dst: VIP6,
        srcPort: 1,
        dstPort: 22,
        flags: SYN,
        payload: new Uint8Array(40),
      }),
      8,
      11,
    );
    expect(decide(sw, parts[0]!).reason).toBe(DROP.MALFORMED);
    expect(decide(sw, parts[1]!).reason).toBe(DROP.FRAGMENT_UNKNOWN);
    expect(sw.counters.toJSON().wireErrors).toEqual({ ipv6_header_chain_incomplete: 1 });
  });

  it('a second Fragment header is hostile: dropped, counted by name, nothing remembered', () => {
    const sw = switchWith();
    const twice = udp6Packet({
      src: CLIENT6,
      dst: VIP6,
      srcPort: 7500,
      dstPort: 53,
      exts: [
        { type: 44, fragment: { offset: 0, more: true, id: 3 } },
        { type: 44, fragment: { offset: 0, more: true, id: 3 } },
      ],
    });
    expect(decide(sw, twice).reason).toBe(DROP.MALFORMED);
    expect(sw.counters.toJSON().wireErrors).toEqual({ ipv6_second_fragment_header: 1 });
    expect(sw.counters.toJSON().events.fragment_remembered).toBeUndefined();
  });

  it('the memory is bounded per family: an old datagram is evicted and counted', () => {
    const sw = switchWith();
    for (let id = 0; id < 200; id++) decide(sw, datagram(53, 7600, id)[0]!);
    expect(sw.counters.toJSON().events.fragment_evicted).toBe(200 - 64);
    expect(decide(sw, datagram(53, 7600, 199)[1]!).kind).toBe(KIND.FORWARD);
  });

  it('explain says which datagram a fragment belongs to and that it follows its first; a dry run remembers nothing', () => {
    const sw = switchWith();
    const parts = datagram(53, 7700, 4_000_000_000);
    sw.explain(parts[0]!, { dryRun: true });
    expect(decide(sw, parts[1]!).reason).toBe(DROP.FRAGMENT_UNKNOWN);
    const first = sw.explain(parts[0]!);
    expect(first.trace).toContain(
      'first fragment of datagram id 4000000000: decision remembered for the rest',
    );
    expect(first.packet?.fragment).toBe('id 4000000000, first, more');
    const later = sw.explain(parts[1]!, { dryRun: true });
    expect(later.decision).toEqual(first.decision);
    expect(later.trace).toEqual([
      `515 ${VIP6} is the IPv6 cluster address of outside (default)`,
      'later fragment of datagram id 4000000000 follows its first fragment',
    ]);
  });
});

describe('explainFlow over IPv6', () => {
  it('answers for a described IPv6 flow as for the same packet', () => {
    const sw = switchWith();
    const q = { protocol: 'tcp' as const, src: CLIENT6, dst: VIP6, srcPort: 40000, dstPort: 443 };
    const e = sw.explainFlow(q);
    expect(e.decision).toEqual(sw.explain(tcp6(443, SYN, 40000), { dryRun: true }).decision);
    expect(e.decision.kind).toBe('forward');
    expect(e.trace[0]).toBe(`515 ${VIP6} is the IPv6 cluster address of outside (default)`);
    expect(e.packet).toMatchObject({ protocol: 'tcp', src: CLIENT6, dst: VIP6, dstPort: 443 });
  });
});
