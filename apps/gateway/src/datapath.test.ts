import { DecisionOut, MessageSwitch } from '@onehost/switch';
import {
  configFrom,
  fragments6,
  icmp6Packet,
  ipv6Packet,
  mountCall,
  tcp6Packet,
  tcpPacket,
  udp6Packet,
  udpPacket,
} from '@onehost/switch/testing';
import { type Destination, META_STRIDE } from '@onehost/tun';
import {
  checksum,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  Icmp6View,
  IcmpView,
  IPPROTO,
  Ipv4View,
  Ipv6View,
  OK,
  parseIpv4,
  parseIpv6,
  parseMac,
  pseudoHeaderSum6,
  put16,
  TCP_FLAGS,
  u32,
  writeTcpHeader,
  writeVxlanPrefix,
} from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { Datapath, type DatapathOptions, type NodeEndpoint } from './datapath.js';
import { DATAPATH_DROP, DATAPATH_DROPS } from './drops.js';
import type { BatchHandler, PacketSink, PacketSource } from './packet-io.js';
import { SpliceWing } from './splice/wing.js';
import { checksumsOk, segment, tcpOf, udpOf, withDf } from './testing/packets.test-util.js';

const VIP = '203.0.113.10';
const CLIENT = '203.0.113.7';
const GATEWAY_MAC = '02:6f:68:00:00:01';
/** The interconnect MTU of these tests: inner packets up to 1350 bytes, MSS up to 1310. */
const MTU = 1400;

const CONFIG = `
gateway: gw
clusterAddresses:
  - { network: outside, address: ${VIP}, default: true }
nodes:
  - { id: 1, name: gw, address: 198.18.0.1 }
  - { id: 2, name: n1, address: 198.18.0.11, mountd: { udp: 20048, tcp: 20048 } }
  - { id: 3, name: n2, address: 198.18.0.12, mountd: { udp: 8081, tcp: 8082 } }
  - { id: 4, name: n3, address: 198.18.0.13 }
exports:
  - { path: /srv/projects, node: n1, exportId: 1 }
  - { path: /srv/home, node: n2, exportId: 2 }
entries:
  - { protocol: tcp, port: 22, function: fixed, node: n1 }
  - { protocol: tcp, port: 23, function: fixed, node: n3 }
  - { protocol: tcp, port: 25, function: fixed, node: gw }
  - { protocol: udp, port: 53, function: fixed, node: n1 }
  - { protocol: udp, port: 20048, function: mount }
  - { protocol: tcp, port: 20048, function: mount, maxEntries: 64 }
  - { protocol: tcp, port: 2049, function: nfs, maxEntries: 64 }
`;

/** n1 and n2 have endpoints; n3 (id 4) has none. */
const NODES: NodeEndpoint[] = [
  { id: 2, address: '198.18.0.11', mac: '02:00:00:00:00:02' },
  { id: 3, address: '198.18.0.12', mac: '02:00:00:00:00:03' },
];
/** Rows per node with the wing: VXLAN, the agent's segments, handovers. */
const N1_VXLAN = 0;
const N2_VXLAN = 3;
const N2_AGENT = 4;

/**
 * FakeSource is a TUN queue in memory: batches wait in it until pumped, one arena serves every batch
 * (as the TUN's does), and nothing is delivered while paused.
 */
class FakeSource implements PacketSource {
  handler: BatchHandler | null = null;
  maxBatch = 0;
  paused = false;
  pauses = 0;
  resumes = 0;
  delivered = 0;
  /** false: count local packets without keeping them (no allocation) */
  record = true;
  localCount = 0;
  readonly local: Buffer[] = [];
  private readonly waiting: Uint8Array[][] = [];
  private readonly arena = Buffer.alloc(64 * 2048);
  private readonly meta = new Int32Array(64 * META_STRIDE);

  constructor(private readonly events: string[] = []) {}

  receive(handler: BatchHandler, maxBatch: number): void {
    this.handler = handler;
    this.maxBatch = maxBatch;
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
    this.resumes++;
  }
  writeLocal(arena: Uint8Array, meta: Int32Array, start: number, end: number): number {
    this.localCount += end - start;
    if (!this.record) return end;
    for (let i = start; i < end; i++) this.local.push(copy(arena, meta, i));
    this.events.push(`local ${end - start}`);
    return end;
  }

