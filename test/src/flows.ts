// Flows sent as raw packets from an outside host, seen where they arrive, and explained by the gateway:
// what the differential tests of the data path are made of.
import { fileURLToPath } from 'node:url';
import { waitFor } from '@onehost/testkit';
import { PacketSender } from '@onehost/tun';
import {
  IPPROTO,
  ipv4ToString,
  parseIpv4,
  writeIpv4Header,
  writeTcpHeader,
  writeUdpHeader,
} from '@onehost/wire';
import type { Cluster } from './cluster.js';

/** A client flow: a source (spoofed, inside 203.0.113.128/25) and source port, to the cluster address. */
export interface ClientFlow {
  protocol: 'tcp' | 'udp';
  src: number;
  sport: number;
  dport: number;
}

/** key names a flow as the nodes' sets list it. */
export const keyOf = (f: ClientFlow): string => `${ipv4ToString(f.src)}:${f.sport}:${f.dport}`;

/** taken holds every flow made so far, so flows of different sets never share a client address and port. */
const taken = new Set<string>();

/**
 * makeFlows returns n flows to `dport` (or to a port drawn from `dport()`) from sources in
 * 203.0.113.128–250, deterministic for a seed, distinct from every flow made before in this process.
 */
export function makeFlows(
  n: number,
  seed: number,
  protocol: 'tcp' | 'udp',
  dport: number | (() => number),
): ClientFlow[] {
  const out: ClientFlow[] = [];
  let x = seed >>> 0;
  const next = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x;
  };
  const base = parseIpv4('203.0.113.128');
  while (out.length < n) {
    const f: ClientFlow = {
      protocol,
      src: (base + (next() % 123)) >>> 0,
      sport: 1024 + (next() % 64000),
      dport: typeof dport === 'number' ? dport : dport(),
    };
    const k = `${f.src}:${f.sport}`;
    if (taken.has(k)) continue;
    taken.add(k);
    out.push(f);
  }
  return out;
}

/** packetOf builds the IPv4 packet of a flow: a TCP segment with `flags`, or a small UDP datagram. */
export function packetOf(vip: string, f: ClientFlow, flags: number): Uint8Array {
  const dst = parseIpv4(vip);
  if (f.protocol === 'udp') {
    const b = new Uint8Array(36);
    writeIpv4Header(b, 0, { src: f.src, dst, protocol: IPPROTO.UDP, payloadLength: 16 });
    writeUdpHeader(b, 20, f.sport, f.dport, 8);
    return b;
  }
  const b = new Uint8Array(40);
  writeIpv4Header(b, 0, { src: f.src, dst, protocol: IPPROTO.TCP, payloadLength: 20 });
  writeTcpHeader(b, 20, { srcPort: f.sport, dstPort: f.dport, flags, seq: 1000, ack: flags & 0x10 ? 1 : 0 });
  return b;
}

/**
 * Injector sends raw packets from an outside host's namespace (IP_HDRINCL, so the spoofed sources go out
 * as they are), paced in batches so no guard on the way mistakes the test for a flood.
 */
export class Injector {
  private readonly sender: PacketSender;

  constructor(
    netns: string,
    private readonly vip: string,
  ) {
    this.sender = PacketSender.open({ netns });
  }

