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
export const ANSWERS_PER_BATCH = 64;
export const FRAG_NEEDED_PER_BATCH = ANSWERS_PER_BATCH;
/** Room per answer: IPv4 + ICMP headers and the quoted header (≤ 60) with 8 bytes of its data. */
const SLOT = 128;

/**
 * IcmpAnswers collects a batch's ICMP answers to packets too big for the interconnect, within a token
 * bucket, in a preallocated arena of `slot` bytes per answer; each family's class writes its message and
 * flushes the batch where its answers leave.
 */
export abstract class IcmpAnswers {
  /** answers collected since the last flush */
  count = 0;
  /** answers flushed */
  readonly sent = new Float64Array(1);
  protected readonly arena: Buffer;
  protected readonly meta = new Int32Array(ANSWERS_PER_BATCH * META_STRIDE);
  private readonly bucket: TokenBucket;

  /**
   * @param mtu the MTU the answers announce (the largest inner packet the interconnect takes)
   * @param perSecond answers per second at most
   */
  constructor(
    protected readonly mtu: number,
    perSecond: number,
    private readonly slot: number,
  ) {
    this.bucket = new TokenBucket(perSecond);
    this.arena = Buffer.alloc(ANSWERS_PER_BATCH * slot);
  }

  /** full is true when this batch has no room for another answer. */
  get full(): boolean {
    return this.count >= ANSWERS_PER_BATCH;
  }

  /**
   * reserve spends a token and returns where the next answer goes in the arena, or -1 when no token is
   * left; `commit` then keeps it (no closure: nothing allocated per packet).
   */
  protected reserve(now: number): number {
    return this.bucket.take(now) ? this.count * this.slot : -1;
  }

  /** commit keeps the answer of `len` bytes written at the reserved offset `at`. */
  protected commit(at: number, len: number): true {
    const n = this.count;
    this.meta[n * META_STRIDE] = at;
    this.meta[n * META_STRIDE + 1] = len;
    this.count = n + 1;
    return true;
  }

  /** done counts what left and starts a new batch. */
  protected done(sent: number): void {
    this.sent[0]! += sent;
    this.count = 0;
  }
}

/**
 * FragNeeded collects a batch's ICMP "fragmentation needed" answers (RFC 792 type 3 code 4, with the
 * next-hop MTU of RFC 1191) to DF packets too big for the interconnect; `flush` sends them.
 */
export class FragNeeded extends IcmpAnswers {
  private readonly ip = new Ipv4View();

  constructor(mtu: number, perSecond: number) {
    super(mtu, perSecond, SLOT);
  }

  /**
   * answer collects an answer to the packet at arena[off, off + len), from its own destination (the
   * cluster address, as a router on the path would answer). False when the bucket is empty or the
   * header is unreadable: nothing was collected. The caller checks `full` first.
   */
  answer(arena: Uint8Array, off: number, len: number, now: number): boolean {
    // An unreadable header spends no token.
    if (this.ip.bind(arena, off, len) !== OK) return false;
    const at = this.reserve(now);
    return at >= 0 && this.commit(at, writeFragNeeded(this.arena, at, this.ip, this.ip.dst, this.mtu));
  }

  /** flush sends the collected answers (those the sink refuses are lost, as ICMP may be) and starts over. */
  flush(sink: Pick<PacketSink, 'sendIp'>): void {
    if (this.count === 0) return;
    this.done(sink.sendIp(this.arena, this.meta, 0, this.count));
  }
}
