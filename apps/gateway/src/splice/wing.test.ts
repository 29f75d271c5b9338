import { type Shift, writeSegment } from '@onehost/splice';
import { META_STRIDE } from '@onehost/tun';
import { parseIpv4, parseIpv6, TCP_FLAGS } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { MAX_NODE_ID } from '../datapath.js';
import { checksumsOk, segment, tcpOf, tsecrOf } from '../testing/packets.test-util.js';
import { ClientTcp } from './client-tcp.js';
import { KernelShifts } from './kernel-shifts.js';
import { ShiftTable } from './shifts.js';
import { SpliceWing } from './wing.js';

const CLIENT = '203.0.113.7';
/** a kernel map's IPv6 half that is never used */
const NO_IPV6 = {
  setGatewayFlow6: () => undefined,
  deleteGatewayFlow6: () => false,
  gatewayPackets6: () => -1,
  gatewayFlows6: () => [],
};
const VIP = '203.0.113.10';
const c = parseIpv4(CLIENT);

describe('ClientTcp', () => {
  it('tracks the TSval and window of clients on the splice ports only, latest first', () => {
    const ct = new ClientTcp();
    ct.setPorts([2049, 20048, 0, 70_000]);
    const seg = (dstPort: number, tsval: number, window: number, srcPort = 7000) =>
      segment({ src: CLIENT, dst: VIP, srcPort, dstPort, flags: TCP_FLAGS.ACK, window, ts: [tsval, 1] });
    for (const p of [seg(2049, 111, 500), seg(22, 5, 5, 7001), seg(20048, 0xfffffff0, 1000, 7002)])
      ct.note(p, 0, p.length);
    expect(ct.size).toBe(2);
    expect(ct.get(c, 7000)).toEqual({ tsval: 111, window: 500 });
    expect(ct.get(c, 7001)).toBeUndefined();
    expect(ct.get(c, 7002)).toEqual({ tsval: 0xfffffff0, window: 1000 });
    const later = seg(2049, 222, 700);
    ct.note(later, 0, later.length);
    expect(ct.get(c, 7000)).toEqual({ tsval: 222, window: 700 });
    const noTs = segment({
      src: CLIENT,
      dst: VIP,
      srcPort: 7000,
      dstPort: 2049,
      flags: TCP_FLAGS.ACK,
      window: 9,
    });
    ct.note(noTs, 0, noTs.length);
    expect(ct.get(c, 7000)).toEqual({ tsval: 0, window: 9 });
  });

  it('hands out copies, forgets flows, and follows new port lists', () => {
    const ct = new ClientTcp();
    ct.setPorts([2049]);
    const p = segment({
      src: CLIENT,
      dst: VIP,
      srcPort: 7000,
      dstPort: 2049,
      flags: TCP_FLAGS.ACK,
      ts: [5, 0],
    });
    ct.note(p, 0, p.length);
    const got = ct.get(c, 7000)!;
    got.tsval = 99;
    expect(ct.get(c, 7000)!.tsval).toBe(5);
    ct.forget(c, 7000);
    expect([ct.get(c, 7000), ct.size]).toEqual([undefined, 0]);
    ct.setPorts([111]);
    ct.note(p, 0, p.length);
    expect(ct.size).toBe(0);
  });
});

const shift = (o: Partial<Shift> = {}): Shift => ({
  clientAddr: c,
  clusterAddr: parseIpv4(VIP),
  clientPort: 7000,
  clusterPort: 2049,
  nodePort: 12049,
  sOff: 1000,
  tsOff: 50,
  ...o,
});

