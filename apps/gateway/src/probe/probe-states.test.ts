import { describe, expect, it } from 'vitest';
import { buildProbeFrame, readProbeReply, setProbeSequence } from './probe-frame.js';
import { ProbeStates } from './probe-states.js';

const timing = { intervalMs: 200, fall: 3, rise: 2 };

/** run drives `rounds` ticks for node 1, answering the probes `answer(round)` says were answered */
function run(p: ProbeStates, rounds: number, answer: (round: number) => boolean) {
  const log: { round: number; reachable: boolean }[] = [];
  for (let r = 0; r < rounds; r++) {
    let sent = 0;
    for (const t of p.tick([1], (_id, seq) => (sent = seq))) log.push({ round: r, reachable: t.reachable });
    if (answer(r)) {
      const t = p.answered(1, sent);
      if (t !== null) log.push({ round: r, reachable: t.reachable });
    }
  }
  return log;
}

describe('ProbeStates', () => {
  it('starts reachable and stays so while probes are answered', () => {
    const p = new ProbeStates(timing);
    expect(run(p, 10, () => true)).toEqual([]);
    expect(p.counters(1)).toEqual({ sent: 10, lost: 0, reachable: true });
  });

  it('falls after `fall` unanswered probes in a row: judged at the tick after the third', () => {
    const p = new ProbeStates(timing);
    // probes of rounds 2, 3, 4 unanswered: the third is judged at round 5, i.e. 3 intervals after the
    // first lost probe was sent (detection within (fall + 1) × interval of the break)
    expect(run(p, 6, (r) => r < 2)).toEqual([{ round: 5, reachable: false }]);
    expect(p.counters(1)?.lost).toBe(3);
  });

  it('two lost probes then an answer do not fall (consecutive only)', () => {
    const p = new ProbeStates(timing);
    expect(run(p, 12, (r) => r % 3 === 0)).toEqual([]);
  });

  it('rises after `rise` answered probes in a row, not before', () => {
    const p = new ProbeStates(timing);
    // lost in rounds 0-3, answered from round 4: down at round 3, up at the second answer (round 5)
    expect(run(p, 8, (r) => r >= 4)).toEqual([
      { round: 3, reachable: false },
      { round: 5, reachable: true },
    ]);
  });

  it('a late answer (a previous sequence) counts for nothing', () => {
    const p = new ProbeStates(timing);
    let first = 0;
    p.tick([1], (_i, s) => (first = s));
    p.tick([1], () => {});
    expect(p.answered(1, first)).toBeNull();
    p.tick([1], () => {});
    p.tick([1], () => {});
    expect(p.counters(1)).toEqual({ sent: 4, lost: 3, reachable: false });
  });

  it('forgets nodes no longer probed, and reset starts a node over reachable', () => {
    const p = new ProbeStates({ ...timing, fall: 1 });
    p.tick([1, 2], () => {});
    const t = p.tick([1, 2], () => {});
    expect(t.map((x) => x.id)).toEqual([1, 2]);
    p.tick([1], () => {});
    expect(p.counters(2)).toBeUndefined();
    p.reset(1);
    p.tick([1], () => {});
    expect(p.counters(1)).toEqual({ sent: 1, lost: 0, reachable: true });
  });
});

describe('probe frame', () => {
  const spec = {
    vni: 4242,
    gatewayMac: '02:6f:68:00:00:01',
    nodeMac: '02:00:5e:10:00:01',
    source: '198.18.0.1',
    sourcePort: 40000,
    clusterAddress: '203.0.113.80',
    probePort: 7473,
    nodeId: 7,
    innerLength: 1450,
  };

  it('is VXLAN (RFC 7348 §5) around Ethernet, IPv4 and UDP to the cluster address', () => {
    const f = buildProbeFrame(spec);
    expect(f.length).toBe(8 + 14 + 1450);
    expect(f[0]).toBe(0x08);
    expect(f.readUIntBE(4, 3)).toBe(4242);
    expect(f.subarray(8, 14).toString('hex')).toBe('02005e100001');
    expect(f.readUInt16BE(20)).toBe(0x0800);
    expect(f.readUInt16BE(22 + 2)).toBe(1450);
    expect([...f.subarray(22 + 16, 22 + 20)]).toEqual([203, 0, 113, 80]);
    // a correct header checksum sums to 0xffff
    let sum = 0;
    for (let i = 22; i < 42; i += 2) sum += f.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
    expect(f.readUInt16BE(42 + 2)).toBe(7473);
    expect(f.readUInt16BE(42 + 4)).toBe(1430);
  });

  it('carries the node id and sequence that the agent echoes back', () => {
    const f = buildProbeFrame(spec);
    setProbeSequence(f, 99);
    expect(readProbeReply(f.subarray(50))).toEqual({ id: 7, seq: 99 });
    expect(readProbeReply(Buffer.alloc(12))).toBeNull();
    expect(readProbeReply(Buffer.alloc(4))).toBeNull();
  });

  it('refuses an inner length with no room for the payload', () => {
    expect(() => buildProbeFrame({ ...spec, innerLength: 30 })).toThrow(/40 to 65535/);
  });
});
