import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseGatewayConfig, readGatewayConfigText } from './config.js';

const labConfig = new URL('../../../infra/lab/gateway.yaml', import.meta.url);

function problems(text: string): string[] {
  try {
    parseGatewayConfig(text, 'g.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

const minimal = `
name: gw
outside: { interfaces: [eth0] }
interconnect: { interface: eth1, address: 198.18.0.1 }
control:
  listen: 198.18.0.1:7443
  tls: { ca: ca.pem, cert: gw.pem, key: gw-key.pem }
  store: store.json
clusterAddresses: [{ network: outside, address: 203.0.113.80 }]
`;

describe('gateway config', () => {
  it('reads the example the package installs in /etc/onehost', async () => {
    const text = await readFile(new URL('../../../infra/etc/gateway.yaml', import.meta.url), 'utf8');
    const cfg = parseGatewayConfig(text, '/etc/onehost/gateway.yaml');
    expect(cfg.name).toBe('gw1');
    expect(cfg.control.store).toEqual({ kind: 'embedded', path: '/var/lib/onehost/gateway-store.json' });
    expect(cfg.switch.entries).toHaveLength(3);
  });

  it('reads the lab configuration', async () => {
    const cfg = parseGatewayConfig(await readFile(labConfig, 'utf8'));
    expect(cfg.name).toBe('gw');
    expect(cfg.interconnect).toEqual({
      interface: 'eth1',
      address: '198.18.0.1',
      prefix: '198.18.0.0/15',
      mtu: 1600,
      gateways: ['198.18.0.1'],
    });
    expect(cfg.control.listen).toEqual({ host: '198.18.0.1', port: 7443 });
    expect(cfg.control.heartbeatTimeoutMs).toBe(350);
    expect(cfg.metrics).toEqual({ host: '198.18.0.1', port: 9400 });
    expect(cfg.switch.entries.length).toBeGreaterThan(0);
  });

  it('announce: off by default; asn and vtySocket required; precise errors', () => {
    expect(parseGatewayConfig(minimal).announce).toBeNull();
    const on = readGatewayConfigText(
      `${minimal}announce: { asn: 64601, vtySocket: frr, peers: [203.0.113.2] }\n`,
      '/etc/onehost/g.yaml',
    );
    expect(on.announce).toEqual({
      asn: 64601,
      vtySocket: '/etc/onehost/frr',
      vtysh: 'vtysh',
      withdrawGraceMs: 300,
      peers: ['203.0.113.2'],
    });
    const p = problems(`${minimal}announce: { asn: 0, withdrawGraceMs: -1, table: 5, peers: [] }\n`).join(
      '\n',
    );
    expect(p).toMatch(/g\.yaml:\d+:\d+: announce\.asn: must be an integer from 1 to 4294967295, got 0/);
    expect(p).toMatch(/announce\.vtySocket: must be the directory of bgpd’s vty socket, got nothing/);
    expect(p).toMatch(/announce\.withdrawGraceMs: must be an integer from 0 to 60000/);
    expect(p).toMatch(/announce\.table: unknown field/);
    expect(p).toMatch(/announce\.peers: must list the routers’ IPv4 addresses/);
  });

  it('flowSync: off by default; port 3780 and conntrackd from the PATH; kernel mode only', () => {
    expect(parseGatewayConfig(minimal).flowSync).toBeNull();
    expect(parseGatewayConfig(`${minimal}flowSync: {}\n`).flowSync).toEqual({
      port: 3780,
      conntrackd: 'conntrackd',
    });
    const p = problems(`${minimal}datapath: { mode: tun }\nflowSync: { port: 0, peers: [1] }\n`).join('\n');
    expect(p).toMatch(/flowSync\.port: must be an integer from 1 to 65535, got 0/);
    expect(p).toMatch(/flowSync\.peers: unknown field/);
    expect(p).toMatch(/flowSync: needs datapath\.mode kernel/);
  });

  it('interconnect.gateways: default this gateway alone; must include it', () => {
    const two = minimal.replace(
      'address: 198.18.0.1 }',
      'address: 198.18.0.1, gateways: [198.18.0.1, 198.18.0.2] }',
    );
    expect(parseGatewayConfig(two).interconnect.gateways).toEqual(['198.18.0.1', '198.18.0.2']);
    const other = minimal.replace(
      'address: 198.18.0.1 }',
      'address: 198.18.0.1, gateways: [198.18.0.2, x] }',
    );
    const p = problems(other).join('\n');
    expect(p).toMatch(/interconnect\.gateways\.1: must be an IPv4 address, got "x"/);
    expect(p).toMatch(/interconnect\.gateways: must include this gateway’s own address 198\.18\.0\.1/);
  });

  it('probe: defaults 200 ms × 3 (rise 2) on port 7473; precise errors', () => {
    expect(parseGatewayConfig(minimal).probe).toEqual({ port: 7473, intervalMs: 200, fall: 3, rise: 2 });
    expect(parseGatewayConfig(`${minimal}probe: { port: 0 }\n`).probe.port).toBe(0);
    const p = problems(`${minimal}probe: { intervalMs: 5, fall: 0, port: 7472, every: 1 }\n`);
    expect(p.join('\n')).toMatch(/probe\.intervalMs.*20/);
    expect(p.join('\n')).toMatch(/probe\.fall/);
    expect(p.join('\n')).toMatch(/probe\.port.*must differ from splice\.port \(7472\)/);
    expect(p.join('\n')).toMatch(/every/);
  });

  it('fills defaults for a minimal file', () => {
    const cfg = parseGatewayConfig(minimal);
    expect(cfg.tun).toEqual({ name: 'onehost0', mtu: 1500, maxBatch: 64 });
    expect(cfg.vxlan).toEqual({ vni: 4242, port: 4789 });
    expect(cfg.control.portRange).toEqual({ lo: 32768, hi: 60999 });
    expect(cfg.host.manage).toBe(true);
    expect(cfg.metrics).toBeNull();
    expect(cfg.datapath).toEqual({
      mode: 'kernel',
      device: 'onehostvx',
      table: 'onehost_fastpath',
      rulePref: 90,
      markBase: 0x6f480000,
      tableBase: 0x4f480000,
      guard: { first: 20_000, unknown: 5_000, other: 5_000, payloadSyn: 20_000, payload: 0 },
    });
  });

  it('reads the data path mode and refuses what would not work', () => {
    expect(parseGatewayConfig(`${minimal}datapath: { mode: tun }\n`).datapath.mode).toBe('tun');
    const p = problems(
      `${minimal}datapath: { mode: fast, rulePref: 150, markBase: 0x12345, guard: { first: -1, flood: 1 } }\n`,
    );
    expect(p.some((x) => /datapath\.mode: must be kernel or tun, got "fast"/.test(x))).toBe(true);
    expect(p.some((x) => /datapath\.rulePref: must be below host\.rulePref/.test(x))).toBe(true);
    expect(p.some((x) => /datapath\.markBase: must be a multiple of 0x10000/.test(x))).toBe(true);
    expect(
      p.some((x) => /datapath\.guard\.first: must be an integer from 0 to 10000000, got -1/.test(x)),
    ).toBe(true);
    expect(p.some((x) => /datapath\.guard\.flood: unknown field/.test(x))).toBe(true);
  });

  it('names the field, line and column of every problem', () => {
    const p = problems(
      `${minimal}tun: { name: this-name-is-far-too-long, mtu: 70000 }\nvxlan: { vni: -1, prot: 1 }\n`,
    );
    expect(p).toContain(
      'g.yaml:10:14: tun.name: must be an interface name (≤ 15 characters), got "this-name-is-far-too-long"',
    );
    expect(p.some((x) => /tun\.mtu: must be an integer from 576 to 65535, got 70000/.test(x))).toBe(true);
    expect(p.some((x) => /vxlan\.vni: must be an integer from 0 to 16777215, got -1/.test(x))).toBe(true);
    expect(p.some((x) => /vxlan\.prot: unknown field/.test(x))).toBe(true);
  });

  it('refuses bad addresses, endpoints and contradictions', () => {
    const p = problems(
      minimal
        .replace('198.18.0.1 }', '198.18.0.300 }')
        .replace('198.18.0.1:7443', '198.18.0.1')
        .concat('control2: 1\nhost: { rulePref: 300, localPref: 200 }\n'),
    );
    expect(
      p.some((x) => /interconnect\.address: must be an IPv4 address, got "198\.18\.0\.300"/.test(x)),
    ).toBe(true);
    expect(p.some((x) => /control\.listen: must be address:port/.test(x))).toBe(true);
    expect(p.some((x) => /control2: unknown field/.test(x))).toBe(true);
    expect(p.some((x) => /host\.rulePref: must be below localPref/.test(x))).toBe(true);
  });

  it('refuses an interconnect MTU that leaves IPv6 less than its minimum, only with an IPv6 cluster address', () => {
    const six = (mtu: number) =>
      minimal
        .replace('address: 198.18.0.1 }', `address: 198.18.0.1, mtu: ${mtu} }`)
        .replace(
          '[{ network: outside, address: 203.0.113.80 }]',
          '[{ network: outside, address: 203.0.113.80 }, { network: outside, address: "2001:db8:113::80" }]',
        );
    expect(problems(six(1329))).toEqual([
      'g.yaml:4:60: interconnect.mtu: must be at least 1330 with an IPv6 cluster address (VXLAN takes 50, IPv6 needs 1280), got 1329',
    ]);
    expect(problems(six(1330))).toEqual([]);
    // IPv4 alone: 576 is still fine
    expect(problems(minimal.replace('address: 198.18.0.1 }', 'address: 198.18.0.1, mtu: 1000 }'))).toEqual(
      [],
    );
  });

  it('reads control.store: a file (embedded) or etcd, with paths relative to the file', () => {
    expect(readGatewayConfigText(minimal, '/etc/onehost/g.yaml').control.store).toEqual({
      kind: 'embedded',
      path: '/etc/onehost/store.json',
    });
    const etcd = minimal.replace(
      '  store: store.json\n',
      '  store:\n    etcd:\n      endpoints: [https://127.0.0.1:2379, https://etcd-2.lab:2379]\n' +
        '      tls: { ca: ca.pem, cert: gw.pem, key: /k/gw-key.pem }\n      prefix: /onehost/lab/\n',
    );
    expect(readGatewayConfigText(etcd, '/etc/onehost/g.yaml').control.store).toEqual({
      kind: 'etcd',
      endpoints: ['https://127.0.0.1:2379', 'https://etcd-2.lab:2379'],
      tls: { ca: '/etc/onehost/ca.pem', cert: '/etc/onehost/gw.pem', key: '/k/gw-key.pem' },
      prefix: '/onehost/lab/',
    });
  });

  it('refuses a bad etcd store naming the field', () => {
    const store = (text: string) => problems(minimal.replace('  store: store.json\n', `  store: ${text}\n`));
    expect(
      store('{ etcd: { endpoints: [http://127.0.0.1:2379, "https://x:99999"], prefix: onehost } }'),
    ).toEqual([
      'g.yaml: control.store.etcd.tls: must be a mapping',
      'g.yaml:8:32: control.store.etcd.endpoints.0: must be https://host:port (etcd is reached over mutual TLS), got "http://127.0.0.1:2379"',
      'g.yaml:8:55: control.store.etcd.endpoints.1: must be https://host:port (etcd is reached over mutual TLS), got "https://x:99999"',
      'g.yaml:8:83: control.store.etcd.prefix: must be a key prefix that starts and ends with / (e.g. /onehost/lab/), got "onehost"',
    ]);
    expect(
      store('{ etcd: { endpoints: [], tls: { ca: a, cert: b, key: c, pass: d }, prefix: /x/ } }'),
    ).toEqual([
      'g.yaml:8:72: control.store.etcd.tls.pass: unknown field',
      'g.yaml:8:31: control.store.etcd.endpoints: must list at least one etcd client URL',
    ]);
    expect(store('{ consul: {} }')).toEqual([
      'g.yaml:8:20: control.store.consul: unknown field',
      'g.yaml: control.store.etcd: must be a mapping',
    ]);
    expect(
      store('{ etcd: { endpoints: ["https://[::1]:2379"], tls: { ca: a, key: c }, prefix: / } }'),
    ).toEqual(['g.yaml: control.store.etcd.tls.cert: must be a string, got nothing']);
    expect(store('7')).toEqual([
      'g.yaml:8:10: control.store: must be a file path (the embedded store) or a mapping with etcd, got 7',
    ]);
  });

  it('refuses a missing cluster address and bad YAML with a position', () => {
    expect(problems(minimal.replace(/clusterAddresses.*\n/, ''))).toContain(
      'g.yaml: clusterAddresses: must list at least one cluster address',
    );
    expect(problems('name: [unclosed')[0]).toMatch(/^g\.yaml:1:\d+: /);
  });
});
