import {
  type Change,
  type Host,
  JournalFile,
  localHost,
  NftFlows,
  pidAlive,
  readJournal,
  restoreJournal,
  undoChange,
} from '@onehost/kernel';
import { ipv4LinkLocal, ipv4ToString, macLinkLocal, parseIpv4, parseMac } from '@onehost/wire';

/**
 * The gateway host's kernel plumbing (docs/gateway.md has the why of each step):
 * - the cluster addresses (VIPs) are local (/32 on lo) so `local` decisions reach the host's own services;
 * - packets for a VIP arriving on an outside interface are policy-routed into the TUN (rule
 *   `iif <outside> to VIP lookup <table>` at `rulePref`, before the `local` rule, which moves from
 *   preference 0 to `localPref`), with an `unreachable` fallback route so that a vanished TUN never leaks
 *   the traffic to the host's own sockets;
 * - the host answers ARP for the VIPs on the outside interfaces (proxy neighbour entries, no delay), so
 *   a client in the outside subnet reaches the cluster address without a route of its own;
 * - IPv6 cluster addresses (`vips6`) the same way: /128 on lo (nodad), `ip -6` rules and routes into the
 *   TUN, the IPv6 `local` rule moved too, neighbour discovery answered by proxy NDP entries (RFC 4861
 *   §7.2.8) with IPv6 forwarding on; and the link-local address derived from the interconnect address
 *   (`ipv4LinkLocal`) on the interconnect, the next hop of the nodes' IPv6 replies; an outside interface
 *   without a link-local gets its MAC's (`outsideLinkLocals`), the source of its neighbour solicitations;
 * - early demux is off, or the local socket of a `local` flow would capture the client's later packets
 *   and forwarding would drop them;
 * - replies from nodes carry source = VIP (a local address): accept_local on the interconnect, rp_filter 0;
 * - VIP traffic is not tracked by conntrack (stateless balancing; the switch keeps its own table);
 * - outside sources reach nodes' internal addresses only from the management list;
 * - from the outside (and from the TUN, where `local` decisions come back in tun mode) the host itself
 *   takes only the cluster data path and its own connections' replies, except from the management list;
 *   VXLAN from outside is dropped always, as are the control and metrics ports on a cluster address;
 * - from the interconnect, only registered nodes (set `nodes`, kept current by `setRegisteredNodes`) and
 *   the cluster addresses they stamp may be forwarded out.
 * Every change is recorded in the host's journal (the state file) before it is made, so `restore` undoes
 * it after a crash too. A start after a crash adopts the journal instead of undoing it: whatever the dead
 * gateway left in the kernel (the fast path's flows among it) keeps working while the new one comes up.
 */
export interface GatewayHostConfig {
  /** the gateway's name (recorded in the state file) */
  name: string;
  tun: string;
  vips: number[];
  /** IPv6 cluster addresses as `ip` prints them (RFC 5952); absent or empty: nothing IPv6 is touched */
  vips6?: string[];
  /** the gateway's interconnect IPv4 address: with `vips6`, its derived link-local goes on `interconnect` */
  interconnectAddress?: string;
  outside: string[];
  interconnect: string;
  /** the cluster interconnect prefix, e.g. 198.18.0.0/15: nodes' internal addresses */
  interconnectPrefix: string;
  management: string[];
  /**
   * the routers this host's bgpd peers with (`announce.peers`): their BGP (TCP 179) and BFD (UDP 3784,
   * echo 3785, multihop 4784) reach the host; without them BFD is dropped as a new flow and flaps
   */
  routingPeers?: string[];
  /** the VXLAN UDP port: the gateway's own encapsulated packets are not tracked */
  vxlanPort: number;
  /** the gateway's own TCP ports (control plane, metrics): never reachable from outside on a cluster address */
  hostPorts: number[];
  /** the TUN's transmit queue: packets wait there while the gateway is busy (default 500 is short) */
  txQueueLen: number;
  table: number;
  rulePref: number;
  localPref: number;
  statePath: string;
  /**
   * the fast path's mark for shared connections' segments (fastpath trackMark; `flowSync`): the raw
   * chain leaves them to conntrack, whose entries conntrackd shares; absent: nothing to a cluster
   * address is tracked
   */
  trackMark?: number;
}

