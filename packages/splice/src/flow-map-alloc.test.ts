import { Ipv4View, OK, parseIpv4, TCP_FLAGS } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { FlowMap } from './flow-map.js';
import { writeSegment } from './segment.js';

/** Bytes allocated per call: the median of several windows after a warm-up (as the switch's test does). */
function perCall(f: (n: number) => void, n: number): number {
  const w: number[] = [];
  for (let k = 0; k < 9; k++) {
    const before = process.memoryUsage().heapUsed;
    f(n);
    w.push((process.memoryUsage().heapUsed - before) / n);
  }
  return w.sort((a, b) => a - b)[4]!;
}

describe('FlowMap per-call allocation', () => {
  it('allocates nothing per get, has, set of a present key or delete, for a client address above 2^31', () => {
    // 203.0.113.10 (0xcb00710a) read from a packet as the packet path reads it.
    const pkt = new Uint8Array(64);
    const len = writeSegment(pkt, {
      src: parseIpv4('203.0.113.10'),
      dst: parseIpv4('203.0.113.80'),
      srcPort: 40000,
      dstPort: 2049,
      seq: 1,
      ack: 1,
      flags: TCP_FLAGS.ACK,
      window: 512,
    });
    const ip = new Ipv4View();
    expect(ip.bind(pkt, 0, len)).toBe(OK);
    const m = new FlowMap<number>();
    for (let p = 0; p < 256; p++) m.set(ip.src, 1000 + p, p);
    // Calls through a table are not inlined into the loop, as the packet path's often are not (its
    // inlining budget goes to parsing): the address crosses a real call, where a uint32 would be boxed.
    let hits = 0;
    const ops: ((addr: number, port: number) => void)[] = [
      (a, p) => void (m.get(a, p) === p - 1000 && hits++),
      (a, p) => void (m.has(a, p + 5000) || hits++),
      (a, p) => m.set(a, p, p - 1000),
      (a, p) => void (m.delete(a, p + 6000) || hits++),
    ];
    const run = (n: number) => {
      for (let i = 0; i < n; i++) ops[i & 3]!(ip.srcI32, 1000 + ((i >>> 2) & 255));
    };
    run(200_000);
    const perOp = perCall(run, 20_000);
    expect(hits).toBe((3 / 4) * (200_000 + 9 * 20_000)); // gets hit; has and delete miss
    // A boxed address is 16 bytes per call.
    expect(perOp).toBeLessThan(1);

    // Deleting present keys, made first outside the window (nothing allocates in it, so no collection
    // runs there either). The standing flows keep the Map from shrinking its table, which would allocate
    // once per many deletes, not per delete.
    for (let p = 0; p < 16_384; p++) m.set(ip.src, 20_000 + p, p);
    const deletes: number[] = [];
    let deleted = 0;
    for (let k = 0; k < 9; k++) {
      for (let p = 0; p < 4096; p++) m.set(ip.src, 40_000 + p, p);
      const before = process.memoryUsage().heapUsed;
      for (let p = 0; p < 4096; p++) if (m.delete(ip.srcI32, 40_000 + p)) deleted++;
      deletes.push((process.memoryUsage().heapUsed - before) / 4096);
    }
    expect([deleted, m.size]).toEqual([9 * 4096, 256 + 16_384]);
    expect(deletes.sort((a, b) => a - b)[4]).toBeLessThan(1);
  });
});
