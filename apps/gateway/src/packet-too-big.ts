import { META_STRIDE } from '@onehost/tun';
import { ICMP6_TYPE, IPPROTO_ICMPV6, IPV6_MIN_MTU, Ipv6View, OK, writePacketTooBig } from '@onehost/wire';
import { TokenBucket } from './frag-needed.js';
import type { PacketSource } from './packet-io.js';

/** The most answers one batch collects; the packets past it are dropped without one. */
export const PACKET_TOO_BIG_PER_BATCH = 64;

/**
 * PacketTooBig is FragNeeded's IPv6 twin: it collects a batch's ICMPv6 Packet Too Big answers (RFC 4443
 * §3.2) to packets too big for the interconnect, within a token bucket (§2.4 (f)), in a preallocated
 * arena; `flush` writes them into the TUN, and the host's stack routes them to the clients (the raw
 * socket the IPv4 answers leave by is IPv4 only).
 */
export class PacketTooBig {
  /** answers collected since the last flush */
  count = 0;
  /** answers flushed */
  readonly sent = new Float64Array(1);
  private readonly arena = Buffer.alloc(PACKET_TOO_BIG_PER_BATCH * IPV6_MIN_MTU);
  private readonly meta = new Int32Array(PACKET_TOO_BIG_PER_BATCH * META_STRIDE);
  private readonly ip = new Ipv6View();
  private readonly bucket: TokenBucket;

  /**
   * @param mtu the MTU the answers announce (the largest inner packet the interconnect takes)
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
    return this.count >= PACKET_TOO_BIG_PER_BATCH;
  }

  /**
   * answer collects an answer to the IPv6 packet at arena[off, off + len), from its own destination (the
   * cluster address, RFC 4443 §2.2). False when the bucket is empty, the header is unreadable, or RFC
   * 4443 §2.4 (e) forbids an answer (an ICMPv6 error; a multicast or unspecified source): nothing was
   * collected. The caller checks `full` first.
   */
  answer(arena: Uint8Array, off: number, len: number, now: number): boolean {
    const ip = this.ip;
    // An unreadable or forbidden packet spends no token.
    if (ip.bind(arena, off, len) !== OK || !answerable(ip) || !this.bucket.take(now)) return false;
    const n = this.count;
    const at = n * IPV6_MIN_MTU;
    this.meta[n * META_STRIDE] = at;
    this.meta[n * META_STRIDE + 1] = writePacketTooBig(this.arena, at, ip, arena, ip.dstOffset, this.mtu);
    this.count = n + 1;
    return true;
  }

  /** flush writes the collected answers into the TUN (those it refuses are lost, as ICMP may be) and starts over. */
  flush(source: Pick<PacketSource, 'writeLocal'>): void {
    if (this.count === 0) return;
    this.sent[0]! += source.writeLocal(this.arena, this.meta, 0, this.count);
    this.count = 0;
  }
}

/** answerable: RFC 4443 §2.4 (e) lets us answer the packet (not an ICMPv6 error, a unicast source). */
function answerable(ip: Ipv6View): boolean {
  const b = ip.buf;
  const s = ip.srcOffset;
  // (e.3)-(e.6): multicast (ff00::/8) or unspecified (::) sources have nobody to answer
  if (b[s] === 0xff) return false;
  let any = 0;
  for (let i = 0; i < 16; i++) any |= b[s + i]!;
  if (any === 0) return false;
  // (e.1): never an error about an error (a non-first fragment's upper layer is not here: answer it)
  return !(
    ip.upperProtocol === IPPROTO_ICMPV6 &&
    ip.isFirstFragment &&
    ip.upperLength > 0 &&
    b[ip.upperOffset]! < ICMP6_TYPE.ECHO_REQUEST
  );
}
