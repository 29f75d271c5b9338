import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabProcess, run, runInNetns, waitFor } from '@onehost/testkit';

/**
 * FRR (Debian's frr 8.4) in a lab namespace: zebra, bgpd and bfdd of one instance, each given its own
 * config file, pid file, zserv socket and vty socket directory on the command line, so several
 * instances run side by side (one per namespace) without /etc/frr or /run/frr. Each daemon runs in the
 * foreground as a child of this process, tracked by its pid and ended by it.
 */

const FRR_LIB = '/usr/lib/frr';
const DAEMONS = ['zebra', 'bfdd', 'bgpd'] as const;
export type FrrDaemon = (typeof DAEMONS)[number];

/** BfdTimers: a session is down after `multiplier` missed packets sent every `intervalMs`. */
export interface BfdTimers {
  intervalMs: number;
  multiplier: number;
}

/** FRR_FAST_BFD: 100 ms × 3, a dead peer is found in 300 ms. */
export const FRR_FAST_BFD: BfdTimers = { intervalMs: 100, multiplier: 3 };

/** BgpPeer is one eBGP neighbour. */
export interface BgpPeer {
  address: string;
  asn: number;
}

/** RouterBgpOptions: the router in front of the gateways. */
export interface RouterBgpOptions {
  asn: number;
  routerId: string;
  /** the gateway hosts */
  peers: BgpPeer[];
  /**
   * prefixes (CIDR) the router accepts from the gateways, with `le 32` (IPv6: `le 128`, in the IPv6
   * unicast family of the same sessions): the cluster addresses' range
   */
  accept: string[];
  /** ECMP paths per prefix (default 16) */
  maximumPaths?: number;
  bfd?: BfdTimers;
}

/** GatewayBgpOptions: a gateway host's bgpd, which announces what the gateway tells it to. */
export interface GatewayBgpOptions {
  asn: number;
  routerId: string;
  router: BgpPeer;
  /** prefixes (CIDR, either family) it may announce: the cluster addresses (the gateway adds `network`s) */
  announce: string[];
  bfd?: BfdTimers;
}

/** FrrConfig is the text of each daemon's config file. */
export type FrrConfig = Record<FrrDaemon, string>;

function bfdConf(name: string, t: BfdTimers): string {
  return [
    'bfd',
    ` profile ${name}`,
    `  detect-multiplier ${t.multiplier}`,
    `  receive-interval ${t.intervalMs}`,
    `  transmit-interval ${t.intervalMs}`,
    ' exit',
    'exit',
    '',
  ].join('\n');
}

function neighbour(p: BgpPeer): string[] {
  return [
    ` neighbor ${p.address} remote-as ${p.asn}`,
    ` neighbor ${p.address} bfd profile fast`,
    // the lab's sessions come up in a second or two, not after the default 120 s retry
    ` neighbor ${p.address} timers connect 1`,
    ` neighbor ${p.address} advertisement-interval 0`,
  ];
}

const isV6 = (cidr: string) => cidr.includes(':');

/**
 * matching: prefix lists `name` (IPv4, `le 32`) and `name6` (IPv6, `le 128`) of `cidrs`, and route map
 * `map` permitting what they list (one clause per family).
 */
function matching(name: string, map: string, cidrs: string[]): string[] {
  const v6 = cidrs.filter(isV6);
  return [
    ...cidrs
      .filter((c) => !isV6(c))
      .map((c, i) => `ip prefix-list ${name} seq ${(i + 1) * 5} permit ${c} le 32`),
    ...v6.map((c, i) => `ipv6 prefix-list ${name}6 seq ${(i + 1) * 5} permit ${c} le 128`),
    `route-map ${map} permit 10`,
    ` match ip address prefix-list ${name}`,
    'exit',
    ...(v6.length > 0
      ? [`route-map ${map} permit 20`, ` match ipv6 address prefix-list ${name}6`, 'exit']
      : []),
  ];
}

/**
 * families: the sessions' address families, each with `lines` (IPv6 too when `ipv6`: RFC 4760 NLRI over
 * the IPv4 sessions; FRR takes the link's global IPv6 address as the next hop).
 */
function families(ipv6: boolean, lines: (af: 'ipv4' | 'ipv6') => string[]): string[] {
  return (['ipv4', ...(ipv6 ? ['ipv6' as const] : [])] as const).flatMap((af) => [
    ` address-family ${af} unicast`,
    ...lines(af),
    ' exit-address-family',
  ]);
}

