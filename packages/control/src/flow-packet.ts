import { buildFlowPacket as buildPacket, TCP_FLAGS } from '@onehost/wire';

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
 * buildFlowPacket builds the IPv4 or IPv6 packet a flow describes (checksums set), so explain runs on the
 * same bytes a real packet would bring. Throws Error for addresses that are neither or of different
 * families, or bad flags (the service validates them first).
 */
export function buildFlowPacket(f: FlowSpec): Uint8Array {
  const flags = f.protocol === 'tcp' ? tcpFlagBits(f.tcpFlags === '' ? 'S' : f.tcpFlags) : 0;
  if (flags < 0) throw new Error(`bad TCP flags ${JSON.stringify(f.tcpFlags)}`);
  return buildPacket({
    protocol: f.protocol,
    src: f.srcAddress,
    dst: f.dstAddress,
    srcPort: f.srcPort,
    dstPort: f.dstPort,
    tcpFlags: flags,
    payload: f.payload,
  });
}