/** GatewayHost is the applied host configuration: its journal, for the fast path to record into. */
export interface GatewayHost {
  readonly journal: JournalFile;
  /** true when the start adopted what a gateway that is gone left behind */
  readonly adopted: boolean;
}

const NFT_TABLE = 'onehost_gateway';

/**
 * HOST_DROPS are the named counters of the gateway host's filter (`onehost_host_drops_total{reason}`):
 * - outside_to_host: from an outside interface to the host's own addresses, refused by the policy;
 * - outside_vxlan: VXLAN (the data path's UDP port) from outside, to the host or to a node's address;
 * - outside_to_nodes: from an outside interface to a node's internal address, not from management;
 * - unregistered_node: from the interconnect, a source that is neither a node nor a cluster address.
 */
export const HOST_DROPS = [
  'outside_to_host',
  'outside_vxlan',
  'outside_to_nodes',
  'unregistered_node',
] as const;

/** sysctlPlan lists the sysctls the gateway host sets (docs/gateway.md lists them too). */
export function sysctlPlan(c: GatewayHostConfig): Array<[string, string]> {
  const six: Array<[string, string]> =
    (c.vips6 ?? []).length === 0
      ? []
      : [
          // outside ⇄ TUN and the nodes' replies; proxy NDP answers only on a forwarding interface
          ['net/ipv6/conf/all/forwarding', '1'],
          ...c.outside.flatMap(
            (o): Array<[string, string]> => [
              [`net/ipv6/conf/${o}/proxy_ndp`, '1'],
              // answer neighbour solicitations for the cluster addresses at once (as ARP, below)
              [`net/ipv6/neigh/${o}/proxy_delay`, '0'],
            ],
          ),
        ];
  return [
    // a router forwards: outside ⇄ interconnect, and the nodes' replies
    ['net/ipv4/ip_forward', '1'],
    ['net/ipv4/tcp_early_demux', '0'],
    ['net/ipv4/udp_early_demux', '0'],
    ['net/ipv4/conf/all/rp_filter', '0'],
    [`net/ipv4/conf/${c.interconnect}/rp_filter`, '0'],
    [`net/ipv4/conf/${c.interconnect}/accept_local`, '1'],
    [`net/ipv4/conf/${c.tun}/rp_filter`, '0'],
    // Delayed binding (docs/splice.md): the host's stack answers MOUNT/NFS SYNs; with 2 it always
    // answers with a SYN cookie and keeps no state before the handshake completes.
    ['net/ipv4/tcp_syncookies', '2'],
    // answer ARP for the cluster addresses at once, not after a random delay of up to 0.8 s
    ...c.outside.map((o): [string, string] => [`net/ipv4/neigh/${o}/proxy_delay`, '0']),
    ...six,
    // shared connections (flowSync): conntrack takes a connection up from its handshake's ACK (the SYN
    // is not tracked) or mid-stream after it moved here, and sees only the client's side (the nodes
    // reply straight to the client): neither may make its segments invalid
    ...(c.trackMark !== undefined
      ? ([
          ['net/netfilter/nf_conntrack_tcp_loose', '1'],
          ['net/netfilter/nf_conntrack_tcp_be_liberal', '1'],
        ] as Array<[string, string]>)
      : []),
  ];
}

/** managementOf splits the management sources by family (IPv6 ones are written with a colon). */
function managementOf(c: GatewayHostConfig): { v4: string[]; v6: string[] } {
  return {
    v4: c.management.filter((m) => !m.includes(':')),
    v6: c.management.filter((m) => m.includes(':')),
  };
}