/** routerConfig: eBGP to every gateway host with BFD, ECMP over them, only cluster prefixes taken. */
export function routerConfig(o: RouterBgpOptions): FrrConfig {
  const bgpd = [
    ...matching('CLUSTER', 'FROM-GATEWAY', o.accept),
    'route-map TO-GATEWAY deny 10',
    'exit',
    `router bgp ${o.asn}`,
    ` bgp router-id ${o.routerId}`,
    // each gateway host has its own AS: paths differ only in that AS, and are still equal
    ' bgp bestpath as-path multipath-relax',
    ...o.peers.flatMap(neighbour),
    ...families(o.accept.some(isV6), (af) => [
      `  maximum-paths ${o.maximumPaths ?? 16}`,
      ...o.peers.flatMap((p) => [
        ...(af === 'ipv6' ? [`  neighbor ${p.address} activate`] : []),
        `  neighbor ${p.address} route-map FROM-GATEWAY in`,
        `  neighbor ${p.address} route-map TO-GATEWAY out`,
      ]),
    ]),
    'exit',
    '',
  ].join('\n');
  // Plain multipath routes, not kernel nexthop objects: FRR 8.4 (Debian 12) left the kernel's route with
  // one next hop after a gateway's link went down and up again, while its own RIB listed both.
  const zebra = 'hostname router\nno zebra nexthop kernel enable\n';
  return { zebra, bfdd: bfdConf('fast', o.bfd ?? FRR_FAST_BFD), bgpd };
}

/**
 * gatewayHostConfig: eBGP to the router with BFD; announces nothing until the gateway adds a `network`
 * (apps/gateway announce.ts), and only cluster prefixes; takes no routes from the router.
 */
export function gatewayHostConfig(o: GatewayBgpOptions): FrrConfig {
  const r = o.router.address;
  const bgpd = [
    ...matching('CLUSTER', 'TO-ROUTER', o.announce),
    'route-map FROM-ROUTER deny 10',
    'exit',
    `router bgp ${o.asn}`,
    ` bgp router-id ${o.routerId}`,
    // the gateway decides: a `network` it adds is announced whether or not the RIB holds the prefix
    ' no bgp network import-check',
    ...neighbour(o.router),
    ...families(o.announce.some(isV6), (af) => [
      ...(af === 'ipv6' ? [`  neighbor ${r} activate`] : []),
      `  neighbor ${r} route-map TO-ROUTER out`,
      `  neighbor ${r} route-map FROM-ROUTER in`,
    ]),
    'exit',
    '',
  ].join('\n');
  return { zebra: 'hostname gateway\n', bfdd: bfdConf('fast', o.bfd ?? FRR_FAST_BFD), bgpd };
}

/** FrrInstance is one running FRR: its daemons by name, its vty socket directory. */
export class FrrInstance {
  private stopped: Promise<void> | undefined;

  constructor(
    readonly netns: string,
    readonly dir: string,
    readonly daemons: Map<FrrDaemon, LabProcess>,
  ) {}

  /** vtySocket is the directory of the daemons' vty sockets (vtysh --vty_socket, the gateway's announce). */
  get vtySocket(): string {
    return this.dir;
  }

  /** pids of the daemons that run. */
  get pids(): number[] {
    return [...this.daemons.values()].flatMap((p) => (p.running ? [p.pid] : []));
  }

  /** vtysh runs show or config commands (each one -c) in this instance; resolves with the output. */
  async vtysh(...commands: string[]): Promise<string> {
    const args = ['--vty_socket', this.dir, ...commands.flatMap((c) => ['-c', c])];
    return (await runInNetns(this.netns, 'vtysh', args, { timeoutMs: 10_000 })).stdout;
  }

  /** json runs one `show … json` command and parses it. */
  async json<T = unknown>(command: string): Promise<T> {
    return JSON.parse(await this.vtysh(command)) as T;
  }

  /** established waits until every BGP neighbour is Established and its BFD session up. */
  async established(timeoutMs = 20_000): Promise<void> {
    await waitFor(
      async () => {
        const s = await this.json<{ ipv4Unicast?: { peers?: Record<string, { state: string }> } }>(
          'show bgp summary json',
        );
        const peers = Object.values(s.ipv4Unicast?.peers ?? {});
        if (peers.length === 0 || peers.some((p) => p.state !== 'Established')) return false;
        const bfd = await this.json<Array<{ status: string }>>('show bfd peers json');
        return bfd.length >= peers.length && bfd.every((b) => b.status === 'up');
      },
      { what: `BGP and BFD up in ${this.netns}`, timeoutMs, intervalMs: 100 },
    );
  }

  /** kill ends every daemon with SIGKILL (a crashed router host: no BGP notification, BFD goes silent). */
  async kill(): Promise<void> {
    for (const p of this.daemons.values()) if (p.running) process.kill(p.pid, 'SIGKILL');
    await Promise.all([...this.daemons.values()].map((p) => p.whenExited()));
  }