  /** queue adds batches; pump delivers them while not paused. */
  queue(...batches: Uint8Array[][]): this {
    this.waiting.push(...batches);
    return this;
  }
  pump(): void {
    while (!this.paused && this.waiting.length > 0) {
      const packets = this.waiting.shift()!;
      if (this.handler === null || packets.length > this.maxBatch)
        throw new Error('not receiving, or too many');
      let at = 0;
      packets.forEach((p, i) => {
        this.arena.set(p, at);
        this.meta[i * META_STRIDE] = at;
        this.meta[i * META_STRIDE + 1] = p.length;
        at += (p.length + 15) & ~15;
      });
      this.delivered++;
      this.handler(packets.length, this.arena, this.meta);
    }
  }
  /** batch delivers one batch now. */
  batch(...packets: Uint8Array[]): void {
    this.queue(packets).pump();
  }
}

interface Sent {
  row: number;
  sport: number;
  bytes: Buffer;
}

/** FakeSink records what it is given; `room` packets fit until `drain` (Infinity: all). */
class FakeSink implements PacketSink {
  table: readonly Destination[] = [];
  room = Number.POSITIVE_INFINITY;
  /** false: count sent packets without keeping them (no allocation) */
  record = true;
  udpCount = 0;
  readonly udp: Sent[] = [];
  readonly ip: Buffer[] = [];
  readonly writable: Array<() => void> = [];

  constructor(private readonly events: string[] = []) {}

  setDestinations(table: readonly Destination[]): void {
    this.table = table;
  }
  sendUdp(
    arena: Uint8Array,
    meta: Int32Array,
    start: number,
    end: number,
    dst: Int32Array,
    sport?: Int32Array | null,
  ): number {
    if (this.record) this.events.push('udp');
    for (let i = start; i < end; i++) {
      if (dst[i]! < 0) continue;
      if (this.room <= 0) return i;
      this.room--;
      this.udpCount++;
      if (this.record) this.udp.push({ row: dst[i]!, sport: sport?.[i] ?? 0, bytes: copy(arena, meta, i) });
    }
    return end;
  }
  sendIp(arena: Uint8Array, meta: Int32Array, start: number, end: number): number {
    for (let i = start; i < end; i++) this.ip.push(copy(arena, meta, i));
    return end;
  }
  onWritable(callback: () => void): void {
    this.writable.push(callback);
  }
  /** drain makes room for `n` packets and wakes whoever waits. */
  drain(n: number): void {
    this.room = n;
    const cb = this.writable.shift();
    if (cb === undefined) throw new Error('nothing waits for the sink');
    cb();
  }
}

function copy(arena: Uint8Array, meta: Int32Array, i: number): Buffer {
  const off = meta[i * META_STRIDE]!;
  return Buffer.from(arena.subarray(off, off + meta[i * META_STRIDE + 1]!));
}

interface Setup {
  dp: Datapath;
  sw: MessageSwitch;
  source: FakeSource;
  sink: FakeSink;
  wing: SpliceWing;
  events: string[];
  now: { t: number };
}

function setup({
  withWing = true,
  config = CONFIG,
  ...o
}: Partial<DatapathOptions> & { withWing?: boolean; config?: string } = {}): Setup {
  const now = { t: 1000 };
  const sw = new MessageSwitch({ clock: () => now.t });
  sw.load(configFrom(config));
  const events: string[] = [];
  const source = new FakeSource(events);
  const sink = new FakeSink(events);
  const wing = new SpliceWing({ sink, port: 7472 });
  const dp = new Datapath({
    sw,
    source,
    sink,
    interconnectMtu: MTU,
    vni: 4242,
    vxlanPort: 4789,
    gatewayMac: GATEWAY_MAC,
    maxBatch: 64,
    clock: () => now.t,
    ...(withWing ? { splice: wing } : {}),
    ...o,
  });
  dp.setNodes(NODES);
  dp.start();
  return { dp, sw, source, sink, wing, events, now };
}

const drop = (dp: Datapath) =>
  Object.fromEntries(DATAPATH_DROPS.map((name) => [name, dp.drops[DATAPATH_DROP[name]]]));
const noDrops = { no_destination: 0, too_big: 0, send_backpressure: 0, icmp_rate_limited: 0 };

const ack = (dstPort: number, o: { srcPort?: number; seq?: number; flags?: number } = {}) =>
  tcpPacket({
    src: CLIENT,
    dst: VIP,
    srcPort: o.srcPort ?? 7000,
    dstPort,
    flags: o.flags ?? TCP_FLAGS.ACK,
    seq: o.seq ?? 1,
  });
const udp = (dstPort: number, size: number, df = true) => {
  const p = udpPacket({ src: CLIENT, dst: VIP, srcPort: 5000, dstPort, payload: new Uint8Array(size - 28) });
  return df ? withDf(p) : p;
};

