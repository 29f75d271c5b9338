import { join } from 'node:path';
import { run, runInNetns } from '@onehost/testkit';
import { type FrrConfig, gatewayHostConfig, routerConfig } from './frr.js';
import type { LabPlan } from './plan.js';

/**
 * Several gateways behind a router (`onehost-lab up --gateways N`), added to a lab that createLab built:
 *
 *   c1, c2 ── br-out ── r 203.0.113.1 ─┬─ .129/30 ── gw  eth0 .130 ─┐
 *                       (FRR, ECMP)    ├─ .133/30 ── gw2 eth0 .134 ─┼─ br-ic ── n1, n2 …
 *                                      └─ …                        ┘  (198.18.0.1, .2 …)
 *
 * The router takes over the clients' next hop (203.0.113.1, so their routes stay as they are); each
 * gateway host gets a link of its own to it (the lab's gateway host's outside veth is moved from the
 * bridge into the router) and a route back to the outside through it; every gateway host is on the
 * shared interconnect. FRR configs: eBGP router ↔ each gateway host, BFD 100 ms × 3, maximum-paths;
 * the router hashes ECMP on the 5-tuple. With `ipv6` (a lab made with `ipv6`): the router takes the
 * gateway host's outside IPv6 address (2001:db8:113::1) and answers neighbour discovery for the IPv6
 * cluster address on the clients' link (proxy NDP: the clients have it on-link), each link to a gateway
 * host gets a /64 of its own (2001:db8:113:f0::/64 …, router ::1, gateway host ::2; link-locals too,
 * which FRR takes as the next hops), and the same BGP sessions carry the IPv6 cluster address
 * (frrConfigs).
 */

export interface RouterGateway {
  name: string;
  netns: string;
  /** the gateway host's end of its link to the router, and the router's end */
  outside: string;
  router: string;
  /** the same link's IPv6 ends (used with `ipv6`) */
  outside6: string;
  router6: string;
  inside: string;
  asn: number;
}

export interface RouterLayout {
  router: { netns: string; address: string; asn: number };
  gateways: RouterGateway[];
}

/** routerLayout lays out `n` gateways (1-8) behind the router of lab `plan`. */
export function routerLayout(plan: LabPlan, n: number): RouterLayout {
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`gateways: ${n} is not between 1 and 8`);
  return {
    router: { netns: `${plan.prefix}r`, address: plan.gateway.outside, asn: 64600 },
    gateways: Array.from({ length: n }, (_, i) => ({
      name: i === 0 ? plan.gateway.name : `gw${i + 1}`,
      netns: i === 0 ? plan.gateway.netns : `${plan.prefix}gw${i + 1}`,
      outside: `203.0.113.${130 + 4 * i}`,
      router: `203.0.113.${129 + 4 * i}`,
      outside6: `2001:db8:113:${(0xf0 + i).toString(16)}::2`,
      router6: `2001:db8:113:${(0xf0 + i).toString(16)}::1`,
      inside: `198.18.0.${1 + i}`,
      asn: 64601 + i,
    })),
  };
}

/** outside6: the outside's IPv6 prefix (the /64 of the plan's IPv6 addresses). */
const outside6 = (plan: LabPlan) =>
  `${plan.ipv6.gateway.replace(/::[0-9a-f]+$/, '::')}/${plan.ipv6.prefixLength}`;

/** frrConfigs: the router's and each gateway host's FRR configuration for `layout` (`ipv6`: both families). */
export function frrConfigs(plan: LabPlan, layout: RouterLayout, ipv6 = false): Map<string, FrrConfig> {
  const configs = new Map<string, FrrConfig>();
  configs.set(
    'r',
    routerConfig({
      asn: layout.router.asn,
      routerId: layout.router.address,
      peers: layout.gateways.map((g) => ({ address: g.outside, asn: g.asn })),
      accept: [plan.outside.prefix, ...(ipv6 ? [outside6(plan)] : [])],
    }),
  );
  for (const g of layout.gateways)
    configs.set(
      g.name,
      gatewayHostConfig({
        asn: g.asn,
        routerId: g.outside,
        router: { address: g.router, asn: layout.router.asn },
        announce: [`${plan.vip}/32`, ...(ipv6 ? [`${plan.ipv6.vip}/128`] : [])],
      }),
    );
  return configs;
}

