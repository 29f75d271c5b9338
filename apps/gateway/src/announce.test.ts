import { describe, expect, it } from 'vitest';
import { BgpAnnouncer, type Exec, makeAnnouncer } from './announce.js';
import { parseGatewayConfig } from './config.js';

const quiet = { info: () => undefined, warn: () => undefined };
const cfg = {
  asn: 64601,
  vtySocket: '/run/frr-gw',
  vtysh: 'vtysh',
  withdrawGraceMs: 0,
  peers: ['203.0.113.2'],
};

describe('announcer', () => {
  it('adds and removes network statements through vtysh, state follows', async () => {
    const calls: string[][] = [];
    const exec: Exec = async (_f, args) => {
      calls.push(args);
      return '';
    };
    const a = new BgpAnnouncer(cfg, ['203.0.113.80'], quiet, exec);
    expect(a.state()).toBe('withdrawn');
    await a.announce();
    expect(a.state()).toBe('announced');
    expect(calls[0]).toEqual([
      '--vty_socket',
      '/run/frr-gw',
      '-c',
      'configure terminal',
      '-c',
      'router bgp 64601',
      '-c',
      'address-family ipv4 unicast',
      '-c',
      'network 203.0.113.80/32',
    ]);
    await a.withdraw();
    expect(a.state()).toBe('withdrawn');
    expect(calls[1]?.at(-1)).toBe('no network 203.0.113.80/32');
  });

  it('a refusal ("% …") leaves the state and is retried; withdraw stops the retry', async () => {
    let n = 0;
    const exec: Exec = async () => (n++ === 0 ? '% BGP instance not found\n' : '');
    const a = new BgpAnnouncer(cfg, ['203.0.113.80'], quiet, exec);
    await a.announce();
    expect(a.state()).toBe('withdrawn');
    await a.withdraw();
    expect(a.state()).toBe('withdrawn');
    expect(n).toBe(1);
  });

  it('off without announce; IPv4 cluster addresses only', () => {
    const text = `
name: gw
outside: { interfaces: [eth0] }
interconnect: { interface: eth1, address: 198.18.0.1 }
control: { listen: 198.18.0.1:7443, tls: { ca: a, cert: b, key: c }, store: s.json }
clusterAddresses: [{ network: outside, address: 203.0.113.80 }, { network: outside, address: 2001:db8::80 }]
`;
    expect(makeAnnouncer(parseGatewayConfig(text), quiet).state()).toBe('off');
    const on = parseGatewayConfig(
      `${text}announce: { asn: 64601, vtySocket: /run/frr, peers: [203.0.113.2] }\n`,
    );
    const calls: string[][] = [];
    const a = makeAnnouncer(on, quiet, async (_f, args) => {
      calls.push(args);
      return '';
    });
    expect(a.state()).toBe('withdrawn');
    return a
      .announce()
      .then(() =>
        expect(calls[0]?.filter((x) => x.startsWith('network'))).toEqual(['network 203.0.113.80/32']),
      );
  });
});