/** nftRuleset is the gateway host's nftables table for IPv4 (exported for its tests). */
export function nftRuleset(c: GatewayHostConfig): string {
  const vips = c.vips.map(ipv4ToString).join(', ');
  const { v4 } = managementOf(c);
  const mgmt = v4.length > 0 ? `ip saddr != { ${v4.join(', ')} } ` : '';
  const mgmtAccept = v4.length > 0 ? `    ip saddr { ${v4.join(', ')} } accept comment "management"\n` : '';
  const outs = c.outside.map((o) => JSON.stringify(o)).join(', ');
  const peers = (c.routingPeers ?? []).join(', ');
  const peerAccept =
    peers === ''
      ? ''
      : `    ip saddr { ${peers} } tcp dport 179 accept comment "BGP from the routers (announce.peers)"\n` +
        `    ip saddr { ${peers} } udp dport { 3784, 3785, 4784 } accept comment "BFD from the routers"\n`;
  const hostPorts =
    c.hostPorts.length > 0
      ? `    ip daddr { ${vips} } tcp dport { ${[...new Set(c.hostPorts)].join(', ')} } counter name "outside_to_host" drop comment "control, metrics: not on a cluster address"\n`
      : '';
  const counters = HOST_DROPS.map((n) => `  counter ${n} {\n  }\n`).join('');
  const t = `table ip ${NFT_TABLE}`;
  // declare, delete, define: one transaction that replaces any earlier version of the table
  return `${t}
delete ${t}
${t} {
  chain raw_pre {
    type filter hook prerouting priority raw; policy accept;
    ip daddr { ${vips} } ${c.trackMark !== undefined ? `meta mark != 0x${c.trackMark.toString(16)} ` : ''}notrack
    ip saddr { ${vips} } notrack
  }
  chain raw_out {
    type filter hook output priority raw; policy accept;
    ip saddr { ${vips} } notrack
    udp dport ${c.vxlanPort} notrack comment "VXLAN to nodes: outer source ports vary per flow"
  }
  set nodes {
    type ipv4_addr
  }
${counters}  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname { ${outs} } ip daddr ${c.interconnectPrefix} udp dport ${c.vxlanPort} counter name "outside_vxlan" drop comment "VXLAN to nodes: the gateway's only"
    iifname { ${outs} } ip daddr ${c.interconnectPrefix} ${mgmt}counter name "outside_to_nodes" drop comment "node addresses: management sources only"
    iifname ${JSON.stringify(c.interconnect)} ip saddr != { ${vips} } ip saddr != @nodes counter name "unregistered_node" drop comment "registered nodes only"
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname { ${outs}, ${JSON.stringify(c.tun)} } jump from_outside
  }
  chain from_outside {
    udp dport ${c.vxlanPort} counter name "outside_vxlan" drop comment "VXLAN only on the interconnect: it would inject inner packets"
${mgmtAccept}${peerAccept}${hostPorts}    ip daddr { ${vips} } accept comment "the cluster data path (local decisions, ICMP errors to a cluster address)"
    ct state established,related accept comment "the host's own connections: replies, their ICMP errors (PMTU)"
    counter name "outside_to_host" drop comment "the host itself: management sources only"
  }
}
`;
}

/**
 * nftRuleset6 is the IPv4 table's twin for IPv6, `ip6 onehost_gateway` (exported for its tests), with
 * the same chains and counter names; installed whether or not there are IPv6 cluster addresses, since
 * the host's own IPv6 addresses are reachable either way. What differs:
 * - neighbour discovery (what ARP is to IPv4, which the IPv4 table never sees) and MLD queries are let
 *   in from outside, only as their receivers accept them (hop limit 255, RFC 4861 §7.1; link-local
 *   source, RFC 3810 §5.1.14), and DHCPv6 answers from the link (RFC 8415 §7.2);
 * - nodes have no IPv6 internal prefix: "a node's address" is whatever the host forwards out of the
 *   interconnect, and IPv6 from the interconnect may leave with a cluster address as source or one in
 *   the set `nodes6` (onehost registers none: agents report IPv4 addresses only).
 */
