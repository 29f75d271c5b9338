import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { ipv6ToString, parseIpv6 } from '@onehost/wire';

/** ClusterNetwork is one network the cluster is attached to, with its cluster address (VIP). */
export interface ClusterNetwork {
  /** Name of the network, e.g. "outside". */
  name: string;
  /** The cluster address on this network. */
  address: string;
  /** True for the default network; exactly one network is the default. */
  default?: boolean;
  /**
   * Destinations reached most directly through this network (CIDRs). Traffic to them leaves with this
   * network's address as source. The default network covers everything else and needs none.
   */
  prefixes?: string[];
}

/** MountPortRestore says that replies from `nodePort` must leave from `clusterPort` (the gateway rewrote it inbound). */
export interface MountPortRestore {
  proto: 'tcp' | 'udp';
  nodePort: number;
  clusterPort: number;
}

/**
 * SpliceConfig turns on the nftables side of delayed binding (docs/splice.md): what the node's kernel
 * sends on a spliced connection goes to the agent's TUN (see `splice/splice-io.ts`), and what the agent sends
 * for it is neither captured again nor tracked by conntrack.
 */
export interface SpliceConfig {
  /**
   * The node's own TCP ports (its mountd and NFS ports: the destination ports the agent replays the
   * handshake to, before any MOUNT source-port restore) whose packets from a cluster address are
   * captured. Empty or absent: nothing is captured.
   */
  capturePorts?: number[];
  /**
   * The agent's tc program shifts the node's established segments (docs/splice.md, "In the kernel"):
   * only SYN, FIN and RST segments are captured into the TUN. Default false.
   */
  kernel?: boolean;
}

/** VxlanConfig describes the node's VXLAN device, which decapsulates what the gateways send. */
export interface VxlanConfig {
  vni: number;
  /** UDP port (default 4789, RFC 7348). */
  port?: number;
  /** Device name (default "onehost0"). */
  device?: string;
  /** Local (outer) address; default the internal address. */
  local?: string;
  /** MAC for the device; default: the kernel picks one, read back and reported. */
  mac?: string;
}

/** NodeConfig is what the gateway tells a node at join time, plus local facts. */
export interface NodeConfig {
  nodeName: string;
  /** The node's own address on the cluster interconnect and the interface that has it. */
  internal: { address: string; interface: string };
  /** Internal addresses of the gateways: the next hop(s) of the default route; the only VXLAN sources. */
  gateways: string[];
  /** Cluster networks and their addresses; one is the default. */
  networks: ClusterNetwork[];
  /** The node's block of ports on the cluster address, from the gateway. */
  portBlock: { lo: number; hi: number };
  vxlan: VxlanConfig;
  /** Source ports to restore on the way out (MOUNT), may be empty. */
  mountPorts?: MountPortRestore[];
  /** Delayed binding of TCP MOUNT/NFS (absent: off). */
  splice?: SpliceConfig;
  /** Cluster-internal destinations that keep the internal address (default ["198.18.0.0/15"]). */
  clusterPrefixes?: string[];
  /** Share of the port block kept for SNAT of sockets bound to the internal address (default 0.25). */
  snatShare?: number;
  /** Where the record of changes lives (default `/run/onehost/agent-<nodeName>.json`). */
  stateFile?: string;
  /**
   * The outside's MTU, from the gateway (absent or 0: unknown): the routes to the outside carry it when
   * it is below the internal interface's, so replies fit the outside link (docs/gateway.md).
   */
  outsideMtu?: number;
}

/** PortSplit divides a port block: the kernel's ephemeral range and a disjoint SNAT range. */
export interface PortSplit {
  ephemeral: { lo: number; hi: number };
  snat: { lo: number; hi: number };
}

/** ResolvedConfig is a validated NodeConfig with every default filled in. */
export interface ResolvedConfig {
  nodeName: string;
  internal: { address: string; interface: string };
  gateways: string[];
  defaultNetwork: ClusterNetwork;
  /** the IPv4 cluster networks */
  networks: ClusterNetwork[];
  /** the IPv6 cluster addresses (RFC 5952 text), the default first among equals; may be empty */
  networks6: { name: string; address: string; default: boolean }[];
  portBlock: { lo: number; hi: number };
  ports: PortSplit;
  vxlan: { vni: number; port: number; device: string; local: string; mac?: string };
  mountPorts: MountPortRestore[];
  /** null when delayed binding is off; capture ports sorted, without duplicates. */
  splice: { capturePorts: number[]; kernel: boolean } | null;
  clusterPrefixes: string[];
  stateFile: string;
  /** 0: unknown */
  outsideMtu: number;
}

