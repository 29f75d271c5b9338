import { DecisionOut, KIND, MessageSwitch, parseConfigText } from '@onehost/switch';
import { requireRoot, runInNetns, waitFor } from '@onehost/testkit';
import {
  checksum,
  IPPROTO,
  ipv4ToString,
  pseudoHeaderSum,
  TCP_FLAGS,
  writeIpv4Header,
  writeTcpHeader,
  writeUdpHeader,
} from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trackMark } from './compile.js';
import type { FastPath } from './fastpath.js';
import { type FastPathLab, ipv4, startFastPathLab, testLayout, VIP } from './testing/topology.js';

requireRoot();

const { SYN, ACK, FIN, PSH } = TCP_FLAGS;

function config(states: Record<string, string> = {}): string {
  const node = (id: number, name: string) =>
    `  - { id: ${id}, name: ${name}, address: 198.18.0.${10 + id}, state: ${states[name] ?? 'active'} }`;
  return [
    'gateway: gw',
    `clusterAddresses: [{ network: outside, address: ${VIP} }]`,
    'nodes:',
    '  - { id: 0, name: gw, address: 198.18.0.1 }',
    node(1, 'n1'),
    node(2, 'n2'),
    node(3, 'n3'),
    'portBlocks: [{ node: n1, from: 40000, to: 40999 }, { node: n2, from: 41000, to: 41999 }]',
    'entries:',
    '  - { protocol: tcp, port: 80, function: connection, policy: round-robin, nodes: [n1, n2, n3] }',
    '  - { protocol: tcp, port: 443, function: connection, policy: maglev, rederive: true, nodes: [n1, n2, n3], maglevSize: 4099 }',
    '  - { protocol: tcp, port: 8080, function: connection, policy: least-conn, nodes: [n1, n2, n3] }',
    '  - { protocol: tcp, port: 81, function: connection, policy: round-robin, nodes: [n1, n2, n3], maxEntries: 100 }',
    '  - { protocol: udp, port: 53, function: udp-flow, nodes: [n1, n2, n3], maglevSize: 4099 }',
    '  - { protocol: tcp, port: 5201, function: fixed, node: n1, backup: n2 }',
    '  - { protocol: udp, port: 2049, function: nfs }',
  ].join('\n');
}

function load(sw: MessageSwitch, states: Record<string, string> = {}): void {
  const r = parseConfigText(config(states), sw.registry);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  sw.load(r.config);
}

function tcp(src: number, sport: number, dport: number, flags: number, payload = 0): Uint8Array {
  const b = new Uint8Array(40 + payload).fill(0x61, 40);
  writeIpv4Header(b, 0, { src, dst: ipv4(VIP), protocol: IPPROTO.TCP, payloadLength: 20 + payload });
  writeTcpHeader(b, 20, { srcPort: sport, dstPort: dport, flags, seq: 1000 });
  // a valid checksum: conntrack (shared connections) takes no segment with a wrong one
  const c = checksum(b, 20, 20 + payload, pseudoHeaderSum(src, ipv4(VIP), IPPROTO.TCP, 20 + payload));
  b[36] = c >>> 8;
  b[37] = c & 0xff;
  return b;
}

function udp(src: number, sport: number, dport: number): Uint8Array {
  const b = new Uint8Array(36);
  writeIpv4Header(b, 0, { src, dst: ipv4(VIP), protocol: IPPROTO.UDP, payloadLength: 16 });
  writeUdpHeader(b, 20, sport, dport, 8);
  return b;
}

/** flows makes n distinct client flows from spoofed sources in 203.0.113.128/25. */
function flows(n: number, seed: number): Array<{ src: number; sport: number }> {
  const out: Array<{ src: number; sport: number }> = [];
  let x = seed >>> 0;
  const seen = new Set<string>();
  while (out.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const src = (ipv4('203.0.113.128') + ((x >>> 8) % 120)) >>> 0;
    const sport = 1024 + ((x >>> 12) % 60000);
    if (seen.has(`${src}:${sport}`)) continue;
    seen.add(`${src}:${sport}`);
    out.push({ src, sport });
  }
  return out;
}

let f: FastPathLab;
let fp: FastPath;
const sw = new MessageSwitch();

