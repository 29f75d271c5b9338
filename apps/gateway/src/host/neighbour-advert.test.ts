import type { Host } from '@onehost/kernel';
import { describe, expect, it } from 'vitest';
import { advertiseClusterAddresses6 } from './neighbour-advert.js';

/** host is a Host that knows the links given (name → MAC, null: not Ethernet). */
const host = (links: Record<string, string | null>) =>
  ({
    ipJson: async (...args: string[]) => {
      const name = args[3]!;
      if (!(name in links)) throw new Error(`Cannot find device "${name}"`);
      const mac = links[name];
      return [mac === null ? { link_type: 'none' } : { link_type: 'ether', address: mac }];
    },
  }) as unknown as Host;

describe('advertiseClusterAddresses6', () => {
  it('sends each address on each interface, `count` rounds: to all nodes, hop limit 255, R and O set', async () => {
    const sends: string[] = [];
    const results: boolean[] = [];
    const r = await advertiseClusterAddresses6({
      vips6: ['2001:db8:113::80', '2001:db8:114::80'],
      outside: ['eth0', 'eth2'],
      count: 3,
      intervalMs: 0,
      host: host({ eth0: '02:00:00:00:00:01', eth2: '02:00:00:00:00:02' }),
      send: (iface, dst, hops, m) => sends.push(`${iface} ${dst} ${hops} ${Buffer.from(m).toString('hex')}`),
      onResult: (ok) => results.push(ok),
    });
    expect(r).toEqual({ sent: 12, failed: [] });
    expect(results).toEqual(new Array(12).fill(true));
    // RFC 4861 §4.4: type 136, code 0, checksum 0 (the kernel's), R|O = 0xa0, the target, then the
    // target link-layer address option (type 2, length 1)
    expect(sends.slice(0, 4)).toEqual([
      'eth0 ff02::1 255 88000000a000000020010db80113000000000000000000800201020000000001',
      'eth0 ff02::1 255 88000000a000000020010db80114000000000000000000800201020000000001',
      'eth2 ff02::1 255 88000000a000000020010db80113000000000000000000800201020000000002',
      'eth2 ff02::1 255 88000000a000000020010db80114000000000000000000800201020000000002',
    ]);
    expect(sends.slice(4, 8)).toEqual(sends.slice(0, 4));
  });

  it('names each failure once and goes on with the other interfaces', async () => {
    let calls = 0;
    const r = await advertiseClusterAddresses6({
      vips6: ['2001:db8:113::80'],
      outside: ['eth0', 'tun9', 'gone', 'eth1'],
      intervalMs: 0,
      host: host({ eth0: '02:00:00:00:00:01', tun9: null, eth1: '02:00:00:00:00:03' }),
      send: (iface) => {
        calls++;
        if (iface === 'eth1') throw new Error('ICMPv6 send on eth1 (ENETDOWN)');
      },
    });
    expect(calls).toBe(6);
    expect(r.sent).toBe(3);
    expect(r.failed.sort()).toEqual([
      '2001:db8:113::80 on eth1: ICMPv6 send on eth1 (ENETDOWN)',
      'gone: no Ethernet address to advertise',
      'tun9: no Ethernet address to advertise',
    ]);
  });

  it('stops between rounds when aborted', async () => {
    const ac = new AbortController();
    let calls = 0;
    const r = await advertiseClusterAddresses6({
      vips6: ['2001:db8:113::80'],
      outside: ['eth0'],
      intervalMs: 60_000,
      host: host({ eth0: '02:00:00:00:00:01' }),
      send: () => {
        calls++;
        ac.abort();
      },
      signal: ac.signal,
    });
    expect([calls, r.sent]).toEqual([1, 1]);
  });
});