describe('Datapath destination table', () => {
  it('has per node its VXLAN row, then the agent rows the wing asks for; only nodes it knows get rows', () => {
    const { sink } = setup();
    const prefix = (mac: string, etherType = ETHERTYPE_IPV4) => {
      const p = new Uint8Array(22);
      writeVxlanPrefix(p, 0, 4242, parseMac(mac), parseMac(GATEWAY_MAC), etherType);
      return p;
    };
    expect(sink.table).toEqual([
      { address: '198.18.0.11', port: 4789, prefix: prefix('02:00:00:00:00:02') },
      { address: '198.18.0.11', port: 7472, prefix: Uint8Array.of(2) },
      { address: '198.18.0.11', port: 7472 },
      { address: '198.18.0.12', port: 4789, prefix: prefix('02:00:00:00:00:03') },
      { address: '198.18.0.12', port: 7472, prefix: Uint8Array.of(2) },
      { address: '198.18.0.12', port: 7472 },
      // then per node its row for inner IPv6 (EtherType 0x86dd)
      { address: '198.18.0.11', port: 4789, prefix: prefix('02:00:00:00:00:02', ETHERTYPE_IPV6) },
      { address: '198.18.0.12', port: 4789, prefix: prefix('02:00:00:00:00:03', ETHERTYPE_IPV6) },
    ]);
  });

  it('without the wing has one row per node', () => {
    const { sink } = setup({ withWing: false });
    expect(sink.table.map((d) => `${d.address}:${d.port}`)).toEqual([
      '198.18.0.11:4789',
      '198.18.0.12:4789',
      '198.18.0.11:4789',
      '198.18.0.12:4789',
    ]);
  });

  it('keeps the old table when a node has a bad MAC or address', () => {
    const { dp, sink, source } = setup();
    const before = sink.table;
    expect(() => dp.setNodes([{ id: 2, address: '198.18.0.99', mac: 'zz' }])).toThrow();
    expect(() => dp.setNodes([{ id: 2, address: '198.18.0.999', mac: '02:00:00:00:00:09' }])).toThrow();
    expect(sink.table).toBe(before);
    source.batch(ack(22));
    expect(sink.udp.map((s) => s.row)).toEqual([N1_VXLAN]);
  });
});

describe('Datapath forwarding', () => {
  it('sends each packet to its node VXLAN row, untouched, and counts packets and bytes by node', () => {
    const { dp, source, sink, events } = setup();
    const a = ack(22);
    const b = udp(53, 300);
    const c = udpPacket({
      src: CLIENT,
      dst: VIP,
      srcPort: 700,
      dstPort: 20048,
      payload: mountCall('/srv/projects'),
    });
    source.batch(a, b, c);
    expect(sink.udp).toEqual([
      { row: N1_VXLAN, sport: 0, bytes: Buffer.from(a) },
      { row: N1_VXLAN, sport: 0, bytes: Buffer.from(b) },
      { row: N1_VXLAN, sport: 0, bytes: Buffer.from(c) },
    ]);
    expect(events).toEqual(['udp']);
    expect([dp.packetsByNode[2], dp.bytesByNode[2], dp.packetsByNode[3], dp.batches[0]]).toEqual([
      3,
      a.length + b.length + c.length,
      0,
      1,
    ]);
    expect([dp.localPackets[0], dp.mssClamped[0], sink.ip.length]).toEqual([0, 0, 0]);
    expect(drop(dp)).toEqual(noDrops);
  });

  it('rewrites the destination port when the routing function says so (box 570), checksum updated', () => {
    const { dp, source, sink } = setup();
    const mnt = udpPacket({
      src: CLIENT,
      dst: VIP,
      srcPort: 700,
      dstPort: 20048,
      payload: mountCall('/srv/home'),
    });
    source.batch(mnt);
    expect(sink.udp.map((s) => s.row)).toEqual([N2_VXLAN]);
    const sent = sink.udp[0]!.bytes;
    expect(udpOf(sent).dstPort).toBe(8081);
    expect(checksumsOk(sent)).toBe(true);
    // Only the port (and its checksum) changed.
    const expected = Buffer.from(mnt);
    expected.writeUInt16BE(8081, 22);
    expected.writeUInt16BE(sent.readUInt16BE(26), 26);
    expect(sent).toEqual(expected);
    expect([dp.packetsByNode[3], dp.bytesByNode[3]]).toEqual([1, mnt.length]);
  });

  it('clamps the MSS of SYNs to the interconnect (MTU - 50 - 40), leaves a smaller one alone', () => {
    const { dp, source, sink } = setup();
    const syn = (mss: number) =>
      segment({ src: CLIENT, dst: VIP, srcPort: 7000, dstPort: 22, flags: TCP_FLAGS.SYN, mss });
    const small = syn(1200);
    source.batch(syn(1460), small, syn(1311), syn(1310));
    expect(sink.udp.map((s) => tcpOf(s.bytes).mss())).toEqual([1310, 1200, 1310, 1310]);
    expect(sink.udp.every((s) => checksumsOk(s.bytes))).toBe(true);
    expect(sink.udp[1]!.bytes).toEqual(Buffer.from(small));
    expect(dp.mssClamped[0]).toBe(2);
  });

  it('hands local decisions back to the source, in order, and lets the wing see them', () => {
    const { dp, source, sink, wing, events } = setup();
    wing.setSplicePorts([20048]);
    const held = segment({
      src: CLIENT,
      dst: VIP,
      srcPort: 7100,
      dstPort: 20048,
      flags: TCP_FLAGS.SYN,
      window: 29200,
      ts: [4242, 0],
    });
    const smtp = ack(25);
    source.batch(held, ack(22), smtp);
    expect(source.local).toEqual([Buffer.from(held), Buffer.from(smtp)]);
    expect(sink.udp.map((s) => s.row)).toEqual([N1_VXLAN]);
    expect(events).toEqual(['local 2', 'udp']);
    expect(dp.localPackets[0]).toBe(2);
    expect(wing.clientTcpState(parseIpv4(CLIENT), 7100)).toEqual({ tsval: 4242, window: 29200 });
    expect(wing.clientTcpState(parseIpv4(CLIENT), 7000)).toBeUndefined();
  });

  it('counts a forward to a node without a destination as no_destination and sends nothing for it', () => {
    const { dp, source, sink } = setup();
    source.batch(ack(23), ack(22), ack(23));
    expect(sink.udp.map((s) => s.row)).toEqual([N1_VXLAN]);
    expect(drop(dp)).toEqual({ ...noDrops, no_destination: 2 });
    expect([dp.packetsByNode[4], dp.packetsByNode[2]]).toEqual([0, 1]);
  });
});

