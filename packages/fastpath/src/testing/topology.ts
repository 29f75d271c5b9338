// A lab for the fast path alone: the gateway host's kernel (no TUN, no gateway process), three nodes set up
// the way the agent sets them up (a VXLAN device, the cluster address on lo), and per node an nftables
// set of the flows that arrived, so a test can tell which node each flow reached.

import { join } from 'node:path';
import { Host, JournalFile, pidAlive } from '@onehost/kernel';
import { createLab, type Lab } from '@onehost/lab';
import { PacketSender } from '@onehost/tun';
import { pino } from 'pino';
import type { FastPathLayout } from '../compile.js';
import { FastPath } from '../fastpath.js';

export const VIP = '203.0.113.80';
export const VNI = 4242;

/** The layout the tests use (a small guard so floods show). */
export function testLayout(overrides: Partial<FastPathLayout> = {}): FastPathLayout {
  return {
    table: 'onehost_fastpath',
    device: 'onehostvx',
    outside: ['eth0'],
    vips: [ipv4(VIP)],
    source: '198.18.0.1',
    vni: VNI,
    vxlanPort: 4789,
    innerMtu: 1550,
    markBase: 0x6f480000,
    tableBase: 0x4f480000,
    rulePref: 90,
    guard: { first: 0, unknown: 0, other: 0, payloadSyn: 0, payload: 0 },
    ...overrides,
  };
}

export function ipv4(s: string): number {
  return s.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
}

/** FastPathLab is the lab plus what a test needs to send flows and see where they went. */
export class FastPathLab {
  readonly gw: Host;
  readonly macs = new Map<string, string>();
  private sender: PacketSender | undefined;

  constructor(readonly lab: Lab) {
    this.gw = new Host(lab.host('gw').netns);
  }

  node(name: string): Host {
    return new Host(this.lab.host(name).netns);
  }

  /** endpoints of the nodes n1… as the fast path wants them (ids 1, 2, 3). */
  endpoints(names = ['n1', 'n2', 'n3']): { id: number; address: string; mac: string }[] {
    return names.map((n) => ({
      id: Number(n.slice(1)),
      address: this.lab.addresses.nodes[Number(n.slice(1)) - 1]!,
      mac: this.macs.get(n)!,
    }));
  }

  /** start opens a fast path in the gateway's namespace, its journal in the lab's run directory. */
  async start(layout = testLayout()): Promise<FastPath> {
    const journal = await JournalFile.adopt(join(this.lab.runDir, 'gw-journal.json'), 'gw', pidAlive);
    return FastPath.start({ layout, host: this.gw, journal, log: pino({ level: 'silent' }) });
  }

  /** send injects raw IPv4 packets from c1's namespace (sources may be any address in 203.0.113.0/24). */
  send(packets: readonly Uint8Array[]): void {
    this.sender ??= PacketSender.open({ netns: this.lab.host('c1').netns });
    const size = packets.reduce((a, p) => a + p.length, 0);
    const arena = Buffer.alloc(size);
    const meta = new Int32Array(packets.length * 4);
    let off = 0;
    packets.forEach((p, i) => {
      arena.set(p, off);
      meta[i * 4] = off;
      meta[i * 4 + 1] = p.length;
      off += p.length;
    });
    let at = 0;
    while (at < packets.length) at = this.sender.sendIp(arena, meta, at, packets.length);
  }

  /** seen lists the flows (client address:port) each node received for the cluster address. */
  async seen(names = ['n1', 'n2', 'n3']): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const n of names) {
      const j = await this.node(n).nftJson('list', 'set', 'ip', 'seen', 'flows');
      const set = (j.find((o) => 'set' in o) as { set: { elem?: Array<{ concat: [string, number] }> } }).set;
      out.set(
        n,
        (set.elem ?? []).map((e) => `${e.concat[0]}:${e.concat[1]}`),
      );
    }
    return out;
  }

  /** forget empties the nodes' sets of seen flows. */
  async forget(names = ['n1', 'n2', 'n3']): Promise<void> {
    for (const n of names) await this.node(n).nft('flush set ip seen flows\n');
  }

  async close(): Promise<void> {
    this.sender?.close();
    await this.lab.cleanup();
  }
}

/** startFastPathLab builds the lab: client c1, the gateway host (forwarding on), nodes n1–n3. */
export async function startFastPathLab(): Promise<FastPathLab> {
  const lab = await createLab({ nodes: 3, clients: 1, services: false });
  const f = new FastPathLab(lab);
  try {
    for (const [i, name] of ['n1', 'n2', 'n3'].entries()) {
      const h = f.node(name);
      const address = lab.addresses.nodes[i]!;
      const mac = `02:6f:68:00:00:${(0x11 + i).toString(16)}`;
      await h.ipBatch([
        `link add vx0 address ${mac} type vxlan id ${VNI} dstport 4789 local ${address} dev eth0 nolearning`,
        'link set vx0 up',
        `addr add ${VIP}/32 dev lo`,
      ]);
      await h.writeSysctl('net/ipv4/conf/all/rp_filter', '0');
      await h.writeSysctl('net/ipv4/conf/vx0/rp_filter', '0');
      // what arrived, by flow: the test's eyes on each node
      await h.nft(`table ip seen {
  set flows { type ipv4_addr . inet_service; size 262144; }
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    iifname "vx0" ip daddr ${VIP} add @flows { ip saddr . th sport }
  }
}
`);
      f.macs.set(name, mac);
    }
    // The client reaches the whole outside prefix through the gateway, spoofed sources included.
    await f.gw.writeSysctl('net/ipv4/conf/all/rp_filter', '0');
    await f.gw.writeSysctl('net/ipv4/conf/eth0/rp_filter', '0');
    return f;
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
}
