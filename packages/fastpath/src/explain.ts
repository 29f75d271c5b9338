import type { FlowElement } from '@onehost/kernel';
import {
  FLOW_SEED,
  jhashBytes,
  maglevSlot,
  maglevSlot6,
  reciprocalScale,
  type TableSnapshot,
} from '@onehost/switch';
import { ADDR6, IPPROTO, IPPROTO_ICMPV6, OK, PacketSummary, TCP_FLAGS } from '@onehost/wire';
import { type EntryPath, entryName, FLOW_KEY_MOD, FLOW_KEY_SEEDS, type KernelState } from './compile.js';

/** What explain needs from the running fast path (FastPath implements it). */
export interface KernelView {
  readonly applied: KernelState | null;
  /** the IPv6 table in force (null without IPv6 cluster addresses) */
  readonly applied6: KernelState | null;
  readonly stats: { appliedVersion: number };
  readonly lastError: string;
  flowEntry(
    protocol: number,
    port: number,
    vip: number,
    client: number,
    clientPort: number,
  ): FlowElement | null;
  halfOpenEntry(
    protocol: number,
    port: number,
    vip: number,
    client: number,
    clientPort: number,
  ): FlowElement | null;
  /** an IPv6 flow (key: its map's 36 bytes) in the entry's flow map, or its half-open map */
  flowEntry6(protocol: number, port: number, key: Uint8Array): FlowElement | null;
  halfOpenEntry6(protocol: number, port: number, key: Uint8Array): FlowElement | null;
  nodeOfMark(mark: number): number;
}

/** FlowLookup reads the packet's flow from the entry's flow map or its half-open map (either family). */
interface FlowLookup {
  flow(e: EntryPath): FlowElement | null;
  halfOpen(e: EntryPath): FlowElement | null;
  /** the Maglev slot nftables' jhash reads for the packet's client */
  slot(size: number): number;
}

/** ICMPv6 errors (RFC 4443 §3): destination unreachable, packet too big, time exceeded, parameter problem. */
const ICMP6_ERRORS = new Set([1, 2, 3, 4]);

/**
 * key6 is the key an IPv6 flow map holds for the packet's flow (compile.ts, FLOW_KEY_SEEDS): the two
 * jhashes of cluster address, client address and client port (36 bytes, the port padded to 4) as the
 * kernel's registers hold them (host order, little-endian here), then the port in network order, padded.
 */
export function key6(packet: Uint8Array, srcPort: number): Uint8Array {
  const t = new Uint8Array(36);
  t.set(packet.subarray(24, 40), 0);
  t.set(packet.subarray(8, 24), 16);
  t[32] = srcPort >>> 8;
  t[33] = srcPort & 0xff;
  const k = new Uint8Array(12);
  const v = new DataView(k.buffer);
  for (let i = 0; i < FLOW_KEY_SEEDS.length; i++)
    v.setUint32(4 * i, reciprocalScale(jhashBytes(t, 36, FLOW_KEY_SEEDS[i]!), FLOW_KEY_MOD), true);
  k[8] = srcPort >>> 8;
  k[9] = srcPort & 0xff;
  return k;
}

/**
 * flowKeyWords6 fills `out` with the two hash words of an IPv6 flow's key as a FlowBatch takes them
 * (the batch writes words in network order, the kernel's registers hold the hashes in host order,
 * little-endian here: so byte-swapped). `t` is the 36-byte tuple, cluster address, client address,
 * client port padded (key6). Allocates nothing: the flow log's drain calls it per record.
 */
export function flowKeyWords6(t: Uint8Array, out: Uint32Array): void {
  for (let i = 0; i < FLOW_KEY_SEEDS.length; i++)
    out[i] = bswap32(reciprocalScale(jhashBytes(t, 36, FLOW_KEY_SEEDS[i]!), FLOW_KEY_MOD));
}

function bswap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

const ICMP_ERRORS = new Set([3, 4, 5, 11, 12]);

/**
 * packetsOf turns a flow element's counter into the flow's packets in the kernel: each packet after the
 * first is counted twice (the lookup and the refresh both count), the first once.
 */
