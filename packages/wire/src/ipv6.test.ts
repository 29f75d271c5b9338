import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMac } from './address.js';
import { checksum, fold } from './checksum.js';
import { errorInfo, OK } from './errors.js';
import {
  ICMP6_MTU_TOO_SMALL,
  ICMP6_TYPE,
  Icmp6View,
  IPV6_MIN_MTU,
  NEIGHBOR_ADVERT_LENGTH,
  PTB_MAX_QUOTE,
  writeNeighborAdvert,
  writePacketTooBig,
} from './icmp6.js';
import {
  IPV6_BAD_VERSION,
  IPV6_CHAIN_INCOMPLETE,
  IPV6_EXT,
  IPV6_EXT_PAST_END,
  IPV6_HOP_BY_HOP_NOT_FIRST,
  IPV6_PAYLOAD_LENGTH_PAST_BUFFER,
  IPV6_SECOND_FRAGMENT_HEADER,
  IPV6_TOO_MANY_EXT,
  IPV6_TRUNCATED,
  Ipv6View,
  ipv6ToString,
  macLinkLocal,
  parseIpv6,
  pseudoHeaderSum6,
} from './ipv6.js';
import { fuzzRuns, loadIpv6Capture } from './testing/fixtures.js';

const cap = new Map(loadIpv6Capture().map((p) => [p.name, new Uint8Array(p.bytes)]));
const pkt = (name: string) => cap.get(name)!.slice();

function bound(b: Uint8Array): Ipv6View {
  const v = new Ipv6View();
  const code = v.bind(b);
  expect(errorInfo(code)?.name ?? 'ok').toBe('ok');
  return v;
}

/** withChain builds an IPv6 packet: the fixed header, `ext` (pairs of next header and bytes), then `upper`. */
function withChain(ext: [number, Uint8Array][], upperProto: number, upper: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < ext.length; i++) {
    const [, body] = ext[i]!;
    const h = body.slice();
    h[0] = i + 1 < ext.length ? ext[i + 1]![0] : upperProto;
    parts.push(h);
  }
  const payload = parts.reduce((a, p) => a + p.length, 0) + upper.length;
  const b = new Uint8Array(40 + payload);
  b[0] = 0x60;
  b[4] = payload >>> 8;
  b[5] = payload & 0xff;
  b[6] = ext.length > 0 ? ext[0]![0] : upperProto;
  b[7] = 64;
  b.set(parseIpv6('2001:db8::10'), 8);
  b.set(parseIpv6('2001:db8::80'), 24);
  let at = 40;
  for (const p of parts) {
    b.set(p, at);
    at += p.length;
  }
  b.set(upper, at);
  return b;
}
const opts = (n8: number) => {
  const h = new Uint8Array(8 * n8);
  h[1] = n8 - 1;
  return h;
};
const frag = (offset8: number, more: boolean, id = 7) => {
  const h = new Uint8Array(8);
  const w = (offset8 << 3) | (more ? 1 : 0);
  h[2] = w >>> 8;
  h[3] = w & 0xff;
  h[7] = id;
  return h;
};
const udp8 = () => Uint8Array.from([0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0]);

