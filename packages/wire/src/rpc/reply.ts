import { u32 } from '../bytes.js';
import { type Checked, checked, defineError, OK } from '../errors.js';
import { AUTH_NONE, MAX_AUTH_BYTES, MSG_REPLY, RPC_VERF_TOO_LONG } from './call.js';
import { pad4, XdrWriter } from './xdr.js';

/*
 * RFC 5531 §9: a reply message.
 *   reply_body     switch (reply_stat)  { MSG_ACCEPTED: accepted_reply; MSG_DENIED: rejected_reply }
 *   accepted_reply { opaque_auth verf;
 *                    switch (accept_stat) { SUCCESS: results; PROG_MISMATCH: { low, high }; default: void } }
 *   rejected_reply switch (reject_stat) { RPC_MISMATCH: { low, high }; AUTH_ERROR: auth_stat }
 *
 *  0     4         8            12          16        20              +0            +4
 * | xid | mtype=1 | MSG_ACCEPTED | verf flavor | verf len | verf body+pad | accept_stat | results...
 * | xid | mtype=1 | MSG_DENIED   | reject_stat | low or auth_stat | high
 */
const XID = 0;
const MSG_TYPE = 4;
const REPLY_STAT = 8;
const BODY = 12;

/** reply_stat (RFC 5531 §9). */
export const MSG_ACCEPTED = 0;
export const MSG_DENIED = 1;

/** accept_stat (RFC 5531 §9). */
export const SUCCESS = 0;
export const PROG_UNAVAIL = 1;
export const PROG_MISMATCH = 2;
export const PROC_UNAVAIL = 3;
export const GARBAGE_ARGS = 4;
export const SYSTEM_ERR = 5;

/** reject_stat (RFC 5531 §9). */
export const RPC_MISMATCH = 0;
export const AUTH_ERROR = 1;

/** auth_stat values a gateway may send (RFC 5531 §9). */
export const AUTH_BADCRED = 1;
export const AUTH_REJECTEDCRED = 2;
export const AUTH_TOOWEAK = 5;

export const RPC_REPLY_TRUNCATED = defineError(630, 'truncated', 'rpc_reply_truncated');
export const RPC_NOT_REPLY = defineError(631, 'malformed', 'rpc_not_reply');
export const RPC_BAD_REPLY_STAT = defineError(632, 'malformed', 'rpc_bad_reply_stat');
export const RPC_BAD_ACCEPT_STAT = defineError(633, 'malformed', 'rpc_bad_accept_stat');
export const RPC_BAD_REJECT_STAT = defineError(634, 'malformed', 'rpc_bad_reject_stat');
/** A decoder expected SUCCESS and the reply says otherwise. */
export const RPC_REPLY_NOT_SUCCESS = defineError(635, 'malformed', 'rpc_reply_not_success');

const EMPTY = new Uint8Array(0);

/**
 * RpcReplyView is a reusable view over one reply message at buf[off, off+len). After `bind` returns OK,
 * `acceptStat` is set for accepted replies and `rejectStat` for denied ones (the other is -1), and the
 * verifier and `resultsOffset` lie inside the range. Never throws, never allocates.
 */