describe('Datapath packets too big for the interconnect', () => {
  const icmp = (b: Buffer) => {
    const ip = new Ipv4View();
    const v = new IcmpView();
    if (ip.bind(b, 0, b.length) !== OK || ip.protocol !== IPPROTO.ICMP) throw new Error('not ICMP');
    if (v.bind(b, ip.payloadOffset, ip.payloadLength) !== OK) throw new Error('bad ICMP');
    return {
      src: ip.src,
      dst: ip.dst,
      type: v.type,
      code: v.code,
      mtu: v.nextHopMtu,
      quoted: u32(b, 28 + 12),
    };
  };

  it('drops them; a DF one gets fragmentation needed from the cluster address with the inner MTU', () => {
    const { dp, source, sink } = setup();
    const fits = udp(53, 1350);
    source.batch(udp(53, 1351), fits, udp(53, 1400, false));
    expect(sink.udp.map((s) => s.bytes)).toEqual([Buffer.from(fits)]);
    expect(sink.ip.map(icmp)).toEqual([
      { src: parseIpv4(VIP), dst: parseIpv4(CLIENT), type: 3, code: 4, mtu: 1350, quoted: parseIpv4(CLIENT) },
    ]);
    expect(drop(dp)).toEqual({ ...noDrops, too_big: 2 });
    expect(dp.packetsByNode[2]).toBe(1);
  });

  it('answers at most icmpPerSecond per second and counts the rest', () => {
    const { dp, source, sink, now } = setup({ icmpPerSecond: 2 });
    source.batch(udp(53, 1500), udp(53, 1500), udp(53, 1500));
    expect([sink.ip.length, dp.drops[DATAPATH_DROP.icmp_rate_limited]]).toEqual([2, 1]);
    now.t += 999;
    source.batch(udp(53, 1500));
    expect([sink.ip.length, dp.drops[DATAPATH_DROP.icmp_rate_limited]]).toEqual([2, 2]);
    now.t += 1;
    source.batch(udp(53, 1500), udp(53, 1500), udp(53, 1500));
    expect(sink.ip.length).toBe(4);
    expect(drop(dp)).toEqual({ ...noDrops, too_big: 7, icmp_rate_limited: 3 });
  });
});

