import { put16, put32, u16, u32 } from './bytes.js';
import { checksum, fold, sum16 } from './checksum.js';
import { type Checked, checked, defineError, OK } from './errors.js';
import {
  IPPROTO_ICMPV6,
  IPV6_EXT_PAST_END,
  IPV6_HEADER,
  IPV6_TRUNCATED,
  Ipv6View,
  pseudoHeaderSum6,
} from './ipv6.js';

/*
 * RFC 4443 §2.1: every ICMPv6 message starts with type, code and checksum; error messages (types 0-127,
 * §2.1) carry 4 more bytes (Packet Too Big: the MTU, §3.2; Parameter Problem: a pointer, §3.4) and then
 * as much of the invoking packet as fits the minimum MTU (§2.4 (c)).
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 MTU / Pointer / unused / echo id + seq        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          as much of the invoking packet as fits (errors)      |
 */
const TYPE = 0;
const CODE = 1;
const WORD = 4;

export const ICMP6_HEADER = 8;

export const ICMP6_TYPE = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
} as const;

/** The smallest MTU an IPv6 link has (RFC 8200 §5): a Packet Too Big below it is bogus. */
export const IPV6_MIN_MTU = 1280;

export const ICMP6_TRUNCATED = defineError(721, 'truncated', 'icmp6_truncated');
export const ICMP6_INNER_TRUNCATED = defineError(722, 'truncated', 'icmp6_inner_truncated');
export const ICMP6_INNER_MALFORMED = defineError(723, 'malformed', 'icmp6_inner_malformed');
export const ICMP6_MTU_TOO_SMALL = defineError(724, 'malformed', 'icmp6_mtu_too_small');

/**
 * Icmp6View is a reusable view over one ICMPv6 message (the upper layer of an Ipv6View). For error
 * messages `bind` also binds `inner` to the quoted packet, and `hasInnerPorts` says whether its TCP/UDP
 * ports are there, so a quoted flow can be routed like the flow itself.
 */
export class Icmp6View {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  readonly inner = new Ipv6View();
  hasInner = false;
  hasInnerPorts = false;

