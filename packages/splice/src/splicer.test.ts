import { Ipv4View, parseIpv4, TCP_FLAGS, TCP_OPTION, TcpView } from '@onehost/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeHandover,
  decodeShift,
  decodeShifts,
  encodeHandover,
  encodeShift,
  HANDOVER_FLAG,
  type Handover,
  MSG,
  SHIFT_LENGTH,
  SHIFTS_PER_DATAGRAM,
  type Shift,
} from './message.js';
import { tsOption, writeSegment } from './segment.js';
import { type BoundFlow, SPLICE_EVENTS, Splicer } from './splicer.js';

const CLIENT = parseIpv4('203.0.113.10');
const VIP = parseIpv4('203.0.113.80');
const ALL = HANDOVER_FLAG.SACK | HANDOVER_FLAG.TIMESTAMPS | HANDOVER_FLAG.WINDOW_SCALE;

function handover(over: Partial<Handover> = {}): Handover {
  return {
    flags: ALL,
    clientAddr: CLIENT,
    clusterAddr: VIP,
    clientPort: 40000,
    clusterPort: 20048,
    nodePort: 45365,
    clientSeq: 0xfffffff0, // wraps inside the test
    serverSeq: 0x10000029,
    mss: 1448,
    clientWscale: 7,
    gatewayWscale: 9,
    clientTsval: 5000,
    gatewayTsval: 900_000,
    clientWindow: 502,
    data: new Uint8Array(3000).map((_, i) => i & 0xff),
    ...over,
  };
}

function message(h: Handover): Uint8Array {
  const b = new Uint8Array(70_000);
  return b.subarray(0, encodeHandover(h, b));
}

interface Seg {
  ip: Ipv4View;
  t: TcpView;
  bytes: Uint8Array;
}
function parse(p: Uint8Array): Seg {
  const bytes = p.slice();
  const ip = new Ipv4View();
  expect(ip.bind(bytes)).toBe(0);
  const t = new TcpView();
  expect(t.bind(bytes, ip.headerLength, ip.len - ip.headerLength)).toBe(0);
  expect(t.verifyChecksum(ip.src, ip.dst)).toBe(true);
  return { ip, t, bytes };
}

function harness(opts = {}) {
  const injected: Seg[] = [];
  const sent: Seg[] = [];
  const s = new Splicer(
    { inject: (p) => injected.push(parse(p)), sendOut: (p) => sent.push(parse(p)) },
    opts,
  );
  return { s, injected, sent };
}

/** nodeSegment is what the node's kernel would send on the flow. */
function nodeSegment(o: {
  seq: number;
  ack: number;
  flags: number;
  sport?: number;
  window?: number;
  ts?: { val: number; ecr: number };
  wscale?: number;
  payload?: Uint8Array;
}): Uint8Array {
  const b = new Uint8Array(2000);
  const n = writeSegment(b, {
    src: VIP,
    dst: CLIENT,
    srcPort: o.sport ?? 45365,
    dstPort: 40000,
    seq: o.seq,
    ack: o.ack,
    flags: o.flags,
    window: o.window ?? 1000,
    ...(o.wscale !== undefined ? { syn: { mss: 1460, sack: true, wscale: o.wscale } } : {}),
    ...(o.ts ? { ts: o.ts } : {}),
    ...(o.payload ? { payload: o.payload } : {}),
  });
  return b.subarray(0, n);
}

function clientSegment(o: {
  seq: number;
  ack: number;
  flags: number;
  ts?: { val: number; ecr: number };
  payload?: Uint8Array;
  dport?: number;
}): Uint8Array {
  const b = new Uint8Array(2000);
  b[0] = MSG.SEGMENT;
  const n = writeSegment(b.subarray(1), {
    src: CLIENT,
    dst: VIP,
    srcPort: 40000,
    dstPort: o.dport ?? 20048,
    seq: o.seq,
    ack: o.ack,
    flags: o.flags,
    window: 500,
    ...(o.ts ? { ts: o.ts } : {}),
    ...(o.payload ? { payload: o.payload } : {}),
  });
  return b.subarray(0, n + 1);
}

const NODE_ISN = 0x7ffffff0;
const NODE_TS = 123;

function establish() {
  const x = harness();
  const h = handover();
  const m = message(h);
  x.s.onMessage(m, 0, m.length, 0);
  x.s.onOutbound(...args(nodeSynAck(h, { val: NODE_TS, ecr: 5000 }, 7)), 1);
  return { ...x, h };
}
const args = (p: Uint8Array): [Uint8Array, number, number] => [p, 0, p.length];

