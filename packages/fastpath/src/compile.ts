import { FLOW_SEED, type KernelMaglev, type KernelPlan, type TableSnapshot } from '@onehost/switch';
import { ipv4ToString } from '@onehost/wire';

/** A node the kernel can send to: its switch id, interconnect address and VXLAN device MAC. */
export interface NodeEndpoint {
  id: number;
  address: string;
  mac: string;
}

/** Packets per second that may take each way into user space (0: no limit). */
export interface GuardRates {
  /** first packets of flows user space decides (least-connections SYNs, a full flow map) */
  first: number;
  /** packets of flows nobody knows (no entry and not a SYN; flows of a node that is gone) */
  unknown: number;
  /** ICMP errors and fragments */
  other: number;
  /** SYNs to the ports whose function reads the payload (MOUNT, NFS: delayed binding) */
  payloadSyn: number;
  /** the rest of those ports' packets */
  payload: number;
}

/** How the fast path is laid out in the kernel (names and numbers of its table, device, marks, rules). */
export interface FastPathLayout {
  /** the nftables table (family ip) the fast path owns */
  table: string;
  /** the collect-metadata VXLAN device the per-node routes encapsulate through */
  device: string;
  /** interfaces clients arrive on */
  outside: readonly string[];
  /** the cluster addresses (uint32) */
  vips: readonly number[];
  /** the IPv6 cluster addresses as `ip` prints them (RFC 5952); absent or empty: no IPv6 fast path */
  vips6?: readonly string[];
  /** the outer source address (the gateway's interconnect address) */
  source: string;
  vni: number;
  vxlanPort: number;
  /** the largest inner packet the interconnect carries (its MTU - 50) */
  innerMtu: number;
  /** packet marks: node id n is markBase + n; the gateway's own stack markBase + 0xffff */
  markBase: number;
  /** routing tables: node id n's is tableBase + n */
  tableBase: number;
  /** preference of the mark rules (before the rule that sends the cluster addresses into the TUN) */
  rulePref: number;
  guard: GuardRates;
  /**
   * connections of round robin and least-connections keep their node when they move to another gateway:
   * their non-SYN segments are tracked by conntrack, the node is written into the entry's mark, and
   * conntrackd shares the entries with the other gateways (docs/fastpath.md, "Flows that change gateway")
   */
  shareFlows?: boolean;
}

export const LOCAL_SLOT = 0xffff;
/**
 * TRACK_SLOT's mark (markBase + 0xfffe, never a node's) tells the host table's raw chain to leave a
 * packet to conntrack: a shared connection's segment (layout.shareFlows). Reset before the marks route.
 */
export const TRACK_SLOT = 0xfffe;

/** The lifetime of a shared connection's conntrack entry on the other gateways: the kernel's 5 days. */
export const SHARED_COPY_SECONDS = 432_000;

/** trackMark is the mark of packets conntrack keeps (shared connections), set in the raw hook. */
export function trackMark(layout: Pick<FastPathLayout, 'markBase'>): number {
  return (layout.markBase + TRACK_SLOT) >>> 0;
}

/** markOf is the packet mark that routes to node `id` (the gateway's own id routes to its local stack). */
export function markOf(layout: FastPathLayout, id: number, gatewayId: number): number {
  return (layout.markBase + (id === gatewayId ? LOCAL_SLOT : id)) >>> 0;
}

/** localMark routes to the gateway host's own stack. */
export function localMark(layout: FastPathLayout): number {
  return (layout.markBase + LOCAL_SLOT) >>> 0;
}

/**
 * A set or map the compiler fills as a whole: its declaration and elements (key text → value text), or
 * for a Maglev bucket map its slots (the mark per slot, 0 for none), which diff in one pass.
 */
export interface StaticSet {
  decl: string;
  elements: Map<string, string>;
  slots?: Uint32Array;
}

/** A chain: its base-chain line (hook and priority) or none, and its rules in order. */
export interface Chain {
  base?: string;
  rules: string[];
}

/** What the kernel does with one switch table entry, for explain and listings. */
export interface EntryPath {
  protocol: number;
  port: number;
  kind: string;
  plan: KernelPlan;
  /** the counter of its kernel decisions */
  counter: string;
  /** its flow map, for functions that keep flows */
  flowMap?: string;
  /** its Maglev bucket map */
  maglevMap?: string;
  /** its map of half-open connections (round robin, Maglev) */
  synMap?: string;
}

