import { udp6Packet } from '@onehost/switch/testing';
import { META_STRIDE } from '@onehost/tun';
import { describe, expect, it } from 'vitest';
import type { PacketSource } from './packet-io.js';
import { PACKET_TOO_BIG_PER_BATCH, PacketTooBig } from './packet-too-big.js';

const CLIENT6 = '2001:db8:1::7';
const VIP6 = '2001:db8::10';

const big = (src = CLIENT6, payload = 1452) =>
  udp6Packet({ src, dst: VIP6, srcPort: 5000, dstPort: 53, payload: new Uint8Array(payload).fill(0x61) });

/** Tun records what writeLocal is given (copies) and takes all of it. */
class Tun implements Pick<PacketSource, 'writeLocal'> {
  readonly written: Buffer[] = [];
  calls = 0;
  writeLocal(arena: Uint8Array, meta: Int32Array, start: number, end: number): number {
    this.calls++;
    for (let i = start; i < end; i++) {
      const off = meta[i * META_STRIDE]!;
      this.written.push(Buffer.from(arena.subarray(off, off + meta[i * META_STRIDE + 1]!)));
    }
    return end;
  }
}

describe('PacketTooBig', () => {
  it('answers from the cluster address to the sender: exact bytes, quoting the packet up to 1280 in all', () => {
    const f = new PacketTooBig(1450, 100);
    const p = big(CLIENT6, 8);
    expect(f.answer(p, 0, p.length, 0)).toBe(true);
    const tun = new Tun();
    f.flush(tun);
    expect([tun.calls, f.count, f.sent[0]]).toEqual([1, 0, 1]);
    // IPv6 (payload 64, ICMPv6, hop limit 64) 2001:db8::10 → 2001:db8:1::7; type 2 code 0, checksum,
    // MTU 1450 (0x5aa); then the 56-byte datagram itself
    expect(tun.written[0]!.toString('hex')).toBe(
      '6000000000403a40' +
        '20010db8000000000000000000000010' +
        '20010db8000100000000000000000007' +
        `0200${tun.written[0]!.subarray(42, 44).toString('hex')}000005aa` +
        Buffer.from(p).toString('hex'),
    );
    // the checksum, apart from the code under test: the pseudo-header (RFC 8200 §8.1) and the message
    const m = tun.written[0]!;
    const words = Buffer.concat([m.subarray(8, 40), Buffer.from([0, 0, 0, 64, 0, 0, 0, 58]), m.subarray(40)]);
    let sum = 0;
    for (let i = 0; i < words.length; i += 2) sum += words.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
    // a full-size packet is quoted up to the minimum MTU
    const full = big();
    expect(f.answer(full, 0, full.length, 0)).toBe(true);
    f.flush(tun);
    expect(tun.written[1]!.length).toBe(1280);
    expect(tun.written[1]!.subarray(48).equals(Buffer.from(full.subarray(0, 1232)))).toBe(true);
  });

  it('collects one batch at a time and writes them in one call; nothing when there are none', () => {
    const f = new PacketTooBig(1450, 1000);
    const p = big();
    const tun = new Tun();
    f.flush(tun);
    expect(tun.calls).toBe(0);
    for (let i = 0; i < PACKET_TOO_BIG_PER_BATCH; i++) expect(f.answer(p, 0, p.length, 0)).toBe(true);
    expect(f.full).toBe(true);
    f.flush(tun);
    expect([tun.calls, tun.written.length, f.full, f.sent[0]]).toEqual([
      1,
      PACKET_TOO_BIG_PER_BATCH,
      false,
      64,
    ]);
  });

  it('refuses past the rate, and again answers in the next second', () => {
    const f = new PacketTooBig(1450, 3);
    const p = big();
    expect([0, 1, 2, 3].map((i) => f.answer(p, 0, p.length, 100 + i))).toEqual([true, true, true, false]);
    expect(f.answer(p, 0, p.length, 1099)).toBe(false);
    expect(f.answer(p, 0, p.length, 1100)).toBe(true);
    expect(f.count).toBe(4);
  });

  it('never answers (RFC 4443 §2.4 (e)) a multicast or unspecified source, or garbage, and spends no token', () => {
    const f = new PacketTooBig(1450, 1);
    for (const p of [big('ff02::1'), big('::'), new Uint8Array(60).fill(0x65)])
      expect(f.answer(p, 0, p.length, 0)).toBe(false);
    const p = big();
    expect(f.answer(p, 0, p.length, 0)).toBe(true);
    expect(f.count).toBe(1);
  });
});
