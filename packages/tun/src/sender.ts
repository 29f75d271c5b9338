import { binding, type NativeSender, type SenderStats } from './native.js';

/** Options for a {@link PacketSender}. */
export interface SenderOptions {
  /** Open the socket in this network namespace (name or path). */
  netns?: string;
  /** Outer source address; absent lets the kernel choose by route. */
  source?: string;
  ttl?: number;
  /** Outer source ports chosen by flow hash fall in [portMin, portMax] (default 49152..65535, RFC 7348 §5). */
  portMin?: number;
  portMax?: number;
  /** Socket send buffer in bytes (SO_SNDBUFFORCE). */
  sendBuffer?: number;
  /**
   * Packet mark (SO_MARK, an integer 0..0xffffffff) on everything this socket sends, for nftables
   * (`meta mark`) and policy routing (`ip rule fwmark`). Needs CAP_NET_ADMIN (or CAP_NET_RAW on Linux
   * 5.17 and later). Absent: no mark.
   */
  mark?: number;
}

/** One row of the destination table. */
export interface Destination {
  /** IPv4 address of the node. */
  address: string;
  /** UDP destination port (4789 for VXLAN, RFC 7348 §5). */
  port: number;
  /** Bytes sent between the UDP header and the packet (≤ 64): e.g. VXLAN header + inner Ethernet header. */
  prefix?: Uint8Array;
}

/**
 * PacketSender owns a raw IPv4 socket (IPPROTO_RAW) and sends batches with sendmmsg: UDP datagrams to
 * a destination table with a destination and an outer source port per packet, or complete IPv4 packets.
 */
export class PacketSender {
  private constructor(private readonly native: NativeSender) {}

  /**
   * open creates the socket. Throws TUN_PERMISSION (no CAP_NET_RAW; for `mark` before Linux 5.17, no
   * CAP_NET_ADMIN), TUN_NETNS or TUN_BAD_ARGUMENT (e.g. a mark that is not an integer 0..0xffffffff).
   */
  static open(options: SenderOptions = {}): PacketSender {
    return new PacketSender(new binding.Sender(options));
  }

  /**
   * setDestinations replaces the destination table (index = the value written into `dst`). Throws
   * TUN_BAD_ARGUMENT for a bad address, port or prefix, leaving the old table in place.
   */
  setDestinations(table: readonly Destination[]): void {
    this.native.setDestinations(
      table.map((d) => d.address),
      table.map((d) => d.port),
      table.map((d) => d.prefix ?? null),
    );
  }

  /**
   * sendUdp sends packets [start, end) of a batch, packet i to table[dst[i]] inside IPv4/UDP (UDP
   * checksum 0, RFC 7348 §5) after that destination's prefix; dst[i] < 0 skips the packet. The outer
   * source port is sport[i] when given and nonzero, else a hash of the inner flow. Returns the index of
   * the first packet not sent: `end`, or less when the socket buffer is full (resume after
   * `onWritable`). Bad rows are counted and skipped. Throws only for wrong argument types.
   */
  sendUdp(
    arena: Uint8Array,
    meta: Int32Array,
    start: number,
    end: number,
    dst: Int32Array,
    sport: Int32Array | null = null,
  ): number {
    return this.native.sendUdp(arena, meta, start, end, dst, sport);
  }

  /**
   * sendIp sends complete IPv4 packets [start, end) to the destination in each header (the kernel fills
   * total length, id when 0 and the header checksum). Same return contract as `sendUdp`.
   */
  sendIp(arena: Uint8Array, meta: Int32Array, start: number, end: number): number {
    return this.native.sendIp(arena, meta, start, end);
  }

  /** onWritable calls `callback` once, when the socket buffer has room again. */
  onWritable(callback: () => void): void {
    this.native.onWritable(callback);
  }

  /** flowPort returns the outer source port sendUdp picks for this inner packet. */
  flowPort(packet: Uint8Array): number {
    return this.native.flowPort(packet);
  }

  /** stats returns the sender's counters. */
  stats(): SenderStats {
    return this.native.stats();
  }

  /** close releases the socket. Safe to call twice. */
  close(): void {
    this.native.close();
  }

  /** nativeSender is the addon object (for forwardC). */
  get nativeSender(): NativeSender {
    return this.native;
  }
}