export function nftRuleset6(c: GatewayHostConfig): string {
  const six = c.vips6 ?? [];
  const vips = six.join(', ');
  const { v6 } = managementOf(c);
  const outs = c.outside.map((o) => JSON.stringify(o)).join(', ');
  const ic = JSON.stringify(c.interconnect);
  const lines = (rules: string[]) => rules.map((r) => `    ${r}\n`).join('');
  const keep = c.trackMark !== undefined ? `meta mark != 0x${c.trackMark.toString(16)} ` : '';
  const notrack =
    six.length > 0 ? [`ip6 daddr { ${vips} } ${keep}notrack`, `ip6 saddr { ${vips} } notrack`] : [];
  const ports = [...new Set(c.hostPorts)].join(', ');
  const counters = HOST_DROPS.map((n) => `  counter ${n} {\n  }\n`).join('');
  const t = `table ip6 ${NFT_TABLE}`;
  return `${t}
delete ${t}
${t} {
  chain raw_pre {
    type filter hook prerouting priority raw; policy accept;
${lines(notrack)}  }
  chain raw_out {
    type filter hook output priority raw; policy accept;
${lines(six.length > 0 ? [`ip6 saddr { ${vips} } notrack`] : [])}  }
  set nodes6 {
    type ipv6_addr
  }
${counters}  chain forward {
    type filter hook forward priority filter; policy accept;
${lines([
  `iifname { ${outs} } oifname ${ic} udp dport ${c.vxlanPort} counter name "outside_vxlan" drop comment "VXLAN to nodes: the gateway's only"`,
  `iifname { ${outs} } oifname ${ic} ${v6.length > 0 ? `ip6 saddr != { ${v6.join(', ')} } ` : ''}counter name "outside_to_nodes" drop comment "the nodes' link: management sources only"`,
  `iifname ${ic} ${six.length > 0 ? `ip6 saddr != { ${vips} } ` : ''}ip6 saddr != @nodes6 counter name "unregistered_node" drop comment "cluster addresses and registered nodes only"`,
])}  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname { ${outs}, ${JSON.stringify(c.tun)} } jump from_outside
  }
  chain from_outside {
${lines([
  `udp dport ${c.vxlanPort} counter name "outside_vxlan" drop comment "VXLAN only on the interconnect: the gateway's VXLAN device listens on IPv6 too"`,
  'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept comment "neighbour discovery, on the link only"',
  'ip6 saddr fe80::/10 icmpv6 type mld-listener-query accept comment "multicast listener queries: keep the solicited-node groups"',
  'ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept comment "DHCPv6 answers"',
  ...(v6.length > 0 ? [`ip6 saddr { ${v6.join(', ')} } accept comment "management"`] : []),
  ...(six.length > 0 && ports !== ''
    ? [
        `ip6 daddr { ${vips} } tcp dport { ${ports} } counter name "outside_to_host" drop comment "control, metrics: not on a cluster address"`,
      ]
    : []),
  ...(six.length > 0
    ? [
        `ip6 daddr { ${vips} } accept comment "the cluster data path (local decisions, ICMPv6 errors to a cluster address)"`,
      ]
    : []),
  `ct state established,related accept comment "the host's own connections: replies, their ICMPv6 errors (PMTU)"`,
  `counter name "outside_to_host" drop comment "the host itself: management sources only"`,
])}  }
}
`;
}

/**
 * vipRules are the `ip rule` arguments of the policy rules that send VIP traffic into the TUN (IPv6 ones
 * too: `ip` takes the family from the `to` prefix).
 */
function vipRules(c: GatewayHostConfig): string[][] {
  const prefixes = [...c.vips.map((v) => `${ipv4ToString(v)}/32`), ...(c.vips6 ?? []).map((v) => `${v}/128`)];
  return prefixes.flatMap((p) =>
    c.outside.map((o) => ['priority', String(c.rulePref), 'iif', o, 'to', p, 'lookup', String(c.table)]),
  );
}

/** ruleKey is how `ip -j rule` shows a rule we made from `vipRules` arguments. */
function ruleKey(r: {
  priority?: number;
  iif?: string;
  dst?: string;
  dstlen?: number;
  table?: string;
}): string {
  return `${r.priority}|${r.iif}|${r.dst}/${r.dstlen ?? (r.dst?.includes(':') ? 128 : 32)}|${r.table}`;
}

/**
 * applyGatewayHost configures the host for `c` (the TUN must exist). A journal left by a gateway that is
 * gone is adopted: its recorded values stay the ones to restore, what it set is set again (idempotently),
 * and what the new configuration no longer has (rules, addresses of VIPs that went) is undone. Throws
 * when another gateway owns the journal, or a CommandError naming the command the kernel refused (after
 * undoing what this run had applied on a fresh start).
 */
