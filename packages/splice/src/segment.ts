import {
  checksum,
  csumReplace16,
  fold,
  IPPROTO,
  IPV6_HEADER,
  pseudoHeaderSum,
  pseudoHeaderSum6,
  put16,
  put32,
  sum16,
  TCP_OPTION,
  type TcpView,
  u16,
  u32,
  writeIpv4Header,
  writeTcpHeader,
} from '@onehost/wire';

/** Fields of a segment the splicer writes from scratch (the replayed handshake and buffered data). */
export interface SegmentSpec {
  /** IPv4 addresses (ignored when src6 and dst6 are given) */
  src: number;
  dst: number;
  /** IPv6 addresses (16 bytes each): the segment is an IPv6 packet */
  src6?: Uint8Array;
  dst6?: Uint8Array;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** SYN options: MSS, SACK permitted and window scale (RFC 9293 §3.7.1, RFC 2018, RFC 7323 §2). */
  syn?: { mss: number; sack: boolean; wscale: number | null };
  /** timestamps option (RFC 7323 §3) when present. */
  ts?: { val: number; ecr: number };
  payload?: Uint8Array;
  payloadOff?: number;
  payloadLen?: number;
}

/** writeSegment writes an IPv4/TCP or IPv6/TCP packet with its checksums into `out`; returns its length. */
export function writeSegment(out: Uint8Array, s: SegmentSpec): number {
  // Options in the order Linux sends them, so the node's kernel sees a familiar SYN.
  const opt = new Uint8Array(40);
  let o = 0;
  if (s.syn) {
    opt[o] = TCP_OPTION.MSS;
    opt[o + 1] = 4;
    put16(opt, o + 2, s.syn.mss);
    o += 4;
    if (s.syn.sack && s.ts) {
      opt[o] = TCP_OPTION.SACK_PERMITTED;
      opt[o + 1] = 2;
      o += 2;
    } else if (s.syn.sack) {
      opt[o] = TCP_OPTION.NOP;
      opt[o + 1] = TCP_OPTION.NOP;
      opt[o + 2] = TCP_OPTION.SACK_PERMITTED;
      opt[o + 3] = 2;
      o += 4;
    }
  }
  if (s.ts) {
    if (!(s.syn?.sack && o % 4 === 2)) {
      opt[o] = TCP_OPTION.NOP;
      opt[o + 1] = TCP_OPTION.NOP;
      o += 2;
    }
    opt[o] = TCP_OPTION.TIMESTAMPS;
    opt[o + 1] = 10;
    put32(opt, o + 2, s.ts.val);
    put32(opt, o + 6, s.ts.ecr);
    o += 10;
  }
  if (s.syn && s.syn.wscale !== null) {
    opt[o] = TCP_OPTION.NOP;
    opt[o + 1] = TCP_OPTION.WINDOW_SCALE;
    opt[o + 2] = 3;
    opt[o + 3] = s.syn.wscale;
    o += 4;
  }
  const payLen = s.payloadLen ?? s.payload?.length ?? 0;
  const tcpLen = 20 + o + payLen;
  const six = s.src6 !== undefined && s.dst6 !== undefined;
  const ip = six ? IPV6_HEADER : 20;
  let pseudo: number;
  if (six) {
    // RFC 8200 §3: version 6, traffic class and flow label 0, no extension headers, hop limit 64
    out.fill(0, 0, 4);
    out[0] = 0x60;
    put16(out, 4, tcpLen);
    out[6] = IPPROTO.TCP;
    out[7] = 64;
    out.set(s.src6!.subarray(0, 16), 8);
    out.set(s.dst6!.subarray(0, 16), 24);
    pseudo = pseudoHeaderSum6(out, 8, 24, IPPROTO.TCP, tcpLen);
  } else {
    writeIpv4Header(out, 0, {
      src: s.src,
      dst: s.dst,
      protocol: IPPROTO.TCP,
      payloadLength: tcpLen,
      dontFragment: true,
    });
    pseudo = pseudoHeaderSum(s.src, s.dst, IPPROTO.TCP, tcpLen);
  }
  writeTcpHeader(out, ip, {
    srcPort: s.srcPort,
    dstPort: s.dstPort,
    seq: s.seq >>> 0,
    ack: s.ack >>> 0,
    flags: s.flags,
    window: s.window,
    options: opt.subarray(0, o),
  });
  if (s.payload && payLen > 0) {
    const from = s.payloadOff ?? 0;
    out.set(s.payload.subarray(from, from + payLen), ip + 20 + o);
  }
  put16(out, ip + 16, checksum(out, ip, tcpLen, pseudo));
  return ip + tcpLen;
}

