import type { Lab } from '@onehost/lab';
import { type LabProcess, waitFor } from '@onehost/testkit';
import { macLinkLocal, parseMac } from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { withVip6 } from './lab-yaml.js';

// Issue 16 item 3: when the gateway starts it tells the outside link that it has the IPv6 cluster
// address now, with unsolicited Neighbor Advertisements (RFC 4861 §7.2.6) of its own: the kernel sends
// none for a proxy NDP entry, which is how the gateway answers for it. A neighbour that cached another
// owner (here: c1, told so before the gateway starts) updates its entry at once. IPv4's twin is the
// gratuitous ARP (gateway-host.e2e). Addresses from 2001:db8::/32 (RFC 3849), inside the lab only.

const VIP6 = '2001:db8:113::80';
/** the previous owner c1 believes in: a MAC no host in the lab has */
const OLD_OWNER = '02:00:00:00:0e:01';

let c: Cluster;
let dump: LabProcess;

const neigh = async (lab: Lab, host: string) =>
  JSON.parse((await lab.exec(host, 'ip', ['-j', '-6', 'neigh', 'show', VIP6, 'dev', 'eth0'])).stdout)[0] as
    | { lladdr?: string; state?: string[] }
    | undefined;

beforeAll(async () => {
  c = await startCluster({
    nodes: 1,
    ipv6: true,
    gatewayYaml: (y) => withVip6(y, VIP6),
    beforeGateway: async (lab) => {
      // c1 knows the cluster address at another MAC, as after a takeover from another gateway
      await lab.exec('c1', 'ip', [
        ...['-6', 'neigh', 'replace', VIP6, 'lladdr', OLD_OWNER, 'dev', 'eth0', 'nud', 'stale'],
      ]);
      expect((await neigh(lab, 'c1'))?.lladdr).toBe(OLD_OWNER);
      // c2 watches the link for advertisements of the cluster address
      dump = lab.spawn('c2', 'tcpdump', [
        ...['-l', '-n', '-v', '-tt', '-c', '3', '-i', 'eth0'],
        `icmp6 and ip6[40] == 136 and ip6[48:4] == 0x20010db8 and ip6[60:4] == 0x80`,
      ]);
      await dump.waitForOutput('listening on', 5000);
    },
  });
}, 180_000);
afterAll(async () => {
  await dump?.stop();
  await c?.stop();
});

describe(`unsolicited neighbour advertisements of the IPv6 cluster address (${DATAPATH})`, () => {
  it("a neighbour's entry for the cluster address names the gateway after its start, without asking", async () => {
    const gwMac = (await c.lab.exec('gw', 'cat', ['/sys/class/net/eth0/address'])).stdout.trim();
    await waitFor(async () => (await neigh(c.lab, 'c1'))?.lladdr === gwMac, {
      what: "c1's entry for the IPv6 cluster address to name the gateway",
      timeoutMs: 10_000,
    });
    // an unsolicited advertisement (Solicited clear) leaves the entry STALE, RFC 4861 §7.2.5
    expect((await neigh(c.lab, 'c1'))?.state).toEqual(['STALE']);
  });

  it('three advertisements, a second apart, from the gateway’s link-local to all nodes, hop limit 255', async () => {
    await waitFor(() => !dump.running, { what: 'tcpdump on c2 to see three', timeoutMs: 10_000 });
    const gwMac = (await c.lab.exec('gw', 'cat', ['/sys/class/net/eth0/address'])).stdout.trim();
    const text = dump.output();
    const stamps = [...text.matchAll(/^(\d+\.\d+) IP6 \(.*hlim 255.*\)/gm)].map((m) => Number(m[1]));
    expect(stamps, text).toHaveLength(3);
    for (let i = 1; i < 3; i++) expect(stamps[i]! - stamps[i - 1]!).toBeGreaterThanOrEqual(0.9);
    const adverts = text.match(
      / > ff02::1: .*neighbor advertisement.*tgt is 2001:db8:113::80, Flags \[router, override\]/g,
    );
    expect(adverts, text).toHaveLength(3);
    expect(text).toContain(`${macLinkLocal(parseMac(gwMac))} > ff02::1`);
    expect(text).toContain(`link-address option (2), length 8 (1): ${gwMac}`);
  });

  it('counted: three sent, none failed; IPv4 has its gratuitous ARPs', async () => {
    await waitFor(
      async () => (await c.metric('onehost_announcements_total', { family: 'ipv6', result: 'sent' })) === 3,
      {
        what: 'three advertisements counted',
        timeoutMs: 5000,
      },
    );
    expect(await c.metric('onehost_announcements_total', { family: 'ipv6', result: 'failed' })).toBe(0);
    expect(
      await c.metric('onehost_announcements_total', { family: 'ipv4', result: 'sent' }),
    ).toBeGreaterThanOrEqual(2);
    expect(await c.metric('onehost_announcements_total', { family: 'ipv4', result: 'failed' })).toBe(0);
  });
});
