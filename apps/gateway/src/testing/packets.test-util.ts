// Packets for the data path's tests: TCP with options (MSS, timestamps), Don't Fragment, checksum checks.
import {
  checksum,
  IPPROTO,
  Ipv4View,
  OK,
  parseIpv4,
  pseudoHeaderSum,
  put16,
  put32,
  TcpView,
  UdpView,
  u32,
  writeIpv4Header,
  writeTcpHeader,
} from '@onehost/wire';

export interface SegmentOptions {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  flags: number;
  seq?: number;
  ack?: number;
  window?: number;
  /** MSS option (SYNs) */
  mss?: number;
  /** timestamps option: [TSval, TSecr] */
  ts?: [number, number];
  payload?: Uint8Array;
}

/** segment builds an IPv4/TCP packet with its options and valid checksums. */
export function segment(o: SegmentOptions): Uint8Array {
  const opts: number[] = [];
  if (o.mss !== undefined) opts.push(2, 4, o.mss >>> 8, o.mss & 0xff);
  if (o.ts !== undefined) {
    const t = new Uint8Array(12);
    t.set([1, 1, 8, 10]);
    put32(t, 4, o.ts[0]);
    put32(t, 8, o.ts[1]);
    opts.push(...t);
  }
  const options = Uint8Array.from(opts);
  const payload = o.payload ?? new Uint8Array(0);
  const l4 = 20 + options.length + payload.length;
  const p = new Uint8Array(20 + l4);
  const src = parseIpv4(o.src);
  const dst = parseIpv4(o.dst);
  writeIpv4Header(p, 0, { src, dst, protocol: IPPROTO.TCP, payloadLength: l4 });
  writeTcpHeader(p, 20, {
    srcPort: o.srcPort,
    dstPort: o.dstPort,
    seq: o.seq ?? 1,
    ack: o.ack ?? 0,
    flags: o.flags,
    window: o.window ?? 65535,
    options,
  });
  p.set(payload, 20 + 20 + options.length);
  put16(p, 36, checksum(p, 20, l4, pseudoHeaderSum(src, dst, IPPROTO.TCP, l4)));
  return p;
}

/** withDf sets Don't Fragment and fixes the header checksum (in place; returns the packet). */
export function withDf(p: Uint8Array): Uint8Array {
  p[6] = p[6]! | 0x40;
  put16(p, 10, 0);
  put16(p, 10, checksum(p, 0, 20));
  return p;
}

/** checksumsOk checks the IPv4 header checksum and the TCP or UDP one. */
export function checksumsOk(p: Uint8Array): boolean {
  const ip = new Ipv4View();
  if (ip.bind(p, 0, p.length) !== OK || checksum(p, 0, ip.headerLength) !== 0) return false;
  const l4 = ip.payloadLength;
  if (ip.protocol !== IPPROTO.TCP && ip.protocol !== IPPROTO.UDP) return true;
  return checksum(p, ip.payloadOffset, l4, pseudoHeaderSum(ip.src, ip.dst, ip.protocol, l4)) === 0;
}

/** tcpOf binds a TCP view on a whole IPv4 packet; throws when it is not TCP. */
export function tcpOf(p: Uint8Array): TcpView {
  const ip = new Ipv4View();
  const t = new TcpView();
  if (ip.bind(p, 0, p.length) !== OK || ip.protocol !== IPPROTO.TCP) throw new Error('not IPv4/TCP');
  if (t.bind(p, ip.payloadOffset, ip.payloadLength) !== OK) throw new Error('bad TCP header');
  return t;
}

/** udpOf binds a UDP view on a whole IPv4 packet; throws when it is not UDP. */
export function udpOf(p: Uint8Array): UdpView {
  const ip = new Ipv4View();
  const u = new UdpView();
  if (ip.bind(p, 0, p.length) !== OK || ip.protocol !== IPPROTO.UDP) throw new Error('not IPv4/UDP');
  if (u.bind(p, ip.payloadOffset, ip.payloadLength) !== OK) throw new Error('bad UDP header');
  return u;
}

/** tsecrOf reads the TSecr of a segment's timestamps option; -1 without one. */
export function tsecrOf(t: TcpView): number {
  const i = t.findOption(8);
  return i < 0 ? -1 : u32(t.buf, i + 6);
}