async function ipBatch(netns: string, lines: string[]): Promise<void> {
  await run('ip', ['-n', netns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

async function sysctls(netns: string, settings: Record<string, string | number>): Promise<void> {
  await runInNetns(netns, 'sysctl', ['-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

/**
 * ipv6On turns IPv6 on for `ifaces` of `netns`, without DAD. With a link-local address (EUI-64): Linux
 * solicits the next hop of a forwarded packet from the interface's link-local (ndisc_send_ns), and
 * without one sends no solicitation at all (seen: the router's neighbours on the gateway links FAILED).
 */
async function ipv6On(netns: string, ifaces: string[]): Promise<void> {
  await sysctls(
    netns,
    Object.fromEntries(
      ifaces.flatMap((i) => [
        [`net.ipv6.conf.${i}.addr_gen_mode`, 0],
        [`net.ipv6.conf.${i}.accept_dad`, 0],
        [`net.ipv6.conf.${i}.disable_ipv6`, 0],
      ]),
    ),
  );
}

/**
 * buildRouter makes the router and the extra gateway hosts of `layout` in lab `plan` (namespaces with
 * the lab's prefix: the lab's cleanup and `down` remove them); `ipv6` adds the IPv6 plan (see the top).
 * Throws when a step fails.
 */
export async function buildRouter(plan: LabPlan, layout: RouterLayout, ipv6 = false): Promise<void> {
  const r = layout.router.netns;
  const out = plan.outside;
  const ic = plan.interconnect;
  const extra = layout.gateways.slice(1);
  for (const ns of [r, ...extra.map((g) => g.netns)]) {
    await run('ip', ['netns', 'add', ns]);
    await sysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  const gw = plan.gateway;
  // the gateway host's outside leaves the clients' bridge: its far end goes into the router
  await ipBatch(plan.switchNetns, [
    `link add r-o mtu ${out.mtu} type veth peer name eth0 mtu ${out.mtu} netns ${r}`,
    `link set r-o master ${out.bridge} up`,
    'link set gw-o nomaster',
    `link set gw-o netns ${r}`,
    ...extra.map(
      (g) => `link add ${g.name}-i mtu ${ic.mtu} type veth peer name eth1 mtu ${ic.mtu} netns ${g.netns}`,
    ),
    ...extra.map((g) => `link set ${g.name}-i master ${ic.bridge} up`),
  ]);
  await ipBatch(r, [
    ...extra.map(
      (g) => `link add ${g.name}-o mtu ${out.mtu} type veth peer name eth0 mtu ${out.mtu} netns ${g.netns}`,
    ),
    `addr add ${layout.router.address}/${out.prefixLength} dev eth0`,
    'link set eth0 up',
    ...layout.gateways.flatMap((g) => [`addr add ${g.router}/30 dev ${g.name}-o`, `link set ${g.name}-o up`]),
    // c2 (management) reaches the interconnect through the first gateway, as before
    `route add ${plan.clientRoutes[1]} via ${layout.gateways[0]!.outside}`,
  ]);
  await ipBatch(gw.netns, [
    `addr del ${gw.outside}/${out.prefixLength} dev ${gw.outsideIface}`,
    `addr add ${layout.gateways[0]!.outside}/30 dev ${gw.outsideIface}`,
    `route add ${out.prefix} via ${layout.gateways[0]!.router}`,
  ]);
  for (const g of extra) {
    await ipBatch(g.netns, [
      `addr add ${g.outside}/30 dev eth0`,
      `addr add ${g.inside}/${ic.prefixLength} dev eth1`,
      'link set eth0 up',
      'link set eth1 up',
      `route add ${out.prefix} via ${g.router}`,
    ]);
    await sysctls(g.netns, { 'net.ipv4.ip_forward': 1 });
  }
  if (ipv6) {
    const six = plan.ipv6;
    const links = layout.gateways.map((g) => `${g.name}-o`);
    await ipv6On(r, ['eth0', ...links]);
    await ipBatch(r, [
      `addr add ${six.gateway}/${six.prefixLength} dev eth0 nodad`,
      ...layout.gateways.map((g) => `addr add ${g.router6}/64 dev ${g.name}-o nodad`),
      `neigh add proxy ${six.vip} dev eth0`,
    ]);
    await sysctls(r, { 'net.ipv6.conf.all.forwarding': 1, 'net.ipv6.conf.eth0.proxy_ndp': 1 });
    await ipBatch(gw.netns, [`addr del ${six.gateway}/${six.prefixLength} dev ${gw.outsideIface}`]);
    for (const g of layout.gateways) {
      const iface = g.netns === gw.netns ? gw.outsideIface : 'eth0';
      await ipv6On(g.netns, [iface]);
      await ipBatch(g.netns, [
        `addr add ${g.outside6}/64 dev ${iface} nodad`,
        `route add ${outside6(plan)} via ${g.router6}`,
      ]);
    }
  }
  await sysctls(r, {
    'net.ipv4.ip_forward': 1,
    // ECMP by the 5-tuple: one client's connections spread over the gateways
    'net.ipv4.fib_multipath_hash_policy': 1,
    'net.ipv6.fib_multipath_hash_policy': 1,
    // clients hold the whole /24 on their link: the router answers ARP for the gateways' link ends
    'net.ipv4.conf.eth0.proxy_arp': 1,
  });
}

/** frrDirOf: where host `name`'s FRR keeps its configs and sockets. */
export function frrDirOf(runDir: string, name: string): string {
  return join(runDir, `frr-${name}`);
}
