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
  XdrReader,
  XdrWriter,
} from '@onehost/wire';
import type { ClusterRpcPorts, TransportPorts } from './cluster-ports.js';
import { type CallContext, type ProcReply, type RpcProgram, success } from './dispatch.js';

/** The MOUNT versions the cluster's nodes serve (nfs-ganesha registers v1 and v3). */
const MOUNT_VERSIONS = [1, 3];
/** The port mapper (2) and rpcbind (3, 4) versions the gateway answers (RFC 1833). */
const PMAP_VERSIONS = [2, 3, 4];

/** rpcbind procedures (RFC 1833 §2.2.1, §2.2.2; version 4 adds the last). */
const RPCBPROC = { NULL: 0, SET: 1, UNSET: 2, GETADDR: 3, DUMP: 4, GETTIME: 6, GETVERSADDR: 9 } as const;
/** The longest netid, address or owner string read from an `rpcb` (rpcbind's own limits are near). */
const RPCB_STRING_MAX = 255;
/** What rpcbind names the owner of the system's services. */
const OWNER = 'superuser';

/**
 * universalAddress is an address and port as rpcbind writes it (RFC 5665 §5.2.3.3 and §5.2.3.4):
 * the address's text, then the port's high and low byte, dot-separated.
 */
export function universalAddress(address: string, port: number): string {
  return `${address}.${port >>> 8}.${port & 0xff}`;
}

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
  for (const v of PMAP_VERSIONS) add(PMAP_PROGRAM, v, ports.portmap);
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
 *
 * rpcbind versions 3 and 4 (RFC 1833 §2) answer the same with universal addresses: GETADDR (and
 * version 4's GETVERSADDR) names the cluster address the call came to with the cluster's port on the
 * call's transport (what libnfs asks before it mounts over IPv6);
 * DUMP lists the mappings so; GETTIME tells the time; SET and UNSET are refused; the rest is
 * PROC_UNAVAIL.
 */
export class PortmapProgram implements RpcProgram {
  readonly service = 'portmap' as const;
  readonly prog = PMAP_PROGRAM;
  readonly low = PMAP_V2;
  readonly high = 4;
  /** The largest call is a 16-byte mapping behind a header with two 400-byte auth bodies. */
  readonly maxRecordSize = 2048;
  private readonly mapping = new PmapMappingView();

  constructor(private readonly ports: () => ClusterRpcPorts) {}

  call(c: RpcCallView, ctx: CallContext): ProcReply {
    if (c.vers !== PMAP_V2) return this.rpcbind(c, ctx);
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

  /** rpcbind answers a version 3 or 4 call (RFC 1833 §2.2). */
  private rpcbind(c: RpcCallView, ctx: CallContext): ProcReply {
    const family = ctx.localAddress.includes(':') ? 6 : 4;
    switch (c.proc) {
      case RPCBPROC.NULL:
        return success();
      case RPCBPROC.SET:
      case RPCBPROC.UNSET:
        if (readRpcb(c) === null) return { stat: 'garbage_args' };
        return success(new XdrWriter(4).bool(false).bytes(), 'refused');
      case RPCBPROC.GETADDR:
      case RPCBPROC.GETVERSADDR: {
        if (c.proc === RPCBPROC.GETVERSADDR && c.vers < 4) return { stat: 'proc_unavail' };
        const r = readRpcb(c);
        if (r === null) return { stat: 'garbage_args' };
        // RFC 1833 §2.2.1: the argument's netid is ignored, the call's transport names it (libnfs
        // sends none): the address is where the call came, in its family and on its transport
        const prot = ctx.transport === 'tcp' ? PMAP_IPPROTO_TCP : PMAP_IPPROTO_UDP;
        const port = this.portOf(r.prog, prot);
        const addr = port === 0 ? '' : universalAddress(ctx.localAddress, port);
        return success(new XdrWriter(8 + addr.length).string(addr).bytes());
      }
      case RPCBPROC.DUMP: {
        const list = clusterMappings(this.ports());
        const w = new XdrWriter(64 * (list.length + 1));
        for (const m of list) {
          const netid = `${m.prot === PMAP_IPPROTO_TCP ? 'tcp' : 'udp'}${family === 6 ? '6' : ''}`;
          w.bool(true).u32(m.prog).u32(m.vers).string(netid);
          w.string(universalAddress(ctx.localAddress, m.port)).string(OWNER);
        }
        return success(w.bool(false).bytes());
      }
      case RPCBPROC.GETTIME:
        return success(new XdrWriter(4).u32(Math.floor(Date.now() / 1000) >>> 0).bytes());
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

/** readRpcb reads the `rpcb` argument (RFC 1833 §2.1): program, version, netid, address, owner. */
function readRpcb(c: RpcCallView): { prog: number; vers: number } | null {
  const r = new XdrReader().reset(c.buf, c.argsOffset, c.argsOffset + c.argsLength);
  const prog = r.u32();
  const vers = r.u32();
  for (let i = 0; i < 3; i++) r.string(RPCB_STRING_MAX);
  return r.error === OK ? { prog, vers } : null;
}
