import { u16 } from './bytes.js';
import { OK } from './errors.js';
import { IcmpView } from './icmp.js';
import { Icmp6View } from './icmp6.js';
import { IPPROTO, Ipv4View } from './ipv4.js';
import { IPPROTO_ICMPV6, Ipv6View, ipv6ToString } from './ipv6.js';
import { TcpView } from './tcp.js';
import { UDP_HEADER, UDP_TRUNCATED, UdpView } from './udp.js';

/** Where `PacketSummary.addr6` keeps each IPv6 address: four big-endian int32 words from this index. */
export const ADDR6 = { SRC: 0, DST: 4, INNER_SRC: 8, INNER_DST: 12 } as const;

/**
 * PacketSummary reads what the switch decides on from one IPv4 packet (`read`) or IPv6 packet (`read6`), into its own fields, reusing one
 * set of views: no allocation per packet. `read` returns OK or the first wire error code.
 *
 * The IPv4 header checksum is not verified here: packets reach the gateway through the host's routing
 * (TUN), and the kernel drops bad IPv4 header checksums before forwarding (ip_rcv). L4 checksums are
 * left to the receiving node.
 */
export class PacketSummary {
  readonly ip = new Ipv4View();
  readonly tcp = new TcpView();
  readonly udp = new UdpView();
  readonly icmp = new IcmpView();
  readonly ip6 = new Ipv6View();
  readonly icmp6 = new Icmp6View();

  /** 4 or 6: which `read` filled the fields. */
  family = 4;
  /** the upper-layer protocol (IPv6: after the extension headers; ICMPv6 is 58). */
  protocol = 0;
  /**
   * Addresses live in a typed array: a uint32 above 2^30 stored in a plain field is a heap number, which
   * would allocate on every packet. Read them through the getters.
   */
  private readonly addrs = new Uint32Array(4);
  get src(): number {
    return this.addrs[0]!;
  }
  get dst(): number {
    return this.addrs[1]!;
  }
  get innerSrc(): number {
    return this.addrs[2]!;
  }
  get innerDst(): number {
    return this.addrs[3]!;
  }
  /**
   * addr6 holds an IPv6 packet's addresses as int32 words (indexes in ADDR6). For IPv6 `src` and
   * `innerDst` hold a 32-bit fold of the full address (for hashes only: never compare it as an address)
   * and `dst`/`innerSrc` are 0.
   */
  readonly addr6 = new Int32Array(16);
  /** Ports are 0 when the packet is not TCP/UDP or is a non-first fragment. */
  srcPort = 0;
  dstPort = 0;
  tcpFlags = 0;
  totalLength = 0;
  ipHeaderOffset = 0;
  /** Index of the L4 header in the buffer (the IPv4 payload). */
  l4Offset = 0;
  /** L4 payload (after the TCP/UDP header); the IPv4 payload for other protocols and non-first fragments. */
  payloadOffset = 0;
  payloadLength = 0;
  isFragment = false;
  /** firstFragment: offset 0 with MF set; a fragment whose L4 header is present. */
  firstFragment = false;
  moreFragments = false;
  fragmentId = 0;
  dontFragment = false;

  isIcmpError = false;
  icmpType = -1;
  icmpCode = -1;
  /** hasInner: an ICMP error with a quoted IPv4 header; inner ports valid for quoted TCP/UDP. */
  hasInner = false;
  innerProtocol = 0;
  innerSrcPort = 0;
  innerDstPort = 0;

  /** read summarises buf[off, off+len); OK or a wire error code (fields are then partly stale). */
  read(buf: Uint8Array, off: number, len: number): number {
    const ip = this.ip;
    const code = ip.bind(buf, off, len);
    if (code !== OK) return code;
    const p = ip.protocol;
    this.protocol = p;
    // Assembled inline into the typed array: a uint32 returned from a call that is not inlined is boxed.
    this.family = 4;
    const a = this.addrs;
    a[0] = (buf[off + 12]! << 24) | (buf[off + 13]! << 16) | (buf[off + 14]! << 8) | buf[off + 15]!;
    a[1] = (buf[off + 16]! << 24) | (buf[off + 17]! << 16) | (buf[off + 18]! << 8) | buf[off + 19]!;
    const l4 = off + ip.headerLength;
    const l4Len = ip.len - ip.headerLength;
    this.startUpper(off, ip.len, l4, l4Len);
    const ff = u16(buf, off + 6);
    this.fragmentId = u16(buf, off + 4);
    this.dontFragment = (ff & 0x4000) !== 0;
    this.moreFragments = (ff & 0x2000) !== 0;
    const fragOff = ff & 0x1fff;
    this.isFragment = this.moreFragments || fragOff !== 0;
    this.firstFragment = this.moreFragments && fragOff === 0;
    if (fragOff !== 0) return OK;

    if (p === IPPROTO.TCP || p === IPPROTO.UDP) return this.readTransport(buf, p, l4, l4Len);
    if (p === IPPROTO.ICMP) {
      const i = this.icmp;
      const c = i.bind(buf, l4, l4Len);
      if (c !== OK) return c;
      this.icmpType = i.type;
      this.icmpCode = i.code;
      this.isIcmpError = i.isError;
      if (i.hasInner) {
        const inner = i.inner;
        this.hasInner = true;
        this.innerProtocol = inner.protocol;
        const io = inner.off;
        a[2] = (buf[io + 12]! << 24) | (buf[io + 13]! << 16) | (buf[io + 14]! << 8) | buf[io + 15]!;
        a[3] = (buf[io + 16]! << 24) | (buf[io + 17]! << 16) | (buf[io + 18]! << 8) | buf[io + 19]!;
        this.innerSrcPort = i.innerSrcPort;
        this.innerDstPort = i.innerDstPort;
      }
    }
    return OK;
  }