/** nodeSynAck is the node kernel's answer to the replayed SYN of `h`. */
function nodeSynAck(h: Handover, ts?: { val: number; ecr: number }, wscale?: number): Uint8Array {
  return nodeSegment({
    seq: NODE_ISN,
    ack: h.clientSeq,
    flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK,
    ...(ts ? { ts } : {}),
    ...(wscale !== undefined ? { wscale } : {}),
  });
}

describe('Splicer', () => {
  it('replays the client SYN with its options, one byte before the buffered data', () => {
    const { s, injected } = harness();
    const m = message(handover());
    s.onMessage(m, 0, m.length, 0);
    expect(injected).toHaveLength(1);
    const { ip, t } = injected[0]!;
    expect([ip.src, ip.dst, t.srcPort, t.dstPort]).toEqual([CLIENT, VIP, 40000, 45365]);
    expect(t.flags).toBe(TCP_FLAGS.SYN);
    expect(t.seq).toBe(0xffffffef);
    expect(t.mss()).toBe(1448);
    expect(t.findOption(TCP_OPTION.SACK_PERMITTED)).toBeGreaterThan(0);
    const i = tsOption(t);
    expect(t.buf[i + 5]).toBe(5000 & 0xff);
    const w = t.findOption(TCP_OPTION.WINDOW_SCALE);
    expect(t.buf[w + 2]).toBe(7);
    expect(t.window).toBe(64256); // 502 << 7: a SYN's window is not scaled
    expect(s.counters.handover).toBe(1);
  });

  it('completes the handshake, delivers the buffered bytes in MSS chunks, swallows the SYN-ACK', () => {
    const { s, injected, sent, h } = establish();
    expect(sent).toHaveLength(0);
    expect(s.counters.established).toBe(1);
    const [ack, ...data] = injected.slice(1);
    expect(ack!.t.flags).toBe(TCP_FLAGS.ACK);
    expect(ack!.t.ack).toBe((NODE_ISN + 1) >>> 0);
    expect(ack!.t.seq).toBe(h.clientSeq);
    const joined = Buffer.concat(data.map((d) => d.t.buf.subarray(d.t.payloadOffset, d.t.off + d.t.len)));
    expect(Buffer.compare(joined, Buffer.from(h.data))).toBe(0);
    expect(data.map((d) => d.t.seq)).toEqual([
      h.clientSeq,
      (h.clientSeq + 1436) >>> 0,
      (h.clientSeq + 2872) >>> 0,
    ]);
    expect(data.at(-1)!.t.flags & TCP_FLAGS.PSH).toBeTruthy();
    const i = tsOption(data[0]!.t);
    expect(new DataView(data[0]!.bytes.buffer).getUint32(data[0]!.t.off - data[0]!.t.off + i + 6)).toBe(
      NODE_TS,
    );
  });

  it('shifts the node replies into the client view: seq, source port, TSval, window scale', () => {
    const { s, sent, h } = establish();
    const payload = new Uint8Array(100).fill(7);
    s.onOutbound(
      ...args(
        nodeSegment({
          seq: NODE_ISN + 1,
          ack: (h.clientSeq + 3000) >>> 0,
          flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH,
          ts: { val: NODE_TS + 10, ecr: 5001 },
          window: 1024,
          payload,
        }),
      ),
      2,
    );
    expect(sent).toHaveLength(1);
    const { t } = sent[0]!;
    expect(t.srcPort).toBe(20048);
    expect(t.seq).toBe(h.serverSeq);
    expect(t.ack).toBe((h.clientSeq + 3000) >>> 0);
    const i = tsOption(t);
    expect(new DataView(t.buf.buffer, t.buf.byteOffset).getUint32(i + 2)).toBe(900_010);
    expect(t.window).toBe(256); // 1024 << 7 >> 9
  });

  it('shifts client segments into the node view: ack, SACK edges, TSecr, port', () => {
    const { s, injected, h } = establish();
    const before = injected.length;
    const m = clientSegment({
      seq: (h.clientSeq + 3000) >>> 0,
      ack: (h.serverSeq + 100) >>> 0,
      flags: TCP_FLAGS.ACK,
      ts: { val: 5002, ecr: 900_010 },
    });
    s.onMessage(m, 0, m.length, 3);
    expect(injected).toHaveLength(before + 1);
    const { t } = injected.at(-1)!;
    expect(t.dstPort).toBe(45365);
    expect(t.ack).toBe((NODE_ISN + 1 + 100) >>> 0);
    const i = tsOption(t);
    expect(new DataView(t.buf.buffer, t.buf.byteOffset).getUint32(i + 6)).toBe(NODE_TS + 10);
  });

  it('holds client segments that arrive before the SYN-ACK, or before the handover, and delivers them after', () => {
    const { s, injected } = harness();
    const h = handover();
    const early = clientSegment({
      seq: (h.clientSeq + 3000) >>> 0,
      ack: h.serverSeq,
      flags: TCP_FLAGS.ACK | TCP_FLAGS.FIN,
    });
    s.onMessage(early, 0, early.length, 0);
    expect(injected).toHaveLength(0);
    const m = message(h);
    s.onMessage(m, 0, m.length, 1);
    s.onOutbound(...args(nodeSynAck(h, { val: 1, ecr: 5000 }, 9)), 2);
    const last = injected.at(-1)!.t;
    expect(last.fin).toBe(true);
    expect(last.ack).toBe((NODE_ISN + 1) >>> 0);
  });

  it('retries the SYN, then gives up and resets the client', () => {
    const { s, injected, sent } = harness({ synRetryMs: 10, synTries: 3 });
    const m = message(handover());
    s.onMessage(m, 0, m.length, 0);
    for (let now = 0; now <= 200; now += 5) s.tick(now);
    expect(injected.filter((x) => x.t.syn)).toHaveLength(3);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.t.rst).toBe(true);
    expect(sent[0]!.t.seq).toBe(0x10000029);
    expect(s.size).toBe(0);
    expect(s.counters.syn_given_up).toBe(1);
  });

  it('forgets a flow shortly after both FINs or a RST, and an idle one after the idle timeout', () => {
    const { s, h } = establish();
    s.onOutbound(
      ...args(nodeSegment({ seq: NODE_ISN + 1, ack: h.clientSeq, flags: TCP_FLAGS.ACK | TCP_FLAGS.FIN })),
      5,
    );
    const fin = clientSegment({
      seq: (h.clientSeq + 3000) >>> 0,
      ack: h.serverSeq + 1,
      flags: TCP_FLAGS.ACK | TCP_FLAGS.FIN,
    });
    s.onMessage(fin, 0, fin.length, 6);
    s.tick(1000);
    expect(s.size).toBe(1);
    s.tick(2006);
    expect(s.size).toBe(0);
    const idle = establish();
    idle.s.tick(900_000);
    expect(idle.s.size).toBe(1);
    idle.s.tick(900_002);
    expect(idle.s.size).toBe(0);
    expect(idle.s.counters.expired).toBe(1);
  });

  it('ignores duplicate handovers and refuses flows beyond the cap with a reset', () => {
    const { s, sent } = harness({ maxFlows: 1 });
    const m = message(handover());
    s.onMessage(m, 0, m.length, 0);
    s.onMessage(m, 0, m.length, 0);
    expect(s.counters.handover_duplicate).toBe(1);
    const other = message(handover({ clientPort: 40001 }));
    s.onMessage(other, 0, other.length, 0);
    expect(s.counters.handover_refused_full).toBe(1);
    expect(sent[0]!.t.rst).toBe(true);
  });

  it('works without timestamps, SACK or window scaling', () => {
    const x = harness();
    const h = handover({ flags: 0, clientWscale: 0, gatewayWscale: 0 });
    const m = message(h);
    x.s.onMessage(m, 0, m.length, 0);
    expect(tsOption(x.injected[0]!.t)).toBe(-1);
    expect(x.injected[0]!.t.window).toBe(502);
    x.s.onOutbound(...args(nodeSynAck(h)), 1);
    x.s.onOutbound(
      ...args(nodeSegment({ seq: NODE_ISN + 1, ack: h.clientSeq, flags: TCP_FLAGS.ACK, window: 777 })),
      2,
    );
    expect(x.sent[0]!.t.window).toBe(777);
    expect(x.sent[0]!.t.seq).toBe(h.serverSeq);
  });

  it('counts what it cannot use: unknown flows, bad messages, malformed packets', () => {
    const { s } = harness();
    s.onOutbound(...args(nodeSegment({ seq: 1, ack: 1, flags: TCP_FLAGS.ACK })), 0);
    s.onOutbound(new Uint8Array(10), 0, 10, 0);
    s.onMessage(new Uint8Array([9, 1, 2]), 0, 3, 0);
    s.onMessage(new Uint8Array([MSG.HANDOVER, 1]), 0, 2, 0);
    s.onMessage(new Uint8Array([MSG.SEGMENT, 0x45]), 0, 2, 0);
    s.onMessage(new Uint8Array(0), 0, 0, 0);
    expect(s.counters.out_unknown).toBe(1);
    expect(s.counters.out_malformed).toBe(1);
    expect(s.counters.message_unknown_type).toBe(2);
    expect(s.counters.handover_malformed).toBe(1);
    expect(s.counters.in_malformed).toBe(1);
  });

  it('never throws on random or mutated input, and every packet it emits has valid checksums', () => {
    const base = message(handover());
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 3 }),
            fc.uint8Array({ maxLength: 120 }),
            fc.integer({ min: 0, max: 200 }),
          ),
          { maxLength: 20 },
        ),
        (steps) => {
          const { s } = harness();
          let now = 0;
          for (const [kind, bytes, at] of steps) {
            now += 50;
            if (kind === 0) {
              const m = base.slice();
              for (let i = 0; i < bytes.length; i++) m[(at + i * 7) % m.length] = bytes[i]!;
              s.onMessage(m, 0, m.length, now);
            } else if (kind === 1) s.onMessage(bytes, 0, bytes.length, now);
            else if (kind === 2) s.onOutbound(bytes, 0, bytes.length, now);
            else s.tick(now);
          }
          expect(Object.keys(s.counters)).toEqual([...SPLICE_EVENTS]);
        },
      ),
      { numRuns: process.env.CI ? 20_000 : 5_000 },
    );
  });
});