describe('IPv6 (RFC 8200) on packets Linux sent', () => {
  it('an ICMPv6 echo request: the header fields, addresses as text, the checksum over the pseudo-header', () => {
    const b = pkt('icmp6-echo-request');
    const v = bound(b);
    expect([v.version, v.payloadLength, v.nextHeader, v.hopLimit, v.upperProtocol]).toEqual([
      6, 64, 58, 64, 58,
    ]);
    expect([v.srcText(), v.dstText(), v.extCount, v.isFragment]).toEqual(['::1', '::1', 0, false]);
    const m = new Icmp6View();
    expect(m.bind(b, v.upperOffset, v.upperLength)).toBe(OK);
    expect([m.type, m.isError, m.checksumOk(v)]).toEqual([ICMP6_TYPE.ECHO_REQUEST, false, true]);
    b[60] ^= 1;
    expect(m.checksumOk(v)).toBe(false);
  });

  it('UDP and TCP: the upper layer right after the header; the kernel left the pseudo-header sum for the offload, ours equals it', () => {
    for (const [name, proto, at] of [
      ['udp', 17, 6],
      ['tcp-syn', 6, 16],
      ['tcp-rst', 6, 16],
    ] as const) {
      const b = pkt(name);
      const v = bound(b);
      expect([v.upperProtocol, v.upperOffset], name).toEqual([proto, 40]);
      // loopback sends with CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum (RFC 8200 §8.1)
      const pseudo = pseudoHeaderSum6(b, v.srcOffset, v.dstOffset, proto, v.upperLength);
      const field = v.upperOffset + at;
      expect((b[field]! << 8) | b[field + 1]!, name).toBe(fold(pseudo));
      // completed as the offload would, the checksum holds; a flipped bit breaks it
      b[field] = 0;
      b[field + 1] = 0;
      const c = checksum(b, v.upperOffset, v.upperLength, pseudo);
      b[field] = c >>> 8;
      b[field + 1] = c & 0xff;
      expect(v.upperChecksumOk(), name).toBe(true);
      b[b.length - 1] ^= 0x80;
      expect(v.upperChecksumOk(), name).toBe(false);
    }
  });

  it('a 3000-byte UDP datagram in three fragments: the first has the ports, the others offsets', () => {
    const first = bound(pkt('udp-fragment-first'));
    expect([first.hasFragmentHeader, first.isFragment, first.isFirstFragment, first.moreFragments]).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect([first.upperProtocol, first.upperOffset, first.extCount]).toEqual([17, 48, 1]);
    const middle = bound(pkt('udp-fragment-middle'));
    expect([middle.fragmentOffset * 8, middle.moreFragments, middle.isFirstFragment]).toEqual([
      1232,
      true,
      false,
    ]);
    expect(middle.fragmentId).toBe(first.fragmentId);
    const last = bound(pkt('udp-fragment-last'));
    expect([last.fragmentOffset * 8, last.moreFragments]).toEqual([2464, false]);
    // a fragment's checksum cannot be checked alone
    expect(first.upperChecksumOk()).toBe(false);
  });

  it('ICMPv6 errors quote the packet: its ports are read from the quote (a whole datagram and a first fragment)', () => {
    for (const [name, dport] of [
      ['icmp6-port-unreachable-udp', 5353],
      ['icmp6-port-unreachable-fragment', 5354],
    ] as const) {
      const b = pkt(name);
      const v = bound(b);
      const m = new Icmp6View();
      expect(m.bind(b, v.upperOffset, v.upperLength), name).toBe(OK);
      expect([m.type, m.code, m.isError, m.hasInner, m.hasInnerPorts, m.innerDstPort], name).toEqual([
        ICMP6_TYPE.DEST_UNREACHABLE,
        4,
        true,
        true,
        true,
        dport,
      ]);
      expect(m.innerSrcPort).toBe(37328);
      expect(m.checksumOk(v), name).toBe(true);
    }
  });

  it('Packet Too Big (RFC 4443 §3.2) quoting the SYN: its MTU and the quoted flow; below 1280 refused', () => {
    const syn = pkt('tcp-syn');
    const msg = new Uint8Array(8 + syn.length);
    msg[0] = ICMP6_TYPE.PACKET_TOO_BIG;
    msg.set([0, 0, 0x05, 0x00], 4); // 1280
    msg.set(syn, 8);
    const b = withChain([], 58, msg);
    const v = bound(b);
    const s = pseudoHeaderSum6(b, v.srcOffset, v.dstOffset, 58, msg.length);
    const c = checksum(b, v.upperOffset, v.upperLength, s);
    b[v.upperOffset + 2] = c >>> 8;
    b[v.upperOffset + 3] = c & 0xff;
    const m = new Icmp6View();
    expect(m.bind(b, v.upperOffset, v.upperLength)).toBe(OK);
    expect([m.mtu, m.hasInnerPorts, m.innerSrcPort, m.innerDstPort, m.checksumOk(v)]).toEqual([
      1280,
      true,
      37488,
      8080,
      true,
    ]);
    b[v.upperOffset + 6] = 0x03; // 1000
    expect(m.bind(b, v.upperOffset, v.upperLength)).toBe(ICMP6_MTU_TOO_SMALL);
  });
});