/**
 * rewrite32 stores `value` at buf[at, at+4) inside the segment `t` and patches its checksum (RFC 1624) over
 * the even-aligned words the field touches, so options at odd offsets are handled too.
 */
export function rewrite32(t: TcpView, at: number, value: number): void {
  const b = t.buf;
  const rel = at - t.off;
  const s = t.off + (rel & ~1);
  const e = t.off + ((rel + 5) & ~1);
  const before = fold(sum16(b, s, e - s));
  put32(b, at, value);
  const after = fold(sum16(b, s, e - s));
  put16(b, t.off + 16, csumReplace16(t.checksum, before, after));
}

/** setWindow rewrites the window field and patches the checksum. */
export function setWindow(t: TcpView, window: number): void {
  const old = t.window;
  if (old === window) return;
  put16(t.buf, t.off + 14, window);
  put16(t.buf, t.off + 16, csumReplace16(t.checksum, old, window));
}

/** tsOption returns the index of a well-formed timestamps option (its kind byte), or -1. */
export function tsOption(t: TcpView): number {
  const i = t.findOption(TCP_OPTION.TIMESTAMPS);
  return i >= 0 && t.buf[i + 1] === 10 ? i : -1;
}

/** wscaleOption returns the window scale of a SYN, or -1 without one. */
export function wscaleOption(t: TcpView): number {
  const i = t.findOption(TCP_OPTION.WINDOW_SCALE);
  return i >= 0 && t.buf[i + 1] === 3 ? Math.min(t.buf[i + 2]!, 14) : -1;
}

/** shiftSack adds `delta` to every edge of a SACK option (RFC 2018 §3) in the segment. */
export function shiftSack(t: TcpView, delta: number): void {
  if (delta === 0) return;
  const i = t.findOption(TCP_OPTION.SACK);
  if (i < 0) return;
  const l = t.buf[i + 1]!;
  for (let at = i + 2; at + 4 <= i + l; at += 4) rewrite32(t, at, (u32(t.buf, at) + delta) >>> 0);
}

/** tsval / tsecr read the timestamps option at index i. */
export const tsval = (t: TcpView, i: number): number => u32(t.buf, i + 2);
export const tsecr = (t: TcpView, i: number): number => u32(t.buf, i + 6);
/** windowOf reads the raw window field. */
export const windowOf = (t: TcpView): number => u16(t.buf, t.off + 14);

/**
 * shiftClientSegment moves a client's segment into the node's view (docs/splice.md): destination port →
 * the node's, ack and SACK edges + sOff, TSecr − tsOff; checksums patched. Used by the agent and by the
 * gateway once it knows the flow's offsets.
 */
export function shiftClientSegment(t: TcpView, nodePort: number, sOff: number, tsOff: number): void {
  if (t.dstPort !== nodePort) t.setDstPort(nodePort);
  if (t.ackFlag) t.setAck((t.ack + sOff) >>> 0);
  shiftSack(t, sOff);
  if (tsOff !== 0) {
    const i = tsOption(t);
    if (i >= 0) rewrite32(t, i + 6, (tsecr(t, i) - tsOff) >>> 0);
  }
}
