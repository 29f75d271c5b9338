import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { ipv4ToString } from '@onehost/wire';
import { readSysctl, run, writeSysctl } from './run.js';

/**
 * The gateway host's kernel plumbing (docs/gateway-host.md has the why of each step):
 * - the cluster addresses (VIPs) are local (/32 on lo) so `local` decisions reach the host's own services;
 * - packets for a VIP arriving on an outside interface are policy-routed into the TUN (rule
 *   `iif <outside> to VIP lookup <table>` at `rulePref`, before the `local` rule, which moves from
 *   preference 0 to `localPref`), with an `unreachable` fallback route so that a vanished TUN never leaks
 *   the traffic to the host's own sockets;
 * - early demux is off, or the local socket of a `local` flow would capture the client's later packets
 *   and forwarding would drop them;
 * - replies from nodes carry source = VIP (a local address): accept_local on the interconnect, rp_filter 0;
 * - VIP traffic is not tracked by conntrack (stateless balancing; the switch keeps its own table);
 * - outside sources reach nodes' internal addresses only from the management list;
 * - from the interconnect, only registered nodes (set `nodes`, kept current by `setRegisteredNodes`) and
 *   the cluster addresses they stamp may be forwarded out.
 * Everything applied is recorded in a state file first, so `restore` undoes it after a crash too.
 */
export interface GatewayHostConfig {
  tun: string;
  vips: number[];
  outside: string[];
  interconnect: string;
  /** the cluster interconnect prefix, e.g. 198.18.0.0/15: nodes' internal addresses */
  interconnectPrefix: string;
  management: string[];
  /** the VXLAN UDP port: the gateway's own encapsulated packets are not tracked */
  vxlanPort: number;
  /** the TUN's transmit queue: packets wait there while the gateway is busy (default 500 is short) */
  txQueueLen: number;
  table: number;
  rulePref: number;
  localPref: number;
  statePath: string;
}

interface HostState {
  version: 1;
  config: GatewayHostConfig;
  sysctls: Record<string, string>;
  addedLoAddresses: string[];
  movedLocalRule: boolean;
}

const NFT_TABLE = 'onehost_gateway';

function sysctlPlan(c: GatewayHostConfig): Array<[string, string]> {
  return [
    ['net.ipv4.ip_forward', '1'],
    ['net.ipv4.tcp_early_demux', '0'],
    ['net.ipv4.udp_early_demux', '0'],
    ['net.ipv4.conf.all.rp_filter', '0'],
    [`net.ipv4.conf.${c.interconnect}.rp_filter`, '0'],
    [`net.ipv4.conf.${c.interconnect}.accept_local`, '1'],
    [`net.ipv4.conf.${c.tun}.rp_filter`, '0'],
    // Delayed binding (docs/splice.md): the host's stack answers MOUNT/NFS SYNs; with 2 it always
    // answers with a SYN cookie and keeps no state before the handshake completes.
    ['net.ipv4.tcp_syncookies', '2'],
  ];
}

function nftRuleset(c: GatewayHostConfig): string {
  const vips = c.vips.map(ipv4ToString).join(', ');
  const mgmt = c.management.length > 0 ? `ip saddr != { ${c.management.join(', ')} } ` : '';
  const outs = c.outside.map((o) => JSON.stringify(o)).join(', ');
  return `table ip ${NFT_TABLE} {
  chain raw_pre {
    type filter hook prerouting priority raw; policy accept;
    ip daddr { ${vips} } notrack
    ip saddr { ${vips} } notrack
  }
  chain raw_out {
    type filter hook output priority raw; policy accept;
    ip saddr { ${vips} } notrack
    udp dport ${c.vxlanPort} notrack comment "VXLAN to nodes: outer source ports vary per flow"
  }
  set nodes {
    type ipv4_addr
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname { ${outs} } ip daddr ${c.interconnectPrefix} ${mgmt}counter drop comment "node addresses: management sources only"
    iifname ${JSON.stringify(c.interconnect)} ip saddr != { ${vips} } ip saddr != @nodes counter drop comment "registered nodes only"
  }
}
`;
}

async function saveState(path: string, s: HostState): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify(s, null, 2));
  await rename(tmp, path);
}

