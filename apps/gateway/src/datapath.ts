import { DecisionOut, KIND, type MessageSwitch, NO_PORT } from '@onehost/switch';
import { type Destination, META_STRIDE } from '@onehost/tun';
import {
  ETHERTYPE_IPV6,
  IPPROTO,
  Ipv4View,
  Ipv6View,
  OK,
  parseIpv4,
  parseMac,
  TCP_FLAGS,
  TcpView,
  UdpView,
  VXLAN_OVERHEAD,
  writeVxlanPrefix,
} from '@onehost/wire';
import { Backpressure } from './backpressure.js';
import { DATAPATH_DROP, DATAPATH_DROPS } from './drops.js';
import { FragNeeded } from './frag-needed.js';
import type { PacketSink, PacketSource } from './packet-io.js';
import { PacketTooBig } from './packet-too-big.js';

/** A node the data path can send to: its switch id, interconnect address and VXLAN device MAC. */
export interface NodeEndpoint {
  id: number;
  address: string;
  mac: string;
}

/**
 * SplicePath is what the packet loop asks of delayed binding (`splice/`, docs/splice.md): the rows its
 * nodes' agents need in the destination table, where a spliced client segment goes, and a look at each
 * packet the host's stack gets.
 */
export interface SplicePath {
  /** nodeRows lists the rows node `n` needs besides its VXLAN row; they follow that row. */
  nodeRows(n: NodeEndpoint): Destination[];
  /** placeRows tells where each node's rows went: `firstRow[id]`, -1 when the node has none. */
  placeRows(firstRow: Int32Array): void;
  /**
   * shiftHere: true when it rewrote the spliced client segment for the node's kernel (the loop sends it
   * in VXLAN); false when the segment goes to the node's agent as it is (`agentRow`).
   */
  shiftHere(arena: Uint8Array, off: number, len: number): boolean;
  /** agentRow is the row of node `node`'s agent for spliced segments, -1 when none. */
  agentRow(node: number): number;
  /** noteLocal sees each packet the loop hands to the host's stack. */
  noteLocal(arena: Uint8Array, off: number, len: number): void;
}

export interface DatapathOptions {
  sw: MessageSwitch;
  /** where packets come from, and where `local` ones go back to */
  source: PacketSource;
  /** where forwarded packets, splice messages and ICMP go */
  sink: PacketSink;
  /** the interconnect MTU: an encapsulated packet must fit in it */
  interconnectMtu: number;
  vni: number;
  vxlanPort: number;
  /** the inner Ethernet source (the gateway's side of the overlay; locally administered) */
  gatewayMac: string;
  maxBatch: number;
  clock?: () => number;
  /**
   * "fragmentation needed" messages per second at most (RFC 1812 §4.3.2.8 asks routers to limit them),
   * and as many ICMPv6 Packet Too Big (RFC 4443 §2.4 (f)), each family its own
   */
  icmpPerSecond?: number;
  /** delayed binding; without it a spliced decision has no destination */
  splice?: SplicePath;
  /**
   * onBatchEnd runs after each batch is decided, after its local packets went to the source and before
   * its forwarded ones go to the sink, e.g. to hand per-batch work to the kernel in one call. Absent, it
   * costs nothing.
   */
  onBatchEnd?: () => void;
}

/** Node ids the loop's per-node tables cover. */
export const MAX_NODE_ID = 0xffff;
const NO_DESTINATION = DATAPATH_DROP.no_destination;
const TOO_BIG = DATAPATH_DROP.too_big;
const SEND_BACKPRESSURE = DATAPATH_DROP.send_backpressure;
const ICMP_RATE_LIMITED = DATAPATH_DROP.icmp_rate_limited;

/**
 * Datapath is the gateway's packet loop: a batch from the source (the TUN) → the message switch →
 * VXLAN to nodes through the sink (one sendmmsg per batch), `local` packets back to the source for the
 * host's own stack. Per packet it allocates nothing and logs nothing; it counts. The constructor
 * throws on a bad `gatewayMac`.
 */
export class Datapath {
  /** packets and bytes forwarded, by node id */
  readonly packetsByNode = new Float64Array(MAX_NODE_ID + 1);
  readonly bytesByNode = new Float64Array(MAX_NODE_ID + 1);
  readonly localPackets = new Float64Array(1);
  /** by DATAPATH_DROP index */
  readonly drops = new Float64Array(DATAPATH_DROPS.length);
  readonly mssClamped = new Float64Array(1);
  readonly batches = new Float64Array(1);
  /** ICMP "fragmentation needed" answers to IPv4 DF packets too big for the interconnect */
  readonly fragNeeded: FragNeeded;
  /** ICMPv6 Packet Too Big answers to IPv6 packets too big for the interconnect */
  readonly packetTooBig: PacketTooBig;

