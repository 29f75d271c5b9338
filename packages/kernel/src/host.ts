import { readFile, writeFile } from 'node:fs/promises';
import { type CommandOptions, runCommand } from './command.js';

/** IpRoute is the part of `ip -j route` output we read back. */
export interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags?: string[];
  table?: string;
  nexthops?: Array<{ gateway?: string; dev?: string; weight?: number; flags?: string[] }>;
}

/** IpRule is the part of `ip -j rule` output we read back. */
export interface IpRule {
  priority?: number;
  src?: string;
  dst?: string;
  iif?: string;
  fwmark?: string;
  fwmask?: string;
  table?: string;
}

interface IpAddr {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/** checkSysctlKey turns "net.ipv4.ip_forward" or "net/ipv4/ip_forward" into a /proc/sys path; throws on anything else. */
function sysctlPath(key: string): string {
  if (!/^[a-zA-Z0-9_./-]+$/.test(key) || key.includes('..')) throw new Error(`bad sysctl key ${key}`);
  // Dots separate levels unless the key already uses slashes (interface names may hold dots).
  return `/proc/sys/${key.includes('/') ? key : key.replaceAll('.', '/')}`;
}

/**
 * Host is the kernel of one network namespace: this process's own (no name), or a named one reached with
 * `ip netns exec` (tests, and tools that configure a namespace from outside). Every method throws a
 * CommandError naming the command the kernel refused.
 */
export class Host {
  constructor(readonly netns?: string) {}

  /** run executes a command in this namespace and resolves with its standard output. */
  run(file: string, args: readonly string[], options?: CommandOptions): Promise<string> {
    if (this.netns === undefined) return runCommand(file, args, options);
    return runCommand('ip', ['netns', 'exec', this.netns, file, ...args], options);
  }

  /** ip runs `ip <args>`. */
  ip(...args: string[]): Promise<string> {
    return this.run('ip', args);
  }

  /** ipJson runs `ip -j <args>` and parses the output (an empty output is an empty list). */
  async ipJson<T = Record<string, unknown>>(...args: string[]): Promise<T[]> {
    const out = (await this.run('ip', ['-j', ...args])).trim();
    return out ? (JSON.parse(out) as T[]) : [];
  }

  /**
   * ipBatch runs many `ip` commands in one process (`ip -batch -`, one command per line). It stops at the
   * first failing line; the CommandError's stderr names it. With `force`, it runs every line and fails at
   * the end if any failed. With `family` 6 every line is IPv6 (`ip -6`: rules and flushes need it; routes
   * and neighbours take the family from their address).
   */
  async ipBatch(lines: readonly string[], force = false, family?: 6): Promise<void> {
    if (lines.length === 0) return;
    const args = [...(family === 6 ? ['-6'] : []), ...(force ? ['-force'] : []), '-batch', '-'];
    await this.run('ip', args, { input: `${lines.join('\n')}\n` });
  }

  /** nft feeds a script to `nft -f -`: one transaction, all or nothing. */
  nft(script: string): Promise<string> {
    return this.run('nft', ['-f', '-'], { input: script, timeoutMs: 120_000 });
  }

  /** nftJson runs `nft -j <args>` and parses its `nftables` list. */
  async nftJson(...args: string[]): Promise<Record<string, unknown>[]> {
    const out = (await this.run('nft', ['-j', ...args], { timeoutMs: 120_000 })).trim();
    if (!out) return [];
    return (JSON.parse(out) as { nftables?: Record<string, unknown>[] }).nftables ?? [];
  }

  /** nftTableExists tells whether table `family name` exists. */
  nftTableExists(family: string, name: string): Promise<boolean> {
    return this.run('nft', ['-t', 'list', 'table', family, name]).then(
      () => true,
      () => false,
    );
  }

  /** readSysctl reads a sysctl ("net.ipv4.ip_forward" or "net/ipv4/conf/eth0.5/rp_filter"). Throws when missing. */
  async readSysctl(key: string): Promise<string> {
    const path = sysctlPath(key);
    const text = this.netns === undefined ? await readFile(path, 'utf8') : await this.run('cat', [path]);
    return text.trim().replace(/\s+/g, ' ');
  }

