import { u16, u32 } from './bytes.js';
import { fold, sum16 } from './checksum.js';
import { type Checked, checked, defineError, OK } from './errors.js';

/*
 * RFC 8200 §3
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version| Traffic Class |           Flow Label                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |         Payload Length        |  Next Header  |   Hop Limit   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       Source Address (128 bits)               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Destination Address (128 bits)             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
const VER_TC_FLOW = 0;
const PAYLOAD_LENGTH = 4;
const NEXT_HEADER = 6;
const HOP_LIMIT = 7;
const SRC = 8;
const DST = 24;

export const IPV6_HEADER = 40;

/** Next Header values of the extension headers we walk (RFC 8200 §4; IANA "IPv6 Extension Header Types"). */
export const IPV6_EXT = {
  HOP_BY_HOP: 0,
  ROUTING: 43,
  FRAGMENT: 44,
  DESTINATION: 60,
  NO_NEXT_HEADER: 59,
} as const;

/** ICMPv6's protocol number (RFC 4443 §1). */
export const IPPROTO_ICMPV6 = 58;

/**
 * At most this many extension headers are walked: RFC 8200 §4.1 recommends at most one of each (two
 * Destination Options); a longer chain is a hostile one (RFC 9098 §4), dropped with a reason.
 */
export const IPV6_MAX_EXT_HEADERS = 6;

export const IPV6_TRUNCATED = defineError(701, 'truncated', 'ipv6_truncated');
export const IPV6_BAD_VERSION = defineError(702, 'malformed', 'ipv6_bad_version');
export const IPV6_PAYLOAD_LENGTH_PAST_BUFFER = defineError(
  703,
  'truncated',
  'ipv6_payload_length_past_buffer',
);
export const IPV6_EXT_PAST_END = defineError(704, 'malformed', 'ipv6_ext_past_end');
export const IPV6_TOO_MANY_EXT = defineError(705, 'malformed', 'ipv6_too_many_ext_headers');
export const IPV6_HOP_BY_HOP_NOT_FIRST = defineError(706, 'malformed', 'ipv6_hop_by_hop_not_first');
export const IPV6_CHAIN_INCOMPLETE = defineError(707, 'malformed', 'ipv6_header_chain_incomplete');
export const IPV6_FRAGMENT_OVERFLOW = defineError(708, 'malformed', 'ipv6_fragment_overflow');
export const IPV6_SECOND_FRAGMENT_HEADER = defineError(709, 'malformed', 'ipv6_second_fragment_header');

const FRAG_OFFSET_MASK = 0xfff8;
const FRAG_M = 0x0001;

/**
 * Ipv6View is a reusable view over one IPv6 packet. `bind` checks the fixed header, trims the packet to
 * its Payload Length and walks the extension-header chain once (bounded, RFC 8200 §4), so afterwards the
 * upper-layer protocol and where it starts, and the fragment fields, are plain fields: no getter can read
 * out of bounds, nothing allocates.
 */
export class Ipv6View {
  buf: Uint8Array = EMPTY;
  off = 0;
  /** 40 + Payload Length: the packet trimmed of trailing bytes */
  len = 0;
  /** the protocol after the extension headers (TCP, UDP, ICMPv6, or 59: none) */
  upperProtocol = 0;
  /** index into `buf` of the upper-layer header; in a non-first fragment, where its fragment data starts */
  upperOffset = 0;
  /** extension headers walked */
  extCount = 0;
  /** a Fragment header is present (an atomic fragment, RFC 6946, included) */
  hasFragmentHeader = false;
  /** in 8-octet units, as on the wire */
  fragmentOffset = 0;
  moreFragments = false;
  fragmentId = 0;

