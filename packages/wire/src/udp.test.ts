import { describe, expect, it } from 'vitest';
import { parseIpv4 } from './address.js';
import { OK } from './errors.js';
import { IPPROTO, Ipv4View, writeIpv4Header } from './ipv4.js';
import { loadHex } from './testing/fixtures.js';
import { UDP_LENGTH_PAST_END, UDP_LENGTH_TOO_SMALL, UDP_TRUNCATED, UdpView, writeUdpHeader } from './udp.js';

const iperf = loadHex('ip/udp-iperf3.hex');
const A = parseIpv4('203.0.113.5');
const B = parseIpv4('198.18.0.5');

function datagram(payload: number[]): { b: Uint8Array; u: UdpView } {
  const b = new Uint8Array(28 + payload.length);
  writeIpv4Header(b, 0, { src: A, dst: B, protocol: IPPROTO.UDP, payloadLength: 8 + payload.length });
  writeUdpHeader(b, 20, 5000, 53, payload.length);
  b.set(payload, 28);
  const u = new UdpView();
  expect(u.bind(b, 20, 8 + payload.length)).toBe(OK);
  return { b, u };
}

describe('UdpView', () => {
  it('reads the golden iperf3 datagrams with valid checksums', () => {
    const ip = new Ipv4View();
    const u = new UdpView();
    for (const p of iperf) {
      expect(ip.bind(p)).toBe(OK);
      expect(u.bind(p, ip.payloadOffset, ip.payloadLength)).toBe(OK);
      expect([u.srcPort, u.dstPort]).toContain(5201);
      expect(u.length).toBe(ip.payloadLength);
      expect(u.verifyChecksum(ip.src, ip.dst)).toBe(true);
    }
    expect(u.payloadLength).toBe(200);
  });

  it('zero checksum means none (RFC 768): verifies, and port rewrites keep it zero', () => {
    const { u } = datagram([1, 2, 3]);
    expect(u.hasChecksum).toBe(false);
    expect(u.verifyChecksum(A, B)).toBe(true);
    u.setDstPort(2049);
    expect(u.checksum).toBe(0);
  });

  it('a computed zero is sent as 0xffff, and still verifies', () => {
    // Search the payload word that makes the sum come out as zero.
    for (let w = 0; w <= 0xffff; w++) {
      const { u } = datagram([w >>> 8, w & 0xff]);
      u.computeChecksum(A, B);
      if (u.checksum === 0xffff) {
        expect(u.verifyChecksum(A, B)).toBe(true);
        return;
      }
    }
    throw new Error('no payload gave a zero checksum');
  });

  it('port rewrites keep a real checksum valid', () => {
    const { u } = datagram([9, 8, 7, 6, 5]);
    u.computeChecksum(A, B);
    u.setSrcPort(81);
    u.setDstPort(8081);
    expect(u.verifyChecksum(A, B)).toBe(true);
    expect([u.srcPort, u.dstPort]).toEqual([81, 8081]);
  });

  it('trims to the UDP length and reports malformed lengths', () => {
    const { b, u } = datagram([1, 2, 3, 4]);
    b[25] = 10; // UDP length 10 inside a 12-byte IPv4 payload: the rest is ignored
    expect(u.bind(b, 20, 12)).toBe(OK);
    expect(u.len).toBe(10);
    expect(u.payloadLength).toBe(2);
    b[25] = 7; // length 7 < header
    expect(u.bind(b, 20, 12)).toBe(UDP_LENGTH_TOO_SMALL);
    b[25] = 13;
    expect(u.bind(b, 20, 12)).toBe(UDP_LENGTH_PAST_END);
    expect(u.bind(b, 20, 7)).toBe(UDP_TRUNCATED);
    expect(UdpView.parse(b, 20, 5).ok).toBe(false);
  });
});
