import { MntArgsView, MOUNT_PROGRAM, MOUNTPROC3_MNT, MOUNTPROC3_UMNT, OK } from '@onehost/wire';
import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { PacketContext } from '../packet-context.js';
import {
  DEFAULT_RPC_TCP_FLOWS,
  DEFAULT_RPC_TCP_IDLE,
  RpcRouted,
  type RpcRoutedConfig,
} from './rpc-routed.js';
import type { RoutingDeps, RoutingFunctionSpec } from './types.js';

const PROC_NAMES = ['NULL', 'MNT', 'DUMP', 'UMNT', 'UMNTALL', 'EXPORT'];

const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * MountFunction is f_MOUNT (Figs. 7-8): the dirpath of an MNT (or UMNT) call → the longest matching
 * export in the Cluster Export Table → its node → that node's mountd port from the Mount Port Table, to
 * which the destination port is rewritten (claim 3). NULL, DUMP, UMNTALL and EXPORT calls, unmatched
 * paths (box 820) and calls it cannot read go to the gateway, counted.
 */
class MountFunction extends RpcRouted {
  readonly kind = 'mount';
  protected readonly reads = 'MOUNT dirpath';
  private readonly args = new MntArgsView();

  protected routeCall(ctx: PacketContext, out: DecisionOut): void {
    const r = this.call;
    const counters = this.deps.counters;
    if (r.prog !== MOUNT_PROGRAM || r.vers < 1 || r.vers > 3) {
      if (ctx.trace !== null)
        ctx.trace.add(`mount: RPC program ${r.prog} v${r.vers} is not MOUNT → the gateway`);
      counters.event(EVENT.RPC_WRONG_PROGRAM);
      out.local();
      return;
    }
    if (r.proc !== MOUNTPROC3_MNT && r.proc !== MOUNTPROC3_UMNT) {
      if (ctx.trace !== null)
        ctx.trace.add(`mount: ${PROC_NAMES[r.proc] ?? `procedure ${r.proc}`} call → the gateway answers`);
      counters.event(EVENT.MOUNT_TO_GATEWAY);
      out.local();
      return;
    }
    const buf = ctx.buf;
    const a = this.args;
    const code = a.bind(buf, r.argsOffset, r.argsLength);
    if (code !== OK) {
      if (ctx.trace !== null) ctx.trace.add('mount: dirpath missing or longer than 1024 bytes → the gateway');
      counters.event(EVENT.RPC_MALFORMED);
      counters.wireError(code);
      out.local();
      return;
    }
    const at = a.pathOff;
    const n = a.pathLen;
    const row = this.deps.exports.matchDirpath(buf, at, n);
    if (row < 0) {
      if (ctx.trace !== null) {
        ctx.trace.add(
          `mount: ${PROC_NAMES[r.proc]} ${JSON.stringify(decoder.decode(buf.subarray(at, at + n)))} matches no export (820) → the gateway`,
        );
      }
      counters.event(EVENT.MOUNT_NO_MATCH);
      out.local();
      return;
    }
    const exp = this.deps.exports.rows[row]!;
    const nodes = ctx.nodes;
    if (!nodes.isUp(exp.node)) {
      if (ctx.trace !== null)
        ctx.trace.add(`mount: export ${exp.path} is on ${nodes.nameOf(exp.node)}, which is down`);
      out.drop(DROP.NODE_DOWN);
      return;
    }
    const info = nodes.get(exp.node);
    const mountd = this.deps.protocol === 'tcp' ? info?.mountd.tcp : info?.mountd.udp;
    const port = mountd === undefined || mountd === this.deps.port ? NO_PORT : mountd;
    if (ctx.trace !== null) {
      const path = JSON.stringify(decoder.decode(buf.subarray(at, at + n)));
      const portText = port === NO_PORT ? 'port unchanged' : `mountd port ${port} (claim 3)`;
      ctx.trace.add(
        `mount: ${PROC_NAMES[r.proc]} ${path} → export ${exp.path} (825) → ${nodes.nameOf(exp.node)}, ${portText}`,
      );
    }
    out.forward(exp.node, port);
  }

  override describe(): Record<string, unknown> {
    return { exports: this.deps.exports.rows.length, ...super.describe() };
  }
}

/** mountSpec: `function: mount`; optional `maxEntries`, `idleTimeout` for TCP flows. Exports and mountd ports come from `exports:` and `nodes[].mountd`. */
export const mountSpec: RoutingFunctionSpec<RpcRoutedConfig> = {
  kind: 'mount',
  protocols: ['udp', 'tcp'],
  summary:
    'MOUNT (Figs. 7-8): dirpath → longest export match → node, destination port → its mountd port (claim 3)',
  validate(f) {
    return readRpcRoutedConfig(f);
  },
  create(config, deps: RoutingDeps) {
    return new MountFunction(deps, config);
  },
};

/** readRpcRoutedConfig reads the TCP binding options shared by mount and nfs. */
export function readRpcRoutedConfig(f: Parameters<RoutingFunctionSpec['validate']>[0]): RpcRoutedConfig {
  return {
    maxEntries: f.int('maxEntries', { min: 1, max: 1 << 24, default: DEFAULT_RPC_TCP_FLOWS }),
    idleTimeout: f.seconds('idleTimeout', DEFAULT_RPC_TCP_IDLE),
  };
}
