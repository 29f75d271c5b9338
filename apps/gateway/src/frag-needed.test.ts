import { udpPacket } from '@onehost/switch/testing';
import { META_STRIDE } from '@onehost/tun';
import { checksum, IcmpView, IPPROTO, Ipv4View, OK, parseIpv4, put16 } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { FRAG_NEEDED_PER_BATCH, FragNeeded, TokenBucket } from './frag-needed.js';
import type { PacketSink } from './packet-io.js';

const CLIENT = '203.0.113.7';
const VIP = '203.0.113.10';

/** bigDf is a UDP datagram of `size` bytes in all with Don't Fragment set (header checksum fixed). */
function bigDf(size: number): Uint8Array {
  const p = udpPacket({
    src: CLIENT,
    dst: VIP,
    srcPort: 5000,
    dstPort: 53,
    payload: new Uint8Array(size - 28),
  });
  p[6] = p[6]! | 0x40;
  put16(p, 10, 0);
  put16(p, 10, checksum(p, 0, 20));
  return p;
}

/** IpSink records what sendIp is given (copies) and takes all of it. */
class IpSink implements Pick<PacketSink, 'sendIp'> {
  readonly sent: Uint8Array[] = [];
  calls = 0;
  sendIp(arena: Uint8Array, meta: Int32Array, start: number, end: number): number {
    this.calls++;
    for (let i = start; i < end; i++) {
      const off = meta[i * META_STRIDE]!;
      this.sent.push(arena.slice(off, off + meta[i * META_STRIDE + 1]!));
    }
    return end;
  }
}

describe('TokenBucket', () => {
  it('lets perSecond through per window; a window starts at the first take after the last one ended', () => {
    const b = new TokenBucket(2);
    expect([b.take(0), b.take(10), b.take(500), b.take(999)]).toEqual([true, true, false, false]);
    expect([b.take(1000), b.take(1999), b.take(1999)]).toEqual([true, true, false]);
    // Idle past the window: the next take opens a new one at 5000, which lasts to 6000.
    expect([b.take(5000), b.take(5999), b.take(5999), b.take(6000)]).toEqual([true, true, false, true]);
  });

  it('lets nothing through at 0 per second', () => {
    const b = new TokenBucket(0);
    expect([b.take(0), b.take(1000), b.take(99_999)]).toEqual([false, false, false]);
  });
});

describe('FragNeeded', () => {
  it('answers from the cluster address to the sender: type 3 code 4, the MTU, the quoted header and 8 bytes', () => {
    const f = new FragNeeded(1450, 100);
    const p = bigDf(1500);
    expect(f.answer(p, 0, p.length, 0)).toBe(true);
    expect(f.count).toBe(1);
    const sink = new IpSink();
    f.flush(sink);
    expect(f.count).toBe(0);
    expect(sink.sent.length).toBe(1);
    const a = sink.sent[0]!;
    const ip = new Ipv4View();
    expect(ip.bind(a, 0, a.length)).toBe(OK);
    expect(ip.src).toBe(parseIpv4(VIP));
    expect(ip.dst).toBe(parseIpv4(CLIENT));
    expect(ip.protocol).toBe(IPPROTO.ICMP);
    expect(a.length).toBe(20 + 8 + 28);
    const icmp = new IcmpView();
    expect(icmp.bind(a, 20, a.length - 20)).toBe(OK);
    expect([icmp.type, icmp.code, icmp.nextHopMtu]).toEqual([3, 4, 1450]);
    expect(icmp.verifyChecksum()).toBe(true);
    expect(Buffer.from(a.subarray(28))).toEqual(Buffer.from(p.subarray(0, 28)));
    expect([icmp.innerSrcPort, icmp.innerDstPort]).toEqual([5000, 53]);
  });

  it('collects one batch at a time: flush sends them in one call, and nothing when there are none', () => {
    const f = new FragNeeded(1450, 1000);
    const p = bigDf(1500);
    const sink = new IpSink();
    f.flush(sink);
    expect(sink.calls).toBe(0);
    for (let i = 0; i < FRAG_NEEDED_PER_BATCH; i++) expect(f.answer(p, 0, p.length, 0)).toBe(true);
    expect(f.full).toBe(true);
    f.flush(sink);
    expect([sink.calls, sink.sent.length, f.full, f.count]).toEqual([1, FRAG_NEEDED_PER_BATCH, false, 0]);
  });

  it('refuses past the rate, and again answers in the next second', () => {
    const f = new FragNeeded(1450, 3);
    const p = bigDf(1500);
    const got = [0, 1, 2, 3, 4].map((i) => f.answer(p, 0, p.length, 100 + i));
    expect(got).toEqual([true, true, true, false, false]);
    expect(f.count).toBe(3);
    expect(f.answer(p, 0, p.length, 1099)).toBe(false);
    expect(f.answer(p, 0, p.length, 1100)).toBe(true);
    expect(f.count).toBe(4);
  });

  it('refuses a packet whose header it cannot read, without spending a token', () => {
    const f = new FragNeeded(1450, 1);
    const p = bigDf(1500);
    const garbage = new Uint8Array(40).fill(0x65);
    expect(f.answer(garbage, 0, garbage.length, 0)).toBe(false);
    expect(f.answer(p, 0, p.length, 0)).toBe(true);
    expect(f.count).toBe(1);
  });
});
