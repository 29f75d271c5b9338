import {
  checksum,
  IPPROTO,
  IPPROTO_ICMPV6,
  IPV6_EXT,
  parseIpv4,
  parseIpv6,
  pseudoHeaderSum,
  pseudoHeaderSum6,
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

/*
 * IPv6 builders (RFC 8200 §3): the fixed header, optional extension headers, then TCP/UDP/ICMPv6 with the
 * checksum over the IPv6 pseudo-header (§8.1).
 */

/** An extension header for `ipv6Packet`: its type (0 hop-by-hop, 43 routing, 60 destination, 44 fragment). */
export interface Ipv6Ext {
  type: number;
  /** Fragment header fields (type 44 only): offset in 8-octet units, M flag, identification */
  fragment?: { offset: number; more: boolean; id: number };
}

const a6 = (a: string | Uint8Array): Uint8Array => (typeof a === 'string' ? parseIpv6(a) : a);

/**
 * ipv6Packet wraps an upper-layer `payload` of protocol `next` in an IPv6 header and the given extension
 * headers (8 bytes each, padded with PadN). The payload's checksum must already be right.
 */
export function ipv6Packet(
  src: string | Uint8Array,
  dst: string | Uint8Array,
  next: number,
  payload: Uint8Array,
  exts: readonly Ipv6Ext[] = [],
): Uint8Array {
  const buf = new Uint8Array(40 + 8 * exts.length + payload.length);
  buf[0] = 0x60;
  put16(buf, 4, buf.length - 40);
  buf[6] = exts.length > 0 ? exts[0]!.type : next;
  buf[7] = 64;
  buf.set(a6(src), 8);
  buf.set(a6(dst), 24);
  exts.forEach((e, i) => {
    const at = 40 + 8 * i;
    buf[at] = i + 1 < exts.length ? exts[i + 1]!.type : next;
    if (e.type === IPV6_EXT.FRAGMENT) {
      const f = e.fragment ?? { offset: 0, more: false, id: 0 };
      put16(buf, at + 2, (f.offset << 3) | (f.more ? 1 : 0));
      put32(buf, at + 4, f.id);
    } else {
      buf[at + 1] = 0; // Hdr Ext Len 0: 8 bytes
      buf[at + 2] = 1; // PadN option (RFC 8200 §4.2) over the 4 bytes left
      buf[at + 3] = 4;
    }
  });
  buf.set(payload, 40 + 8 * exts.length);
  return buf;
}

/**
 * fragments6 splits an IPv6 packet without extension headers into fragments (RFC 8200 §4.5): each is the
 * fixed header, a Fragment header (`id`, its offset, M on all but the last) and at most `size` bytes of
 * what followed the fixed header. Throws RangeError when size is not a positive multiple of 8.
 */
export function fragments6(packet: Uint8Array, size: number, id: number): Uint8Array[] {
  if (size <= 0 || size % 8 !== 0)
    throw new RangeError(`fragment size must be a positive multiple of 8, got ${size}`);
  const next = packet[6]!;
  const rest = packet.subarray(40);
  const out: Uint8Array[] = [];
  for (let o = 0; o < rest.length; o += size) {
    const part = rest.subarray(o, Math.min(rest.length, o + size));
    const f = new Uint8Array(48 + part.length);
    f.set(packet.subarray(0, 40), 0);
    put16(f, 4, 8 + part.length);
    f[6] = IPV6_EXT.FRAGMENT;
    f[40] = next;
    put16(f, 42, o | (o + size < rest.length ? 1 : 0));
    put32(f, 44, id);
    f.set(part, 48);
    out.push(f);
  }
  return out;
}

/** l4Checksum6 writes the checksum of the upper layer at `upper` (field at upper+csumAt) over the pseudo-header. */
function l4Checksum6(buf: Uint8Array, upper: number, protocol: number, csumAt: number): void {
  const len = buf.length - upper;
  put16(buf, upper + csumAt, 0);
  const c = checksum(buf, upper, len, pseudoHeaderSum6(buf, 8, 24, protocol, len));
  put16(buf, upper + csumAt, c === 0 && protocol === IPPROTO.UDP ? 0xffff : c);
}

export interface Tcp6Options extends Omit<TcpOptions, 'src' | 'dst'> {
  src: string;
  dst: string;
  exts?: readonly Ipv6Ext[];
}

/** tcp6Packet builds an IPv6/TCP packet with a valid checksum. */
export function tcp6Packet(o: Tcp6Options): Uint8Array {
  const payload = o.payload ?? new Uint8Array(0);
  const tcp = new Uint8Array(20 + payload.length);
  writeTcpHeader(tcp, 0, {
    srcPort: o.srcPort,
    dstPort: o.dstPort,
    seq: o.seq ?? 0,
    ack: o.ack ?? 0,
    flags: o.flags,
  });
  tcp.set(payload, 20);
  const buf = ipv6Packet(o.src, o.dst, IPPROTO.TCP, tcp, o.exts);
  l4Checksum6(buf, buf.length - tcp.length, IPPROTO.TCP, 16);
  return buf;
}

export interface Udp6Options extends Omit<L4Options, 'src' | 'dst'> {
  src: string;
  dst: string;
  exts?: readonly Ipv6Ext[];
}

/** udp6Packet builds an IPv6/UDP packet with a valid checksum (mandatory in IPv6, RFC 8200 §8.1). */
export function udp6Packet(o: Udp6Options): Uint8Array {
  const payload = o.payload ?? new Uint8Array(0);
  const udp = new Uint8Array(8 + payload.length);
  writeUdpHeader(udp, 0, o.srcPort, o.dstPort, payload.length);
  udp.set(payload, 8);
  const buf = ipv6Packet(o.src, o.dst, IPPROTO.UDP, udp, o.exts);
  l4Checksum6(buf, buf.length - udp.length, IPPROTO.UDP, 6);
  return buf;
}

/** icmp6Packet builds an ICMPv6 message (RFC 4443 §2.1): type, code, the 4-byte word, then `body`. */
export function icmp6Packet(
  src: string,
  dst: string,
  type: number,
  code: number,
  word: number,
  body: Uint8Array,
): Uint8Array {
  const m = new Uint8Array(8 + body.length);
  m[0] = type;
  m[1] = code;
  put32(m, 4, word);
  m.set(body, 8);
  const buf = ipv6Packet(src, dst, IPPROTO_ICMPV6, m);
  l4Checksum6(buf, 40, IPPROTO_ICMPV6, 2);
  return buf;
}

/** echo6Reply is an ICMPv6 echo reply (RFC 4443 §4.2, type 129) with identifier `id`. */
export function echo6Reply(src: string, dst: string, id: number): Uint8Array {
  return icmp6Packet(src, dst, 129, 0, (id << 16) | 1, new Uint8Array(0));
}

/** icmp6Error is an ICMPv6 error quoting `quoted` (RFC 4443 §2.4 (c)); Packet Too Big carries the MTU in `word`. */
export function icmp6Error(
  src: string,
  dst: string,
  type: number,
  code: number,
  quoted: Uint8Array,
  word = 0,
): Uint8Array {
  return icmp6Packet(src, dst, type, code, word, quoted.subarray(0, Math.min(quoted.length, 1232)));
}