/**
 * KernelState is the whole fast path as it should be in the kernel for one snapshot: nftables objects
 * (counters, sets and maps filled as a whole, flow maps the packets and user space fill, chains) and the
 * nodes that get a routing table, a mark rule and a neighbour entry.
 */
export interface KernelState {
  version: number;
  /** round-robin rings by entry name: the order the kernel's counter walks the active nodes in */
  rings: Map<string, number[]>;
  counters: Set<string>;
  sets: Map<string, StaticSet>;
  /** flow maps: name → declaration */
  flowMaps: Map<string, string>;
  /** conntrack timeout policies (`ct timeout` objects) of the shared connections: name → declaration */
  ctTimeouts: Map<string, string>;
  chains: Map<string, Chain>;
  nodes: Map<number, NodeEndpoint>;
  entries: Map<string, EntryPath>;
  gatewayId: number;
  /** the address family the state compiles (4: table `ip`, 6: table `ip6`) */
  family: Family;
}

/** An address family the fast path compiles: IPv4 into the `ip` table, IPv6 into the `ip6` one. */
export type Family = 4 | 6;

/** nftFamily is the nftables family of the table that holds `family`'s fast path. */
export function nftFamily(family: Family): 'ip' | 'ip6' {
  return family === 6 ? 'ip6' : 'ip';
}

/** The user-space classes, each with its own guard (GuardRates). */
export const TUN_CLASSES = ['first', 'unknown', 'other', 'payload_syn', 'payload'] as const;
export type TunClass = (typeof TUN_CLASSES)[number];

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
const protoName = (p: number): string => (p === 6 ? 'tcp' : 'udp');

/** entryName names an entry's chain and counter stem: tcp_80. */
export function entryName(protocol: number, port: number): string {
  return `${protoName(protocol)}_${port}`;
}

/** flowMapName is the flow map of an entry. */
export function flowMapName(protocol: number, port: number): string {
  return `f_${entryName(protocol, port)}`;
}

/** synMapName is the map of an entry's half-open connections. */
export function synMapName(protocol: number, port: number): string {
  return `s_${entryName(protocol, port)}`;
}

const FLOW_MAP_TYPE = 'ipv4_addr . ipv4_addr . inet_service : mark';

/**
 * IPv6 flow maps are keyed on two 32-bit jhashes of (cluster address, client address, client port) and
 * the client port, 12 bytes like the IPv4 key: nftables 1.0.6 aborts (an assertion in its linearizer)
 * on any `add`/`update`/`delete @map { key : data }` whose key is over 16 bytes, and the addresses
 * alone are 32. Two seeds make 64 bits of hash (besides the exact port): flows that share a key by
 * chance are not to be expected; a client that picks its own addresses could in principle craft one.
 */
export const FLOW_KEY_SEEDS = [0x6f6e6536, 0x66703621] as const;
/** the modulus of the key hashes: `jhash … mod` takes no 2^32 */
export const FLOW_KEY_MOD = 0xffffffff;
const flowMapType6 = (sport: string) => `typeof numgen inc mod 2 . numgen inc mod 2 . ${sport} : meta mark`;

/**
 * compileState builds the kernel state for a snapshot and the nodes the data path can reach. Pure.
 * Nodes without an endpoint (no VXLAN MAC yet) count as down for the kernel.
 */
