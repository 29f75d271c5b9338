/** A service's port per transport at the cluster address (absent: the switch routes no such port). */
export interface TransportPorts {
  tcp?: number;
  udp?: number;
}

/**
 * ClusterRpcPorts are the ports the cluster answers ONC RPC services on, read from the switch table:
 * the entries whose function is `portmap`, `mount` or `nfs`. They are what the gateway's portmapper
 * hands out (the patent's Example 1: unmodified clients ask the portmapper at the cluster address) and
 * what nodes restore their mountd replies to.
 */
export interface ClusterRpcPorts {
  portmap: TransportPorts;
  mount: TransportPorts;
  nfs: TransportPorts;
}

/** The services the gateway answers itself, by switch function name. */
export const RPC_FUNCTIONS = ['portmap', 'mount', 'nfs'] as const;
export type RpcService = (typeof RPC_FUNCTIONS)[number];

/** An entry as the switch table lists it (only the fields read here). */
export interface EntryLike {
  protocol: string;
  port: number;
  function: string;
}

/**
 * clusterRpcPorts reads the RPC ports from switch entries. A (protocol, port) pair appears once in a
 * table, but one function may have several entries per protocol: the lowest port wins, so the answer
 * does not depend on the entries' order.
 */
export function clusterRpcPorts(entries: readonly EntryLike[]): ClusterRpcPorts {
  const out: ClusterRpcPorts = { portmap: {}, mount: {}, nfs: {} };
  for (const e of entries) {
    if (!(RPC_FUNCTIONS as readonly string[]).includes(e.function)) continue;
    if (e.protocol !== 'tcp' && e.protocol !== 'udp') continue;
    const ports = out[e.function as RpcService];
    const had = ports[e.protocol];
    if (had === undefined || e.port < had) ports[e.protocol] = e.port;
  }
  return out;
}