export async function applyGatewayHost(c: GatewayHostConfig, host: Host = localHost): Promise<GatewayHost> {
  const adopted = (await readJournal(c.statePath)) !== undefined;
  const journal = await JournalFile.adopt(c.statePath, c.name, pidAlive);
  const step = async (change: Change, act: () => Promise<unknown>) => {
    await journal.recordOnce(change);
    await act();
  };
  try {
    for (const [key, value] of sysctlPlan(c)) {
      const recorded = journal.current.changes.some((x) => x.kind === 'sysctl' && x.key === key);
      if (!recorded) await journal.record({ kind: 'sysctl', key, previous: await host.readSysctl(key) });
      await host.writeSysctl(key, value);
    }
    const have = await host.addresses('lo');
    const wanted = new Set(c.vips.map((v) => `${ipv4ToString(v)}/32`));
    for (const old of journal.current.changes)
      if (old.kind === 'addr' && old.dev === 'lo' && !wanted.has(old.cidr) && have.has(old.cidr))
        await host.ip('addr', 'del', old.cidr, 'dev', 'lo');
    for (const cidr of wanted) {
      const ours = journal.has({ kind: 'addr', dev: 'lo', cidr });
      if (have.has(cidr) && !ours) continue; // someone else's: leave it to them
      await step({ kind: 'addr', dev: 'lo', cidr }, async () => {
        if (!have.has(cidr)) await host.ip('addr', 'add', cidr, 'dev', 'lo');
      });
    }
    await applyIpv6Addresses(c, host, journal, step);
    await host.ip('link', 'set', c.tun, 'txqueuelen', String(c.txQueueLen), 'up');
    await journal.recordOnce({ kind: 'tables', from: c.table, to: c.table });
    const routes: string[] = [];
    for (const v of c.vips) {
      const vip = `${ipv4ToString(v)}/32`;
      routes.push(`route replace ${vip} dev ${c.tun} table ${c.table}`);
      routes.push(`route replace unreachable ${vip} table ${c.table} metric 4294967295`);
    }
    for (const v of c.vips6 ?? []) {
      routes.push(`route replace ${v}/128 dev ${c.tun} table ${c.table}`);
      routes.push(`route replace unreachable ${v}/128 table ${c.table} metric 4294967295`);
    }
    await host.ipBatch(routes);
    // Answer ARP for the cluster addresses on the outside networks (a proxy neighbour entry: the VIP
    // routes to the TUN, not out of that link), so a client in the same subnet finds the gateway.
    // IPv6: proxy NDP entries, for the same reason (RFC 4861 §7.2.8); the kernel joins each address's
    // solicited-node group on the interface.
    const proxies = c.outside.flatMap((dev) => [
      ...c.vips.map((v) => ({ dev, address: ipv4ToString(v) })),
      ...(c.vips6 ?? []).map((v) => ({ dev, address: v })),
    ]);
    for (const old of journal.current.changes)
      if (old.kind === 'neigh-proxy' && !proxies.some((p) => p.dev === old.dev && p.address === old.address))
        await undoChange(old, host);
    for (const p of proxies)
      await step({ kind: 'neigh-proxy', ...p }, () =>
        host.ip('neigh', 'replace', 'proxy', p.address, 'dev', p.dev),
      );
    const wantedRules = vipRules(c);
    const present = new Set([...(await host.rules()), ...(await host.rules6())].map(ruleKey));
    for (const old of journal.current.changes) {
      if (old.kind !== 'rule-args' || wantedRules.some((w) => w.join(' ') === old.args.join(' '))) continue;
      await (old.family === 6
        ? host.ip('-6', 'rule', 'del', ...old.args)
        : host.ip('rule', 'del', ...old.args)
      ).catch(() => undefined);
    }
    for (const args of wantedRules) {
      const key = `${args[1]}|${args[3]}|${args[5]}|${args[7]}`;
      // `ip rule` takes no IPv6 prefix without -6
      const six = args[5]!.includes(':');
      await step({ kind: 'rule-args', args, ...(six ? { family: 6 as const } : {}) }, async () => {
        if (!present.has(key))
          await (six ? host.ip('-6', 'rule', 'add', ...args) : host.ip('rule', 'add', ...args));
      });
    }
    await step({ kind: 'local-rule', priority: c.localPref }, async () => {
      const rules = await host.rules();
      if (!rules.some((r) => r.table === 'local' && r.priority === c.localPref))
        await host.ip('rule', 'add', 'priority', String(c.localPref), 'lookup', 'local');
      if (rules.some((r) => r.table === 'local' && r.priority === 0))
        await host.ip('rule', 'del', 'priority', '0', 'lookup', 'local');
    });
    if ((c.vips6 ?? []).length > 0)
      await step({ kind: 'local-rule', priority: c.localPref, family: 6 }, async () => {
        const rules = await host.rules6();
        if (!rules.some((r) => r.table === 'local' && r.priority === c.localPref))
          await host.ip('-6', 'rule', 'add', 'priority', String(c.localPref), 'lookup', 'local');
        if (rules.some((r) => r.table === 'local' && r.priority === 0))
          await host.ip('-6', 'rule', 'del', 'priority', '0', 'lookup', 'local');
      });
    // both families' tables in one transaction; a journal an older gateway left has only the IPv4 one
    await journal.recordOnce({ kind: 'nft-table', family: 'ip6', name: NFT_TABLE });
    await step({ kind: 'nft-table', family: 'ip', name: NFT_TABLE }, () =>
      host.nft(nftRuleset(c) + nftRuleset6(c)),
    );
    await journal.markComplete();
  } catch (e) {
    // A fresh start leaves nothing half-done; an adopted journal stays for the next start or --restore.
    if (!adopted) await restoreJournal(c.statePath, host).catch(() => undefined);
    throw e;
  }
  return { journal, adopted };
}