describe('Datapath IPv6', () => {
  const VIP6 = '2001:db8::10';
  const CLIENT6 = '2001:db8:1::7';
  const CONFIG6 = CONFIG.replace(
    `  - { network: outside, address: ${VIP}, default: true }`,
    `  - { network: outside, address: ${VIP}, default: true }\n  - { network: outside, address: "${VIP6}" }`,
  );
  // with the wing: n1 rows 0-2, n2 rows 3-5, then the IPv6 rows: n1 6, n2 7
  const N1_V6 = 6;
  const syn6 = (dstPort: number, mss: number) => {
    const tcp = new Uint8Array(24);
    writeTcpHeader(tcp, 0, {
      srcPort: 7000,
      dstPort,
      seq: 1,
      ack: 0,
      flags: TCP_FLAGS.SYN,
      window: 65535,
      options: Uint8Array.of(2, 4, mss >>> 8, mss & 0xff),
    });
    const p = ipv6Packet(CLIENT6, VIP6, IPPROTO.TCP, tcp);
    put16(p, 40 + 16, checksum(p, 40, 24, pseudoHeaderSum6(p, 8, 24, IPPROTO.TCP, 24)));
    return p;
  };

  it('sends IPv6 packets to the node in VXLAN with an IPv6 inner frame, untouched', () => {
    const { source, sink, dp } = setup({ config: CONFIG6 });
    const pkt = tcp6Packet({ src: CLIENT6, dst: VIP6, srcPort: 7000, dstPort: 22, flags: TCP_FLAGS.ACK });
    source.batch(pkt);
    expect(sink.udp.map((s) => s.row)).toEqual([N1_V6]);
    expect(sink.udp[0]!.bytes.equals(Buffer.from(pkt))).toBe(true);
    expect(sink.table[N1_V6]!.prefix!.subarray(20)).toEqual(Uint8Array.of(0x86, 0xdd));
    expect(dp.packetsByNode[2]).toBe(1);
    expect(drop(dp)).toEqual(noDrops);
  });

  it('clamps the MSS of IPv6 SYNs to the interconnect (MTU - 50 - 60), checksum still right', () => {
    const { source, sink, dp } = setup({ config: CONFIG6 });
    source.batch(syn6(22, 1460), syn6(22, 1200));
    const mss = sink.udp.map((s) => {
      const v = new Ipv6View();
      expect(v.bind(s.bytes)).toBe(OK);
      expect(v.upperChecksumOk()).toBe(true);
      return s.bytes.readUInt16BE(40 + 22);
    });
    expect(mss).toEqual([MTU - 50 - 60, 1200]);
    expect(dp.mssClamped[0]).toBe(1);
  });

  const udp6 = (payload: number, srcPort = 5000) =>
    udp6Packet({ src: CLIENT6, dst: VIP6, srcPort, dstPort: 53, payload: new Uint8Array(payload) });

  it('drops an IPv6 packet too big for the interconnect and answers a Packet Too Big into the TUN, from the cluster address', () => {
    const { source, sink, dp } = setup({ config: CONFIG6 });
    const big = udp6(MTU - 50 - 48 + 1);
    source.batch(big);
    source.batch(udp6(MTU - 50 - 48));
    expect(drop(dp)).toEqual({ ...noDrops, too_big: 1 });
    // the fitting one went to n1; no IPv4 ICMP; one answer through the source for the host to route
    expect([sink.udp.length, sink.ip.length, source.local.length]).toEqual([1, 0, 1]);
    const a = source.local[0]!;
    const v = new Ipv6View();
    expect(v.bind(a)).toBe(OK);
    expect([v.srcText(), v.dstText(), v.upperProtocol, a.length]).toEqual([VIP6, CLIENT6, 58, 1280]);
    const m = new Icmp6View();
    expect(m.bind(a, v.upperOffset, v.upperLength)).toBe(OK);
    expect([m.type, m.code, m.mtu, m.checksumOk(v), m.innerSrcPort, m.innerDstPort]).toEqual([
      2,
      0,
      MTU - 50,
      true,
      5000,
      53,
    ]);
    expect(a.subarray(48).equals(Buffer.from(big.subarray(0, 1232)))).toBe(true);
    expect([dp.packetTooBig.sent[0], dp.fragNeeded.sent[0]]).toEqual([1, 0]);
  });

  it('answers at most icmpPerSecond Packet Too Big per second and counts the rest; never an ICMPv6 error', () => {
    const { source, dp, now } = setup({ config: CONFIG6, icmpPerSecond: 2 });
    const big = udp6(MTU);
    source.batch(big, big, big);
    expect([source.local.length, dp.drops[DATAPATH_DROP.icmp_rate_limited]]).toEqual([2, 1]);
    now.t += 1000;
    // RFC 4443 §2.4 (e.1): an ICMPv6 error is never answered (one too big to be real: it quotes more than
    // the minimum MTU allows; the switch forwards it to n1 as the flow it quotes), and it counts as unanswered
    const quoted = udp6Packet({
      src: VIP6,
      dst: CLIENT6,
      srcPort: 53,
      dstPort: 5000,
      payload: new Uint8Array(MTU),
    });
    const error = icmp6Packet('2001:db8:ff::1', VIP6, 2, 0, 1280, quoted);
    expect(error.length).toBeGreaterThan(MTU - 50);
    source.batch(error, big, big);
    expect([source.local.length, dp.drops[DATAPATH_DROP.icmp_rate_limited]]).toEqual([4, 2]);
    expect(source.local.map((b) => b[40])).toEqual([2, 2, 2, 2]);
    expect(drop(dp)).toEqual({ ...noDrops, too_big: 6, icmp_rate_limited: 2 });
    expect(dp.packetTooBig.sent[0]).toBe(4);
  });

  it('forwards a fragmented IPv6 datagram whole to the node of its first fragment', () => {
    const { source, sink, dp } = setup({ config: CONFIG6 });
    const parts = fragments6(udp6(3000), 1200, 0x9000_0001);
    expect(parts.length).toBe(3);
    // a later fragment first has no decision to follow: the switch drops it
    source.batch(parts[2]!);
    source.batch(...parts);
    expect(sink.udp.map((s) => s.row)).toEqual([N1_V6, N1_V6, N1_V6]);
    expect(sink.udp.map((s) => s.bytes.equals(Buffer.from(parts[sink.udp.indexOf(s)]!)))).toEqual([
      true,
      true,
      true,
    ]);
    expect(drop(dp)).toEqual(noDrops);
  });

  it('hands local IPv6 decisions back to the source; a node without a destination is no_destination', () => {
    const { source, sink, dp } = setup({ config: CONFIG6 });
    const local = tcp6Packet({ src: CLIENT6, dst: VIP6, srcPort: 7000, dstPort: 25, flags: TCP_FLAGS.SYN });
    source.batch(
      local,
      tcp6Packet({ src: CLIENT6, dst: VIP6, srcPort: 7000, dstPort: 23, flags: TCP_FLAGS.SYN }),
    );
    expect(source.local.map((b) => b.equals(Buffer.from(local)))).toEqual([true]);
    expect(sink.udp).toEqual([]);
    expect(drop(dp)).toEqual({ ...noDrops, no_destination: 1 });
  });

  it('sends nothing for a hostile extension-header chain: the switch drops it and counts it by name', () => {
    const { source, sink, sw } = setup({ config: CONFIG6 });
    const exts = Array.from({ length: 8 }, () => ({ type: 60 }));
    source.batch(
      tcp6Packet({ src: CLIENT6, dst: VIP6, srcPort: 7000, dstPort: 22, flags: TCP_FLAGS.SYN, exts }),
    );
    expect([sink.udp.length, source.local.length]).toEqual([0, 0]);
    expect(sw.counters.toJSON().wireErrors).toEqual({ ipv6_too_many_ext_headers: 1 });
  });

  it('a spliced IPv6 flow: to the agent until its shift is known, then shifted here into the IPv6 VXLAN row', () => {
    const { sw, source, sink, wing, dp } = setup({ config: CONFIG6 });
    const client = parseIpv6(CLIENT6);
    expect(sw.bindSplicedFlow6(client, 7000, parseIpv6(VIP6), 2049, 3)).toBe(true);
    const seg = (flags: number) =>
      tcp6Packet({ src: CLIENT6, dst: VIP6, srcPort: 7000, dstPort: 2049, flags, seq: 10, ack: 500 });
    source.batch(seg(TCP_FLAGS.ACK));
    wing.setShift({
      clientAddr: 0,
      clusterAddr: 0,
      clientAddr6: client,
      clusterAddr6: parseIpv6(VIP6),
      clientPort: 7000,
      clusterPort: 2049,
      nodePort: 2050,
      sOff: 1000,
      tsOff: 0,
    });
    source.batch(seg(TCP_FLAGS.ACK | TCP_FLAGS.PSH), seg(TCP_FLAGS.ACK | TCP_FLAGS.FIN));
    // n2: agent row 4; its IPv6 VXLAN row 7
    expect(sink.udp.map((s) => s.row)).toEqual([N2_AGENT, 7, N2_AGENT]);
    const v = new Ipv6View();
    expect(v.bind(sink.udp[1]!.bytes)).toBe(0);
    expect(v.upperChecksumOk()).toBe(true);
    const t = new DataView(sink.udp[1]!.bytes.buffer, sink.udp[1]!.bytes.byteOffset + 40);
    expect([t.getUint16(2), t.getUint32(8)]).toEqual([2050, 1500]);
    expect(drop(dp)).toEqual(noDrops);
  });
});