/** ConfigError names the field that is wrong. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function ipv4(field: string, value: unknown): string {
  if (typeof value !== 'string' || !isIPv4(value))
    throw new ConfigError(field, `not an IPv4 address: ${String(value)}`);
  return value;
}

function ipv6(field: string, value: unknown): string {
  if (typeof value !== 'string' || !isIPv6(value))
    throw new ConfigError(field, `not an IPv6 address: ${String(value)}`);
  return ipv6ToString(parseIpv6(value));
}

function cidr(field: string, value: unknown): string {
  const m = typeof value === 'string' ? /^([\d.]+)\/(\d{1,2})$/.exec(value) : null;
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) {
    throw new ConfigError(field, `not an IPv4 prefix: ${String(value)}`);
  }
  const host = m[1]!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) % 2 ** (32 - Number(m[2]));
  if (host !== 0) throw new ConfigError(field, `host bits are set in ${value as string}`);
  return value as string;
}

function port(field: string, value: unknown, min = 1): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > 65535) {
    throw new ConfigError(field, `not a port (${min}-65535): ${String(value)}`);
  }
  return value as number;
}

/**
 * splitPortBlock divides [lo, hi] into the ephemeral range (low part) and the SNAT range (the top `share`),
 * never overlapping: when they overlap, conntrack moves a clashing source port out of the block and the
 * reply reaches another node. The ephemeral range gets ends of different parity, which the kernel
 * prefers. Throws when the block is too small (fewer than 8 ports) or the share is not in (0, 1).
 */
export function splitPortBlock(block: { lo: number; hi: number }, share = 0.25): PortSplit {
  const size = block.hi - block.lo + 1;
  if (size < 8) throw new ConfigError('portBlock', `needs at least 8 ports, has ${size}`);
  if (!(share > 0 && share < 1)) throw new ConfigError('snatShare', `must be between 0 and 1: ${share}`);
  // At least 2 ports for SNAT and 3 for the kernel, so the parity fix still leaves a range.
  let ephHi = block.hi - Math.min(size - 3, Math.max(2, Math.floor(size * share)));
  if ((ephHi - block.lo) % 2 === 0) ephHi -= 1;
  return { ephemeral: { lo: block.lo, hi: ephHi }, snat: { lo: ephHi + 1, hi: block.hi } };
}

