import { existsSync } from 'node:fs';
import {
  type Change,
  dstKey,
  type IpRoute,
  ip,
  ipJson,
  JournalFile,
  localHost,
  nft,
  pidAlive,
  type RestoreReport,
  readJournal,
  readSysctl,
  restoreJournal,
  routeArgs,
  writeSysctl,
} from '@onehost/kernel';
import { ipv4LinkLocal, parseIpv4 } from '@onehost/wire';
import { type NodeConfig, type PortSplit, type ResolvedConfig, resolveConfig } from './config.js';
import { NFT_FAMILY, NFT_FAMILY6, NFT_TABLE, nftRuleset, nftRuleset6 } from './nft.js';
import { ROUTE_PROTO, viaGateways } from './routes.js';

/** Steps of {@link applyNodeConfig}, in order. */
export const APPLY_STEPS = [
  'restore-previous',
  'arp',
  'nftables',
  'addresses',
  'vxlan',
  'port-range',
  'routes',
] as const;
export type ApplyStep = (typeof APPLY_STEPS)[number];

/** Options for {@link applyNodeConfig}. */
export interface ApplyOptions {
  /** Called (and awaited) before each step: progress logging. */
  onStep?: (step: ApplyStep) => void | Promise<void>;
}

/** AppliedNode reports what the node now looks like; the agent registers `vxlan.mac` with the gateway. */
export interface AppliedNode {
  nodeName: string;
  vxlan: { device: string; mac: string; vni: number; port: number; local: string };
  /** The cluster addresses now local on `lo`. */
  addresses: string[];
  ports: PortSplit;
  stateFile: string;
  /** True when a state file from an earlier run (a crash, or an apply without restore) was undone first. */
  restoredPrevious: boolean;
  /** The routes through the gateways (to the outside, cluster prefixes): {@link rerouteVia} redoes them. */
  routesVia: ViaRoute[];
}

/**
 * A route the agent made through the gateways: `ip [-6] route … <prefix> src <src> [mtu N] <next hops>`;
 * IPv6 goes to each gateway's link-local derived from its IPv4 address (`ipv4LinkLocal`).
 */
export interface ViaRoute {
  prefix: string;
  src: string;
  mtu: string[];
  device: string;
  family: 4 | 6;
}

export type { RestoreReport };

const hasAddress = (dev: string, address: string) => localHost.hasAddress(dev, address);
const linkExists = (name: string) => localHost.linkExists(name);

async function mainRoutes(dst: string): Promise<IpRoute[]> {
  return (await ipJson<IpRoute>('route', 'show', 'table', 'main')).filter((r) => r.dst === dst);
}

/** preflight checks what the plan relies on before anything is changed. Throws naming what is wrong. */
async function preflight(c: ResolvedConfig): Promise<void> {
  const { internal, gateways } = c;
  if (!(await hasAddress(internal.interface, internal.address))) {
    throw new Error(`${internal.address} is not an address of ${internal.interface}`);
  }
  for (const g of gateways) {
    const [route] = await ipJson<IpRoute>('route', 'get', g);
    if (!route || route.gateway || route.dev !== internal.interface) {
      throw new Error(`gateway ${g} is not directly reachable on ${internal.interface}`);
    }
  }
  if (await linkExists(c.vxlan.device)) {
    throw new Error(`device ${c.vxlan.device} already exists and is not recorded as ours`);
  }
}

class Applier {
  /** the routes made through the gateways, for rerouteVia */
  readonly via: ViaRoute[] = [];

  constructor(
    private readonly c: ResolvedConfig,
    private readonly journal: JournalFile,
  ) {}

  private record(change: Change): Promise<void> {
    return this.journal.record(change);
  }

  complete(): Promise<void> {
    return this.journal.markComplete();
  }

  /** setSysctl records the old value and writes the new one; `atLeast` leaves a larger value alone. */
  async setSysctl(key: string, value: string, atLeast = false): Promise<void> {
    const previous = await readSysctl(key);
    if (previous === value || (atLeast && Number(previous) >= Number(value))) return;
    await this.record({ kind: 'sysctl', key, previous });
    await writeSysctl(key, value);
  }

