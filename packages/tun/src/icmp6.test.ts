import { Lab, type Netns, requireRoot, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTunError } from './errors.js';
import { sendIcmp6 } from './icmp6.js';

requireRoot();

const TARGET = '2001:db8:113::80';
const STALE_MAC = '02:00:00:00:00:99';

/**
 * na is an unsolicited Neighbor Advertisement (RFC 4861 §4.4, §7.2.6) for 2001:db8:113::80 with the
 * Override flag and `mac` as its Target Link-Layer Address, checksum 0 (the kernel's to fill); `last`
 * changes the target's last byte.
 */
function na(mac: string, last = 0x80): Uint8Array {
  const b = new Uint8Array(32);
  b[0] = 136;
  b[4] = 0x20;
  b.set([0x20, 0x01, 0x0d, 0xb8, 0x01, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, last], 8);
  b[24] = 2;
  b[25] = 1;
  b.set(
    mac.split(':').map((h) => Number.parseInt(h, 16)),
    26,
  );
  return b;
}

describe('sendIcmp6', () => {
  const lab = new Lab();
  let a: Netns;
  let b: Netns;
  let aIf: string;
  let bIf: string;
  let aMac: string;

  beforeAll(async () => {
    [a, b] = [await lab.netns(), await lab.netns()];
    const pair = await lab.veth(a, b, {});
    [aIf, bIf] = [pair.a, pair.b];
    for (const [ns, dev] of [
      [a, aIf],
      [b, bIf],
    ] as const) {
      // a link-local without duplicate address detection: the source the kernel picks for ff02::1
      await ns.sysctl(`net.ipv6.conf.${dev}.addr_gen_mode`, 1);
      await ns.sysctl(`net.ipv6.conf.${dev}.disable_ipv6`, 0);
      await ns.ip('link', 'set', dev, 'up');
      await ns.ip('addr', 'add', ns === a ? 'fe80::a/64' : 'fe80::b/64', 'dev', dev, 'nodad');
    }
    aMac = JSON.parse((await a.exec('ip', ['-j', 'link', 'show', 'dev', aIf])).stdout)[0].address;
  });
  afterAll(async () => {
    await lab.cleanup();
  });

  const entry = async (target = TARGET) =>
    JSON.parse((await b.exec('ip', ['-j', '-6', 'neigh', 'show', target, 'dev', bIf])).stdout)[0] as
      | { lladdr?: string; state?: string[] }
      | undefined;

  it('an unsolicited advertisement to all nodes updates a neighbour’s stale entry (hop limit 255, right checksum)', async () => {
    await b.ip('-6', 'neigh', 'replace', TARGET, 'lladdr', STALE_MAC, 'dev', bIf, 'nud', 'stale');
    expect((await entry())?.lladdr).toBe(STALE_MAC);
    sendIcmp6(aIf, 'ff02::1', 255, na(aMac), a.name);
    // Linux drops an advertisement with another hop limit or a bad checksum (RFC 4861 §7.1.2)
    await waitFor(async () => (await entry())?.lladdr === aMac, {
      what: 'the entry to name a',
      timeoutMs: 3000,
    });
    expect((await entry())?.state).toEqual(['STALE']);
  });

  it('the same message with hop limit 64 is ignored by the neighbour', async () => {
    const other = '2001:db8:113::81';
    await b.ip('-6', 'neigh', 'replace', TARGET, 'lladdr', STALE_MAC, 'dev', bIf, 'nud', 'stale');
    await b.ip('-6', 'neigh', 'replace', other, 'lladdr', STALE_MAC, 'dev', bIf, 'nud', 'stale');
    sendIcmp6(aIf, 'ff02::1', 64, na(aMac), a.name);
    // a valid one for another address after it, on the same link: once that one is taken, so was the
    // first (the veth delivers in order)
    sendIcmp6(aIf, 'ff02::1', 255, na(aMac, 0x81), a.name);
    await waitFor(async () => (await entry(other))?.lladdr === aMac, {
      what: 'the second advertisement taken',
      timeoutMs: 3000,
    });
    expect((await entry())?.lladdr).toBe(STALE_MAC);
  });

  it('refuses what it cannot send, naming it', () => {
    const expectCode = (f: () => void, code: string) => {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(isTunError(e, code as never), String(e)).toBe(true);
      }
    };
    expectCode(() => sendIcmp6('no-such-if', 'ff02::1', 255, na(aMac), a.name), 'TUN_BAD_ARGUMENT');
    expectCode(() => sendIcmp6(aIf, '203.0.113.1', 255, na(aMac), a.name), 'TUN_BAD_ARGUMENT');
    expectCode(() => sendIcmp6(aIf, 'ff02::1', 256, na(aMac), a.name), 'TUN_BAD_ARGUMENT');
    expectCode(() => sendIcmp6(aIf, 'ff02::1', 255, new Uint8Array(2), a.name), 'TUN_BAD_ARGUMENT');
    expectCode(() => sendIcmp6(aIf, 'ff02::1', 255, na(aMac), 'no-such-netns'), 'TUN_NETNS');
  });
});
