import { parseIpv4 } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { type GatewayHostConfig, HOST_DROPS, nftRuleset } from './gateway-host.js';

const config: GatewayHostConfig = {
  name: 'gw',
  tun: 'onehost0',
  vips: [parseIpv4('203.0.113.80')],
  outside: ['eth0'],
  interconnect: 'eth1',
  interconnectPrefix: '198.18.0.0/15',
  management: ['203.0.113.11/32'],
  vxlanPort: 4789,
  hostPorts: [7443, 9400],
  txQueueLen: 10_000,
  table: 4789,
  rulePref: 100,
  localPref: 200,
  statePath: 'gateway-host.json',
};

/** rulesOf lists the rules of chain `name` in `ruleset`, in order. */
function rulesOf(ruleset: string, name: string): string[] {
  const m = new RegExp(`chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(ruleset);
  return (m?.[1] ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('type '));
}

describe('the host filter (docs/gateway.md, exposure)', () => {
  const rules = nftRuleset(config);

  it('sends what arrives on the outside interfaces and the TUN through one chain', () => {
    expect(rulesOf(rules, 'input')).toEqual(['iifname { "eth0", "onehost0" } jump from_outside']);
  });

  it('drops VXLAN before it accepts management, and counts what it refuses by name', () => {
    const r = rulesOf(rules, 'from_outside');
    expect(r[0]).toMatch(/^udp dport 4789 counter name "outside_vxlan" drop/);
    expect(r[1]).toMatch(/^ip saddr \{ 203\.0\.113\.11\/32 \} accept/);
    expect(r[2]).toMatch(
      /^ip daddr \{ 203\.0\.113\.80 \} tcp dport \{ 7443, 9400 \} counter name "outside_to_host" drop/,
    );
    expect(r[3]).toMatch(/^ip daddr \{ 203\.0\.113\.80 \} accept/);
    expect(r[4]).toMatch(/^ct state established,related accept/);
    expect(r[5]).toMatch(/^counter name "outside_to_host" drop/);
    expect(r).toHaveLength(6);
    for (const n of HOST_DROPS) expect(rules).toContain(`counter ${n} {`);
  });

  it('drops VXLAN from outside to the nodes, management sources included, before the management rule', () => {
    const r = rulesOf(rules, 'forward');
    expect(r[0]).toMatch(
      /^iifname \{ "eth0" \} ip daddr 198\.18\.0\.0\/15 udp dport 4789 counter name "outside_vxlan" drop/,
    );
    expect(r[1]).toMatch(/ip saddr != \{ 203\.0\.113\.11\/32 \} counter name "outside_to_nodes" drop/);
  });

  it('without a management list accepts no outside source for the host itself', () => {
    const r = rulesOf(nftRuleset({ ...config, management: [] }), 'from_outside');
    expect(r.some((l) => l.includes('saddr'))).toBe(false);
    expect(r.at(-1)).toMatch(/^counter name "outside_to_host" drop/);
  });
});