  /** No ARP answers or announcements for the cluster addresses: the gateway owns them on every network. */
  async arp(): Promise<void> {
    await this.setSysctl('net/ipv4/conf/all/arp_ignore', '1', true);
    await this.setSysctl('net/ipv4/conf/all/arp_announce', '2', true);
  }

  async nftables(): Promise<void> {
    await this.record({ kind: 'nft-table', family: NFT_FAMILY, name: NFT_TABLE });
    await nft(nftRuleset(this.c));
    const six = nftRuleset6(this.c);
    if (six === '') return;
    await this.record({ kind: 'nft-table', family: NFT_FAMILY6, name: NFT_TABLE });
    await nft(six);
  }

  async addresses(): Promise<void> {
    for (const n of this.c.networks) {
      if (await hasAddress('lo', n.address)) continue; // someone else's: leave it to them
      const cidr = `${n.address}/32`;
      await this.record({ kind: 'addr', dev: 'lo', cidr });
      await ip('addr', 'add', cidr, 'dev', 'lo');
    }
    if (this.c.networks6.length === 0) return;
    await this.ipv6On('lo');
    for (const n of this.c.networks6) {
      if (await hasAddress('lo', n.address)) continue;
      const cidr = `${n.address}/128`;
      await this.record({ kind: 'addr', dev: 'lo', cidr });
      // nodad: the gateway owns the address outside; duplicate address detection would only delay it
      await ip('addr', 'add', cidr, 'dev', 'lo', 'nodad');
    }
    // IPv6 replies leave by the internal interface to the gateway's derived link-local (an IPv6 route
    // cannot have an IPv4 next hop); the interface needs IPv6 and a link-local of its own to resolve it.
    const dev = this.c.internal.interface;
    await this.ipv6On(dev);
    const links = await ipJson<{ addr_info?: { family?: string; scope?: string }[] }>(
      'addr',
      'show',
      'dev',
      dev,
    );
    if (!links.some((l) => (l.addr_info ?? []).some((a) => a.family === 'inet6' && a.scope === 'link'))) {
      const cidr = `${ipv4LinkLocal(parseIpv4(this.c.internal.address))}/64`;
      await this.record({ kind: 'addr', dev, cidr });
      await ip('addr', 'add', cidr, 'dev', dev, 'nodad');
    }
  }

  /**
   * ipv6On turns IPv6 on for `dev` when it is off, without a generated link-local (addr_gen_mode 1: no
   * DAD, router solicitations or MLD reports from it, RFC 4862 §5.4, RFC 4861 §6.3.7).
   */
  private async ipv6On(dev: string): Promise<void> {
    const key = `net/ipv6/conf/${dev}/disable_ipv6`;
    if (!existsSync(`/proc/sys/${key}`) || (await readSysctl(key)) === '0') return;
    await this.setSysctl(`net/ipv6/conf/${dev}/addr_gen_mode`, '1');
    await this.setSysctl(key, '0');
  }

  async vxlan(): Promise<string> {
    const { vxlan, internal } = this.c;
    await this.record({ kind: 'link', name: vxlan.device });
    const args = ['link', 'add', vxlan.device];
    if (vxlan.mac) args.push('address', vxlan.mac);
    args.push('type', 'vxlan', 'id', String(vxlan.vni), 'dstport', String(vxlan.port));
    args.push('local', vxlan.local, 'dev', internal.interface, 'nolearning');
    await ip(...args);
    // Decapsulated packets come from outside hosts whose route leaves by another device. Loose mode does
    // not help: it rejects every packet on a device without an IPv4 address, which this one is. So the
    // device gets 0, and `all` must be 0 too (the kernel applies the larger of the two); the other
    // devices keep their own setting.
    await writeSysctl(`net/ipv4/conf/${vxlan.device}/rp_filter`, '0');
    await this.setSysctl('net/ipv4/conf/all/rp_filter', '0');
    // No link-local on the device (addr_gen_mode 1), so it never talks IPv6 itself; IPv6 stays off unless
    // the cluster has IPv6 addresses, whose packets it then decapsulates.
    if (existsSync(`/proc/sys/net/ipv6/conf/${vxlan.device}`)) {
      await writeSysctl(`net/ipv6/conf/${vxlan.device}/addr_gen_mode`, '1');
      await writeSysctl(
        `net/ipv6/conf/${vxlan.device}/disable_ipv6`,
        this.c.networks6.length > 0 ? '0' : '1',
      );
    }
    await ip('link', 'set', vxlan.device, 'up');
    const [link] = await ipJson<{ address: string }>('link', 'show', 'dev', vxlan.device);
    if (!link?.address) throw new Error(`cannot read the MAC of ${vxlan.device}`);
    return link.address;
  }

