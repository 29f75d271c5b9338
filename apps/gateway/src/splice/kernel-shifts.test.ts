import type { GatewayFlow, GatewayFlow6 } from '@onehost/ksplice';
import { TCP_FLAGS } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { type GatewayFlowMap, KernelShifts } from './kernel-shifts.js';

/** FakeMap stands for the program's map: what was written, and the packet counts the kernel would keep. */
class FakeMap implements GatewayFlowMap {
  readonly entries = new Map<string, GatewayFlow & { packets: number }>();
  full = false;
  private static key(f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>): string {
    return `${f.clientAddr >>> 0}:${f.clientPort}:${f.clusterPort}`;
  }
  setGatewayFlow(f: GatewayFlow): void {
    if (this.full) throw new Error('E2BIG');
    this.entries.set(FakeMap.key(f), { ...f, packets: 0 });
  }
  deleteGatewayFlow(f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>): boolean {
    return this.entries.delete(FakeMap.key(f));
  }
  gatewayPackets(f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>): number {
    return this.entries.get(FakeMap.key(f))?.packets ?? -1;
  }
  gatewayFlows(): Array<GatewayFlow & { packets: number }> {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }
  count(f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>, n: number): void {
    this.entries.get(FakeMap.key(f))!.packets += n;
  }
  readonly entries6 = new Map<string, GatewayFlow6 & { packets: number }>();
  private static key6(f: Pick<GatewayFlow6, 'clientAddr' | 'clientPort' | 'clusterPort'>): string {
    return `${Buffer.from(f.clientAddr).toString('hex')}:${f.clientPort}:${f.clusterPort}`;
  }
  setGatewayFlow6(f: GatewayFlow6): void {
    if (this.full) throw new Error('E2BIG');
    this.entries6.set(FakeMap.key6(f), { ...f, packets: 0 });
  }
  deleteGatewayFlow6(f: Pick<GatewayFlow6, 'clientAddr' | 'clientPort' | 'clusterPort'>): boolean {
    return this.entries6.delete(FakeMap.key6(f));
  }
  gatewayPackets6(f: Pick<GatewayFlow6, 'clientAddr' | 'clientPort' | 'clusterPort'>): number {
    return this.entries6.get(FakeMap.key6(f))?.packets ?? -1;
  }
  gatewayFlows6(): Array<GatewayFlow6 & { packets: number }> {
    return [...this.entries6.values()].map((e) => ({ ...e }));
  }
}

const CLIENT = 0xcb00710a | 0; // 203.0.113.10 as the packet path passes it (int32)
const N2 = '198.18.0.12';
const shift = {
  clientAddr: CLIENT,
  clusterAddr: 0,
  clientPort: 40000,
  clusterPort: 2049,
  nodePort: 2049,
  sOff: -7,
  tsOff: 99,
};

function setup(o: { idleMs?: number; finMs?: number; maxFlows?: number } = {}) {
  const map = new FakeMap();
  const k = new KernelShifts({
    map,
    markOf: (a) => (a === N2 ? 0x6f480002 : undefined),
    idleMs: 1000,
    finMs: 500,
    ...o,
  });
  return { map, k };
}