  /**
   * read6 summarises the IPv6 packet at buf[off, off+len) (RFC 8200): the extension-header chain is walked
   * once by Ipv6View (bounded; hostile chains come back as its error codes), `protocol` and the ports are
   * the upper layer's. OK or a wire error code.
   */
  read6(buf: Uint8Array, off: number, len: number): number {
    const ip = this.ip6;
    const code = ip.bind(buf, off, len);
    if (code !== OK) return code;
    this.family = 6;
    const p = ip.upperProtocol;
    this.protocol = p;
    const w = this.addr6;
    copyWords(buf, off + 8, w, ADDR6.SRC);
    copyWords(buf, off + 24, w, ADDR6.DST);
    const a = this.addrs;
    a[0] = fold6(w, ADDR6.SRC);
    a[1] = 0;
    a[2] = 0;
    a[3] = 0;
    const l4 = ip.upperOffset;
    const l4Len = ip.upperLength;
    this.startUpper(off, ip.len, l4, l4Len);
    this.fragmentId = ip.fragmentId;
    // RFC 8200 §5: routers never fragment IPv6, so every packet is "don't fragment"
    this.dontFragment = true;
    this.moreFragments = ip.moreFragments;
    this.isFragment = ip.isFragment;
    this.firstFragment = ip.isFragment && ip.fragmentOffset === 0;
    if (ip.fragmentOffset !== 0) return OK;

    if (p === IPPROTO.TCP || p === IPPROTO.UDP) return this.readTransport(buf, p, l4, l4Len);
    if (p === IPPROTO_ICMPV6) {
      const i = this.icmp6;
      const c = i.bind(buf, l4, l4Len);
      if (c !== OK) return c;
      this.icmpType = i.type;
      this.icmpCode = i.code;
      this.isIcmpError = i.isError;
      if (i.hasInnerPorts) {
        const inner = i.inner;
        this.hasInner = true;
        this.innerProtocol = inner.upperProtocol;
        copyWords(buf, inner.srcOffset, w, ADDR6.INNER_SRC);
        copyWords(buf, inner.dstOffset, w, ADDR6.INNER_DST);
        a[3] = fold6(w, ADDR6.INNER_DST);
        this.innerSrcPort = i.innerSrcPort;
        this.innerDstPort = i.innerDstPort;
      }
    }
    return OK;
  }

  /** startUpper records the IP header's place and clears what the upper layer fills. */
  private startUpper(off: number, totalLength: number, l4: number, l4Len: number): void {
    this.totalLength = totalLength;
    this.ipHeaderOffset = off;
    this.l4Offset = l4;
    this.payloadOffset = l4;
    this.payloadLength = l4Len;
    this.srcPort = 0;
    this.dstPort = 0;
    this.tcpFlags = 0;
    this.isIcmpError = false;
    this.hasInner = false;
    this.icmpType = -1;
    this.icmpCode = -1;
  }

  /** readTransport reads the TCP or UDP header at buf[l4, l4+l4Len) (either family). OK or a wire error code. */
  private readTransport(buf: Uint8Array, p: number, l4: number, l4Len: number): number {
    if (p === IPPROTO.TCP) {
      const t = this.tcp;
      const c = t.bind(buf, l4, l4Len);
      if (c !== OK) return c;
      this.srcPort = t.srcPort;
      this.dstPort = t.dstPort;
      this.tcpFlags = t.flags;
      this.payloadOffset = t.payloadOffset;
      this.payloadLength = t.payloadLength;
    } else if (this.firstFragment) {
      // A first fragment's UDP Length covers the whole datagram, not this fragment: take only the ports.
      if (l4Len < UDP_HEADER) return UDP_TRUNCATED;
      this.srcPort = u16(buf, l4);
      this.dstPort = u16(buf, l4 + 2);
      this.payloadOffset = l4 + UDP_HEADER;
      this.payloadLength = l4Len - UDP_HEADER;
    } else {
      const u = this.udp;
      const c = u.bind(buf, l4, l4Len);
      if (c !== OK) return c;
      this.srcPort = u.srcPort;
      this.dstPort = u.dstPort;
      this.payloadOffset = u.payloadOffset;
      this.payloadLength = u.payloadLength;
    }
    return OK;
  }
}

/** copyWords reads the 16 bytes at buf[off] into four big-endian int32 words of w from `at`. */
function copyWords(buf: Uint8Array, off: number, w: Int32Array, at: number): void {
  for (let i = 0; i < 4; i++) {
    const o = off + 4 * i;
    w[at + i] = (buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
  }
}

/** fold6 is a 32-bit mix of the four words at w[at]: a flow-hash input for an IPv6 address (uint32). */
export function fold6(w: Int32Array, at: number): number {
  let h = w[at]! ^ 0x6b43a9b5;
  for (let i = 1; i < 4; i++) h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) ^ w[at + i]!;
  h = Math.imul(h ^ (h >>> 16), 0x297a2d39);
  return (h ^ (h >>> 15)) >>> 0;
}

/** ipv6WordsText formats the address in words w[at..at+4) (as `addr6` holds them) as RFC 5952 text. */
export function ipv6WordsText(w: Int32Array, at: number): string {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  for (let i = 0; i < 4; i++) v.setInt32(4 * i, w[at + i]!);
  return ipv6ToString(b);
}
