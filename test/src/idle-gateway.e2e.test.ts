import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';

// Counting honestly (issue 15, item 6): only packets routed into the TUN reach the data path. On a host
// with IPv6 on (the lab turns it off everywhere; here the gateway's namespace gets it back before the
// gateway starts), a TUN with a link-local address carries the kernel's own router solicitations and MLD
// reports into the switch, which counted them as malformed drops on an idle gateway.
// With the embedded store, the gateway registry (onehostctl gateways) is this gateway alone.

let c: Cluster;

/** icmp6Out reads a device's ICMPv6 output counters in the gateway's namespace (absent: zeros). */
async function icmp6Out(dev: string): Promise<{ rs: number; msgs: number }> {
  const text = await c.lab
    .exec('gw', 'cat', [`/proc/net/dev_snmp6/${dev}`])
    .then((r) => r.stdout)
    .catch(() => '');
  const get = (k: string) => Number(new RegExp(`^${k}\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { rs: get('Icmp6OutRouterSolicits'), msgs: get('Icmp6OutMsgs') };
}

beforeAll(async () => {
  c = await startCluster({
    nodes: 1,
    beforeGateway: async (lab) => {
      await lab.exec('gw', 'sysctl', [
        '-qw',
        'net.ipv6.conf.all.disable_ipv6=0',
        'net.ipv6.conf.default.disable_ipv6=0',
      ]);
    },
  });
}, 120_000);
afterAll(async () => {
  await c?.stop();
});

describe(`an idle gateway (${DATAPATH})`, () => {
  it('counts no drops while the kernel sends its IPv6 chatter', { timeout: 60_000 }, async () => {
    // A device brought up now (after the TUN) sends its second router solicitation 4 s after its first
    // (RFC 4861 §6.3.7, the kernel's rtr_solicit_interval): by then a TUN with a link-local address
    // would have sent its own (no DAD on a NOARP device) and its MLD reports.
    await c.lab.exec('gw', 'ip', ['link', 'add', 'probe6a', 'type', 'veth', 'peer', 'name', 'probe6b']);
    await c.lab.exec('gw', 'ip', ['link', 'set', 'probe6a', 'up']);
    await c.lab.exec('gw', 'ip', ['link', 'set', 'probe6b', 'up']);
    await waitFor(async () => (await icmp6Out('probe6a')).rs >= 2, {
      what: 'the kernel to send two router solicitations on a new device',
      timeoutMs: 20_000,
      intervalMs: 250,
    });
    expect(await c.metric('onehost_drops_total')).toBe(0);
    expect(await c.metric('onehost_wire_errors_total')).toBe(0);
    // and the kernel sent nothing of its own into the TUN
    expect((await icmp6Out('onehost0')).msgs).toBe(0);
  });

  it('lists itself alone in the gateway registry (embedded store)', async () => {
    const l = JSON.parse(await c.ctl(['gateways', '--json'])) as {
      gateways: Array<Record<string, unknown>>;
      storeRevision: number;
    };
    expect(l.storeRevision).toBe(0);
    expect(l.gateways).toHaveLength(1);
    expect(l.gateways[0]).toMatchObject({
      name: 'gw',
      controlAddress: c.control,
      datapath: DATAPATH,
      announcement: 'off',
      health: 'ready',
      stale: '',
      drained: false,
    });
  });
});
