import {
  NFS_PROGRAM,
  NFS_V3,
  NFSPROC3_COMMIT,
  NFSPROC3_NULL,
  Nfs3HandleView,
  OK,
  type RpcCallView,
} from '@onehost/wire';
import { type CallContext, type ProcReply, type RpcProgram, success } from './dispatch.js';

/** nfsstat3 NFS3ERR_STALE (RFC 1813 §2.6): the handle names nothing this server knows. */
export const NFS3ERR_STALE = 70;

/**
 * The size of each procedure's failure result after the status (RFC 1813 §3.3): post_op_attr is a
 * FALSE discriminant (4 bytes), wcc_data two of them (8). GETATTR's failure carries nothing; RENAME has
 * two wcc_data; LINK a post_op_attr and a wcc_data. Indexed by procedure number.
 */
const FAIL_BODY = [
  0, // NULL (never fails)
  0, // GETATTR
  8, // SETATTR obj_wcc
  4, // LOOKUP dir_attributes
  4, // ACCESS obj_attributes
  4, // READLINK symlink_attributes
  4, // READ file_attributes
  8, // WRITE file_wcc
  8, // CREATE dir_wcc
  8, // MKDIR dir_wcc
  8, // SYMLINK dir_wcc
  8, // MKNOD dir_wcc
  8, // REMOVE dir_wcc
  8, // RMDIR dir_wcc
  16, // RENAME fromdir_wcc, todir_wcc
  12, // LINK file_attributes, linkdir_wcc
  4, // READDIR dir_attributes
  4, // READDIRPLUS dir_attributes
  4, // FSSTAT obj_attributes
  4, // FSINFO obj_attributes
  4, // PATHCONF obj_attributes
  8, // COMMIT file_wcc
];

/** staleResult is the result of procedure `proc` failing with NFS3ERR_STALE and no attributes. */
export function staleResult(proc: number): Uint8Array {
  const out = new Uint8Array(4 + (FAIL_BODY[proc] ?? 0));
  new DataView(out.buffer).setUint32(0, NFS3ERR_STALE);
  return out;
}

/**
 * NfsProgram is what the gateway answers at the cluster's NFS port (program 100003, version 3). The
 * switch forwards every call whose file handle carries an export id some node registered (Fig. 9);
 * the gateway sees NULL, which it answers, and calls whose handle it cannot place: their handle is
 * stale for the cluster, as for a single server that no longer exports it, so they get NFS3ERR_STALE
 * with empty attributes (RFC 1813 §2.6) and the client can remount. A call whose handle cannot be
 * read at all is GARBAGE_ARGS.
 */
export class NfsProgram implements RpcProgram {
  readonly service = 'nfs' as const;
  readonly prog = NFS_PROGRAM;
  readonly low = NFS_V3;
  readonly high = NFS_V3;
  /** a WRITE of up to 1 MiB with its header can be the call whose handle went stale. */
  readonly maxRecordSize = (1 << 20) + 4096;
  private readonly handle = new Nfs3HandleView();

  call(c: RpcCallView, _ctx: CallContext): ProcReply {
    const proc = c.proc;
    if (proc === NFSPROC3_NULL) return success();
    if (proc > NFSPROC3_COMMIT) return { stat: 'proc_unavail' };
    if (this.handle.bindCall(c) !== OK) return { stat: 'garbage_args' };
    return success(staleResult(proc), 'stale');
  }
}
