// Packet builders for tests only (this package imports nothing else, on purpose).

/** ipv4Bytes parses dotted-quad text. Throws on anything else. */
export function ipv4Bytes(text: string): number[] {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`bad IPv4 address ${text}`);
  }
  return parts;
}

/** checksum is the Internet checksum (RFC 1071) of buf[start, end). */
export function checksum(buf: Uint8Array, start = 0, end = buf.length): number {
  let sum = 0;
  for (let i = start; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if ((end - start) % 2 === 1) sum += buf[end - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** udpPacket builds IPv4 + UDP (RFC 791, RFC 768) with a valid header checksum and UDP checksum 0. */
export function udpPacket(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  payload: Uint8Array,
): Buffer {
  const p = Buffer.alloc(28 + payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 17;
  p.set(ipv4Bytes(src), 12);
  p.set(ipv4Bytes(dst), 16);
  p.writeUInt16BE(checksum(p, 0, 20), 10);
  p.writeUInt16BE(sport, 20);
  p.writeUInt16BE(dport, 22);
  p.writeUInt16BE(8 + payload.length, 24);
  p.set(payload, 28);
  return p;
}

/** echoReply turns an ICMP echo request (IPv4, RFC 792) into its reply, or returns null. */
export function echoReply(req: Uint8Array): Buffer | null {
  if (req.length < 28 || req[0]! >> 4 !== 4 || req[9] !== 1) return null;
  const ihl = (req[0]! & 0x0f) * 4;
  if (req[ihl] !== 8) return null;
  const p = Buffer.from(req);
  p.set(req.subarray(16, 20), 12);
  p.set(req.subarray(12, 16), 16);
  p.writeUInt16BE(0, 10);
  p.writeUInt16BE(checksum(p, 0, ihl), 10);
  p[ihl] = 0;
  p.writeUInt16BE(0, ihl + 2);
  p.writeUInt16BE(checksum(p, ihl, p.length), ihl + 2);
  return p;
}

/** vxlanPrefix is the VXLAN header (RFC 7348 §5, I flag set) plus the inner Ethernet header for IPv4. */
export function vxlanPrefix(
  vni: number,
  innerDstMac: string,
  innerSrcMac: string,
  etherType = 0x0800,
): Buffer {
  const p = Buffer.alloc(8 + 14);
  p[0] = 0x08;
  p.writeUIntBE(vni, 4, 3);
  p.set(macBytes(innerDstMac), 8);
  p.set(macBytes(innerSrcMac), 14);
  p.writeUInt16BE(etherType, 20);
  return p;
}

function macBytes(mac: string): number[] {
  const parts = mac.split(':').map((h) => Number.parseInt(h, 16));
  if (parts.length !== 6 || parts.some((b) => !(b >= 0 && b <= 255))) throw new Error(`bad MAC ${mac}`);
  return parts;
}

/** Batch packs packets into one arena with META_STRIDE metadata, as a receive batch would look. */
export function packBatch(packets: readonly Uint8Array[]): { arena: Buffer; meta: Int32Array } {
  const arena = Buffer.alloc(packets.reduce((n, p) => n + p.length, 0));
  const meta = new Int32Array(packets.length * 4);
  let off = 0;
  packets.forEach((p, i) => {
    arena.set(p, off);
    meta[i * 4] = off;
    meta[i * 4 + 1] = p.length;
    off += p.length;
  });
  return { arena, meta };
}

/**
 * tcp6Partial builds IPv6 + TCP (RFC 8200, RFC 9293): an ACK with `payload`, behind `destOpts` bytes of
 * Destination Options (a multiple of 8, 0 for none), whose checksum field holds only the pseudo
 * header's sum (RFC 8200 §8.1): what a stack with checksum offload hands over, to be completed later.
 */
export function tcp6Partial(src: Uint8Array, dst: Uint8Array, payload: Uint8Array, destOpts = 0): Buffer {
  const tcpLen = 20 + payload.length;
  const p = Buffer.alloc(40 + destOpts + tcpLen);
  p[0] = 0x60;
  p.writeUInt16BE(destOpts + tcpLen, 4);
  p[6] = destOpts > 0 ? 60 : 6;
  p[7] = 64;
  p.set(src, 8);
  p.set(dst, 24);
  if (destOpts > 0) {
    p[40] = 6; // next header TCP
    p[41] = destOpts / 8 - 1;
    p[42] = 1; // PadN over the rest
    p[43] = destOpts - 4;
  }
  const t = 40 + destOpts;
  p.writeUInt16BE(40000, t);
  p.writeUInt16BE(2049, t + 2);
  p.writeUInt32BE(1, t + 4);
  p.writeUInt32BE(1, t + 8);
  p[t + 12] = 5 << 4;
  p[t + 13] = 0x10; // ACK
  p.writeUInt16BE(1000, t + 14);
  p.set(payload, t + 20);
  // the pseudo header (addresses, upper-layer length, next header), folded, not complemented
  const pseudo = Buffer.alloc(40);
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  pseudo.writeUInt32BE(tcpLen, 32);
  pseudo[39] = 6;
  p.writeUInt16BE(~checksum(pseudo) & 0xffff, t + 16);
  return p;
}

/** tcp6ChecksumOk verifies the TCP checksum of an IPv6 packet whose TCP header is at `t`. */
export function tcp6ChecksumOk(p: Uint8Array, t: number): boolean {
  const tcpLen = p.length - t;
  const pseudo = Buffer.alloc(40 + tcpLen);
  pseudo.set(p.subarray(8, 40), 0);
  pseudo.writeUInt32BE(tcpLen, 32);
  pseudo[39] = 6;
  pseudo.set(p.subarray(t), 40);
  return checksum(pseudo) === 0;
}