  /** writeSysctl writes a sysctl. Throws when missing or refused. */
  async writeSysctl(key: string, value: string): Promise<void> {
    const path = sysctlPath(key);
    if (this.netns === undefined) await writeFile(path, `${value}\n`);
    else await this.run('sh', ['-c', 'printf "%s\\n" "$1" > "$2"', 'sysctl', value, path]);
  }

  /** sysctlExists tells whether a sysctl exists (a device's keys vanish with the device). */
  async sysctlExists(key: string): Promise<boolean> {
    return this.readSysctl(key).then(
      () => true,
      () => false,
    );
  }

  /** linkExists tells whether a network device exists. */
  async linkExists(name: string): Promise<boolean> {
    return (await this.ipJson<{ ifname: string }>('link', 'show')).some((l) => l.ifname === name);
  }

  /** hasAddress tells whether `dev` carries the address `address` (IPv4, or IPv6 as `ip` prints it). */
  async hasAddress(dev: string, address: string): Promise<boolean> {
    const links = await this.ipJson<IpAddr>('addr', 'show', 'dev', dev);
    return links.some((l) => (l.addr_info ?? []).some((a) => a.local === address));
  }

  /** addresses lists the IPv4 addresses of `dev` as CIDR strings. */
  async addresses(dev: string): Promise<Set<string>> {
    const links = await this.ipJson<IpAddr>('addr', 'show', 'dev', dev);
    return new Set(
      links.flatMap((l) =>
        (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
      ),
    );
  }

  /** addresses6 lists the IPv6 addresses of `dev` as CIDR strings (as `ip` prints them, RFC 5952). */
  async addresses6(dev: string): Promise<Set<string>> {
    const links = await this.ipJson<IpAddr>('addr', 'show', 'dev', dev);
    return new Set(
      links.flatMap((l) =>
        (l.addr_info ?? []).filter((a) => a.family === 'inet6').map((a) => `${a.local}/${a.prefixlen}`),
      ),
    );
  }

  /** routes6 lists the IPv6 routes of a table, as `routes` does for IPv4. */
  async routes6(table: string | number = 'main'): Promise<IpRoute[]> {
    return this.ipJson<IpRoute>('-6', 'route', 'show', 'table', String(table)).catch(() => []);
  }

  /** routes lists the routes of a table ("main", a number, or "all"); a table that does not exist is empty. */
  async routes(table: string | number = 'main'): Promise<IpRoute[]> {
    return this.ipJson<IpRoute>('route', 'show', 'table', String(table)).catch(() => []);
  }

  /**
   * noIpv6Autoconf stops the kernel from giving device `dev` an IPv6 link-local address when it comes
   * up (`addr_gen_mode` 1, "none"): without one it sends no duplicate address detection (RFC 4862
   * §5.4), no router solicitations (RFC 4861 §6.3.7) and no MLD reports for its solicited-node group
   * (RFC 3810 §6.1). IPv6 itself stays on, so routes and addresses can still be given to the device.
   * Call it before the device is up. A no-op on a kernel without IPv6; throws when the kernel refuses.
   */
  async noIpv6Autoconf(dev: string): Promise<void> {
    const key = `net/ipv6/conf/${dev}/addr_gen_mode`;
    if (await this.sysctlExists(key)) await this.writeSysctl(key, '1');
  }

  /** rules lists the policy-routing rules (IPv4). */
  rules(): Promise<IpRule[]> {
    return this.ipJson<IpRule>('rule', 'show');
  }

  /** rules6 lists the IPv6 policy-routing rules. */
  rules6(): Promise<IpRule[]> {
    return this.ipJson<IpRule>('-6', 'rule', 'show');
  }
}

/** localHost is this process's own network namespace. */
export const localHost = new Host();

/** dstKey is a destination prefix as `ip -j route` prints it ("default", a bare address for /32). */
export function dstKey(prefix: string): string {
  return prefix === '0.0.0.0/0' ? 'default' : prefix.endsWith('/32') ? prefix.slice(0, -3) : prefix;
}

/**
 * routeArgs turns a route read with `ip -j route` back into `ip route replace` arguments, so a route that
 * was replaced can be put back as it was. Throws for a route it cannot express (no destination).
 */
export function routeArgs(r: IpRoute): string[] {
  if (!r.dst) throw new Error(`route without destination: ${JSON.stringify(r)}`);
  const args: string[] = [];
  if (r.type && r.type !== 'unicast') args.push(r.type);
  args.push(r.dst);
  if (r.gateway) args.push('via', r.gateway);
  if (r.dev) args.push('dev', r.dev);
  if (r.table && r.table !== 'main') args.push('table', r.table);
  if (r.protocol) args.push('proto', r.protocol);
  if (r.scope) args.push('scope', r.scope);
  if (r.prefsrc) args.push('src', r.prefsrc);
  if (r.metric !== undefined) args.push('metric', String(r.metric));
  if (r.flags?.includes('onlink')) args.push('onlink');
  for (const hop of r.nexthops ?? []) {
    args.push('nexthop');
    if (hop.gateway) args.push('via', hop.gateway);
    if (hop.dev) args.push('dev', hop.dev);
    if (hop.weight !== undefined) args.push('weight', String(hop.weight));
    if (hop.flags?.includes('onlink')) args.push('onlink');
  }
  return args;
}

/** A policy-routing rule selected by a packet mark: `ip rule add priority P fwmark F lookup T`. */
export interface MarkRule {
  priority: number;
  fwmark: number;
  table: number;
}

/** ruleArgs are the `ip rule` selector and action of a mark rule. */
export function ruleArgs(r: MarkRule): string[] {
  return ['priority', String(r.priority), 'fwmark', `0x${r.fwmark.toString(16)}`, 'lookup', String(r.table)];
}

/** The names `ip` prints for the reserved tables. */
const TABLE_NAMES: Record<number, string> = { 253: 'default', 254: 'main', 255: 'local' };

/** tableName is a routing table as `ip -j` prints it: reserved tables by name, others by number. */
export function tableName(table: number): string {
  return TABLE_NAMES[table] ?? String(table);
}

/** isMarkRule tells whether a rule read back is exactly `r` (priority, fwmark with a full mask, table). */
export function isMarkRule(x: IpRule, r: MarkRule): boolean {
  return (
    x.priority === r.priority &&
    x.fwmark !== undefined &&
    Number(x.fwmark) === r.fwmark &&
    (x.fwmask === undefined || Number(x.fwmask) === 0xffffffff) &&
    x.table === tableName(r.table)
  );
}

/** countRules counts the rules that look exactly like `r`. */
export async function countRules(r: MarkRule, host: Host = localHost): Promise<number> {
  return (await host.rules()).filter((x) => isMarkRule(x, r)).length;
}

/** pidAlive tells whether a process exists (EPERM: it exists, but is not ours). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** ip runs `ip <args>` in this process's namespace (see {@link Host.ip}). */
export const ip = (...args: string[]): Promise<string> => localHost.ip(...args);
/** ipJson runs `ip -j <args>` in this process's namespace (see {@link Host.ipJson}). */
export const ipJson = <T = Record<string, unknown>>(...args: string[]): Promise<T[]> =>
  localHost.ipJson<T>(...args);
/** nft runs one nftables transaction in this process's namespace (see {@link Host.nft}). */
export const nft = (script: string): Promise<string> => localHost.nft(script);
/** readSysctl reads a sysctl of this process's namespace (see {@link Host.readSysctl}). */
export const readSysctl = (key: string): Promise<string> => localHost.readSysctl(key);
/** writeSysctl writes a sysctl of this process's namespace (see {@link Host.writeSysctl}). */
export const writeSysctl = (key: string, value: string): Promise<void> => localHost.writeSysctl(key, value);
