import { checksum, parseIpv4, parseMac } from '@onehost/wire';

/** the probe payload starts with these bytes ("OHPR"), then the node id and the sequence (u32 each) */
export const PROBE_MAGIC = 0x4f485052;
export const PROBE_PAYLOAD_MIN = 12;

// Offsets in the datagram the gateway sends to the node's VXLAN port:
//   VXLAN header (RFC 7348 §5)  8  flags 0x08 (I: VNI valid), VNI in bytes 4-6
//   inner Ethernet             14  destination = the node's VXLAN device MAC (else the node's kernel
//                                  counts the frame "otherhost" and drops it), EtherType 0x0800
//   inner IPv4 (RFC 791)       20  gateway interconnect address → cluster address, DF, TTL 64, UDP
//   inner UDP (RFC 768)         8  checksum 0: "no checksum" is legal for IPv4 (RFC 768), and the
//                                  sequence can change without recomputing anything
const ETH = 8;
const IP = ETH + 14;
const UDP = IP + 20;
const PAYLOAD = UDP + 8;

export interface ProbeFrameSpec {
  vni: number;
  gatewayMac: string;
  nodeMac: string;
  /** inner source: the gateway's interconnect address (the node answers it there, unencapsulated) */
  source: string;
  sourcePort: number;
  /** inner destination: the cluster address, as for traffic */
  clusterAddress: string;
  probePort: number;
  nodeId: number;
  /** the inner IPv4 packet's length: the inner MTU, so a path that cannot carry full frames fails */
  innerLength: number;
}

/**
 * buildProbeFrame lays out one node's probe once; `setProbeSequence` is all a probe changes. Throws
 * RangeError when `innerLength` leaves no room for the payload or a field is malformed.
 */
export function buildProbeFrame(s: ProbeFrameSpec): Buffer {
  if (s.innerLength < 28 + PROBE_PAYLOAD_MIN || s.innerLength > 65535)
    throw new RangeError(`probe inner length ${s.innerLength}: 40 to 65535`);
  const b = Buffer.alloc(ETH + 14 + s.innerLength);
  b[0] = 0x08;
  b.writeUIntBE(s.vni, 4, 3);
  b.set(parseMac(s.nodeMac), ETH);
  b.set(parseMac(s.gatewayMac), ETH + 6);
  b.writeUInt16BE(0x0800, ETH + 12);
  b[IP] = 0x45;
  b.writeUInt16BE(s.innerLength, IP + 2);
  b.writeUInt16BE(0x4000, IP + 6); // DF: a link that cannot carry the frame must fail, not fragment
  b[IP + 8] = 64;
  b[IP + 9] = 17;
  b.writeUInt32BE(parseIpv4(s.source) >>> 0, IP + 12);
  b.writeUInt32BE(parseIpv4(s.clusterAddress) >>> 0, IP + 16);
  b.writeUInt16BE(checksum(b, IP, 20), IP + 10);
  b.writeUInt16BE(s.sourcePort, UDP);
  b.writeUInt16BE(s.probePort, UDP + 2);
  b.writeUInt16BE(s.innerLength - 20, UDP + 4);
  b.writeUInt32BE(PROBE_MAGIC, PAYLOAD);
  b.writeUInt32BE(s.nodeId >>> 0, PAYLOAD + 4);
  return b;
}

/** setProbeSequence writes the sequence of the next probe into a frame from buildProbeFrame. */
export function setProbeSequence(frame: Buffer, seq: number): void {
  frame.writeUInt32BE(seq >>> 0, PAYLOAD + 8);
}

/** readProbeReply returns the node id and sequence an agent echoed, or null for anything else. */
export function readProbeReply(msg: Buffer): { id: number; seq: number } | null {
  if (msg.length < PROBE_PAYLOAD_MIN || msg.readUInt32BE(0) !== PROBE_MAGIC) return null;
  return { id: msg.readUInt32BE(4), seq: msg.readUInt32BE(8) };
}