async function loadState(path: string): Promise<HostState | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as HostState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function loAddresses(): Promise<Set<string>> {
  const out = JSON.parse(await run('ip', ['-j', 'addr', 'show', 'dev', 'lo'])) as Array<{
    addr_info: Array<{ local: string; prefixlen: number; family: string }>;
  }>;
  return new Set(
    out.flatMap((l) =>
      l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    ),
  );
}

async function ignoreMissing(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch {
    // restoring: what is already gone stays gone
  }
}

/**
 * applyGatewayHost configures the host for `c` (the TUN must exist). Restores a previous run's leftovers
 * first. Throws CommandError naming the command the kernel refused (after undoing what it had applied).
 */
export async function applyGatewayHost(c: GatewayHostConfig): Promise<void> {
  await restoreGatewayHost(c.statePath);
  const state: HostState = {
    version: 1,
    config: c,
    sysctls: {},
    addedLoAddresses: [],
    movedLocalRule: false,
  };
  for (const [k] of sysctlPlan(c)) state.sysctls[k] = await readSysctl(k);
  const have = await loAddresses();
  state.addedLoAddresses = c.vips.map((v) => `${ipv4ToString(v)}/32`).filter((a) => !have.has(a));
  state.movedLocalRule = true;
  await saveState(c.statePath, state);
  try {
    for (const [k, v] of sysctlPlan(c)) await writeSysctl(k, v);
    for (const a of state.addedLoAddresses) await run('ip', ['addr', 'add', a, 'dev', 'lo']);
    await run('ip', ['link', 'set', c.tun, 'txqueuelen', String(c.txQueueLen), 'up']);
    for (const v of c.vips) {
      const vip = `${ipv4ToString(v)}/32`;
      await run('ip', ['route', 'replace', vip, 'dev', c.tun, 'table', String(c.table)]);
      await run('ip', [
        'route',
        'replace',
        'unreachable',
        vip,
        'table',
        String(c.table),
        'metric',
        '4294967295',
      ]);
      for (const o of c.outside) {
        await run('ip', [
          'rule',
          'add',
          'pref',
          String(c.rulePref),
          'iif',
          o,
          'to',
          vip,
          'lookup',
          String(c.table),
        ]);
      }
    }
    await run('ip', ['rule', 'add', 'pref', String(c.localPref), 'lookup', 'local']);
    await ignoreMissing(run('ip', ['rule', 'del', 'pref', '0', 'lookup', 'local']));
    await run('nft', ['-f', '-'], nftRuleset(c));
  } catch (e) {
    await restoreGatewayHost(c.statePath);
    throw e;
  }
}

/**
 * setRegisteredNodes replaces the set of node addresses allowed to send through the gateway (one nft
 * transaction). Throws CommandError when nft refuses (e.g. the table is gone).
 */
export async function setRegisteredNodes(addresses: readonly string[]): Promise<void> {
  const elements =
    addresses.length > 0 ? `add element ip ${NFT_TABLE} nodes { ${addresses.join(', ')} }\n` : '';
  await run('nft', ['-f', '-'], `flush set ip ${NFT_TABLE} nodes\n${elements}`);
}

/** restoreGatewayHost undoes what the state file at `statePath` records; a no-op without one. */
export async function restoreGatewayHost(statePath: string): Promise<void> {
  const s = await loadState(statePath);
  if (s === undefined) return;
  const c = s.config;
  await ignoreMissing(run('nft', ['delete', 'table', 'ip', NFT_TABLE]));
  if (s.movedLocalRule) {
    await ignoreMissing(run('ip', ['rule', 'add', 'pref', '0', 'lookup', 'local']));
    await ignoreMissing(run('ip', ['rule', 'del', 'pref', String(c.localPref), 'lookup', 'local']));
  }
  for (const v of c.vips) {
    const vip = `${ipv4ToString(v)}/32`;
    for (const o of c.outside) {
      await ignoreMissing(
        run('ip', [
          'rule',
          'del',
          'pref',
          String(c.rulePref),
          'iif',
          o,
          'to',
          vip,
          'lookup',
          String(c.table),
        ]),
      );
    }
  }
  await ignoreMissing(run('ip', ['route', 'flush', 'table', String(c.table)]));
  for (const a of s.addedLoAddresses) await ignoreMissing(run('ip', ['addr', 'del', a, 'dev', 'lo']));
  for (const [k, v] of Object.entries(s.sysctls)) await ignoreMissing(writeSysctl(k, v));
  await rm(statePath, { force: true });
}
