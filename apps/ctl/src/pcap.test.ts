import { tcp6Packet, tcpPacket, udpPacket } from '@onehost/switch/testing';
import { describe, expect, it } from 'vitest';
import { CaptureError, readCapture } from './pcap.js';
import { pcap } from './testing/capture-builder.js';

const syn = tcpPacket({
  src: '203.0.113.5',
  dst: '203.0.113.10',
  srcPort: 40000,
  dstPort: 443,
  flags: 2,
  seq: 1,
});
const dns = udpPacket({ src: '203.0.113.5', dst: '203.0.113.10', srcPort: 5353, dstPort: 53 });
const syn6 = tcp6Packet({
  src: '2001:db8:113::5',
  dst: '2001:db8:113::80',
  srcPort: 40000,
  dstPort: 80,
  flags: 2,
});

function ethernet(ip: Uint8Array, etherType = 0x0800, vlan = false): Uint8Array {
  const head = vlan ? 18 : 14;
  const f = new Uint8Array(head + ip.length);
  const dv = new DataView(f.buffer);
  if (vlan) {
    dv.setUint16(12, 0x8100);
    dv.setUint16(14, 7);
    dv.setUint16(16, etherType);
  } else dv.setUint16(12, etherType);
  f.set(ip, head);
  return f;
}

function pcapng(frames: Uint8Array[], linkType = 101, tsresol?: number): Uint8Array {
  const blocks: Uint8Array[] = [];
  const block = (type: number, body: Uint8Array) => {
    const len = 12 + ((body.length + 3) & ~3);
    const b = new Uint8Array(len);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, type, true);
    dv.setUint32(4, len, true);
    b.set(body, 8);
    dv.setUint32(len - 4, len, true);
    blocks.push(b);
  };
  const shb = new Uint8Array(16);
  new DataView(shb.buffer).setUint32(0, 0x1a2b3c4d, true);
  new DataView(shb.buffer).setUint16(4, 1, true);
  new DataView(shb.buffer).setBigInt64(8, -1n, true);
  block(0x0a0d0d0a, shb);
  const idb = new Uint8Array(tsresol === undefined ? 8 : 20);
  const idv = new DataView(idb.buffer);
  idv.setUint16(0, linkType, true);
  idv.setUint32(4, 65535, true);
  if (tsresol !== undefined) {
    idv.setUint16(8, 9, true);
    idv.setUint16(10, 1, true);
    idb[12] = tsresol;
  }
  block(1, idb);
  frames.forEach((f, i) => {
    const body = new Uint8Array(20 + f.length);
    const dv = new DataView(body.buffer);
    const ts = BigInt(1_700_000_000 + i) * (tsresol === 9 ? 1_000_000_000n : 1_000_000n);
    dv.setUint32(4, Number(ts >> 32n), true);
    dv.setUint32(8, Number(ts & 0xffffffffn), true);
    dv.setUint32(12, f.length, true);
    dv.setUint32(16, f.length, true);
    body.set(f, 20);
    block(6, body);
  });
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of blocks) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

describe('readCapture', () => {
  it('reads classic little-endian Ethernet pcap, with VLAN tags and IPv6, and skips non-IP frames', () => {
    const frames = readCapture(
      pcap([
        ethernet(syn),
        ethernet(dns, 0x0800, true),
        ethernet(syn6, 0x86dd),
        ethernet(new Uint8Array(28), 0x0806),
        ethernet(syn, 0x86dd),
      ]),
    );
    expect(frames).toHaveLength(5);
    expect(frames[0]).toMatchObject({ index: 0, timeMs: 1_700_000_000_500 });
    expect('ip' in frames[0]! && frames[0].ip).toEqual(syn);
    expect('ip' in frames[1]! && frames[1].ip).toEqual(dns);
    expect('ip' in frames[2]! && frames[2].ip).toEqual(syn6);
    expect(frames[3]).toMatchObject({ skipped: 'not IP (ethertype 0x0806)' });
    // the EtherType and the version must agree
    expect(frames[4]).toMatchObject({ skipped: 'not IP (version 4)' });
  });

  it('reads raw IP captures of either version, and the IPv6 link type', () => {
    expect(readCapture(pcap([syn, syn6], { linkType: 101 })).map((f) => 'ip' in f && f.ip)).toEqual([
      syn,
      syn6,
    ]);
    expect(readCapture(pcap([syn6, syn], { linkType: 229 }))).toMatchObject([
      { ip: syn6 },
      { skipped: 'not IP (version 4)' },
    ]);
    expect(readCapture(pcap([syn6], { linkType: 228 }))[0]).toMatchObject({ skipped: 'not IP (version 6)' });
  });

  it('reads big-endian nanosecond raw-IP pcap', () => {
    const frames = readCapture(pcap([syn], { le: false, nano: true, linkType: 101 }));
    expect(frames[0]).toMatchObject({ timeMs: 1_700_000_000_500, ip: syn });
  });

  it('reads Linux cooked captures (tcpdump -i any)', () => {
    const sll = new Uint8Array(16 + syn.length);
    new DataView(sll.buffer).setUint16(14, 0x0800);
    sll.set(syn, 16);
    expect(readCapture(pcap([sll], { linkType: 113 }))[0]).toMatchObject({ ip: syn });
    const sll2 = new Uint8Array(20 + syn.length);
    new DataView(sll2.buffer).setUint16(0, 0x0800);
    sll2.set(syn, 20);
    expect(readCapture(pcap([sll2], { linkType: 276 }))[0]).toMatchObject({ ip: syn });
  });

  it('reads pcapng with microsecond and nanosecond interfaces', () => {
    expect(readCapture(pcapng([syn, dns]))).toMatchObject([
      { index: 0, timeMs: 1_700_000_000_000, ip: syn },
      { index: 1, timeMs: 1_700_000_001_000, ip: dns },
    ]);
    expect(readCapture(pcapng([syn], 101, 9))[0]).toMatchObject({ timeMs: 1_700_000_000_000, ip: syn });
  });

  it('reports a truncated last record as skipped, and refuses what is not a capture', () => {
    const frames = readCapture(pcap([ethernet(syn), ethernet(dns)], { truncateLast: 5 }));
    expect(frames[1]).toMatchObject({ skipped: 'truncated record at the end of the file' });
    expect(() => readCapture(new Uint8Array([1, 2, 3, 4, 5]))).toThrow(CaptureError);
    expect(() => readCapture(new Uint8Array(2))).toThrow(/too short/);
    expect(readCapture(pcap([syn], { linkType: 9 }))[0]).toMatchObject({
      skipped: 'link type 9 is not supported',
    });
  });

  it('never throws anything but CaptureError on mutated files', () => {
    const base = [pcap([ethernet(syn), ethernet(dns)]), pcapng([syn, dns])];
    let seed = 99;
    for (let i = 0; i < 5000; i++) {
      const f = base[i & 1]!.slice();
      for (let k = 0; k < 3; k++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        f[seed % f.length] = seed >>> 24;
      }
      try {
        readCapture(f.subarray(0, f.length - (seed % 7)));
      } catch (e) {
        expect(e).toBeInstanceOf(CaptureError);
      }
    }
  });
});