describe('ShiftTable', () => {
  const ack = (flags: number = TCP_FLAGS.ACK, clusterPort = 2049) =>
    segment({
      src: CLIENT,
      dst: VIP,
      srcPort: 7000,
      dstPort: clusterPort,
      flags,
      seq: 7,
      ack: 0xfffffc00,
      ts: [300, 200],
    });

  it('leaves a flow it does not know, or another cluster port, to the agent untouched', () => {
    const st = new ShiftTable();
    const p = ack();
    const before = Buffer.from(p);
    expect(st.shiftHere(p, 0, p.length)).toBe(false);
    st.set(shift());
    const other = ack(TCP_FLAGS.ACK, 20048);
    expect(st.shiftHere(other, 0, other.length)).toBe(false);
    expect(Buffer.from(p)).toEqual(before);
    expect([st.shifted[0], st.toAgent[0]]).toEqual([0, 2]);
  });

  it('shifts a known flow into the node view: port, ack + sOff (mod 2^32), TSecr - tsOff, checksums', () => {
    const st = new ShiftTable();
    st.set(shift());
    const p = ack(TCP_FLAGS.ACK | TCP_FLAGS.PSH);
    expect(st.shiftHere(p, 0, p.length)).toBe(true);
    const t = tcpOf(p);
    expect([t.dstPort, t.ack, t.seq, tsecrOf(t)]).toEqual([12049, (0xfffffc00 + 1000) >>> 0, 7, 150]);
    expect(checksumsOk(p)).toBe(true);
    expect([st.shifted[0], st.toAgent[0], st.size]).toEqual([1, 0, 1]);
  });

  it('sends FIN to the agent and keeps the flow; RST and SYN to the agent and forget it', () => {
    const st = new ShiftTable();
    st.set(shift());
    const fin = ack(TCP_FLAGS.ACK | TCP_FLAGS.FIN);
    expect(st.shiftHere(fin, 0, fin.length)).toBe(false);
    expect(tcpOf(fin).dstPort).toBe(2049);
    expect(st.size).toBe(1);
    const rst = ack(TCP_FLAGS.RST);
    expect(st.shiftHere(rst, 0, rst.length)).toBe(false);
    expect(st.size).toBe(0);
    st.set(shift());
    const syn = ack(TCP_FLAGS.SYN);
    expect(st.shiftHere(syn, 0, syn.length)).toBe(false);
    expect(st.size).toBe(0);
    expect([st.shifted[0], st.toAgent[0]]).toEqual([0, 3]);
  });

  it('replaces a flow told twice', () => {
    const st = new ShiftTable();
    st.set(shift());
    st.set(shift({ sOff: 0, nodePort: 2049, tsOff: 0 }));
    const p = ack();
    expect(st.shiftHere(p, 0, p.length)).toBe(true);
    expect([st.size, tcpOf(p).ack, tcpOf(p).dstPort]).toEqual([1, 0xfffffc00, 2049]);
  });
});

/** A sink that records the UDP datagrams it is given, or refuses them all. */
class UdpSink {
  refuse = false;
  readonly sent: Array<{ row: number; sport: number; bytes: Buffer }> = [];
  sendUdp(
    arena: Uint8Array,
    meta: Int32Array,
    start: number,
    end: number,
    dst: Int32Array,
    sport?: Int32Array | null,
  ): number {
    if (this.refuse) return start;
    for (let i = start; i < end; i++) {
      const off = meta[i * META_STRIDE]!;
      const bytes = Buffer.from(arena.subarray(off, off + meta[i * META_STRIDE + 1]!));
      this.sent.push({ row: dst[i]!, sport: sport?.[i] ?? 0, bytes });
    }
    return end;
  }
}

