import { Ipv6View, parseIpv6, TCP_FLAGS, TcpView, u32 } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import {
  decodeHandover,
  decodeShifts,
  encodeHandover,
  encodeShift,
  HANDOVER_FLAG,
  HANDOVER_HEADER6,
  type Handover,
  MSG,
  SHIFT6_LENGTH,
  type Shift,
} from './message.js';
import { tsOption, writeSegment } from './segment.js';
import { type BoundFlow, Splicer } from './splicer.js';

const CLIENT6 = parseIpv6('2001:db8:113::10');
const VIP6 = parseIpv6('2001:db8:113::80');
const OTHER6 = parseIpv6('2001:db8:113::11');
const ALL = HANDOVER_FLAG.SACK | HANDOVER_FLAG.TIMESTAMPS | HANDOVER_FLAG.WINDOW_SCALE;
const NODE_ISN = 0x7ffffff0;

function handover6(over: Partial<Handover> = {}): Handover {
  return {
    flags: ALL,
    clientAddr: 0,
    clusterAddr: 0,
    clientAddr6: CLIENT6,
    clusterAddr6: VIP6,
    clientPort: 40000,
    clusterPort: 2049,
    nodePort: 2049,
    clientSeq: 0xfffffff0,
    serverSeq: 0x10000029,
    mss: 1428,
    clientWscale: 7,
    gatewayWscale: 9,
    clientTsval: 5000,
    gatewayTsval: 900_000,
    clientWindow: 502,
    data: new Uint8Array(2000).map((_, i) => (i * 7) & 0xff),
    ...over,
  };
}

const message = (h: Handover): Uint8Array => {
  const b = new Uint8Array(70_000);
  return b.subarray(0, encodeHandover(h, b));
};

interface Seg6 {
  ip: Ipv6View;
  t: TcpView;
  bytes: Uint8Array;
}
function parse6(p: Uint8Array): Seg6 {
  const bytes = p.slice();
  const ip = new Ipv6View();
  expect(ip.bind(bytes)).toBe(0);
  expect(ip.upperChecksumOk()).toBe(true);
  const t = new TcpView();
  expect(t.bind(bytes, ip.upperOffset, ip.upperLength)).toBe(0);
  return { ip, t, bytes };
}
const addrAt = (s: Seg6, at: number) => [...s.bytes.subarray(s.ip.off + at, s.ip.off + at + 16)];

/** seg6 writes an IPv6 segment; `destOpts` puts an empty Destination Options header before TCP. */
function seg6(o: {
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  ts?: { val: number; ecr: number };
  wscale?: number;
  payload?: Uint8Array;
  destOpts?: boolean;
}): Uint8Array {
  const b = new Uint8Array(3000);
  const n = writeSegment(b, {
    src: 0,
    dst: 0,
    src6: o.src,
    dst6: o.dst,
    srcPort: o.sport,
    dstPort: o.dport,
    seq: o.seq,
    ack: o.ack,
    flags: o.flags,
    window: 1000,
    ...(o.wscale !== undefined ? { syn: { mss: 1440, sack: true, wscale: o.wscale } } : {}),
    ...(o.ts ? { ts: o.ts } : {}),
    ...(o.payload ? { payload: o.payload } : {}),
  });
  if (!o.destOpts) return b.slice(0, n);
  // RFC 8200 §4.6: Next Header TCP, Hdr Ext Len 0, a PadN option of 4 bytes
  const out = new Uint8Array(n + 8);
  out.set(b.subarray(0, 40), 0);
  out[6] = 60;
  out[4] = (n - 40 + 8) >>> 8;
  out[5] = (n - 40 + 8) & 0xff;
  out.set([6, 0, 1, 4, 0, 0, 0, 0], 40);
  out.set(b.subarray(40, n), 48);
  return out;
}

type Seg6Fields = Omit<Parameters<typeof seg6>[0], 'src' | 'dst' | 'sport' | 'dport'> & {
  src?: Uint8Array;
};
/** fromNode: a segment of the flow from the node (cluster address, node port 2049) to the client. */
const fromNode = (o: Seg6Fields) => seg6({ src: VIP6, dst: CLIENT6, sport: 2049, dport: 40000, ...o });
/** fromClient: a segment of the flow from the client to the cluster address. */
const fromClient = (o: Seg6Fields) => seg6({ src: CLIENT6, dst: VIP6, sport: 40000, dport: 2049, ...o });
/** synAckTo is the node kernel's answer to the replayed SYN of `h`. */
const synAckTo = (h: Handover, more: Partial<Seg6Fields> = {}) =>
  fromNode({ seq: NODE_ISN, ack: h.clientSeq, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK, ...more });

