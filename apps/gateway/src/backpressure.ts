import type { PacketSink, PacketSource } from './packet-io.js';

/**
 * Backpressure sends a batch to the sink and, when the sink takes only part of it, pauses the source
 * (so the batch's arena stays valid) and sends the rest when the sink is writable again: no packet is
 * lost or sent twice, and nothing spins while the socket is full.
 */
export class Backpressure {
  private arena: Uint8Array | null = null;
  private meta: Int32Array | null = null;
  private dst: Int32Array | null = null;
  private from = 0;
  private end = 0;
  private readonly retry = (): void => this.flush();

  /**
   * @param running whether the source may be resumed once the rest is sent (false after the loop
   *   stopped)
   */
  constructor(
    private readonly source: Pick<PacketSource, 'pause' | 'resume'>,
    private readonly sink: Pick<PacketSink, 'sendUdp' | 'onWritable'>,
    private readonly running: () => boolean,
  ) {}

  /** waiting is true while part of a batch waits for the sink. */
  get waiting(): boolean {
    return this.arena !== null;
  }

  /**
   * send sends packets [0, count) to their rows in `dst`. False when the sink took only part: the
   * source is paused, and arena, meta and dst must stay as they are until the rest is sent.
   */
  send(arena: Uint8Array, meta: Int32Array, count: number, dst: Int32Array): boolean {
    const next = this.sink.sendUdp(arena, meta, 0, count, dst);
    if (next >= count) return true;
    this.arena = arena;
    this.meta = meta;
    this.dst = dst;
    this.from = next;
    this.end = count;
    this.source.pause();
    this.sink.onWritable(this.retry);
    return false;
  }

  private flush(): void {
    const arena = this.arena;
    const meta = this.meta;
    const dst = this.dst;
    if (arena === null || meta === null || dst === null) return;
    const next = this.sink.sendUdp(arena, meta, this.from, this.end, dst);
    if (next < this.end) {
      this.from = next;
      this.sink.onWritable(this.retry);
      return;
    }
    this.arena = null;
    this.meta = null;
    this.dst = null;
    if (this.running()) this.source.resume();
  }
}
