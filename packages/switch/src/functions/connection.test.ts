import { TCP_FLAGS } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { DecisionOut, KIND } from '../decision.js';
import { DROP } from '../drop-reason.js';
import { MessageSwitch } from '../message-switch.js';
import { configFrom } from '../testing/example-config.js';
import { tcpPacket } from '../testing/packet-builder.js';
import type { ConnectionManager } from './connection.js';

const { SYN, ACK, FIN, RST } = TCP_FLAGS;
const VIP = '203.0.113.10';

function yaml(entry: string, states: Record<string, string> = {}): string {
  const node = (id: number, name: string) =>
    `  - { id: ${id}, name: ${name}, address: 198.18.0.${10 + id}, state: ${states[name] ?? 'active'} }`;
  return [
    'gateway: gw',
    'clusterAddresses: [{ network: outside, address: 203.0.113.10 }]',
    'nodes:',
    node(1, 'gw'),
    node(2, 'n1'),
    node(3, 'n2'),
    node(4, 'n3'),
    'entries:',
    `  - { protocol: tcp, port: 80, function: connection, nodes: [n1, n2, n3], ${entry} }`,
  ].join('\n');
}

class Harness {
  readonly sw = new MessageSwitch();
  readonly out = new DecisionOut();
  now = 0;
  constructor(text: string) {
    this.sw.load(configFrom(text));
  }
  reload(text: string): void {
    this.sw.load(configFrom(text));
  }
  send(srcPort: number, flags: number, seq = 1, src = '203.0.113.5'): DecisionOut {
    const p = tcpPacket({ src, dst: VIP, srcPort, dstPort: 80, flags, seq });
    this.sw.decide(p, 0, p.length, this.now, this.out);
    return this.out;
  }
  node(srcPort: number, flags: number, seq = 1): number {
    const o = this.send(srcPort, flags, seq);
    return o.kind === KIND.FORWARD ? o.node : -o.reason;
  }
  get cm(): ConnectionManager {
    return this.sw.snapshot!.lookup(6, 80)!.fn as ConnectionManager;
  }
}

