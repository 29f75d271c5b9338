import { FlowMap, FlowMap6, tsOption } from '@onehost/splice';
import { IPPROTO, Ipv4View, Ipv6View, OK, TCP_FLAGS, TcpView, u32 } from '@onehost/wire';

/** A client's latest TCP timestamp and window on a flow the gateway still holds (delayed binding). */
export interface ClientTcpState {
  tsval: number;
  window: number;
}

/** Flows tracked at most; the oldest goes first. */
const MAX_FLOWS = 65_536;

/**
 * ClientTcp remembers, for the TCP connections the gateway's stack holds until a record routes them
 * (the splice ports), the client's latest TSval and window: the handover tells the node's agent both,
 * and the host's stack does not expose them.
 */
export class ClientTcp {
  private readonly ports = new Uint8Array(65_536);
  private readonly flows = new FlowMap<ClientTcpState>();
  private readonly flows6 = new FlowMap6<ClientTcpState>();
  private readonly ip = new Ipv4View();
  private readonly ip6 = new Ipv6View();
  private readonly tcp = new TcpView();
  /** told of each client SYN to a splice port: a new connection, which may reuse a spliced flow's ports */
  onSyn: ((client: number | Uint8Array, clientPort: number, port: number) => void) | null = null;

  /** setPorts names the TCP ports whose connections the gateway holds (it forgets none it tracks). */
  setPorts(ports: readonly number[]): void {
    this.ports.fill(0);
    for (const p of ports) if (p > 0 && p < 65_536) this.ports[p] = 1;
  }

  /** note reads a packet for the host's stack: a client segment to a splice port updates its flow. */
  note(arena: Uint8Array, off: number, len: number): void {
    if (len > 0 && arena[off]! >>> 4 === 6) {
      this.note6(arena, off, len);
      return;
    }
    const ip = this.ip;
    if (ip.bind(arena, off, len) !== OK || ip.protocol !== IPPROTO.TCP || ip.fragmentOffset !== 0) return;
    const t = this.tcp;
    if (t.bind(arena, ip.payloadOffset, ip.payloadLength) !== OK || this.ports[t.dstPort] === 0) return;
    const i = tsOption(t);
    const tsval = i >= 0 ? u32(arena, i + 2) : 0;
    const src = ip.srcI32; // int32: `ip.src` of 2^31 or more may come back boxed
    if ((t.flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK)) === TCP_FLAGS.SYN)
      this.onSyn?.(src, t.srcPort, t.dstPort);
    const seen = this.flows.get(src, t.srcPort);
    if (seen !== undefined) {
      seen.tsval = tsval;
      seen.window = t.window;
      return;
    }
    if (this.flows.size >= MAX_FLOWS) this.flows.deleteOldest();
    this.flows.set(src, t.srcPort, { tsval, window: t.window });
  }

  /** note6 is `note` for an IPv6 packet (the spliced flows of an IPv6 client are not shifted here). */
  private note6(arena: Uint8Array, off: number, len: number): void {
    const ip = this.ip6;
    if (ip.bind(arena, off, len) !== OK || ip.upperProtocol !== IPPROTO.TCP || !ip.isFirstFragment) return;
    const t = this.tcp;
    if (t.bind(arena, ip.upperOffset, ip.upperLength) !== OK || this.ports[t.dstPort] === 0) return;
    const i = tsOption(t);
    const tsval = i >= 0 ? u32(arena, i + 2) : 0;
    // a new connection, which may reuse a spliced flow's ports (the address copied: rare)
    if ((t.flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK)) === TCP_FLAGS.SYN && this.onSyn !== null)
      this.onSyn(arena.slice(ip.srcOffset, ip.srcOffset + 16), t.srcPort, t.dstPort);
    const seen = this.flows6.get(arena, ip.srcOffset, t.srcPort);
    if (seen !== undefined) {
      seen.tsval = tsval;
      seen.window = t.window;
      return;
    }
    if (this.flows6.size >= MAX_FLOWS) this.flows6.deleteOldest();
    this.flows6.set(arena.subarray(ip.srcOffset, ip.srcOffset + 16), t.srcPort, { tsval, window: t.window });
  }

  /**
   * get returns a copy of what was last seen of a flow's client (TSval 0 without timestamps): an IPv4
   * address as a number, an IPv6 one as its 16 bytes.
   */
  get(client: number | Uint8Array, clientPort: number): ClientTcpState | undefined {
    const v =
      typeof client === 'number'
        ? this.flows.get(client, clientPort)
        : this.flows6.get(client, 0, clientPort);
    return v === undefined ? undefined : { ...v };
  }

  /** forget drops a flow (handed over or closed). */
  forget(client: number | Uint8Array, clientPort: number): void {
    if (typeof client === 'number') this.flows.delete(client, clientPort);
    else this.flows6.delete(client, 0, clientPort);
  }

  /** size is the number of flows tracked. */
  get size(): number {
    return this.flows.size + this.flows6.size;
  }
}