describe('KernelShifts: the gateway tc program’s flow map', () => {
  it('writes a flow with its node’s mark when the agent’s shift arrives', () => {
    const { map, k } = setup();
    expect(k.set(shift, N2, 0)).toBe(true);
    const { clusterAddr: _, ...flow } = shift;
    expect(map.gatewayFlows()).toEqual([{ ...flow, clientAddr: CLIENT >>> 0, mark: 0x6f480002, packets: 0 }]);
    expect(k.has(CLIENT, 40000, 2049)).toBe(true);
    expect(k.has(CLIENT, 40000, 20048)).toBe(false);
  });

  it('refuses shifts from strangers, beyond maxFlows, and what the kernel refuses: user space shifts those', () => {
    const { map, k } = setup({ maxFlows: 1 });
    expect(k.set(shift, '198.18.0.99', 0)).toBe(false);
    expect(k.set(shift, N2, 0)).toBe(true);
    expect(k.set({ ...shift, clientPort: 40001 }, N2, 0)).toBe(false);
    // the same flow again (the agent repeats itself) replaces its entry
    expect(k.set({ ...shift, sOff: 5 }, N2, 0)).toBe(true);
    expect(map.gatewayFlows()[0]!.sOff).toBe(5);
    const { map: full, k: k2 } = setup();
    full.full = true;
    expect(k2.set(shift, N2, 0)).toBe(false);
    expect(k2.counters.refused).toBe(1);
  });

  it('a RST or a SYN on the same ports removes the entry at once', () => {
    for (const flag of [TCP_FLAGS.RST, TCP_FLAGS.SYN]) {
      const { map, k } = setup();
      k.set(shift, N2, 0);
      k.noteControl(CLIENT, 40000, 20048, flag, 1); // another cluster port: not this flow
      expect(map.entries.size).toBe(1);
      k.noteControl(CLIENT, 40000, 2049, flag, 1);
      expect(map.entries.size).toBe(0);
      expect(k.size).toBe(0);
    }
  });

  it('the client’s FIN leaves finMs for the last segments, then the entry goes', () => {
    const { map, k } = setup();
    k.set(shift, N2, 0);
    k.noteControl(CLIENT, 40000, 2049, TCP_FLAGS.FIN | TCP_FLAGS.ACK, 100);
    k.sweep(599);
    expect(map.entries.size).toBe(1);
    k.sweep(600);
    expect(map.entries.size).toBe(0);
  });

  it('an entry whose packet count moves stays; one that stops for idleMs goes', () => {
    const { map, k } = setup();
    k.set(shift, N2, 0);
    map.count(shift, 10);
    k.sweep(1000); // moved since it was written: kept for another idleMs
    expect(map.entries.size).toBe(1);
    k.sweep(1999);
    expect(map.entries.size).toBe(1);
    k.sweep(2000); // no packet since 1000
    expect(map.entries.size).toBe(0);
    expect(k.counters.removed).toBe(1);
  });

  it('the same shift again (the agent’s refresh, a resync) keeps an entry whose flow passes elsewhere, without a write', () => {
    const { map, k } = setup();
    let writes = 0;
    const set = map.setGatewayFlow.bind(map);
    map.setGatewayFlow = (f) => {
      writes++;
      set(f);
    };
    k.set(shift, N2, 0);
    expect(k.set(shift, N2, 900)).toBe(true); // no packet here: the flow runs through another gateway
    k.sweep(1899);
    expect(map.entries.size).toBe(1);
    expect([writes, k.counters.refreshed]).toEqual([1, 1]);
    k.sweep(1900);
    expect(map.entries.size).toBe(0);
  });

  it('adopts what a killed gateway left in the kernel, and expires it as its own', () => {
    const { map, k } = setup();
    k.set(shift, N2, 0);
    const next = new KernelShifts({ map, markOf: () => undefined, idleMs: 1000 });
    expect(next.adopt(5000)).toBe(1);
    expect(next.adopt(5000)).toBe(0);
    expect(next.has(CLIENT, 40000, 2049)).toBe(true);
    next.noteControl(CLIENT, 40000, 2049, TCP_FLAGS.RST, 5001);
    expect(map.entries.size).toBe(0);
  });

  it('an entry the kernel lost is forgotten without a delete', () => {
    const { map, k } = setup();
    k.set(shift, N2, 0);
    map.entries.clear();
    k.sweep(5000);
    expect(k.size).toBe(0);
    expect(k.counters.removed).toBe(0);
  });
});

describe('KernelShifts: IPv6 flows (ks_gw6)', () => {
  const client6 = Uint8Array.of(0x20, 1, 0xd, 0xb8, 0, 0, 1, 0x13, 0, 0, 0, 0, 0, 0, 0, 0x10);
  const shift6 = {
    ...shift,
    clientAddr: 0,
    clientAddr6: client6,
    clusterAddr6: client6.map((b, i) => (i === 15 ? 0x80 : b)),
  };

  it('writes an IPv6 flow into the IPv6 map beside an IPv4 one of the same port; ends it by RST; adopts it', () => {
    const { map, k } = setup();
    expect(k.set(shift6, N2, 0)).toBe(true);
    expect(k.set(shift, N2, 0)).toBe(true);
    expect(k.size).toBe(2);
    expect(map.gatewayFlows6()).toEqual([
      {
        clientAddr: client6,
        clientPort: 40000,
        clusterPort: 2049,
        nodePort: 2049,
        sOff: -7,
        tsOff: 99,
        mark: 0x6f480002,
        packets: 0,
      },
    ]);
    expect(k.has(client6, 40000, 2049)).toBe(true);
    expect(k.has(client6, 40000, 20048)).toBe(false);
    // told again: refreshed, not written twice
    expect(k.set(shift6, N2, 1)).toBe(true);
    expect(k.counters.refreshed).toBe(1);
    // a successor gateway finds both
    const next = new KernelShifts({ map, markOf: () => 0x6f480002 });
    expect(next.adopt(5)).toBe(2);
    k.noteControl(client6, 40000, 2049, TCP_FLAGS.RST, 2);
    expect(map.gatewayFlows6()).toEqual([]);
    expect(map.gatewayFlows()).toHaveLength(1);
    expect(k.size).toBe(1);
  });

  it('an idle IPv6 entry goes once its packet count stopped moving; a moving one stays', () => {
    const { map, k } = setup();
    k.set(shift6, N2, 0);
    map.entries6.values().next().value!.packets = 3;
    k.sweep(1500);
    expect(k.size).toBe(1);
    k.sweep(3000);
    expect([k.size, map.entries6.size]).toEqual([0, 0]);
  });
});
