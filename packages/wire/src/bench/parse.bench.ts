/**
 * parse.bench: the per-packet cost of the wire views on a preallocated batch, against a plain
 * Buffer.readUInt* loop over the same batch measured in the same run (this machine is noisy: read the
 * ratio). Extracts (protocol, dst port, src addr, src port) as the switch does. Prints; asserts nothing.
 */
import { readFileSync } from 'node:fs';
import { IPPROTO, Ipv4View, OK, PacketSummary, TcpView, UdpView } from '../index.js';

const fixtures = new URL('../../fixtures/ip/', import.meta.url);
function load(name: string): Buffer[] {
  return readFileSync(new URL(name, fixtures), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => Buffer.from(l.trim(), 'hex'));
}

const corpus = [...load('tcp-curl.hex'), ...load('udp-iperf3.hex')];
const BATCH = 1024;
const SLOT = 2048; // a TUN arena slot
const arena = Buffer.alloc(BATCH * SLOT);
const offs = new Int32Array(BATCH);
const lens = new Int32Array(BATCH);
for (let i = 0; i < BATCH; i++) {
  const p = corpus[i % corpus.length]!;
  p.copy(arena, i * SLOT);
  offs[i] = i * SLOT;
  lens[i] = p.length;
}

function raw(): number {
  let acc = 0;
  for (let i = 0; i < BATCH; i++) {
    const o = offs[i]!;
    const ihl = (arena.readUInt8(o) & 0x0f) << 2;
    const proto = arena.readUInt8(o + 9);
    const src = arena.readUInt32BE(o + 12);
    const sport = arena.readUInt16BE(o + ihl);
    const dport = arena.readUInt16BE(o + ihl + 2);
    acc = (acc + proto + dport + src + sport) | 0;
  }
  return acc;
}

const summary = new PacketSummary();
function viaSummary(): number {
  let acc = 0;
  for (let i = 0; i < BATCH; i++) {
    if (summary.read(arena, offs[i]!, lens[i]!) !== OK) continue;
    acc = (acc + summary.protocol + summary.dstPort + summary.src + summary.srcPort) | 0;
  }
  return acc;
}

const ip = new Ipv4View();
const tcp = new TcpView();
const udp = new UdpView();
function viaViews(): number {
  let acc = 0;
  for (let i = 0; i < BATCH; i++) {
    if (ip.bind(arena, offs[i]!, lens[i]!) !== OK) continue;
    const p = ip.protocol;
    let sport = 0;
    let dport = 0;
    if (p === IPPROTO.TCP) {
      if (tcp.bind(arena, ip.payloadOffset, ip.payloadLength) !== OK) continue;
      sport = tcp.srcPort;
      dport = tcp.dstPort;
    } else if (p === IPPROTO.UDP) {
      if (udp.bind(arena, ip.payloadOffset, ip.payloadLength) !== OK) continue;
      sport = udp.srcPort;
      dport = udp.dstPort;
    }
    acc = (acc + p + dport + ip.src + sport) | 0;
  }
  return acc;
}

function nsPerPacket(fn: () => number, batches: number): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < batches; b++) sink ^= fn();
  const t1 = process.hrtime.bigint();
  if (sink === 0x7fffffff) console.log('');
  return Number(t1 - t0) / (batches * BATCH);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

if (raw() !== viaSummary() || raw() !== viaViews()) throw new Error('the loops disagree on the batch');
for (let w = 0; w < 3; w++) {
  nsPerPacket(raw, 500);
  nsPerPacket(viaSummary, 500);
  nsPerPacket(viaViews, 500);
}
const reps = 7;
const batches = 2000; // 2M packets per sample
const r: number[] = [];
const s: number[] = [];
const v: number[] = [];
for (let k = 0; k < reps; k++) {
  r.push(nsPerPacket(raw, batches));
  s.push(nsPerPacket(viaSummary, batches));
  v.push(nsPerPacket(viaViews, batches));
}
const mr = median(r);
const ms = median(s);
const mv = median(v);
console.log(
  `batch ${BATCH} packets (${corpus.length} golden TCP/UDP packets repeated), ${reps} interleaved samples of ${batches * BATCH} packets, median:`,
);
console.log(`  raw Buffer.readUInt* loop      ${mr.toFixed(1)} ns/packet (baseline)`);
console.log(`  Ipv4View + TcpView/UdpView     ${mv.toFixed(1)} ns/packet  ratio ${(mv / mr).toFixed(2)}x`);
console.log(`  PacketSummary.read (switch)    ${ms.toFixed(1)} ns/packet  ratio ${(ms / mr).toFixed(2)}x`);
console.log(
  `wire-parse ns_raw=${mr.toFixed(1)} ns_views=${mv.toFixed(1)} ns_summary=${ms.toFixed(1)} ratio_views=${(mv / mr).toFixed(2)} ratio_summary=${(ms / mr).toFixed(2)}`,
);
