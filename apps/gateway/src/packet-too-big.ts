import { ICMP6_TYPE, IPPROTO_ICMPV6, IPV6_MIN_MTU, Ipv6View, OK, writePacketTooBig } from '@onehost/wire';
import { ANSWERS_PER_BATCH, IcmpAnswers } from './frag-needed.js';
import type { PacketSource } from './packet-io.js';

/** The most answers one batch collects; the packets past it are dropped without one. */
export const PACKET_TOO_BIG_PER_BATCH = ANSWERS_PER_BATCH;

/**
 * PacketTooBig is FragNeeded's IPv6 twin: it collects a batch's ICMPv6 Packet Too Big answers (RFC 4443
 * §3.2) to packets too big for the interconnect, within the token bucket (§2.4 (f)); `flush` writes them
 * into the TUN, and the host's stack routes them to the clients (the raw socket the IPv4 answers leave
 * by is IPv4 only).
 */
export class PacketTooBig extends IcmpAnswers {
  private readonly ip = new Ipv6View();

  constructor(mtu: number, perSecond: number) {
    super(mtu, perSecond, IPV6_MIN_MTU);
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
    if (ip.bind(arena, off, len) !== OK || !answerable(ip)) return false;
    const at = this.reserve(now);
    return at >= 0 && this.commit(at, writePacketTooBig(this.arena, at, ip, arena, ip.dstOffset, this.mtu));
  }

  /** flush writes the collected answers into the TUN (those it refuses are lost, as ICMP may be) and starts over. */
  flush(source: Pick<PacketSource, 'writeLocal'>): void {
    if (this.count === 0) return;
    this.done(source.writeLocal(this.arena, this.meta, 0, this.count));
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
