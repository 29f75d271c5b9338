import { ipv4ToString, ipv6ToString } from '@onehost/wire';
import type { ClusterAddressConfig } from './types.js';

/** clusterAddressText formats a cluster address of either family (RFC 5952 text for IPv6). */
export function clusterAddressText(c: Pick<ClusterAddressConfig, 'address' | 'address6'>): string {
  return c.address6 !== undefined ? ipv6ToString(c.address6) : ipv4ToString(c.address);
}

/** isIpv6 tells an IPv6 cluster address from an IPv4 one. */
export function isIpv6(c: Pick<ClusterAddressConfig, 'address6'>): boolean {
  return c.address6 !== undefined;
}
