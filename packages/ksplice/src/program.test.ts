import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfMap } from '@onehost/kernel';
import {
  checksum,
  fold,
  Ipv4View,
  parseIpv4,
  parseIpv6,
  pseudoHeaderSum,
  pseudoHeaderSum6,
  sum16,
  TcpView,
} from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeGateway6Key,
  encodeGatewayKey,
  encodeGatewayValue,
  encodeNode6Key,
  encodeNodeKey,
  encodeNodeValue,
  GW_KEY_SIZE,
  GW_VALUE_SIZE,
  GW6_KEY_SIZE,
  NODE_KEY_SIZE,
  NODE_VALUE_SIZE,
  NODE6_KEY_SIZE,
} from './maps.js';

// The programs themselves, run by the kernel on crafted frames (BPF_PROG_TEST_RUN through `bpftool prog
// run`): needs root and bpftool, as loading them does.
const root = process.getuid?.() === 0;
/** The object the build made (the tests run from src/). */
const OBJECT = fileURLToPath(new URL('../dist/splice.bpf.o', import.meta.url));
const KSPLICE_MARK = 0x6f6b;
const CLIENT = parseIpv4('203.0.113.7');
const VIP = parseIpv4('203.0.113.80');
const CLIENT6 = parseIpv6('2001:db8:113::7');
const VIP6 = parseIpv6('2001:db8:113::80');

interface Opt {
  /** bytes before the timestamps option (NOPs), to put it at an odd offset */
  pad: number;
  ts?: [number, number];
  sack?: Array<[number, number]>;
}

/**
 * frame builds Ethernet + IPv4 + TCP (numeric addresses) or Ethernet + IPv6 + TCP (16-byte ones) with the
 * options asked for and right checksums.
 */
function frame(o: {
  src: number | Uint8Array;
  dst: number | Uint8Array;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  opt: Opt;
}): Uint8Array {
  const opts: number[] = [];
  for (let i = 0; i < o.opt.pad; i++) opts.push(1);
  const be32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  if (o.opt.ts) opts.push(8, 10, ...be32(o.opt.ts[0]), ...be32(o.opt.ts[1]));
  if (o.opt.sack) {
    opts.push(5, 2 + 8 * o.opt.sack.length);
    for (const [l, r] of o.opt.sack) opts.push(...be32(l), ...be32(r));
  }
  while (opts.length % 4 !== 0) opts.push(0);
  const v6 = typeof o.src !== 'number';
  const ipLen = v6 ? 40 : 20;
  const tcpLen = 20 + opts.length + 100;
  const f = new Uint8Array(14 + ipLen + tcpLen);
  const v = new DataView(f.buffer);
  const ip = 14;
  if (typeof o.src === 'number' && typeof o.dst === 'number') {
    v.setUint16(12, 0x0800);
    f[ip] = 0x45;
    v.setUint16(ip + 2, 20 + tcpLen);
    f[ip + 8] = 64;
    f[ip + 9] = 6;
    v.setUint32(ip + 12, o.src);
    v.setUint32(ip + 16, o.dst);
    v.setUint16(ip + 10, checksum(f, ip, 20));
  } else if (typeof o.src !== 'number' && typeof o.dst !== 'number') {
    v.setUint16(12, 0x86dd);
    f[ip] = 0x60;
    v.setUint16(ip + 4, tcpLen);
    f[ip + 6] = 6; // RFC 8200 §3: Next Header TCP, no extension headers
    f[ip + 7] = 64;
    f.set(o.src, ip + 8);
    f.set(o.dst, ip + 24);
  } else throw new Error('both addresses of one family');
  const t = ip + ipLen;
  v.setUint16(t, o.sport);
  v.setUint16(t + 2, o.dport);
  v.setUint32(t + 4, o.seq >>> 0);
  v.setUint32(t + 8, o.ack >>> 0);
  f[t + 12] = ((20 + opts.length) / 4) << 4;
  f[t + 13] = o.flags;
  v.setUint16(t + 14, o.window);
  f.set(opts, t + 20);
  for (let i = t + 20 + opts.length; i < f.length; i++) f[i] = i & 255;
  const pseudo =
    typeof o.src === 'number' && typeof o.dst === 'number'
      ? pseudoHeaderSum(o.src, o.dst, 6, tcpLen)
      : pseudoHeaderSum6(f, ip + 8, ip + 24, 6, tcpLen);
  v.setUint16(t + 16, checksum(f, t, tcpLen, pseudo));
  return f;
}

