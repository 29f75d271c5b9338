import { u32 } from '../bytes.js';
import { type Checked, checked, OK } from '../errors.js';
import { RPC_WRONG_PROCEDURE, type RpcCallView } from './call.js';
import { beginAcceptedReply, RpcReplyView, successResults } from './reply.js';
import { XDR_TRUNCATED, XdrReader, XdrWriter } from './xdr.js';

/*
 * Port mapper version 2 (RFC 1833 §3.1), program 100000 at port 111.
 *   struct mapping { unsigned int prog; unsigned int vers; unsigned int prot; unsigned int port; };
 *   struct *pmaplist { mapping map; pmaplist next; };
 *   bool PMAPPROC_SET(mapping) = 1;  bool PMAPPROC_UNSET(mapping) = 2;
 *   unsigned int PMAPPROC_GETPORT(mapping) = 3;  (port 0: not registered)
 *   pmaplist PMAPPROC_DUMP(void) = 4;
 */
export const PMAP_PROGRAM = 100000;
export const PMAP_V2 = 2;
export const PMAP_PORT = 111;
export const PMAPPROC_NULL = 0;
export const PMAPPROC_SET = 1;
export const PMAPPROC_UNSET = 2;
export const PMAPPROC_GETPORT = 3;
export const PMAPPROC_DUMP = 4;
export const PMAPPROC_CALLIT = 5;
/** `prot` values (RFC 1833 §3.1). */
export const PMAP_IPPROTO_TCP = 6;
export const PMAP_IPPROTO_UDP = 17;
/** A mapping is four unsigned ints. */
export const PMAP_MAPPING_SIZE = 16;

const EMPTY = new Uint8Array(0);

/**
 * PmapMappingView is a reusable view over a `mapping`, the argument of GETPORT, SET and UNSET. After
 * `bind` returns OK its 16 bytes lie inside [off, off+len).
 */
export class PmapMappingView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** bind checks for a whole mapping at buf[off, off+len); OK or XDR_TRUNCATED. Never throws. */
  bind(buf: Uint8Array, off: number, len: number): number {
    if (!(off >= 0 && len >= PMAP_MAPPING_SIZE && off + len <= buf.length)) return XDR_TRUNCATED;
    this.buf = buf;
    this.off = off;
    this.len = len;
    return OK;
  }

  /** bindCall binds the argument of a bound PMAP v2 GETPORT, SET or UNSET call; else RPC_WRONG_PROCEDURE. */
  bindCall(call: RpcCallView): number {
    const proc = call.proc;
    if (call.prog !== PMAP_PROGRAM || call.vers !== PMAP_V2) return RPC_WRONG_PROCEDURE;
    if (proc !== PMAPPROC_GETPORT && proc !== PMAPPROC_SET && proc !== PMAPPROC_UNSET) {
      return RPC_WRONG_PROCEDURE;
    }
    return this.bind(call.buf, call.argsOffset, call.argsLength);
  }

  /** parse binds a new view over a bound GETPORT/SET/UNSET call (allocates; off the hot path). */
  static parse(call: RpcCallView): Checked<PmapMappingView> {
    const v = new PmapMappingView();
    return checked(v.bindCall(call), v);
  }

  get prog(): number {
    return u32(this.buf, this.off);
  }
  get vers(): number {
    return u32(this.buf, this.off + 4);
  }
  /** prot: PMAP_IPPROTO_TCP or PMAP_IPPROTO_UDP (other values are possible on the wire). */
  get prot(): number {
    return u32(this.buf, this.off + 8);
  }
  /** port: ignored by GETPORT (RFC 1833 §3.2). */
  get port(): number {
    return u32(this.buf, this.off + 12);
  }
}

/** A port mapping, decoded. */
export interface PmapMapping {
  prog: number;
  vers: number;
  prot: number;
  port: number;
}

/** encodePmapArgs builds the `mapping` argument of GETPORT/SET/UNSET (off the hot path). */
export function encodePmapArgs(m: PmapMapping): Uint8Array {
  return new XdrWriter(PMAP_MAPPING_SIZE).u32(m.prog).u32(m.vers).u32(m.prot).u32(m.port).bytes();
}

/** encodeGetportReply builds a SUCCESS reply to GETPORT with `port` (0: not registered). */
export function encodeGetportReply(xid: number, port: number): Uint8Array {
  return beginAcceptedReply(new XdrWriter(28), xid).u32(port).bytes();
}

/** decodeGetportReply reads the port from a whole GETPORT reply message (allocates for the result). */
export function decodeGetportReply(msg: Uint8Array): Checked<number> {
  const reply = new RpcReplyView();
  const code = successResults(reply, msg);
  if (code !== OK) return checked(code, 0);
  const r = new XdrReader().reset(msg, reply.resultsOffset);
  const port = r.u32();
  return checked(r.error, port);
}

/**
 * encodeDumpReply builds a SUCCESS reply to DUMP: the mappings as an XDR list (each entry preceded by
 * TRUE, the list ended by FALSE; RFC 4506 §4.19).
 */
export function encodeDumpReply(xid: number, mappings: readonly PmapMapping[]): Uint8Array {
  const w = beginAcceptedReply(new XdrWriter(28 + mappings.length * 20), xid);
  for (const m of mappings) w.bool(true).u32(m.prog).u32(m.vers).u32(m.prot).u32(m.port);
  return w.bool(false).bytes();
}

/** decodeDumpReply reads the mappings from a whole DUMP reply message (allocates; off the hot path). */
export function decodeDumpReply(msg: Uint8Array): Checked<PmapMapping[]> {
  const reply = new RpcReplyView();
  const list: PmapMapping[] = [];
  const code = successResults(reply, msg);
  if (code !== OK) return checked(code, list);
  const r = new XdrReader().reset(msg, reply.resultsOffset);
  while (r.bool()) {
    const m = { prog: r.u32(), vers: r.u32(), prot: r.u32(), port: r.u32() };
    if (r.error !== OK) break;
    list.push(m);
  }
  return checked(r.error, list);
}