  async portRange(): Promise<void> {
    const { lo, hi } = this.c.ports.ephemeral;
    await this.setSysctl('net/ipv4/ip_local_port_range', `${lo} ${hi}`);
  }

  /** replaceRoute records the routes with the same key and installs ours, to the outside, in their place. */
  private async replaceRoute(prefix: string, src: string, mtu: string[]): Promise<void> {
    const dst = dstKey(prefix);
    const previous = (await mainRoutes(dst)).filter((r) => (r.metric ?? 0) === 0).map(routeArgs);
    await this.record({ kind: 'route', dst, protocol: ROUTE_PROTO, previous });
    await this.routeVia('replace', prefix, src, mtu);
  }

  /** routeVia adds or replaces a route to `prefix` through the gateways with source hint `src`. */
  private async routeVia(
    verb: 'add' | 'replace',
    prefix: string,
    src: string,
    mtu: string[] = [],
  ): Promise<void> {
    const { gateways, internal } = this.c;
    const route: ViaRoute = { prefix, src, mtu, device: internal.interface, family: 4 };
    await ip('route', verb, ...viaRouteArgs(route, gateways));
    this.via.push(route);
  }

  /**
   * outsideMtu is the `mtu N` of the routes to the outside: the outside's MTU when it is below the
   * internal interface's. The gateway forwards the node's replies; one larger than the outside link
   * would get the gateway's Packet Too Big (RFC 4443 §3.2) or "fragmentation needed" (RFC 1191),
   * addressed to its source, the cluster address, which is the gateway's own: the node would never learn
   * the smaller MTU and such replies would all be lost. With it the node's kernel fragments them (or
   * sends TCP segments) to fit. Empty when unknown or no smaller; `six`: IPv6 takes no MTU below 1280
   * (RFC 8200 §5).
   */
  private async outsideMtu(six: boolean): Promise<string[]> {
    const want = this.c.outsideMtu;
    if (want === 0 || (six && want < 1280)) return [];
    const [link] = await ipJson<{ mtu?: number }>('link', 'show', 'dev', this.c.internal.interface);
    return link?.mtu !== undefined && want < link.mtu ? ['mtu', String(want)] : [];
  }

  async routes(): Promise<void> {
    // Cluster-internal destinations keep the internal address. A route already there (the interconnect's
    // own prefix, say) does that already and stays.
    for (const prefix of this.c.clusterPrefixes) {
      const dst = dstKey(prefix);
      if ((await mainRoutes(dst)).length > 0) continue;
      await this.record({ kind: 'route', dst, protocol: ROUTE_PROTO, previous: [] });
      await this.routeVia('add', prefix, this.c.internal.address);
    }
    const mtu = await this.outsideMtu(false);
    for (const n of this.c.networks) {
      if (n.default) continue;
      for (const prefix of n.prefixes ?? []) await this.replaceRoute(prefix, n.address, mtu);
    }
    await this.replaceRoute('0.0.0.0/0', this.c.defaultNetwork.address, mtu);
    // Several gateways: each connection's packets to the outside pick one by the 5-tuple (the default
    // hashes addresses only, so all replies to one client would leave through the same gateway).
    if (this.c.gateways.length > 1) await this.setSysctl('net/ipv4/fib_multipath_hash_policy', '1');
    const d6 = this.c.networks6.find((n) => n.default);
    if (d6 !== undefined) {
      // unbound IPv6 sockets talk to the outside as the IPv6 cluster address; ports come from the same
      // ip_local_port_range (IPv4's sysctl is both families'), so replies come back by the port blocks
      const previous = (await ipJson<IpRoute>('-6', 'route', 'show', 'table', 'main'))
        .filter((r) => r.dst === 'default' && r.protocol !== ROUTE_PROTO)
        .map(routeArgs);
      await this.record({ kind: 'route', dst: 'default', protocol: ROUTE_PROTO, previous, family: 6 });
      // over every gateway, as IPv4 (each gateway host carries its derived link-local)
      const route: ViaRoute = {
        prefix: 'default',
        src: d6.address,
        mtu: await this.outsideMtu(true),
        device: this.c.internal.interface,
        family: 6,
      };
      await ip('-6', 'route', 'replace', ...viaRouteArgs(route, this.c.gateways));
      this.via.push(route);
    }
  }
}