  /** bind checks and points the view at buf[off, off+len); returns OK or an IPV6_* code. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (off < 0 || len < IPV6_HEADER || off + len > buf.length) return IPV6_TRUNCATED;
    if (buf[off]! >>> 4 !== 6) return IPV6_BAD_VERSION;
    const total = IPV6_HEADER + u16(buf, off + PAYLOAD_LENGTH);
    if (total > len) return IPV6_PAYLOAD_LENGTH_PAST_BUFFER;
    this.buf = buf;
    this.off = off;
    this.len = total;
    return this.walk(false);
  }

  /**
   * bindQuoted binds a packet quoted in an ICMPv6 error (RFC 4443 §2.4 (c)): as much of it as fits, so
   * Payload Length is not checked against the buffer, `len` is what is there, and the upper-layer header
   * may be cut short (`upperLength` says how much of it is present).
   */
  bindQuoted(buf: Uint8Array, off: number, len: number): number {
    if (off < 0 || len < IPV6_HEADER || off + len > buf.length) return IPV6_TRUNCATED;
    if (buf[off]! >>> 4 !== 6) return IPV6_BAD_VERSION;
    this.buf = buf;
    this.off = off;
    this.len = Math.min(len, IPV6_HEADER + u16(buf, off + PAYLOAD_LENGTH));
    return this.walk(true);
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<Ipv6View> {
    const v = new Ipv6View();
    return checked(v.bind(buf, off, len), v);
  }

  /** walk follows Next Header through the extension headers (RFC 8200 §4.1 order rules, RFC 7112). */
  private walk(quoted: boolean): number {
    const b = this.buf;
    const end = this.off + this.len;
    let next = b[this.off + NEXT_HEADER]!;
    let at = this.off + IPV6_HEADER;
    this.extCount = 0;
    this.hasFragmentHeader = false;
    this.fragmentOffset = 0;
    this.moreFragments = false;
    this.fragmentId = 0;
    for (;;) {
      if (
        next !== IPV6_EXT.HOP_BY_HOP &&
        next !== IPV6_EXT.ROUTING &&
        next !== IPV6_EXT.FRAGMENT &&
        next !== IPV6_EXT.DESTINATION
      )
        break;
      // RFC 8200 §4.3: Hop-by-Hop only right after the fixed header
      if (next === IPV6_EXT.HOP_BY_HOP && this.extCount > 0) return IPV6_HOP_BY_HOP_NOT_FIRST;
      if (this.extCount === IPV6_MAX_EXT_HEADERS) return IPV6_TOO_MANY_EXT;
      // every extension header starts with Next Header and (but Fragment) Hdr Ext Len in 8-octet units
      if (at + 8 > end) return IPV6_EXT_PAST_END;
      const size = next === IPV6_EXT.FRAGMENT ? 8 : (b[at + 1]! + 1) << 3;
      if (at + size > end) return IPV6_EXT_PAST_END;
      if (next === IPV6_EXT.FRAGMENT) {
        // RFC 8200 §4.5: one Fragment header; what follows it in a non-first fragment is data
        if (this.hasFragmentHeader) return IPV6_SECOND_FRAGMENT_HEADER;
        this.hasFragmentHeader = true;
        const w = u16(b, at + 2);
        this.fragmentOffset = (w & FRAG_OFFSET_MASK) >>> 3;
        this.moreFragments = (w & FRAG_M) !== 0;
        this.fragmentId = u32(b, at + 4);
        // offset*8 + this fragment's data must fit a 65535-byte payload (no jumbograms, RFC 2675)
        if ((this.fragmentOffset << 3) + end - (at + 8) > 65535) return IPV6_FRAGMENT_OVERFLOW;
      }
      next = b[at]!;
      at += size;
      this.extCount++;
      if (this.hasFragmentHeader && this.fragmentOffset !== 0) break;
    }
    this.upperProtocol = next;
    this.upperOffset = at;
    // RFC 7112 §5: a first fragment carries the whole chain up to the upper-layer header
    if (!quoted && this.isFirstFragment && next !== IPV6_EXT.NO_NEXT_HEADER && minUpper(next) > end - at)
      return IPV6_CHAIN_INCOMPLETE;
    return OK;
  }

  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  get trafficClass(): number {
    return (u16(this.buf, this.off + VER_TC_FLOW) >>> 4) & 0xff;
  }
  get flowLabel(): number {
    return u32(this.buf, this.off + VER_TC_FLOW) & 0xfffff;
  }
  get payloadLength(): number {
    return u16(this.buf, this.off + PAYLOAD_LENGTH);
  }
  /** nextHeader is the fixed header's Next Header (the first extension header, or the upper layer) */
  get nextHeader(): number {
    return this.buf[this.off + NEXT_HEADER]!;
  }
  get hopLimit(): number {
    return this.buf[this.off + HOP_LIMIT]!;
  }
  /** srcOffset and dstOffset are indexes into `buf` of the 16-byte addresses (read them in place) */
  get srcOffset(): number {
    return this.off + SRC;
  }
  get dstOffset(): number {
    return this.off + DST;
  }
  /** isFragment: a Fragment header that is not atomic (offset or M set, RFC 6946) */
  get isFragment(): boolean {
    return this.hasFragmentHeader && (this.fragmentOffset !== 0 || this.moreFragments);
  }
  /** isFirstFragment: not a fragment, or the one at offset 0: the upper-layer header is here */
  get isFirstFragment(): boolean {
    return this.fragmentOffset === 0;
  }
  /** upperLength is the bytes from the upper-layer header to the end of the packet */
  get upperLength(): number {
    return this.off + this.len - this.upperOffset;
  }
  /** src returns the source address as text (allocates: logs and explain only) */
  srcText(): string {
    return ipv6ToString(this.buf, this.off + SRC);
  }
  dstText(): string {
    return ipv6ToString(this.buf, this.off + DST);
  }

  /** upperChecksumOk: the upper-layer checksum over the IPv6 pseudo-header (RFC 8200 §8.1) holds */
  upperChecksumOk(): boolean {
    if (!this.isFirstFragment || this.isFragment) return false;
    const s = pseudoHeaderSum6(
      this.buf,
      this.off + SRC,
      this.off + DST,
      this.upperProtocol,
      this.upperLength,
    );
    return fold(sum16(this.buf, this.upperOffset, this.upperLength, s)) === 0xffff;
  }
}

/** The least bytes of each upper-layer header a first fragment must hold (RFC 7112 §5). */
function minUpper(protocol: number): number {
  if (protocol === 6) return 20;
  if (protocol === 17) return 8;
  if (protocol === IPPROTO_ICMPV6) return 4;
  return 0;
}

const EMPTY = new Uint8Array(0);

/**
 * pseudoHeaderSum6 is the unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1): both addresses, the
 * upper-layer packet length (32 bits) and the Next Header value (zero-padded to 32 bits).
 */
export function pseudoHeaderSum6(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  protocol: number,
  upperLength: number,
): number {
  return (
    sum16(buf, srcOff, 16, sum16(buf, dstOff, 16)) + (upperLength >>> 16) + (upperLength & 0xffff) + protocol
  );
}

/**
 * ipv6ToString formats the 16 bytes at buf[off] as RFC 5952 §4 text: lowercase, no leading zeros, the
 * longest run of two or more zero groups (the first of equal runs) as "::".
 */
export function ipv6ToString(buf: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(u16(buf, off + 2 * i));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, b: number) => g.slice(a, b).map((x) => x.toString(16));
  if (best < 0) return hex(0, 8).join(':');
  return `${hex(0, best).join(':')}::${hex(best + bestLen, 8).join(':')}`;
}