describe('connection manager (Fig. 10, claims 12-14)', () => {
  it('claim 14: round robin visits the nodes in order', () => {
    const h = new Harness(yaml('policy: round-robin'));
    expect([1, 2, 3, 4, 5, 6].map((p) => h.node(p, SYN))).toEqual([2, 3, 4, 2, 3, 4]);
  });

  it('claim 14: round robin skips down and draining nodes', () => {
    const h = new Harness(yaml('policy: round-robin', { n2: 'down', n3: 'draining' }));
    expect([1, 2, 3].map((p) => h.node(p, SYN))).toEqual([2, 2, 2]);
    const none = new Harness(yaml('policy: round-robin', { n1: 'down', n2: 'down', n3: 'draining' }));
    expect(none.node(1, SYN)).toBe(-DROP.NO_ACTIVE_NODE);
  });

  it('claim 12: later segments follow the table by (source address, source port)', () => {
    const h = new Harness(yaml('policy: round-robin'));
    const a = h.node(1000, SYN);
    const b = h.node(1001, SYN);
    expect(a).not.toBe(b);
    expect(h.node(1000, ACK)).toBe(a);
    expect(h.node(1001, ACK)).toBe(b);
    expect(h.node(1000, ACK | TCP_FLAGS.PSH)).toBe(a);
    // same port, other client address: another connection
    const other = h.send(1000, ACK, 1, '203.0.113.6');
    expect(other.reason).toBe(DROP.NO_CONNECTION);
  });

  it('a new SYN always re-creates its entry: a stale entry never wins', () => {
    const h = new Harness(yaml('policy: round-robin'));
    const first = h.node(2000, SYN, 111);
    h.node(2000, ACK, 112);
    const second = h.node(2000, SYN, 999_999);
    expect(second).not.toBe(first);
    expect(h.node(2000, ACK)).toBe(second);
    expect(h.sw.counters.toJSON().events.conn_replaced).toBe(1);
  });

  it('a retransmitted SYN (same ISN, no ACK yet) keeps its node', () => {
    const h = new Harness(yaml('policy: round-robin'));
    const a = h.node(2100, SYN, 42);
    expect(h.node(2100, SYN, 42)).toBe(a);
    expect(h.sw.counters.toJSON().events.conn_syn_retransmit).toBe(1);
    // and round robin was not advanced by the retransmit
    expect(h.node(2101, SYN)).toBe(a + 1);
  });

  it('least-conn sends a new connection to the node with the fewest live flows', () => {
    const h = new Harness(yaml('policy: least-conn, maxEntries: 16'));
    expect([1, 2, 3].map((p) => h.node(p, SYN))).toEqual([2, 3, 4]);
    h.node(1, RST);
    h.now = 11_000; // the RST grace (10 s) has passed
    h.sw.sweep(h.now, 4096);
    expect(h.cm.table.perNode[2]).toBe(0);
    expect(h.node(4, SYN)).toBe(2);
    expect(h.node(5, SYN)).toBe(2);
  });

  it('draining nodes keep their flows and get no new ones', () => {
    const h = new Harness(yaml('policy: round-robin'));
    const ports = [1, 2, 3, 4, 5, 6];
    const nodes = ports.map((p) => h.node(p, SYN));
    h.reload(yaml('policy: round-robin', { n2: 'draining' }));
    expect(ports.map((p) => h.node(p, ACK))).toEqual(nodes);
    for (let p = 100; p < 120; p++) expect(h.node(p, SYN)).not.toBe(3);
  });

  it('a flow whose node went down loses its entry (and is discarded without rederive)', () => {
    const h = new Harness(yaml('policy: round-robin'));
    expect(h.node(1, SYN)).toBe(2);
    h.reload(yaml('policy: round-robin', { n1: 'down' }));
    expect(h.node(1, ACK)).toBe(-DROP.NO_CONNECTION);
    expect(h.sw.counters.toJSON().events.conn_node_lost).toBe(1);
  });

  it('maglev rederive: a non-SYN without entry is routed as its SYN was, on any gateway', () => {
    const text = yaml('policy: maglev, rederive: true');
    const a = new Harness(text);
    const b = new Harness(text); // a restarted gateway, or a second one
    for (let p = 3000; p < 3050; p++) {
      const n = a.node(p, SYN);
      expect(b.node(p, ACK)).toBe(n);
      expect(b.node(p, ACK)).toBe(n);
    }
    expect(b.sw.counters.toJSON().events.conn_rederived).toBe(50);
  });

  it('maglev without rederive discards a non-SYN without entry', () => {
    const h = new Harness(yaml('policy: maglev'));
    expect(h.node(1, ACK)).toBe(-DROP.NO_CONNECTION);
  });

  it('timers: established entries expire after the idle timeout', () => {
    const h = new Harness(yaml('policy: round-robin, timeouts: { syn: 5, established: 900 }'));
    const n = h.node(1, SYN);
    h.now = 4_999;
    expect(h.node(1, ACK)).toBe(n);
    h.now += 899_999;
    expect(h.node(1, ACK)).toBe(n);
    h.now += 900_000;
    expect(h.node(1, ACK)).toBe(-DROP.NO_CONNECTION);
    expect(h.sw.counters.toJSON().events.conn_expired).toBe(1);
  });

  it('timers: a SYN without an ACK expires after the syn timeout', () => {
    const h = new Harness(yaml('policy: round-robin, timeouts: { syn: 5 }'));
    h.node(1, SYN);
    h.now = 5_000;
    expect(h.node(1, ACK)).toBe(-DROP.NO_CONNECTION);
  });

  it('timers: FIN moves the entry to the fin timer, RST to the rst timer (IPVS-like defaults)', () => {
    const h = new Harness(yaml('policy: round-robin'));
    const n = h.node(1, SYN);
    h.node(1, ACK);
    expect(h.node(1, FIN | ACK)).toBe(n);
    h.now = 119_999;
    expect(h.node(1, ACK)).toBe(n); // the last ACK still reaches the node, and keeps the fin timer
    h.now += 120_000;
    expect(h.node(1, ACK)).toBe(-DROP.NO_CONNECTION);

    const m = h.node(2, SYN);
    h.node(2, ACK);
    expect(h.node(2, RST)).toBe(m);
    h.now += 9_999;
    expect(h.node(2, ACK)).toBe(m);
    h.now += 10_000;
    expect(h.node(2, ACK)).toBe(-DROP.NO_CONNECTION);
  });

  it('the table is bounded: CLOCK evicts an entry not used since the hand passed', () => {
    const h = new Harness(yaml('policy: round-robin, maxEntries: 3'));
    const n1 = h.node(1, SYN);
    h.node(2, SYN);
    h.node(3, SYN);
    expect(h.node(1, ACK)).toBe(n1); // 1 is now the most recent
    h.node(4, SYN); // evicts 2
    expect(h.node(2, ACK)).toBe(-DROP.NO_CONNECTION);
    expect(h.node(1, ACK)).toBe(n1);
    expect(h.node(3, ACK)).toBeGreaterThan(0);
    expect(h.cm.table.size).toBe(3);
    expect(h.sw.counters.toJSON().events.conn_evicted).toBe(1);
  });

  it('bounded under 1M random SYNs: entries stay at the limit, memory stays within the typed arrays', () => {
    const limit = 100_000;
    const h = new Harness(yaml(`policy: maglev, maxEntries: ${limit}`));
    const pkt = tcpPacket({ src: '203.0.113.5', dst: VIP, srcPort: 1, dstPort: 80, flags: SYN, seq: 7 });
    const out = new DecisionOut();
    const before = process.memoryUsage();
    let seed = 12345;
    for (let i = 0; i < 1_000_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      // random client address within 203.0.113.0/24 and random port: rewrite the bytes in place
      pkt[15] = seed & 0xff;
      pkt[20] = (seed >>> 8) & 0xff;
      pkt[21] = (seed >>> 16) & 0xff;
      h.sw.decide(pkt, 0, pkt.length, 0, out);
      if (out.kind !== KIND.FORWARD) throw new Error(`SYN ${i} not forwarded`);
    }
    const after = process.memoryUsage();
    const table = h.cm.table;
    expect(table.size).toBeLessThanOrEqual(limit);
    expect(table.size).toBeGreaterThan(limit * 0.9);
    // The entries live in preallocated typed arrays: ≤ 200 bytes per entry, and no growth per SYN.
    expect(table.byteLength / limit).toBeLessThan(200);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(limit * 200);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(1 << 20);
  });

  it('validation: rederive needs maglev; maglevSize must be prime; timeouts must be positive', () => {
    const bad = (entry: string) => {
      try {
        configFrom(yaml(entry));
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(bad('policy: round-robin, rederive: true')).toMatch(/entries\[0\]\.rederive: needs policy maglev/);
    expect(bad('policy: maglev, maglevSize: 65536')).toMatch(
      /entries\[0\]\.maglevSize: must be a prime, got 65536/,
    );
    expect(bad('policy: maglev, timeouts: { fin: 0 }')).toMatch(
      /entries\[0\]\.timeouts\.fin: must be a number of seconds/,
    );
    expect(bad('policy: rr')).toMatch(
      /entries\[0\]\.policy: must be one of round-robin, maglev, least-conn, got the string "rr"/,
    );
    expect(bad('policy: maglev, timeouts: { idle: 3 }')).toMatch(
      /entries\[0\]\.timeouts\.idle: unknown field/,
    );
  });
});