/**
 * applyNodeConfig configures this network namespace (the agent's own: the root namespace on a real
 * node) to be a cluster node: VXLAN device, cluster addresses on `lo`, ARP and reverse-path settings,
 * the ephemeral port range, routes with source hints and the nftables table. Every change is recorded
 * in the state file before it is made, so {@link restore} can undo it after a crash. A state file left by
 * an earlier run is restored first, which makes applying twice harmless. Throws a ConfigError for a bad
 * config; throws when a check or a command fails, after undoing what it had done (when that undo fails
 * too, the state file stays for the next restore).
 */
export async function applyNodeConfig(config: NodeConfig, options: ApplyOptions = {}): Promise<AppliedNode> {
  const c = resolveConfig(config);
  const step = async (s: ApplyStep) => options.onStep?.(s);
  await step('restore-previous');
  const owner = (await readJournal(c.stateFile))?.pid;
  if (owner !== undefined && owner !== process.pid && pidAlive(owner)) {
    throw new Error(`${c.stateFile} belongs to a running agent (pid ${owner})`);
  }
  const previous = await restore(c.stateFile);
  await preflight(c);
  const applier = new Applier(c, await JournalFile.create(c.stateFile, c.nodeName));
  let mac: string;
  try {
    await step('arp');
    await applier.arp();
    await step('nftables');
    await applier.nftables();
    await step('addresses');
    await applier.addresses();
    await step('vxlan');
    mac = await applier.vxlan();
    await step('port-range');
    await applier.portRange();
    await step('routes');
    await applier.routes();
    await applier.complete();
  } catch (err) {
    // Leave nothing half-done; if undoing fails too, the state file stays for the next restore.
    await restore(c.stateFile).catch(() => undefined);
    throw err;
  }
  return {
    nodeName: c.nodeName,
    vxlan: { device: c.vxlan.device, mac, vni: c.vxlan.vni, port: c.vxlan.port, local: c.vxlan.local },
    addresses: [...c.networks.map((n) => n.address), ...c.networks6.map((n) => n.address)],
    ports: c.ports,
    stateFile: c.stateFile,
    restoredPrevious: previous.found,
    routesVia: [...applier.via],
  };
}

/** viaRouteArgs: `ip route` arguments after the verb; next hops (several gateways) come last. */
function viaRouteArgs(r: ViaRoute, gateways: readonly string[]): string[] {
  const hops = r.family === 6 ? gateways.map((g) => ipv4LinkLocal(parseIpv4(g))) : gateways;
  return [r.prefix, 'src', r.src, 'proto', ROUTE_PROTO, ...r.mtu, ...viaGateways(hops, r.device)];
}

/**
 * rerouteVia replaces the applied routes through the gateways with routes through `gateways` (some of
 * the configuration's: those still alive, GatewayLiveness). Same destinations, sources and MTU, so the
 * state file's record of them still holds and a restore removes them as before.
 */
export async function rerouteVia(applied: AppliedNode, gateways: readonly string[]): Promise<void> {
  if (gateways.length === 0) throw new Error('rerouteVia: no gateway');
  for (const r of applied.routesVia)
    await ip(...(r.family === 6 ? ['-6'] : []), 'route', 'replace', ...viaRouteArgs(r, gateways));
}

/**
 * missingPieces checks that what {@link applyNodeConfig} set up for `config` is still in the kernel and
 * lists what is not: the VXLAN device (up, with its MAC), the cluster addresses on `lo`, the ephemeral
 * range, the nftables table and the routes. Others can take things away under the agent, e.g. taking
 * the internal interface down flushes every route through it, and bringing it up does not put them
 * back. Empty when all is there. Throws a ConfigError for a bad config, or when a command fails.
 */