describe('writePacketTooBig (RFC 4443 §3.2)', () => {
  const from = parseIpv6('2001:db8:113::80');
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

  it('a small packet: the headers byte for byte, the whole packet quoted, the checksum over the pseudo-header', () => {
    const udp = pkt('udp');
    const out = new Uint8Array(IPV6_MIN_MTU + 8).fill(0xee);
    const n = writePacketTooBig(out, 4, bound(udp), from, 0, 1450);
    expect(n).toBe(40 + 8 + udp.length);
    // version 6, payload 69, ICMPv6, hop limit 64; from the given address to the packet's source (::1);
    // type 2, code 0, checksum 0x0861 (computed apart from this code), MTU 1450
    expect(hex(out.subarray(4, 4 + 48))).toBe(
      '6000000000453a40' +
        '20010db8011300000000000000000080' +
        '00000000000000000000000000000001' +
        '02000861000005aa',
    );
    expect(hex(out.subarray(52, 4 + n))).toBe(hex(udp));
    expect([out[3], out[4 + n]]).toEqual([0xee, 0xee]);
    // the message reads back, its checksum holds, and it quotes the datagram's ports
    const v = bound(out.slice(4, 4 + n));
    const m = new Icmp6View();
    expect(m.bind(v.buf, v.upperOffset, v.upperLength)).toBe(OK);
    expect([m.type, m.code, m.mtu, m.checksumOk(v), m.innerSrcPort, m.innerDstPort]).toEqual([
      2,
      0,
      1450,
      true,
      (udp[40]! << 8) | udp[41]!,
      (udp[42]! << 8) | udp[43]!,
    ]);
  });

  it('a large packet is quoted only so far that the message is exactly the minimum MTU (RFC 4443 §2.4 (c))', () => {
    const big = pkt('udp-fragment-first');
    expect(big.length).toBe(1280);
    const out = new Uint8Array(IPV6_MIN_MTU);
    const n = writePacketTooBig(out, 0, bound(big), from, 0, 1450);
    expect([n, PTB_MAX_QUOTE]).toEqual([1280, 1232]);
    expect(hex(out.subarray(0, 48))).toBe(
      '6000000004d83a40' +
        '20010db8011300000000000000000080' +
        '00000000000000000000000000000001' +
        '0200af1d000005aa',
    );
    expect(hex(out.subarray(48))).toBe(hex(big.subarray(0, 1232)));
    const v = bound(out);
    const m = new Icmp6View();
    expect(m.bind(out, v.upperOffset, v.upperLength)).toBe(OK);
    expect(m.checksumOk(v)).toBe(true);
  });
});

describe('writePacketTooBig, on any IPv6 packet', () => {
  it('is at most the minimum MTU, reads back with a good checksum, quotes the packet from its start', () => {
    const from = parseIpv6('2001:db8:113::80');
    const out = new Uint8Array(IPV6_MIN_MTU);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.integer({ min: 1280, max: 65535 }),
        (body, mtu) => {
          const b = withChain([], IPV6_EXT.NO_NEXT_HEADER, body);
          const v = bound(b);
          const n = writePacketTooBig(out, 0, v, from, 0, mtu);
          expect(n).toBe(Math.min(b.length + 48, IPV6_MIN_MTU));
          const a = out.subarray(0, n);
          const w = new Ipv6View();
          expect(w.bind(a)).toBe(OK);
          const m = new Icmp6View();
          expect(m.bind(a, w.upperOffset, w.upperLength)).toBe(OK);
          expect([m.type, m.code, m.mtu, m.checksumOk(w), w.dstText()]).toEqual([
            2,
            0,
            mtu,
            true,
            v.srcText(),
          ]);
          expect(Buffer.from(a.subarray(48)).equals(Buffer.from(b.subarray(0, n - 48)))).toBe(true);
        },
      ),
      { numRuns: fuzzRuns(300) },
    );
  });
});

