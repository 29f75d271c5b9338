import { put16, put32, u16, u32 } from './bytes.js';
import { type Checked, checked, defineError, OK } from './errors.js';

/*
 * RFC 7348 §5, carried in UDP to port 4789:
 *  0                   1                   2                   3
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |R|R|R|R|I|R|R|R|            Reserved                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                VXLAN Network Identifier (VNI) |   Reserved    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * followed by the inner Ethernet frame (no FCS): dst MAC, src MAC, EtherType.
 */
const FLAGS = 0;
const VNI = 4;
const ETH = 8;
const ETH_DST = ETH;
const ETH_SRC = ETH + 6;
const ETH_TYPE = ETH + 12;

export const VXLAN_PORT = 4789;
export const VXLAN_HEADER = 8;
export const ETHERNET_HEADER = 14;
/** What precedes the inner IPv4 packet inside the UDP payload. */
export const VXLAN_INNER_PREFIX = VXLAN_HEADER + ETHERNET_HEADER;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14): the MTU cost of encapsulation. */
export const VXLAN_OVERHEAD = 20 + 8 + VXLAN_INNER_PREFIX;
export const ETHERTYPE_IPV4 = 0x0800;
/** IPv6's EtherType (RFC 2464 §3): the inner frame of an IPv6 packet. */
export const ETHERTYPE_IPV6 = 0x86dd;
/** RFC 7348 §5: the I flag must be set for a valid VNI. */
const FLAG_I = 0x08;

export const VXLAN_TRUNCATED = defineError(401, 'truncated', 'vxlan_truncated');
export const VXLAN_NO_VNI_FLAG = defineError(402, 'malformed', 'vxlan_no_vni_flag');
export const VXLAN_NOT_IPV4 = defineError(403, 'malformed', 'vxlan_not_ipv4');

/** VxlanView is a reusable view over a VXLAN UDP payload carrying an IPv4 frame. */
export class VxlanView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** bind checks the VXLAN header and inner Ethernet header of a UDP payload; OK or a VXLAN_* code. */
  bind(buf: Uint8Array, off: number, len: number): number {
    if (off < 0 || len < VXLAN_INNER_PREFIX || off + len > buf.length) return VXLAN_TRUNCATED;
    if ((buf[off + FLAGS]! & FLAG_I) === 0) return VXLAN_NO_VNI_FLAG;
    if (u16(buf, off + ETH_TYPE) !== ETHERTYPE_IPV4) return VXLAN_NOT_IPV4;
    this.buf = buf;
    this.off = off;
    this.len = len;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<VxlanView> {
    const v = new VxlanView();
    return checked(v.bind(buf, off, len), v);
  }

  get vni(): number {
    return u32(this.buf, this.off + VNI) >>> 8;
  }
  /** dstMacOffset/srcMacOffset index the 6 MAC bytes in `buf` (use macToString to format). */
  get dstMacOffset(): number {
    return this.off + ETH_DST;
  }
  get srcMacOffset(): number {
    return this.off + ETH_SRC;
  }
  get etherType(): number {
    return u16(this.buf, this.off + ETH_TYPE);
  }
  get innerOffset(): number {
    return this.off + VXLAN_INNER_PREFIX;
  }
  get innerLength(): number {
    return this.len - VXLAN_INNER_PREFIX;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * writeVxlanPrefix writes the VXLAN header and inner Ethernet header (22 bytes) at buf[off], so the inner
 * packet (IPv4, or IPv6 with `etherType` ETHERTYPE_IPV6) follows at off + 22; returns 22. The outer IPv4/UDP headers are the kernel's (UDP socket).
 */
export function writeVxlanPrefix(
  buf: Uint8Array,
  off: number,
  vni: number,
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  etherType: number = ETHERTYPE_IPV4,
): number {
  put32(buf, off + FLAGS, FLAG_I << 24);
  put32(buf, off + VNI, (vni & 0xffffff) << 8);
  buf.set(dstMac.subarray(0, 6), off + ETH_DST);
  buf.set(srcMac.subarray(0, 6), off + ETH_SRC);
  put16(buf, off + ETH_TYPE, etherType);
  return VXLAN_INNER_PREFIX;
}
