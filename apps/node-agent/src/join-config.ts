import type { JoinResponse } from '@onehost/proto';
import { type MountPortRestore, type NodeConfig, stableMac } from './config.js';

/** LocalFacts is what the node knows about itself before it joins. */
export interface LocalFacts {
  nodeName: string;
  internalAddress: string;
  interface: string;
  stateFile: string;
  /** VXLAN device name (default "onehost0"). */
  vxlanDevice?: string;
}

/**
 * vxlanMacOf is the MAC the agent gives its VXLAN device and registers at Join. Join needs it before
 * the gateway has said which VNI to use, so it depends on the node name only; the same name gets the
 * same MAC on every start, so a rejoin after a crash registers what the device will have again.
 */
export function vxlanMacOf(nodeName: string): string {
  return stableMac(nodeName, 0);
}

/**
 * nodeConfigFromJoin turns the gateway's Join answer into the NodeConfig to apply. Throws Error when
 * the answer lacks what the node cannot do without (a port block, VXLAN parameters, a gateway address,
 * a cluster address, a heartbeat interval below the timeout).
 */
export function nodeConfigFromJoin(join: JoinResponse, local: LocalFacts): NodeConfig {
  if (join.portBlock === undefined) throw new Error('the Join answer has no port_block');
  if (join.vxlan === undefined) throw new Error('the Join answer has no vxlan parameters');
  if (join.vxlan.gatewayAddresses.length === 0) throw new Error('the Join answer has no gateway address');
  if (join.clusterAddresses.length === 0) throw new Error('the Join answer has no cluster address');
  if (!(join.heartbeatIntervalMs > 0 && join.heartbeatTimeoutMs > join.heartbeatIntervalMs))
    throw new Error(
      `the Join answer's heartbeat timing is unusable: interval ${join.heartbeatIntervalMs} ms, timeout ${join.heartbeatTimeoutMs} ms`,
    );
  return {
    nodeName: local.nodeName,
    internal: { address: local.internalAddress, interface: local.interface },
    gateways: [...join.vxlan.gatewayAddresses],
    networks: join.clusterAddresses.map((a) => ({
      name: a.network,
      address: a.address,
      default: a.isDefault,
    })),
    portBlock: { lo: join.portBlock.lo, hi: join.portBlock.hi },
    vxlan: {
      vni: join.vxlan.vni,
      port: join.vxlan.udpPort,
      ...(local.vxlanDevice !== undefined ? { device: local.vxlanDevice } : {}),
      mac: vxlanMacOf(local.nodeName),
    },
    ...(join.interconnectPrefixes.length > 0 ? { clusterPrefixes: [...join.interconnectPrefixes] } : {}),
    stateFile: local.stateFile,
    // a gateway from before the field says 0: no MTU on the routes, as then
    ...(join.outsideMtu > 0 ? { outsideMtu: join.outsideMtu } : {}),
  };
}

/** sameConfig is true when applying `b` over `a` would change nothing. */
export function sameConfig(a: NodeConfig, b: NodeConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * withMountPorts is `config` restoring `restores` (none: no `mountPorts` key, as nodeConfigFromJoin
 * makes it), so configs compare equal whatever way they were built.
 */
export function withMountPorts(config: NodeConfig, restores: readonly MountPortRestore[]): NodeConfig {
  const { mountPorts: _, ...rest } = config;
  return restores.length > 0 ? { ...rest, mountPorts: restores.map((r) => ({ ...r })) } : rest;
}

/**
 * withSpliceCapture is `config` with delayed binding on and capturing `ports` (the node's TCP mountd and
 * NFS ports); `null` turns delayed binding off (no `splice` key). `kernel`: the agent's tc program
 * shifts established segments. Apply it with `updateNftables`.
 */
export function withSpliceCapture(
  config: NodeConfig,
  ports: readonly number[] | null,
  kernel = false,
): NodeConfig {
  const { splice: _, ...rest } = config;
  if (ports === null) return rest;
  return { ...rest, splice: kernel ? { capturePorts: [...ports], kernel } : { capturePorts: [...ports] } };
}