/** parse6 reads back a frame6 segment: its TCP header and whether its checksum holds (RFC 8200 §8.1). */
function parse6(f: Uint8Array) {
  const at = 14 + 40;
  const len = f.length - at;
  const t = new TcpView();
  expect(t.bind(f, at, len)).toBe(0);
  const ok = fold(sum16(f, at, len, pseudoHeaderSum6(f, 14 + 8, 14 + 24, 6, len))) === 0xffff;
  return { t, ok, v: new DataView(f.buffer, f.byteOffset) };
}

function parse(f: Uint8Array) {
  const ip = new Ipv4View();
  expect(ip.bind(f, 14, f.length - 14)).toBe(0);
  const t = new TcpView();
  expect(t.bind(f, 14 + ip.headerLength, ip.totalLength - ip.headerLength)).toBe(0);
  return { ip, t, v: new DataView(f.buffer, f.byteOffset) };
}

describe.skipIf(!root)('the tc programs, run by the kernel on crafted segments', () => {
  let dir: string;
  /** the bpffs, inside dir (regular files cannot go there) */
  let fs: string;
  let node: BpfMap;
  let gw: BpfMap;
  let node6: BpfMap;
  let gw6: BpfMap;

  function run(prog: string, data: Uint8Array, mark = 0): { ret: number; out: Uint8Array } {
    const inFile = join(dir, 'in');
    const outFile = join(dir, 'out');
    const ctxFile = join(dir, 'ctx');
    writeFileSync(inFile, data);
    // struct __sk_buff: len, pkt_type, mark, … — the rest zero (the kernel refuses other fields)
    const ctx = new Uint8Array(192);
    new DataView(ctx.buffer).setUint32(8, mark, true);
    writeFileSync(ctxFile, ctx);
    const text = execFileSync(
      'bpftool',
      [
        '-j',
        'prog',
        'run',
        'pinned',
        join(fs, 'progs', prog),
        'data_in',
        inFile,
        'data_out',
        outFile,
        'ctx_in',
        ctxFile,
      ],
      { encoding: 'utf8' },
    );
    return {
      ret: (JSON.parse(text) as { retval: number }).retval,
      out: new Uint8Array(readFileSync(outFile)),
    };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ksplice-test-'));
    fs = join(dir, 'fs');
    mkdirSync(fs);
    execFileSync('mount', ['-t', 'bpf', 'bpf', fs]);
    execFileSync('bpftool', [
      'prog',
      'loadall',
      OBJECT,
      join(fs, 'progs'),
      'type',
      'classifier',
      'pinmaps',
      join(fs, 'maps'),
    ]);
    node = BpfMap.open(join(fs, 'maps', 'ks_node'), NODE_KEY_SIZE, NODE_VALUE_SIZE);
    gw = BpfMap.open(join(fs, 'maps', 'ks_gw'), GW_KEY_SIZE, GW_VALUE_SIZE);
    node6 = BpfMap.open(join(fs, 'maps', 'ks_node6'), NODE6_KEY_SIZE, NODE_VALUE_SIZE);
    gw6 = BpfMap.open(join(fs, 'maps', 'ks_gw6'), GW6_KEY_SIZE, GW_VALUE_SIZE);
  });
  afterAll(() => {
    node?.close();
    gw?.close();
    node6?.close();
    gw6?.close();
    if (dir !== undefined) {
      execFileSync('umount', [fs]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const nodeFlow = {
    clientAddr: CLIENT,
    clusterAddr: VIP,
    clientPort: 40000,
    nodePort: 20050,
    clusterPort: 20048,
    sOff: 0x10000005,
    tsOff: -1000,
    nodeWscale: 7,
    gatewayWscale: 9,
  };

  /** nodeSegment: a node → client segment of nodeFlow's ports (from `src`, the cluster address). */
  const nodeSegment = (src: number | Uint8Array, dst: number | Uint8Array, opt: Opt, flags = 0x18) =>
    frame({ src, dst, sport: 20050, dport: 40000, seq: 5, ack: 77, flags, window: 1000, opt });

  for (const pad of [2, 1]) {
    it(`node → client: seq −= sOff, TSval += tsOff, window rescaled, cluster port; checksum still right (TS option at ${pad === 1 ? 'an odd' : 'an even'} offset)`, () => {
      node.update(
        encodeNodeKey(nodeFlow, new Uint8Array(NODE_KEY_SIZE)),
        encodeNodeValue(nodeFlow, new Uint8Array(NODE_VALUE_SIZE)),
      );
      const f = nodeSegment(VIP, CLIENT, { pad, ts: [500, 600] });
      const { ret, out } = run('ks_node_out', f, KSPLICE_MARK);
      expect(ret).toBe(0); // TC_ACT_OK
      const { ip, t } = parse(out);
      expect([t.srcPort, t.dstPort, t.seq, t.ack]).toEqual([20048, 40000, (5 - 0x10000005) >>> 0, 77]);
      expect(t.window).toBe(250); // 1000 << 7 >> 9
      const at = 14 + 20 + 20 + pad;
      const dv = new DataView(out.buffer, out.byteOffset);
      expect([dv.getUint32(at + 2), dv.getUint32(at + 6)]).toEqual([(500 - 1000) >>> 0, 600]);
      expect(t.verifyChecksum(ip.src, ip.dst)).toBe(true);
      // the payload is untouched
      expect(out.subarray(out.length - 100)).toEqual(f.subarray(f.length - 100));
    });
  }

  it('node: a segment without the mark, or of no flow, passes untouched', () => {
    const f = nodeSegment(VIP, CLIENT, { pad: 2, ts: [1, 2] }, 0x10);
    expect(run('ks_node_out', f, 0).out).toEqual(f);
    const other = frame({
      src: VIP,
      dst: CLIENT,
      sport: 20050,
      dport: 40001,
      seq: 5,
      ack: 77,
      flags: 0x10,
      window: 1000,
      opt: { pad: 2 },
    });
    expect(run('ks_node_out', other, KSPLICE_MARK).out).toEqual(other);
  });

  const gwFlow = {
    clientAddr: CLIENT,
    clientPort: 40000,
    clusterPort: 2049,
    nodePort: 2050,
    sOff: 0x7ffffff0,
    tsOff: 33,
    mark: 0x6f480002,
  };

  /** clientSegment: a client → cluster segment of gwFlow's ports. */
  const clientSegment = (src: number | Uint8Array, dst: number | Uint8Array, opt: Opt, flags = 0x10) =>
    frame({ src, dst, sport: 40000, dport: 2049, seq: 9, ack: 1000, flags, window: 500, opt });

  it('client → node: ack and SACK edges += sOff, TSecr −= tsOff, node port; checksum still right', () => {
    gw.update(
      encodeGatewayKey(gwFlow, new Uint8Array(GW_KEY_SIZE)),
      encodeGatewayValue(gwFlow, new Uint8Array(GW_VALUE_SIZE)),
    );
    const sack: Array<[number, number]> = [
      [100, 200],
      [0xfffffff0, 0x10],
    ];
    const f = clientSegment(CLIENT, VIP, { pad: 1, ts: [700, 800], sack });
    const { ret, out } = run('ks_gw_in', f);
    expect(ret).toBe(0);
    const { ip, t, v } = parse(out);
    expect([t.srcPort, t.dstPort, t.seq, t.ack]).toEqual([40000, 2050, 9, (1000 + 0x7ffffff0) >>> 0]);
    const ts = 14 + 20 + 20 + 1;
    expect([v.getUint32(ts + 2), v.getUint32(ts + 6)]).toEqual([700, 800 - 33]);
    const edges = [0, 1, 2, 3].map((i) => v.getUint32(ts + 10 + 2 + 4 * i));
    expect(edges).toEqual(sack.flat().map((e) => (e + 0x7ffffff0) >>> 0));
    expect(t.verifyChecksum(ip.src, ip.dst)).toBe(true);
  });

  it('client → node: SYN, FIN and RST are left to user space, untouched', () => {
    for (const flags of [0x02, 0x11, 0x04]) {
      const f = clientSegment(CLIENT, VIP, { pad: 2 }, flags);
      expect(run('ks_gw_in', f).out).toEqual(f);
    }
  });
  it('IPv6, node → client: the same shift from ks_node6; checksum still right', () => {
    const flow = { ...nodeFlow, clientAddr: CLIENT6, clusterAddr: VIP6 };
    node6.update(
      encodeNode6Key(flow, new Uint8Array(NODE6_KEY_SIZE)),
      encodeNodeValue(flow, new Uint8Array(NODE_VALUE_SIZE)),
    );
    const f = nodeSegment(VIP6, CLIENT6, { pad: 1, ts: [500, 600] });
    const { ret, out } = run('ks_node_out', f, KSPLICE_MARK);
    expect(ret).toBe(0);
    const { t, ok, v } = parse6(out);
    expect([t.srcPort, t.dstPort, t.seq, t.ack, t.window]).toEqual([
      20048,
      40000,
      (5 - 0x10000005) >>> 0,
      77,
      250,
    ]);
    const at = 14 + 40 + 20 + 1;
    expect([v.getUint32(at + 2), v.getUint32(at + 6)]).toEqual([(500 - 1000) >>> 0, 600]);
    expect(ok).toBe(true);
    expect(out.subarray(0, 54)).toEqual(f.subarray(0, 54)); // Ethernet and IPv6 headers untouched
    // the IPv4 flow of the same ports is another flow: an IPv6 segment of a client not in ks_node6 passes
    const stranger = nodeSegment(VIP6, parseIpv6('2001:db8:113::8'), { pad: 2 }, 0x10);
    expect(run('ks_node_out', stranger, KSPLICE_MARK).out).toEqual(stranger);
  });

  it('IPv6, client → node: ack and SACK edges += sOff, TSecr −= tsOff, node port; extension headers left alone', () => {
    const flow = { ...gwFlow, clientAddr: CLIENT6 };
    gw6.update(
      encodeGateway6Key(flow, new Uint8Array(GW6_KEY_SIZE)),
      encodeGatewayValue(flow, new Uint8Array(GW_VALUE_SIZE)),
    );
    const sack: Array<[number, number]> = [[100, 200]];
    const opt: Opt = { pad: 2, ts: [700, 800], sack };
    const f = clientSegment(CLIENT6, VIP6, opt);
    const { ret, out } = run('ks_gw_in', f);
    expect(ret).toBe(0);
    const { t, ok, v } = parse6(out);
    expect([t.srcPort, t.dstPort, t.seq, t.ack]).toEqual([40000, 2050, 9, (1000 + 0x7ffffff0) >>> 0]);
    const ts = 14 + 40 + 20 + 2;
    expect([v.getUint32(ts + 2), v.getUint32(ts + 6)]).toEqual([700, 800 - 33]);
    expect([v.getUint32(ts + 12), v.getUint32(ts + 16)]).toEqual([
      (100 + 0x7ffffff0) >>> 0,
      (200 + 0x7ffffff0) >>> 0,
    ]);
    expect(ok).toBe(true);
    // a Destination Options header before TCP (RFC 8200 §4.6): not parsed here, left to user space
    const ext = clientSegment(CLIENT6, VIP6, opt);
    ext[14 + 6] = 60;
    expect(run('ks_gw_in', ext).out).toEqual(ext);
    // SYN, FIN and RST of an IPv6 flow stay with user space too
    const fin = clientSegment(CLIENT6, VIP6, opt, 0x11);
    expect(run('ks_gw_in', fin).out).toEqual(fin);
  });
});
