/**
 * Benchmark: decisions per second on a realistic mix, against a bare Map.get loop over the same packets,
 * and bytes per connection entry at 1M entries. Prints figures; asserts nothing about time.
 *
 *   npm run build -w @onehost/switch && npm run bench -w @onehost/switch
 */
import { TCP_FLAGS } from '@onehost/wire';
import { SwitchCounters } from '../counters.js';
import { DecisionOut, KIND } from '../decision.js';
import type { ConnectionManager } from '../functions/connection.js';
import { MessageSwitch } from '../message-switch.js';
import { FLOW, FlowTable } from '../tables/flow-table.js';
import { configFrom } from '../testing/example-config.js';
import { ganeshaHandle, mountCall, nfsCall, tcpPacket, udpPacket } from '../testing/packet-builder.js';

const LIVE = Number(process.env.BENCH_LIVE ?? 1_000_000);
const BATCH = 65_536;
/** packets per decideBatch call (one TUN read's worth). */
const ARENA = 64;
const PASSES = Number(process.env.BENCH_PASSES ?? 12);
const VIP = '203.0.113.10';

const gc = (globalThis as { gc?: () => void }).gc;

const CONFIG = `
gateway: gw
clusterAddresses: [{ network: outside, address: ${VIP} }]
nodes:
  - { id: 1, name: gw, address: 198.18.0.1 }
  - { id: 2, name: n1, address: 198.18.0.11, mountd: { udp: 20048 } }
  - { id: 3, name: n2, address: 198.18.0.12, mountd: { udp: 8081 } }
  - { id: 4, name: n3, address: 198.18.0.13 }
  - { id: 5, name: n4, address: 198.18.0.14 }
portBlocks:
  - { node: n1, from: 40000, to: 40999 }
  - { node: n2, from: 41000, to: 41999 }
exports:
  - { path: /srv/projects, node: n1, exportId: 1 }
  - { path: /srv/home, node: n2, exportId: 2 }
entries:
  - { protocol: tcp, port: 443, function: connection, policy: maglev, nodes: [n1, n2, n3, n4], maxEntries: 1000000 }
  - { protocol: udp, port: 53, function: udp-flow, nodes: [n1, n2, n3, n4], maxEntries: 262144 }
  - { protocol: udp, port: 20048, function: mount }
  - { protocol: udp, port: 2049, function: nfs }
`;

/** flow i → a client address in 203.0.113.0/24 (host byte) and a port; 1M distinct flows. */
const clientOf = (i: number): [number, number] => [
  (0xcb007100 | ((i % 250) + 1)) >>> 0,
  1024 + Math.floor(i / 250),
];

type Kind = 'syn' | 'established' | 'udp-flow' | 'port-block' | 'mount' | 'nfs';
const MIX: [Kind, number][] = [
  ['established', 70],
  ['syn', 5],
  ['udp-flow', 10],
  ['port-block', 8],
  ['nfs', 6],
  ['mount', 1],
];

