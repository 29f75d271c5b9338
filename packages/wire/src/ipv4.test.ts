import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4ToString, parseCidr, parseIpv4, tryParseIpv4 } from './address.js';
import { errorInfo, OK } from './errors.js';
import {
  IPPROTO,
  IPV4_BAD_VERSION,
  IPV4_FRAGMENT_OVERFLOW,
  IPV4_IHL_PAST_END,
  IPV4_IHL_TOO_SMALL,
  IPV4_TOTAL_LENGTH_BELOW_HEADER,
  IPV4_TOTAL_LENGTH_PAST_BUFFER,
  IPV4_TRUNCATED,
  Ipv4View,
  writeIpv4Header,
} from './ipv4.js';
import { loadHex } from './testing/fixtures.js';

const syn = loadHex('ip/tcp-curl.hex')[0]!;

function header(): Uint8Array {
  const b = new Uint8Array(40);
  writeIpv4Header(b, 0, {
    src: parseIpv4('203.0.113.9'),
    dst: parseIpv4('198.18.0.1'),
    protocol: IPPROTO.UDP,
    payloadLength: 20,
  });
  return b;
}

describe('Ipv4View', () => {
  it('reads the golden curl SYN', () => {
    const v = new Ipv4View();
    expect(v.bind(syn)).toBe(OK);
    expect(v.version).toBe(4);
    expect(v.ihl).toBe(5);
    expect(ipv4ToString(v.src)).toBe('203.0.113.2');
    expect(ipv4ToString(v.dst)).toBe('198.18.0.2');
    expect([v.srcI32, v.dstI32]).toEqual([v.src | 0, v.dst | 0]);
    expect(v.srcI32).toBeLessThan(0); // 203.0.113.2 is above 2^31
    expect(v.protocol).toBe(IPPROTO.TCP);
    expect(v.dontFragment).toBe(true);
    expect(v.isFragment).toBe(false);
    expect(v.ttl).toBe(64);
    expect(v.totalLength).toBe(syn.length);
    expect(v.payloadOffset).toBe(20);
    expect(v.verifyChecksum()).toBe(true);
  });

  it('trims trailing bytes past Total Length (Ethernet padding)', () => {
    const padded = Buffer.concat([syn, Buffer.alloc(6, 0xee)]);
    const v = new Ipv4View();
    expect(v.bind(padded)).toBe(OK);
    expect(v.len).toBe(syn.length);
    expect(v.payloadLength).toBe(syn.length - 20);
  });

  it('binds at an offset inside a larger arena', () => {
    const arena = Buffer.alloc(syn.length + 100);
    syn.copy(arena, 37);
    const v = new Ipv4View();
    expect(v.bind(arena, 37, syn.length)).toBe(OK);
    expect(ipv4ToString(v.src)).toBe('203.0.113.2');
    expect(v.payloadOffset).toBe(57);
  });

  it('builds a header that parses back with a valid checksum', () => {
    const b = header();
    const v = new Ipv4View();
    expect(v.bind(b)).toBe(OK);
    expect(v.verifyChecksum()).toBe(true);
    expect(v.totalLength).toBe(40);
    expect(ipv4ToString(v.dst)).toBe('198.18.0.1');
  });

  it('keeps the header checksum valid across setSrc, setDst and setTtl', () => {
    const v = new Ipv4View();
    const b = header();
    v.bind(b);
    v.setSrc(parseIpv4('203.0.113.77'));
    v.setDst(parseIpv4('198.19.255.254'));
    v.setTtl(3);
    expect(v.verifyChecksum()).toBe(true);
    expect(ipv4ToString(v.src)).toBe('203.0.113.77');
    expect(v.ttl).toBe(3);
    b[8] = 9; // corrupt TTL without fixing the sum
    expect(v.verifyChecksum()).toBe(false);
    v.computeChecksum();
    expect(v.verifyChecksum()).toBe(true);
  });

  it('exposes options as a view, not a copy', () => {
    const b = new Uint8Array(24);
    writeIpv4Header(b, 0, { src: 1, dst: 2, protocol: 1, payloadLength: 0 });
    b[0] = 0x46; // IHL 6
    b[3] = 24;
    b[20] = 0x94; // router alert (RFC 2113)
    const v = new Ipv4View();
    expect(v.bind(b)).toBe(OK);
    expect(v.options().length).toBe(4);
    expect(v.options()[0]).toBe(0x94);
    expect(v.options().buffer).toBe(b.buffer);
  });

  describe('named malformed cases', () => {
    const set = (b: Uint8Array, at: number, ...bytes: number[]): Uint8Array => {
      b.set(bytes, at);
      return b;
    };
    const cases: Array<[string, (b: Uint8Array) => Uint8Array, number]> = [
      ['shorter than 20 bytes', (b) => b.subarray(0, 19), IPV4_TRUNCATED],
      ['version 6', (b) => set(b, 0, 0x65), IPV4_BAD_VERSION],
      ['IHL < 5', (b) => set(b, 0, 0x44), IPV4_IHL_TOO_SMALL],
      ['IHL past the end', (b) => set(b, 0, 0x4f).subarray(0, 40), IPV4_IHL_PAST_END],
      ['total length below the header', (b) => set(b, 2, 0, 19), IPV4_TOTAL_LENGTH_BELOW_HEADER],
      ['total length past the buffer', (b) => set(b, 2, 0, 41), IPV4_TOTAL_LENGTH_PAST_BUFFER],
      ['fragment past 65535 bytes', (b) => set(b, 6, 0x1f, 0xff), IPV4_FRAGMENT_OVERFLOW],
    ];
    for (const [name, mutate, code] of cases) {
      it(`${name} → ${errorInfo(code)!.name}`, () => {
        const v = new Ipv4View();
        expect(v.bind(mutate(header()))).toBe(code);
      });
    }

    it('truncation at every cut point is reported, never thrown', () => {
      for (let cut = 0; cut < syn.length; cut++) {
        const r = Ipv4View.parse(syn.subarray(0, cut));
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.kind).toBe('truncated');
      }
    });

    it('rejects a negative offset or a range past the buffer', () => {
      const v = new Ipv4View();
      expect(v.bind(syn, -1, 20)).toBe(IPV4_TRUNCATED);
      expect(v.bind(syn, 10, syn.length)).toBe(IPV4_TRUNCATED);
    });
  });
});

describe('addresses', () => {
  it('round-trips dotted quads', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (a) => {
        expect(parseIpv4(ipv4ToString(a))).toBe(a);
      }),
    );
  });
  it('refuses what is not an address', () => {
    for (const t of ['', '1.2.3', '1.2.3.256', '01.2.3.4', 'a.b.c.d', '1.2.3.4 '])
      expect(tryParseIpv4(t)).toBe(-1);
    expect(() => parseIpv4('1.2.3')).toThrow(/not an IPv4 address/);
  });
  it('parses CIDR prefixes', () => {
    expect(parseCidr('198.18.3.4/15')).toEqual({
      network: parseIpv4('198.18.0.0'),
      prefix: 15,
      mask: 0xfffe0000,
    });
    expect(parseCidr('203.0.113.7')).toMatchObject({ prefix: 32 });
    expect(parseCidr('0.0.0.0/0').mask).toBe(0);
    expect(() => parseCidr('1.2.3.4/33')).toThrow(/prefix/);
  });
});
