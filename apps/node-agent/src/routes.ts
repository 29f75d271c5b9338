/** Routes the agent adds carry this protocol number, so they can be told apart from everyone else's. */
export const ROUTE_PROTO = '111';

export { type IpRoute, routeArgs } from '@onehost/kernel';

/** viaGateways renders the next hop part of a route through the gateways (multipath for several). */
export function viaGateways(gateways: readonly string[], dev: string): string[] {
  if (gateways.length === 1) return ['via', gateways[0]!, 'dev', dev];
  return gateways.flatMap((g) => ['nexthop', 'via', g, 'dev', dev]);
}