describe('handover messages', () => {
  it('refuses what does not fit, and names what is wrong with a malformed datagram', () => {
    const h = handover();
    expect(encodeHandover(h, new Uint8Array(10))).toBe(-1);
    const m = message(h);
    const edit = (at: number, v: number) => {
      const c = m.slice();
      c[at] = v;
      return c;
    };
    const dec = (b: Uint8Array) => decodeHandover(b, 0, b.length);
    expect(dec(m.subarray(0, 20))).toBe('truncated');
    expect(dec(edit(1, 9))).toBe('version');
    expect(dec(m.subarray(0, m.length - 1))).toBe('length');
    expect(dec(edit(28, 15))).toBe('window_scale');
    const two = (at: number, hi: number, lo: number) => {
      const c = m.slice();
      c[at] = hi;
      c[at + 1] = lo;
      return c;
    };
    expect(dec(two(26, 0, 10))).toBe('mss');
    expect(dec(two(12, 0, 0))).toBe('port');
    const ok = dec(m);
    expect(typeof ok === 'string' ? ok : ok.data.length).toBe(3000);
  });
});

describe('Splicer corner cases', () => {
  it('leaves a partial checksum alone while rewriting (offloaded super-packets)', () => {
    const { s, h } = establish();
    const p = nodeSegment({
      seq: NODE_ISN + 1,
      ack: h.clientSeq,
      flags: TCP_FLAGS.ACK,
      ts: { val: NODE_TS + 1, ecr: 1 },
    });
    const before = new DataView(p.buffer, p.byteOffset).getUint16(36);
    const n = s.rewriteOutbound(p, 0, p.length, 2, true);
    expect(n).toBe(p.length);
    expect(new DataView(p.buffer, p.byteOffset).getUint16(36)).toBe(before);
    expect(new DataView(p.buffer, p.byteOffset).getUint32(24)).toBe(h.serverSeq);
  });

  it('resets the client when the node refuses the replayed SYN, and swallows repeated SYN-ACKs', () => {
    const x = harness();
    const h = handover();
    const m = message(h);
    x.s.onMessage(m, 0, m.length, 0);
    x.s.onOutbound(
      ...args(nodeSegment({ seq: 0, ack: h.clientSeq, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK })),
      1,
    );
    expect(x.sent.at(-1)!.t.rst).toBe(true);
    expect(x.s.counters.closed).toBe(1);
    const y = establish();
    const synAck = nodeSynAck(y.h);
    expect(y.s.rewriteOutbound(synAck, 0, synAck.length, 3)).toBe(0);
    expect(y.s.list()).toEqual([
      {
        client: '203.0.113.10:40000',
        clusterPort: 20048,
        nodePort: 45365,
        state: 'established',
        kernel: false,
      },
    ]);
  });

  it('a new handover on the same client port replaces the old flow', () => {
    const { s } = establish();
    const m = message(handover({ clientSeq: 777 }));
    s.onMessage(m, 0, m.length, 5);
    expect(s.size).toBe(1);
    expect(s.list()[0]!.state).toBe('syn-sent');
    expect(s.counters.handover).toBe(2);
  });
});

