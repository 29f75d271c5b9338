import {
  MOUNT_PROGRAM,
  NFS_PROGRAM,
  NFS_V3,
  OK,
  PMAP_IPPROTO_TCP,
  PMAP_IPPROTO_UDP,
  PMAP_PROGRAM,
  PMAP_V2,
  PMAPPROC_DUMP,
  PMAPPROC_GETPORT,
  PMAPPROC_NULL,
  PMAPPROC_SET,
  PMAPPROC_UNSET,
  type PmapMapping,
  PmapMappingView,
  type RpcCallView,
  XdrWriter,
} from '@onehost/wire';
import type { ClusterRpcPorts, TransportPorts } from './cluster-ports.js';
import { type CallContext, type ProcReply, type RpcProgram, success } from './dispatch.js';

/** The MOUNT versions the cluster's nodes serve (nfs-ganesha registers v1 and v3). */
const MOUNT_VERSIONS = [1, 3];

/**
 * clusterMappings lists what the cluster serves at its address, as rpcbind would list a single host:
 * the portmapper itself, MOUNT v1 and v3 and NFS v3, each on the cluster's port per transport.
 */
export function clusterMappings(ports: ClusterRpcPorts): PmapMapping[] {
  const out: PmapMapping[] = [];
  const add = (prog: number, vers: number, p: TransportPorts) => {
    if (p.tcp !== undefined) out.push({ prog, vers, prot: PMAP_IPPROTO_TCP, port: p.tcp });
    if (p.udp !== undefined) out.push({ prog, vers, prot: PMAP_IPPROTO_UDP, port: p.udp });
  };
  add(PMAP_PROGRAM, PMAP_V2, ports.portmap);
  for (const v of MOUNT_VERSIONS) add(MOUNT_PROGRAM, v, ports.mount);
  add(NFS_PROGRAM, NFS_V3, ports.nfs);
  return out;
}

/**
 * PortmapProgram answers the port mapper, version 2 (RFC 1833 §3), at the cluster address: GETPORT
 * for MOUNT (100005) and NFS (100003) names the cluster's ports, so clients that ask the portmapper
 * (the patent's Example 1: unmodified clients) reach the gateway's MOUNT and NFS routing. DUMP lists
 * them. SET and UNSET from the network are refused (FALSE): nobody registers with the cluster.
 * CALLIT (indirect calls) is PROC_UNAVAIL: the gateway forwards no calls on anyone's behalf.
 */
export class PortmapProgram implements RpcProgram {
  readonly service = 'portmap' as const;
  readonly prog = PMAP_PROGRAM;
  readonly low = PMAP_V2;
  readonly high = PMAP_V2;
  /** The largest call is a 16-byte mapping behind a header with two 400-byte auth bodies. */
  readonly maxRecordSize = 2048;
  private readonly mapping = new PmapMappingView();

  constructor(private readonly ports: () => ClusterRpcPorts) {}

  call(c: RpcCallView, _ctx: CallContext): ProcReply {
    switch (c.proc) {
      case PMAPPROC_NULL:
        return success();
      case PMAPPROC_SET:
      case PMAPPROC_UNSET:
        if (this.mapping.bindCall(c) !== OK) return { stat: 'garbage_args' };
        return success(new XdrWriter(4).bool(false).bytes(), 'refused');
      case PMAPPROC_GETPORT: {
        if (this.mapping.bindCall(c) !== OK) return { stat: 'garbage_args' };
        const m = this.mapping;
        return success(new XdrWriter(4).u32(this.portOf(m.prog, m.prot)).bytes());
      }
      case PMAPPROC_DUMP: {
        const list = clusterMappings(this.ports());
        const w = new XdrWriter(8 + list.length * 20);
        for (const m of list) w.bool(true).u32(m.prog).u32(m.vers).u32(m.prot).u32(m.port);
        return success(w.bool(false).bytes());
      }
      default:
        return { stat: 'proc_unavail' };
    }
  }

  /**
   * portOf answers GETPORT. Like rpcbind, a program registered under another version still gets its
   * port (RFC 1833 §3.2 leaves it open): the server's PROG_MISMATCH then names its versions.
   */
  portOf(prog: number, prot: number): number {
    const ports = this.ports();
    const p =
      prog === MOUNT_PROGRAM
        ? ports.mount
        : prog === NFS_PROGRAM
          ? ports.nfs
          : prog === PMAP_PROGRAM
            ? ports.portmap
            : undefined;
    if (p === undefined) return 0;
    const port = prot === PMAP_IPPROTO_TCP ? p.tcp : prot === PMAP_IPPROTO_UDP ? p.udp : undefined;
    return port ?? 0;
  }
}
