import { describe, expect, it } from 'vitest';
import { FLOW_SEED, jhashAddrPort, jhashBytes, maglevSlot, maglevSlot6, reciprocalScale } from './hash.js';

const ip = (s: string): number => s.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);

describe('the kernel’s flow hash', () => {
  // Captured from this kernel: `meta mark set jhash ip saddr . tcp sport mod 65537 seed 0x4f4e4548`
  // on SYNs from 203.0.113.10, the marks read back from an nftables set.
  const KERNEL: Array<[string, number, number]> = [
    ['203.0.113.10', 40494, 94],
    ['203.0.113.10', 40368, 1391],
    ['203.0.113.10', 40280, 3466],
    ['203.0.113.10', 40542, 3662],
    ['203.0.113.10', 40462, 3720],
    ['203.0.113.10', 40496, 3879],
    ['203.0.113.10', 40558, 5041],
    ['203.0.113.10', 40520, 6112],
  ];

  it.each(KERNEL)('%s:%i lands in slot %i of 65537, as nftables computed it', (a, port, slot) => {
    expect(FLOW_SEED).toBe(0x4f4e4548);
    expect(maglevSlot(ip(a), port, 65537)).toBe(slot);
  });

  // Captured from this kernel: `meta mark set jhash ip6 saddr . tcp sport mod 65537 seed 0x4f4e4548` on
  // SYNs from 2001:db8::10 (RFC 3849), the marks read back from an nftables set.
  const KERNEL6: Array<[number, number]> = [
    [40494, 0x8bc6],
    [40368, 0xae03],
    [40280, 0xa6c3],
    [50000, 0x0de8],
    [61000, 0xd978],
    [1024, 0x690e],
  ];
  const SRC6 = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 0x10]);

  it.each(KERNEL6)('[2001:db8::10]:%i lands in the slot of 65537 nftables computed (%i)', (port, slot) => {
    expect(maglevSlot6(SRC6, 0, port, 65537)).toBe(slot);
    // the same as the general jhash over the 20 bytes
    const k = Uint8Array.from([...SRC6, port >>> 8, port & 0xff, 0, 0]);
    expect(maglevSlot6(SRC6, 0, port, 65537)).toBe(reciprocalScale(jhashBytes(k, 20, FLOW_SEED), 65537));
  });

  it('jhash of any length is the 8-byte one for an IPv4 address and port', () => {
    for (const [a, port] of [
      ['203.0.113.10', 40494],
      ['198.18.0.7', 1],
    ] as const) {
      const k = Uint8Array.from([...a.split('.').map(Number), port >>> 8, port & 0xff, 0, 0]);
      expect(jhashBytes(k, 8, FLOW_SEED)).toBe(jhashAddrPort(ip(a), port, FLOW_SEED));
    }
  });

  it('jhash returns uint32 and depends on every input', () => {
    const h = jhashAddrPort(ip('203.0.113.10'), 40494, FLOW_SEED);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(h).toBeLessThan(2 ** 32);
    expect(jhashAddrPort(ip('203.0.113.11'), 40494, FLOW_SEED)).not.toBe(h);
    expect(jhashAddrPort(ip('203.0.113.10'), 40495, FLOW_SEED)).not.toBe(h);
    expect(jhashAddrPort(ip('203.0.113.10'), 40494, FLOW_SEED + 1)).not.toBe(h);
  });

  it('reciprocalScale spreads the whole uint32 range over [0, size)', () => {
    expect(reciprocalScale(0, 65537)).toBe(0);
    expect(reciprocalScale(0xffffffff, 65537)).toBe(65536);
    expect(reciprocalScale(0x80000000, 3)).toBe(1);
    const counts = new Array<number>(7).fill(0);
    for (let i = 0; i < 70_000; i++) counts[maglevSlot(0xcb007100 + (i & 0xff), 1024 + i, 7)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(9000);
  });
});
