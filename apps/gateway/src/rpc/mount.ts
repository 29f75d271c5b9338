import {
  type ExportEntry,
  MNT3ERR_NOENT,
  MNTNAMLEN,
  MNTPATHLEN,
  MntArgsView,
  MOUNT_PROGRAM,
  MOUNT_V3,
  MOUNTPROC3_DUMP,
  MOUNTPROC3_EXPORT,
  MOUNTPROC3_MNT,
  MOUNTPROC3_NULL,
  MOUNTPROC3_UMNT,
  MOUNTPROC3_UMNTALL,
  OK,
  type RpcCallView,
  XdrWriter,
} from '@onehost/wire';
import { type CallContext, type ProcReply, type RpcProgram, success } from './dispatch.js';

/** MOUNT v1 and v2 only (RFC 1094 Appendix A): EXPORTALL, the same answer as EXPORT. */
const MOUNTPROC_EXPORTALL = 6;

/** exportReply encodes an `exports` list (RFC 1813 Appendix I; the same shape in v1 and v2). */
export function encodeExports(list: readonly ExportEntry[]): Uint8Array {
  const w = new XdrWriter(64 + list.length * 64);
  for (const e of list) {
    w.bool(true).string(e.dir, MNTPATHLEN);
    for (const g of e.groups) w.bool(true).string(g, MNTNAMLEN);
    w.bool(false);
  }
  return w.bool(false).bytes();
}

/**
 * MountProgram is the gateway's own MOUNT service (program 100005, versions 1-3) at the cluster's MOUNT
 * port. The switch forwards MNT and UMNT of exported paths to their nodes (Figs. 7-8); what reaches the
 * gateway is the rest: NULL; EXPORT, answered with the union of every node's exports so the cluster
 * looks like one server (`showmount -e`); DUMP (the gateway keeps no mount list: empty); UMNTALL; and
 * MNT of a path no node exports (Fig. 8 box 820), answered MNT3ERR_NOENT (errno ENOENT in v1 and v2,
 * the same number in the same place).
 */
export class MountProgram implements RpcProgram {
  readonly service = 'mount' as const;
  readonly prog = MOUNT_PROGRAM;
  readonly low = 1;
  readonly high = MOUNT_V3;
  /** header with two 400-byte auth bodies and a 1024-byte dirpath, rounded up. */
  readonly maxRecordSize = 4096;
  private readonly args = new MntArgsView();

  /** `exports` lists the exports the cluster serves now (sorted by the caller). */
  constructor(private readonly exports: () => readonly ExportEntry[]) {}

  call(c: RpcCallView, _ctx: CallContext): ProcReply {
    const proc = c.proc;
    switch (proc) {
      case MOUNTPROC3_NULL:
      case MOUNTPROC3_UMNTALL:
        return success();
      case MOUNTPROC3_MNT:
        if (this.args.bindCall(c) !== OK) return { stat: 'garbage_args' };
        return success(new XdrWriter(4).u32(MNT3ERR_NOENT).bytes(), 'noent');
      case MOUNTPROC3_UMNT:
        // Nothing is mounted from the gateway itself; UMNT returns void either way.
        if (this.args.bindCall(c) !== OK) return { stat: 'garbage_args' };
        return success();
      case MOUNTPROC3_DUMP:
        return success(new XdrWriter(4).bool(false).bytes());
      case MOUNTPROC3_EXPORT:
        return success(encodeExports(this.exports()));
      case MOUNTPROC_EXPORTALL:
        return c.vers < MOUNT_V3 ? success(encodeExports(this.exports())) : { stat: 'proc_unavail' };
      default:
        return { stat: 'proc_unavail' };
    }
  }
}

/**
 * clusterExports is the union the gateway's EXPORT answers: every export registered by a node that is
 * up (a down node's exports cannot be mounted until it is back), by path.
 */
export function clusterExports(
  members: readonly { name: string; state: string }[],
  registrations: readonly { nodeName: string; exports: readonly { path: string }[] }[],
): ExportEntry[] {
  const up = new Set(
    members.filter((m) => m.state !== 'down' && m.state !== 'unreachable').map((m) => m.name),
  );
  return registrations
    .filter((r) => up.has(r.nodeName))
    .flatMap((r) => r.exports.map((e) => ({ dir: e.path, groups: [] })))
    .sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
}
