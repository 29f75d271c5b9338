import { MessageSwitch, parseConfigText } from '@onehost/switch';
import { describe, expect, it } from 'vitest';
import { compileState, type FastPathLayout } from './compile.js';
import { flowKeyWords6, key6 } from './explain.js';
import { ipChanges, renderTransaction } from './render.js';

// What the IPv6 fast path compiles, as text: no kernel needed (fastpath.test.ts loads the IPv4 one).

const VIP6 = '2001:db8:113::80';
const layout: FastPathLayout = {
  table: 'onehost_fastpath',
  device: 'onehostvx',
  outside: ['eth0'],
  vips: [0xcb007150],
  vips6: [VIP6],
  source: '198.18.0.1',
  vni: 4242,
  vxlanPort: 4789,
  innerMtu: 1550,
  markBase: 0x6f480000,
  tableBase: 0x4f480000,
  rulePref: 90,
  guard: { first: 0, unknown: 0, other: 0, payloadSyn: 0, payload: 0 },
};

const CONFIG = [
  'gateway: gw',
  `clusterAddresses: [{ network: outside, address: 203.0.113.80 }, { network: outside, address: "${VIP6}" }]`,
  'nodes:',
  '  - { id: 0, name: gw, address: 198.18.0.1 }',
  '  - { id: 1, name: n1, address: 198.18.0.11 }',
  '  - { id: 2, name: n2, address: 198.18.0.12 }',
  'entries:',
  '  - { protocol: tcp, port: 80, function: connection, policy: round-robin, nodes: [n1, n2] }',
  '  - { protocol: tcp, port: 8080, function: connection, policy: least-conn, nodes: [n1, n2] }',
  '  - { protocol: udp, port: 53, function: udp-flow, nodes: [n1, n2] }',
  '  - { protocol: tcp, port: 5201, function: fixed, node: n1 }',
  '  - { protocol: udp, port: 111, function: portmap }',
].join('\n');

function compiled(family: 4 | 6, shareFlows = false) {
  const sw = new MessageSwitch();
  const r = parseConfigText(CONFIG, sw.registry);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  sw.load(r.config);
  const endpoints = [
    { id: 1, address: '198.18.0.11', mac: '02:00:00:00:00:01' },
    { id: 2, address: '198.18.0.12', mac: '02:00:00:00:00:02' },
  ];
  return compileState(sw.snapshot!, endpoints, { ...layout, shareFlows }, null, family);
}