export async function missingPieces(config: NodeConfig): Promise<string[]> {
  const c = resolveConfig(config);
  const missing: string[] = [];
  const [link] = (
    await ipJson<{ ifname: string; address?: string; flags?: string[] }>('link', 'show')
  ).filter((l) => l.ifname === c.vxlan.device);
  if (link === undefined) missing.push(`device ${c.vxlan.device}`);
  else {
    if (!(link.flags ?? []).includes('UP')) missing.push(`device ${c.vxlan.device} up`);
    if (c.vxlan.mac !== undefined && link.address !== c.vxlan.mac)
      missing.push(`MAC ${c.vxlan.mac} on ${c.vxlan.device}`);
  }
  for (const n of c.networks)
    if (!(await hasAddress('lo', n.address))) missing.push(`address ${n.address} on lo`);
  const range = `${c.ports.ephemeral.lo} ${c.ports.ephemeral.hi}`;
  if ((await readSysctl('net/ipv4/ip_local_port_range')) !== range)
    missing.push(`ip_local_port_range ${range}`);
  if (!(await localHost.nftTableExists(NFT_FAMILY, NFT_TABLE)))
    missing.push(`nftables table ${NFT_FAMILY} ${NFT_TABLE}`);
  if (c.networks6.length > 0 && !(await localHost.nftTableExists(NFT_FAMILY6, NFT_TABLE)))
    missing.push(`nftables table ${NFT_FAMILY6} ${NFT_TABLE}`);
  const ours = async (prefix: string) =>
    (await mainRoutes(dstKey(prefix))).some((r) => r.protocol === ROUTE_PROTO);
  // A cluster prefix may be served by a route that was there before the agent; any route will do.
  for (const prefix of c.clusterPrefixes)
    if ((await mainRoutes(dstKey(prefix))).length === 0) missing.push(`route ${prefix}`);
  for (const n of c.networks)
    for (const prefix of n.default ? [] : (n.prefixes ?? []))
      if (!(await ours(prefix))) missing.push(`route ${prefix} src ${n.address}`);
  if (!(await ours('0.0.0.0/0'))) missing.push(`default route src ${c.defaultNetwork.address}`);
  for (const n of c.networks6)
    if (!(await hasAddress('lo', n.address))) missing.push(`address ${n.address} on lo`);
  const d6 = c.networks6.find((n) => n.default);
  if (
    d6 !== undefined &&
    !(await ipJson<IpRoute>('-6', 'route', 'show', 'table', 'main')).some(
      (r) => r.dst === 'default' && r.protocol === ROUTE_PROTO,
    )
  )
    missing.push(`IPv6 default route src ${d6.address}`);
  return missing;
}

/**
 * updateNftables reloads the nftables table of an applied `config`: its `mountPorts`, the source ports to
 * restore (the node's mountd ports, which change when nfs-ganesha restarts), and its `splice` capture
 * ports. One `nft -f` transaction replaces the whole table, so the other rules never go missing in
 * between. Throws a ConfigError for a bad config, an Error when applyNodeConfig has not recorded the
 * table in the state file (nothing would undo it), a CommandError when nft fails.
 */
export async function updateNftables(config: NodeConfig): Promise<void> {
  const c = resolveConfig(config);
  const journal = await readJournal(c.stateFile);
  if (!journal?.changes.some((ch) => ch.kind === 'nft-table'))
    throw new Error(`${c.stateFile}: the nftables table is not applied`);
  await nft(nftRuleset(c));
  // the IPv6 twin holds the MOUNT restore too; recorded with the IPv4 table when there is one
  const six = nftRuleset6(c);
  if (six !== '' && journal.changes.some((ch) => ch.kind === 'nft-table' && ch.family === NFT_FAMILY6))
    await nft(six);
}

/** updateMountPorts is {@link updateNftables} (its older name, from when mount ports were all it changed). */
export const updateMountPorts = updateNftables;

/**
 * restore undoes, newest first, every change recorded in `stateFile`, then deletes the file. Undoing is
 * idempotent: a change that was recorded but never made, or already undone, is skipped. Throws an
 * AggregateError when some change could not be undone; the state file is kept so that a later restore
 * tries again.
 */
export function restore(stateFile: string): Promise<RestoreReport> {
  return restoreJournal(stateFile);
}
