import type { DecisionOut } from '../decision.js';
import type { PacketContext } from '../packet-context.js';
import type { RoutingFunction, RoutingFunctionSpec } from './types.js';

class Portmap implements RoutingFunction {
  readonly kind = 'portmap';
  readonly nullFunction = false;

  route(ctx: PacketContext, out: DecisionOut): void {
    if (ctx.trace !== null) ctx.trace.add("portmap: the gateway answers GETPORT with the cluster's ports");
    out.local();
  }

  routeQuoted(_ctx: PacketContext, out: DecisionOut): void {
    out.local();
  }

  describe(): Record<string, unknown> {
    return {};
  }
}

/** portmapSpec: `function: portmap` — always the gateway, which answers for the cluster (Example 1). */
export const portmapSpec: RoutingFunctionSpec<Record<string, never>> = {
  kind: 'portmap',
  protocols: ['udp', 'tcp'],
  summary: "portmapper: always the gateway, which answers GETPORT with the cluster's MOUNT/NFS ports",
  validate() {
    return {};
  },
  create() {
    return new Portmap();
  },
};