describe('IPv6 header chains: a bounded walk, hostile chains refused by name', () => {
  it('Hop-by-Hop, Routing, Fragment (atomic) and Destination Options, then UDP: walked in order', () => {
    const b = withChain(
      [
        [IPV6_EXT.HOP_BY_HOP, opts(1)],
        [IPV6_EXT.ROUTING, opts(3)],
        [IPV6_EXT.FRAGMENT, frag(0, false)],
        [IPV6_EXT.DESTINATION, opts(2)],
      ],
      17,
      udp8(),
    );
    const v = bound(b);
    expect([v.extCount, v.upperProtocol, v.upperOffset]).toEqual([4, 17, 40 + 8 + 24 + 8 + 16]);
    // an atomic fragment (RFC 6946) is no fragment
    expect([v.hasFragmentHeader, v.isFragment]).toEqual([true, false]);
  });

  it('refuses: truncated, version, payload length past the buffer, a header past the end', () => {
    const v = new Ipv6View();
    expect(v.bind(new Uint8Array(39))).toBe(IPV6_TRUNCATED);
    const b = pkt('udp');
    b[0] = 0x45;
    expect(v.bind(b)).toBe(IPV6_BAD_VERSION);
    const c = pkt('udp');
    expect(v.bind(c, 0, c.length - 1)).toBe(IPV6_PAYLOAD_LENGTH_PAST_BUFFER);
    const d = withChain([[IPV6_EXT.DESTINATION, opts(2)]], 17, udp8());
    d[41] = 200; // Hdr Ext Len far past the end
    expect(v.bind(d)).toBe(IPV6_EXT_PAST_END);
  });

  it('refuses hostile chains: too many headers, Hop-by-Hop not first, two Fragment headers, a first fragment without its ports', () => {
    const v = new Ipv6View();
    const seven = Array.from({ length: 7 }, () => [IPV6_EXT.DESTINATION, opts(1)] as [number, Uint8Array]);
    expect(v.bind(withChain(seven, 17, udp8()))).toBe(IPV6_TOO_MANY_EXT);
    expect(
      v.bind(
        withChain(
          [
            [IPV6_EXT.DESTINATION, opts(1)],
            [IPV6_EXT.HOP_BY_HOP, opts(1)],
          ],
          17,
          udp8(),
        ),
      ),
    ).toBe(IPV6_HOP_BY_HOP_NOT_FIRST);
    expect(
      v.bind(
        withChain(
          [
            [IPV6_EXT.FRAGMENT, frag(0, true)],
            [IPV6_EXT.FRAGMENT, frag(0, true)],
          ],
          17,
          udp8(),
        ),
      ),
    ).toBe(IPV6_SECOND_FRAGMENT_HEADER);
    // RFC 7112: a first fragment whose chain ends before the TCP header
    expect(v.bind(withChain([[IPV6_EXT.FRAGMENT, frag(0, true)]], 6, new Uint8Array(4)))).toBe(
      IPV6_CHAIN_INCOMPLETE,
    );
    // a later fragment carries data only: fine however short
    expect(v.bind(withChain([[IPV6_EXT.FRAGMENT, frag(10, true)]], 6, new Uint8Array(4)))).toBe(OK);
  });

  it('never throws and never reads past the packet, on random and mutated chains', () => {
    const v = new Ipv6View();
    const m = new Icmp6View();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat(), (bytes, seed) => {
        const b = new Uint8Array(bytes.length + 40);
        b.set(bytes, 40);
        b[0] = 0x60;
        const pl = bytes.length - (seed % 3);
        b[4] = (pl >>> 8) & 0xff;
        b[5] = pl & 0xff;
        b[6] = [0, 43, 44, 60, 58, 6, 17][seed % 7]!;
        const code = v.bind(b);
        if (code === OK) {
          expect(v.upperOffset).toBeLessThanOrEqual(v.off + v.len);
          if (v.upperProtocol === 58) m.bind(b, v.upperOffset, v.upperLength);
        } else expect(errorInfo(code)).toBeDefined();
      }),
      { numRuns: fuzzRuns(20_000) },
    );
  });
});

