/**
 * GatewayLiveness tells which gateways the node's routes to the outside should use, from the gateways'
 * data-path probes (docs: apps/node-agent/README.md, "Replies when a gateway host dies"). Every gateway
 * probes every node each probe interval through VXLAN; a gateway whose probes stop (its process, its
 * host or its interconnect link died) can no longer be relied on to forward the node's replies, so the
 * node's multipath routes leave it out until it probes again. A gateway never heard is kept (it may not
 * probe yet, or at all); when every gateway would be left out, all are kept (the node's own inbound path
 * is the likelier fault, and replies need some way out). Pure: time is passed in.
 */
export class GatewayLiveness {
  private readonly heardAt = new Map<string, number>();

  /**
   * @param gateways the gateways of the node's configuration, in its order
   * @param silentMs how long without a probe makes a gateway silent (a few probe intervals)
   */
  constructor(
    readonly gateways: readonly string[],
    private readonly silentMs: number,
  ) {}

  /** heard notes a probe from `gateway` at `now` (others are ignored). */
  heard(gateway: string, now: number): void {
    if (this.gateways.includes(gateway)) this.heardAt.set(gateway, now);
  }

  /** live lists the gateways to route through at `now`, in the configuration's order. */
  live(now: number): string[] {
    const live = this.gateways.filter((g) => {
      const at = this.heardAt.get(g);
      return at === undefined || now - at <= this.silentMs;
    });
    return live.length > 0 ? live : [...this.gateways];
  }
}
