import { describe, expect, it } from 'vitest';
import { parseIpv4 } from './address.js';
import { OK } from './errors.js';
import { IPPROTO, Ipv4View, writeIpv4Header } from './ipv4.js';
import {
  TCP_DATA_OFFSET_PAST_END,
  TCP_DATA_OFFSET_TOO_SMALL,
  TCP_FLAGS,
  TCP_OPTION,
  TCP_TRUNCATED,
  TcpView,
  writeTcpHeader,
} from './tcp.js';
import { loadHex } from './testing/fixtures.js';

const curl = loadHex('ip/tcp-curl.hex');

function seg(pkt: Uint8Array): { ip: Ipv4View; tcp: TcpView } {
  const ip = new Ipv4View();
  const tcp = new TcpView();
  expect(ip.bind(pkt)).toBe(OK);
  expect(tcp.bind(pkt, ip.payloadOffset, ip.payloadLength)).toBe(OK);
  return { ip, tcp };
}

describe('TcpView', () => {
  it('reads the golden SYN: ports, flags, options', () => {
    const { ip, tcp } = seg(curl[0]!);
    expect(tcp.dstPort).toBe(80);
    expect(tcp.srcPort).toBeGreaterThan(1023);
    expect(tcp.flags).toBe(TCP_FLAGS.SYN);
    expect(tcp.syn && !tcp.ackFlag && !tcp.fin && !tcp.rst).toBe(true);
    expect(tcp.dataOffset).toBe(10);
    expect(tcp.mss()).toBe(1460);
    expect(tcp.findOption(TCP_OPTION.SACK_PERMITTED)).toBeGreaterThan(0);
    expect(tcp.findOption(TCP_OPTION.WINDOW_SCALE)).toBeGreaterThan(0);
    expect(tcp.findOption(TCP_OPTION.TIMESTAMPS)).toBeGreaterThan(0);
    expect(tcp.findOption(TCP_OPTION.SACK)).toBe(-1);
    expect(tcp.payloadLength).toBe(0);
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
  });

  it('reads the golden SYN-ACK (server MSS 1240 for its 1280 link) and the GET segment', () => {
    expect(seg(curl[1]!).tcp.mss()).toBe(1240);
    const { ip, tcp } = seg(curl[3]!);
    expect(tcp.flags & (TCP_FLAGS.PSH | TCP_FLAGS.ACK)).toBe(TCP_FLAGS.PSH | TCP_FLAGS.ACK);
    expect(Buffer.from(tcp.buf.subarray(tcp.payloadOffset, tcp.payloadOffset + 5)).toString()).toBe('GET /');
    expect(tcp.mss()).toBe(-1);
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
  });

  it('every golden segment has a valid checksum', () => {
    for (const p of curl) {
      const { ip, tcp } = seg(p);
      expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    }
  });

  it('clamps MSS and keeps the checksum valid (aligned and unaligned option)', () => {
    const { ip, tcp } = seg(Buffer.from(curl[0]!));
    expect(tcp.clampMss(1400)).toBe(true);
    expect(tcp.mss()).toBe(1400);
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
    expect(tcp.clampMss(1450)).toBe(false);

    // MSS option after one NOP: its value straddles checksum words.
    const b = new Uint8Array(20 + 28);
    const opts = Uint8Array.from([
      TCP_OPTION.NOP,
      TCP_OPTION.MSS,
      4,
      0x05,
      0xb4,
      TCP_OPTION.NOP,
      TCP_OPTION.NOP,
      TCP_OPTION.END,
    ]);
    writeIpv4Header(b, 0, {
      src: parseIpv4('203.0.113.4'),
      dst: parseIpv4('198.18.0.9'),
      protocol: IPPROTO.TCP,
      payloadLength: 28,
    });
    writeTcpHeader(b, 20, { srcPort: 40000, dstPort: 80, flags: TCP_FLAGS.SYN, seq: 7, options: opts });
    const t = new TcpView();
    expect(t.bind(b, 20, 28)).toBe(OK);
    t.computeChecksum(parseIpv4('203.0.113.4'), parseIpv4('198.18.0.9'));
    expect(t.mss()).toBe(1460);
    expect(t.setMss(1360)).toBe(true);
    expect(t.mss()).toBe(1360);
    expect(t.verifyChecksum(parseIpv4('203.0.113.4'), parseIpv4('198.18.0.9'))).toBe(true);
  });

  it('rewrites ports, sequence and ack numbers with incremental checksum updates', () => {
    const { ip, tcp } = seg(Buffer.from(curl[3]!));
    tcp.setDstPort(8080);
    tcp.setSrcPort(1);
    tcp.setSeq(0xfffffff0);
    tcp.setAck(12345);
    expect([tcp.dstPort, tcp.srcPort, tcp.seq, tcp.ack]).toEqual([8080, 1, 0xfffffff0, 12345]);
    expect(tcp.verifyChecksum(ip.src, ip.dst)).toBe(true);
  });

  it('setMss is refused without an MSS option; malformed option lists end the walk', () => {
    const b = new Uint8Array(24);
    writeTcpHeader(b, 0, {
      srcPort: 1,
      dstPort: 2,
      flags: TCP_FLAGS.SYN,
      options: Uint8Array.from([TCP_OPTION.MSS, 9, 0, 0]),
    });
    const t = new TcpView();
    expect(t.bind(b, 0, 24)).toBe(OK);
    expect(t.mss()).toBe(-1); // length 9 runs past the header
    expect(t.setMss(100)).toBe(false);
    b[21] = 1; // length < 2
    expect(t.findOption(TCP_OPTION.MSS)).toBe(-1);
    b[20] = TCP_OPTION.NOP;
    b[21] = TCP_OPTION.NOP;
    b[22] = TCP_OPTION.NOP;
    b[23] = TCP_OPTION.MSS; // kind on the last byte, no room for its length
    expect(t.findOption(TCP_OPTION.MSS)).toBe(-1);
    b[20] = TCP_OPTION.END;
    expect(t.findOption(TCP_OPTION.MSS)).toBe(-1);
  });

  it('named malformed cases', () => {
    const t = new TcpView();
    const b = new Uint8Array(40);
    writeTcpHeader(b, 0, { srcPort: 1, dstPort: 2, flags: 0 });
    expect(t.bind(b, 0, 19)).toBe(TCP_TRUNCATED);
    b[12] = 0x40; // data offset 4
    expect(t.bind(b, 0, 40)).toBe(TCP_DATA_OFFSET_TOO_SMALL);
    b[12] = 0xb0; // data offset 11 = 44 bytes > 40
    expect(t.bind(b, 0, 40)).toBe(TCP_DATA_OFFSET_PAST_END);
    expect(t.bind(b, 30, 20)).toBe(TCP_TRUNCATED);
    expect(TcpView.parse(b).ok).toBe(false);
  });
});
