import { IPPROTO, Ipv4View, Ipv6View, OK, TcpView } from '@onehost/wire';

/**
 * TcpSegmentView binds one TCP segment of either family (IPv4, or IPv6 with extension headers before
 * TCP; no fragments) and notes where its addresses are: what every reader of spliced segments needs
 * (the agent's Splicer, the gateway's shift table and client notes). Reusable; nothing allocates.
 */
export class TcpSegmentView {
  readonly tcp = new TcpView();
  private readonly ip4 = new Ipv4View();
  private readonly ip6 = new Ipv6View();
  /** an IPv6 segment: its addresses are at buf[srcAt] and buf[dstAt], 16 bytes each */
  six = false;
  srcAt = 0;
  dstAt = 0;
  /** an IPv4 segment's addresses as int32 (a uint32 of 2^31 or more may come back boxed) */
  src4 = 0;
  dst4 = 0;
  /** the packet's length, headers included, trailing bytes left out */
  length = 0;

  /** bind reads buf[off, off+len); false when it is not a whole TCP segment of either family. */
  bind(buf: Uint8Array, off: number, len: number): boolean {
    if (len < 1 || off < 0 || off >= buf.length) return false;
    if (buf[off]! >>> 4 === 6) {
      const ip = this.ip6;
      if (ip.bind(buf, off, len) !== OK || ip.upperProtocol !== IPPROTO.TCP || ip.isFragment) return false;
      this.six = true;
      this.srcAt = ip.srcOffset;
      this.dstAt = ip.dstOffset;
      this.length = ip.len;
      return this.tcp.bind(buf, ip.upperOffset, ip.upperLength) === OK;
    }
    const ip = this.ip4;
    if (ip.bind(buf, off, len) !== OK || ip.protocol !== IPPROTO.TCP || ip.isFragment) return false;
    this.six = false;
    this.src4 = ip.srcI32;
    this.dst4 = ip.dstI32;
    this.length = ip.totalLength;
    return this.tcp.bind(buf, off + ip.headerLength, ip.totalLength - ip.headerLength) === OK;
  }
}