describe('IPv6 addresses as text (RFC 4291 §2.2, RFC 5952 §4)', () => {
  it.each([
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['::ffff:203.0.113.80', '::ffff:cb00:7150'],
  ])('%s → %s', (text, canonical) => {
    expect(ipv6ToString(parseIpv6(text))).toBe(canonical);
  });
  it.each(['', ':', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '::256.1.1.1', 'g::1', '1:2:3:4:5:6:7'])(
    'refuses %j',
    (text) => {
      expect(() => parseIpv6(text)).toThrow(/not an IPv6 address/);
    },
  );
  it('round-trips any 16 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        expect(parseIpv6(ipv6ToString(b))).toEqual(b);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('macLinkLocal (RFC 4291 §2.5.1, Appendix A)', () => {
  // the right-hand sides are what Linux 6.18 generated for veths with these MACs (addr_gen_mode 0)
  it.each([
    ['56:75:1b:7c:47:57', 'fe80::5475:1bff:fe7c:4757'],
    ['02:00:00:00:00:01', 'fe80::ff:fe00:1'],
    ['8e:41:85:68:e4:ac', 'fe80::8c41:85ff:fe68:e4ac'],
  ])('%s → %s', (mac, ll) => {
    expect(macLinkLocal(parseMac(mac))).toBe(ll);
  });
  it('refuses anything but 6 bytes', () => {
    expect(() => macLinkLocal(new Uint8Array(8))).toThrow(/6 bytes/);
  });
});

describe('writeNeighborAdvert (RFC 4861 §4.4, §7.2.6)', () => {
  // Linux 6.18's own unsolicited advertisement (ndisc_notify) for fe80::5eff:fe10:1 of 02:00:5e:10:00:01,
  // sent to ff02::1, as tcpdump printed it (ICMPv6 part; checksum 0x3f6a)
  const LINUX = '8800 3f6a 2000 0000 fe80 0000 0000 0000 0000 5eff fe10 0001 0201 0200 5e10 0001'.replaceAll(
    ' ',
    '',
  );

  it('writes what Linux sends, but for the checksum the kernel fills in', () => {
    const buf = new Uint8Array(40).fill(0xee);
    const n = writeNeighborAdvert(buf, 4, parseIpv6('fe80::5eff:fe10:1'), parseMac('02:00:5e:10:00:01'), {
      override: true,
    });
    expect(n).toBe(NEIGHBOR_ADVERT_LENGTH);
    const msg = buf.subarray(4, 4 + n);
    expect(Buffer.from(msg).toString('hex')).toBe(`8800${'0000'}${LINUX.slice(8)}`);
    expect([...buf.subarray(0, 4), ...buf.subarray(4 + n)]).toEqual(new Array(8).fill(0xee));
    // with the pseudo-header of fe80::5eff:fe10:1 → ff02::1 its checksum is the one Linux computed
    const addrs = new Uint8Array(32);
    addrs.set(parseIpv6('fe80::5eff:fe10:1'), 0);
    addrs.set(parseIpv6('ff02::1'), 16);
    const sum = checksum(msg, 0, n, pseudoHeaderSum6(addrs, 0, 16, 58, n));
    expect(sum.toString(16)).toBe(LINUX.slice(4, 8));
  });

  it('sets the router, solicited and override flags as asked, and refuses bad arguments', () => {
    const buf = new Uint8Array(NEIGHBOR_ADVERT_LENGTH);
    const flags = (f: Parameters<typeof writeNeighborAdvert>[4]) => {
      writeNeighborAdvert(buf, 0, parseIpv6('2001:db8::80'), parseMac('02:00:00:00:00:01'), f);
      return buf[4];
    };
    expect(flags({})).toBe(0);
    expect(flags({ router: true, solicited: true, override: true })).toBe(0xe0);
    expect(flags({ solicited: true })).toBe(0x40);
    expect(() => writeNeighborAdvert(buf, 1, parseIpv6('::1'), new Uint8Array(6), {})).toThrow(/no room/);
    expect(() => writeNeighborAdvert(buf, 0, new Uint8Array(4), new Uint8Array(6), {})).toThrow(/16 bytes/);
  });
});