/** where maps "client:port" to the node (n1…) whose set has it; fails on a flow seen twice. */
async function where(total: number): Promise<Map<string, string>> {
  let seen = new Map<string, string[]>();
  await waitFor(
    async () => {
      seen = await f.seen();
      return [...seen.values()].reduce((a, l) => a + l.length, 0) >= total;
    },
    { what: `${total} flows seen by the nodes`, timeoutMs: 10_000, intervalMs: 50 },
  );
  const out = new Map<string, string>();
  for (const [node, list] of seen) {
    for (const k of list) {
      expect(out.has(k), `${k} reached two nodes`).toBe(false);
      out.set(k, node);
    }
  }
  return out;
}

beforeAll(async () => {
  f = await startFastPathLab();
  load(sw);
  fp = await f.start();
  await fp.apply(sw.snapshot!, f.endpoints());
  expect(fp.lastError).toBe('');
}, 60_000);
afterAll(async () => {
  await fp?.teardown().catch(() => undefined);
  await f?.close();
});

describe('the fast path in the kernel', () => {
  it('fixed: every flow reaches the entry’s node; with it down, its backup', async () => {
    await f.forget();
    const fl = flows(200, 1);
    f.send(fl.map((x) => tcp(x.src, x.sport, 5201, SYN)));
    const got = await where(200);
    expect(new Set(got.values())).toEqual(new Set(['n1']));
    load(sw, { n1: 'down' });
    await fp.apply(sw.snapshot!, f.endpoints());
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 5201, ACK)));
    expect(new Set((await where(200)).values())).toEqual(new Set(['n2']));
    load(sw);
    await fp.apply(sw.snapshot!, f.endpoints());
  });

  it('maglev: the node that receives each flow is the one the switch picks, slot for slot', async () => {
    await f.forget();
    const fl = flows(3000, 2);
    f.send(fl.map((x) => tcp(x.src, x.sport, 443, SYN)));
    const got = await where(3000);
    const out = new DecisionOut();
    let same = 0;
    for (const x of fl) {
      const p = tcp(x.src, x.sport, 443, SYN);
      sw.decide(p, 0, p.length, 0, out);
      expect(out.kind).toBe(KIND.FORWARD);
      if (got.get(`${ipv4ToString(x.src)}:${x.sport}`) === `n${out.node}`) same++;
    }
    expect(same).toBe(3000);
    // each connection waits half-open for its ACK, on the node it reached; the ACK moves it to the
    // connections' map, counted once there
    const x = fl[0]!;
    expect(fp.flowEntry(6, 443, ipv4(VIP), x.src, x.sport)).toBeNull();
    const h = fp.halfOpenEntry(6, 443, ipv4(VIP), x.src, x.sport);
    expect(`n${fp.nodeOfMark(h!.mark)}`).toBe(got.get(`${ipv4ToString(x.src)}:${x.sport}`));
    await f.forget();
    f.send([tcp(x.src, x.sport, 443, ACK)]);
    await where(1);
    const e = fp.flowEntry(6, 443, ipv4(VIP), x.src, x.sport);
    expect(`n${fp.nodeOfMark(e!.mark)}`).toBe(got.get(`${ipv4ToString(x.src)}:${x.sport}`));
    expect(e!.packets).toBe(1);
    expect(fp.halfOpenEntry(6, 443, ipv4(VIP), x.src, x.sport)).toBeNull();
  });

  it('round robin: new connections spread evenly; later segments follow their connection', async () => {
    await f.forget();
    const fl = flows(3000, 3);
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, SYN)));
    const first = await where(3000);
    const per = new Map<string, number>();
    for (const n of first.values()) per.set(n, (per.get(n) ?? 0) + 1);
    expect([...per.values()].sort()).toEqual([1000, 1000, 1000]);
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, ACK)));
    const later = await where(3000);
    for (const [k, n] of first) expect(later.get(k)).toBe(n);
    // the first ACK moved the connection from the half-open map (1 for its add there), the second ACK
    // counts 2 (the lookup and the refresh)
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, ACK)));
    await where(3000);
    const x = fl[7]!;
    expect(fp.flowEntry(6, 80, ipv4(VIP), x.src, x.sport)?.packets).toBe(3);
    // n2 goes down: its connections are user space's to decide (the switch drops them, Fig. 10)
    load(sw, { n2: 'down' });
    await fp.apply(sw.snapshot!, f.endpoints());
    await f.forget();
    const before = (await fp.counters()).get('t_unknown')!.packets;
    f.send(fl.map((y) => tcp(y.src, y.sport, 80, ACK)));
    const onN2 = [...first.values()].filter((n) => n === 'n2').length;
    const rest = await where(3000 - onN2);
    expect(new Set(rest.values())).toEqual(new Set(['n1', 'n3']));
    await waitFor(async () => (await fp.counters()).get('t_unknown')!.packets - before === onN2, {
      what: `${onN2} packets of n2's connections passed to user space`,
      timeoutMs: 5000,
    });
    load(sw);
    await fp.apply(sw.snapshot!, f.endpoints());
  });

  it('a SYN again keeps its half-open connection’s node while it takes connections, else starts over', async () => {
    await f.forget();
    const fl = flows(600, 8);
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, SYN)));
    const first = await where(600);
    // retransmitted: the same node each
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, SYN)));
    for (const [k, n] of await where(600)) expect(n).toBe(first.get(k));
    // n2 drained (or failing its health check): a SYN whose half-open entry names n2 goes elsewhere
    load(sw, { n2: 'draining' });
    await fp.apply(sw.snapshot!, f.endpoints());
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, SYN)));
    const again = await where(600);
    expect([...again.values()].filter((n) => n === 'n2')).toEqual([]);
    for (const [k, n] of again) if (first.get(k) !== 'n2') expect(n).toBe(first.get(k));
    load(sw);
    await fp.apply(sw.snapshot!, f.endpoints());
  });

  it('a SYN on the port of a connection the map still holds (a reused port) starts over by the ring', async () => {
    await f.forget();
    const fl = flows(600, 9);
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, SYN)));
    await where(600);
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, ACK)));
    await where(600);
    expect(fl.every((x) => fp.flowEntry(6, 80, ipv4(VIP), x.src, x.sport) !== null)).toBe(true);
    // n2 leaves and comes back while those connections' entries stay (closing ones linger for the FIN
    // timeout): new connections from the same ports must reach n2 again, a third of them as before
    load(sw, { n2: 'draining' });
    await fp.apply(sw.snapshot!, f.endpoints());
    load(sw);
    await fp.apply(sw.snapshot!, f.endpoints());
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, SYN)));
    const again = await where(600);
    const per = new Map<string, number>();
    for (const n of again.values()) per.set(n, (per.get(n) ?? 0) + 1);
    expect([...per.values()].sort()).toEqual([200, 200, 200]);
    // each is half-open again, its old entry gone
    expect(fl.filter((x) => fp.flowEntry(6, 80, ipv4(VIP), x.src, x.sport) !== null)).toEqual([]);
    for (const x of fl.slice(0, 20))
      expect(`n${fp.nodeOfMark(fp.halfOpenEntry(6, 80, ipv4(VIP), x.src, x.sport)!.mark)}`).toBe(
        again.get(`${ipv4ToString(x.src)}:${x.sport}`),
      );
  });

  it('a SYN flood fills the half-open map, never the connections’ one; past it SYNs are placed by hash', async () => {
    await f.forget();
    const c0 = (await fp.counters()).get('x_tcp_81')?.packets ?? 0;
    // 100 half-open connections fill the map (size 100); the next 400 SYNs find it full
    const fl = flows(500, 6);
    f.send(fl.map((x) => tcp(x.src, x.sport, 81, SYN)));
    const first = await where(500);
    const byHash = ((await fp.counters()).get('x_tcp_81')?.packets ?? 0) - c0;
    expect(byHash).toBe(400);
    // every handshake completes on the node its SYN reached: from the half-open map, or by the same hash
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 81, ACK)));
    const later = await where(500);
    for (const [k, n] of first) expect(later.get(k)).toBe(n);
    // the 100 half-open ones moved to the connections' map and left room for new SYNs
    const kept = fl.filter((x) => fp.flowEntry(6, 81, ipv4(VIP), x.src, x.sport) !== null);
    expect(kept.length).toBe(100);
    expect(fl.every((x) => fp.halfOpenEntry(6, 81, ipv4(VIP), x.src, x.sport) === null)).toBe(true);
    // an ACK nobody knows goes by the same hash, statelessly (the node answers a reset if it has no such
    // connection): it is not sent to user space
    const tun0 = (await fp.counters()).get('t_unknown')!.packets;
    await f.forget();
    f.send([tcp(ipv4('203.0.113.200'), 5555, 81, ACK)]);
    await where(1);
    expect((await fp.counters()).get('t_unknown')!.packets).toBe(tun0);
    expect(fp.flowEntry(6, 81, ipv4(VIP), ipv4('203.0.113.200'), 5555)).toBeNull();
  });

  it('udp-flow: Maglev for new flows, sticky after; a node going down moves only its flows', async () => {
    await f.forget();
    const fl = flows(2000, 4);
    f.send(fl.map((x) => udp(x.src, x.sport, 53)));
    const before = await where(2000);
    load(sw, { n3: 'down' });
    await fp.apply(sw.snapshot!, f.endpoints());
    await f.forget();
    f.send(fl.map((x) => udp(x.src, x.sport, 53)));
    const after = await where(2000);
    let moved = 0;
    for (const [k, n] of before) {
      if (n === 'n3') expect(after.get(k)).not.toBe('n3');
      else expect(after.get(k)).toBe(n);
      if (after.get(k) !== n) moved++;
    }
    expect(moved).toBeGreaterThan(400);
    load(sw);
    await fp.apply(sw.snapshot!, f.endpoints());
  });

  it('port blocks: a port in a node’s block reaches that node (box 550)', async () => {
    await f.forget();
    f.send([tcp(ipv4('203.0.113.130'), 80, 40123, SYN), tcp(ipv4('203.0.113.131'), 80, 41999, ACK)]);
    const got = await where(2);
    expect(got.get('203.0.113.130:80')).toBe('n1');
    expect(got.get('203.0.113.131:80')).toBe('n2');
  });

  it('least-connections: the first packet is user space’s; once its flow log is drained, the kernel forwards', async () => {
    await f.forget();
    sw.flowLog.enabled = true;
    const x = { src: ipv4('203.0.113.140'), sport: 5555 };
    const syn = tcp(x.src, x.sport, 8080, SYN);
    const out = new DecisionOut();
    sw.decide(syn, 0, syn.length, 0, out);
    expect(out.kind).toBe(KIND.FORWARD);
    f.send([syn]); // the kernel leaves it to user space: no node sees it
    const t = await fp.counters();
    expect(t.get('t_first')?.packets).toBeGreaterThan(0);
    fp.drainFlowLog(sw.flowLog);
    expect(fp.stats.flowWrites).toBeGreaterThan(0);
    f.send([tcp(x.src, x.sport, 8080, ACK)]);
    const got = await where(1);
    expect(got.get('203.0.113.140:5555')).toBe(`n${out.node}`);
    sw.flowLog.enabled = false;
  });

  it('a transaction the kernel refuses leaves the previous table in force and names the rule', async () => {
    const good = fp.stats.appliedVersion;
    const broken = await f.start(testLayout({ outside: ['eth0', 'x"; bad'] }));
    load(sw);
    await broken.apply(sw.snapshot!, f.endpoints());
    expect(broken.lastError).toMatch(/^syntax error.*: add rule ip onehost_fastpath pre iifname/);
    expect(broken.stats.failures).toBe(1);
    await broken.close();
    await f.forget();
    f.send([tcp(ipv4('203.0.113.150'), 999, 5201, SYN)]);
    expect((await where(1)).get('203.0.113.150:999')).toBe('n1');
    expect(good).toBeGreaterThan(0);
  });

  it('a restarted gateway adopts the table: flows survive, the rules are rewritten', async () => {
    await f.forget();
    const fl = flows(300, 5);
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, SYN)));
    const first = await where(300);
    await fp.close();
    fp = await f.start();
    load(sw);
    await fp.apply(sw.snapshot!, f.endpoints());
    expect(fp.lastError).toBe('');
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, FIN | ACK)));
    const later = await where(300);
    for (const [k, n] of first) expect(later.get(k)).toBe(n);
  });

  it('explain says who decides each kind of packet, live from the kernel', async () => {
    const snap = sw.snapshot!;
    const src = ipv4('203.0.113.160');
    expect(fp.explain(snap, tcp(src, 4000, 5201, SYN))).toBe('kernel: fixed → n1');
    expect(fp.explain(snap, tcp(src, 4000, 40007, ACK))).toBe('kernel: port block of n1 (box 550)');
    expect(fp.explain(snap, tcp(src, 4000, 9999, SYN))).toMatch(/^kernel: local/);
    expect(fp.explain(snap, udp(src, 4000, 2049))).toBe('user space: NFS file handle');
    expect(fp.explain(snap, tcp(src, 4000, 8080, SYN))).toMatch(
      /^user space: least-connections picks the first packet/,
    );
    expect(fp.explain(snap, tcp(src, 4000, 80, SYN))).toMatch(
      /^kernel: new connection → round robin \(numgen\) over n1, n2, n3 \(half-open until its ACK; with the half-open map full, hash slot \d → n\d\)$/,
    );
    expect(fp.explain(snap, tcp(src, 4000, 80, ACK))).toMatch(
      /^kernel: no flow entry, not a SYN: by hash, hash slot \d of the round-robin ring → n\d \(a node without the connection answers a reset\)$/,
    );
    expect(fp.explain(snap, tcp(src, 4000, 443, SYN))).toMatch(
      /^kernel: new connection → maglev slot \d+ \(jhash seed 0x4f4e4548\) → n[123] \(half-open until its ACK\)$/,
    );
    f.send([tcp(src, 4001, 443, SYN)]);
    await where(1);
    expect(fp.explain(snap, tcp(src, 4001, 443, ACK))).toMatch(
      /^kernel: half-open connection → n[123] until its ACK, expires in (\d+m)?\d+s$/,
    );
    await f.forget();
    f.send([tcp(src, 4001, 443, ACK)]);
    await where(1);
    expect(fp.explain(snap, tcp(src, 4001, 443, ACK))).toMatch(
      /^kernel: flow entry n[123], 1 packets, expires in (\d+m)?\d+s$/,
    );
    expect(fp.flowOf(tcp(src, 4001, 443, ACK))).toMatchObject({ forwards: true });
    // a change not yet in the kernel shows first
    load(sw, { n2: 'draining' });
    expect(fp.explain(sw.snapshot!, tcp(src, 4000, 5201, SYN))).toMatch(
      /^kernel runs table version \d+, the switch \d+ \(being applied\); kernel: fixed → n1$/,
    );
    await fp.apply(sw.snapshot!, f.endpoints());
    load(sw);
    await fp.apply(sw.snapshot!, f.endpoints());
  });

  it('teardown removes the table, the rules, the routes and the device', async () => {
    await fp.teardown();
    expect(await f.gw.nftTableExists('ip', 'onehost_fastpath')).toBe(false);
    expect((await f.gw.rules()).filter((r) => r.priority === 90)).toEqual([]);
    expect(await f.gw.linkExists('onehostvx')).toBe(false);
    expect((await f.gw.routes('all')).filter((r) => Number(r.table) >= 0x4f480000)).toEqual([]);
  });
});