describe('Datapath backpressure', () => {
  it('pauses the source while the sink is full; every packet leaves once, in order', () => {
    const { dp, source, sink } = setup();
    // 3 batches of 8, each packet known by its sequence number; every third has no destination.
    const batches = [0, 1, 2].map((b) =>
      Array.from({ length: 8 }, (_, i) => ack(i % 3 === 2 ? 23 : 22, { seq: b * 8 + i })),
    );
    const expected = batches
      .flat()
      .filter((p) => tcpOf(p).dstPort === 22)
      .map((p) => tcpOf(p).seq);
    sink.room = 4;
    source.queue(...batches).pump();
    expect([source.delivered, source.paused, sink.udp.length, sink.writable.length]).toEqual([1, true, 4, 1]);
    sink.drain(0); // woken without room: keeps waiting, stays paused
    expect([source.delivered, source.paused, sink.udp.length, sink.writable.length]).toEqual([1, true, 4, 1]);
    sink.drain(1);
    expect([source.paused, sink.udp.length, source.resumes, sink.writable.length]).toEqual([true, 5, 0, 1]);
    sink.drain(3); // the last packet of batch 1 leaves; the source resumes
    expect([source.paused, sink.udp.length, source.resumes, sink.writable.length]).toEqual([false, 6, 1, 0]);
    source.pump(); // batch 2 fills the sink again after 2 packets
    expect([source.delivered, source.paused, sink.udp.length]).toEqual([2, true, 8]);
    sink.drain(100);
    source.pump();
    expect([source.delivered, source.paused, source.pauses, source.resumes]).toEqual([3, false, 2, 2]);
    expect(sink.udp.map((s) => tcpOf(s.bytes).seq)).toEqual(expected);
    expect(sink.udp.every((s) => s.row === N1_VXLAN)).toBe(true);
    expect(sink.udp.length).toBe(18);
    expect(drop(dp)).toEqual({ ...noDrops, send_backpressure: 2, no_destination: 6 });
  });

  it('does not resume a source that was stopped while it waited', () => {
    const { dp, source, sink } = setup();
    sink.room = 0;
    source.batch(ack(22));
    dp.stop();
    sink.drain(1);
    expect([source.paused, source.resumes, sink.udp.length]).toEqual([true, 0, 1]);
  });
});

