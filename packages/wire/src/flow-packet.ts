import { tryParseIpv4 } from './address.js';
import { checksum, pseudoHeaderSum } from './checksum.js';
import { IPPROTO, writeIpv4Header } from './ipv4.js';
import { IPV6_HEADER, parseIpv6, pseudoHeaderSum6 } from './ipv6.js';
import { writeTcpHeader } from './tcp.js';
import { writeUdpHeader } from './udp.js';

/** FlowPacketSpec is a packet described by its 5-tuple (addresses as text of either family). */
export interface FlowPacketSpec {
  protocol: 'tcp' | 'udp';
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** TCP flag bits (TCP_FLAGS); TCP only */
  tcpFlags: number;
  /** the L4 payload (an RPC call for the MOUNT and NFS ports) */
  payload?: Uint8Array;
}

function address6(what: string, text: string): Uint8Array {
  try {
    return parseIpv6(text);
  } catch (e) {
    throw new RangeError(`${what}: ${(e as Error).message}`);
  }
}

/** MAX_IP_PACKET is what one IPv4 packet or one IPv6 packet without a jumbogram can carry. */
const MAX_IP_PACKET = 0xffff;

/**
 * buildFlowPacket builds the IPv4 or IPv6 packet (by the addresses' family) a flow describes, with its
 * checksums set (RFC 9293 §3.1, RFC 768; over the IPv6 pseudo-header, RFC 8200 §8.1), so explain runs
 * on the bytes a real packet would bring. Throws RangeError naming what is wrong: a port outside
 * 0-65535, an address that is neither, the two of different families, a payload too large.
 */
export function buildFlowPacket(f: FlowPacketSpec): Uint8Array {
  for (const [name, v] of [
    ['srcPort', f.srcPort],
    ['dstPort', f.dstPort],
  ] as const)
    if (!Number.isInteger(v) || v < 0 || v > 0xffff)
      throw new RangeError(`${name} must be 0-65535, got ${v}`);
  const six = f.src.includes(':');
  if (f.dst.includes(':') !== six)
    throw new RangeError(`src ${f.src} and dst ${f.dst} are of different address families`);
  const payload = f.payload ?? new Uint8Array(0);
  const ipHeader = six ? IPV6_HEADER : 20;
  const l4Header = f.protocol === 'tcp' ? 20 : 8;
  const l4Length = l4Header + payload.length;
  if ((six ? 0 : ipHeader) + l4Length > MAX_IP_PACKET)
    throw new RangeError(`payload of ${payload.length} bytes too large for one packet`);
  const protocol = f.protocol === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP;
  const buf = new Uint8Array(ipHeader + l4Length);
  let pseudo: number;
  if (six) {
    const src = address6('src', f.src);
    const dst = address6('dst', f.dst);
    // RFC 8200 §3: version 6, traffic class and flow label 0, hop limit 64
    buf[0] = 0x60;
    buf[4] = l4Length >>> 8;
    buf[5] = l4Length & 0xff;
    buf[6] = protocol;
    buf[7] = 64;
    buf.set(src, 8);
    buf.set(dst, 24);
    pseudo = pseudoHeaderSum6(buf, 8, 24, protocol, l4Length);
  } else {
    const src = tryParseIpv4(f.src);
    const dst = tryParseIpv4(f.dst);
    if (src < 0) throw new RangeError(`src: not an IPv4 or IPv6 address: ${JSON.stringify(f.src)}`);
    if (dst < 0) throw new RangeError(`dst: not an IPv4 or IPv6 address: ${JSON.stringify(f.dst)}`);
    writeIpv4Header(buf, 0, { src, dst, protocol, payloadLength: l4Length });
    pseudo = pseudoHeaderSum(src, dst, protocol, l4Length);
  }
  buf.set(payload, ipHeader + l4Header);
  if (f.protocol === 'tcp')
    writeTcpHeader(buf, ipHeader, { srcPort: f.srcPort, dstPort: f.dstPort, flags: f.tcpFlags, seq: 1 });
  else writeUdpHeader(buf, ipHeader, f.srcPort, f.dstPort, payload.length);
  const at = ipHeader + (f.protocol === 'tcp' ? 16 : 6);
  const c = checksum(buf, ipHeader, l4Length, pseudo);
  // a UDP checksum of 0 goes as 0xffff (RFC 768; mandatory over IPv6, RFC 8200 §8.1)
  const sum = c === 0 && f.protocol === 'udp' ? 0xffff : c;
  buf[at] = sum >>> 8;
  buf[at + 1] = sum & 0xff;
  return buf;
}
