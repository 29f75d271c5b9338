import { TCP_FLAGS } from '@onehost/wire';
import {
  echo6Reply,
  echoRequest,
  fragments,
  fragments6,
  ganeshaHandle,
  icmp6Error,
  icmpError,
  mountCall,
  nfsCall,
  rawIpPacket,
  tcp6Packet,
  tcpPacket,
  udp6Packet,
  udpPacket,
  withRecordMark,
} from './packet-builder.js';

const VIP = '203.0.113.10';
const C = '203.0.113.5';
/** the IPv6 cluster address FUZZ_YAML adds (RFC 3849 documentation prefix) and a client */
export const FUZZ_VIP6 = '2001:db8::10';
const C6 = '2001:db8:1::5';

/** fuzzCorpus is one valid packet per branch of the switch, the seeds mutations start from. */
export function fuzzCorpus(): Uint8Array[] {
  const { SYN, ACK, FIN, RST, PSH } = TCP_FLAGS;
  const t = (dstPort: number, flags: number, payload?: Uint8Array) =>
    tcpPacket({ src: C, dst: VIP, srcPort: 5555, dstPort, flags, payload });
  const u = (dstPort: number, payload?: Uint8Array) =>
    udpPacket({ src: C, dst: VIP, srcPort: 5555, dstPort, payload });
  const reply = tcpPacket({ src: VIP, dst: C, srcPort: 80, dstPort: 5555, flags: ACK });
  const big = u(
    2049,
    (() => {
      const call = nfsCall(ganeshaHandle(2), 7);
      const p = new Uint8Array(call.length + 200);
      p.set(call);
      return p;
    })(),
  );
  return [
    t(80, SYN),
    t(80, ACK),
    t(80, FIN | ACK),
    t(80, RST),
    t(443, SYN),
    t(443, ACK),
    t(8080, SYN),
    t(22, SYN),
    t(25, SYN),
    t(41234, ACK),
    t(9999, SYN),
    t(20048, PSH | ACK, withRecordMark(mountCall('/srv/home'))),
    t(2049, PSH | ACK, withRecordMark(nfsCall(ganeshaHandle(1)))),
    u(53),
    u(111, new Uint8Array(40)),
    u(20048, mountCall('/srv/projects/a', 1, 24)),
    u(20048, mountCall('', 5)),
    u(2049, nfsCall(ganeshaHandle(2))),
    u(2049, nfsCall(ganeshaHandle(3), 3)),
    u(7000),
    echoRequest(C, VIP),
    icmpError('203.0.113.1', VIP, 3, 4, reply),
    rawIpPacket(C, VIP, 47, new Uint8Array(12)),
    tcpPacket({ src: '203.0.113.200', dst: '198.18.0.12', srcPort: 1, dstPort: 22, flags: SYN }),
    ...fragments(big, 96),
    // IPv6: each function the switch routes for it, ICMPv6, extension headers, fragments
    tcp6Packet({ src: C6, dst: FUZZ_VIP6, srcPort: 5555, dstPort: 80, flags: SYN }),
    tcp6Packet({ src: C6, dst: FUZZ_VIP6, srcPort: 5555, dstPort: 443, flags: ACK }),
    tcp6Packet({ src: C6, dst: FUZZ_VIP6, srcPort: 5555, dstPort: 8080, flags: SYN }),
    tcp6Packet({
      src: C6,
      dst: FUZZ_VIP6,
      srcPort: 5555,
      dstPort: 22,
      flags: SYN,
      exts: [{ type: 0 }, { type: 60 }],
    }),
    tcp6Packet({ src: C6, dst: FUZZ_VIP6, srcPort: 443, dstPort: 40001, flags: ACK }),
    udp6Packet({ src: C6, dst: FUZZ_VIP6, srcPort: 5555, dstPort: 53 }),
    udp6Packet({ src: C6, dst: FUZZ_VIP6, srcPort: 5555, dstPort: 2049, payload: nfsCall(ganeshaHandle(1)) }),
    udp6Packet({
      src: C6,
      dst: FUZZ_VIP6,
      srcPort: 5555,
      dstPort: 53,
      exts: [{ type: 44, fragment: { offset: 0, more: true, id: 9 } }],
    }),
    ...fragments6(
      udp6Packet({ src: C6, dst: FUZZ_VIP6, srcPort: 5556, dstPort: 53, payload: new Uint8Array(200) }),
      96,
      0x80000001,
    ),
    echo6Reply(C6, FUZZ_VIP6, 41001),
    icmp6Error(
      '2001:db8:ff::1',
      FUZZ_VIP6,
      2,
      0,
      tcp6Packet({ src: FUZZ_VIP6, dst: C6, srcPort: 80, dstPort: 5555, flags: ACK }),
      1280,
    ),
  ];
}

/** Rng is a small deterministic PRNG (xorshift32) so a failing case can be replayed from its seed. */
export class Rng {
  constructor(private s: number) {
    if (this.s === 0) this.s = 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

/** Offsets worth hitting: version/IHL, total length, flags/fragment, protocol, addresses, ports, TCP offset/flags, RPC words. */
const HOT = [
  0, 2, 3, 6, 7, 9, 16, 19, 20, 21, 22, 23, 32, 33, 28, 29, 31, 36, 40, 44, 48, 52, 56, 60, 64, 68,
];

/**
 * mutate returns a mutated copy of a corpus packet (or random bytes): bit flips, hot-field writes,
 * truncation, extension, splices. The result may be anything; the switch must not throw on it.
 */
export function mutate(corpus: readonly Uint8Array[], rng: Rng): Uint8Array {
  const pick = rng.below(16);
  if (pick === 0) {
    const b = new Uint8Array(rng.below(120));
    for (let i = 0; i < b.length; i++) b[i] = rng.below(256);
    if (b.length > 0 && rng.below(2) === 0) b[0] = 0x45;
    return b;
  }
  const src = corpus[rng.below(corpus.length)]!;
  let b = src.slice();
  const n = 1 + rng.below(4);
  for (let k = 0; k < n; k++) {
    const op = rng.below(6);
    if (b.length === 0) break;
    if (op === 0) b[rng.below(b.length)]! ^= 1 << rng.below(8);
    else if (op === 1) {
      const at = HOT[rng.below(HOT.length)]!;
      if (at < b.length) b[at] = rng.below(4) === 0 ? 0xff : rng.below(256);
    } else if (op === 2) b = b.subarray(0, rng.below(b.length + 1)).slice();
    else if (op === 3) {
      const ext = new Uint8Array(b.length + 1 + rng.below(64));
      ext.set(b);
      for (let i = b.length; i < ext.length; i++) ext[i] = rng.below(256);
      b = ext;
    } else if (op === 4) {
      const other = corpus[rng.below(corpus.length)]!;
      const at = rng.below(b.length);
      const len = Math.min(other.length, b.length - at);
      b.set(other.subarray(0, len), at);
    } else {
      const at = rng.below(b.length);
      b[at] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)]!;
    }
  }
  return b;
}