function makeBatch(seed: number): {
  buf: Uint8Array;
  offsets: Int32Array;
  lengths: Int32Array;
  kinds: Kind[];
} {
  let s = seed;
  const rnd = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % n;
  };
  const pkts: Uint8Array[] = [];
  const kinds: Kind[] = [];
  const total = MIX.reduce((n, [, w]) => n + w, 0);
  const handles = [ganeshaHandle(1), ganeshaHandle(2)];
  for (let i = 0; i < BATCH; i++) {
    let r = rnd(total);
    let kind: Kind = 'established';
    for (const [k, w] of MIX) {
      if (r < w) {
        kind = k;
        break;
      }
      r -= w;
    }
    const [src, srcPort] = clientOf(rnd(LIVE));
    let p: Uint8Array;
    if (kind === 'established')
      p = tcpPacket({
        src,
        dst: VIP,
        srcPort,
        dstPort: 443,
        flags: TCP_FLAGS.ACK,
        payload: new Uint8Array(32),
      });
    else if (kind === 'syn')
      p = tcpPacket({
        src: (0xcb007100 | 251) + 0,
        dst: VIP,
        srcPort: 1024 + rnd(60000),
        dstPort: 443,
        flags: TCP_FLAGS.SYN,
        seq: rnd(1e9),
      });
    else if (kind === 'udp-flow')
      p = udpPacket({ src, dst: VIP, srcPort: 1024 + rnd(2000), dstPort: 53, payload: new Uint8Array(40) });
    else if (kind === 'port-block')
      p = tcpPacket({ src, dst: VIP, srcPort: 443, dstPort: 40000 + rnd(2000), flags: TCP_FLAGS.ACK });
    else if (kind === 'mount')
      p = udpPacket({
        src,
        dst: VIP,
        srcPort: 800,
        dstPort: 20048,
        payload: mountCall(rnd(2) ? '/srv/home/a' : '/srv/projects'),
      });
    else p = udpPacket({ src, dst: VIP, srcPort: 801, dstPort: 2049, payload: nfsCall(handles[rnd(2)]!, 6) });
    pkts.push(p);
    kinds.push(kind);
  }
  const size = pkts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(size);
  const offsets = new Int32Array(BATCH);
  const lengths = new Int32Array(BATCH);
  let o = 0;
  pkts.forEach((p, i) => {
    buf.set(p, o);
    offsets[i] = o;
    lengths[i] = p.length;
    o += p.length;
  });
  return { buf, offsets, lengths, kinds };
}