describe('SpliceWing', () => {
  const rows = (entries: Array<[number, number]>) => {
    const r = new Int32Array(MAX_NODE_ID + 1).fill(-1);
    for (const [id, row] of entries) r[id] = row;
    return r;
  };

  it('asks for a segment row (type byte 2) and a handover row per node, on its port', () => {
    const wing = new SpliceWing({ sink: new UdpSink(), port: 7472 });
    expect(wing.nodeRows({ id: 3, address: '198.18.0.12', mac: '02:00:00:00:00:03' })).toEqual([
      { address: '198.18.0.12', port: 7472, prefix: Uint8Array.of(2) },
      { address: '198.18.0.12', port: 7472 },
    ]);
  });

  it('sends a handover to the row after the node agent segment row, from its port', () => {
    const sink = new UdpSink();
    const wing = new SpliceWing({ sink, port: 7472 });
    wing.placeRows(rows([[3, 4]]));
    expect(wing.agentRow(3)).toBe(4);
    expect(wing.agentRow(2)).toBe(-1);
    expect(wing.sendHandover(3, Uint8Array.of(1, 1, 9, 9))).toBe(true);
    expect(sink.sent).toEqual([{ row: 5, sport: 7472, bytes: Buffer.from([1, 1, 9, 9]) }]);
  });

  it('sends a handover longer than one packet through the kernel socket it was given (which fragments)', () => {
    const sink = new UdpSink();
    const wing = new SpliceWing({ sink, port: 7472 });
    wing.nodeRows({ id: 3, address: '198.18.0.12', mac: '02:00:00:00:00:03' });
    wing.placeRows(rows([[3, 4]]));
    const long = new Uint8Array(20_000).fill(7);
    // no socket yet: refused, not lost in the raw sender (EMSGSIZE over the interconnect's MTU)
    expect(wing.sendHandover(3, long)).toBe(false);
    const sent: Array<{ bytes: Uint8Array; address: string; port: number }> = [];
    wing.useDatagrams((bytes, address, port) => sent.push({ bytes, address, port }));
    expect(wing.sendHandover(3, long)).toBe(true);
    expect(sent).toEqual([{ bytes: long, address: '198.18.0.12', port: 7472 }]);
    expect(sink.sent.length).toBe(0);
    // a node that lost its rows has no address either
    wing.placeRows(rows([]));
    expect(wing.sendHandover(3, long)).toBe(false);
  });

  it('refuses a handover to a node without rows, past 64 KiB, or that the sink does not take', () => {
    const sink = new UdpSink();
    const wing = new SpliceWing({ sink, port: 7472 });
    wing.placeRows(rows([[3, 1]]));
    expect(wing.sendHandover(2, Uint8Array.of(1))).toBe(false);
    expect(wing.sendHandover(-1, Uint8Array.of(1))).toBe(false);
    expect(wing.sendHandover(MAX_NODE_ID + 1, Uint8Array.of(1))).toBe(false);
    expect(wing.sendHandover(3, new Uint8Array(65_537))).toBe(false);
    sink.refuse = true;
    expect(wing.sendHandover(3, Uint8Array.of(1))).toBe(false);
    expect(sink.sent.length).toBe(0);
  });

  it('tells the handover the client state it noted, and counts shifts for the metrics', () => {
    const wing = new SpliceWing({ sink: new UdpSink(), port: 7472 });
    wing.setSplicePorts([2049]);
    const p = segment({
      src: CLIENT,
      dst: VIP,
      srcPort: 7000,
      dstPort: 2049,
      flags: TCP_FLAGS.ACK,
      window: 77,
      ts: [12, 0],
    });
    wing.noteLocal(p, 0, p.length);
    expect(wing.clientTcpState(c, 7000)).toEqual({ tsval: 12, window: 77 });
    wing.forgetClient(c, 7000);
    expect(wing.clientTcpState(c, 7000)).toBeUndefined();
    wing.setShift(shift());
    expect(wing.shiftCount).toBe(1);
    const s = segment({ src: CLIENT, dst: VIP, srcPort: 7000, dstPort: 2049, flags: TCP_FLAGS.ACK });
    expect(wing.shiftHere(s, 0, s.length)).toBe(true);
    expect([wing.splicedShifted[0], wing.splicedToAgent[0]]).toEqual([1, 0]);
    // an IPv6 flow's shift: its segments shifted here too
    const client6 = parseIpv6('2001:db8:113::10');
    const vip6 = parseIpv6('2001:db8:113::80');
    wing.setShift({ ...shift(), clientAddr: 0, clusterAddr: 0, clientAddr6: client6, clusterAddr6: vip6 });
    expect(wing.shiftCount).toBe(2);
    const seg6 = (srcPort: number, more: { window?: number; ts?: { val: number; ecr: number } } = {}) => {
      const b = new Uint8Array(120);
      const n = writeSegment(b, {
        ...{ src: 0, dst: 0, src6: client6, dst6: vip6, srcPort, dstPort: 2049, seq: 1, ack: 1 },
        ...{ flags: TCP_FLAGS.ACK, window: 10, ...more },
      });
      return b.subarray(0, n);
    };
    const s6 = seg6(7000);
    const n = s6.length;
    expect(wing.shiftHere(s6, 0, n)).toBe(true);
    expect([wing.splicedShifted[0], wing.splicedToAgent[0]]).toEqual([2, 0]);
    // node port, ack + sOff (TCP header at 40: destination port at 42, ack at 48)
    const v = new DataView(s6.buffer);
    expect([v.getUint16(42), v.getUint32(48)]).toEqual([12049, 1001]);
    // another IPv6 client on that port: to the agent
    const other = s6.slice(0, n);
    other[23] = 0x11;
    expect(wing.shiftHere(other, 0, n)).toBe(false);
    expect(wing.splicedToAgent[0]).toBe(1);
    // an IPv6 client's TSval and window, for its handover
    const t6 = seg6(7001, { window: 55, ts: { val: 99, ecr: 0 } });
    wing.noteLocal(t6, 0, t6.length);
    expect(wing.clientTcpState(client6, 7001)).toEqual({ tsval: 99, window: 55 });
    expect(wing.clientTcpState(parseIpv6('2001:db8:113::11'), 7001)).toBeUndefined();
    wing.forgetClient(client6, 7001);
    expect(wing.clientTcpState(client6, 7001)).toBeUndefined();
  });
});

