import { u16 } from './bytes.js';
import { OK } from './errors.js';
import { IcmpView } from './icmp.js';
import { IPPROTO, Ipv4View } from './ipv4.js';
import { TcpView } from './tcp.js';
import { UDP_HEADER, UDP_TRUNCATED, UdpView } from './udp.js';

/**
 * PacketSummary reads what the switch decides on from one IPv4 packet, into its own fields, reusing one
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
    const a = this.addrs;
    a[0] = (buf[off + 12]! << 24) | (buf[off + 13]! << 16) | (buf[off + 14]! << 8) | buf[off + 15]!;
    a[1] = (buf[off + 16]! << 24) | (buf[off + 17]! << 16) | (buf[off + 18]! << 8) | buf[off + 19]!;
    this.totalLength = ip.len;
    this.ipHeaderOffset = off;
    const l4 = off + ip.headerLength;
    const l4Len = ip.len - ip.headerLength;
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
    const ff = u16(buf, off + 6);
    this.fragmentId = u16(buf, off + 4);
    this.dontFragment = (ff & 0x4000) !== 0;
    this.moreFragments = (ff & 0x2000) !== 0;
    const fragOff = ff & 0x1fff;
    this.isFragment = this.moreFragments || fragOff !== 0;
    this.firstFragment = this.moreFragments && fragOff === 0;
    if (fragOff !== 0) return OK;

    if (p === IPPROTO.TCP) {
      const t = this.tcp;
      const c = t.bind(buf, l4, l4Len);
      if (c !== OK) return c;
      this.srcPort = t.srcPort;
      this.dstPort = t.dstPort;
      this.tcpFlags = t.flags;
      this.payloadOffset = t.payloadOffset;
      this.payloadLength = t.payloadLength;
    } else if (p === IPPROTO.UDP && this.firstFragment) {
      // A first fragment's UDP Length covers the whole datagram, not this fragment: take only the ports.
      if (l4Len < UDP_HEADER) return UDP_TRUNCATED;
      this.srcPort = u16(buf, l4);
      this.dstPort = u16(buf, l4 + 2);
      this.payloadOffset = l4 + UDP_HEADER;
      this.payloadLength = l4Len - UDP_HEADER;
    } else if (p === IPPROTO.UDP) {
      const u = this.udp;
      const c = u.bind(buf, l4, l4Len);
      if (c !== OK) return c;
      this.srcPort = u.srcPort;
      this.dstPort = u.dstPort;
      this.payloadOffset = u.payloadOffset;
      this.payloadLength = u.payloadLength;
    } else if (p === IPPROTO.ICMP) {
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
}