/** conntrackPort80 lists the gateway's conntrack entries to port 80, one line each. */
async function conntrackPort80(): Promise<string> {
  return (await runInNetns(f.lab.host('gw').netns, 'conntrack', ['-L', '-p', 'tcp', '--dport', '80'])).stdout;
}

/** conntrackMarks reads the gateway's conntrack entries to port 80: "client:port" → mark. */
async function conntrackMarks(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await conntrackPort80()).matchAll(/src=(\S+) dst=\S+ sport=(\d+) dport=80 .*?mark=(\d+)/g))
    out.set(`${m[1]}:${m[2]}`, Number(m[3]));
  return out;
}

/** conntrackTimeouts reads the seconds left of the gateway's conntrack entries to port 80. */
async function conntrackTimeouts(): Promise<number[]> {
  return [...(await conntrackPort80()).matchAll(/^tcp\s+6\s+(\d+)\s/gm)].map((m) => Number(m[1]));
}

describe('shared connections (layout.shareFlows: several gateways, conntrackd)', () => {
  const layout = testLayout({ shareFlows: true });
  beforeAll(async () => {
    // as the gateway host sets them with flowSync: segments of a connection seen from its middle, in
    // one direction, stay valid (and keep their entry's mark)
    await runInNetns(f.lab.host('gw').netns, 'sysctl', [
      '-qw',
      'net.netfilter.nf_conntrack_tcp_loose=1',
      'net.netfilter.nf_conntrack_tcp_be_liberal=1',
    ]);
    // and, as its host table does, the nodes' replies (a node's reset here) pass untracked: the gateway
    // forwards them, and a reset would end the connection's entry
    await f.gw.nft(`table ip hostraw {
  chain raw_pre {
    type filter hook prerouting priority raw; policy accept;
    ip daddr ${VIP} meta mark != ${trackMark(layout)} notrack
    ip saddr ${VIP} notrack
  }
}
`);
    fp = await f.start(layout);
    load(sw);
    await fp.apply(sw.snapshot!, f.endpoints());
    expect(fp.lastError).toBe('');
  }, 30_000);
  afterAll(async () => {
    await fp.teardown();
    await f.gw.nft('delete table ip hostraw\n');
  });

  it('a round-robin connection’s conntrack entry holds its node; SYNs leave none', async () => {
    await f.forget();
    const fl = flows(300, 11);
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, SYN)));
    const first = await where(300);
    // the SYNs are not tracked (a SYN flood never fills the conntrack table)
    expect((await conntrackMarks()).size).toBe(0);
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, ACK)));
    await where(300);
    const marks = await conntrackMarks();
    expect(marks.size).toBe(300);
    for (const [k, n] of first) expect(`n${fp.nodeOfMark(marks.get(k)!)}`).toBe(n);
    // the handshake's ACK made them, with their policy's timeout for a new entry: the kernel's 5 days
    // (conntrackd gives the other gateways' copies this timeout; only this entry's end ends them)
    expect(Math.min(...(await conntrackTimeouts()))).toBeGreaterThan(400_000);
    // data the gateway never sees acknowledged (the node answers the client directly): the entries
    // keep the flow map's 900 s (their timeout policy), not the kernel's 300 s for unacknowledged data
    await f.forget();
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, ACK | PSH, 100)));
    await where(300);
    const timeouts = await conntrackTimeouts();
    expect(timeouts.length).toBe(300);
    expect(Math.min(...timeouts)).toBeGreaterThan(800);
    expect(Math.max(...timeouts)).toBeLessThanOrEqual(900);
    // nothing of the mark that lets packets to conntrack is left on them: every ACK reached its node
    expect(trackMark(layout)).toBe(0x6f48fffe);
  });

  it('a connection another gateway placed (its entry brought by conntrackd) reaches that node, not the hash’s', async () => {
    await f.forget();
    const fl = flows(200, 12);
    // what conntrackd injects: an established entry with the peer's mark, here n3 for every connection
    const n3 = layout.markBase + 3;
    for (const x of fl)
      await runInNetns(f.lab.host('gw').netns, 'conntrack', [
        '-I',
        '-p',
        'tcp',
        '-s',
        ipv4ToString(x.src),
        '-d',
        VIP,
        '--sport',
        String(x.sport),
        '--dport',
        '80',
        // (conntrack 1.4.7 reads --mark right only after -u)
        '--state',
        'ESTABLISHED',
        '-t',
        '120',
        '-u',
        'SEEN_REPLY',
        '--mark',
        String(n3),
      ]);
    const before = (await fp.counters()).get('y_tcp_80')?.packets ?? 0;
    f.send(fl.map((x) => tcp(x.src, x.sport, 80, ACK)));
    const got = await where(200);
    expect(new Set(got.values())).toEqual(new Set(['n3']));
    expect((await fp.counters()).get('y_tcp_80')!.packets - before).toBe(200);
    // the flow map keeps them now: a later segment finds its entry there
    const x = fl[0]!;
    expect(fp.nodeOfMark(fp.flowEntry(6, 80, ipv4(VIP), x.src, x.sport)!.mark)).toBe(3);
    // and connections nobody knows still go by the hash over the ring (all three nodes)
    await f.forget();
    const unknown = flows(300, 13);
    f.send(unknown.map((y) => tcp(y.src, y.sport, 80, ACK)));
    expect(new Set((await where(300)).values())).toEqual(new Set(['n1', 'n2', 'n3']));
  });
});
