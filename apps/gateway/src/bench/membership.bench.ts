// How long a membership change takes to reach the kernel with 1,000 nodes, with the flow maps empty and
// then holding 1M tracked flows: the gateway's own path from a membership change (its switch rebuilt from
// the members, the fast path's compile, its ip commands and its nftables transaction), in a network
// namespace of its own. No traffic: the nodes' addresses are reached through the VXLAN device's routes,
// which need no neighbour to answer. Prints figures; asserts nothing about time.
//
//   npm run bench -w @onehost/gateway [-- --nodes 1000 --flows 1000000 --changes 7]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { MemberRecord } from '@onehost/control';
import { FastPath } from '@onehost/fastpath';
import { FlowBatch, Host, JournalFile, NftFlows, pidAlive } from '@onehost/kernel';
import { MessageSwitch } from '@onehost/switch';
import { Lab } from '@onehost/testkit';
import { parseIpv4 } from '@onehost/wire';
import { pino } from 'pino';
import { GatewaySwitch } from '../backend.js';
import { parseGatewayConfig } from '../config.js';
import { fastPathLayout } from '../gateway.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    flows: { type: 'string', default: '1000000' },
    changes: { type: 'string', default: '7' },
    inside: { type: 'boolean', default: false },
  },
});
const NODES = Number(values.nodes);
const FLOWS = Number(values.flows);
const CHANGES = Number(values.changes);
const VIP = '203.0.113.80';

const addr = (i: number) => `198.18.${(i >> 8) & 0xff}.${i & 0xff}`;
const hex2 = (n: number) => (n & 0xff).toString(16).padStart(2, '0');
const mac = (i: number) => `02:6f:68:01:${hex2(i >> 8)}:${hex2(i)}`;

const YAML = `
name: gw
outside: { interfaces: [eth0] }
interconnect: { interface: eth1, address: 198.18.0.1, mtu: 1600 }
control:
  listen: 198.18.0.1:7443
  tls: { ca: ca.pem, cert: gw.pem, key: gw-key.pem }
  store: store.json
clusterAddresses: [{ network: outside, address: ${VIP} }]
entries:
  - { protocol: tcp, port: 80, function: connection, policy: round-robin, maxEntries: ${FLOWS + 1000} }
  - { protocol: tcp, port: 443, function: connection, policy: maglev, rederive: true, maglevSize: 100003 }
  - { protocol: udp, port: 53, function: udp-flow, maglevSize: 100003 }
`;