describe('shift messages', () => {
  it('tell the gateway the offsets once the node answered, and round-trip', () => {
    const shifts: Shift[] = [];
    const s = new Splicer({
      inject: () => undefined,
      sendOut: () => undefined,
      established: (x) => shifts.push(x),
    });
    const h = handover();
    const m = message(h);
    s.onMessage(m, 0, m.length, 0);
    s.onOutbound(...args(nodeSynAck(h, { val: NODE_TS, ecr: 1 }, 7)), 1);
    expect(shifts).toEqual([
      {
        clientAddr: CLIENT,
        clusterAddr: VIP,
        clientPort: 40000,
        clusterPort: 20048,
        nodePort: 45365,
        sOff: (NODE_ISN + 1 - h.serverSeq) | 0,
        tsOff: (h.gatewayTsval - NODE_TS) | 0,
      },
    ]);
    // what a gateway that asks is told: the same, while the flow is established
    expect(s.shifts()).toEqual(shifts);
    const b = new Uint8Array(SHIFT_LENGTH);
    expect(encodeShift(shifts[0]!, b)).toBe(SHIFT_LENGTH);
    expect(decodeShift(b, 0, b.length)).toEqual(shifts[0]);
    expect(decodeShift(b, 0, b.length - 1)).toBeNull();
    const bad = b.slice();
    bad[10] = 0;
    bad[11] = 0; // client port 0
    expect(decodeShift(bad, 0, bad.length)).toBeNull();
    // an agent of the first version: no cluster address (20 bytes)
    const v1 = Uint8Array.of(3, 1, ...b.subarray(2, 6), ...b.subarray(10, 24));
    expect(decodeShift(v1, 0, v1.length)).toEqual({ ...shifts[0], clusterAddr: 0 });
    expect(decodeShift(v1, 0, v1.length - 1)).toBeNull();
    const v3 = b.slice();
    v3[1] = 3;
    expect(decodeShift(v3, 0, v3.length)).toBeNull();
    // several records in one datagram (a resync's answer, the refresh); one bad record refuses it all
    const out: Shift[] = [];
    const two = new Uint8Array(2 * SHIFT_LENGTH);
    encodeShift(shifts[0]!, two, 0);
    encodeShift({ ...shifts[0]!, clientPort: 40001 }, two, SHIFT_LENGTH);
    expect(decodeShifts(two, 0, two.length, out)).toBe(true);
    expect(out.map((s) => s.clientPort)).toEqual([40000, 40001]);
    expect(decodeShifts(v1, 0, v1.length, out)).toBe(true);
    expect(out).toEqual([{ ...shifts[0], clusterAddr: 0 }]);
    for (const m of [
      Uint8Array.of(...b, ...bad),
      two.subarray(0, 30),
      new Uint8Array(0),
      new Uint8Array(61 * SHIFT_LENGTH),
    ]) {
      expect(decodeShifts(m, 0, m.length, out)).toBe(false);
      expect(out).toEqual([]);
    }
    const full = new Uint8Array(SHIFTS_PER_DATAGRAM * SHIFT_LENGTH);
    for (let i = 0; i < SHIFTS_PER_DATAGRAM; i++) encodeShift(shifts[0]!, full, i * SHIFT_LENGTH);
    expect(decodeShifts(full, 0, full.length, out)).toBe(true);
    expect(out).toHaveLength(SHIFTS_PER_DATAGRAM);
  });
});