/** stableMac derives a locally administered unicast MAC from the node name and VNI, the same on every start. */
export function stableMac(nodeName: string, vni: number): string {
  const h = createHash('sha256').update(`${nodeName}/${vni}`).digest();
  const bytes = [0x02, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** resolveConfig validates a NodeConfig and fills in defaults. Throws a ConfigError naming the bad field. */
export function resolveConfig(config: NodeConfig): ResolvedConfig {
  if (typeof config.nodeName !== 'string' || !/^[a-zA-Z0-9_.-]{1,63}$/.test(config.nodeName)) {
    throw new ConfigError('nodeName', `use 1-63 of a-z A-Z 0-9 _ . -: ${String(config.nodeName)}`);
  }
  const internal = {
    address: ipv4('internal.address', config.internal?.address),
    interface: config.internal?.interface,
  };
  if (typeof internal.interface !== 'string' || !IFNAME.test(internal.interface)) {
    throw new ConfigError('internal.interface', `not an interface name: ${String(internal.interface)}`);
  }
  if (!Array.isArray(config.gateways) || config.gateways.length === 0) {
    throw new ConfigError('gateways', 'at least one gateway address is needed');
  }
  const gateways = config.gateways.map((g, i) => ipv4(`gateways[${i}]`, g));
  if (!Array.isArray(config.networks) || config.networks.length === 0) {
    throw new ConfigError('networks', 'at least one cluster network is needed');
  }
  // IPv6 cluster addresses go their own way (lo, the IPv6 default route); the rest of the plumbing is IPv4's
  const networks = config.networks
    .map((n, i) => ({ n, i }))
    .filter(({ n }) => !String(n.address).includes(':'))
    .map(({ n, i }) => ({
      name: n.name,
      address: ipv4(`networks[${i}].address`, n.address),
      default: n.default === true,
      prefixes: (n.prefixes ?? []).map((p, j) => cidr(`networks[${i}].prefixes[${j}]`, p)),
    }));
  const six = config.networks
    .map((n, i) => ({ n, i }))
    .filter(({ n }) => String(n.address).includes(':'))
    .map(({ n, i }) => ({
      name: n.name,
      address: ipv6(`networks[${i}].address`, n.address),
      default: n.default === true,
    }));
  // one IPv6 default: the one marked, or the first
  const networks6 = six.map((n, k) => ({ ...n, default: six.some((x) => x.default) ? n.default : k === 0 }));
  if (networks6.filter((n) => n.default).length > 1)
    throw new ConfigError('networks', 'at most one default IPv6 network');
  const defaults = networks.filter((n) => n.default);
  if (defaults.length !== 1)
    throw new ConfigError('networks', `exactly one default network, found ${defaults.length}`);
  const lo = port('portBlock.lo', config.portBlock?.lo, 1024);
  const hi = port('portBlock.hi', config.portBlock?.hi, 1024);
  if (hi < lo) throw new ConfigError('portBlock', `hi ${hi} is below lo ${lo}`);
  const ports = splitPortBlock({ lo, hi }, config.snatShare ?? 0.25);
  const v = config.vxlan;
  if (!v || !Number.isInteger(v.vni) || v.vni < 0 || v.vni > 0xffffff) {
    throw new ConfigError('vxlan.vni', `not a 24-bit VNI: ${String(v?.vni)}`);
  }
  const device = v.device ?? 'onehost0';
  if (!IFNAME.test(device)) throw new ConfigError('vxlan.device', `not an interface name: ${device}`);
  if (v.mac !== undefined && (!MAC.test(v.mac) || (Number.parseInt(v.mac.slice(0, 2), 16) & 1) === 1)) {
    throw new ConfigError('vxlan.mac', `not a unicast MAC (lower case, colons): ${v.mac}`);
  }
  const mountPorts = (config.mountPorts ?? []).map((m, i) => {
    if (m.proto !== 'tcp' && m.proto !== 'udp') throw new ConfigError(`mountPorts[${i}].proto`, 'tcp or udp');
    return {
      proto: m.proto,
      nodePort: port(`mountPorts[${i}].nodePort`, m.nodePort),
      clusterPort: port(`mountPorts[${i}].clusterPort`, m.clusterPort),
    };
  });
  if (config.splice !== undefined && (typeof config.splice !== 'object' || config.splice === null)) {
    throw new ConfigError('splice', 'an object');
  }
  const capture = config.splice?.capturePorts ?? [];
  if (!Array.isArray(capture)) throw new ConfigError('splice.capturePorts', 'a list of ports');
  const capturePorts = [...new Set(capture.map((p, i) => port(`splice.capturePorts[${i}]`, p)))].sort(
    (a, b) => a - b,
  );
  return {
    nodeName: config.nodeName,
    internal: internal as { address: string; interface: string },
    gateways,
    defaultNetwork: defaults[0]!,
    networks,
    networks6,
    portBlock: { lo, hi },
    ports,
    vxlan: {
      vni: v.vni,
      port: port('vxlan.port', v.port ?? 4789),
      device,
      local: ipv4('vxlan.local', v.local ?? internal.address),
      mac: v.mac,
    },
    mountPorts,
    splice: config.splice === undefined ? null : { capturePorts, kernel: config.splice.kernel === true },
    clusterPrefixes: (config.clusterPrefixes ?? ['198.18.0.0/15']).map((p, i) =>
      cidr(`clusterPrefixes[${i}]`, p),
    ),
    stateFile: config.stateFile ?? `/run/onehost/agent-${config.nodeName}.json`,
    outsideMtu: mtu('outsideMtu', config.outsideMtu ?? 0),
  };
}

/** mtu checks an MTU: 0 (unknown) or 68 (the least an IPv4 link carries, RFC 791) to 65535. */
function mtu(field: string, value: unknown): number {
  if (!Number.isInteger(value) || (value !== 0 && ((value as number) < 68 || (value as number) > 65535)))
    throw new ConfigError(field, `68 to 65535, or 0: ${String(value)}`);
  return value as number;
}