function memory(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** bytesPerEntry measures one connection table of LIVE entries, filled, against the heap before it. */
function bytesPerEntry(): number {
  const before = memory();
  const t = new FlowTable(LIVE, new SwitchCounters(), { evicted: 0, expired: 1 });
  for (let i = 0; i < LIVE; i++) {
    const [src, port] = clientOf(i);
    t.set(src, (port << 16) | 443, 0, 2 + (i & 3), FLOW.ESTABLISHED, 0, 1e9, 0);
  }
  const after = memory();
  if (t.size !== LIVE) throw new Error(`table holds ${t.size}`);
  return (after - before) / LIVE;
}

function main(): void {
  if (!gc) console.log('note: run node with --expose-gc for exact memory figures');
  const perEntry = bytesPerEntry();
  const base = memory();
  const sw = new MessageSwitch();
  sw.load(configFrom(CONFIG));
  const cm = sw.snapshot!.lookup(6, 443)!.fn as ConnectionManager;

  // 1M live connections: a SYN then an ACK each.
  const out = new DecisionOut();
  const syn = tcpPacket({ src: VIP, dst: VIP, srcPort: 1, dstPort: 443, flags: TCP_FLAGS.SYN, seq: 1 });
  const ack = tcpPacket({ src: VIP, dst: VIP, srcPort: 1, dstPort: 443, flags: TCP_FLAGS.ACK, seq: 2 });
  for (let i = 0; i < LIVE; i++) {
    const [src, port] = clientOf(i);
    for (const p of [syn, ack]) {
      new DataView(p.buffer).setUint32(12, src);
      new DataView(p.buffer).setUint16(20, port);
      sw.decide(p, 0, p.length, 0, out);
    }
    if (out.kind !== KIND.FORWARD) throw new Error('setup: connection not forwarded');
  }
  const full = memory();
  const entries = cm.table.size;

  const batch = makeBatch(7);
  const n = BATCH;
  const kinds = new Uint8Array(n);
  const nodes = new Int32Array(n);
  const ports = new Int32Array(n);
  const reasons = new Uint8Array(n);

  // Baseline: a bare Map.get per packet on a 1M-entry map keyed by (client address, port) read from the packet.
  const map = new Map<number, number>();
  for (let i = 0; i < LIVE; i++) {
    const [src, port] = clientOf(i);
    map.set(src * 65536 + port, i & 3);
  }
  // The gateway decides on batches just read from the TUN (fresh in cache): copy each group of ARENA
  // packets into a small arena (untimed, like the kernel's copy), then time the decision.
  const arena = new Uint8Array(ARENA * 128);
  const aOff = new Int32Array(ARENA);
  const aLen = new Int32Array(ARENA);
  const fill = (from: number): number => {
    let o = 0;
    const m = Math.min(ARENA, n - from);
    for (let j = 0; j < m; j++) {
      const i = from + j;
      const len = batch.lengths[i]!;
      arena.set(batch.buf.subarray(batch.offsets[i]!, batch.offsets[i]! + len), o);
      aOff[j] = o;
      aLen[j] = len;
      o += len;
    }
    return m;
  };
  let sink = 0;
  const baseline: number[] = [];
  const mixed: number[] = [];
  for (let pass = 0; pass < PASSES; pass++) {
    // new ISNs so the batch's SYNs are new connections, not retransmits
    for (let i = 0; i < n; i++) if (batch.kinds[i] === 'syn') batch.buf[batch.offsets[i]! + 27]! ^= pass + 1;
    let tBase = 0n;
    let tMix = 0n;
    for (let from = 0; from < n; from += ARENA) {
      const m = fill(from);
      let t0 = process.hrtime.bigint();
      for (let j = 0; j < m; j++) {
        const o = aOff[j]!;
        const src =
          ((arena[o + 12]! << 24) | (arena[o + 13]! << 16) | (arena[o + 14]! << 8) | arena[o + 15]!) >>> 0;
        const port = (arena[o + 20]! << 8) | arena[o + 21]!;
        sink += map.get(src * 65536 + port) ?? 1;
      }
      tBase += process.hrtime.bigint() - t0;
      t0 = process.hrtime.bigint();
      sw.decideBatch(arena, aOff, aLen, m, pass, kinds, nodes, ports, reasons);
      tMix += process.hrtime.bigint() - t0;
    }
    baseline.push(Number(tBase) / n);
    mixed.push(Number(tMix) / n);
  }
  const { buf, offsets } = batch;
  // Per class, on the same packets (one class at a time, decide per packet).
  const perClass: Record<string, number> = {};
  for (const [k] of MIX) {
    const idx = batch.kinds.flatMap((kk, i) => (kk === k ? [i] : []));
    const times: number[] = [];
    for (let pass = 0; pass < 5; pass++) {
      const t0 = process.hrtime.bigint();
      for (const i of idx) sw.decide(buf, offsets[i]!, batch.lengths[i]!, PASSES + pass, out);
      times.push(Number(process.hrtime.bigint() - t0) / idx.length);
    }
    perClass[k] = median(times);
  }
  const drops = sw.counters.toJSON().drops;
  const warm = mixed.slice(2);
  const warmBase = baseline.slice(2);
  console.log(
    `switch decide benchmark (node ${process.version}, ${n} packets in batches of ${ARENA}, ${PASSES} passes, first 2 warm-up)`,
  );
  console.log(`  mix: ${MIX.map(([k, w]) => `${k} ${w}%`).join(', ')}; ${entries} live connection entries`);
  console.log(
    `  decideBatch on the mix : median ${median(warm).toFixed(1)} ns/decision (min ${Math.min(...warm).toFixed(1)}, max ${Math.max(...warm).toFixed(1)}) = ${(1e3 / median(warm)).toFixed(2)} M decisions/s`,
  );
  console.log(
    `  bare Map.get baseline  : median ${median(warmBase).toFixed(1)} ns/packet (${LIVE}-entry Map<number, number>)`,
  );
  console.log(`  ratio                  : ${(median(warm) / median(warmBase)).toFixed(2)}x the baseline`);
  console.log(
    `  per class (decide)     : ${Object.entries(perClass)
      .map(([k, v]) => `${k} ${v.toFixed(0)} ns`)
      .join(', ')}`,
  );
  console.log(
    `  memory per connection  : ${perEntry.toFixed(1)} bytes/entry (a FlowTable of ${LIVE} entries, filled, after gc); whole switch ${((full - base) / entries).toFixed(1)} bytes per live connection (${((full - base) / 1048576).toFixed(1)} MiB for ${entries} entries, incl. the UDP flow table and Maglev tables)`,
  );
  console.log(`  drops during the run   : ${JSON.stringify(drops)}${sink < 0 ? '' : ''}`);
}

main();
