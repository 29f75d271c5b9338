import type { Destination, TunQueue } from '@onehost/tun';

/**
 * BatchHandler takes one batch: packet i is `arena[meta[i * META_STRIDE] .. + meta[i * META_STRIDE + 1])`
 * (META_STRIDE from `@onehost/tun`). The contents stay valid until it returns or, if it paused the
 * source, until `resume`.
 */
export type BatchHandler = (count: number, arena: Buffer, meta: Int32Array) => void;

/**
 * PacketSource is where the data path's packets come from (the TUN queue in the gateway, an in-memory
 * one in tests), and where the packets for the host's own stack go back to.
 */
export interface PacketSource {
  /** receive starts calling `handler` with batches of 1..maxBatch packets. */
  receive(handler: BatchHandler, maxBatch: number): void;
  /** pause stops the batches; the last batch's arena keeps its contents until `resume`. */
  pause(): void;
  /** resume restarts the batches after `pause`. */
  resume(): void;
  /**
   * writeLocal hands packets [start, end) to the host's stack; returns the index of the first packet not
   * taken (`end` when all were).
   */
  writeLocal(arena: Uint8Array, meta: Int32Array, start: number, end: number): number;
}

/**
 * PacketSink is where the data path sends: UDP (VXLAN and the splice messages) to a table of
 * destinations, and complete IPv4 packets (its ICMP). `PacketSender` from `@onehost/tun` is one as it
 * is; tests use an in-memory one.
 */
export interface PacketSink {
  /** setDestinations replaces the destination table; throws for a bad row, keeping the old table. */
  setDestinations(table: readonly Destination[]): void;
  /**
   * sendUdp sends packets [start, end), packet i to row dst[i] (< 0: skipped), with outer source port
   * sport[i] when given and nonzero. Returns the index of the first packet not sent: `end`, or less
   * when the sink is full (go on after `onWritable`).
   */
  sendUdp(
    arena: Uint8Array,
    meta: Int32Array,
    start: number,
    end: number,
    dst: Int32Array,
    sport?: Int32Array | null,
  ): number;
  /** sendIp sends complete IPv4 packets [start, end) to their own destinations; same return as sendUdp. */
  sendIp(arena: Uint8Array, meta: Int32Array, start: number, end: number): number;
  /** onWritable calls `callback` once, when the sink can take packets again. */
  onWritable(callback: () => void): void;
}

/** TunSource is the gateway's PacketSource: a TUN queue, `local` packets written back into it. */
export class TunSource implements PacketSource {
  constructor(private readonly queue: TunQueue) {}

  /** receive starts the queue's batched reads. Throws TUN_BAD_ARGUMENT for a bad maxBatch, TUN_CLOSED after close. */
  receive(handler: BatchHandler, maxBatch: number): void {
    this.queue.receive(handler, { maxBatch });
  }

  pause(): void {
    this.queue.pause();
  }

  resume(): void {
    this.queue.resume();
  }

  writeLocal(arena: Uint8Array, meta: Int32Array, start: number, end: number): number {
    return this.queue.writeBatch(arena, meta, start, end);
  }
}
