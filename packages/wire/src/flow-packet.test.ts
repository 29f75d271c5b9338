import { describe, expect, it } from 'vitest';
import { checksum } from './checksum.js';
import { OK } from './errors.js';
import { buildFlowPacket } from './flow-packet.js';
import { IPPROTO, Ipv4View } from './ipv4.js';
import { Ipv6View, pseudoHeaderSum6 } from './ipv6.js';
import { TCP_FLAGS, TcpView } from './tcp.js';
import { UdpView } from './udp.js';

describe('buildFlowPacket', () => {
  it('builds an IPv4 TCP SYN whose checksums hold', () => {
    const p = buildFlowPacket({
      protocol: 'tcp',
      src: '203.0.113.5',
      dst: '203.0.113.10',
      srcPort: 40000,
      dstPort: 443,
      tcpFlags: TCP_FLAGS.SYN,
    });
    const ip = new Ipv4View();
    expect(ip.bind(p, 0, p.length)).toBe(OK);
    expect(ip.protocol).toBe(IPPROTO.TCP);
    const tcp = new TcpView();
    expect(tcp.bind(p, 20, p.length - 20)).toBe(OK);
    expect([tcp.srcPort, tcp.dstPort, tcp.syn]).toEqual([40000, 443, true]);
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
  });

  it('builds IPv6 TCP and UDP with the checksum over the IPv6 pseudo-header (RFC 8200 §8.1)', () => {
    for (const protocol of ['tcp', 'udp'] as const) {
      const payload = Uint8Array.of(1, 2, 3);
      const p = buildFlowPacket({
        protocol,
        src: '2001:db8:1::5',
        dst: '2001:db8::10',
        srcPort: 5353,
        dstPort: 53,
        tcpFlags: protocol === 'tcp' ? TCP_FLAGS.ACK : 0,
        payload,
      });
      const ip = new Ipv6View();
      expect(ip.bind(p, 0, p.length)).toBe(OK);
      const l4 = p.length - 40;
      const proto = protocol === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP;
      // a packet with a right checksum sums to 0 (folded 0xffff, complemented)
      expect(checksum(p, 40, l4, pseudoHeaderSum6(p, 8, 24, proto, l4))).toBe(0);
      expect(p.subarray(p.length - 3)).toEqual(payload);
      if (protocol === 'udp') {
        const u = new UdpView();
        expect(u.bind(p, 40, l4)).toBe(OK);
        expect([u.srcPort, u.dstPort]).toEqual([5353, 53]);
      }
    }
  });

  it('names what is wrong', () => {
    const f = {
      protocol: 'udp' as const,
      src: '203.0.113.5',
      dst: '203.0.113.10',
      srcPort: 1,
      dstPort: 2,
      tcpFlags: 0,
    };
    expect(() => buildFlowPacket({ ...f, srcPort: 65536 })).toThrow('srcPort must be 0-65535, got 65536');
    expect(() => buildFlowPacket({ ...f, dst: '2001:db8::1' })).toThrow(/different address families/);
    expect(() => buildFlowPacket({ ...f, src: '203.0.113.256' })).toThrow(
      /^src: not an IPv4 or IPv6 address/,
    );
    expect(() => buildFlowPacket({ ...f, src: '2001:db8::x', dst: '::1' })).toThrow(
      /^src: not an IPv6 address/,
    );
    expect(() => buildFlowPacket({ ...f, payload: new Uint8Array(65535 - 28 + 1) })).toThrow(RangeError);
  });
});
