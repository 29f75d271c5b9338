import { META_STRIDE } from '@onehost/tun';
import { Ipv4View, OK, writeFragNeeded } from '@onehost/wire';
import type { PacketSink } from './packet-io.js';

/**
 * TokenBucket lets `perSecond` events through per one-second window, counted from the first event
 * after the previous window ended (RFC 1812 §4.3.2.8 asks routers to limit their ICMP errors).
 */
export class TokenBucket {
  private tokens: number;
  private refillAt = 0;

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  /** take spends a token at time `now` (ms); false when none is left in this window. */
  take(now: number): boolean {
    if (now >= this.refillAt) {
      this.tokens = this.perSecond;
      this.refillAt = now + 1000;
    }
    if (this.tokens <= 0) return false;
    this.tokens--;
    return true;
  }
}

/** The most answers one batch collects; the packets past it are dropped without one. */
export const FRAG_NEEDED_PER_BATCH = 64;
/** Room per answer: IPv4 + ICMP headers and the quoted header (≤ 60) with 8 bytes of its data. */
const SLOT = 128;

/**
 * FragNeeded collects a batch's ICMP "fragmentation needed" answers (RFC 792 type 3 code 4, with the
 * next-hop MTU of RFC 1191) to DF packets too big for the interconnect, within a token bucket, in a
 * preallocated arena; `flush` sends them.
 */
export class FragNeeded {
  /** answers collected since the last flush */
  count = 0;
  /** answers the sink took */
  readonly sent = new Float64Array(1);
  private readonly arena = Buffer.alloc(FRAG_NEEDED_PER_BATCH * SLOT);
  private readonly meta = new Int32Array(FRAG_NEEDED_PER_BATCH * META_STRIDE);
  private readonly ip = new Ipv4View();
  private readonly bucket: TokenBucket;

  /**
   * @param mtu the next-hop MTU the answers announce (the largest inner packet the interconnect takes)
   * @param perSecond answers per second at most
   */
  constructor(
    private readonly mtu: number,
    perSecond: number,
  ) {
    this.bucket = new TokenBucket(perSecond);
  }

  /** full is true when this batch has no room for another answer. */
  get full(): boolean {
    return this.count >= FRAG_NEEDED_PER_BATCH;
  }

  /**
   * answer collects an answer to the packet at arena[off, off + len), from its own destination (the
   * cluster address, as a router on the path would answer). False when the bucket is empty or the
   * header is unreadable: nothing was collected. The caller checks `full` first.
   */
  answer(arena: Uint8Array, off: number, len: number, now: number): boolean {
    // An unreadable header spends no token.
    if (this.ip.bind(arena, off, len) !== OK || !this.bucket.take(now)) return false;
    const n = this.count;
    const at = n * SLOT;
    this.meta[n * META_STRIDE] = at;
    this.meta[n * META_STRIDE + 1] = writeFragNeeded(this.arena, at, this.ip, this.ip.dst, this.mtu);
    this.count = n + 1;
    return true;
  }

  /** flush sends the collected answers (those the sink refuses are lost, as ICMP may be) and starts over. */
  flush(sink: Pick<PacketSink, 'sendIp'>): void {
    if (this.count === 0) return;
    this.sent[0]! += sink.sendIp(this.arena, this.meta, 0, this.count);
    this.count = 0;
  }
}