export class RpcReplyView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  replyStat = 0;
  verfFlavor = 0;
  verfOff = 0;
  verfLen = 0;
  acceptStat = -1;
  rejectStat = -1;
  /** mismatchLow/High: the versions supported, for PROG_MISMATCH and RPC_MISMATCH. */
  mismatchLow = 0;
  mismatchHigh = 0;
  authStat = 0;
  /** resultsOffset: index into `buf` where SUCCESS results start (the end of the header otherwise). */
  resultsOffset = 0;

  /** bind checks the reply header at buf[off, off+len); returns OK or an RPC_* code. */
  bind(buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (!(off >= 0 && len >= 0 && off + len <= buf.length)) return RPC_REPLY_TRUNCATED;
    const end = off + len;
    if (len < REPLY_STAT) return RPC_REPLY_TRUNCATED;
    if (u32(buf, off + MSG_TYPE) !== MSG_REPLY) return RPC_NOT_REPLY;
    if (len < BODY) return RPC_REPLY_TRUNCATED;
    const stat = u32(buf, off + REPLY_STAT);
    let p = off + BODY;
    let accept = -1;
    let reject = -1;
    let low = 0;
    let high = 0;
    let auth = 0;
    let verfFlavor = 0;
    let verfOff = p;
    let verfLen = 0;
    if (stat === MSG_ACCEPTED) {
      if (p + 8 > end) return RPC_REPLY_TRUNCATED;
      verfFlavor = u32(buf, p);
      verfLen = u32(buf, p + 4);
      if (verfLen > MAX_AUTH_BYTES) return RPC_VERF_TOO_LONG;
      verfOff = p + 8;
      p = verfOff + pad4(verfLen);
      if (p + 4 > end) return RPC_REPLY_TRUNCATED;
      accept = u32(buf, p);
      p += 4;
      if (accept > SYSTEM_ERR) return RPC_BAD_ACCEPT_STAT;
      if (accept === PROG_MISMATCH) {
        if (p + 8 > end) return RPC_REPLY_TRUNCATED;
        low = u32(buf, p);
        high = u32(buf, p + 4);
        p += 8;
      }
    } else if (stat === MSG_DENIED) {
      if (p + 4 > end) return RPC_REPLY_TRUNCATED;
      reject = u32(buf, p);
      p += 4;
      if (reject === RPC_MISMATCH) {
        if (p + 8 > end) return RPC_REPLY_TRUNCATED;
        low = u32(buf, p);
        high = u32(buf, p + 4);
        p += 8;
      } else if (reject === AUTH_ERROR) {
        if (p + 4 > end) return RPC_REPLY_TRUNCATED;
        auth = u32(buf, p);
        p += 4;
      } else return RPC_BAD_REJECT_STAT;
    } else return RPC_BAD_REPLY_STAT;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.replyStat = stat;
    this.verfFlavor = verfFlavor;
    this.verfOff = verfOff;
    this.verfLen = verfLen;
    this.acceptStat = accept;
    this.rejectStat = reject;
    this.mismatchLow = low;
    this.mismatchHigh = high;
    this.authStat = auth;
    this.resultsOffset = p;
    return OK;
  }

  /** parse binds a new view (allocates; off the hot path). */
  static parse(buf: Uint8Array, off = 0, len = buf.length - off): Checked<RpcReplyView> {
    const v = new RpcReplyView();
    return checked(v.bind(buf, off, len), v);
  }

  get xid(): number {
    return u32(this.buf, this.off + XID);
  }
  /** success: accepted with SUCCESS, so results follow at `resultsOffset`. */
  get success(): boolean {
    return this.acceptStat === SUCCESS;
  }
  /** resultsLength: bytes from `resultsOffset` to the end of the message. */
  get resultsLength(): number {
    return this.off + this.len - this.resultsOffset;
  }
}

/**
 * beginAcceptedReply writes the header of an accepted reply with an AUTH_NONE verifier into `w`; the
 * caller appends the results (SUCCESS) or nothing. Throws RangeError on an out-of-range xid.
 */
export function beginAcceptedReply(w: XdrWriter, xid: number, acceptStat = SUCCESS): XdrWriter {
  return w.u32(xid).u32(MSG_REPLY).u32(MSG_ACCEPTED).u32(AUTH_NONE).u32(0).u32(acceptStat);
}

/**
 * encodeAcceptedReply builds an accepted reply (no record mark): SUCCESS with `results` (already XDR),
 * PROG_UNAVAIL, PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR, or PROG_MISMATCH with the supported versions.
 * Throws RangeError for PROG_MISMATCH without `mismatch`, or for results with any other status.
 */
export function encodeAcceptedReply(
  xid: number,
  acceptStat: number,
  results: Uint8Array = EMPTY,
  mismatch?: { low: number; high: number },
): Uint8Array {
  if (acceptStat < SUCCESS || acceptStat > SYSTEM_ERR) throw new RangeError(`bad accept_stat ${acceptStat}`);
  if (acceptStat !== SUCCESS && results.length > 0) throw new RangeError('only SUCCESS carries results');
  const w = beginAcceptedReply(new XdrWriter(24 + results.length + 8), xid, acceptStat);
  if (acceptStat === PROG_MISMATCH) {
    if (!mismatch) throw new RangeError('PROG_MISMATCH needs the supported version range');
    w.u32(mismatch.low).u32(mismatch.high);
  }
  return w.raw(results).bytes();
}

/** encodeRpcMismatchReply builds a denied reply: RPC_MISMATCH with the supported RPC versions (2..2). */
export function encodeRpcMismatchReply(xid: number, low = 2, high = 2): Uint8Array {
  return new XdrWriter(24)
    .u32(xid)
    .u32(MSG_REPLY)
    .u32(MSG_DENIED)
    .u32(RPC_MISMATCH)
    .u32(low)
    .u32(high)
    .bytes();
}

/** encodeAuthErrorReply builds a denied reply: AUTH_ERROR with `authStat` (e.g. AUTH_TOOWEAK). */
export function encodeAuthErrorReply(xid: number, authStat: number): Uint8Array {
  return new XdrWriter(20).u32(xid).u32(MSG_REPLY).u32(MSG_DENIED).u32(AUTH_ERROR).u32(authStat).bytes();
}

/**
 * successResults binds `reply` on msg and checks for an accepted SUCCESS reply; returns OK or a code
 * (RPC_REPLY_NOT_SUCCESS for a well-formed reply with another status). Used by the result decoders.
 */
export function successResults(reply: RpcReplyView, msg: Uint8Array): number {
  const code = reply.bind(msg);
  if (code !== OK) return code;
  return reply.success ? OK : RPC_REPLY_NOT_SUCCESS;
}