describe('the IPv6 fast path', () => {
  it('is its own ip6 table with IPv6 matches, its flow maps keyed on hashes of the flow', () => {
    const s = compiled(6);
    const script = renderTransaction(null, s, layout);
    expect(script.split('\n')[0]).toBe('add table ip6 onehost_fastpath');
    expect(script).not.toMatch(/\bip (daddr|saddr|frag-off)\b/);
    const pre = s.chains.get('pre')!.rules;
    expect(pre[1]).toBe(`ip6 daddr != ${VIP6} return`);
    // extension headers (fragments among them) go up before any port is read
    expect(pre.indexOf('ip6 nexthdr != { tcp, udp, ipv6-icmp } goto tun_other')).toBeLessThan(
      pre.indexOf('meta l4proto . th dport vmap @entries'),
    );
    expect(s.flowMaps.get('f_tcp_80')).toMatch(
      /^typeof numgen inc mod 2 \. numgen inc mod 2 \. tcp sport : meta mark;/,
    );
    const hit = s.chains.get('e_tcp_80')!.rules[0]!;
    expect(hit).toMatch(
      /^meta mark set jhash ip6 daddr \. ip6 saddr \. tcp sport mod 4294967295 seed 0x[0-9a-f]{8} \. jhash ip6 daddr \. ip6 saddr \. tcp sport mod 4294967295 seed 0x[0-9a-f]{8} \. tcp sport map @f_tcp_80 goto h_tcp_80$/,
    );
  });

  it('shares round robin’s and least-connections’ connections as the IPv4 table does (flowSync)', () => {
    const s = compiled(6, true);
    expect(s.chains.get('track')).toEqual({
      base: 'type filter hook prerouting priority -310; policy accept;',
      rules: [
        'iifname != "eth0" return',
        `ip6 daddr != ${VIP6} return`,
        'tcp flags & syn == syn return',
        'tcp dport { 80, 8080 } meta mark set 0x6f48fffe',
      ],
    });
    // their conntrack entries idle as long as their flow map's (900 s), not the 300 s of data the
    // gateway never sees acknowledged
    expect(s.ctTimeouts.get('ct_tcp_80_900')).toBe(
      'protocol tcp; l3proto ip6; policy = { syn_sent: 432000, unack: 900, retrans: 900 };',
    );
    expect(s.chains.get('pre')!.rules.slice(2, 5)).toEqual([
      'meta mark 0x6f48fffe tcp dport 80 ct state new ct timeout set "ct_tcp_80_900"',
      'meta mark 0x6f48fffe tcp dport 8080 ct state new ct timeout set "ct_tcp_8080_900"',
      'meta mark 0x6f48fffe meta mark set 0',
    ]);
    expect(s.chains.get('to_node')!.rules[0]).toBe(
      'counter name meta mark map @nodecnt ct mark set meta mark accept',
    );
    // a peer's choice, found by the connection's conntrack mark, is kept under the hashed key
    for (const [entry, counter] of [
      ['n_tcp_80', 'y_tcp_80'],
      ['n_tcp_8080', 'y_tcp_8080'],
    ] as const) {
      const rule = s.chains.get(entry)!.rules.find((r) => r.includes(`"${counter}"`));
      expect(rule).toMatch(
        /^tcp flags & \(syn \| rst\) == 0 ct mark 0x6f480000-0x6f48fffd meta mark set ct mark add @f_tcp_\d+ \{ jhash ip6 daddr/,
      );
      expect(s.counters.has(counter)).toBe(true);
    }
    // without flowSync nothing of it
    const off = compiled(6);
    expect(off.chains.has('track')).toBe(false);
    expect(off.chains.get('to_node')!.rules[0]).not.toContain('ct mark');
    expect(off.counters.has('y_tcp_80')).toBe(false);
    expect(off.ctTimeouts.size).toBe(0);
  });

  it('clamps the MSS to the inner MTU − 60 (the IPv4 table: − 40)', () => {
    expect(compiled(6).chains.get('clamp')!.rules[0]).toContain('maxseg size set 1490');
    expect(compiled(4).chains.get('clamp')!.rules[0]).toContain('maxseg size set 1510');
  });

  it('keeps least-connections’ flows (the flow log writes them), and the other functions, in the kernel', () => {
    const s = compiled(6);
    // as IPv4's: a flow found goes on; a SYN without one goes to user space, which picks and logs it
    expect(s.chains.get('e_tcp_8080')!.rules[0]).toMatch(/ map @f_tcp_8080 goto h_tcp_8080$/);
    expect(s.chains.get('n_tcp_8080')!.rules).toEqual([
      'tcp flags & (syn | ack | rst) == syn goto tun_first',
      'goto tun_unknown',
    ]);
    expect(s.flowMaps.has('f_tcp_8080')).toBe(true);
    expect(s.chains.get('e_tcp_5201')!.rules[0]).toMatch(/meta mark set 0x6f480001 goto to_node$/);
    expect(s.flowMaps.has('f_udp_53')).toBe(true);
    // IPv6 to the portmapper goes up; the switch hands it to the host's stack through the TUN, as in tun mode
    expect(s.chains.get('e_udp_111')!.rules).toEqual(['goto tun_payload']);
    expect(compiled(4).chains.get('e_udp_111')!.rules[0]).toMatch(/goto to_local$/);
    // the IPv4 table keeps least-connections' flow map
    expect(compiled(4).flowMaps.has('f_tcp_8080')).toBe(true);
  });

  it('routes the IPv6 cluster address per node through the device to the node’s derived link-local', () => {
    const s = compiled(4);
    const ip = ipChanges(new Map(), new Set(), s, layout);
    expect(ip.before).toContain(
      `route replace ${VIP6}/128 via fe80::c612:b dev onehostvx encap ip id 4242 src 198.18.0.1 dst 198.18.0.11 table ${0x4f480001}`,
    );
    expect(ip.before).toContain(
      'neigh replace fe80::c612:b lladdr 02:00:00:00:00:01 dev onehostvx nud permanent',
    );
    expect(ip.before6).toContain(`rule add priority 90 fwmark ${0x6f480001} lookup ${0x4f480001}`);
    const gone = ipChanges(s.nodes, new Set([1, 2]), compiled(4), layout, new Set([1, 2]));
    expect(gone.after6).toEqual([]);
  });

  it('key6 is the hashed key as the kernel holds it: host-order hashes, then the port padded', () => {
    const p = new Uint8Array(40);
    p[0] = 0x60;
    const k = key6(p, 0x1234);
    expect(k.length).toBe(12);
    expect([...k.subarray(8)]).toEqual([0x12, 0x34, 0, 0]);
    // the same flow, the same key; another port, another key
    expect(key6(p, 0x1234)).toEqual(k);
    expect(key6(p, 0x1235).subarray(0, 8)).not.toEqual(k.subarray(0, 8));
  });

  it('the flow log’s IPv6 words give the kernel’s key bytes (FlowBatch writes them in network order)', () => {
    const p = new Uint8Array(40);
    p[0] = 0x60;
    for (let i = 8; i < 40; i++) p[i] = (i * 37) & 0xff;
    const k = key6(p, 40123);
    const t = new Uint8Array(36);
    t.set(p.subarray(24, 40), 0);
    t.set(p.subarray(8, 24), 16);
    t[32] = 40123 >>> 8;
    t[33] = 40123 & 0xff;
    const w = new Uint32Array(2);
    flowKeyWords6(t, w);
    const be = new DataView(new ArrayBuffer(8));
    be.setUint32(0, w[0]!);
    be.setUint32(4, w[1]!);
    expect([...new Uint8Array(be.buffer)]).toEqual([...k.subarray(0, 8)]);
  });
});
