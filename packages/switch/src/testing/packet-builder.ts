import {
  checksum,
  IPPROTO,
  parseIpv4,
  pseudoHeaderSum,
  put16,
  put32,
  writeIpv4Header,
  writeTcpHeader,
  writeUdpHeader,
} from '@onehost/wire';

/*
 * Packet builders for tests, examples and the benchmark: IPv4 + TCP/UDP/ICMP with correct checksums, and
 * ONC RPC calls for MOUNT and NFS. Off the hot path (they allocate); they throw on impossible input.
 */

export const ip = parseIpv4;

export interface L4Options {
  src: string | number;
  dst: string | number;
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array;
  id?: number;
  ttl?: number;
}

export interface TcpOptions extends L4Options {
  flags: number;
  seq?: number;
  ack?: number;
}

const addr = (a: string | number): number => (typeof a === 'number' ? a >>> 0 : parseIpv4(a));

/** tcpPacket builds an IPv4/TCP packet with valid IP and TCP checksums. */
export function tcpPacket(o: TcpOptions): Uint8Array {
  const payload = o.payload ?? new Uint8Array(0);
  const buf = new Uint8Array(20 + 20 + payload.length);
  const src = addr(o.src);
  const dst = addr(o.dst);
  writeIpv4Header(buf, 0, {
    src,
    dst,
    protocol: IPPROTO.TCP,
    payloadLength: 20 + payload.length,
    id: o.id ?? 0,
    ttl: o.ttl ?? 64,
  });
  writeTcpHeader(buf, 20, {
    srcPort: o.srcPort,
    dstPort: o.dstPort,
    seq: o.seq ?? 0,
    ack: o.ack ?? 0,
    flags: o.flags,
  });
  buf.set(payload, 40);
  const l4 = 20 + payload.length;
  put16(buf, 20 + 16, checksum(buf, 20, l4, pseudoHeaderSum(src, dst, IPPROTO.TCP, l4)));
  return buf;
}

/** udpPacket builds an IPv4/UDP packet with valid IP and UDP checksums. */
export function udpPacket(o: L4Options): Uint8Array {
  const payload = o.payload ?? new Uint8Array(0);
  const buf = new Uint8Array(20 + 8 + payload.length);
  const src = addr(o.src);
  const dst = addr(o.dst);
  writeIpv4Header(buf, 0, {
    src,
    dst,
    protocol: IPPROTO.UDP,
    payloadLength: 8 + payload.length,
    id: o.id ?? 0,
    ttl: o.ttl ?? 64,
  });
  writeUdpHeader(buf, 20, o.srcPort, o.dstPort, payload.length);
  buf.set(payload, 28);
  const l4 = 8 + payload.length;
  const c = checksum(buf, 20, l4, pseudoHeaderSum(src, dst, IPPROTO.UDP, l4));
  put16(buf, 20 + 6, c === 0 ? 0xffff : c);
  return buf;
}

/** rawIpPacket builds an IPv4 packet of any protocol around `payload`. */
export function rawIpPacket(
  src: string | number,
  dst: string | number,
  protocol: number,
  payload: Uint8Array,
  id = 0,
): Uint8Array {
  const buf = new Uint8Array(20 + payload.length);
  writeIpv4Header(buf, 0, { src: addr(src), dst: addr(dst), protocol, payloadLength: payload.length, id });
  buf.set(payload, 20);
  return buf;
}

/**
 * fragments splits a packet's IPv4 payload into fragments of at most `size` bytes (a multiple of 8),
 * RFC 791 §3.2, each with its own header and checksum. Throws RangeError when size is not a positive
 * multiple of 8.
 */
export function fragments(packet: Uint8Array, size: number): Uint8Array[] {
  if (size <= 0 || size % 8 !== 0)
    throw new RangeError(`fragment size must be a positive multiple of 8, got ${size}`);
  const hl = (packet[0]! & 0x0f) * 4;
  const payload = packet.subarray(hl);
  const out: Uint8Array[] = [];
  for (let o = 0; o < payload.length; o += size) {
    const part = payload.subarray(o, Math.min(payload.length, o + size));
    const f = new Uint8Array(hl + part.length);
    f.set(packet.subarray(0, hl), 0);
    f.set(part, hl);
    put16(f, 2, f.length);
    const more = o + size < payload.length;
    put16(f, 6, (more ? 0x2000 : 0) | (o / 8));
    put16(f, 10, 0);
    put16(f, 10, checksum(f, 0, hl));
    out.push(f);
  }
  return out;
}