describe('Splicer with the kernel shifting the node’s segments (io.bind)', () => {
  function kernelHarness(opts: { idleMs?: number; closeMs?: number } = {}) {
    const injected: Seg[] = [];
    const bound: BoundFlow[] = [];
    const unbound: BoundFlow[] = [];
    let packets = 0;
    let order: string[] = [];
    const s = new Splicer(
      {
        inject: (p) => {
          injected.push(parse(p));
          order.push('inject');
        },
        sendOut: () => undefined,
        bind: (f) => {
          bound.push(f);
          order.push('bind');
          return true;
        },
        unbind: (f) => unbound.push(f),
        activity: () => packets,
      },
      { idleMs: 1000, closeMs: 100, ...opts },
    );
    const h = handover();
    const m = message(h);
    s.onMessage(m, 0, m.length, 0);
    order = [];
    s.onOutbound(...args(nodeSynAck(h, { val: NODE_TS, ecr: 5000 }, 7)), 1);
    return { s, h, bound, unbound, injected, order, tick: (n: number) => (packets += n) };
  }

  it('binds the flow with its offsets before the handshake’s ACK reaches the node', () => {
    const { s, h, bound, order } = kernelHarness();
    expect(order[0]).toBe('bind');
    expect(order.slice(1).every((o) => o === 'inject')).toBe(true);
    expect(bound).toEqual([
      {
        clientAddr: CLIENT,
        clusterAddr: VIP,
        clientPort: 40000,
        clusterPort: 20048,
        nodePort: 45365,
        sOff: (NODE_ISN + 1 - h.serverSeq) | 0,
        tsOff: (h.gatewayTsval - NODE_TS) | 0,
        nodeWscale: 7,
        gatewayWscale: 9,
      },
    ]);
    expect(s.counters.bound).toBe(1);
    expect(s.list()[0]!.kernel).toBe(true);
  });

  it('keeps a flow whose kernel entry counts packets past idleMs, and unbinds it once they stop', () => {
    const { s, unbound, tick } = kernelHarness();
    tick(5);
    s.tick(1001); // idle for the splicer, but the kernel moved packets
    expect(s.size).toBe(1);
    s.tick(2001);
    expect(s.size).toBe(0);
    expect(s.counters.expired).toBe(1);
    expect(unbound).toHaveLength(1);
  });

  it('unbinds after both FINs and closeMs (retransmissions still shifted meanwhile)', () => {
    const { s, h, unbound } = kernelHarness();
    const fin = nodeSegment({ seq: NODE_ISN + 1, ack: h.clientSeq, flags: TCP_FLAGS.FIN | TCP_FLAGS.ACK });
    expect(s.rewriteOutbound(...args(fin), 2)).toBeGreaterThan(0);
    const cfin = clientSegment({
      seq: h.clientSeq + 3000,
      ack: h.serverSeq + 1,
      flags: TCP_FLAGS.FIN | TCP_FLAGS.ACK,
    });
    s.onMessage(cfin, 0, cfin.length, 3);
    s.tick(50);
    expect(unbound).toHaveLength(0);
    s.tick(104);
    expect(unbound).toHaveLength(1);
    expect(s.size).toBe(0);
  });

  it('a new handover on the same client port unbinds the old flow first', () => {
    const { s, h, unbound, bound } = kernelHarness();
    const m = message({ ...h, clientSeq: 12345 });
    s.onMessage(m, 0, m.length, 5);
    expect(unbound).toEqual([bound[0]]);
  });

  it('adopts a flow a killed agent bound: its FIN and RST are handled and it is unbound in the end', () => {
    const unbound: BoundFlow[] = [];
    const sent: Seg[] = [];
    const s = new Splicer(
      { inject: () => undefined, sendOut: (p) => sent.push(parse(p)), unbind: (f) => unbound.push(f) },
      { closeMs: 100 },
    );
    const b: BoundFlow = {
      clientAddr: CLIENT,
      clusterAddr: VIP,
      clientPort: 40000,
      clusterPort: 20048,
      nodePort: 45365,
      sOff: 1000,
      tsOff: 10,
      nodeWscale: 7,
      gatewayWscale: 7,
    };
    expect(s.adopt(b, 0)).toBe(true);
    expect(s.adopt(b, 0)).toBe(false);
    const rst = nodeSegment({ seq: 5000, ack: 1, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK });
    const n = s.rewriteOutbound(...args(rst), 1);
    expect(n).toBeGreaterThan(0);
    const out = parse(rst.subarray(0, n));
    expect([out.t.srcPort, out.t.seq]).toEqual([20048, 4000]);
    s.tick(101);
    expect(unbound).toEqual([b]);
    expect(s.counters.adopted).toBe(1);
  });
});
