import fc from 'fast-check';
import { OK } from '../errors.js';
import { IcmpView } from '../icmp.js';
import { Icmp6View } from '../icmp6.js';
import { Ipv4View } from '../ipv4.js';
import { Ipv6View } from '../ipv6.js';
import { PacketSummary } from '../summary.js';
import { TcpView } from '../tcp.js';
import { UdpView } from '../udp.js';
import { VxlanView } from '../vxlan.js';
import { guarded, loadHex, loadIpv6Capture } from './fixtures.js';

/** Golden IPv4 and IPv6 packets of every kind, the seed corpus for mutation. */
export const goldenPackets: Buffer[] = [
  ...loadHex('ip/tcp-curl.hex'),
  ...loadHex('ip/udp-iperf3.hex'),
  ...loadHex('ip/icmp.hex'),
  ...loadHex('ip/vxlan.hex'),
  ...loadIpv6Capture().map((p) => p.bytes),
];

interface Bindable {
  bind(buf: Uint8Array, off: number, len: number): number;
}

/** readAll calls every getter of a bound view and its argument-free readers; any out-of-range read throws. */
function readAll(v: object): number {
  let acc = 0;
  for (
    let proto = Object.getPrototypeOf(v);
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (d.get) acc += Number(d.get.call(v)) | 0;
      else if (typeof d.value === 'function' && d.value.length === 0 && READERS.has(name))
        acc += Number(d.value.call(v)) | 0;
    }
  }
  return acc;
}
const READERS = new Set(['mss', 'options', 'verifyChecksum', 'srcText', 'dstText', 'upperChecksumOk']);

const makers: Array<() => Bindable> = [
  () => new Ipv4View(),
  () => new TcpView(),
  () => new UdpView(),
  () => new IcmpView(),
  () => new VxlanView(),
  () => new Ipv6View(),
  () => new Icmp6View(),
];

/**
 * checkEveryView binds each view kind on buf[off, off+len) through a guard that throws on any read outside
 * that range; binding must not throw, and after OK every getter must stay inside. Returns the OK count.
 */
export function checkEveryView(buf: Uint8Array, off: number, len: number): number {
  const g = guarded(buf, off, off + len);
  let oks = 0;
  for (const make of makers) {
    const v = make();
    const code = v.bind(g, off, len);
    if (typeof code !== 'number') throw new Error('bind returned a non-number');
    if (code === OK) {
      oks++;
      readAll(v);
      if ((v instanceof IcmpView || v instanceof Icmp6View) && v.hasInner) readAll(v.inner);
    }
  }
  return oks;
}

const summary = new PacketSummary();

/** checkSummary runs PacketSummary.read under the guard and checks its offsets stay in range. */
export function checkSummary(buf: Uint8Array, off: number, len: number): void {
  const code = summary.read(guarded(buf, off, off + len), off, len);
  if (code !== OK) return;
  const end = off + len;
  const s = summary;
  if (s.l4Offset < off + 20 || s.payloadOffset < s.l4Offset || s.payloadOffset + s.payloadLength > end) {
    throw new Error(
      `summary offsets out of range: l4 ${s.l4Offset} payload ${s.payloadOffset}+${s.payloadLength} end ${end}`,
    );
  }
}

/** randomBytes: arbitrary buffers with a random bound range inside. */
export const randomInput = fc
  .tuple(fc.uint8Array({ maxLength: 120 }), fc.nat(), fc.nat())
  .map(([b, a, c]) => {
    const off = b.length === 0 ? 0 : a % (b.length + 1);
    const len = b.length - off === 0 ? 0 : c % (b.length - off + 1);
    return { buf: b, off, len };
  });

/** mutatedGolden: a golden packet with a few bytes overwritten, maybe truncated, at a random offset. */
export const mutatedGolden = fc
  .tuple(
    fc.nat(goldenPackets.length - 1),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.nat(8),
  )
  .map(([i, muts, cut, pad]) => {
    const src = goldenPackets[i]!;
    const buf = new Uint8Array(pad + src.length);
    buf.set(src, pad);
    for (const [at, v] of muts) {
      // bias mutations toward the headers, where the decisions are made
      buf[pad + (at % Math.min(src.length, at % 3 === 0 ? src.length : 64))] = v;
    }
    const len = cut === undefined ? src.length : cut % (src.length + 1);
    return { buf, off: pad, len };
  });
