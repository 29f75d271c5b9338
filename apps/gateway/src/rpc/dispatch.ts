import {
  AUTH_BADCRED,
  AUTH_NONE,
  AUTH_REJECTEDCRED,
  AUTH_SYS,
  encodeAcceptedReply,
  encodeAuthErrorReply,
  encodeRpcMismatchReply,
  GARBAGE_ARGS,
  OK,
  PROC_UNAVAIL,
  PROG_MISMATCH,
  PROG_UNAVAIL,
  RPC_BAD_RPCVERS,
  RPC_CRED_TOO_LONG,
  RPC_NOT_CALL,
  RPC_VERF_TOO_LONG,
  RpcCallView,
  SUCCESS,
  SYSTEM_ERR,
  u32,
  XdrReader,
} from '@onehost/wire';
import type { RpcService } from './cluster-ports.js';
import type { Outcome, RpcCounters, Transport } from './counters.js';

/** auth_stat AUTH_BADVERF (RFC 5531 §9): the verifier cannot be read. */
export const AUTH_BADVERF = 3;

/** What a procedure answers: results for SUCCESS, or one of the accepted-reply errors. */
export type ProcReply =
  | { stat: 'success'; results: Uint8Array; outcome?: Outcome }
  | { stat: 'garbage_args' }
  | { stat: 'proc_unavail' };

/** Where a call arrived: the cluster address and port it was sent to, and how. */
export interface CallContext {
  transport: Transport;
  localAddress: string;
  localPort: number;
}

/**
 * RpcProgram is one ONC RPC program the gateway answers itself. `call` is only reached for a call
 * that passed the header, authentication, program and version checks, and must not throw for any
 * arguments (an exception is answered SYSTEM_ERR and counted).
 */
export interface RpcProgram {
  readonly service: RpcService;
  readonly prog: number;
  /** the versions it serves, lowest and highest (PROG_MISMATCH names them). */
  readonly low: number;
  readonly high: number;
  /** cap on a TCP record (RFC 5531 §11) for this program's calls. */
  readonly maxRecordSize: number;
  call(call: RpcCallView, ctx: CallContext): ProcReply;
}

const EMPTY = new Uint8Array(0);
/** The shortest prefix with xid, msg_type and rpcvers: enough to answer RPC_MISMATCH. */
const RPCVERS_END = 12;
/** xid, msg_type, rpcvers, prog, vers, proc, cred flavor and length: enough to answer AUTH_ERROR. */
const CRED_LEN_END = 32;

/**
 * authSysOk checks an AUTH_SYS credential body (RFC 5531 Appendix A, `authsys_parms`): stamp,
 * machinename<255>, uid, gid, gids<16>. Bytes after it are ignored, as the ONC implementations do.
 */
export function authSysOk(buf: Uint8Array, off: number, len: number): boolean {
  const r = new XdrReader().reset(buf, off, off + len);
  r.u32();
  r.string(255);
  r.u32();
  r.u32();
  const n = r.u32();
  if (r.error !== OK || n > 16) return false;
  for (let i = 0; i < n; i++) r.u32();
  return r.error === OK;
}

/**
 * RpcDispatcher answers one call message (a UDP datagram, or a TCP record without its mark) for a
 * program, following the order of RFC 5531 §9: RPC version (RPC_MISMATCH), credential (AUTH_ERROR),
 * program (PROG_UNAVAIL), version (PROG_MISMATCH), procedure (PROC_UNAVAIL), arguments (GARBAGE_ARGS).
 * A message whose header cannot be read, or that is not a call, gets no answer. Everything is counted.
 */
export class RpcDispatcher {
  private readonly view = new RpcCallView();

  constructor(
    readonly program: RpcProgram,
    private readonly counters: RpcCounters,
  ) {}

  /** handle returns the reply message for `msg` (no record mark), or null when it gets none. Never throws. */
  handle(msg: Uint8Array, ctx: CallContext): Uint8Array | null {
    const p = this.program;
    const t = ctx.transport;
    const c = this.view;
    const code = c.bind(msg, 0, msg.length);
    if (code !== OK) {
      if (code === RPC_NOT_CALL) {
        this.counters.drop(p.service, t, 'not_call');
        return null;
      }
      const xid = msg.length >= 4 ? u32(msg, 0) : 0;
      if (code === RPC_BAD_RPCVERS && msg.length >= RPCVERS_END) {
        this.counters.outcome(p.service, t, 'rpc_mismatch');
        return encodeRpcMismatchReply(xid);
      }
      if (code === RPC_CRED_TOO_LONG && msg.length >= CRED_LEN_END) {
        this.counters.outcome(p.service, t, 'auth_error');
        return encodeAuthErrorReply(xid, AUTH_BADCRED);
      }
      if (code === RPC_VERF_TOO_LONG) {
        this.counters.outcome(p.service, t, 'auth_error');
        return encodeAuthErrorReply(xid, AUTH_BADVERF);
      }
      this.counters.drop(p.service, t, 'truncated');
      return null;
    }
    const xid = c.xid;
    const flavor = c.credFlavor;
    if (flavor === AUTH_SYS) {
      if (!authSysOk(msg, c.credOff, c.credLen)) {
        this.counters.outcome(p.service, t, 'auth_error');
        return encodeAuthErrorReply(xid, AUTH_BADCRED);
      }
    } else if (flavor !== AUTH_NONE) {
      // The flavor is one the gateway does not speak (RPCSEC_GSS, AUTH_DH …): what libtirpc and
      // ntirpc (rpcbind, nfs-ganesha on the nodes) answer for it.
      this.counters.outcome(p.service, t, 'auth_error');
      return encodeAuthErrorReply(xid, AUTH_REJECTEDCRED);
    }
    if (c.prog !== p.prog) {
      this.counters.outcome(p.service, t, 'prog_unavail');
      return encodeAcceptedReply(xid, PROG_UNAVAIL);
    }
    if (c.vers < p.low || c.vers > p.high) {
      this.counters.outcome(p.service, t, 'prog_mismatch');
      return encodeAcceptedReply(xid, PROG_MISMATCH, EMPTY, { low: p.low, high: p.high });
    }
    let r: ProcReply;
    try {
      r = p.call(c, ctx);
    } catch {
      this.counters.outcome(p.service, t, 'system_err');
      return encodeAcceptedReply(xid, SYSTEM_ERR);
    }
    switch (r.stat) {
      case 'success':
        this.counters.outcome(p.service, t, r.outcome ?? 'success');
        return encodeAcceptedReply(xid, SUCCESS, r.results);
      case 'garbage_args':
        this.counters.outcome(p.service, t, 'garbage_args');
        return encodeAcceptedReply(xid, GARBAGE_ARGS);
      case 'proc_unavail':
        this.counters.outcome(p.service, t, 'proc_unavail');
        return encodeAcceptedReply(xid, PROC_UNAVAIL);
    }
  }

  /** systemError answers SYSTEM_ERR to `msg` (when its reply cannot be sent, e.g. too big for UDP). */
  systemError(msg: Uint8Array, transport: Transport): Uint8Array {
    this.counters.outcome(this.program.service, transport, 'system_err');
    return encodeAcceptedReply(u32(msg, 0), SYSTEM_ERR);
  }
}

/** success wraps results (already XDR) as a SUCCESS answer. */
export function success(results: Uint8Array = EMPTY, outcome?: Outcome): ProcReply {
  return outcome === undefined ? { stat: 'success', results } : { stat: 'success', results, outcome };
}
