import { put16, u16 } from './bytes.js';
import { checksum } from './checksum.js';
import { type Checked, checked, defineError, errorInfo, OK } from './errors.js';
import { IPPROTO, IPV4_MIN_HEADER, Ipv4View, writeIpv4Header } from './ipv4.js';

/*
 * RFC 792. Every message starts with type, code, checksum (over the ICMP message):
 *  0                   1                   2                   3
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | echo: Identifier | Sequence   | dest unreach code 4: unused | Next-Hop MTU (RFC 1191 §4)
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | errors: Internet Header + 64 bits of Original Data Datagram  |
 */
const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const ID = 4;
const SEQ = 6;
const MTU = 6;

export const ICMP_HEADER = 8;
/** RFC 792 quotes the original header plus 64 bits of its data: enough for both ports. */
const QUOTED_DATA = 8;

export const ICMP_TYPE = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

/** Destination unreachable code 4 (RFC 792), with the next-hop MTU of RFC 1191. */
export const ICMP_CODE_FRAG_NEEDED = 4;

export const ICMP_TRUNCATED = defineError(301, 'truncated', 'icmp_truncated');
export const ICMP_INNER_TRUNCATED = defineError(302, 'truncated', 'icmp_inner_truncated');
export const ICMP_INNER_MALFORMED = defineError(303, 'malformed', 'icmp_inner_malformed');

/** isIcmpErrorType: the message quotes an offending datagram (RFC 792; RFC 1122 §3.2.2). */
export function isIcmpErrorType(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * IcmpView is a reusable view over one ICMP message. For error messages, `bind` also binds `inner` to the
 * quoted IPv4 header and requires the 8 quoted data bytes when the inner protocol is TCP or UDP, so the
 * inner ports can be read without further checks.
 */
export class IcmpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  readonly inner = new Ipv4View();
  hasInner = false;
  /** hasInnerPorts: the quoted datagram is TCP/UDP (first fragment) with its 8 port bytes present. */
  hasInnerPorts = false;

  /** bind checks and points the view at an ICMP message of `len` bytes; OK or an ICMP_* code. */
  bind(buf: Uint8Array, off: number, len: number): number {
    if (off < 0 || len < ICMP_HEADER || off + len > buf.length) return ICMP_TRUNCATED;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.hasInner = false;
    this.hasInnerPorts = false;
    if (!isIcmpErrorType(buf[off + TYPE]!)) return OK;
    const io = off + ICMP_HEADER;
    const il = len - ICMP_HEADER;
    const code = this.inner.bindQuoted(buf, io, il);
    if (code !== OK)
      return errorInfo(code)?.kind === 'truncated' ? ICMP_INNER_TRUNCATED : ICMP_INNER_MALFORMED;
    const p = this.inner.protocol;
    if ((p === IPPROTO.TCP || p === IPPROTO.UDP) && this.inner.fragmentOffset === 0) {
      if (il < this.inner.headerLength + QUOTED_DATA) return ICMP_INNER_TRUNCATED;
      this.hasInnerPorts = true;
    }
    this.hasInner = true;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<IcmpView> {
    const v = new IcmpView();
    return checked(v.bind(buf, off, len), v);
  }

  get type(): number {
    return this.buf[this.off + TYPE]!;
  }
  get code(): number {
    return this.buf[this.off + CODE]!;
  }
  get checksum(): number {
    return u16(this.buf, this.off + CHECKSUM);
  }
  get isError(): boolean {
    return isIcmpErrorType(this.type);
  }
  /** identifier/sequence of echo request and reply (RFC 792). */
  get identifier(): number {
    return u16(this.buf, this.off + ID);
  }
  get sequence(): number {
    return u16(this.buf, this.off + SEQ);
  }
  /** nextHopMtu of "fragmentation needed" (RFC 1191 §4); 0 from routers that predate it. */
  get nextHopMtu(): number {
    return u16(this.buf, this.off + MTU);
  }
  /** innerSrcPort/innerDstPort: the quoted TCP/UDP ports; 0 unless hasInnerPorts. */
  get innerSrcPort(): number {
    return this.hasInnerPorts ? u16(this.buf, this.inner.payloadOffset) : 0;
  }
  get innerDstPort(): number {
    return this.hasInnerPorts ? u16(this.buf, this.inner.payloadOffset + 2) : 0;
  }
  verifyChecksum(): boolean {
    return checksum(this.buf, this.off, this.len) === 0;
  }
  computeChecksum(): void {
    put16(this.buf, this.off + CHECKSUM, 0);
    put16(this.buf, this.off + CHECKSUM, checksum(this.buf, this.off, this.len));
  }
}

const EMPTY = new Uint8Array(0);

/**
 * writeFragNeeded builds a complete IPv4 "fragmentation needed" message (RFC 792 type 3 code 4, RFC 1191
 * next-hop MTU) from `from` to the sender of `orig`, quoting its header and 8 data bytes. Returns the
 * length written; `out` needs 20 + 8 + 60 + 8 bytes at most.
 */
export function writeFragNeeded(
  out: Uint8Array,
  off: number,
  orig: Ipv4View,
  from: number,
  mtu: number,
): number {
  const quoted = Math.min(orig.len, orig.headerLength + QUOTED_DATA);
  const icmpLen = ICMP_HEADER + quoted;
  writeIpv4Header(out, off, {
    src: from,
    dst: orig.src,
    protocol: IPPROTO.ICMP,
    payloadLength: icmpLen,
    ttl: 64,
  });
  const o = off + IPV4_MIN_HEADER;
  out[o + TYPE] = ICMP_TYPE.DEST_UNREACHABLE;
  out[o + CODE] = ICMP_CODE_FRAG_NEEDED;
  put16(out, o + CHECKSUM, 0);
  put16(out, o + 4, 0);
  put16(out, o + MTU, mtu);
  out.set(orig.buf.subarray(orig.off, orig.off + quoted), o + ICMP_HEADER);
  put16(out, o + CHECKSUM, checksum(out, o, icmpLen));
  return IPV4_MIN_HEADER + icmpLen;
}

/** writeEcho builds an ICMP echo request or reply message (no IP header) at buf[off]; returns its length. */
export function writeEcho(
  buf: Uint8Array,
  off: number,
  type: number,
  id: number,
  seq: number,
  data: Uint8Array,
): number {
  buf[off + TYPE] = type;
  buf[off + CODE] = 0;
  put16(buf, off + CHECKSUM, 0);
  put16(buf, off + ID, id);
  put16(buf, off + SEQ, seq);
  buf.set(data, off + ICMP_HEADER);
  const len = ICMP_HEADER + data.length;
  put16(buf, off + CHECKSUM, checksum(buf, off, len));
  return len;
}