describe('Datapath spliced flows', () => {
  const c = parseIpv4(CLIENT);

  it('sends segments to the agent until the shift is known, then shifts them here for the node kernel', () => {
    const { dp, sw, source, sink, wing } = setup();
    expect(sw.bindSplicedFlow(c, 7000, parseIpv4(VIP), 2049, 3)).toBe(true);
    const seg = (flags: number) =>
      segment({
        src: CLIENT,
        dst: VIP,
        srcPort: 7000,
        dstPort: 2049,
        flags,
        seq: 10,
        ack: 500,
        ts: [9, 100],
      });
    const first = seg(TCP_FLAGS.ACK);
    source.batch(first);
    wing.setShift({
      clientAddr: c,
      clusterAddr: 0,
      clientPort: 7000,
      clusterPort: 2049,
      nodePort: 2050,
      sOff: 1000,
      tsOff: 60,
    });
    source.batch(seg(TCP_FLAGS.ACK | TCP_FLAGS.PSH), seg(TCP_FLAGS.ACK | TCP_FLAGS.FIN));
    expect(sink.udp.map((s) => s.row)).toEqual([N2_AGENT, N2_VXLAN, N2_AGENT]);
    expect(sink.udp[0]!.bytes).toEqual(Buffer.from(first));
    const shifted = tcpOf(sink.udp[1]!.bytes);
    expect([shifted.dstPort, shifted.seq, shifted.ack]).toEqual([2050, 10, 1500]);
    expect(checksumsOk(sink.udp[1]!.bytes)).toBe(true);
    expect(tcpOf(sink.udp[2]!.bytes).dstPort).toBe(2049);
    expect([wing.splicedShifted[0], wing.splicedToAgent[0], wing.shiftCount]).toEqual([1, 2, 1]);
    source.batch(seg(TCP_FLAGS.RST));
    expect(sink.udp.map((s) => s.row)).toEqual([N2_AGENT, N2_VXLAN, N2_AGENT, N2_AGENT]);
    expect(wing.shiftCount).toBe(0);
    expect([dp.packetsByNode[3], dp.bytesByNode[3], dp.mssClamped[0]]).toEqual([4, 4 * first.length, 0]);
    expect(drop(dp)).toEqual(noDrops);
  });

  it('counts a spliced segment as no_destination when the node has no rows, or there is no wing', () => {
    for (const withWing of [true, false]) {
      const { dp, sw, source, sink } = setup({ withWing });
      expect(sw.bindSplicedFlow(c, 7001, parseIpv4(VIP), 2049, 4)).toBe(true);
      expect(sw.bindSplicedFlow(c, 7002, parseIpv4(VIP), 2049, 3)).toBe(true);
      source.batch(ack(2049, { srcPort: 7001 }), ack(2049, { srcPort: 7002 }));
      expect(sink.udp.map((s) => s.row)).toEqual(withWing ? [N2_AGENT] : []);
      expect(drop(dp)).toEqual({ ...noDrops, no_destination: withWing ? 1 : 2 });
    }
  });
});

