import { IPPROTO, parseIpv4, parseIpv6, TCP_FLAGS, writeIpv4Header } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { writeSegment } from './segment.js';
import { TcpSegmentView } from './segment-view.js';

const spec = { srcPort: 40000, dstPort: 2049, seq: 7, ack: 9, flags: TCP_FLAGS.ACK, window: 100 };

describe('TcpSegmentView', () => {
  it('binds an IPv4 segment: its addresses as int32, its length without trailing bytes', () => {
    const b = new Uint8Array(200);
    const n = writeSegment(b, { ...spec, src: parseIpv4('203.0.113.10'), dst: parseIpv4('203.0.113.80') });
    const v = new TcpSegmentView();
    expect(v.bind(b, 0, n + 30)).toBe(true);
    expect([v.six, v.src4, v.dst4, v.length, v.tcp.dstPort]).toEqual([
      false,
      parseIpv4('203.0.113.10') | 0,
      parseIpv4('203.0.113.80') | 0,
      n,
      2049,
    ]);
  });

  it('binds an IPv6 segment, also behind a Destination Options header, at an offset', () => {
    const src6 = parseIpv6('2001:db8:113::10');
    const dst6 = parseIpv6('2001:db8:113::80');
    const plain = new Uint8Array(100);
    const n = writeSegment(plain, { ...spec, src: 0, dst: 0, src6, dst6 });
    // RFC 8200 §4.6: next header TCP, length 0 (8 bytes), PadN
    const ext = new Uint8Array(3 + n + 8);
    ext.set(plain.subarray(0, 40), 3);
    ext[3 + 6] = 60;
    ext[3 + 5] = n - 40 + 8;
    ext.set([6, 0, 1, 4, 0, 0, 0, 0], 3 + 40);
    ext.set(plain.subarray(40, n), 3 + 48);
    const v = new TcpSegmentView();
    for (const [buf, off, len] of [
      [plain, 0, n],
      [ext, 3, n + 8],
    ] as const) {
      expect(v.bind(buf, off, len)).toBe(true);
      expect([v.six, v.srcAt, v.dstAt, v.length, v.tcp.srcPort]).toEqual([
        true,
        off + 8,
        off + 24,
        len,
        40000,
      ]);
    }
  });

  it('refuses fragments, other protocols, truncated packets and nonsense offsets', () => {
    const v = new TcpSegmentView();
    const b = new Uint8Array(60);
    writeIpv4Header(b, 0, { src: 1, dst: 2, protocol: IPPROTO.UDP, payloadLength: 20 });
    expect(v.bind(b, 0, 40)).toBe(false);
    const n = writeSegment(b, { ...spec, src: 1, dst: 2 });
    expect(v.bind(b, 0, n)).toBe(true);
    b[6] = 0x20; // more fragments
    expect(v.bind(b, 0, n)).toBe(false);
    expect(v.bind(b, 0, 10)).toBe(false);
    expect(v.bind(b, 70, 1)).toBe(false);
    expect(v.bind(b, 0, 0)).toBe(false);
  });
});
