import {
  IPPROTO,
  parseIpv4,
  TCP_FLAGS,
  TcpView,
  UdpView,
  writeIpv4Header,
  writeTcpHeader,
  writeUdpHeader,
} from '@onehost/wire';

/** FlowSpec is a packet described by its 5-tuple, TCP flags and payload. */
export interface FlowSpec {
  protocol: 'tcp' | 'udp';
  srcAddress: string;
  srcPort: number;
  dstAddress: string;
  dstPort: number;
  /** letters of "FSRPAU"; TCP only. */
  tcpFlags: string;
  payload: Uint8Array;
}

const FLAG_LETTERS: Record<string, number> = {
  F: TCP_FLAGS.FIN,
  S: TCP_FLAGS.SYN,
  R: TCP_FLAGS.RST,
  P: TCP_FLAGS.PSH,
  A: TCP_FLAGS.ACK,
  U: TCP_FLAGS.URG,
};

/** tcpFlagBits turns "SA" into SYN|ACK; -1 when a letter is not one of "FSRPAU" or repeats. */
export function tcpFlagBits(letters: string): number {
  let bits = 0;
  for (const ch of letters.toUpperCase()) {
    const b = FLAG_LETTERS[ch];
    if (b === undefined || (bits & b) !== 0) return -1;
    bits |= b;
  }
  return bits;
}

/**
 * buildFlowPacket builds the IPv4 packet a flow describes (checksums set), so explain runs on the same
 * bytes a real packet would bring. Throws Error for an address that is not IPv4 or bad flags (the
 * service validates them first).
 */
export function buildFlowPacket(f: FlowSpec): Uint8Array {
  const src = parseIpv4(f.srcAddress);
  const dst = parseIpv4(f.dstAddress);
  const l4Header = f.protocol === 'tcp' ? 20 : 8;
  const l4Length = l4Header + f.payload.length;
  const buf = new Uint8Array(20 + l4Length);
  writeIpv4Header(buf, 0, {
    src,
    dst,
    protocol: f.protocol === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP,
    payloadLength: l4Length,
  });
  buf.set(f.payload, 20 + l4Header);
  if (f.protocol === 'tcp') {
    const flags = tcpFlagBits(f.tcpFlags === '' ? 'S' : f.tcpFlags);
    if (flags < 0) throw new Error(`bad TCP flags ${JSON.stringify(f.tcpFlags)}`);
    writeTcpHeader(buf, 20, { srcPort: f.srcPort, dstPort: f.dstPort, flags, seq: 1 });
    const tcp = new TcpView();
    tcp.bind(buf, 20, l4Length);
    tcp.computeChecksum(src, dst);
  } else {
    writeUdpHeader(buf, 20, f.srcPort, f.dstPort, f.payload.length);
    const udp = new UdpView();
    udp.bind(buf, 20, l4Length);
    udp.computeChecksum(src, dst);
  }
  return buf;
}
