import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { PacketContext } from '../packet-context.js';
import { readRpcRoutedConfig } from './mount.js';
import { RpcRouted, type RpcRoutedConfig } from './rpc-routed.js';
import type { RoutingDeps, RoutingFunctionSpec } from './types.js';

/** NFS program (RFC 1813). */
export const NFS_PROG = 100003;
/** RFC 1813 §2.5: `opaque data<NFS3_FHSIZE>`, NFS3_FHSIZE = 64. */
const NFS3_FHSIZE = 64;
/** RFC 1094 §2.3.3: NFSv2 handles are a fixed 32-byte opaque. */
const NFS2_FHSIZE = 32;
/** Highest NFSv3 procedure (COMMIT); every procedure from 1 to it starts with a file handle (RFC 1813 §3.3). */
const NFS3_LAST_PROC = 21;

/**
 * NfsFunction is f_NFS (Fig. 9): the file handle that starts an NFSv3 call → the export id at the byte
 * range its server writes it (registered per node; ganesha: bytes 2-3, big-endian) → the node serving
 * that export. Port unchanged (every node's NFS server listens on the cluster's NFS port). NULL calls,
 * unknown export ids and calls it cannot read go to the gateway, counted.
 */
class NfsFunction extends RpcRouted {
  readonly kind = 'nfs';

  protected routeCall(ctx: PacketContext, out: DecisionOut): void {
    const r = this.rpc;
    const counters = this.deps.counters;
    if (r.prog !== NFS_PROG || (r.vers !== 3 && r.vers !== 2)) {
      if (ctx.trace !== null)
        ctx.trace.add(`nfs: RPC program ${r.prog} v${r.vers} is not NFSv2/v3 → the gateway`);
      counters.event(EVENT.RPC_WRONG_PROGRAM);
      out.local();
      return;
    }
    const buf = ctx.buf;
    let fhOff: number;
    let fhLen: number;
    if (r.vers === 3) {
      if (r.proc === 0 || r.proc > NFS3_LAST_PROC) {
        if (ctx.trace !== null)
          ctx.trace.add(`nfs: procedure ${r.proc} carries no file handle → the gateway`);
        counters.event(EVENT.NFS_TO_GATEWAY);
        out.local();
        return;
      }
      fhLen = r.opaqueAt(buf, r.argsOffset, NFS3_FHSIZE);
      fhOff = r.argsOffset + 4;
    } else {
      // NFSv2: every procedure but NULL (0), ROOT (3) and WRITECACHE (7) starts with a handle.
      if (r.proc === 0 || r.proc === 3 || r.proc === 7 || r.proc > 17) {
        if (ctx.trace !== null)
          ctx.trace.add(`nfs: v2 procedure ${r.proc} carries no file handle → the gateway`);
        counters.event(EVENT.NFS_TO_GATEWAY);
        out.local();
        return;
      }
      fhLen = r.argsOffset + NFS2_FHSIZE <= r.argsEnd ? NFS2_FHSIZE : -1;
      fhOff = r.argsOffset;
    }
    if (fhLen < 0) {
      if (ctx.trace !== null) ctx.trace.add('nfs: file handle missing or too long → the gateway');
      counters.event(EVENT.RPC_MALFORMED);
      out.local();
      return;
    }
    const row = this.deps.exports.matchHandle(buf, fhOff, fhLen);
    if (row < 0) {
      if (ctx.trace !== null)
        ctx.trace.add(`nfs: handle (${fhLen} bytes) carries no registered export id → the gateway`);
      counters.event(EVENT.NFS_UNKNOWN_EXPORT);
      out.local();
      return;
    }
    const exp = this.deps.exports.rows[row]!;
    const nodes = ctx.nodes;
    if (!nodes.isUp(exp.node)) {
      if (ctx.trace !== null)
        ctx.trace.add(
          `nfs: export id ${exp.exportId} (${exp.path}) is on ${nodes.nameOf(exp.node)}, which is down`,
        );
      out.drop(DROP.NODE_DOWN);
      return;
    }
    if (ctx.trace !== null) {
      ctx.trace.add(
        `nfs: v${r.vers} procedure ${r.proc}, handle export id ${exp.exportId} (${exp.path}) (935) → ${nodes.nameOf(exp.node)}`,
      );
    }
    out.forward(exp.node, NO_PORT);
  }
}

/** nfsSpec: `function: nfs`; optional `maxEntries`, `idleTimeout` for TCP flows. Export ids come from `exports:`, handle layouts from `nodes[].nfsHandle`. */
export const nfsSpec: RoutingFunctionSpec<RpcRoutedConfig> = {
  kind: 'nfs',
  protocols: ['udp', 'tcp'],
  summary: "NFS (Fig. 9): the file handle's export id → the node serving that export",
  validate(f) {
    return readRpcRoutedConfig(f);
  },
  create(config, deps: RoutingDeps) {
    return new NfsFunction(deps, config);
  },
};