function members(down: number): MemberRecord[] {
  return Array.from({ length: NODES }, (_, k) => {
    const id = k + 1;
    return {
      name: `n${id}`,
      id,
      block: { lo: 1024 + id * 60, hi: 1024 + id * 60 + 59 },
      internalAddress: addr(id + 256),
      vxlanMac: mac(id),
      capabilities: ['vxlan'],
      drained: false,
      state: id === down ? 'down' : 'active',
      lastSeenUnixMs: 0,
      downReason: id === down ? 'bench' : '',
    } satisfies MemberRecord;
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[]) => `[${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]`;

/**
 * inside re-runs this bench inside a namespace of its own, as the gateway runs inside its host's: every
 * command the fast path runs is then a plain child process, not one behind `ip netns exec`.
 */
async function inside(): Promise<number> {
  const lab = new Lab();
  try {
    const ns = await lab.netns();
    const child = lab.spawn(ns, process.execPath, [process.argv[1]!, ...process.argv.slice(2), '--inside']);
    await child.whenExited();
    process.stdout.write(child.output());
    return child.exitStatus()?.code ?? 1;
  } finally {
    await lab.cleanup();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'onehost-membership-bench-'));
  try {
    const host = new Host();
    await host.ipBatch([
      'link add eth0 type veth peer name eth1',
      'link set eth0 up',
      'link set eth1 up',
      'addr add 198.18.0.1/16 dev eth1',
    ]);
    const cfg = parseGatewayConfig(YAML);
    const sw = new MessageSwitch();
    const backend = new GatewaySwitch(sw, cfg);
    const journal = await JournalFile.adopt(join(dir, 'journal.json'), 'gw', pidAlive);
    const fp = await FastPath.start({
      layout: fastPathLayout(cfg),
      host,
      journal,
      log: pino({ level: 'silent' }),
    });
    // the gateway's path from a membership change: rebuild the switch, then the kernel
    let lastSwitchMs = 0;
    const change = async (down: number): Promise<number> => {
      const ms = members(down);
      const t0 = performance.now();
      backend.setMembership(ms, []);
      lastSwitchMs = performance.now() - t0;
      if (process.env.BENCH_DEBUG) console.error('switch', lastSwitchMs.toFixed(1));
      await fp.apply(
        sw.snapshot!,
        ms.map((m) => ({ id: m.id, address: m.internalAddress, mac: m.vxlanMac })),
      );
      if (fp.lastError !== '') throw new Error(fp.lastError);
      if (process.env.BENCH_DEBUG)
        console.error('apply', fp.stats.lastApplyMs.toFixed(1), 'nft', fp.stats.lastNftMs.toFixed(1));
      return performance.now() - t0;
    };
    const firstMs = await change(0);
    console.error(`bench: ${NODES} nodes applied in ${firstMs.toFixed(0)} ms`);
    const changes = async (): Promise<{ all: number[]; switchMs: number[] }> => {
      const all: number[] = [];
      const switchMs: number[] = [];
      for (let c = 0; c < CHANGES; c++) {
        for (const down of [1 + ((c * 137) % NODES), 0]) {
          all.push(await change(down));
          switchMs.push(lastSwitchMs);
        }
      }
      return { all, switchMs };
    };
    const empty = await changes();

    // 1M flows in the round-robin map, spread over the nodes, through the same netlink writer
    const flows = NftFlows.open(cfg.datapath.table);
    const b = new FlowBatch(65_536);
    let t = performance.now();
    const vip = parseIpv4(VIP);
    for (let i = 0; i < FLOWS; i++) {
      if (b.full) {
        const r = flows.apply(['f_tcp_80'], b);
        if (r.failed > 0) throw new Error(`flow writes refused: ${r.error}`);
        b.clear();
      }
      b.upsert(
        0,
        vip,
        (parseIpv4('203.0.113.0') + (i >>> 16)) >>> 0,
        i & 0xffff,
        0x6f480000 + 1 + (i % NODES),
        3_600_000,
      );
    }
    flows.apply(['f_tcp_80'], b);
    const fillMs = performance.now() - t;
    t = performance.now();
    const held = (await flows.dump('f_tcp_80')).length;
    const dumpMs = performance.now() - t;
    flows.close();
    const full = await changes();
    const me = median(empty.all);
    const mf = median(full.all);
    const out = [
      `membership bench: one node down, then up again, ${CHANGES} times; ${NODES} nodes; from the membership change to the kernel (switch rebuilt, fast path applied); medians [min–max]`,
      '',
      `  flow maps empty                ${me.toFixed(1)} ms ${range(empty.all)}   of which the switch rebuild ${median(empty.switchMs).toFixed(1)} ms`,
      `  ${FLOWS} flows tracked        ${mf.toFixed(1)} ms ${range(full.all)}   of which the switch rebuild ${median(full.switchMs).toFixed(1)} ms`,
      `  ratio (tracked / empty)        ${(mf / me).toFixed(2)}`,
      `  flows written ${((FLOWS / fillMs) * 1000).toFixed(0)}/s through netlink; ${held} read back in ${dumpMs.toFixed(0)} ms`,
      '',
      `bench membership_change nodes=${NODES} flows=${FLOWS} empty_ms=${me.toFixed(1)} tracked_ms=${mf.toFixed(1)} ratio=${(mf / me).toFixed(2)}`,
      `bench first_apply nodes=${NODES} ms=${firstMs.toFixed(0)}`,
    ];
    console.log(out.join('\n'));
    await fp.teardown();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

(values.inside ? main().then(() => 0) : inside()).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
