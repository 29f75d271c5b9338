import { IPPROTO, writeIpv4Header, writeTcpHeader, writeUdpHeader } from '@onehost/wire';

/** A flow to ask about without a captured packet (the control plane's ExplainRoute). */
export interface FlowQuestion {
  protocol: 'tcp' | 'udp';
  /** addresses as uint32 (see parseIpv4). */
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  /** TCP flags (TCP_FLAGS bits); default SYN, i.e. "where would a new connection go". */
  tcpFlags?: number;
  /** L4 payload (an RPC call for mount/nfs ports). */
  payload?: Uint8Array;
}

/**
 * flowPacket builds the IPv4 packet a flow question describes (checksums left 0: the switch does not
 * read them). Throws RangeError when a port is outside 0-65535 or the packet would exceed 65535 bytes.
 */
export function flowPacket(q: FlowQuestion): Uint8Array {
  for (const [name, v] of [
    ['srcPort', q.srcPort],
    ['dstPort', q.dstPort],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff)
      throw new RangeError(`${name} must be 0-65535, got ${v}`);
  }
  const payload = q.payload ?? new Uint8Array(0);
  const l4 = q.protocol === 'tcp' ? 20 : 8;
  if (20 + l4 + payload.length > 0xffff) throw new RangeError('payload too large for one IPv4 packet');
  const buf = new Uint8Array(20 + l4 + payload.length);
  const protocol = q.protocol === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP;
  writeIpv4Header(buf, 0, {
    src: q.src >>> 0,
    dst: q.dst >>> 0,
    protocol,
    payloadLength: l4 + payload.length,
  });
  if (q.protocol === 'tcp')
    writeTcpHeader(buf, 20, { srcPort: q.srcPort, dstPort: q.dstPort, flags: q.tcpFlags ?? 0x02, seq: 1 });
  else writeUdpHeader(buf, 20, q.srcPort, q.dstPort, payload.length);
  buf.set(payload, 20 + l4);
  return buf;
}
