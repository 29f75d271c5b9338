import { FlowMap, MSG, type Shift, shiftClientSegment, tsOption } from '@onehost/splice';
import { DecisionOut, KIND, type MessageSwitch, NO_PORT } from '@onehost/switch';
import { META_STRIDE } from '@onehost/tun';
import {
  IPPROTO,
  Ipv4View,
  OK,
  parseIpv4,
  parseMac,
  TCP_FLAGS,
  TcpView,
  UdpView,
  u32,
  VXLAN_OVERHEAD,
  writeVxlanPrefix,
} from '@onehost/wire';
import { Backpressure } from './backpressure.js';
import { DATAPATH_DROP, DATAPATH_DROPS } from './drops.js';
import { FragNeeded } from './frag-needed.js';
import type { PacketSink, PacketSource } from './packet-io.js';

/** A node the data path can send to: its switch id, interconnect address and VXLAN device MAC. */
export interface NodeEndpoint {
  id: number;
  address: string;
  mac: string;
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
  /** "fragmentation needed" messages per second at most (RFC 1812 §4.3.2.8 asks routers to limit them) */
  icmpPerSecond?: number;
  /** the UDP port node agents take spliced segments and handovers on (docs/splice.md) */
  splicePort: number;
}

/** A client's latest TCP timestamp and window on a flow the gateway still holds (delayed binding). */
export interface ClientTcpState {
  tsval: number;
  window: number;
}

const MAX_TRACKED = 65_536;

const MAX_NODE_ID = 0xffff;
const NO_DESTINATION = DATAPATH_DROP.no_destination;
const TOO_BIG = DATAPATH_DROP.too_big;
const SEND_BACKPRESSURE = DATAPATH_DROP.send_backpressure;
const ICMP_RATE_LIMITED = DATAPATH_DROP.icmp_rate_limited;