describe('Datapath batch end', () => {
  it('calls onBatchEnd once per batch, after its local packets and before its forwarded ones (flows reach the kernel before a node can answer)', () => {
    let events: string[] = [];
    const s = setup({ onBatchEnd: () => events.push('end') });
    events = s.events;
    s.source.batch(ack(22), ack(25));
    expect(events).toEqual(['local 1', 'end', 'udp']);
    s.sink.room = 0; // the batch waits for the sink: the hook still runs, once
    s.source.batch(ack(22));
    expect(events).toEqual(['local 1', 'end', 'udp', 'end', 'udp']);
    s.sink.drain(1);
    expect(events).toEqual(['local 1', 'end', 'udp', 'end', 'udp', 'udp']);
    expect(s.sink.udp.length).toBe(2);
  });
});

describe('Datapath per-packet allocation', () => {
  it('adds nothing to what the switch allocates: forwarded, rewritten, clamped, local and spliced packets', () => {
    const { dp, sw, wing, source, sink } = setup();
    source.record = false;
    sink.record = false;
    // A client above 2^31, as every outside address is: the splice tables must take it as an int32
    // (`ip.srcI32`); a uint32 crossing a call would be boxed, 16 bytes per held or shifted segment.
    const client = '203.0.113.77';
    const c = parseIpv4(client);
    wing.setSplicePorts([20048]);
    sw.bindSplicedFlow(c, 7001, parseIpv4(VIP), 2049, 3);
    sw.bindSplicedFlow(c, 7002, parseIpv4(VIP), 2049, 3);
    wing.setShift({
      clientAddr: c,
      clusterAddr: 0,
      clientPort: 7001,
      clusterPort: 2049,
      nodePort: 2049,
      sOff: 5,
      tsOff: 0,
    });
    const tcp = (dstPort: number, srcPort = 7000, flags: number = TCP_FLAGS.ACK) =>
      segment({ src: client, dst: VIP, srcPort, dstPort, flags, ts: [1, 2] });
    const packets = [
      tcp(22),
      udpPacket({ src: client, dst: VIP, srcPort: 5000, dstPort: 53, payload: new Uint8Array(200) }),
      udpPacket({ src: client, dst: VIP, srcPort: 700, dstPort: 20048, payload: mountCall('/srv/home') }),
      segment({ src: client, dst: VIP, srcPort: 7000, dstPort: 22, flags: TCP_FLAGS.SYN, mss: 1460 }),
      tcp(25),
      tcp(20048, 7100),
      tcp(2049, 7001),
      tcp(2049, 7002),
    ];
    // One batch in an arena of its own, restored before each run (the loop rewrites some packets).
    const orig = Buffer.alloc(packets.length * 256);
    const meta = new Int32Array(packets.length * META_STRIDE);
    packets.forEach((p, i) => {
      orig.set(p, i * 256);
      meta[i * META_STRIDE] = i * 256;
      meta[i * META_STRIDE + 1] = p.length;
    });
    const arena = Buffer.alloc(orig.length);
    const handler = source.handler!;
    const loop = (n: number) => {
      for (let i = 0; i < n; i++) {
        arena.set(orig);
        handler(packets.length, arena, meta);
      }
    };
    const out = new DecisionOut();
    const decide = (n: number) => {
      for (let i = 0; i < n; i++) {
        arena.set(orig);
        for (let k = 0; k < packets.length; k++) sw.decide(arena, k * 256, packets[k]!.length, 1000, out);
      }
    };
    // Bytes per packet: the median of several windows after a warm-up (as the switch's own test does).
    const perPacket = (f: (n: number) => void): number => {
      const w: number[] = [];
      for (let k = 0; k < 9; k++) {
        const before = process.memoryUsage().heapUsed;
        f(5000);
        w.push((process.memoryUsage().heapUsed - before) / (5000 * packets.length));
      }
      return w.sort((a, b) => a - b)[4]!;
    };
    loop(20_000);
    decide(20_000);
    const switchAlone = Math.max(perPacket(decide), 0);
    const withLoop = perPacket(loop);
    const batches = 20_000 + 9 * 5000;
    expect([source.localCount, sink.udpCount]).toEqual([2 * batches, 6 * batches]);
    expect(drop(dp)).toEqual(noDrops);
    expect(withLoop - switchAlone).toBeLessThan(2);
  });
});