  /** by node id: the row of its VXLAN device in the sink's table, -1 when none */
  private readonly destOf = new Int32Array(MAX_NODE_ID + 1).fill(-1);
  /** the same for inner IPv6 packets: the inner frame's EtherType differs (RFC 2464 §3) */
  private readonly destOf6 = new Int32Array(MAX_NODE_ID + 1).fill(-1);
  /** setNodes builds the next rows here, so a refused table changes nothing */
  private readonly nextDestOf = new Int32Array(MAX_NODE_ID + 1);
  private readonly nextDestOf6 = new Int32Array(MAX_NODE_ID + 1);
  private readonly nextSpliceOf = new Int32Array(MAX_NODE_ID + 1);
  private readonly splice: SplicePath | null;
  private readonly batchEnd: (() => void) | null;
  private readonly dst: Int32Array;
  private readonly localMeta: Int32Array;
  private readonly backpressure: Backpressure;
  private readonly out = new DecisionOut();
  private readonly ip = new Ipv4View();
  private readonly ip6 = new Ipv6View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();
  private readonly clock: () => number;
  private readonly maxInner: number;
  private readonly mssMax: number;
  private readonly mssMax6: number;
  private readonly gatewayMac: Uint8Array;
  private running = false;

  constructor(private readonly o: DatapathOptions) {
    this.clock = o.clock ?? Date.now;
    this.splice = o.splice ?? null;
    this.batchEnd = o.onBatchEnd ?? null;
    this.dst = new Int32Array(o.maxBatch);
    this.localMeta = new Int32Array(o.maxBatch * META_STRIDE);
    this.maxInner = o.interconnectMtu - VXLAN_OVERHEAD;
    // RFC 9293 §3.7.1: MSS = MTU - 40 for IPv4 + TCP headers without options.
    this.mssMax = this.maxInner - 40;
    // RFC 8200 §5 with RFC 9293 §3.7.1: the IPv6 header is 40 bytes, so MSS = MTU - 60.
    this.mssMax6 = this.maxInner - 60;
    this.gatewayMac = parseMac(o.gatewayMac);
    this.fragNeeded = new FragNeeded(this.maxInner, o.icmpPerSecond ?? 100);
    this.packetTooBig = new PacketTooBig(this.maxInner, o.icmpPerSecond ?? 100);
    this.backpressure = new Backpressure(o.source, o.sink, () => this.running);
  }

  /**
   * setNodes replaces the destination table (control plane; between batches): per node its VXLAN
   * device, then the rows delayed binding asks for. Throws on a bad address or MAC, or when the sink
   * refuses the table; the old table then stays.
   */
  setNodes(nodes: readonly NodeEndpoint[]): void {
    const table: Destination[] = [];
    const vxlanRow = this.nextDestOf.fill(-1);
    const vxlanRow6 = this.nextDestOf6.fill(-1);
    const spliceRow = this.nextSpliceOf.fill(-1);
    for (const n of nodes) {
      const prefix = new Uint8Array(22);
      writeVxlanPrefix(prefix, 0, this.o.vni, parseMac(n.mac), this.gatewayMac);
      parseIpv4(n.address);
      const row = table.length;
      table.push({ address: n.address, port: this.o.vxlanPort, prefix });
      const extra = this.splice?.nodeRows(n) ?? [];
      table.push(...extra);
      if (n.id < 0 || n.id > MAX_NODE_ID) continue;
      vxlanRow[n.id] = row;
      if (extra.length > 0) spliceRow[n.id] = row + 1;
    }
    // IPv6 rows follow every node's own rows, so those keep their places
    for (const n of nodes) {
      if (n.id < 0 || n.id > MAX_NODE_ID) continue;
      const prefix = new Uint8Array(22);
      writeVxlanPrefix(prefix, 0, this.o.vni, parseMac(n.mac), this.gatewayMac, ETHERTYPE_IPV6);
      vxlanRow6[n.id] = table.length;
      table.push({ address: n.address, port: this.o.vxlanPort, prefix });
    }
    this.o.sink.setDestinations(table);
    this.destOf.set(vxlanRow);
    this.destOf6.set(vxlanRow6);
    this.splice?.placeRows(spliceRow);
  }