  /** send sends one packet per flow, `batch` at a time with `pauseMs` between batches. */
  async send(flows: readonly ClientFlow[], flags: number, batch = 250, pauseMs = 25): Promise<void> {
    for (let at = 0; at < flows.length; at += batch) {
      const part = flows.slice(at, at + batch).map((f) => packetOf(this.vip, f, flags));
      const arena = Buffer.alloc(part.reduce((a, p) => a + p.length, 0));
      const meta = new Int32Array(part.length * 4);
      let off = 0;
      part.forEach((p, i) => {
        arena.set(p, off);
        meta[i * 4] = off;
        meta[i * 4 + 1] = p.length;
        off += p.length;
      });
      let sent = 0;
      while (sent < part.length) sent = this.sender.sendIp(arena, meta, sent, part.length);
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  close(): void {
    this.sender.close();
  }
}

/** NODE_VXLAN is the agent's VXLAN device on a node: where the gateway's packets arrive. */
const NODE_VXLAN = 'onehost0';

/**
 * Arrivals records, on each node, the flows that reached it through the VXLAN device (an nftables set in
 * a table of the test's own), so a test can tell which node each flow reached.
 */
export class Arrivals {
  constructor(
    private readonly c: Cluster,
    private readonly nodes: readonly string[],
  ) {}

  /** install adds the recording table on every node (again after an agent restart: it is the test's own). */
  async install(): Promise<void> {
    for (const n of this.nodes)
      await this.c.lab.exec(n, 'nft', ['-f', '-'], {
        input: `table ip arrivals
delete table ip arrivals
table ip arrivals {
  set flows { type ipv4_addr . inet_service . inet_service; size 1048576; }
  chain pre {
    type filter hook prerouting priority raw - 1; policy accept;
    iifname "${NODE_VXLAN}" ip daddr ${this.c.vip} ip saddr != ${this.c.lab.addresses.gateway.inside} add @flows { ip saddr . th sport . th dport } comment "not the gateway's data-path probes"
  }
}
`,
      });
  }

  /** forget empties the record on every node. */
  async forget(): Promise<void> {
    for (const n of this.nodes) await this.c.lab.exec(n, 'nft', ['flush', 'set', 'ip', 'arrivals', 'flows']);
  }

  /** read maps each flow seen to the node that saw it; a flow seen on two nodes is reported as such. */
  async read(): Promise<{ where: Map<string, string>; twice: string[] }> {
    const where = new Map<string, string>();
    const twice: string[] = [];
    for (const n of this.nodes) {
      const { stdout } = await this.c.lab.exec(n, 'nft', ['-j', 'list', 'set', 'ip', 'arrivals', 'flows'], {
        timeoutMs: 60_000,
      });
      const set = (
        JSON.parse(stdout) as {
          nftables: Array<{ set?: { elem?: Array<{ concat: [string, number, number] }> } }>;
        }
      ).nftables.find((o) => o.set !== undefined)?.set;
      for (const e of set?.elem ?? []) {
        const k = `${e.concat[0]}:${e.concat[1]}:${e.concat[2]}`;
        if (where.has(k)) twice.push(k);
        where.set(k, n);
      }
    }
    return { where, twice };
  }

  /** settle waits until at least `n` flows were seen, or `timeoutMs` passed (fewer may be all there is). */
  async settle(n: number, timeoutMs = 10_000): Promise<{ where: Map<string, string>; twice: string[] }> {
    let last = await this.read();
    await waitFor(
      async () => {
        last = await this.read();
        return last.where.size >= n;
      },
      { what: `${n} flows seen on the nodes`, timeoutMs, intervalMs: 200 },
    ).catch(() => undefined);
    return last;
  }
}

/** EXPLAIN_BATCH runs many Explain calls from inside the gateway host, where the control plane listens. */
const EXPLAIN_BATCH = fileURLToPath(new URL('../dist/explain-batch.js', import.meta.url));

/** Explainer asks the gateway's switch (Explain, a dry run) where flows go, many calls in flight. */
export class Explainer {
  constructor(private readonly c: Cluster) {}

  /**
   * explain answers, per flow, the node name its packets with `flags` reach ('local' for the gateway,
   * 'drop:<reason>' when dropped), and the path line. `flags` are letters of "FSRPAU".
   */
  async explain(
    flows: readonly ClientFlow[],
    flags: string,
  ): Promise<Map<string, { to: string; path: string }>> {
    const p = this.c.pki('op');
    const { stdout } = await this.c.lab.exec(
      'gw',
      process.execPath,
      [EXPLAIN_BATCH, this.c.control, p.ca, p.cert, p.key, this.c.vip, flags],
      { input: JSON.stringify(flows), timeoutMs: 300_000 },
    );
    return new Map(Object.entries(JSON.parse(stdout) as Record<string, { to: string; path: string }>));
  }
}

/**
 * compare matches where flows arrived with where explain sent them: every forwarded flow reached its
 * node and only that one; every dropped or local flow reached no node. Returns the mismatches (a few
 * named in full) for one readable assertion.
 */
export function compare(
  flows: readonly ClientFlow[],
  explained: ReadonlyMap<string, { to: string; path: string }>,
  arrived: ReadonlyMap<string, string>,
): { checked: number; mismatches: number; examples: string[] } {
  let mismatches = 0;
  const examples: string[] = [];
  for (const f of flows) {
    const k = keyOf(f);
    const want = explained.get(k)?.to ?? 'not explained';
    const got = arrived.get(k) ?? 'nowhere';
    const ok = want.startsWith('drop:') || want === 'local' ? got === 'nowhere' : got === want;
    if (!ok) {
      mismatches++;
      if (examples.length < 5)
        examples.push(
          `${f.protocol} ${k}: explain ${want}, arrived ${got} (${explained.get(k)?.path ?? ''})`,
        );
    }
  }
  return { checked: flows.length, mismatches, examples };
}
