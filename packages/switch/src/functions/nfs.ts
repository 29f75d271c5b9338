import { NFS_PROGRAM, NFS_V3, Nfs3HandleView, nfs3TakesHandle, OK } from '@onehost/wire';
import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { PacketContext } from '../packet-context.js';
import { readRpcRoutedConfig } from './mount.js';
import { RpcRouted, type RpcRoutedConfig } from './rpc-routed.js';
import type { RoutingDeps, RoutingFunctionSpec } from './types.js';

/**
 * NfsFunction is f_NFS (Fig. 9): the file handle that starts an NFSv3 call → the export id at the byte
 * range its server writes it (registered per node; ganesha: bytes 2-3, big-endian) → the node serving
 * that export. Port unchanged (every node's NFS server listens on the cluster's NFS port). NULL calls,
 * unknown export ids and calls it cannot read go to the gateway, counted.
 */
class NfsFunction extends RpcRouted {
  readonly kind = 'nfs';
  protected readonly reads = 'NFS file handle';

  private readonly handle = new Nfs3HandleView();

  protected routeCall(ctx: PacketContext, out: DecisionOut): void {
    const r = this.call;
    const counters = this.deps.counters;
    if (r.prog !== NFS_PROGRAM || r.vers !== NFS_V3) {
      if (ctx.trace !== null)
        ctx.trace.add(`nfs: RPC program ${r.prog} v${r.vers} is not NFSv3 → the gateway`);
      counters.event(EVENT.RPC_WRONG_PROGRAM);
      out.local();
      return;
    }
    if (!nfs3TakesHandle(r.proc)) {
      if (ctx.trace !== null) ctx.trace.add(`nfs: procedure ${r.proc} carries no file handle → the gateway`);
      counters.event(EVENT.NFS_TO_GATEWAY);
      out.local();
      return;
    }
    const h = this.handle;
    const code = h.bind(ctx.buf, r.argsOffset, r.argsLength);
    if (code !== OK) {
      if (ctx.trace !== null) ctx.trace.add('nfs: file handle missing or too long → the gateway');
      counters.event(EVENT.RPC_MALFORMED);
      counters.wireError(code);
      out.local();
      return;
    }
    const buf = ctx.buf;
    const fhOff = h.fhOff;
    const fhLen = h.fhLen;
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
