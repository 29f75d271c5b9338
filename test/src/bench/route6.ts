import type { Cluster } from '../cluster.js';

/**
 * The IPv6 kernel route, the IPv6 rows' baseline: c2 → n1's own IPv6 address, forwarded by the gateway
 * host's kernel, as the IPv4 rows' c2 → n1's internal address. The lab's interconnect is IPv4 only
 * (onehost carries IPv6 inside VXLAN over it), so the bench gives it an IPv6 prefix of its own,
 * 2001:db8:18::/64 (RFC 3849), on the gateway host and n1 only: nothing of onehost uses it.
 */
export const ROUTE6 = { prefix: '2001:db8:18::/64', gateway: '2001:db8:18::1', n1: '2001:db8:18::11' };

/**
 * addKernelRoute6 puts the addresses and c2's route in place. n1's replies leave by the IPv6 default
 * route its agent set (through the gateway host's interconnect link-local); the gateway host forwards
 * IPv6 once onehost serves an IPv6 cluster address. Its host filter lets c2 through as an IPv6
 * management source (the bench's gateway.yaml lists it), and n1's replies out once n1's address is in
 * the set `nodes6`, which onehost leaves empty (agents register IPv4 addresses only; docs/gateway.md,
 * Exposure). Throws when a command fails; the lab's cleanup removes it all.
 */
export async function addKernelRoute6(c: Cluster): Promise<void> {
  const { lab } = c;
  const len = ROUTE6.prefix.split('/')[1];
  // nodad: DAD would only delay addresses nobody else has
  await lab.exec('gw', 'ip', ['-6', 'addr', 'add', `${ROUTE6.gateway}/${len}`, 'dev', 'eth1', 'nodad']);
  await lab.exec('n1', 'ip', ['-6', 'addr', 'add', `${ROUTE6.n1}/${len}`, 'dev', 'eth0', 'nodad']);
  await lab.exec('c2', 'ip', ['-6', 'route', 'add', ROUTE6.prefix, 'via', lab.addresses.ipv6.gateway]);
  await lab.exec('gw', 'nft', ['add', 'element', 'ip6', 'onehost_gateway', 'nodes6', `{ ${ROUTE6.n1} }`]);
}
