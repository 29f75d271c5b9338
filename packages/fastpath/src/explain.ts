import type { FlowElement } from '@onehost/kernel';
import { FLOW_SEED, maglevSlot, type TableSnapshot } from '@onehost/switch';
import { IPPROTO, OK, PacketSummary, TCP_FLAGS } from '@onehost/wire';
import { type EntryPath, entryName, type KernelState } from './compile.js';

/** What explain needs from the running fast path (FastPath implements it). */
export interface KernelView {
  readonly applied: KernelState | null;
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
  nodeOfMark(mark: number): number;
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
  // the kernel fast path compiles IPv4 only: IPv6 for a cluster address is routed into the TUN
  if (packet.length > 0 && packet[0]! >>> 4 === 6)
    return `${lag}user space: IPv6 (the kernel path is IPv4 only)`;
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
  return `${lag}${entryPathText(view, s, snap, e, p, name)}`;
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
  const flow = reused ? null : view.flowEntry(e.protocol, e.port, p.dst, p.src, p.srcPort);
  if (flow !== null) {
    const node = view.nodeOfMark(flow.mark);
    const gone = node !== s.gatewayId && !s.nodes.has(node) ? ' (node unreachable: user space decides)' : '';
    return `kernel: flow entry ${node === s.gatewayId ? 'local' : name(node)}, ${packetsOf(flow.packets)} packets, expires in ${duration(flow.expiresMs)}${gone}`;
  }
  const half = view.halfOpenEntry(e.protocol, e.port, p.dst, p.src, p.srcPort);
  if (half !== null) {
    const node = view.nodeOfMark(half.mark);
    return `kernel: half-open connection → ${node === s.gatewayId ? 'local' : name(node)} until its ACK, expires in ${duration(half.expiresMs)}`;
  }
  const slot = (size: number) => maglevSlot(p.src, p.srcPort, size);
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
  const s = view.applied;
  if (s === null) return null;
  const p = new PacketSummary();
  if (p.read(packet, 0, packet.length) !== OK || p.isFragment) return null;
  if (p.protocol !== IPPROTO.TCP && p.protocol !== IPPROTO.UDP) return null;
  const e = [...s.entries.values()].find((x) => x.protocol === p.protocol && x.port === p.dstPort);
  if (e?.flowMap === undefined) return null;
  const flow =
    view.flowEntry(e.protocol, e.port, p.dst, p.src, p.srcPort) ??
    view.halfOpenEntry(e.protocol, e.port, p.dst, p.src, p.srcPort);
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