  /** bind checks and points the view at buf[off, off+len); returns OK or an ICMP6_* code. */
  bind(buf: Uint8Array, off: number, len: number): number {
    // every message we read has its second word (errors: MTU/pointer; echo: id and sequence, §4.1)
    if (off < 0 || len < ICMP6_HEADER || off + len > buf.length) return ICMP6_TRUNCATED;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.hasInner = false;
    this.hasInnerPorts = false;
    const type = buf[off + TYPE]!;
    if (type >= 128) return OK;
    if (type === ICMP6_TYPE.PACKET_TOO_BIG && u32(buf, off + WORD) < IPV6_MIN_MTU) return ICMP6_MTU_TOO_SMALL;
    const code = this.inner.bindQuoted(buf, off + ICMP6_HEADER, len - ICMP6_HEADER);
    if (code !== OK)
      return code === IPV6_TRUNCATED || code === IPV6_EXT_PAST_END
        ? ICMP6_INNER_TRUNCATED
        : ICMP6_INNER_MALFORMED;
    this.hasInner = true;
    const p = this.inner.upperProtocol;
    this.hasInnerPorts = (p === 6 || p === 17) && this.inner.isFirstFragment && this.inner.upperLength >= 4;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<Icmp6View> {
    const v = new Icmp6View();
    return checked(v.bind(buf, off, len), v);
  }

  get type(): number {
    return this.buf[this.off + TYPE]!;
  }
  get code(): number {
    return this.buf[this.off + CODE]!;
  }
  /** isError: types 0-127 (RFC 4443 §2.1) */
  get isError(): boolean {
    return this.type < 128;
  }
  /** mtu of a Packet Too Big (RFC 4443 §3.2) */
  get mtu(): number {
    return u32(this.buf, this.off + WORD);
  }
  /** the quoted packet's ports; 0 unless hasInnerPorts */
  get innerSrcPort(): number {
    return this.hasInnerPorts ? u16(this.buf, this.inner.upperOffset) : 0;
  }
  get innerDstPort(): number {
    return this.hasInnerPorts ? u16(this.buf, this.inner.upperOffset + 2) : 0;
  }

  /** checksumOk: the checksum over the pseudo-header of `ip` (RFC 4443 §2.3; mandatory in ICMPv6) */
  checksumOk(ip: Ipv6View): boolean {
    const s = pseudoHeaderSum6(ip.buf, ip.srcOffset, ip.dstOffset, IPPROTO_ICMPV6, this.len);
    return fold(sum16(this.buf, this.off, this.len, s)) === 0xffff;
  }
}

const EMPTY = new Uint8Array(0);

/** The most of an invoking packet a Packet Too Big quotes: the minimum MTU less its own headers (RFC 4443 §2.4 (c)). */
export const PTB_MAX_QUOTE = IPV6_MIN_MTU - IPV6_HEADER - ICMP6_HEADER;

/**
 * writePacketTooBig builds a complete IPv6 Packet Too Big (RFC 4443 §3.2: type 2, code 0, the MTU) at
 * out[off] from `from` (16 bytes at from[fromOff]) to the source of `orig`, quoting as much of `orig` as
 * fits without the message exceeding the minimum IPv6 MTU (§2.4 (c)), with its checksum over the IPv6
 * pseudo-header (§2.3, RFC 8200 §8.1). Returns the length written; `out` needs IPV6_MIN_MTU bytes at most.
 */
export function writePacketTooBig(
  out: Uint8Array,
  off: number,
  orig: Ipv6View,
  from: Uint8Array,
  fromOff: number,
  mtu: number,
): number {
  const quoted = Math.min(orig.len, PTB_MAX_QUOTE);
  const icmpLen = ICMP6_HEADER + quoted;
  // RFC 8200 §3: version 6, traffic class and flow label 0
  put32(out, off, 0x60000000);
  put16(out, off + 4, icmpLen);
  out[off + 6] = IPPROTO_ICMPV6;
  out[off + 7] = 64;
  out.set(from.subarray(fromOff, fromOff + 16), off + 8);
  out.set(orig.buf.subarray(orig.srcOffset, orig.srcOffset + 16), off + 24);
  const o = off + IPV6_HEADER;
  out[o + TYPE] = ICMP6_TYPE.PACKET_TOO_BIG;
  out[o + CODE] = 0;
  put16(out, o + 2, 0);
  put32(out, o + WORD, mtu);
  out.set(orig.buf.subarray(orig.off, orig.off + quoted), o + ICMP6_HEADER);
  put16(
    out,
    o + 2,
    checksum(out, o, icmpLen, pseudoHeaderSum6(out, off + 8, off + 24, IPPROTO_ICMPV6, icmpLen)),
  );
  return IPV6_HEADER + icmpLen;
}

/*
 * RFC 4861 §4.4 Neighbor Advertisement, with the Target Link-Layer Address option (§4.6.1; for Ethernet
 * its length is 1 unit of 8 bytes, RFC 2464 §6):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |R|S|O|                     Reserved                            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       Target Address (128 bits)               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Type (2)     |  Length (1)   |    Link-Layer Address (6 bytes) ...
 */
export const NEIGHBOR_ADVERT_LENGTH = 8 + 16 + 8;
const NA_ROUTER = 0x80;
const NA_SOLICITED = 0x40;
const NA_OVERRIDE = 0x20;
const ND_OPT_TARGET_LINK_LAYER = 2;

/**
 * writeNeighborAdvert writes an ICMPv6 Neighbor Advertisement for `target` (16 bytes) with `mac` (6
 * bytes) as its Target Link-Layer Address into buf[off..off+32) and returns its length. The checksum is
 * left 0: a raw ICMPv6 socket has the kernel compute it over the pseudo-header (RFC 3542 §3.1), which
 * only the kernel knows the source address of. An unsolicited advertisement (RFC 4861 §7.2.6) has
 * `solicited` clear; `override` set makes receivers replace a cached link-layer address (§7.2.5). Throws
 * RangeError when `buf` has no room or an address has the wrong length.
 */
export function writeNeighborAdvert(
  buf: Uint8Array,
  off: number,
  target: Uint8Array,
  mac: Uint8Array,
  flags: { router?: boolean; solicited?: boolean; override?: boolean },
): number {
  if (target.length !== 16 || mac.length !== 6) throw new RangeError('target is 16 bytes, mac 6');
  if (off < 0 || off + NEIGHBOR_ADVERT_LENGTH > buf.length)
    throw new RangeError('no room for the advertisement');
  buf.fill(0, off, off + NEIGHBOR_ADVERT_LENGTH);
  buf[off + TYPE] = ICMP6_TYPE.NEIGHBOR_ADVERTISEMENT;
  buf[off + WORD] =
    (flags.router === true ? NA_ROUTER : 0) |
    (flags.solicited === true ? NA_SOLICITED : 0) |
    (flags.override === true ? NA_OVERRIDE : 0);
  buf.set(target, off + 8);
  buf[off + 24] = ND_OPT_TARGET_LINK_LAYER;
  buf[off + 25] = 1;
  buf.set(mac, off + 26);
  return NEIGHBOR_ADVERT_LENGTH;
}