/**
 * applyIpv6Addresses puts the IPv6 cluster addresses on lo (nodad: a cluster address is ours at once, RFC
 * 4862 §5.4 DAD would only delay it) and the derived link-local on the interconnect, and takes away the
 * ones a journal it adopted recorded that the configuration no longer has.
 */
async function applyIpv6Addresses(
  c: GatewayHostConfig,
  host: Host,
  journal: JournalFile,
  step: (change: Change, act: () => Promise<unknown>) => Promise<void>,
): Promise<void> {
  const six = c.vips6 ?? [];
  const wanted: { dev: string; cidr: string }[] = six.map((v) => ({ dev: 'lo', cidr: `${v}/128` }));
  if (six.length > 0 && c.interconnectAddress !== undefined)
    wanted.push({ dev: c.interconnect, cidr: `${ipv4LinkLocal(parseIpv4(c.interconnectAddress))}/64` });
  // IPv6 on where the addresses go, without generated link-locals (no DAD, RS or MLD from them)
  for (const dev of six.length > 0 ? ['lo', c.interconnect, ...c.outside] : []) {
    const key = `net/ipv6/conf/${dev}/disable_ipv6`;
    if (!(await host.sysctlExists(key)) || (await host.readSysctl(key)) === '0') continue;
    for (const [k, v] of [
      [`net/ipv6/conf/${dev}/addr_gen_mode`, '1'],
      [key, '0'],
    ] as const) {
      if (!journal.current.changes.some((x) => x.kind === 'sysctl' && x.key === k))
        await journal.record({ kind: 'sysctl', key: k, previous: await host.readSysctl(k) });
      await host.writeSysctl(k, v);
    }
  }
  if (six.length > 0) wanted.push(...(await outsideLinkLocals(c, host, journal)));
  for (const old of journal.current.changes) {
    if (old.kind !== 'addr' || !old.cidr.includes(':')) continue;
    if (wanted.some((w) => w.dev === old.dev && w.cidr === old.cidr)) continue;
    if ((await host.linkExists(old.dev)) && (await host.addresses6(old.dev)).has(old.cidr))
      await host.ip('addr', 'del', old.cidr, 'dev', old.dev);
  }
  for (const w of wanted) {
    const have = await host.addresses6(w.dev);
    const ours = journal.has({ kind: 'addr', dev: w.dev, cidr: w.cidr });
    if (have.has(w.cidr) && !ours) continue; // someone else's: leave it to them
    await step({ kind: 'addr', dev: w.dev, cidr: w.cidr }, async () => {
      if (!have.has(w.cidr)) await host.ip('addr', 'add', w.cidr, 'dev', w.dev, 'nodad');
    });
  }
}

/**
 * outsideLinkLocals are the link-local addresses the gateway puts on outside interfaces that have none
 * (the one the kernel would generate, from the MAC: `macLinkLocal`), and keeps on those it gave one
 * before. Without one the kernel cannot resolve an outside client for the nodes' forwarded replies:
 * their source, the cluster address, is not on that interface, so Linux sources the neighbour
 * solicitation from the interface's link-local (RFC 4861 §7.2.2 allows any of its addresses; ndisc_solicit
 * takes the packet's source only when it is the interface's own) and, having none, sends nothing; the
 * entry ends FAILED and the replies are dropped. RFC 4291 §2.1 requires one on every interface anyway.
 */
