import type { DecisionOut } from '../decision.js';
import type { KernelPlan } from '../kernel-plan.js';
import type { PacketContext } from '../packet-context.js';
import type { RoutingFunction, RoutingFunctionSpec } from './types.js';

class Portmap implements RoutingFunction {
  readonly kind = 'portmap';
  readonly nullFunction = false;
  /** the gateway's portmapper also listens on the IPv6 cluster addresses; its answers hold ports only. */
  readonly ipv6 = true;

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

  /** Every portmapper packet is the gateway's: the kernel delivers it to the host's own listener. */
  kernel(): KernelPlan {
    return { path: 'kernel', kind: 'local' };
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