describe('SpliceWing with the kernel shifting client segments (useKernel)', () => {
  it('writes each shift into the kernel with its sender, and tells it the flow’s SYN, FIN and RST', () => {
    const wing = new SpliceWing({ sink: { sendUdp: () => 0 }, port: 7472 });
    const written: Array<{ clientPort: number; mark: number }> = [];
    const deleted: number[] = [];
    const kernel = new KernelShifts({
      map: {
        setGatewayFlow: (f) => written.push({ clientPort: f.clientPort, mark: f.mark }),
        deleteGatewayFlow: (f) => deleted.push(f.clientPort) > 0,
        gatewayPackets: () => 0,
        gatewayFlows: () => [],
        ...NO_IPV6,
      },
      markOf: (a) => (a === '198.18.0.12' ? 0x6f480002 : undefined),
    });
    wing.useKernel(kernel, () => 42);
    const shift: Shift = {
      clientAddr: c,
      clusterAddr: parseIpv4(VIP),
      clientPort: 7000,
      clusterPort: 2049,
      nodePort: 2049,
      sOff: 1,
      tsOff: 2,
    };
    wing.setShift(shift, '198.18.0.12');
    expect(written).toEqual([{ clientPort: 7000, mark: 0x6f480002 }]);
    expect([wing.kernelFlows, wing.splicedInKernel]).toEqual([1, 42]);
    // a plain ACK that still reaches user space (before the entry landed) is shifted there
    const ack = segment({ src: CLIENT, dst: VIP, srcPort: 7000, dstPort: 2049, flags: TCP_FLAGS.ACK });
    expect(wing.shiftHere(ack, 0, ack.length)).toBe(true);
    const rst = segment({ src: CLIENT, dst: VIP, srcPort: 7000, dstPort: 2049, flags: TCP_FLAGS.RST });
    expect(wing.shiftHere(rst, 0, rst.length)).toBe(false);
    expect(deleted).toEqual([7000]);
    expect(wing.kernelFlows).toBe(0);
  });

  it('drops a spliced flow’s offsets when a new connection’s SYN on its ports reaches the host’s stack', () => {
    // The node's FIN and RST go straight to the client: after a server reset, the gateway's entry
    // outlives the connection, and libnfs takes the same reserved port again.
    const deleted: number[] = [];
    const kernel = new KernelShifts({
      map: {
        setGatewayFlow: () => undefined,
        deleteGatewayFlow: (f) => deleted.push(f.clientPort) > 0,
        gatewayPackets: () => 0,
        gatewayFlows: () => [],
        ...NO_IPV6,
      },
      markOf: () => 0x6f480002,
    });
    const wing = new SpliceWing({ sink: { sendUdp: () => 0 }, port: 7472 });
    wing.useKernel(kernel, () => 0);
    wing.setSplicePorts([2049, 20048]);
    const shift: Shift = {
      clientAddr: c,
      clusterAddr: parseIpv4(VIP),
      clientPort: 613,
      clusterPort: 2049,
      nodePort: 2049,
      sOff: 1,
      tsOff: 2,
    };
    wing.setShift(shift, '198.18.0.12');
    const syn = (dstPort: number, flags: number) =>
      segment({ src: CLIENT, dst: VIP, srcPort: 613, dstPort, flags });
    // the handshake's ACK and the SYN-ACK direction change nothing; a SYN to another port neither
    for (const p of [
      syn(2049, TCP_FLAGS.ACK),
      syn(2049, TCP_FLAGS.SYN | TCP_FLAGS.ACK),
      syn(20048, TCP_FLAGS.SYN),
    ])
      wing.noteLocal(p, 0, p.length);
    expect([wing.kernelFlows, wing.shiftCount, deleted]).toEqual([1, 1, []]);
    const p = syn(2049, TCP_FLAGS.SYN);
    wing.noteLocal(p, 0, p.length);
    expect([wing.kernelFlows, wing.shiftCount, deleted]).toEqual([0, 0, [613]]);
    expect(wing.shiftOf(c, 613, 2049)).toBeUndefined();
  });
});
