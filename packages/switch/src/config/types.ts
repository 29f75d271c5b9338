/** The switch configuration, validated: addresses as uint32, times in seconds, names resolved later. */

export type NodeStateName = 'active' | 'draining' | 'down';
export type ProtocolName = 'tcp' | 'udp';

/**
 * One cluster address. IPv4: `address` (uint32). IPv6: `address6` (16 bytes) and `address` 0; a network
 * may have one of each family, and each family has one default.
 */
export interface ClusterAddressConfig {
  network: string;
  address: number;
  address6?: Uint8Array;
  default: boolean;
}

/** Where a node's NFS server keeps the export id inside its file handles. */
export interface HandleLayout {
  offset: number;
  length: number;
  endian: 'big' | 'little';
}

export interface NodeConfig {
  id: number;
  name: string;
  address: number;
  state: NodeStateName;
  /** the node's own MOUNT ports per transport (Mount Port Table, Fig. 7). */
  mountd: { udp?: number; tcp?: number };
  /** export-id byte range in the node's NFS handles (ganesha: offset 2, length 2, big). */
  nfsHandle: HandleLayout;
}

export interface PortBlockConfig {
  node: string;
  from: number;
  to: number;
}

/** One row of the Cluster Export Table (Fig. 7). */
export interface ExportConfig {
  path: string;
  node: string;
  /** the id the node's server writes into its handles; needed by the nfs function. */
  exportId?: number;
}

/** A management source: a network (CIDR) allowed to reach nodes' internal addresses. */
export interface CidrConfig {
  text: string;
  network: number;
  mask: number;
}

/** An IPv6 management source: a network as written, its 16 bytes and its prefix length. */
export interface Cidr6Config {
  text: string;
  network: Uint8Array;
  prefix: number;
}

/** One switch table entry: (protocol, port) → routing function with its validated options. */
export interface EntryConfig {
  protocol: ProtocolName;
  port: number;
  function: string;
  options: unknown;
}

export interface SwitchConfig {
  /** the node name of this gateway (box 580: decisions for it are local). */
  gateway: string;
  clusterAddresses: ClusterAddressConfig[];
  nodes: NodeConfig[];
  management: CidrConfig[];
  /**
   * IPv6 management sources: the gateway host's filter lets them reach the host (nodes have no IPv6
   * internal addresses, so the switch's bypass has none).
   */
  management6: Cidr6Config[];
  portBlocks: PortBlockConfig[];
  exports: ExportConfig[];
  entries: EntryConfig[];
  fragments: { maxEntries: number; timeout: number };
}