  /** start begins taking batches from the source. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.o.source.receive((count, arena, meta) => this.onBatch(count, arena, meta), this.o.maxBatch);
  }

  private onBatch(count: number, arena: Buffer, meta: Int32Array): void {
    const sw = this.o.sw;
    const out = this.out;
    const dst = this.dst;
    const lm = this.localMeta;
    const drops = this.drops;
    const icmp = this.fragNeeded;
    const ptb = this.packetTooBig;
    const splice = this.splice;
    const now = this.clock();
    let nLocal = 0;
    this.batches[0]!++;
    for (let i = 0; i < count; i++) {
      const off = meta[i * META_STRIDE]!;
      const len = meta[i * META_STRIDE + 1]!;
      dst[i] = -1;
      const kind = sw.decide(arena, off, len, now, out);
      if (kind === KIND.FORWARD && out.spliced) {
        let d = -1;
        if (splice !== null)
          d = !splice.shiftHere(arena, off, len)
            ? splice.agentRow(out.node)
            : arena[off]! >>> 4 === 6
              ? this.destOf6[out.node]! // the VXLAN row whose inner EtherType is IPv6's
              : this.destOf[out.node]!;
        if (d < 0) {
          drops[NO_DESTINATION]!++;
          continue;
        }
        dst[i] = d;
        this.packetsByNode[out.node]!++;
        this.bytesByNode[out.node]! += len;
      } else if (kind === KIND.FORWARD && arena[off]! >>> 4 === 6) {
        const d = this.destOf6[out.node]!;
        if (d < 0) {
          drops[NO_DESTINATION]!++;
          continue;
        }
        // RFC 8200 §5: nobody on the way fragments IPv6; the sender learns the path MTU from a Packet
        // Too Big (RFC 4443 §3.2, RFC 8201)
        if (len > this.maxInner) {
          if (!ptb.full && !ptb.answer(arena, off, len, now)) drops[ICMP_RATE_LIMITED]!++;
          drops[TOO_BIG]!++;
          continue;
        }
        this.rewrite6(arena, off, len, out.port);
        dst[i] = d;
        this.packetsByNode[out.node]!++;
        this.bytesByNode[out.node]! += len;
      } else if (kind === KIND.FORWARD) {
        const d = this.destOf[out.node]!;
        if (d < 0) {
          drops[NO_DESTINATION]!++;
          continue;
        }
        if (len > this.maxInner) {
          // Too big for the interconnect: a DF packet gets "fragmentation needed" (RFC 1191), others would be
          // fragmented outside and reassembled by the node; we refuse both so the sender learns the path MTU.
          if ((arena[off + 6]! & 0x40) !== 0 && !icmp.full && !icmp.answer(arena, off, len, now))
            drops[ICMP_RATE_LIMITED]!++;
          drops[TOO_BIG]!++;
          continue;
        }
        this.rewrite(arena, off, len, out.port);
        dst[i] = d;
        this.packetsByNode[out.node]!++;
        this.bytesByNode[out.node]! += len;
      } else if (kind === KIND.LOCAL) {
        if (out.port !== NO_PORT) {
          if (arena[off]! >>> 4 === 6) this.rewrite6(arena, off, len, out.port);
          else this.rewrite(arena, off, len, out.port);
        }
        if (splice !== null) splice.noteLocal(arena, off, len);
        lm[nLocal * META_STRIDE] = off;
        lm[nLocal * META_STRIDE + 1] = len;
        nLocal++;
      }
    }
    if (nLocal > 0) {
      this.localPackets[0]! += nLocal;
      this.o.source.writeLocal(arena, lm, 0, nLocal);
    }
    icmp.flush(this.o.sink);
    ptb.flush(this.o.source);
    // before the forwarded packets leave: the kernel holds the flows user space placed (least-
    // connections' first packets) before their node can answer, so the client's next segment finds its
    // entry there, and a shared connection's conntrack entry gets its node from it (flowSync)
    const end = this.batchEnd;
    if (end !== null) end();
    if (!this.backpressure.send(arena, meta, count, dst)) drops[SEND_BACKPRESSURE]!++;
  }

  /** rewrite applies box 570 (a new destination port) and clamps the MSS of TCP SYNs to the interconnect. */
  private rewrite(arena: Buffer, off: number, len: number, port: number): void {
    const ip = this.ip;
    if (ip.bind(arena, off, len) !== OK || ip.fragmentOffset !== 0) return;
    const p = ip.protocol;
    if (p === IPPROTO.TCP) {
      const t = this.tcp;
      if (t.bind(arena, ip.payloadOffset, ip.payloadLength) !== OK) return;
      if (port !== NO_PORT) t.setDstPort(port);
      if ((t.flags & TCP_FLAGS.SYN) !== 0 && t.clampMss(this.mssMax)) this.mssClamped[0]!++;
    } else if (p === IPPROTO.UDP && port !== NO_PORT && !ip.moreFragments) {
      const u = this.udp;
      if (u.bind(arena, ip.payloadOffset, ip.payloadLength) === OK) u.setDstPort(port);
    }
  }

  /**
   * rewrite6 is `rewrite` for an IPv6 packet: box 570 and the MSS clamp, at the upper-layer header the
   * extension-header walk found (the L4 checksum is updated incrementally, RFC 1624, so the pseudo-header
   * does not matter).
   */
  private rewrite6(arena: Buffer, off: number, len: number, port: number): void {
    const ip = this.ip6;
    if (ip.bind(arena, off, len) !== OK || ip.isFragment) return;
    const p = ip.upperProtocol;
    if (p === IPPROTO.TCP) {
      const t = this.tcp;
      if (t.bind(arena, ip.upperOffset, ip.upperLength) !== OK) return;
      if (port !== NO_PORT) t.setDstPort(port);
      if ((t.flags & TCP_FLAGS.SYN) !== 0 && t.clampMss(this.mssMax6)) this.mssClamped[0]!++;
    } else if (p === IPPROTO.UDP && port !== NO_PORT) {
      const u = this.udp;
      if (u.bind(arena, ip.upperOffset, ip.upperLength) === OK) u.setDstPort(port);
    }
  }

  /** stop pauses the source (the source and sink are closed by their owner). */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.o.source.pause();
  }
}