async function outsideLinkLocals(
  c: GatewayHostConfig,
  host: Host,
  journal: JournalFile,
): Promise<{ dev: string; cidr: string }[]> {
  const wanted: { dev: string; cidr: string }[] = [];
  for (const dev of c.outside) {
    const [link] = await host.ipJson<{ address?: string; link_type?: string }>('link', 'show', 'dev', dev);
    // neighbour discovery needs a link-layer address; a device without one resolves nothing (RFC 4861 §7.2)
    if (link?.link_type !== 'ether' || link.address === undefined) continue;
    const cidr = `${macLinkLocal(parseMac(link.address))}/64`;
    const have = [...(await host.addresses6(dev))];
    const ours = journal.has({ kind: 'addr', dev, cidr });
    if (ours || !have.some((a) => /^fe[89ab][0-9a-f]:/i.test(a))) wanted.push({ dev, cidr });
  }
  return wanted;
}

/**
 * outsideMtu is the smallest MTU of the outside interfaces (0 when none can be read), which Join hands
 * the nodes for their routes to the outside: a node's reply larger than the outside link would get
 * this host's Packet Too Big (RFC 4443 §3.2) or "fragmentation needed" (RFC 1191), addressed to the
 * reply's source, the cluster address, which is this host's own, so the node would never learn it.
 */
export async function outsideMtu(outside: readonly string[], host: Host = localHost): Promise<number> {
  let least = 0;
  for (const dev of outside) {
    const [link] = await host.ipJson<{ mtu?: number }>('link', 'show', 'dev', dev).catch(() => []);
    const mtu = link?.mtu ?? 0;
    if (mtu > 0 && (least === 0 || mtu < least)) least = mtu;
  }
  return least;
}

/** ARPING_COUNT is how many gratuitous ARPs `announceClusterAddresses` sends per address and interface. */
export const ARPING_COUNT = 2;

/**
 * announceClusterAddresses sends a gratuitous ARP (`arping -U`, RFC 5227 §3 "ARP Announcement") for
 * each cluster address on each outside interface, so that neighbours and upstream routers that knew
 * another owner (a previous gateway) update their caches at once (IPv6: `advertiseClusterAddresses6`).
 * Resolves with the failures, in words.
 */
export async function announceClusterAddresses(
  vips: readonly number[],
  outside: readonly string[],
  host: Host = localHost,
): Promise<string[]> {
  const failed: string[] = [];
  for (const dev of outside)
    for (const v of vips) {
      const a = ipv4ToString(v);
      await host
        .run('arping', ['-q', '-U', '-c', String(ARPING_COUNT), '-w', '3', '-I', dev, '-s', a, a], {
          timeoutMs: 5000,
        })
        .catch((e: Error) => failed.push(`${a} on ${dev}: ${e.message}`));
    }
  return failed;
}

/**
 * setRegisteredNodes replaces the set of node addresses allowed to send through the gateway (one nft
 * transaction), through `nft` (the gateway's in-process nftables context: a spawned `nft` forks the
 * whole gateway, hundreds of MB, once per membership change). Throws a CommandError when nft refuses
 * (e.g. the table is gone).
 */
export async function setRegisteredNodes(
  addresses: readonly string[],
  nft: (script: string) => Promise<unknown> = (script) => localHost.nft(script),
): Promise<void> {
  const elements =
    addresses.length > 0 ? `add element ip ${NFT_TABLE} nodes { ${addresses.join(', ')} }\n` : '';
  await nft(`flush set ip ${NFT_TABLE} nodes\n${elements}`);
}

/**
 * readHostDrops reads the host filter's named counters (HOST_DROPS, packets each, both families' tables
 * summed) over netlink; zeros for the ones a table lacks. Rejects when netlink cannot be opened.
 */
export async function readHostDrops(): Promise<Map<string, number>> {
  const sum = new Map<string, number>(HOST_DROPS.map((n) => [n, 0]));
  for (const family of [4, 6] as const) {
    const flows = NftFlows.open(NFT_TABLE, undefined, family);
    try {
      const all = await flows.counters();
      for (const n of HOST_DROPS) sum.set(n, sum.get(n)! + (all.get(n)?.packets ?? 0));
    } finally {
      flows.close();
    }
  }
  return sum;
}

/** restoreGatewayHost undoes what the state file at `statePath` records; a no-op without one. */
export async function restoreGatewayHost(
  statePath: string,
  host: Host = localHost,
): Promise<{ found: boolean; undone: number }> {
  return restoreJournal(statePath, host);
}
