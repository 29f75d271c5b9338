import { u32 } from '../bytes.js';
import { type Checked, checked, defineError, OK } from '../errors.js';
import { pad4, XdrWriter } from './xdr.js';

/*
 * RFC 5531 §9: an RPC call message.
 *   struct rpc_msg  { unsigned int xid; union switch (msg_type mtype) { CALL: call_body; REPLY: reply_body } }
 *   struct call_body { unsigned int rpcvers;  (must be 2)
 *                      unsigned int prog, vers, proc;
 *                      opaque_auth cred, verf;
 *                      (procedure-specific parameters start here) }
 *   struct opaque_auth { auth_flavor flavor; opaque body<400>; }   (§8.2)
 *
 *  0     4        8       12   16   20   24          28       32                 +0          +4       +8
 * | xid | mtype=0 | rpcvers | prog | vers | proc | cred flavor | cred len | cred body+pad | verf flavor | verf len | verf body+pad | args
 */
const XID = 0;
const MSG_TYPE = 4;
const RPCVERS = 8;
const PROG = 12;
const VERS = 16;
const PROC = 20;
const CRED_FLAVOR = 24;
const CRED_LEN = 28;
const CRED_BODY = 32;

/** msg_type (RFC 5531 §9). */
export const MSG_CALL = 0;
export const MSG_REPLY = 1;
/** The only RPC protocol version (RFC 5531 §9: rpcvers must be 2). */
export const RPC_VERSION = 2;
/** The cap on an opaque_auth body (RFC 5531 §8.2: `opaque body<400>`). */
export const MAX_AUTH_BYTES = 400;
/** The shortest call: six words, then empty credential and verifier (two words each). */
export const RPC_CALL_MIN = 40;

/** auth_flavor values (RFC 5531 §8.2, Appendix A; RPCSEC_GSS from RFC 2203). */
export const AUTH_NONE = 0;
export const AUTH_SYS = 1;
export const AUTH_SHORT = 2;
export const AUTH_DH = 3;
export const RPCSEC_GSS = 6;

export const RPC_CALL_TRUNCATED = defineError(620, 'truncated', 'rpc_call_truncated');
export const RPC_NOT_CALL = defineError(621, 'malformed', 'rpc_not_call');
export const RPC_BAD_RPCVERS = defineError(622, 'malformed', 'rpc_bad_rpcvers');
export const RPC_CRED_TOO_LONG = defineError(623, 'malformed', 'rpc_cred_too_long');
export const RPC_VERF_TOO_LONG = defineError(624, 'malformed', 'rpc_verf_too_long');
/** A procedure-specific view was bound to a call of another program, version or procedure. */
export const RPC_WRONG_PROCEDURE = defineError(625, 'malformed', 'rpc_wrong_procedure');

const EMPTY = new Uint8Array(0);

/**
 * RpcCallView is a reusable view over one RPC call message at buf[off, off+len): a UDP payload, or a TCP
 * record without its record mark. `bind` walks the header once, checking each field as soon as its bytes
 * are there, so a cut anywhere in a valid header reports RPC_CALL_TRUNCATED while bytes that contradict
 * the format report a malformed code at once. After `bind` returns OK the credential, the verifier and
 * the start of the arguments lie inside [off, off+len), and no getter reads outside it.
 *
 * For RPCSEC_GSS calls with integrity or privacy (RFC 2203 §5.3.2) the arguments are wrapped: check
 * `credFlavor` before reading them.
 */