/** icmpError builds an ICMP error (type/code) from `src` to `dst` quoting the first 28 bytes of `quoted`. */
export function icmpError(
  src: string | number,
  dst: string | number,
  type: number,
  code: number,
  quoted: Uint8Array,
): Uint8Array {
  const q = quoted.subarray(0, Math.min(quoted.length, (quoted[0]! & 0x0f) * 4 + 8));
  const icmp = new Uint8Array(8 + q.length);
  icmp[0] = type;
  icmp[1] = code;
  icmp.set(q, 8);
  put16(icmp, 2, checksum(icmp, 0, icmp.length));
  return rawIpPacket(src, dst, IPPROTO.ICMP, icmp);
}

/** echoRequest builds an ICMP echo request. */
export function echoRequest(src: string | number, dst: string | number, id = 1, type = 8): Uint8Array {
  const icmp = new Uint8Array(8);
  icmp[0] = type;
  put16(icmp, 4, id);
  put16(icmp, 6, 1);
  put16(icmp, 2, checksum(icmp, 0, 8));
  return rawIpPacket(src, dst, IPPROTO.ICMP, icmp);
}

/** echoReply is an ICMP echo reply (RFC 792, type 0) with identifier `id`. */
export function echoReply(src: string | number, dst: string | number, id: number): Uint8Array {
  return echoRequest(src, dst, id, 0);
}

export interface RpcCallOptions {
  xid?: number;
  prog: number;
  vers: number;
  proc: number;
  args?: Uint8Array;
  /** AUTH_SYS-sized credential body (bytes), default none (AUTH_NONE). */
  credLength?: number;
}

/** rpcCall encodes an ONC RPC call message (RFC 5531 §9), no record mark. */
export function rpcCall(o: RpcCallOptions): Uint8Array {
  const cred = o.credLength ?? 0;
  const credPad = (cred + 3) & ~3;
  const args = o.args ?? new Uint8Array(0);
  const buf = new Uint8Array(24 + 8 + credPad + 8 + args.length);
  put32(buf, 0, o.xid ?? 0x01020304);
  put32(buf, 4, 0);
  put32(buf, 8, 2);
  put32(buf, 12, o.prog);
  put32(buf, 16, o.vers);
  put32(buf, 20, o.proc);
  put32(buf, 24, cred > 0 ? 1 : 0);
  put32(buf, 28, cred);
  const verf = 32 + credPad;
  put32(buf, verf, 0);
  put32(buf, verf + 4, 0);
  buf.set(args, verf + 8);
  return buf;
}

/** xdrOpaque encodes a variable-length opaque/string (length word, bytes, padding). */
export function xdrOpaque(bytes: Uint8Array | string): Uint8Array {
  const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  const out = new Uint8Array(4 + ((b.length + 3) & ~3));
  put32(out, 0, b.length);
  out.set(b, 4);
  return out;
}

/** withRecordMark prefixes one last-fragment record mark (RFC 5531 §11). */
export function withRecordMark(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + msg.length);
  put32(out, 0, (0x80000000 | msg.length) >>> 0);
  out.set(msg, 4);
  return out;
}

/** mountCall is a MOUNT v3 call (proc 1 = MNT) for `dirpath`. */
export function mountCall(dirpath: string, proc = 1, credLength = 0): Uint8Array {
  return rpcCall({
    prog: 100005,
    vers: 3,
    proc,
    args: proc === 1 || proc === 3 ? xdrOpaque(dirpath) : undefined,
    credLength,
  });
}

/** ganeshaHandle is a 32-byte handle shaped like nfs-ganesha's: version 0x43, Export_Id big-endian at bytes 2-3. */
export function ganeshaHandle(exportId: number): Uint8Array {
  const h = new Uint8Array(32);
  h[0] = 0x43;
  put16(h, 2, exportId);
  for (let i = 4; i < 32; i++) h[i] = (i * 37) & 0xff;
  return h;
}

/** nfsCall is an NFSv3 call whose first argument is `handle` (GETATTR = 1 by default). */
export function nfsCall(handle: Uint8Array, proc = 1): Uint8Array {
  return rpcCall({ prog: 100003, vers: 3, proc, args: proc === 0 ? undefined : xdrOpaque(handle) });
}

/** toHex renders bytes as lower-case hex. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
