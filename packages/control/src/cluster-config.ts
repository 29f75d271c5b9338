import { isIPv6 } from 'node:net';
import { parseCidr, tryParseIpv4 } from '@onehost/wire';

/** ClusterConfig is what Join hands every node besides its own id and block. */
export interface ClusterConfig {
  /** cluster addresses (VIPs), one per attached network; exactly one is the default. */
  addresses: { network: string; address: string; isDefault: boolean }[];
  vxlan: {
    /** VXLAN network identifier, 1 to 2^24-1. */
    vni: number;
    /** outer UDP destination port (4789, RFC 7348). */
    udpPort: number;
    /** the gateways' interconnect addresses. */
    gatewayAddresses: string[];
    /** the UDP port agents answer data-path probes on; 0 or absent: no probes */
    probeUdpPort?: number;
    /** how often each gateway probes each node; 0 or absent: not said */
    probeIntervalMs?: number;
  };
  /** prefixes of the cluster interconnect (e.g. "198.18.0.0/15"); nodes' internal addresses lie in them. */
  interconnectPrefixes: string[];
  /**
   * the smallest MTU of the gateway's outside interfaces, which nodes put on their routes to the outside
   * (absent or 0: not said)
   */
  outsideMtu?: number;
}

/**
 * checkClusterConfig checks a cluster configuration. Throws RangeError naming the field: no address,
 * not exactly one default, a bad address, VNI, port or prefix.
 */
export function checkClusterConfig(c: ClusterConfig): void {
  if (c.addresses.length === 0) throw new RangeError('cluster.addresses: at least one cluster address');
  c.addresses.forEach((a, i) => {
    if (tryParseIpv4(a.address) < 0 && !isIPv6(a.address))
      throw new RangeError(`cluster.addresses[${i}].address: not an IPv4 or IPv6 address`);
    if (a.network === '') throw new RangeError(`cluster.addresses[${i}].network: required`);
  });
  // IPv4: exactly one default; IPv6 (optional): at most one, the node takes the first when none is
  const defaults = c.addresses.filter((a) => a.isDefault && !isIPv6(a.address)).length;
  if (defaults !== 1) throw new RangeError(`cluster.addresses: exactly one default, not ${defaults}`);
  const defaults6 = c.addresses.filter((a) => a.isDefault && isIPv6(a.address)).length;
  if (defaults6 > 1) throw new RangeError(`cluster.addresses: at most one IPv6 default, not ${defaults6}`);
  if (!Number.isInteger(c.vxlan.vni) || c.vxlan.vni < 1 || c.vxlan.vni > 0xffffff)
    throw new RangeError('cluster.vxlan.vni: 1 to 16777215');
  if (!Number.isInteger(c.vxlan.udpPort) || c.vxlan.udpPort < 1 || c.vxlan.udpPort > 65535)
    throw new RangeError('cluster.vxlan.udpPort: 1 to 65535');
  if (c.vxlan.gatewayAddresses.length === 0)
    throw new RangeError('cluster.vxlan.gatewayAddresses: at least one gateway address');
  c.vxlan.gatewayAddresses.forEach((a, i) => {
    if (tryParseIpv4(a) < 0)
      throw new RangeError(`cluster.vxlan.gatewayAddresses[${i}]: not an IPv4 address`);
  });
  const mtu = c.outsideMtu ?? 0;
  // 68: the least every IPv4 link carries (RFC 791)
  if (!Number.isInteger(mtu) || (mtu !== 0 && (mtu < 68 || mtu > 65535)))
    throw new RangeError('cluster.outsideMtu: 68 to 65535, or 0');
  c.interconnectPrefixes.forEach((p, i) => {
    try {
      parseCidr(p);
    } catch {
      throw new RangeError(`cluster.interconnectPrefixes[${i}]: not a prefix a.b.c.d/n`);
    }
  });
}

/** inPrefixes tells whether the IPv4 address lies in one of the prefixes (true when there are none). */
export function inPrefixes(address: string, prefixes: readonly string[]): boolean {
  if (prefixes.length === 0) return true;
  const a = tryParseIpv4(address);
  return prefixes.some((p) => {
    const { network, mask } = parseCidr(p);
    return (a & mask) >>> 0 === (network & mask) >>> 0;
  });
}