export class RpcCallView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  /** credOff and credLen locate the credential body inside `buf`. */
  credOff = 0;
  credLen = 0;
  verfFlavor = 0;
  /** verfOff and verfLen locate the verifier body inside `buf`. */
  verfOff = 0;
  verfLen = 0;
  /** argsOffset: index into `buf` where the procedure arguments start (may equal off + len). */
  argsOffset = 0;

  /**
   * bind checks the call header at buf[off, off+len) and points the view at it; returns OK or an RPC_*
   * code. Never throws, never allocates. After a failed bind the view's values are meaningless.
   */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (!(off >= 0 && len >= 0 && off + len <= buf.length)) return RPC_CALL_TRUNCATED;
    const end = off + len;
    if (len < RPCVERS) return RPC_CALL_TRUNCATED;
    if (u32(buf, off + MSG_TYPE) !== MSG_CALL) return RPC_NOT_CALL;
    if (len < RPCVERS + 4) return RPC_CALL_TRUNCATED;
    if (u32(buf, off + RPCVERS) !== RPC_VERSION) return RPC_BAD_RPCVERS;
    if (len < CRED_BODY) return RPC_CALL_TRUNCATED;
    // Cap before anything else: the length is never trusted to size or reach anything.
    const credLen = u32(buf, off + CRED_LEN);
    if (credLen > MAX_AUTH_BYTES) return RPC_CRED_TOO_LONG;
    const verf = off + CRED_BODY + pad4(credLen);
    if (verf + 8 > end) return RPC_CALL_TRUNCATED;
    const verfLen = u32(buf, verf + 4);
    if (verfLen > MAX_AUTH_BYTES) return RPC_VERF_TOO_LONG;
    const args = verf + 8 + pad4(verfLen);
    if (args > end) return RPC_CALL_TRUNCATED;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.credOff = off + CRED_BODY;
    this.credLen = credLen;
    this.verfFlavor = u32(buf, verf);
    this.verfOff = verf + 8;
    this.verfLen = verfLen;
    this.argsOffset = args;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<RpcCallView> {
    const v = new RpcCallView();
    return checked(v.bind(buf, off, len), v);
  }

  get xid(): number {
    return u32(this.buf, this.off + XID);
  }
  get rpcvers(): number {
    return u32(this.buf, this.off + RPCVERS);
  }
  get prog(): number {
    return u32(this.buf, this.off + PROG);
  }
  get vers(): number {
    return u32(this.buf, this.off + VERS);
  }
  get proc(): number {
    return u32(this.buf, this.off + PROC);
  }
  get credFlavor(): number {
    return u32(this.buf, this.off + CRED_FLAVOR);
  }
  /** argsLength: bytes from `argsOffset` to the end of the message. */
  get argsLength(): number {
    return this.off + this.len - this.argsOffset;
  }
  /** isCall tells whether this is a call to prog/vers/proc (one comparison chain, no allocation). */
  isCall(prog: number, vers: number, proc: number): boolean {
    return this.prog === prog && this.vers === vers && this.proc === proc;
  }
}

/** Fields of a call header for `encodeCall`. */
export interface RpcCallFields {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  credFlavor?: number;
  cred?: Uint8Array;
  verfFlavor?: number;
  verf?: Uint8Array;
}

/**
 * encodeCall builds a whole call message (no record mark): header, then `args` as given (already XDR).
 * Off the hot path. Throws RangeError when a field is out of range or an auth body exceeds 400 bytes.
 */
export function encodeCall(f: RpcCallFields, args: Uint8Array = EMPTY): Uint8Array {
  const w = new XdrWriter(RPC_CALL_MIN + args.length + (f.cred?.length ?? 0) + (f.verf?.length ?? 0) + 8);
  w.u32(f.xid).u32(MSG_CALL).u32(RPC_VERSION).u32(f.prog).u32(f.vers).u32(f.proc);
  w.u32(f.credFlavor ?? AUTH_NONE).opaque(f.cred ?? EMPTY, MAX_AUTH_BYTES);
  w.u32(f.verfFlavor ?? AUTH_NONE).opaque(f.verf ?? EMPTY, MAX_AUTH_BYTES);
  w.raw(args);
  return w.bytes();
}

/** AUTH_SYS credential fields (RFC 5531 Appendix A, `authsys_parms`). */
export interface AuthSysFields {
  stamp?: number;
  machineName: string;
  uid: number;
  gid: number;
  gids?: readonly number[];
}

/**
 * encodeAuthSys builds an `authsys_parms` body for `credFlavor: AUTH_SYS`. Throws RangeError when the
 * machine name is over 255 bytes or there are more than 16 groups (RFC 5531 Appendix A).
 */
export function encodeAuthSys(a: AuthSysFields): Uint8Array {
  const gids = a.gids ?? [];
  if (gids.length > 16) throw new RangeError(`authsys_parms allows 16 groups, got ${gids.length}`);
  const w = new XdrWriter(64);
  w.u32(a.stamp ?? 0)
    .string(a.machineName, 255)
    .u32(a.uid)
    .u32(a.gid)
    .u32(gids.length);
  for (const g of gids) w.u32(g);
  return w.bytes();
}