export function compileState(
  snap: TableSnapshot,
  endpoints: readonly NodeEndpoint[],
  layout: FastPathLayout,
  prev: KernelState | null = null,
  family: Family = 4,
): KernelState {
  const gw = snap.nodes.gatewayId;
  // the same functions for either family: only the address matches and the flow maps' keys differ
  const ip = nftFamily(family);
  const mark = (id: number) => markOf(layout, id, gw);
  const reachable = new Map(endpoints.filter((e) => e.id !== gw).map((e) => [e.id, e]));
  const up = (id: number) => id === gw || (reachable.has(id) && snap.nodes.isUp(id));
  const active = (id: number) => id === gw || (reachable.has(id) && snap.nodes.isActive(id));
  const counters = new Set<string>(['n_local', 'e_unmatched', 'd_node_down']);
  for (const c of TUN_CLASSES) {
    counters.add(`g_${c}`);
    counters.add(`t_${c}`);
  }
  const sets = new Map<string, StaticSet>();
  const flowMaps = new Map<string, string>();
  const chains = new Map<string, Chain>();
  const entries = new Map<string, EntryPath>();
  const rings = new Map<string, number[]>();

  // Nodes: a counter each, the marks of those up (they keep their flows).
  const nodecnt = new Map<string, string>([[hex(localMark(layout)), '"n_local"']]);
  const upSet = new Map<string, string>([[hex(localMark(layout)), '']]);
  for (const id of reachable.keys()) {
    counters.add(`n_${id}`);
    // only nodes that are up have a counter here: the lookup that counts a packet also checks its node
    if (up(id)) {
      nodecnt.set(hex(mark(id)), `"n_${id}"`);
      upSet.set(hex(mark(id)), '');
    }
  }
  sets.set('nodecnt', { decl: 'type mark : counter;', elements: nodecnt });
  sets.set('up', { decl: 'type mark;', elements: upSet });

  // Boxes 545/550: port blocks by interval; an owner that is down or unreachable goes to user space.
  const blocks = new Map<string, string>();
  for (const b of snap.portBlocks.blocks)
    blocks.set(b.from === b.to ? `${b.from}` : `${b.from}-${b.to}`, hex(mark(b.node)));
  sets.set('blocks', { decl: 'type inet_service : mark; flags interval;', elements: blocks });

  // Maglev bucket maps, one per distinct table (entries with the same nodes share theirs).
  const maglevNames = new Map<Int32Array, string>();
  const maglevMap = (m: KernelMaglev): string => {
    let name = maglevNames.get(m.table);
    if (name !== undefined) return name;
    name = `mg_${maglevNames.size}`;
    maglevNames.set(m.table, name);
    const slots = new Uint32Array(m.size);
    for (let s = 0; s < m.size; s++) {
      const id = m.table[s]!;
      if (id >= 0) slots[s] = mark(id);
    }
    // typeof: the map's key is the integer `jhash … mod` yields
    sets.set(name, { decl: 'typeof numgen inc mod 2 : meta mark;', elements: new Map(), slots });
    return name;
  };

  const vmap = new Map<string, string>();
  // TCP ports whose connections are shared with the other gateways through conntrack (layout.shareFlows)
  const sharedPorts: number[] = [];
  // each shared port's conntrack timeout policy (named by port and seconds: a new timeout is a new object)
  const ctTimeouts = new Map<string, string>();
  const timeoutRules: string[] = [];
  const nodeMarks = `${hex(layout.markBase)}-${hex(layout.markBase + TRACK_SLOT - 1)}`;
  for (const e of snap.entries.values()) {
    const plan: KernelPlan = e.fn.kernel?.() ?? { path: 'user', why: e.kind };
    const name = entryName(e.protocol, e.port);
    const counter = `e_${name}`;
    const ep: EntryPath = { protocol: e.protocol, port: e.port, kind: e.kind, plan, counter };
    entries.set(name, ep);
    counters.add(counter);
    const chain = `e_${name}`;
    vmap.set(`${protoName(e.protocol)} . ${e.port}`, `goto ${chain}`);
    const count = `counter name "${counter}"`;
    const rules: string[] = [];
    switch (plan.path === 'user' ? 'user' : plan.kind) {
      case 'user':
        if (e.protocol === 6) rules.push('tcp flags & (syn | ack) == syn goto tun_payload_syn');
        rules.push('goto tun_payload');
        break;
      case 'fixed': {
        const node = (plan as { node: number }).node;
        if (node >= 0 && (node === gw || reachable.has(node)))
          rules.push(`${count} meta mark set ${hex(mark(node))} goto to_node`);
        else if (node >= 0) rules.push(`${count} goto tun_unknown`);
        else rules.push(`${count} counter name "d_node_down" drop`);
        break;
      }
      case 'port-block':
        rules.push(`${count} goto blocks`);
        break;
      case 'local':
        // an IPv6 packet goes to user space, whose switch hands it to the host's stack through the TUN as
        // in tun mode (to_local's rules are IPv4's)
        rules.push(family === 6 ? 'goto tun_payload' : `${count} goto to_local`);
        break;
      case 'connection':
      case 'udp-flow': {
        const fm = flowMapName(e.protocol, e.port);
        ep.flowMap = fm;
        const p = plan as Extract<KernelPlan, { kind: 'connection' | 'udp-flow' }>;
        const sport = e.protocol === 6 ? 'tcp sport' : 'udp sport';
        const type = family === 6 ? flowMapType6(sport) : `type ${FLOW_MAP_TYPE}`;
        flowMaps.set(fm, `${type}; flags timeout; size ${p.maxEntries}; counter;`);
        const tuple = `${ip} daddr . ${ip} saddr . ${sport}`;
        const hashes = FLOW_KEY_SEEDS.map((seed) => `jhash ${tuple} mod ${FLOW_KEY_MOD} seed ${hex(seed)}`);
        const key = family === 6 ? `${hashes.join(' . ')} . ${sport}` : tuple;
        const s = (ms: number) => `${Math.max(1, Math.round(ms / 1000))}s`;
        const n = `n_${name}`;
        const h = `h_${name}`;
        rules.push(`meta mark set ${key} map @${fm} goto ${h}`, `goto ${n}`);
        const newRules: string[] = [];
        const hitRules: string[] = [];
        const isSyn = 'tcp flags & (syn | ack | rst) == syn';
        const pick = (m: KernelMaglev) =>
          `meta mark set jhash ${ip} saddr . ${sport} mod ${m.size} seed ${hex(FLOW_SEED)} map @${maglevMap(m)}`;
        if (p.kind === 'udp-flow') {
          ep.maglevMap = maglevMap(p.maglev);
          newRules.push(
            `${pick(p.maglev)} add @${fm} { ${key} timeout ${s(p.idleMs)} : meta mark } ${count} goto to_node`,
          );
          newRules.push('goto tun_first');
          hitRules.push(`meta mark != @up delete @${fm} { ${key} : meta mark } goto ${n}`);
          hitRules.push(`update @${fm} { ${key} timeout ${s(p.idleMs)} : meta mark } ${count} goto to_node`);
        } else {
          const t = p.timeouts;
          // Round robin's and least-connections' node is this gateway's choice, kept only in its flow
          // map: a connection that moves to another gateway finds it in its conntrack entry's mark,
          // which conntrackd brought (docs/fastpath.md, "Flows that change gateway"). Maglev needs
          // none: every gateway computes the same table.
          const shared = layout.shareFlows === true && p.policy !== 'maglev';
          const fromPeer: string[] = [];
          if (shared) {
            sharedPorts.push(e.port);
            // The entry's timeouts (docs/fastpath.md, "Flows that change gateway"). Here: the gateway
            // sees the client's side only, its data never acknowledged, and the kernel would end the
            // entry after 300 s idle (unacknowledged data, retransmissions); it idles as long as the
            // flow map's. On the other gateways: their copies keep the timeout the entry had when
            // conntrackd sent it, at its creation (no packet refreshes it there, nor is a refresh
            // sent), which is `syn_sent`'s, the one a new entry gets from its policy: as long as the
            // kernel gives an established connection, so that this entry's end (an event) ends them.
            const secs = Math.max(1, Math.round(t.established / 1000));
            const policy = `ct_${name}_${secs}`;
            ctTimeouts.set(
              policy,
              `protocol tcp; l3proto ${nftFamily(family)}; policy = { syn_sent: ${SHARED_COPY_SECONDS}, unack: ${secs}, retrans: ${secs} };`,
            );
            // set on the packet that makes the entry, after conntrack made it (chain `pre`)
            timeoutRules.push(
              `meta mark ${hex(trackMark(layout))} tcp dport ${e.port} ct state new ct timeout set "${policy}"`,
            );
            counters.add(`y_${name}`);
            fromPeer.push(
              `tcp flags & (syn | rst) == 0 ct mark ${nodeMarks} meta mark set ct mark add @${fm} { ${key} timeout ${s(t.established)} : meta mark } counter name "y_${name}" ${count} goto to_node`,
            );
          }
          // pickNew places a new connection; pickAgain places it again from its packet alone (a hash), so a
          // connection placed with no state is found again by every later packet while the nodes stay
          let pickNew: string | null = null;
          let pickAgain: string | null = null;
          if (p.policy === 'round-robin' && p.active.length > 0) {
            const ring = nextRing(prev?.rings.get(name), p.active);
            rings.set(name, ring);
            const rr = `rr_${name}`;
            const el = new Map<string, string>(ring.map((id, i) => [String(i), hex(mark(id))]));
            sets.set(rr, { decl: 'typeof numgen inc mod 2 : meta mark;', elements: el });
            pickNew = `meta mark set numgen inc mod ${ring.length} map @${rr}`;
            pickAgain = `meta mark set jhash ${ip} saddr . ${sport} mod ${ring.length} seed ${hex(FLOW_SEED)} map @${rr}`;
          }
          if (p.policy === 'maglev' && p.maglev !== null) {
            ep.maglevMap = maglevMap(p.maglev);
            pickNew = pickAgain = pick(p.maglev);
          }
          if (p.policy !== 'least-conn') {
            // Half-open connections wait in a map of their own (SYN timeout), so a SYN flood can fill that
            // map but never the connections' one; the handshake's ACK moves a connection over. With the
            // half-open map full, a SYN is placed by hash without state (Katran's way under a flood): its
            // later packets find its node by the same hash. The map stays while no node is active, so a
            // table adopted or applied then keeps the handshakes under way.
            const sm = synMapName(e.protocol, e.port);
            ep.synMap = sm;
            flowMaps.set(sm, `${type}; flags timeout; size ${p.maxEntries};`);
            const again = `counter name "x_${name}"`;
            counters.add(`x_${name}`);
            const fromSyn = `meta mark set ${key} map @${sm}`;
            // a retransmitted SYN keeps its node while that node takes new connections; a SYN whose
            // half-open entry names another (drained, down, failing its health check: a reused port of a
            // connection that never completed) starts over
            const taking = p.active.filter(active).map((id) => hex(mark(id)));
            if (taking.length > 0)
              newRules.push(`${isSyn} ${fromSyn} meta mark { ${taking.join(', ')} } ${count} goto to_node`);
            newRules.push(`${isSyn} ${fromSyn} delete @${sm} { ${key} : meta mark }`);
            if (pickNew !== null && pickAgain !== null)
              newRules.push(
                `${isSyn} ${pickNew} add @${sm} { ${key} timeout ${s(t.syn)} : meta mark } ${count} goto to_node`,
                `${isSyn} ${pickAgain} ${again} ${count} goto to_node`,
              );
            newRules.push(
              `tcp flags & (fin | rst) == 0 ${fromSyn} add @${fm} { ${key} timeout ${s(t.established)} : meta mark } delete @${sm} { ${key} : meta mark } ${count} goto to_node`,
              // a FIN or RST before the ACK, or a full connection map: forwarded, not kept
              `${fromSyn} ${count} goto to_node`,
              ...fromPeer,
            );
            if (pickAgain !== null) {
              if (p.policy === 'maglev' && p.rederive)
                newRules.push(
                  `${pickAgain} add @${fm} { ${key} timeout ${s(t.established)} : meta mark } ${count} goto to_node`,
                );
              // no state (placed under a flood, or expired): by the hash; a node that has no such
              // connection answers a reset (RFC 9293 §3.10.7.1), so the client learns at once
              newRules.push(`${pickAgain} ${again} ${count} goto to_node`);
            }
          }
          // least-connections, no active node: user space decides the first packet
          if (p.policy === 'least-conn') newRules.push(...fromPeer);
          newRules.push(`${isSyn} goto tun_first`, 'goto tun_unknown');
          // A SYN that finds a flow: for round robin and Maglev it is a reused port (a retransmitted SYN
          // finds the half-open map, not this one), so the flow starts over as user space's does; a
          // connection that closed on a node a moment ago must not pin its port's next one there (after a
          // node's return it would not get the client's new connections until the FIN timeout). For
          // least-connections, whose entry user space writes at the SYN, a retransmission cannot be told
          // from a reused port: the SYN keeps the node while it takes new connections.
          const takers = p.active.filter(active).map((id) => hex(mark(id)));
          hitRules.push(
            takers.length === 0 || p.policy !== 'least-conn'
              ? `${isSyn} delete @${fm} { ${key} : meta mark } goto ${n}`
              : `${isSyn} meta mark != { ${takers.join(', ')} } delete @${fm} { ${key} : meta mark } goto ${n}`,
          );
          if (p.policy === 'maglev' && p.rederive)
            hitRules.push(`meta mark != @up delete @${fm} { ${key} : meta mark } goto ${n}`);
          hitRules.push(
            `tcp flags & rst == rst update @${fm} { ${key} timeout ${s(t.rst)} : meta mark } ${count} goto to_node`,
            `tcp flags & fin == fin update @${fm} { ${key} timeout ${s(t.fin)} : meta mark } ${count} goto to_node`,
            `tcp flags & (syn | ack) == syn update @${fm} { ${key} timeout ${s(t.syn)} : meta mark } ${count} goto to_node`,
            `update @${fm} { ${key} timeout ${s(t.established)} : meta mark } ${count} goto to_node`,
          );
        }
        chains.set(n, { rules: newRules });
        chains.set(h, { rules: hitRules });
        break;
      }
    }
    chains.set(chain, { rules });
  }
  sets.set('entries', { decl: 'type inet_proto . inet_service : verdict;', elements: vmap });

  // one interface or address: a compare is cheaper than a set lookup, on every packet
  const one = (xs: string[]) => (xs.length === 1 ? xs[0]! : `{ ${xs.join(', ')} }`);
  const outs = one(layout.outside.map((o) => JSON.stringify(o)));
  const vips = one(family === 6 ? [...(layout.vips6 ?? [])] : layout.vips.map(ipv4ToString));
  // a shared connection's segment, left to conntrack by its mark (chain `track`): routed as any other
  const untrack =
    sharedPorts.length > 0 ? [...timeoutRules, `meta mark ${hex(trackMark(layout))} meta mark set 0`] : [];
  const pre = family === 6 ? pre6(outs, vips, untrack, nodeMarks) : null;
  chains.set('pre', {
    base: 'type filter hook prerouting priority mangle; policy accept;',
    rules: pre ?? [
      `iifname != ${outs} return`,
      `ip daddr != ${vips} return`,
      ...untrack,
      // spliced flows' client segments, shifted and marked for their node by the gateway's tc program
      // (docs/splice.md, "In the kernel"): counted on the node and routed by the mark
      `meta mark ${nodeMarks} goto to_node`,
      // fragments follow their first fragment: user space remembers it (only the first carries ports)
      'ip frag-off & 0x3fff != 0 goto tun_other',
      'meta l4proto . th dport vmap @entries',
      'meta l4proto { tcp, udp } counter name "e_unmatched" goto blocks',
      // ICMP errors are routed by the flow they quote: user space reads it
      'icmp type { destination-unreachable, source-quench, redirect, time-exceeded, parameter-problem } goto tun_other',
      // echo replies to nodes' own pings: routed by their identifier's port block, in user space (rare)
      'icmp type echo-reply goto tun_other',
      // 525: not a port-type protocol → the gateway itself
      'goto to_local',
    ],
  });
  chains.set('blocks', { rules: ['meta mark set th dport map @blocks goto to_node', 'goto to_local'] });
  if (sharedPorts.length > 0)
    chains.set('track', {
      // before conntrack (raw, -300): the host table's raw chain leaves packets with this mark to it.
      // SYNs stay untracked, so a SYN flood never fills the conntrack table; the handshake's ACK makes
      // the entry (nf_conntrack_tcp_loose), and the gateway sees one direction only (be_liberal).
      base: 'type filter hook prerouting priority -310; policy accept;',
      rules: [
        `iifname != ${outs} return`,
        `${ip} daddr != ${vips} return`,
        'tcp flags & syn == syn return',
        `tcp dport ${one(sharedPorts.map(String))} meta mark set ${hex(trackMark(layout))}`,
      ],
    });
  chains.set('to_node', {
    rules: [
      // a node that is down has no counter: the lookup fails and the next rule takes the packet. A
      // shared connection's conntrack entry learns its node (conntrackd tells the other gateways).
      `counter name meta mark map @nodecnt${sharedPorts.length > 0 ? ' ct mark set meta mark' : ''} accept`,
      // the node is down or unreachable: user space decides (drop, another node), as for unknown flows
      'goto tun_unknown',
    ],
  });
  chains.set('to_local', {
    rules: [`meta mark set ${hex(localMark(layout))} counter name "n_local" accept`],
  });
  const rate: Record<TunClass, number> = {
    first: layout.guard.first,
    unknown: layout.guard.unknown,
    other: layout.guard.other,
    payload_syn: layout.guard.payloadSyn,
    payload: layout.guard.payload,
  };
  for (const c of TUN_CLASSES) {
    const r = rate[c];
    const limit =
      r > 0
        ? [
            `limit rate over ${r}/second burst ${Math.max(16, Math.ceil(r / 10))} packets counter name "g_${c}" drop`,
          ]
        : [];
    // no mark: the rule that sends the cluster addresses into the TUN takes the packet
    chains.set(`tun_${c}`, { rules: ['meta mark set 0', ...limit, `counter name "t_${c}" accept`] });
  }
  // MSS toward the nodes: what fits the interconnect (RFC 9293 §3.7.1: MTU - 40 without options; IPv6's
  // header is 20 bytes longer, RFC 8200 §3: MTU - 60)
  const mss = layout.innerMtu - (family === 6 ? 60 : 40);
  chains.set('clamp', {
    base: 'type filter hook forward priority mangle; policy accept;',
    rules: [
      `oifname ${JSON.stringify(layout.device)} tcp flags & syn == syn tcp option maxseg size > ${mss} counter name "mss_clamped" tcp option maxseg size set ${mss}`,
    ],
  });
  counters.add('mss_clamped');

  const nodes = new Map<number, NodeEndpoint>();
  for (const [id, e] of reachable) nodes.set(id, e);
  return {
    version: snap.version,
    rings,
    counters,
    sets,
    flowMaps,
    ctTimeouts,
    chains,
    nodes,
    entries,
    gatewayId: gw,
    family,
  };
}

