import { describe, expect, it } from 'vitest';
import { ipv4ToString, parseIpv4 } from './address.js';
import { OK } from './errors.js';
import {
  ICMP_CODE_FRAG_NEEDED,
  ICMP_INNER_MALFORMED,
  ICMP_INNER_TRUNCATED,
  ICMP_TRUNCATED,
  ICMP_TYPE,
  IcmpView,
  writeEcho,
  writeFragNeeded,
} from './icmp.js';
import { IPPROTO, Ipv4View, writeIpv4Header } from './ipv4.js';
import { loadHex } from './testing/fixtures.js';

const icmp = loadHex('ip/icmp.hex');
const curl = loadHex('ip/tcp-curl.hex');

function bindIcmp(p: Uint8Array): IcmpView {
  const ip = new Ipv4View();
  expect(ip.bind(p)).toBe(OK);
  const v = new IcmpView();
  expect(v.bind(p, ip.payloadOffset, ip.payloadLength)).toBe(OK);
  return v;
}

describe('IcmpView', () => {
  it('reads golden echo request and reply', () => {
    const req = bindIcmp(icmp[0]!);
    const rep = bindIcmp(icmp[1]!);
    expect(req.type).toBe(ICMP_TYPE.ECHO_REQUEST);
    expect(rep.type).toBe(ICMP_TYPE.ECHO_REPLY);
    expect(rep.identifier).toBe(req.identifier);
    expect(rep.sequence).toBe(1);
    expect(req.isError || req.hasInner).toBe(false);
    expect(req.verifyChecksum() && rep.verifyChecksum()).toBe(true);
  });

  it('reads the router’s golden "fragmentation needed" with the quoted request', () => {
    const v = bindIcmp(icmp[3]!);
    expect(v.type).toBe(ICMP_TYPE.DEST_UNREACHABLE);
    expect(v.code).toBe(ICMP_CODE_FRAG_NEEDED);
    expect(v.nextHopMtu).toBe(1280);
    expect(v.isError && v.hasInner).toBe(true);
    expect(ipv4ToString(v.inner.src)).toBe('203.0.113.2');
    expect(ipv4ToString(v.inner.dst)).toBe('198.18.0.2');
    expect(v.inner.protocol).toBe(IPPROTO.ICMP);
    expect(v.inner.totalLength).toBe(1428); // the original's, larger than what was quoted
    expect(v.verifyChecksum()).toBe(true);
  });

  it('builds "fragmentation needed" for a TCP segment; the quoted ports read back', () => {
    const syn = new Ipv4View();
    expect(syn.bind(curl[0]!)).toBe(OK);
    const out = new Uint8Array(128);
    const n = writeFragNeeded(out, 0, syn, parseIpv4('203.0.113.1'), 1400);
    const ip = new Ipv4View();
    expect(ip.bind(out, 0, n)).toBe(OK);
    expect(ip.verifyChecksum()).toBe(true);
    expect(ip.dst).toBe(syn.src);
    const v = new IcmpView();
    expect(v.bind(out, ip.payloadOffset, ip.payloadLength)).toBe(OK);
    expect(v.verifyChecksum()).toBe(true);
    expect(v.nextHopMtu).toBe(1400);
    expect(v.innerDstPort).toBe(80);
    expect(v.innerSrcPort).toBe((curl[0]![20]! << 8) | curl[0]![21]!);
  });

  it('builds an echo request', () => {
    const b = new Uint8Array(16);
    const n = writeEcho(b, 0, ICMP_TYPE.ECHO_REQUEST, 0x1234, 7, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    const v = new IcmpView();
    expect(v.bind(b, 0, n)).toBe(OK);
    expect([v.identifier, v.sequence, v.verifyChecksum()]).toEqual([0x1234, 7, true]);
  });

  it('named malformed cases', () => {
    const v = new IcmpView();
    expect(v.bind(new Uint8Array(7), 0, 7)).toBe(ICMP_TRUNCATED);
    const b = new Uint8Array(8 + 20 + 8);
    b[0] = ICMP_TYPE.TIME_EXCEEDED;
    expect(v.bind(b, 0, 8 + 10)).toBe(ICMP_INNER_TRUNCATED); // quoted header cut short
    expect(v.bind(b, 0, b.length)).toBe(ICMP_INNER_MALFORMED); // quoted version 0
    writeIpv4Header(b, 8, { src: 1, dst: 2, protocol: IPPROTO.UDP, payloadLength: 100 });
    expect(v.bind(b, 0, 8 + 20 + 4)).toBe(ICMP_INNER_TRUNCATED); // fewer than 8 quoted data bytes
    expect(v.bind(b, 0, b.length)).toBe(OK);
    expect(v.inner.len).toBe(28);
    expect(IcmpView.parse(b, 0, 3).ok).toBe(false);
  });
});
