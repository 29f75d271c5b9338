import { buildFlowPacket, TCP_FLAGS } from '@onehost/wire';

/** A flow to ask about without a captured packet (explain --flow, the control plane's ExplainRoute). */
export interface FlowQuestion {
  protocol: 'tcp' | 'udp';
  /** addresses as text, both IPv4 or both IPv6 */
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** TCP flags (TCP_FLAGS bits); default SYN, i.e. "where would a new connection go". */
  tcpFlags?: number;
  /** L4 payload (an RPC call for mount/nfs ports). */
  payload?: Uint8Array;
}

/**
 * flowPacket builds the IPv4 or IPv6 packet a flow question describes. Throws RangeError when a port is
 * outside 0-65535, an address is not one, the families differ or the packet would be too large.
 */
export function flowPacket(q: FlowQuestion): Uint8Array {
  return buildFlowPacket({
    ...q,
    tcpFlags: q.protocol === 'tcp' ? (q.tcpFlags ?? TCP_FLAGS.SYN) : 0,
  });
}
