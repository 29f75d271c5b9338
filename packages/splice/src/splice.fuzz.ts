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
  isResync,
  MSG,
  SHIFT_LENGTH,
  type Shift,
} from './message.js';
import { Splicer } from './splicer.js';

// `npm run fuzz -w @onehost/splice`: the handover parser on random and mutated datagrams, and the splicer
// on random sequences of messages, node packets and ticks (FUZZ_RUNS per property overrides).
const perProperty = Number(process.env.FUZZ_RUNS) || 1_000_000;

const valid = new Uint8Array(HANDOVER_HEADER + 64);
encodeHandover(
  {
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
  },
  valid,
);

describe('splice fuzz', () => {
  it('decodeHandover never throws on random or mutated datagrams', () => {
    const t0 = Date.now();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })
            .map((edits) => {
              const m = valid.slice();
              for (const [at, v] of edits) m[at] = v;
              return m;
            }),
        ),
        (m) => {
          const h = decodeHandover(m, 0, m.length);
          if (typeof h !== 'string') expect(h.data.length).toBe(m.length - HANDOVER_HEADER);
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
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          fc
            .array(fc.tuple(fc.nat(2 * SHIFT_LENGTH - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 })
            .map((edits) => {
              const m = shift.slice();
              for (const [at, v] of edits) m[at] = v;
              return m;
            }),
        ),
        fc.constantFrom(0, 1, SHIFT_LENGTH),
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
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 120 })), {
          maxLength: 20,
        }),
        (steps) => {
          const s = new Splicer({ inject: () => undefined, sendOut: () => undefined });
          let now = 0;
          for (const [kind, bytes] of steps) {
            now += 60;
            if (kind === 0) s.onMessage(valid, 0, valid.length, now);
            else if (kind === 1) s.onMessage(Uint8Array.of(MSG.SEGMENT, ...bytes), 0, bytes.length + 1, now);
            else if (kind === 2) s.onOutbound(bytes, 0, bytes.length, now);
            else s.tick(now);
          }
        },
      ),
      { numRuns: runs },
    );
    console.log(`fuzz splice/splicer: ${runs} sequences in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
