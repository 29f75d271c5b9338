import { put16, put32, u16, u32 } from '@onehost/wire';

/** UDP port the node agent receives splice messages on (docs/splice.md). */
export const DEFAULT_SPLICE_PORT = 7472;

/** First byte of every splice datagram. */
export const MSG = { HANDOVER: 1, SEGMENT: 2, SHIFT: 3, RESYNC: 4, RESYNC_DONE: 5 } as const;

export const HANDOVER_VERSION = 1;
/** The handover of an IPv6 connection: the same fields, with 16-byte addresses. */
export const HANDOVER_VERSION6 = 2;
/** Bytes before the buffered data: type, version, flags … data length (IPv4, and IPv6). */
export const HANDOVER_HEADER = 42;
export const HANDOVER_HEADER6 = 66;
/** Largest buffered data a handover carries (one datagram; the record cap is smaller). */
export const HANDOVER_MAX_DATA = 65_000;

export const HANDOVER_FLAG = { SACK: 1, TIMESTAMPS: 2, WINDOW_SCALE: 4 } as const;

/**
 * Handover is what the gateway tells a node's agent about a TCP connection it accepted and read the
 * first routing record of. Sequence numbers are the client's and the gateway's, as the client sees them.
 */
export interface Handover {
  flags: number;
  /** IPv4 addresses; 0 for an IPv6 connection */
  clientAddr: number;
  clusterAddr: number;
  /** an IPv6 connection's addresses (16 bytes each); absent for IPv4 */
  clientAddr6?: Uint8Array;
  clusterAddr6?: Uint8Array;
  clientPort: number;
  clusterPort: number;
  /** destination port on the node (its mountd port for MOUNT; the cluster port otherwise). */
  nodePort: number;
  /** sequence number of the first buffered byte (the client's next byte the node must see). */
  clientSeq: number;
  /** the next sequence number the client expects from the server (the gateway's snd_nxt). */
  serverSeq: number;
  /** the client's MSS (what the node may send in one segment). */
  mss: number;
  /** the client's window scale (RFC 7323 §2); 0 without window scaling. */
  clientWscale: number;
  /** the window scale the gateway announced to the client. */
  gatewayWscale: number;
  /** the client's latest TSval (RFC 7323 §3), 0 without timestamps. */
  clientTsval: number;
  /** the gateway's TSval clock now (the node's TSvals continue from it). */
  gatewayTsval: number;
  /** the client's latest window field (scaled by clientWscale). */
  clientWindow: number;
  /** bytes the client sent that the node must receive first (the routing record and what followed). */
  data: Uint8Array;
}

/**
 * encodeHandover writes a type-1 datagram into `out` at `off` (version 2 when the handover has IPv6
 * addresses); returns its length, or -1 when it does not fit.
 */
export function encodeHandover(h: Handover, out: Uint8Array, off = 0): number {
  const six = h.clientAddr6 !== undefined && h.clusterAddr6 !== undefined;
  const header = six ? HANDOVER_HEADER6 : HANDOVER_HEADER;
  const n = header + h.data.length;
  if (h.data.length > HANDOVER_MAX_DATA || off + n > out.length) return -1;
  out[off] = MSG.HANDOVER;
  out[off + 1] = six ? HANDOVER_VERSION6 : HANDOVER_VERSION;
  put16(out, off + 2, h.flags);
  if (six) {
    out.set(h.clientAddr6!.subarray(0, 16), off + 4);
    out.set(h.clusterAddr6!.subarray(0, 16), off + 20);
  } else {
    put32(out, off + 4, h.clientAddr);
    put32(out, off + 8, h.clusterAddr);
  }
  const at = off + header - HANDOVER_HEADER; // the fields after the addresses, as in version 1
  put16(out, at + 12, h.clientPort);
  put16(out, at + 14, h.clusterPort);
  put16(out, at + 16, h.nodePort);
  put32(out, at + 18, h.clientSeq);
  put32(out, at + 22, h.serverSeq);
  put16(out, at + 26, h.mss);
  out[at + 28] = h.clientWscale;
  out[at + 29] = h.gatewayWscale;
  put32(out, at + 30, h.clientTsval);
  put32(out, at + 34, h.gatewayTsval);
  put16(out, at + 38, h.clientWindow);
  put16(out, at + 40, h.data.length);
  out.set(h.data, off + header);
  return n;
}

/** Why a handover datagram was refused. */
export type HandoverError = 'truncated' | 'version' | 'length' | 'window_scale' | 'mss' | 'port';

/**
 * decodeHandover reads a type-1 datagram (version 1, IPv4; version 2, IPv6) at buf[off, off+len); the
 * data and addresses are copied (the datagram's buffer is reused). Returns the reason when it is
 * malformed. Never throws.
 */
