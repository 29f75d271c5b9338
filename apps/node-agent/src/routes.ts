/** Routes the agent adds carry this protocol number, so they can be told apart from everyone else's. */
export const ROUTE_PROTO = '111';

/** IpRoute is the part of `ip -j route` output the agent reads back. */
export interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags?: string[];
  table?: string;
  nexthops?: Array<{ gateway?: string; dev?: string; weight?: number; flags?: string[] }>;
}

/**
 * routeArgs turns a route read with `ip -j route` back into `ip route replace` arguments, so a route the
 * agent replaced can be put back as it was. Throws for a route it cannot express (no destination).
 */
export function routeArgs(r: IpRoute): string[] {
  if (!r.dst) throw new Error(`route without destination: ${JSON.stringify(r)}`);
  const args: string[] = [];
  if (r.type && r.type !== 'unicast') args.push(r.type);
  args.push(r.dst);
  if (r.gateway) args.push('via', r.gateway);
  if (r.dev) args.push('dev', r.dev);
  if (r.table && r.table !== 'main') args.push('table', r.table);
  if (r.protocol) args.push('proto', r.protocol);
  if (r.scope) args.push('scope', r.scope);
  if (r.prefsrc) args.push('src', r.prefsrc);
  if (r.metric !== undefined) args.push('metric', String(r.metric));
  if (r.flags?.includes('onlink')) args.push('onlink');
  for (const hop of r.nexthops ?? []) {
    args.push('nexthop');
    if (hop.gateway) args.push('via', hop.gateway);
    if (hop.dev) args.push('dev', hop.dev);
    if (hop.weight !== undefined) args.push('weight', String(hop.weight));
    if (hop.flags?.includes('onlink')) args.push('onlink');
  }
  return args;
}

/** viaGateways renders the next hop part of a route through the gateways (multipath for several). */
export function viaGateways(gateways: readonly string[], dev: string): string[] {
  if (gateways.length === 1) return ['via', gateways[0]!, 'dev', dev];
  return gateways.flatMap((g) => ['nexthop', 'via', g, 'dev', dev]);
}
