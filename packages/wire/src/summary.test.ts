import { describe, expect, it } from 'vitest';
import { ipv4ToString, parseIpv4 } from './address.js';
import { errorInfo, OK } from './errors.js';
import { ICMP_TYPE, writeFragNeeded } from './icmp.js';
import { IPPROTO, IPV4_TOTAL_LENGTH_PAST_BUFFER, IPV4_TRUNCATED, Ipv4View, writeIpv4Header } from './ipv4.js';
import { ADDR6, ipv6WordsText, PacketSummary } from './summary.js';
import { TCP_DATA_OFFSET_PAST_END, TCP_FLAGS } from './tcp.js';
import { loadHex, loadIpv6Capture } from './testing/fixtures.js';
import { UDP_TRUNCATED } from './udp.js';

const curl = loadHex('ip/tcp-curl.hex');
const udp = loadHex('ip/udp-iperf3.hex');
const icmp = loadHex('ip/icmp.hex');

describe('PacketSummary', () => {
  const s = new PacketSummary();

  it('summarises a golden TCP SYN', () => {
    expect(s.read(curl[0]!, 0, curl[0]!.length)).toBe(OK);
    expect(s.protocol).toBe(IPPROTO.TCP);
    expect(ipv4ToString(s.src)).toBe('203.0.113.2');
    expect(ipv4ToString(s.dst)).toBe('198.18.0.2');
    expect(s.dstPort).toBe(80);
    expect(s.tcpFlags).toBe(TCP_FLAGS.SYN);
    expect(s.isFragment).toBe(false);
    expect(s.dontFragment).toBe(true);
    expect(s.l4Offset).toBe(20);
    expect(s.payloadLength).toBe(0);
  });

  it('summarises a golden UDP datagram and its payload', () => {
    const p = udp[3]!;
    expect(s.read(p, 0, p.length)).toBe(OK);
    expect(s.protocol).toBe(IPPROTO.UDP);
    expect(s.dstPort).toBe(5201);
    expect(s.payloadOffset).toBe(28);
    expect(s.payloadLength).toBe(200);
  });

  it('routes a golden ICMP error by its quoted header', () => {
    const p = icmp[3]!;
    expect(s.read(p, 0, p.length)).toBe(OK);
    expect(s.isIcmpError && s.hasInner).toBe(true);
    expect(s.icmpType).toBe(ICMP_TYPE.DEST_UNREACHABLE);
    expect(ipv4ToString(s.innerDst)).toBe('198.18.0.2');
    expect(s.innerProtocol).toBe(IPPROTO.ICMP);
    expect(s.innerDstPort).toBe(0);
    // and an echo is not an error
    expect(s.read(icmp[0]!, 0, icmp[0]!.length)).toBe(OK);
    expect(s.isIcmpError || s.hasInner).toBe(false);
  });

  it('gives the quoted TCP ports of an ICMP error about a TCP flow', () => {
    const syn = new Ipv4View();
    syn.bind(curl[0]!);
    const out = new Uint8Array(128);
    const n = writeFragNeeded(out, 0, syn, parseIpv4('198.18.0.1'), 1400);
    expect(s.read(out, 0, n)).toBe(OK);
    expect(s.innerProtocol).toBe(IPPROTO.TCP);
    expect(s.innerDstPort).toBe(80);
    expect(s.innerSrcPort).toBe(syn.buf[20]! * 256 + syn.buf[21]!);
  });

  it('fragments: the first carries the ports, later ones carry none', () => {
    const b = new Uint8Array(20 + 16);
    writeIpv4Header(b, 0, { src: 1, dst: 2, protocol: IPPROTO.UDP, payloadLength: 16, id: 0x4242 });
    b[20] = 0x13;
    b[21] = 0x88; // src 5000
    b[22] = 0x00;
    b[23] = 0x35; // dst 53
    b[24] = 0x05;
    b[25] = 0xdc; // UDP length 1500: the whole datagram, of which this is the first fragment
    b[6] = 0x20; // MF
    // A first fragment's UDP length covers the whole datagram (1500 here), not the fragment: ports still count.
    expect(s.read(b, 0, b.length)).toBe(OK);
    expect(s.payloadLength).toBe(8);
    expect(s.read(b, 0, 27)).toBe(IPV4_TOTAL_LENGTH_PAST_BUFFER);
    expect([s.isFragment, s.firstFragment, s.moreFragments, s.fragmentId, s.dstPort]).toEqual([
      true,
      true,
      true,
      0x4242,
      53,
    ]);
    b[6] = 0x00;
    b[7] = 0xb9; // offset 185*8 = 1480, last fragment
    expect(s.read(b, 0, b.length)).toBe(OK);
    expect([s.isFragment, s.firstFragment, s.moreFragments, s.srcPort, s.dstPort]).toEqual([
      true,
      false,
      false,
      0,
      0,
    ]);
    expect(s.payloadOffset).toBe(20);
    expect(s.payloadLength).toBe(16);
  });

  it('a first UDP fragment too short for the ports is truncated', () => {
    const b = new Uint8Array(24);
    writeIpv4Header(b, 0, { src: 1, dst: 2, protocol: IPPROTO.UDP, payloadLength: 4 });
    b[6] = 0x20;
    expect(s.read(b, 0, 24)).toBe(UDP_TRUNCATED);
  });

  it('returns the failing layer’s code', () => {
    expect(s.read(curl[0]!, 0, 10)).toBe(IPV4_TRUNCATED);
    const bad = Buffer.from(curl[0]!);
    bad[32] = 0xf0; // TCP data offset 15 = 60 bytes > segment
    expect(s.read(bad, 0, bad.length)).toBe(TCP_DATA_OFFSET_PAST_END);
    expect(errorInfo(TCP_DATA_OFFSET_PAST_END)).toEqual({
      code: TCP_DATA_OFFSET_PAST_END,
      kind: 'truncated',
      name: 'tcp_data_offset_past_end',
    });
  });

  it('passes other protocols through with no ports', () => {
    const b = new Uint8Array(24);
    writeIpv4Header(b, 0, { src: 1, dst: 2, protocol: 47, payloadLength: 4 });
    expect(s.read(b, 0, 24)).toBe(OK);
    expect([s.protocol, s.srcPort, s.dstPort, s.payloadLength]).toEqual([47, 0, 0, 4]);
  });

  it('summarises real IPv6 packets (a loopback capture): family, ports, ICMPv6 errors with the quoted flow', () => {
    const cap = new Map(loadIpv6Capture().map((p) => [p.name, p.bytes]));
    const syn = cap.get('tcp-syn')!;
    expect(s.read6(syn, 0, syn.length)).toBe(OK);
    expect([s.family, s.protocol, s.tcpFlags & TCP_FLAGS.SYN, s.isFragment]).toEqual([
      6,
      IPPROTO.TCP,
      TCP_FLAGS.SYN,
      false,
    ]);
    expect(s.dstPort).toBeGreaterThan(0);
    expect(ipv6WordsText(s.addr6, ADDR6.SRC)).toMatch(/:/);
    const unreach = cap.get('icmp6-port-unreachable-udp')!;
    expect(s.read6(unreach, 0, unreach.length)).toBe(OK);
    expect([s.protocol, s.icmpType, s.isIcmpError, s.hasInner, s.innerProtocol]).toEqual([
      58,
      1,
      true,
      true,
      IPPROTO.UDP,
    ]);
    const middle = cap.get('udp-fragment-middle')!;
    expect(s.read6(middle, 0, middle.length)).toBe(OK);
    expect([s.isFragment, s.firstFragment, s.srcPort, s.dstPort]).toEqual([true, false, 0, 0]);
    const first = cap.get('udp-fragment-first')!;
    expect(s.read6(first, 0, first.length)).toBe(OK);
    expect([s.isFragment, s.firstFragment, s.moreFragments]).toEqual([true, true, true]);
    // read (IPv4) leaves family 4 again
    expect(s.read(curl[0]!, 0, curl[0]!.length)).toBe(OK);
    expect(s.family).toBe(4);
  });
});
