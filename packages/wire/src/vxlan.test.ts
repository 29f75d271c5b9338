import { describe, expect, it } from 'vitest';
import { ipv4ToString, macToString, parseMac } from './address.js';
import { OK } from './errors.js';
import { ICMP_TYPE, IcmpView } from './icmp.js';
import { IPPROTO, Ipv4View } from './ipv4.js';
import { loadHex } from './testing/fixtures.js';
import { UdpView } from './udp.js';
import {
  VXLAN_INNER_PREFIX,
  VXLAN_NO_VNI_FLAG,
  VXLAN_NOT_IPV4,
  VXLAN_PORT,
  VXLAN_TRUNCATED,
  VxlanView,
  writeVxlanPrefix,
} from './vxlan.js';

const frames = loadHex('ip/vxlan.hex');

function vxlanOf(p: Uint8Array): { udp: UdpView; code: number; vx: VxlanView } {
  const ip = new Ipv4View();
  const udp = new UdpView();
  expect(ip.bind(p)).toBe(OK);
  expect(udp.bind(p, ip.payloadOffset, ip.payloadLength)).toBe(OK);
  const vx = new VxlanView();
  return { udp, code: vx.bind(p, udp.payloadOffset, udp.payloadLength), vx };
}

describe('VxlanView', () => {
  it('decapsulates the kernel’s golden echo request (VNI 42)', () => {
    const { udp, code, vx } = vxlanOf(frames[2]!);
    expect(udp.dstPort).toBe(VXLAN_PORT);
    expect(code).toBe(OK);
    expect(vx.vni).toBe(42);
    const inner = new Ipv4View();
    expect(inner.bind(vx.buf, vx.innerOffset, vx.innerLength)).toBe(OK);
    expect(ipv4ToString(inner.src)).toBe('198.19.0.1');
    expect(ipv4ToString(inner.dst)).toBe('198.19.0.2');
    const icmp = new IcmpView();
    expect(icmp.bind(inner.buf, inner.payloadOffset, inner.payloadLength)).toBe(OK);
    expect(icmp.type).toBe(ICMP_TYPE.ECHO_REQUEST);
    // The reply's inner Ethernet destination is the request's source MAC.
    const rep = vxlanOf(frames[3]!).vx;
    expect(macToString(rep.buf, rep.dstMacOffset)).toBe(macToString(vx.buf, vx.srcMacOffset));
  });

  it('refuses non-IPv4 inner frames (golden ARP)', () => {
    expect(vxlanOf(frames[0]!).code).toBe(VXLAN_NOT_IPV4);
  });

  it('builds a prefix the parser and the kernel format agree on', () => {
    const inner = loadHex('ip/icmp.hex')[0]!;
    const b = new Uint8Array(VXLAN_INNER_PREFIX + inner.length);
    const dst = parseMac('02:00:00:00:00:02');
    const src = parseMac('02:00:00:00:00:01');
    expect(writeVxlanPrefix(b, 0, 0xabcdef, dst, src)).toBe(VXLAN_INNER_PREFIX);
    b.set(inner, VXLAN_INNER_PREFIX);
    const vx = new VxlanView();
    expect(vx.bind(b, 0, b.length)).toBe(OK);
    expect(vx.vni).toBe(0xabcdef);
    expect(macToString(b, vx.dstMacOffset)).toBe('02:00:00:00:00:02');
    expect(macToString(b, vx.srcMacOffset)).toBe('02:00:00:00:00:01');
    expect(vx.etherType).toBe(0x0800);
    // Byte for byte the same 8-byte header shape as the kernel's (flags 0x08, reserved zero).
    const k = vxlanOf(frames[2]!).vx;
    expect(Buffer.from(b.subarray(0, 4))).toEqual(Buffer.from(k.buf.subarray(k.off, k.off + 4)));
    const ip = new Ipv4View();
    expect(ip.bind(b, vx.innerOffset, vx.innerLength)).toBe(OK);
    expect(ip.protocol).toBe(IPPROTO.ICMP);
  });

  it('named malformed cases', () => {
    const vx = new VxlanView();
    expect(vx.bind(new Uint8Array(21), 0, 21)).toBe(VXLAN_TRUNCATED);
    const b = new Uint8Array(40);
    writeVxlanPrefix(b, 0, 1, new Uint8Array(6), new Uint8Array(6));
    b[0] = 0;
    expect(vx.bind(b, 0, 40)).toBe(VXLAN_NO_VNI_FLAG);
    expect(VxlanView.parse(b).ok).toBe(false);
    expect(() => parseMac('02:00:00:00:00')).toThrow(/MAC/);
  });
});