function harness() {
  const injected: Seg6[] = [];
  const sent: Seg6[] = [];
  const bound: BoundFlow[] = [];
  const told: unknown[] = [];
  const s = new Splicer({
    inject: (p) => injected.push(parse6(p)),
    sendOut: (p) => sent.push(parse6(p)),
    bind: (f) => bound.push(f) > 0,
    established: (sh) => told.push(sh),
  });
  return { s, injected, sent, bound, told };
}

function establish6() {
  const x = harness();
  const h = handover6();
  const m = message(h);
  x.s.onMessage(m, 0, m.length, 0);
  const synAck = synAckTo(h, { ts: { val: 77, ecr: 5000 }, wscale: 7 });
  x.s.onOutbound(synAck, 0, synAck.length, 1);
  return { ...x, h };
}

describe('Splicer, IPv6 (handover version 2)', () => {
  it('encodes and decodes a handover with 16-byte addresses; refuses one cut short', () => {
    const h = handover6();
    const m = message(h);
    expect(m.length).toBe(HANDOVER_HEADER6 + h.data.length);
    expect(m[1]).toBe(2);
    const d = decodeHandover(m, 0, m.length);
    expect(d).toEqual(h);
    expect(decodeHandover(m, 0, 50)).toBe('truncated');
    expect(decodeHandover(m, 0, m.length - 1)).toBe('length');
  });

  it('replays the SYN as IPv6 from the client to the cluster address, on the node port', () => {
    const { s, injected } = harness();
    const m = message(handover6({ nodePort: 20048 }));
    s.onMessage(m, 0, m.length, 0);
    expect(injected).toHaveLength(1);
    const syn = injected[0]!;
    expect(addrAt(syn, 8)).toEqual([...CLIENT6]);
    expect(addrAt(syn, 24)).toEqual([...VIP6]);
    expect([syn.t.srcPort, syn.t.dstPort, syn.t.flags, syn.t.seq]).toEqual([
      40000,
      20048,
      TCP_FLAGS.SYN,
      0xffffffef,
    ]);
    expect(syn.t.mss()).toBe(1428);
  });

  it('completes the handshake, binds the flow for the kernel (16-byte addresses) and tells the gateways its shift', () => {
    const { s, injected, bound, told, h } = establish6();
    expect(s.counters.established).toBe(1);
    const [, ack, ...data] = injected;
    expect(ack!.t.flags).toBe(TCP_FLAGS.ACK);
    expect(ack!.t.ack).toBe((NODE_ISN + 1) >>> 0);
    const joined = Buffer.concat(data.map((d) => d.t.buf.subarray(d.t.payloadOffset, d.t.off + d.t.len)));
    expect(Buffer.compare(joined, Buffer.from(h.data))).toBe(0);
    const shift = {
      clientAddr: 0,
      clusterAddr: 0,
      clientAddr6: CLIENT6,
      clusterAddr6: VIP6,
      clientPort: 40000,
      clusterPort: 2049,
      nodePort: 2049,
      sOff: (NODE_ISN + 1 - h.serverSeq) | 0,
      tsOff: (900_000 - 77) | 0,
    };
    expect(told).toEqual([shift]);
    expect(bound).toEqual([{ ...shift, nodeWscale: 7, gatewayWscale: 9 }]);
    expect(s.counters.bound).toBe(1);
    expect(s.shifts()).toEqual([shift]);
    // a version-3 record, 48 bytes, decoded as it was
    const rec = new Uint8Array(SHIFT6_LENGTH);
    expect(encodeShift(shift, rec)).toBe(SHIFT6_LENGTH);
    const back: Shift[] = [];
    expect(decodeShifts(rec, 0, rec.length, back)).toBe(true);
    expect(back).toEqual([shift]);
    expect(s.list()).toEqual([
      {
        client: '[2001:db8:113::10]:40000',
        clusterPort: 2049,
        nodePort: 2049,
        state: 'established',
        kernel: true,
      },
    ]);
  });

  it('shifts client segments in (also behind an extension header) and node segments out', () => {
    const { s, injected, h } = establish6();
    const sOff = (NODE_ISN + 1 - h.serverSeq) | 0;
    for (const destOpts of [false, true]) {
      const before = injected.length;
      const c = fromClient({
        seq: h.clientSeq + 2000,
        ack: h.serverSeq + 10,
        flags: TCP_FLAGS.ACK,
        ts: { val: 5001, ecr: 900_010 },
        payload: new Uint8Array(100).fill(1),
        destOpts,
      });
      const m = new Uint8Array(c.length + 1);
      m[0] = MSG.SEGMENT;
      m.set(c, 1);
      s.onMessage(m, 0, m.length, 2);
      expect(injected.length).toBe(before + 1);
      const got = injected.at(-1)!;
      expect(got.ip.extCount).toBe(destOpts ? 1 : 0);
      expect(got.t.ack).toBe((h.serverSeq + 10 + sOff) >>> 0);
      const i = tsOption(got.t);
      expect(u32(got.t.buf, i + 6)).toBe((900_010 - (900_000 - 77)) >>> 0);
    }
    const out = fromNode({
      seq: NODE_ISN + 1,
      ack: h.clientSeq + 2000,
      flags: TCP_FLAGS.ACK,
      ts: { val: 80, ecr: 5001 },
      payload: new Uint8Array(300).fill(2),
    });
    const n = s.rewriteOutbound(out, 0, out.length, 3);
    expect(n).toBe(out.length);
    const r = parse6(out);
    expect(r.t.seq).toBe(h.serverSeq);
    expect(u32(r.t.buf, tsOption(r.t) + 2)).toBe(900_000 + 3);
    expect(s.counters.out_forwarded).toBe(1);
  });

  it('leaves segments of other addresses alone and resets the client when the node refuses', () => {
    const { s, sent } = harness();
    const h = handover6();
    const m = message(h);
    s.onMessage(m, 0, m.length, 0);
    const stranger = synAckTo(h, { src: OTHER6 });
    expect(s.rewriteOutbound(stranger, 0, stranger.length, 1)).toBe(0);
    expect(s.counters.out_unknown).toBe(1);
    const rst = fromNode({
      seq: 0,
      ack: h.clientSeq,
      flags: TCP_FLAGS.RST | TCP_FLAGS.ACK,
    });
    s.onOutbound(rst, 0, rst.length, 1);
    expect(sent).toHaveLength(1);
    expect(addrAt(sent[0]!, 8)).toEqual([...VIP6]);
    expect(addrAt(sent[0]!, 24)).toEqual([...CLIENT6]);
    expect([sent[0]!.t.flags, sent[0]!.t.seq, sent[0]!.t.srcPort]).toEqual([
      TCP_FLAGS.RST,
      h.serverSeq,
      2049,
    ]);
    s.tick(10_000);
    expect(s.size).toBe(0);
  });

  it('holds client segments that come before their handover', () => {
    const { s, injected } = harness();
    const h = handover6();
    const c = fromClient({
      seq: h.clientSeq + 2000,
      ack: h.serverSeq,
      flags: TCP_FLAGS.ACK,
      payload: new Uint8Array(10),
    });
    const seg = new Uint8Array(c.length + 1);
    seg[0] = MSG.SEGMENT;
    seg.set(c, 1);
    s.onMessage(seg, 0, seg.length, 0);
    expect(s.counters.in_early_held).toBe(1);
    const m = message(h);
    s.onMessage(m, 0, m.length, 1);
    const synAck = synAckTo(h);
    s.onOutbound(synAck, 0, synAck.length, 2);
    // SYN, ACK, two data segments, then the held one
    expect(injected.at(-1)!.t.seq).toBe((h.clientSeq + 2000) >>> 0);
    expect(s.counters.in_forwarded).toBe(1);
  });

  it('adopts a bound IPv6 flow a predecessor left in the kernel, once, beside an IPv4 one of the same port', () => {
    const { s } = harness();
    const b: BoundFlow = {
      clientAddr: 0,
      clusterAddr: 0,
      clientAddr6: CLIENT6,
      clusterAddr6: VIP6,
      clientPort: 40000,
      clusterPort: 2049,
      nodePort: 2049,
      sOff: 5,
      tsOff: 6,
      nodeWscale: 7,
      gatewayWscale: 7,
    };
    expect(s.adopt(b, 0)).toBe(true);
    expect(s.adopt(b, 0)).toBe(false);
    expect(s.adopt({ ...b, clientAddr6: OTHER6 }, 0)).toBe(true);
    const { clientAddr6: _c, clusterAddr6: _v, ...v4 } = b;
    expect(s.adopt({ ...v4, clientAddr: 1, clusterAddr: 2 }, 0)).toBe(true);
    expect(s.size).toBe(3);
    expect(s.shifts().filter((x) => x.clientAddr6 !== undefined)).toHaveLength(2);
  });
});