export function packetsOf(counter: number): number {
  return Math.ceil(counter / 2);
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * explainPath says who decides packets like `packet` and, for flows the kernel keeps, what it holds
 * now: "kernel: flow entry n2, 1204 packets, expires in 14m59s", "kernel: new connection → round robin
 * over n1, n2, n3", "user space: MOUNT dirpath". When the kernel runs an older table than the switch
 * (a change in flight, or one the kernel refused) it says so first. `snap` is the switch's table.
 */
export function explainPath(view: KernelView, snap: TableSnapshot, packet: Uint8Array): string {
  const s = view.applied;
  if (s === null)
    return `kernel: no table yet${view.lastError !== '' ? ` (refused: ${view.lastError})` : ''}`;
  const lag =
    s.version !== snap.version
      ? `kernel runs table version ${s.version}, the switch ${snap.version}${view.lastError !== '' ? ` (refused: ${view.lastError})` : ' (being applied)'}; `
      : '';
  const name = (id: number) => snap.nodes.nameOf(id);
  if (packet.length > 0 && packet[0]! >>> 4 === 6) return explain6(view, snap, packet, name);
  const p = new PacketSummary();
  if (p.read(packet, 0, packet.length) !== OK) return `${lag}kernel: not forwarded (not a packet it reads)`;
  if (snap.vipIndex(p.dst | 0) < 0) return `${lag}kernel: not a cluster address (plain routing, or dropped)`;
  if (p.isFragment) return `${lag}user space: fragment (later fragments follow the first)`;
  if (p.protocol === IPPROTO.ICMP)
    return ICMP_ERRORS.has(p.icmpType)
      ? `${lag}user space: ICMP error (routed by the flow it quotes)`
      : p.icmpType === 0
        ? `${lag}user space: echo reply (routed by its identifier's port block)`
        : `${lag}kernel: local (the gateway host's own stack)`;
  if (p.protocol !== IPPROTO.TCP && p.protocol !== IPPROTO.UDP)
    return `${lag}kernel: local (the gateway host's own stack)`;
  const e = [...s.entries.values()].find((x) => x.protocol === p.protocol && x.port === p.dstPort);
  if (e === undefined) return `${lag}${blockPath(s, snap, p.dstPort, name)}`;
  const look: FlowLookup = {
    flow: (x) => view.flowEntry(x.protocol, x.port, p.dst, p.src, p.srcPort),
    halfOpen: (x) => view.halfOpenEntry(x.protocol, x.port, p.dst, p.src, p.srcPort),
    slot: (size) => maglevSlot(p.src, p.srcPort, size),
  };
  return `${lag}${entryPathText(view, s, snap, e, p, name, look)}`;
}

/**
 * explain6 is explainPath for an IPv6 packet, from the `ip6` table: the same steps with IPv6's matches
 * (compile.ts, pre6). A packet with extension headers goes to user space, which walks the chain.
 */
function explain6(
  view: KernelView,
  snap: TableSnapshot,
  packet: Uint8Array,
  name: (id: number) => string,
): string {
  const s = view.applied6;
  if (s === null) return 'user space: IPv6 (the kernel has no IPv6 table: no IPv6 cluster address)';
  const lag =
    s.version !== snap.version
      ? `kernel runs table version ${s.version}, the switch ${snap.version}${view.lastError !== '' ? ` (refused: ${view.lastError})` : ' (being applied)'}; `
      : '';
  const p = new PacketSummary();
  if (p.read6(packet, 0, packet.length) !== OK)
    return `${lag}user space: an IPv6 packet the kernel does not read (user space counts why)`;
  if (snap.vipIndex6(p.addr6, ADDR6.DST) < 0)
    return `${lag}kernel: not a cluster address (plain routing, or dropped)`;
  const next = packet[6]!;
  if (next !== IPPROTO.TCP && next !== IPPROTO.UDP && next !== IPPROTO_ICMPV6)
    return `${lag}user space: IPv6 extension headers (user space walks the chain; fragments follow their first)`;
  if (p.protocol === IPPROTO_ICMPV6)
    return ICMP6_ERRORS.has(p.icmpType)
      ? `${lag}user space: ICMPv6 error (routed by the flow it quotes)`
      : p.icmpType === 129
        ? `${lag}user space: echo reply (routed by its identifier's port block)`
        : `${lag}kernel: local (the gateway host's own stack)`;
  const e = [...s.entries.values()].find((x) => x.protocol === p.protocol && x.port === p.dstPort);
  if (e === undefined) return `${lag}${blockPath(s, snap, p.dstPort, name)}`;
  // MOUNT/NFS over TCP need delayed binding, which splices IPv4 only: the switch drops their IPv6
  if (e.plan.path === 'user' && p.protocol === IPPROTO.TCP && (e.kind === 'mount' || e.kind === 'nfs'))
    return `${lag}user space: ${e.kind} over TCP routes IPv4 only (delayed binding; dropped there)`;
  if (e.plan.path === 'user') return `${lag}user space: ${e.plan.why}`;
  if (e.plan.path === 'kernel' && e.plan.kind === 'local')
    return `${lag}user space: local (the gateway's ${e.kind} answers on the IPv6 cluster address)`;
  const k = key6(packet, p.srcPort);
  const look: FlowLookup = {
    flow: (x) => view.flowEntry6(x.protocol, x.port, k),
    halfOpen: (x) => view.halfOpenEntry6(x.protocol, x.port, k),
    slot: (size) => maglevSlot6(packet, 8, p.srcPort, size),
  };
  return `${lag}${entryPathText(view, s, snap, e, p, name, look)}`;
}

function blockPath(s: KernelState, snap: TableSnapshot, port: number, name: (id: number) => string): string {
  const owner = snap.portBlocks.ownerOf(port);
  if (owner < 0) return 'kernel: local (no entry, not in a port block: the gateway host)';
  if (!s.nodes.has(owner) && owner !== s.gatewayId)
    return `kernel → user space: port block of ${name(owner)}, which the kernel cannot reach`;
  return `kernel: port block of ${name(owner)} (box 550)`;
}

function entryPathText(
  view: KernelView,
  s: KernelState,
  snap: TableSnapshot,
  e: EntryPath,
  p: PacketSummary,
  name: (id: number) => string,
  look: FlowLookup,
): string {
  const plan = e.plan;
  if (plan.path === 'user') return `user space: ${plan.why}`;
  switch (plan.kind) {
    case 'fixed':
      return plan.node < 0 ? 'kernel: drop (node and backup down)' : `kernel: fixed → ${name(plan.node)}`;
    case 'port-block':
      return blockPath(s, snap, p.dstPort, name);
    case 'local':
      return 'kernel: local (the gateway host answers)';
    default:
      break;
  }
  const syn =
    p.protocol === IPPROTO.UDP ||
    (p.tcpFlags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK | TCP_FLAGS.RST)) === TCP_FLAGS.SYN;
  // round robin and Maglev start a SYN over even when its port has a flow (compile.ts: a reused port)
  const reused =
    p.protocol === IPPROTO.TCP && syn && plan.kind === 'connection' && plan.policy !== 'least-conn';
  const flow = reused ? null : look.flow(e);
  if (flow !== null) {
    const node = view.nodeOfMark(flow.mark);
    const gone = node !== s.gatewayId && !s.nodes.has(node) ? ' (node unreachable: user space decides)' : '';
    return `kernel: flow entry ${node === s.gatewayId ? 'local' : name(node)}, ${packetsOf(flow.packets)} packets, expires in ${duration(flow.expiresMs)}${gone}`;
  }
  const half = look.halfOpen(e);
  if (half !== null) {
    const node = view.nodeOfMark(half.mark);
    return `kernel: half-open connection → ${node === s.gatewayId ? 'local' : name(node)} until its ACK, expires in ${duration(half.expiresMs)}`;
  }
  const slot = look.slot;
  const mg = (m: { table: Int32Array; size: number }) => {
    const sl = slot(m.size);
    const id = m.table[sl]!;
    return `maglev slot ${sl} (jhash seed 0x${FLOW_SEED.toString(16)}) → ${id < 0 ? 'no active node' : name(id)}`;
  };
  if (plan.kind === 'udp-flow') return `kernel: new flow → ${mg(plan.maglev)}`;
  if (plan.kind !== 'connection') return 'kernel';
  if (plan.policy === 'least-conn')
    return syn
      ? 'user space: least-connections picks the first packet, then the kernel'
      : 'user space: no flow entry and not a SYN (kernel passes it up, guard-limited)';
  const nodeName = (id: number) => (id === s.gatewayId ? 'local' : name(id));
  // a connection with no state is placed by hash (half-open map full, or its state expired)
  let byHash = '';
  if (plan.policy === 'maglev' && plan.maglev !== null) {
    if (!syn && plan.rederive) return `kernel: new flow, re-derived → ${mg(plan.maglev)}`;
    byHash = mg(plan.maglev);
    if (syn) return `kernel: new connection → ${byHash} (half-open until its ACK)`;
  } else if (plan.policy === 'round-robin' && plan.active.length > 0) {
    const ring = s.rings.get(entryName(p.protocol, p.dstPort)) ?? plan.active;
    const sl = slot(ring.length);
    if (syn)
      return `kernel: new connection → round robin (numgen) over ${ring.map(nodeName).join(', ')} (half-open until its ACK; with the half-open map full, hash slot ${sl} → ${nodeName(ring[sl]!)})`;
    byHash = `hash slot ${sl} of the round-robin ring → ${nodeName(ring[sl]!)}`;
  } else return 'user space: no active node';
  return `kernel: no flow entry, not a SYN: by hash, ${byHash} (a node without the connection answers a reset)`;
}

