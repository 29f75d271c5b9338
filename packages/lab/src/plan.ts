/**
 * The lab's address plan, a pure function of the lab id and sizes. Every name and address a test or the
 * CLI needs comes from here, so `down` can find what `up` made without asking the kernel for anything but
 * the name prefix.
 *
 *   c1 203.0.113.10 ─┐                      ┌─ n1 198.18.0.11
 *   c2 203.0.113.11 ─┼─ br-out ── gw ── br-ic ─┼─ n2 198.18.0.12
 *                    │   .1 eth0   eth1 .1  └─ n3 198.18.0.13
 *   outside 203.0.113.0/24, MTU 1500        interconnect 198.18.0.0/24, MTU 1600 (room for VXLAN)
 *   with `ipv6`, the outside also 2001:db8:113::/64 (RFC 3849): gw ::1, c1 ::10, c2 ::11, IPv6 VIP ::80
 *
 * Both bridges live in a namespace of their own ("sw"), so nothing is created in the host's namespace.
 */

/** Role of a lab host. */
export type HostRole = 'client' | 'gateway' | 'node';

/** LabHost is one namespace that plays a machine in the lab. */
export interface LabHost {
  /** Short host name: c1, c2, gw, n1, n2, n3. */
  name: string;
  role: HostRole;
  /** Network namespace name (`<prefix><name>`). */
  netns: string;
  /** Primary address: outside for clients, inside (interconnect) for the gateway and nodes. */
  address: string;
  /** Interface that carries `address`. */
  iface: string;
}

/** LabPlan is the whole lab layout. */
export interface LabPlan {
  id: string;
  /** Every namespace of this lab starts with this prefix. */
  prefix: string;
  /** Cluster address clients route to the gateway. */
  vip: string;
  outside: { prefix: string; prefixLength: number; mtu: number; bridge: string };
  interconnect: { prefix: string; prefixLength: number; mtu: number; bridge: string };
  /** Routes clients send to the gateway: the VIP and the whole interconnect range. */
  clientRoutes: string[];
  /** Namespace that holds the two bridges. */
  switchNetns: string;
  /**
   * The outside's IPv6 plan (documentation prefix, RFC 3849), used when the lab is made with `ipv6`: the
   * IPv6 cluster address, the gateway host's and the clients' addresses (same order as `clients`).
   */
  ipv6: { prefixLength: number; vip: string; gateway: string; clients: string[] };
  gateway: LabHost & { outside: string; outsideIface: string; inside: string; insideIface: string };
  clients: LabHost[];
  nodes: LabHost[];
}

/** Options for {@link makePlan}. */
export interface PlanOptions {
  /** Lab id: 1-12 characters a-z, 0-9. */
  id: string;
  /** Number of nodes, 1-9 (default 3). */
  nodes?: number;
  /** Number of outside clients, 1-9 (default 2). */
  clients?: number;
}

/** NAME_PREFIX starts every lab namespace; `ohl-<id>-` is one lab's prefix. */
export const NAME_PREFIX = 'ohl-';

/** labPrefix returns the namespace prefix of lab `id`. */
export function labPrefix(id: string): string {
  return `${NAME_PREFIX}${id}-`;
}

/** checkId throws unless `id` is 1-12 characters of a-z and 0-9. */
export function checkId(id: string): void {
  if (!/^[a-z0-9]{1,12}$/.test(id)) throw new Error(`lab id "${id}": use 1-12 characters a-z, 0-9`);
}

function count(value: number | undefined, fallback: number, what: string): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new Error(`${what}: ${n} is not between 1 and 9`);
  return n;
}

/** makePlan lays out a lab. Throws on a bad id or size. */
export function makePlan(options: PlanOptions): LabPlan {
  checkId(options.id);
  const prefix = labPrefix(options.id);
  const nodes = count(options.nodes, 3, 'nodes');
  const clients = count(options.clients, 2, 'clients');
  return {
    id: options.id,
    prefix,
    vip: '203.0.113.80',
    outside: { prefix: '203.0.113.0/24', prefixLength: 24, mtu: 1500, bridge: 'br-out' },
    interconnect: { prefix: '198.18.0.0/24', prefixLength: 24, mtu: 1600, bridge: 'br-ic' },
    clientRoutes: ['203.0.113.80/32', '198.18.0.0/15'],
    switchNetns: `${prefix}sw`,
    ipv6: {
      prefixLength: 64,
      vip: '2001:db8:113::80',
      gateway: '2001:db8:113::1',
      clients: Array.from({ length: clients }, (_, i) => `2001:db8:113::${10 + i}`),
    },
    gateway: {
      name: 'gw',
      role: 'gateway',
      netns: `${prefix}gw`,
      address: '198.18.0.1',
      iface: 'eth1',
      outside: '203.0.113.1',
      outsideIface: 'eth0',
      inside: '198.18.0.1',
      insideIface: 'eth1',
    },
    clients: Array.from({ length: clients }, (_, i) => ({
      name: `c${i + 1}`,
      role: 'client' as const,
      netns: `${prefix}c${i + 1}`,
      address: `203.0.113.${10 + i}`,
      iface: 'eth0',
    })),
    nodes: Array.from({ length: nodes }, (_, i) => ({
      name: `n${i + 1}`,
      role: 'node' as const,
      netns: `${prefix}n${i + 1}`,
      address: `198.18.0.${11 + i}`,
      iface: 'eth0',
    })),
  };
}

/** hostsOf lists every machine-like host of a plan (not the switch namespace). */
export function hostsOf(plan: LabPlan): LabHost[] {
  return [...plan.clients, plan.gateway, ...plan.nodes];
}

/** namespacesOf lists every namespace a plan creates, the switch first. */
export function namespacesOf(plan: LabPlan): string[] {
  return [plan.switchNetns, ...hostsOf(plan).map((h) => h.netns)];
}
