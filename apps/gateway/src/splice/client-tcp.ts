import { FlowMap, FlowMap6, TcpSegmentView, tsOption } from '@onehost/splice';
import { TCP_FLAGS, u32 } from '@onehost/wire';

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
  private readonly seg = new TcpSegmentView();
  /** told of each client SYN to a splice port: a new connection, which may reuse a spliced flow's ports */
  onSyn: ((client: number | Uint8Array, clientPort: number, port: number) => void) | null = null;

  /** setPorts names the TCP ports whose connections the gateway holds (it forgets none it tracks). */
  setPorts(ports: readonly number[]): void {
    this.ports.fill(0);
    for (const p of ports) if (p > 0 && p < 65_536) this.ports[p] = 1;
  }

  /** note reads a packet for the host's stack: a client segment to a splice port updates its flow. */
  note(arena: Uint8Array, off: number, len: number): void {
    const seg = this.seg;
    if (!seg.bind(arena, off, len)) return;
    const t = seg.tcp;
    if (this.ports[t.dstPort] === 0) return;
    const i = tsOption(t);
    const tsval = i >= 0 ? u32(arena, i + 2) : 0;
    const six = seg.six;
    if ((t.flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK)) === TCP_FLAGS.SYN && this.onSyn !== null)
      // a new connection, which may reuse a spliced flow's ports (an IPv6 address copied: rare)
      this.onSyn(six ? arena.slice(seg.srcAt, seg.srcAt + 16) : seg.src4, t.srcPort, t.dstPort);
    const seen = six ? this.flows6.get(arena, seg.srcAt, t.srcPort) : this.flows.get(seg.src4, t.srcPort);
    if (seen !== undefined) {
      seen.tsval = tsval;
      seen.window = t.window;
      return;
    }
    const entry = { tsval, window: t.window };
    if (six) {
      if (this.flows6.size >= MAX_FLOWS) this.flows6.deleteOldest();
      this.flows6.set(arena.subarray(seg.srcAt, seg.srcAt + 16), t.srcPort, entry);
    } else {
      if (this.flows.size >= MAX_FLOWS) this.flows.deleteOldest();
      this.flows.set(seg.src4, t.srcPort, entry);
    }
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