/**
 * kernelFlow finds the flow of `packet` in the kernel's flow maps (or its half-open map): its node, and whether the kernel
 * forwards to it (false: its node is down or unreachable, and user space decides). Null when the kernel
 * keeps no flow for it (or no flows for its entry).
 */
export function kernelFlow(view: KernelView, packet: Uint8Array): { node: number; forwards: boolean } | null {
  const six = packet.length > 0 && packet[0]! >>> 4 === 6;
  const s = six ? view.applied6 : view.applied;
  if (s === null) return null;
  const p = new PacketSummary();
  const read = six ? p.read6(packet, 0, packet.length) : p.read(packet, 0, packet.length);
  if (read !== OK || p.isFragment) return null;
  if (p.protocol !== IPPROTO.TCP && p.protocol !== IPPROTO.UDP) return null;
  const e = [...s.entries.values()].find((x) => x.protocol === p.protocol && x.port === p.dstPort);
  if (e?.flowMap === undefined) return null;
  const k = six ? key6(packet, p.srcPort) : null;
  const flow =
    k !== null
      ? (view.flowEntry6(e.protocol, e.port, k) ?? view.halfOpenEntry6(e.protocol, e.port, k))
      : (view.flowEntry(e.protocol, e.port, p.dst, p.src, p.srcPort) ??
        view.halfOpenEntry(e.protocol, e.port, p.dst, p.src, p.srcPort));
  if (flow === null) return null;
  const hex = `0x${(flow.mark >>> 0).toString(16).padStart(8, '0')}`;
  return { node: view.nodeOfMark(flow.mark), forwards: s.sets.get('nodecnt')?.elements.has(hex) ?? false };
}

/** stateOfTimeout names a flow element's state from its timeout (TCP), for listings. */
export function stateOfTimeout(e: EntryPath, timeoutMs: number): string {
  const plan = e.plan;
  if (plan.path === 'kernel' && plan.kind === 'connection') {
    const t = plan.timeouts;
    if (timeoutMs === t.syn) return 'syn';
    if (timeoutMs === t.fin) return 'fin';
    if (timeoutMs === t.rst) return 'rst';
    return 'established';
  }
  return 'active';
}