/**
 * macLinkLocal is the IPv6 link-local address (RFC 4291 §2.5.6) of an Ethernet interface: fe80::/64 with
 * the modified EUI-64 interface identifier made from its 48-bit MAC (RFC 4291 §2.5.1 and Appendix A, RFC
 * 2464 §4: ff:fe in the middle, the universal/local bit inverted), as RFC 5952 text. The address the
 * kernel itself generates with `addr_gen_mode` 0. Throws when `mac` is not 6 bytes.
 */
export function macLinkLocal(mac: Uint8Array): string {
  if (mac.length !== 6) throw new Error(`a MAC address is 6 bytes, not ${mac.length}`);
  const b = new Uint8Array(16);
  b[0] = 0xfe;
  b[1] = 0x80;
  b[8] = mac[0]! ^ 0x02;
  b[9] = mac[1]!;
  b[10] = mac[2]!;
  b[11] = 0xff;
  b[12] = 0xfe;
  b[13] = mac[3]!;
  b[14] = mac[4]!;
  b[15] = mac[5]!;
  return ipv6ToString(b);
}

/**
 * parseIpv6 reads IPv6 text (RFC 4291 §2.2 forms, with one "::" and an optional dotted IPv4 tail) into
 * 16 bytes. Throws naming the text when it is not an address.
 */
export function parseIpv6(text: string): Uint8Array {
  const fail = () => new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
  if (text.length > 45 || text.length < 2) throw fail();
  let s = text;
  const tail: number[] = [];
  const dot = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dot) {
    const o = dot.slice(1).map(Number);
    if (o.some((x, i) => x > 255 || String(x) !== dot[i + 1])) throw fail();
    tail.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
    s = s.slice(0, dot.index);
    if (!s.endsWith(':')) throw fail();
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) throw fail();
  const groups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').map((h) => {
          if (!/^[0-9a-fA-F]{1,4}$/.test(h)) throw fail();
          return Number.parseInt(h, 16);
        });
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const n = head.length + rest.length + tail.length;
  if (halves.length === 1 ? n !== 8 : n > 7) throw fail();
  const all = [...head, ...new Array<number>(8 - n).fill(0), ...rest, ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >>> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  return out;
}
