import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeHandover,
  decodeResyncDone,
  decodeShift,
  decodeShifts,
  encodeHandover,
  encodeShift,
  HANDOVER_HEADER,
  HANDOVER_HEADER6,
  type Handover,
  isResync,
  MSG,
  SHIFT_LENGTH,
  SHIFT6_LENGTH,
  type Shift,
} from './message.js';
import { writeSegment } from './segment.js';
import { Splicer } from './splicer.js';

// `npm run fuzz -w @onehost/splice`: the handover parser on random and mutated datagrams, and the splicer
// on random sequences of messages, node packets and ticks (FUZZ_RUNS per property overrides).
const perProperty = Number(process.env.FUZZ_RUNS) || 1_000_000;

const fields: Handover = {
  flags: 7,
  clientAddr: 0xcb00710a,
  clusterAddr: 0xcb007150,
  clientPort: 40000,
  clusterPort: 2049,
  nodePort: 2049,
  clientSeq: 1,
  serverSeq: 2,
  mss: 1448,
  clientWscale: 7,
  gatewayWscale: 7,
  clientTsval: 3,
  gatewayTsval: 4,
  clientWindow: 500,
  data: new Uint8Array(64).fill(0x42),
};
const valid = new Uint8Array(HANDOVER_HEADER + 64);
encodeHandover(fields, valid);
const client6 = Uint8Array.of(0x20, 1, 0xd, 0xb8, 0, 0, 1, 0x13, 0, 0, 0, 0, 0, 0, 0, 0x10);
const vip6 = Uint8Array.of(0x20, 1, 0xd, 0xb8, 0, 0, 1, 0x13, 0, 0, 0, 0, 0, 0, 0, 0x80);
/** the same handover for an IPv6 connection (version 2) */
const valid6 = new Uint8Array(HANDOVER_HEADER6 + 64);
encodeHandover({ ...fields, clientAddr6: client6, clusterAddr6: vip6 }, valid6);
/** an IPv6 client segment of that connection (type 2), and the node's answer, to mutate */
const segment6 = new Uint8Array(1 + 40 + 32 + 16);
segment6[0] = MSG.SEGMENT;
const segSpec = {
  src: 0,
  dst: 0,
  seq: 2,
  ack: 3,
  flags: 0x18,
  window: 500,
  ts: { val: 9, ecr: 4 },
  payload: new Uint8Array(16),
};
writeSegment(segment6.subarray(1), { ...segSpec, src6: client6, dst6: vip6, srcPort: 40000, dstPort: 2049 });
const node6 = new Uint8Array(40 + 32 + 16);
writeSegment(node6, {
  ...segSpec,
  ack: 1,
  flags: 0x12,
  src6: vip6,
  dst6: client6,
  srcPort: 2049,
  dstPort: 40000,
});

const mutated = (base: Uint8Array, edits: [number, number][]): Uint8Array => {
  const m = base.slice();
  for (const [at, v] of edits) m[at % m.length] = v;
  return m;
};
const edits = fc.array(fc.tuple(fc.nat(200), fc.integer({ min: 0, max: 255 })), { maxLength: 8 });

describe('splice fuzz', () => {
  it('decodeHandover never throws on random or mutated datagrams', () => {
    const t0 = Date.now();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          edits.map((e) => mutated(valid, e)),
          edits.map((e) => mutated(valid6, e)),
        ),
        (m) => {
          const h = decodeHandover(m, 0, m.length);
          if (typeof h !== 'string')
            expect(h.data.length).toBe(
              m.length - (h.clientAddr6 === undefined ? HANDOVER_HEADER : HANDOVER_HEADER6),
            );
        },
      ),
      { numRuns: perProperty },
    );
    console.log(
      `fuzz splice/decodeHandover: ${perProperty} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  });

  it('the small messages (shift, resync, resync done) never throw on random or mutated datagrams', () => {
    const t0 = Date.now();
    // two records (a datagram of several); `off` below also cuts it to one
    const shift = new Uint8Array(2 * SHIFT_LENGTH);
    for (const at of [0, SHIFT_LENGTH])
      encodeShift(
        {
          clientAddr: 0xcb00710a,
          clusterAddr: 0xcb007150,
          clientPort: 613 + at,
          clusterPort: 2049,
          nodePort: 2049,
          sOff: -9,
          tsOff: 4,
        },
        shift,
        at,
      );
    // an IPv6 flow's record (version 3), two back to back
    const shift6 = new Uint8Array(2 * SHIFT6_LENGTH);
    for (const at of [0, SHIFT6_LENGTH])
      encodeShift(
        {
          clientAddr: 0,
          clusterAddr: 0,
          clientAddr6: client6,
          clusterAddr6: vip6,
          clientPort: 613 + at,
          clusterPort: 2049,
          nodePort: 2049,
          sOff: -9,
          tsOff: 4,
        },
        shift6,
        at,
      );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          edits.map((e) => mutated(shift6, e)),
          fc
            .array(fc.tuple(fc.nat(2 * SHIFT_LENGTH - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 })
            .map((edits) => {
              const m = shift.slice();
              for (const [at, v] of edits) m[at] = v;
              return m;
            }),
        ),
        fc.constantFrom(0, 1, SHIFT_LENGTH, SHIFT6_LENGTH),
        (m, off) => {
          const len = Math.max(0, m.length - off);
          const s = decodeShift(m, off, len);
          if (s !== null) expect(s.clientPort * s.clusterPort * s.nodePort).toBeGreaterThan(0);
          expect(decodeResyncDone(m, off, len)).toBeGreaterThanOrEqual(-1);
          const all: Shift[] = [];
          if (decodeShifts(m, off, len, all)) expect(all.length).toBeGreaterThan(0);
          else expect(all).toEqual([]);
          expect(typeof isResync(m, off, len)).toBe('boolean');
        },
      ),
      { numRuns: perProperty },
    );
    console.log(
      `fuzz splice/small messages: ${perProperty} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  });

  it('the splicer never throws on random sequences', () => {
    const t0 = Date.now();
    const runs = Math.max(1, Math.floor(perProperty / 20));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.uint8Array({ maxLength: 120 }), edits), {
          maxLength: 20,
        }),
        (steps) => {
          const s = new Splicer({ inject: () => undefined, sendOut: () => undefined });
          let now = 0;
          for (const [kind, bytes, e] of steps) {
            now += 60;
            if (kind === 0) s.onMessage(valid, 0, valid.length, now);
            else if (kind === 1) s.onMessage(Uint8Array.of(MSG.SEGMENT, ...bytes), 0, bytes.length + 1, now);
            else if (kind === 2) s.onOutbound(bytes, 0, bytes.length, now);
            else if (kind === 3) s.onMessage(valid6, 0, valid6.length, now);
            else if (kind === 4) {
              const m = e.length === 0 ? segment6 : mutated(segment6, e);
              s.onMessage(m, 0, m.length, now);
            } else if (kind === 5) {
              const m = e.length === 0 ? node6 : mutated(node6, e);
              s.onOutbound(m, 0, m.length, now);
            } else s.tick(now);
          }
          expect(s.size).toBeLessThanOrEqual(2);
        },
      ),
      { numRuns: runs },
    );
    console.log(`fuzz splice/splicer: ${runs} sequences in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