/**
 * pre6 is the IPv6 table's `pre` chain: the IPv4 one's steps with IPv6's matches. A packet whose fixed
 * header is not followed by TCP, UDP or ICMPv6 at once carries extension headers (RFC 8200 §4), a
 * fragment header among them: user space walks the chain (bounded, hostile chains counted) and routes
 * fragments, so the kernel decides only packets whose ports it finds where the switch finds them.
 * Spliced flows are IPv4 (no tc mark to follow here).
 */
function pre6(outs: string, vips: string, untrack: string[], nodeMarks: string): string[] {
  return [
    `iifname != ${outs} return`,
    `ip6 daddr != ${vips} return`,
    ...untrack,
    // spliced IPv6 flows' client segments, shifted and marked by the gateway's tc program (ks_gw6)
    `meta mark ${nodeMarks} goto to_node`,
    'ip6 nexthdr != { tcp, udp, ipv6-icmp } goto tun_other',
    'meta l4proto . th dport vmap @entries',
    'meta l4proto { tcp, udp } counter name "e_unmatched" goto blocks',
    // ICMPv6 errors (RFC 4443 §3) are routed by the flow they quote: user space reads it
    'icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } goto tun_other',
    // echo replies to nodes' own pings: user space
    'icmpv6 type echo-reply goto tun_other',
    // echo requests, neighbour discovery to the address itself: the gateway host's own stack
    'goto to_local',
  ];
}

/**
 * nextRing keeps a round-robin ring's order across changes so one node more or less changes one or two
 * of its slots (the kernel's map changes by as much): a node that left is replaced by the last one, a
 * node that came is appended. Every active node holds exactly one slot, so each still gets one new
 * connection in `active.length`.
 */
export function nextRing(prev: readonly number[] | undefined, active: readonly number[]): number[] {
  if (prev === undefined) return [...active];
  const want = new Set(active);
  const ring = [...prev];
  for (let i = 0; i < ring.length; ) {
    if (want.has(ring[i]!)) {
      i++;
      continue;
    }
    ring[i] = ring[ring.length - 1]!;
    ring.pop();
  }
  const have = new Set(ring);
  for (const id of active) if (!have.has(id)) ring.push(id);
  return ring;
}
