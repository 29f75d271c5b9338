// Test helpers: run the agent CLI inside a lab node, snapshot a namespace's network state, play the
// gateway with the kernel's own VXLAN device.
import { fileURLToPath } from 'node:url';
import type { Lab } from '@onehost/lab';
import type { LabProcess, RunResult } from '@onehost/testkit';
import type { AppliedNode } from '../apply.js';

export const NET_CLI = fileURLToPath(new URL('../../dist/net-cli.js', import.meta.url));
export const PROBE = fileURLToPath(new URL('./probe.mjs', import.meta.url));

/** agent runs `onehost-agent-net <args>` inside `host`. Throws when it fails. */
export function agent(lab: Lab, host: string, ...args: string[]): Promise<RunResult> {
  return lab.exec(host, 'node', [NET_CLI, ...args]);
}

/** applyIn applies a config file inside `host` and parses what the agent reports. */
export async function applyIn(lab: Lab, host: string, configFile: string): Promise<AppliedNode> {
  const { stdout } = await agent(lab, host, 'apply', '--config', configFile);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as AppliedNode;
}

/** Answer of `probe.mjs ask`: what the server saw, this socket's own view, where the answer came from. */
export interface ProbeAnswer {
  seen: string;
  local: string;
  from: string;
}

/** ask runs a probe client in `host`. Throws when no answer arrives within 3 s. */
export async function ask(
  lab: Lab,
  host: string,
  proto: 'tcp' | 'udp',
  address: string,
  port: number,
  bind?: string,
): Promise<ProbeAnswer> {
  const args = [PROBE, 'ask', proto, address, String(port), ...(bind ? [bind] : [])];
  const { stdout } = await lab.exec(host, 'node', args);
  return JSON.parse(stdout) as ProbeAnswer;
}

/** serve starts a probe server in `host`; resolves once it listens. */
export async function serve(lab: Lab, host: string, port: number, bind?: string): Promise<LabProcess> {
  const proc = lab.spawn(host, 'node', [PROBE, 'serve', String(port), ...(bind ? [bind] : [])]);
  await proc.waitForOutput('listening');
  return proc;
}

/** splitHostPort splits "a.b.c.d:port". */
export function splitHostPort(s: string): { address: string; port: number } {
  const i = s.lastIndexOf(':');
  return { address: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** Keys whose values change when a device or table is re-created but mean nothing for the comparison. */
const VOLATILE = new Set(['ifindex', 'link_index', 'handle', 'packets', 'bytes']);

function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => !VOLATILE.has(k))
        .map(([k, v]) => [k, normalise(v)]),
    );
  }
  return value;
}

/** NetState is what restore must bring back exactly. */
export interface NetState {
  links: unknown;
  addresses: unknown;
  routes: unknown;
  rules: unknown;
  nft: unknown;
  sysctls: Record<string, string>;
}

/** Exec runs a command in the namespace under test and resolves with its output. */
export type Exec = (file: string, args: string[]) => Promise<{ stdout: string }>;

/** snapshot reads links, addresses, all routing tables, rules, the nftables ruleset and net.ipv4 sysctls. */
export function snapshot(lab: Lab, host: string): Promise<NetState> {
  return snapshotWith((file, args) => lab.exec(host, file, args));
}

/** snapshotWith is {@link snapshot} for any namespace, through `exec`. */
export async function snapshotWith(exec: Exec): Promise<NetState> {
  const json = async (file: string, args: string[]) =>
    normalise(JSON.parse((await exec(file, args)).stdout || '[]'));
  const { stdout } = await exec('sysctl', ['-a', '--pattern', '^net\\.ipv4\\.']);
  const sysctls: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(' = ');
    if (i > 0) sysctls[line.slice(0, i)] = line.slice(i + 3);
  }
  return {
    links: await json('ip', ['-j', 'link', 'show']),
    addresses: await json('ip', ['-j', 'addr', 'show']),
    routes: await json('ip', ['-j', 'route', 'show', 'table', 'all']),
    rules: await json('ip', ['-j', 'rule', 'show']),
    nft: await json('nft', ['-j', 'list', 'ruleset']),
    sysctls,
  };
}

/**
 * kernelGateway makes `host` send everything for `vip` to `nodeAddress` inside VXLAN (VNI `vni`), with
 * the inner Ethernet destination set to `mac`: a stand-in for the onehost gateway, built from the kernel's
 * VXLAN device, a permanent neighbour entry and a /32 route.
 */
export async function kernelGateway(
  lab: Lab,
  host: string,
  opts: {
    dev: string;
    vni: number;
    local: string;
    nodeAddress: string;
    underlay: string;
    vip: string;
    mac: string;
  },
): Promise<void> {
  const { dev } = opts;
  const batch = [
    `link add ${dev} type vxlan id ${opts.vni} dstport 4789 local ${opts.local} remote ${opts.nodeAddress} dev ${opts.underlay} nolearning`,
    `link set ${dev} up`,
    `neigh replace ${opts.vip} lladdr ${opts.mac} dev ${dev} nud permanent`,
    `route replace ${opts.vip}/32 dev ${dev}`,
  ];
  await lab.exec(host, 'ip', ['-batch', '-'], { input: `${batch.join('\n')}\n` });
}

/** nftCounter reads the packet counter of the first rule with a counter in a chain of the agent's table. */
export async function nftCounter(lab: Lab, host: string, chain: string): Promise<number> {
  const { stdout } = await lab.exec(host, 'nft', ['list', 'chain', 'ip', 'onehost_agent', chain]);
  const m = /counter packets (\d+)/.exec(stdout);
  if (!m) throw new Error(`no counter in chain ${chain}:\n${stdout}`);
  return Number(m[1]);
}

/** rxPackets reads a device's received-packet counter in `host`. */
export async function rxPackets(lab: Lab, host: string, dev: string): Promise<number> {
  const { stdout } = await lab.exec(host, 'ip', ['-j', '-s', 'link', 'show', 'dev', dev]);
  return (JSON.parse(stdout) as Array<{ stats64: { rx: { packets: number } } }>)[0]!.stats64.rx.packets;
}
