import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_YAML } from '../testing/example-config.js';
import { formatIssue } from './fields.js';
import { parseConfigText } from './load.js';

function issues(text: string): string[] {
  const r = parseConfigText(text);
  return r.ok ? [] : r.issues.map((i) => formatIssue(i, 'c.yaml'));
}

const BASE = `gateway: gw
clusterAddresses:
  - { network: outside, address: 203.0.113.10 }
nodes:
  - { id: 1, name: gw, address: 198.18.0.1 }
  - { id: 2, name: n1, address: 198.18.0.11 }
`;

describe('config: YAML format', () => {
  it('accepts the documented example and the test example', () => {
    const doc = readFileSync(new URL('../../examples/cluster.yaml', import.meta.url), 'utf8');
    const r = parseConfigText(doc);
    if (!r.ok) throw new Error(r.issues.map((i) => formatIssue(i)).join('\n'));
    expect(r.config.gateway).toBe('gw');
    expect(r.config.clusterAddresses[0]).toEqual({ network: 'outside', address: 0xcb00710a, default: true });
    expect(r.config.entries.map((e) => `${e.protocol}/${e.port}:${e.function}`)).toContain(
      'tcp/443:connection',
    );
    expect(parseConfigText(EXAMPLE_YAML).ok).toBe(true);
  });

  it('fills defaults: state active, ganesha handle layout, first address is the default, fragments', () => {
    const r = parseConfigText(BASE);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.nodes[1]).toMatchObject({
      state: 'active',
      nfsHandle: { offset: 2, length: 2, endian: 'big' },
      mountd: {},
    });
    expect(r.config.clusterAddresses[0]!.default).toBe(true);
    expect(r.config.fragments).toEqual({ maxEntries: 4096, timeout: 30 });
    expect(r.config.management).toEqual([]);
    expect(r.config.management6).toEqual([]);
  });

  it('takes IPv6 management sources beside IPv4 ones (the host filter lets them in; no bypass)', () => {
    const r = parseConfigText(
      `${BASE}management: { allow: [203.0.113.11/32, "2001:db8:113::11", "2001:DB8:7::/48", "::/0"] }\n`,
    );
    if (!r.ok) throw new Error(r.issues.map((i) => formatIssue(i)).join('\n'));
    expect(r.config.management.map((m) => m.text)).toEqual(['203.0.113.11/32']);
    expect(r.config.management6.map((m) => `${m.text} /${m.prefix}`)).toEqual([
      '2001:db8:113::11 /128',
      '2001:DB8:7::/48 /48',
      '::/0 /0',
    ]);
    expect([...r.config.management6[1]!.network.subarray(0, 8)]).toEqual([0x20, 1, 0x0d, 0xb8, 0, 7, 0, 0]);
  });

  it('takes a network with one address of each family, each family with its own default', () => {
    const r = parseConfigText(
      BASE.replace(
        '203.0.113.10 }',
        '203.0.113.10 }\n  - { network: outside, address: "2001:db8:0:113::10" }',
      ),
    );
    if (!r.ok) throw new Error(r.issues.map((i) => formatIssue(i)).join('\n'));
    expect(r.config.clusterAddresses).toHaveLength(2);
    expect(r.config.clusterAddresses[0]).toEqual({ network: 'outside', address: 0xcb00710a, default: true });
    const six = r.config.clusterAddresses[1]!;
    expect(six).toMatchObject({ network: 'outside', address: 0, default: true });
    expect(Array.from(six.address6!)).toEqual([
      0x20, 1, 0x0d, 0xb8, 0, 0, 1, 0x13, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ]);
  });

  const bad: [string, string, RegExp][] = [
    ['YAML syntax', 'gateway: [gw', /^c\.yaml:\d+:\d+: \(yaml\): /],
    ['missing sections', 'gateway: gw\n', /^c\.yaml:1:1: nodes: is required$/],
    ['unknown top-level field', `${BASE}entrys: []\n`, /^c\.yaml:7:1: entrys: unknown field$/],
    [
      'gateway not a node',
      BASE.replace('gateway: gw', 'gateway: gx'),
      /^c\.yaml:1:10: gateway: must name a node in nodes, got "gx"$/,
    ],
    [
      'bad address',
      BASE.replace('203.0.113.10', '203.0.113.300'),
      /clusterAddresses\[0\]\.address: must be an IPv4 or IPv6 address like 203\.0\.113\.10 or 2001:db8::10, got "203\.0\.113\.300"/,
    ],
    [
      'bad IPv6 address',
      BASE.replace('203.0.113.10', '"2001:db8::1::2"'),
      /clusterAddresses\[0\]\.address: must be an IPv4 or IPv6 address like .*, got "2001:db8::1::2"/,
    ],
    [
      'link-local IPv6 address',
      BASE.replace('203.0.113.10', '"fe80::1"'),
      /clusterAddresses\[0\]\.address: must be an address a host can own, got fe80::1 \(link-local\)/,
    ],
    [
      'two IPv6 addresses on one network',
      BASE.replace(
        '203.0.113.10 }',
        '203.0.113.10 }\n  - { network: outside, address: "2001:db8::10" }\n  - { network: outside, address: "2001:db8::11" }',
      ),
      /clusterAddresses\[2\]\.network: duplicates IPv6 network outside \(already at clusterAddresses\[1\]\.network\)/,
    ],
    [
      'the same IPv6 address twice, written two ways',
      BASE.replace(
        '203.0.113.10 }',
        '203.0.113.10 }\n  - { network: a, address: "2001:db8::10" }\n  - { network: b, address: "2001:DB8:0::0:10" }',
      ),
      /clusterAddresses\[2\]\.address: duplicates cluster address 2001:db8::10/,
    ],
    [
      'two IPv6 defaults',
      BASE.replace(
        '203.0.113.10 }',
        '203.0.113.10 }\n  - { network: a, address: "2001:db8::10", default: true }\n  - { network: b, address: "2001:db8::11", default: true }',
      ),
      /clusterAddresses: exactly one IPv6 address may be the default, got 2/,
    ],
    [
      'duplicate node id',
      BASE.replace('id: 2', 'id: 1'),
      /^c\.yaml:6:11: nodes\[1\]\.id: duplicates node id 1 \(already at nodes\[0\]\.id\)$/,
    ],
    [
      'bad node state',
      BASE.replace('address: 198.18.0.11 }', 'address: 198.18.0.11, state: gone }'),
      /nodes\[1\]\.state: must be one of active, draining, down, got the string "gone"/,
    ],
    [
      'node id out of range',
      BASE.replace('id: 2', 'id: 70000'),
      /nodes\[1\]\.id: must be at most 65534, got 70000/,
    ],
    [
      'two defaults',
      `${BASE.replace('203.0.113.10 }', '203.0.113.10, default: true }')}  - { network: b, address: 203.0.113.11, default: true }\n`.replace(
        'nodes:',
        'nodes:',
      ),
      /clusterAddresses: exactly one address may be the default, got 2|unknown field/,
    ],
    [
      'cidr with host bits',
      `${BASE}management: { allow: [203.0.113.7/24] }\n`,
      /management\.allow\[0\]: has host bits set past \/24 \(did you mean 203\.0\.113\.0\/24\?\)/,
    ],
    [
      'IPv6 cidr with host bits',
      `${BASE}management: { allow: ["2001:db8:113::11/64"] }\n`,
      /^c\.yaml:\d+:\d+: management\.allow\[0\]: has host bits set past \/64 \(did you mean 2001:db8:113::\/64\?\)$/,
    ],
    [
      'IPv6 cidr with a prefix past 128',
      `${BASE}management: { allow: [203.0.113.0/24, "2001:db8::/129"] }\n`,
      /^c\.yaml:\d+:\d+: management\.allow\[1\]: must be an IPv4 or IPv6 network like 203\.0\.113\.0\/24 or 2001:db8::\/32, got "2001:db8::\/129"$/,
    ],
    [
      'malformed IPv6 cidr',
      `${BASE}management: { allow: ["2001:db8:::1/128"] }\n`,
      /management\.allow\[0\]: must be an IPv4 or IPv6 network like .*, got "2001:db8:::1\/128"$/,
    ],
    [
      'IPv6 cidr without a prefix after the slash',
      `${BASE}management: { allow: ["2001:db8::/"] }\n`,
      /management\.allow\[0\]: must be an IPv4 or IPv6 network like .*, got "2001:db8::\/"$/,
    ],
    [
      'overlapping port blocks',
      `${BASE}portBlocks:\n  - { node: n1, from: 40000, to: 40999 }\n  - { node: gw, from: 40500, to: 41000 }\n`,
      /^c\.yaml:9:\d+: portBlocks\[1\]\.from: block 40500-41000 overlaps portBlocks\[0\] \(40000-40999\)$/,
    ],
    [
      'inverted block',
      `${BASE}portBlocks:\n  - { node: n1, from: 40999, to: 40000 }\n`,
      /portBlocks\[0\]\.to: must be at least from \(40999\), got 40000/,
    ],
    [
      'relative export path',
      `${BASE}exports:\n  - { path: srv, node: n1 }\n`,
      /exports\[0\]\.path: must be an absolute path, got "srv"/,
    ],
    [
      'export id claimed twice',
      `${BASE}exports:\n  - { path: /a, node: n1, exportId: 5 }\n  - { path: /b, node: gw, exportId: 5 }\n`,
      /exports\[1\]\.exportId: export id 5 is already claimed by node n1 \(exports\[0\]\)/,
    ],
    [
      'unknown function',
      `${BASE}entries:\n  - { protocol: tcp, port: 80, function: magic, policy: x }\n`,
      /^c\.yaml:8:\d+: entries\[0\]\.function: must be one of fixed, connection, udp-flow, port-block, mount, nfs, portmap, got "magic"$/,
    ],
    [
      'connection on udp',
      `${BASE}entries:\n  - { protocol: udp, port: 80, function: connection }\n`,
      /entries\[0\]\.protocol: function connection serves tcp, not udp/,
    ],
    [
      'duplicate entry',
      `${BASE}entries:\n  - { protocol: tcp, port: 80, function: portmap }\n  - { protocol: tcp, port: 80, function: portmap }\n`,
      /entries\[1\]\.port: tcp\/80 is already entries\[0\]/,
    ],
    [
      'port out of range',
      `${BASE}entries:\n  - { protocol: tcp, port: 0, function: portmap }\n`,
      /entries\[0\]\.port: must be at least 1, got 0/,
    ],
    [
      'fixed without node',
      `${BASE}entries:\n  - { protocol: tcp, port: 22, function: fixed }\n`,
      /entries\[0\]\.node: is required/,
    ],
    [
      'fixed backup equals node',
      `${BASE}entries:\n  - { protocol: tcp, port: 22, function: fixed, node: n1, backup: n1 }\n`,
      /entries\[0\]\.backup: must differ from node/,
    ],
    [
      'misspelt option',
      `${BASE}entries:\n  - { protocol: tcp, port: 80, function: connection, polcy: maglev }\n`,
      /^c\.yaml:8:\d+: entries\[0\]\.polcy: unknown field$/,
    ],
    [
      'unknown node in nodes list',
      `${BASE}entries:\n  - { protocol: udp, port: 53, function: udp-flow, nodes: [n1, n9] }\n`,
      /entries\[0\]\.nodes\[1\]: must name a node, got "n9"/,
    ],
    [
      'wrong type',
      `${BASE}fragments: { timeout: soon }\n`,
      /fragments\.timeout: must be a number of seconds in \(0, 600\], got the string "soon"/,
    ],
    [
      'a list where a mapping belongs',
      `${BASE}management: [1]\n`,
      /management: must be a mapping, got a list/,
    ],
    [
      'handle range past 64 bytes',
      BASE.replace('address: 198.18.0.11 }', 'address: 198.18.0.11, nfsHandle: { offset: 62, length: 4 } }'),
      /nodes\[1\]\.nfsHandle\.length: offset \+ length must stay within a 64-byte handle, got 62 \+ 4/,
    ],
  ];

  it.each(bad)('names the field and the problem: %s', (_name, text, want) => {
    const got = issues(text);
    expect(got.length).toBeGreaterThan(0);
    expect(
      got.some((g) => want.test(g)),
      got.join('\n'),
    ).toBe(true);
  });

  it('reports every problem at once, not just the first', () => {
    const got = issues(
      `${BASE}entries:\n  - { protocol: sctp, port: 80, function: portmap }\n  - { protocol: tcp, port: 99999, function: portmap }\n`,
    );
    expect(got).toHaveLength(2);
  });

  it('never throws on hostile documents', () => {
    for (const text of [
      '',
      '~',
      '[]',
      '42',
      '"x"',
      'a: &a [*a]',
      `${'- '.repeat(500)}x`,
      'nodes: {}',
      'entries: 5',
      '\u0000',
    ]) {
      expect(() => parseConfigText(text)).not.toThrow();
    }
  });
});