  /**
   * freeze stops every daemon (SIGSTOP): a hung host whose TCP sessions stay open, so only BFD finds it
   * dead. thaw (SIGCONT) lets them run again.
   */
  freeze(): void {
    for (const p of this.daemons.values()) if (p.running) process.kill(p.pid, 'SIGSTOP');
  }

  thaw(): void {
    for (const p of this.daemons.values()) if (p.running) process.kill(p.pid, 'SIGCONT');
  }

  /** output is what the daemons printed (for a failing test). */
  output(): string {
    return [...this.daemons].map(([n, p]) => `--- ${n} ---\n${p.output().slice(-2000)}`).join('\n');
  }

  /** stop ends the daemons by pid (bgpd first: it says goodbye to its peers) and removes the directory. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.thaw();
      for (const d of ['bgpd', 'bfdd', 'zebra'] as const) await this.daemons.get(d)?.stop(2000);
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopped;
  }
}

/** frrUser: FRR's daemons drop to this user (Debian's `frr`, in group frrvty), which must own the dir. */
async function frrIds(): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('frr:'));
  if (line === undefined) throw new Error('no user frr: is the Debian package frr installed?');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** daemonArgs: one daemon's command line (foreground; its files in `dir`; no TCP vty). */
function daemonArgs(netns: string, dir: string, d: FrrDaemon): string[] {
  return [
    'netns',
    'exec',
    netns,
    join(FRR_LIB, d),
    '-f',
    join(dir, `${d}.conf`),
    '-i',
    join(dir, `${d}.pid`),
    '-z',
    join(dir, 'zserv.api'),
    '--vty_socket',
    dir,
    // no TCP vty: only the socket directory reaches the daemons
    '-P',
    '0',
    '--log',
    'stdout',
  ];
}

async function prepare(dir: string, config: FrrConfig): Promise<void> {
  const { uid, gid } = await frrIds();
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chown(dir, uid, gid);
  for (const d of DAEMONS) await writeFile(join(dir, `${d}.conf`), config[d]);
}

/** answering waits until daemon `d` answers on its vty socket; throws when `alive` says it exited. */
async function answering(
  netns: string,
  dir: string,
  d: FrrDaemon,
  alive: () => string | null,
): Promise<void> {
  await waitFor(
    async () => {
      const dead = alive();
      if (dead !== null) throw new Error(`${d} exited: ${dead}`);
      await run('ip', ['netns', 'exec', netns, 'vtysh', '--vty_socket', dir, '-d', d, '-c', 'show version']);
      return true;
    },
    { what: `${d} answering in ${netns}`, timeoutMs: 10_000, intervalMs: 50 },
  );
}

/**
 * startFrr starts zebra, then bfdd and bgpd, in `netns` with `config`, everything in `dir` (made, owned
 * by the frr user; removed by stop), as children of this process. Resolves once each daemon answers on
 * its vty socket. Throws (after stopping what it started) when one does not.
 */
export async function startFrr(netns: string, dir: string, config: FrrConfig): Promise<FrrInstance> {
  await prepare(dir, config);
  const daemons = new Map<FrrDaemon, LabProcess>();
  const frr = new FrrInstance(netns, dir, daemons);
  try {
    for (const d of DAEMONS) {
      const p = new LabProcess('ip', daemonArgs(netns, dir, d), `${d} in ${netns}`);
      daemons.set(d, p);
      // bfdd and bgpd connect to zebra's socket: zebra answers first
      await answering(netns, dir, d, () => (p.running ? null : p.output().slice(-1000)));
    }
  } catch (err) {
    await frr.stop();
    throw err;
  }
  return frr;
}

/**
 * startFrrDetached starts the same daemons detached (they outlive this process: the CLI's lab), each
 * logging to `dir/<daemon>.log`; resolves with their pids once each answers. The caller records the
 * pids (the lab's state) so `down` ends them.
 */
export async function startFrrDetached(
  netns: string,
  dir: string,
  config: FrrConfig,
): Promise<Array<{ daemon: FrrDaemon; pid: number; log: string }>> {
  await prepare(dir, config);
  const started: Array<{ daemon: FrrDaemon; pid: number; log: string }> = [];
  for (const d of DAEMONS) {
    const log = join(dir, `${d}.log`);
    const fd = openSync(log, 'a');
    try {
      const child = spawn('ip', daemonArgs(netns, dir, d), { detached: true, stdio: ['ignore', fd, fd] });
      child.unref();
      if (child.pid === undefined) throw new Error(`could not start ${d} in ${netns}`);
      started.push({ daemon: d, pid: child.pid, log });
      const pid = child.pid;
      await answering(netns, dir, d, () => (pidAlive(pid) ? null : `see ${log}`));
    } finally {
      closeSync(fd);
    }
  }
  return started;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