export function decodeHandover(buf: Uint8Array, off: number, len: number): Handover | HandoverError {
  if (len < HANDOVER_HEADER || off < 0 || off + len > buf.length || buf[off] !== MSG.HANDOVER)
    return 'truncated';
  const version = buf[off + 1];
  if (version !== HANDOVER_VERSION && version !== HANDOVER_VERSION6) return 'version';
  const six = version === HANDOVER_VERSION6;
  const header = six ? HANDOVER_HEADER6 : HANDOVER_HEADER;
  if (len < header) return 'truncated';
  const at = off + header - HANDOVER_HEADER;
  const dataLen = u16(buf, at + 40);
  if (header + dataLen !== len) return 'length';
  const clientWscale = buf[at + 28]!;
  const gatewayWscale = buf[at + 29]!;
  // RFC 7323 §2.3: a shift count above 14 is used as 14; we refuse it, a gateway never sends one.
  if (clientWscale > 14 || gatewayWscale > 14) return 'window_scale';
  const mss = u16(buf, at + 26);
  if (mss < 88) return 'mss';
  const clientPort = u16(buf, at + 12);
  const clusterPort = u16(buf, at + 14);
  const nodePort = u16(buf, at + 16);
  if (clientPort === 0 || clusterPort === 0 || nodePort === 0) return 'port';
  return {
    flags: u16(buf, off + 2),
    clientAddr: six ? 0 : u32(buf, off + 4),
    clusterAddr: six ? 0 : u32(buf, off + 8),
    ...(six
      ? { clientAddr6: buf.slice(off + 4, off + 20), clusterAddr6: buf.slice(off + 20, off + 36) }
      : {}),
    clientPort,
    clusterPort,
    nodePort,
    clientSeq: u32(buf, at + 18),
    serverSeq: u32(buf, at + 22),
    mss,
    clientWscale,
    gatewayWscale,
    clientTsval: u32(buf, at + 30),
    gatewayTsval: u32(buf, at + 34),
    clientWindow: u16(buf, at + 38),
    data: buf.slice(off + header, off + len),
  };
}

/**
 * Bytes of a type-3 record (the agent tells the gateways how to shift a spliced flow's segments). A
 * datagram holds one record, or several back to back (a resync's answer, the periodic refresh).
 */
export const SHIFT_LENGTH = 24;
/** Records per datagram at most: 1,440 bytes, one unfragmented packet on any interconnect. */
export const SHIFTS_PER_DATAGRAM = 60;
/** The first version's type-3 datagram: no cluster address (still accepted from an older agent). */
const SHIFT_V1_LENGTH = 20;
const SHIFT_VERSION = 2;
/** Bytes of a type-3 record of an IPv6 flow (version 3: 16-byte addresses), and records per datagram. */
export const SHIFT6_LENGTH = 48;
export const SHIFTS6_PER_DATAGRAM = 30;
const SHIFT_VERSION6 = 3;

/**
 * Shift is what a node's agent tells the gateways once the replayed handshake completed: a gateway then
 * rewrites the client's segments itself (ack += sOff, SACK edges += sOff, TSecr -= tsOff, destination
 * port → nodePort) and sends them to the node's kernel, skipping the agent (docs/splice.md). Every
 * gateway gets it, also those the flow has not passed yet: a router may move the flow to any of them.
 */
export interface Shift {
  clientAddr: number;
  /** the cluster address the client connected to; 0 from an agent of the first version */
  clusterAddr: number;
  /** an IPv6 flow's addresses (16 bytes each; clientAddr and clusterAddr are then 0) */
  clientAddr6?: Uint8Array;
  clusterAddr6?: Uint8Array;
  clientPort: number;
  clusterPort: number;
  nodePort: number;
  sOff: number;
  tsOff: number;
}

/**
 * encodeShift writes a type-3 record into `out` (≥ SHIFT_LENGTH bytes; SHIFT6_LENGTH for an IPv6
 * flow, version 3); returns its length.
 */
export function encodeShift(s: Shift, out: Uint8Array, off = 0): number {
  const six = s.clientAddr6 !== undefined && s.clusterAddr6 !== undefined;
  out[off] = MSG.SHIFT;
  out[off + 1] = six ? SHIFT_VERSION6 : SHIFT_VERSION;
  if (six) {
    out.set(s.clientAddr6!.subarray(0, 16), off + 2);
    out.set(s.clusterAddr6!.subarray(0, 16), off + 18);
  } else {
    put32(out, off + 2, s.clientAddr);
    put32(out, off + 6, s.clusterAddr);
  }
  const at = off + (six ? 34 : 10); // the ports and offsets, after the addresses
  put16(out, at, s.clientPort);
  put16(out, at + 2, s.clusterPort);
  put16(out, at + 4, s.nodePort);
  put32(out, at + 6, s.sOff >>> 0);
  put32(out, at + 10, s.tsOff >>> 0);
  return six ? SHIFT6_LENGTH : SHIFT_LENGTH;
}