/**
 * Datapath is the gateway's packet loop: a batch from the source (the TUN) → the message switch →
 * VXLAN to nodes through the sink (one sendmmsg per batch), `local` packets back to the source for the
 * host's own stack. Per packet it allocates nothing and logs nothing; it counts.
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

  private readonly destOf = new Int32Array(MAX_NODE_ID + 1).fill(-1);
  /** rows of the destination table for a node's agent: client segments (type 2), and handovers */
  private readonly spliceOf = new Int32Array(MAX_NODE_ID + 1).fill(-1);
  private readonly handoverOf = new Int32Array(MAX_NODE_ID + 1).fill(-1);
  /** ports whose TCP the gateway holds until a record routes it: their clients' TSval and window */
  private readonly splicePorts = new Uint8Array(65_536);
  private readonly clientTcp = new FlowMap<ClientTcpState>();
  /** spliced flows whose offsets the node's agent told us: shifted here and sent to the node's kernel */
  private readonly shifts = new FlowMap<Shift>();
  /** spliced segments shifted here (sent to the node's kernel) and sent to the agent */
  readonly splicedShifted = new Float64Array(1);
  readonly splicedToAgent = new Float64Array(1);
  private readonly msgArena = Buffer.alloc(65_536);
  private readonly msgMeta = new Int32Array(META_STRIDE);
  private readonly msgDst = new Int32Array(1);
  private readonly msgSport = new Int32Array(1);
  private readonly dst: Int32Array;
  private readonly localMeta: Int32Array;
  private readonly fragNeeded: FragNeeded;
  private readonly backpressure: Backpressure;
  private readonly out = new DecisionOut();
  private readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();
  private readonly clock: () => number;
  private readonly maxInner: number;
  private readonly mssMax: number;
  private readonly gatewayMac: Uint8Array;
  private running = false;

  constructor(private readonly o: DatapathOptions) {
    this.clock = o.clock ?? Date.now;
    this.dst = new Int32Array(o.maxBatch);
    this.localMeta = new Int32Array(o.maxBatch * META_STRIDE);
    this.maxInner = o.interconnectMtu - VXLAN_OVERHEAD;
    // RFC 9293 §3.7.1: MSS = MTU - 40 for IPv4 + TCP headers without options.
    this.mssMax = this.maxInner - 40;
    this.gatewayMac = parseMac(o.gatewayMac);
    this.fragNeeded = new FragNeeded(this.maxInner, o.icmpPerSecond ?? 100);
    this.backpressure = new Backpressure(o.source, o.sink, () => this.running);
  }

  /**
   * setNodes replaces the destination table (control plane; between batches): per node its VXLAN
   * device, and its agent's splice port for spliced segments (type byte 2) and handovers. Throws on a
   * bad address or MAC.
   */
  setNodes(nodes: readonly NodeEndpoint[]): void {
    const segment = Uint8Array.of(MSG.SEGMENT);
    const table = nodes.flatMap((n) => {
      const prefix = new Uint8Array(22);
      writeVxlanPrefix(prefix, 0, this.o.vni, parseMac(n.mac), this.gatewayMac);
      parseIpv4(n.address);
      return [
        { address: n.address, port: this.o.vxlanPort, prefix },
        { address: n.address, port: this.o.splicePort, prefix: segment },
        { address: n.address, port: this.o.splicePort },
      ];
    });
    this.o.sink.setDestinations(table);
    this.destOf.fill(-1);
    this.spliceOf.fill(-1);
    this.handoverOf.fill(-1);
    nodes.forEach((n, i) => {
      if (n.id < 0 || n.id > MAX_NODE_ID) return;
      this.destOf[n.id] = 3 * i;
      this.spliceOf[n.id] = 3 * i + 1;
      this.handoverOf[n.id] = 3 * i + 2;
    });
  }

  /** setSplicePorts names the TCP ports whose connections the gateway holds until a record routes them. */
  setSplicePorts(ports: readonly number[]): void {
    this.splicePorts.fill(0);
    for (const p of ports) if (p > 0 && p < 65_536) this.splicePorts[p] = 1;
  }

  /** clientTcpState returns what the gateway last saw of a held flow's client (TSval 0 without timestamps). */
  clientTcpState(client: number, clientPort: number): ClientTcpState | undefined {
    const v = this.clientTcp.get(client, clientPort);
    return v === undefined ? undefined : { ...v };
  }

  /** forgetClient drops the tracked state of a flow (handed over or closed). */
  forgetClient(client: number, clientPort: number): void {
    this.clientTcp.delete(client, clientPort);
  }

  /**
   * sendHandover sends one handover datagram (docs/splice.md) to node `node`'s agent; false when the
   * node has no destination or the socket would block.
   */
  sendHandover(node: number, message: Uint8Array): boolean {
    const d = node >= 0 && node <= MAX_NODE_ID ? this.handoverOf[node]! : -1;
    if (d < 0 || message.length > this.msgArena.length) return false;
    this.msgArena.set(message, 0);
    this.msgMeta[0] = 0;
    this.msgMeta[1] = message.length;
    this.msgDst[0] = d;
    this.msgSport[0] = this.o.splicePort;
    return this.o.sink.sendUdp(this.msgArena, this.msgMeta, 0, 1, this.msgDst, this.msgSport) === 1;
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
    const now = this.clock();
    let nLocal = 0;
    this.batches[0]!++;
    for (let i = 0; i < count; i++) {
      const off = meta[i * META_STRIDE]!;
      const len = meta[i * META_STRIDE + 1]!;
      dst[i] = -1;
      const kind = sw.decide(arena, off, len, now, out);
      if (kind === KIND.FORWARD && out.spliced) {
        const d = this.shiftHere(arena, off, len) ? this.destOf[out.node]! : this.spliceOf[out.node]!;
        if (d < 0) {
          drops[NO_DESTINATION]!++;
          continue;
        }
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
        if (out.port !== NO_PORT) this.rewrite(arena, off, len, out.port);
        this.trackClient(arena, off, len);
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
    if (!this.backpressure.send(arena, meta, count, dst)) drops[SEND_BACKPRESSURE]!++;
  }

  /** setShift records the offsets of a spliced flow (from its node's agent, docs/splice.md). */
  setShift(shift: Shift): void {
    const map = this.shifts;
    if (!map.has(shift.clientAddr, shift.clientPort) && map.size >= MAX_TRACKED) map.deleteOldest();
    map.set(shift.clientAddr, shift.clientPort, shift);
  }

  /** shiftCount is the number of spliced flows the gateway shifts itself. */
  get shiftCount(): number {
    return this.shifts.size;
  }

  /**
   * shiftHere rewrites a spliced client segment into the node's view when the flow's offsets are known,
   * so it can go to the node's kernel directly; FIN and RST still go to the agent, which tracks the end
   * of the flow (and forgets it here on RST). False: send it to the agent as it is.
   */
  private shiftHere(arena: Buffer, off: number, len: number): boolean {
    const ip = this.ip;
    if (ip.bind(arena, off, len) !== OK || ip.protocol !== IPPROTO.TCP || ip.isFragment) return false;
    const t = this.tcp;
    if (t.bind(arena, ip.payloadOffset, ip.payloadLength) !== OK) return false;
    const sh = this.shifts.get(ip.src, t.srcPort);
    if (sh === undefined || sh.clusterPort !== t.dstPort) {
      this.splicedToAgent[0]!++;
      return false;
    }
    const flags = t.flags;
    if ((flags & (TCP_FLAGS.FIN | TCP_FLAGS.RST | TCP_FLAGS.SYN)) !== 0) {
      if ((flags & (TCP_FLAGS.RST | TCP_FLAGS.SYN)) !== 0) this.shifts.delete(ip.src, t.srcPort);
      this.splicedToAgent[0]!++;
      return false;
    }
    shiftClientSegment(t, sh.nodePort, sh.sOff, sh.tsOff);
    this.splicedShifted[0]!++;
    return true;
  }

  /** trackClient remembers the TSval and window of a client whose TCP flow the gateway holds (splice ports). */
  private trackClient(arena: Buffer, off: number, len: number): void {
    const ip = this.ip;
    if (ip.bind(arena, off, len) !== OK || ip.protocol !== IPPROTO.TCP || ip.fragmentOffset !== 0) return;
    const t = this.tcp;
    if (t.bind(arena, ip.payloadOffset, ip.payloadLength) !== OK || this.splicePorts[t.dstPort] === 0) return;
    const i = tsOption(t);
    const tsval = i >= 0 ? u32(arena, i + 2) : 0;
    const seen = this.clientTcp.get(ip.src, t.srcPort);
    if (seen !== undefined) {
      seen.tsval = tsval;
      seen.window = t.window;
      return;
    }
    if (this.clientTcp.size >= MAX_TRACKED) this.clientTcp.deleteOldest();
    this.clientTcp.set(ip.src, t.srcPort, { tsval, window: t.window });
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

  /** stop pauses the source (the source and sink are closed by their owner). */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.o.source.pause();
  }
}