/** decodeShift reads a type-3 record (any version); null when it is not one. Never throws. */
export function decodeShift(buf: Uint8Array, off: number, len: number): Shift | null {
  if (off < 0 || off + len > buf.length || len < 2 || buf[off] !== MSG.SHIFT) return null;
  const version = buf[off + 1];
  const size =
    version === 1
      ? SHIFT_V1_LENGTH
      : version === SHIFT_VERSION
        ? SHIFT_LENGTH
        : version === SHIFT_VERSION6
          ? SHIFT6_LENGTH
          : -1;
  if (len !== size) return null;
  // the ports and offsets follow the addresses: one IPv4 address (version 1), two, or two IPv6 ones
  const at = off + (version === 1 ? 6 : version === SHIFT_VERSION ? 10 : 34);
  const clientPort = u16(buf, at);
  const clusterPort = u16(buf, at + 2);
  const nodePort = u16(buf, at + 4);
  if (clientPort === 0 || clusterPort === 0 || nodePort === 0) return null;
  const six = version === SHIFT_VERSION6;
  return {
    clientAddr: six ? 0 : u32(buf, off + 2),
    clusterAddr: version === SHIFT_VERSION ? u32(buf, off + 6) : 0,
    ...(six
      ? { clientAddr6: buf.slice(off + 2, off + 18), clusterAddr6: buf.slice(off + 18, off + 34) }
      : {}),
    clientPort,
    clusterPort,
    nodePort,
    sOff: u32(buf, at + 6) | 0,
    tsOff: u32(buf, at + 10) | 0,
  };
}

/**
 * decodeShifts reads a datagram of type-3 records (one of the first version, 1 to SHIFTS_PER_DATAGRAM
 * of the second, or 1 to SHIFTS6_PER_DATAGRAM of the third: a datagram holds one version) into `out`
 * (cleared first); false, with `out` empty, when any record is malformed. Never throws.
 */
export function decodeShifts(buf: Uint8Array, off: number, len: number, out: Shift[]): boolean {
  out.length = 0;
  const one = len === SHIFT_V1_LENGTH ? decodeShift(buf, off, len) : null;
  if (one !== null) {
    out.push(one);
    return true;
  }
  if (len < 2 || off < 0 || off + 2 > buf.length) return false;
  const six = buf[off + 1] === SHIFT_VERSION6;
  const size = six ? SHIFT6_LENGTH : SHIFT_LENGTH;
  const most = six ? SHIFTS6_PER_DATAGRAM : SHIFTS_PER_DATAGRAM;
  if (len < size || len % size !== 0 || len / size > most) return false;
  for (let at = off; at < off + len; at += size) {
    const s = decodeShift(buf, at, size);
    if (s === null) {
      out.length = 0;
      return false;
    }
    out.push(s);
  }
  return true;
}

/** Bytes of a type-4 datagram (a gateway asks an agent for the offsets of all its spliced flows). */
export const RESYNC_LENGTH = 2;

/** encodeResync writes a type-4 datagram into `out`; returns its length. */
export function encodeResync(out: Uint8Array, off = 0): number {
  out[off] = MSG.RESYNC;
  out[off + 1] = 1;
  return RESYNC_LENGTH;
}

/** isResync tells whether a datagram is a type-4 request. */
export function isResync(buf: Uint8Array, off: number, len: number): boolean {
  return (
    len === RESYNC_LENGTH &&
    off >= 0 &&
    off + len <= buf.length &&
    buf[off] === MSG.RESYNC &&
    buf[off + 1] === 1
  );
}

/** Bytes of a type-5 datagram (an agent's answer to a type 4 ends: how many shifts it sent before it). */
export const RESYNC_DONE_LENGTH = 6;

/** encodeResyncDone writes a type-5 datagram into `out`; returns its length. */
export function encodeResyncDone(flows: number, out: Uint8Array, off = 0): number {
  out[off] = MSG.RESYNC_DONE;
  out[off + 1] = 1;
  put32(out, off + 2, flows >>> 0);
  return RESYNC_DONE_LENGTH;
}

/** decodeResyncDone reads a type-5 datagram: the number of shifts sent before it; -1 when it is not one. */
export function decodeResyncDone(buf: Uint8Array, off: number, len: number): number {
  if (len !== RESYNC_DONE_LENGTH || off < 0 || off + len > buf.length) return -1;
  if (buf[off] !== MSG.RESYNC_DONE || buf[off + 1] !== 1) return -1;
  return u32(buf, off + 2);
}
