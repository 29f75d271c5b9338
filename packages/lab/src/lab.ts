import { spawn as spawnChild } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LabProcess, type RunOptions, type RunResult, run, runInNetns, waitFor } from '@onehost/testkit';
import {
  DEFAULT_NFS,
  type MountdPorts,
  mountdPorts,
  type NfsServer,
  type NfsSpec,
  startGanesha,
  startNfs,
  stopGanesha,
} from './nfs.js';
import { hostsOf, type LabHost, type LabPlan, makePlan, namespacesOf } from './plan.js';
import { buildRouter, type RouterLayout, routerLayout } from './router.js';
import { type Daemon, startIperf3, startNginx } from './services.js';
import { type LabState, listStates, readState, runDirOf, writeState } from './state.js';
import { alive, destroyByPrefix, listNamespaces, pidsIn, stopPids } from './teardown.js';

/** Options for {@link createLab}. */
export interface LabOptions {
  /** Lab id (1-12 of a-z0-9). Default: a random id, so parallel test runs never collide. */
  id?: string;
  /** Number of nodes, 1-9 (default 3). */
  nodes?: number;
  /** Number of outside clients, 1-9 (default 2). */
  clients?: number;
  /** Start nginx and iperf3 on the nodes and nginx :8080 on the gateway host (default true). */
  services?: boolean;
  /**
   * NFS servers (rpcbind + nfs-ganesha, NFSv3) to start on nodes: `true` for {@link DEFAULT_NFS} (n1
   * exports /srv/projects with a random MOUNT port, n2 /srv/home with MOUNT port 20050). Default none.
   */
  nfs?: boolean | readonly NfsSpec[];
  /**
   * IPv6 on the outside (default false): the clients' and the gateway host's outside interfaces get their
   * addresses of `plan.ipv6`, without generated link-locals or DAD, so nothing talks IPv6 unasked.
   * Everything else keeps IPv6 off; onehost turns it on where it puts its IPv6 addresses.
   */
  ipv6?: boolean;
  /** Runtime directory (configs, pid files, logs, state). Default `/run/onehost-lab/<id>`. */
  runDir?: string;
  /**
   * Whether this process owns the lab (default true): an owned lab whose owner died is removed by the next
   * createLab. The CLI passes false: its lab lives until `down`.
   */
  owned?: boolean;
}

/** Ports of the services the lab starts. */
export const SERVICE_PORTS = {
  nodeHttp: 80,
  /** the nodes' nginx answers here too: tests give other functions entries of their own on them */
  nodeHttpMore: [8091, 8092, 8093],
  nodeIperf3: 5201,
  gatewayHttp: 8080,
} as const;
/** every port the nodes' nginx listens on */
const NODE_HTTP_PORTS = [SERVICE_PORTS.nodeHttp, ...SERVICE_PORTS.nodeHttpMore];

/** LabStatus says what of a lab exists right now. */
export interface LabStatus {
  id: string;
  prefix: string;
  /** True when every namespace exists and every recorded daemon runs. */
  healthy: boolean;
  namespaces: Array<{ name: string; present: boolean }>;
  daemons: Array<Daemon & { alive: boolean }>;
}

/** A host given by name (c1, gw, n1 ...) or as the {@link LabHost} itself. */
export type HostRef = string | LabHost;

/**
 * Lab is a running lab of network namespaces: outside clients, a gateway host and nodes (see plan.ts for
 * the picture). It stops what it started and deletes its namespaces in {@link Lab.cleanup}.
 */
export class Lab {
  readonly id: string;
  readonly prefix: string;
  readonly runDir: string;
  /** Namespace names by role. */
  readonly names: { switch: string; gateway: string; clients: string[]; nodes: string[] };
  /** Addresses by role (nodes and clients in order n1, n2 ... / c1, c2 ...). */
  readonly addresses: {
    vip: string;
    gateway: { outside: string; inside: string };
    clients: string[];
    nodes: string[];
    /** the outside's IPv6 addresses (in use when the lab was made with `ipv6`) */
    ipv6: { vip: string; gateway: string; clients: string[] };
  };
  private readonly processes: LabProcess[] = [];
  private cleaned: Promise<void> | undefined;

  constructor(
    readonly plan: LabPlan,
    private state: LabState,
  ) {
    this.id = plan.id;
    this.prefix = plan.prefix;
    this.runDir = state.runDir;
    this.names = {
      switch: plan.switchNetns,
      gateway: plan.gateway.netns,
      clients: plan.clients.map((h) => h.netns),
      nodes: plan.nodes.map((h) => h.netns),
    };
    this.addresses = {
      vip: plan.vip,
      gateway: { outside: plan.gateway.outside, inside: plan.gateway.inside },
      clients: plan.clients.map((h) => h.address),
      nodes: plan.nodes.map((h) => h.address),
      ipv6: { vip: plan.ipv6.vip, gateway: plan.ipv6.gateway, clients: [...plan.ipv6.clients] },
    };
  }

  /** hosts lists clients, the gateway and the nodes. */
  get hosts(): LabHost[] {
    return hostsOf(this.plan);
  }

  /** host looks a host up by name (c1, gw, n1 ...). Throws for an unknown name. */
  host(ref: HostRef): LabHost {
    if (typeof ref !== 'string') return ref;
    const found = this.hosts.find((h) => h.name === ref);
    if (!found) throw new Error(`lab ${this.id} has no host ${ref}`);
    return found;
  }

  /** exec runs a command inside a host's namespace. Throws when it fails (see testkit `run`). */
  exec(host: HostRef, file: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    return runInNetns(this.host(host).netns, file, args, options);
  }

  /** spawn starts a command inside a host's namespace as a child of this process; cleanup stops it. */
  spawn(host: HostRef, file: string, args: readonly string[]): LabProcess {
    this.assertOpen();
    const h = this.host(host);
    const proc = new LabProcess('ip', ['netns', 'exec', h.netns, file, ...args], `${file} in ${h.name}`);
    this.processes.push(proc);
    return proc;
  }

  /**
   * startIn starts a detached daemon in a host's namespace (it outlives this process, e.g. for the CLI),
   * with its output in `<runDir>/<host>/<name>.log`, and records it in the state file so `down` stops it.
   * Throws when it cannot be started.
   */
  async startIn(host: HostRef, name: string, file: string, args: readonly string[]): Promise<Daemon> {
    this.assertOpen();
    const h = this.host(host);
    const dir = join(this.runDir, h.name);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const log = join(dir, `${name.replace(/[^a-zA-Z0-9._-]/g, '_')}.log`);
    const fd = openSync(log, 'a');
    try {
      // `ip netns exec` execs the command after setns: the child's pid is the daemon's pid.
      const child = spawnChild('ip', ['netns', 'exec', h.netns, file, ...args], {
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      child.unref();
      if (child.pid === undefined) throw new Error(`${name}: could not start ${file} in ${h.name}`);
      const daemon = { name, host: h.name, pid: child.pid, log };
      await this.record(daemon);
      return daemon;
    } finally {
      closeSync(fd);
    }
  }

  /** daemons lists the detached daemons this lab recorded (services and startIn). */
  daemons(): Daemon[] {
    return [...this.state.daemons];
  }

  /** status checks which namespaces exist and which recorded daemons still run. */
  async status(): Promise<LabStatus> {
    return statusOf(this.state);
  }

  /** router is the router and its gateway hosts (addRouter), or undefined for the single-gateway lab. */
  get router(): RouterLayout | undefined {
    return this.state.router;
  }

  /**
   * addRouter puts a router (203.0.113.1 on the clients' bridge) in front of `gateways` gateway hosts
   * (the lab's own and gw2 …, each with its own link to the router, all on the interconnect): see
   * router.ts. `ipv6` (a lab made with `ipv6` only): the IPv6 plan too. FRR is the caller's to start
   * (frrConfigs). Recorded before it is built.
   */
  async addRouter(gateways: number, ipv6 = false): Promise<RouterLayout> {
    this.assertOpen();
    const layout = routerLayout(this.plan, gateways);
    this.state = { ...this.state, router: layout };
    await writeState(this.state);
    await buildRouter(this.plan, layout, ipv6);
    return layout;
  }

  /** nfs lists the NFS servers the lab runs (see LabOptions.nfs). */
  get nfs(): NfsServer[] {
    return [...(this.state.nfs ?? [])];
  }

  /** nfsOf returns node `node`'s NFS server. Throws when it has none. */
  nfsOf(node: string): NfsServer {
    const s = this.state.nfs?.find((x) => x.node === node);
    if (!s) throw new Error(`lab ${this.id}: ${node} runs no NFS server`);
    return s;
  }

  /** startNfs starts an NFS server on a node (rpcbind + nfs-ganesha, see nfs.ts) and records it. */
  async startNfs(spec: NfsSpec): Promise<NfsServer> {
    this.assertOpen();
    const h = this.host(spec.node);
    if (h.role !== 'node') throw new Error(`NFS servers run on nodes, not on ${h.name}`);
    const { server, daemons } = await startNfs(h.netns, spec, join(this.runDir, h.name, 'nfs'), this.runDir);
    this.state = {
      ...this.state,
      nfs: [...(this.state.nfs ?? []).filter((x) => x.node !== spec.node), server],
    };
    for (const d of daemons) await this.record(d);
    return server;
  }

  /** mountdPorts asks a node's rpcbind where its mountd listens (MOUNT v3, per transport). */
  mountdPorts(node: string): Promise<MountdPorts> {
    return mountdPorts(this.host(node).netns);
  }

  /**
   * restartGanesha stops a node's nfs-ganesha (SIGTERM: it unregisters from rpcbind) and starts it
   * again in the same namespaces; resolves with its new mountd ports. Without MNT_Port they are new
   * random ones.
   */
  async restartGanesha(node: string): Promise<MountdPorts> {
    this.assertOpen();
    const s = this.nfsOf(node);
    await stopGanesha(s);
    const pid = await startGanesha(this.host(node).netns, s, join(this.runDir, node, 'nfs'));
    const server = { ...s, ganeshaPid: pid };
    this.state = {
      ...this.state,
      nfs: (this.state.nfs ?? []).map((x) => (x.node === node ? server : x)),
      daemons: this.state.daemons.map((d) => (d.pid === s.ganeshaPid ? { ...d, pid } : d)),
    };
    await writeState(this.state);
    return this.mountdPorts(node);
  }

  /** stopNginx stops a node's nginx (SIGTERM, by its pid): its port stops answering. */
  async stopNginx(node: string): Promise<void> {
    this.assertOpen();
    const d = this.state.daemons.find((x) => x.name === `nginx ${node}`);
    if (d === undefined) throw new Error(`lab ${this.id}: no nginx on ${node}`);
    await stopPids([d.pid]);
    this.state = { ...this.state, daemons: this.state.daemons.filter((x) => x !== d) };
    await writeState(this.state);
  }

  /** startNginx starts a node's nginx again (after stopNginx), as the lab first started it. */
  async startNginx(node: string): Promise<void> {
    this.assertOpen();
    const h = this.host(node);
    await this.record(await startNginx(h.netns, node, join(this.runDir, node, 'nginx'), NODE_HTTP_PORTS));
  }

  /**
   * rebootGateway is the gateway host's reboot: every process in its namespace ends (SIGTERM, then
   * SIGKILL: the lab's nginx, and whatever the caller started there, e.g. onehost-gateway), the namespace
   * is deleted with all its kernel state (links, addresses, routes, rules, nftables), and made again as
   * the lab first made it (its interfaces with their MACs), with its nginx. Files (the run directory: state stores, journals) survive, as
   * a disk does.
   */
  async rebootGateway(): Promise<void> {
    this.assertOpen();
    const gw = this.plan.gateway;
    // a machine keeps its NICs' MACs across a reboot (the neighbours' ARP caches stay right): so do ours
    const macs = JSON.parse((await run('ip', ['-n', gw.netns, '-j', 'link', 'show'])).stdout) as {
      ifname: string;
      address: string;
    }[];
    const macOf = (iface: string) => macs.find((l) => l.ifname === iface)?.address;
    await stopPids(await pidsIn(gw.netns));
    await run('ip', ['netns', 'del', gw.netns]);
    // the kernel takes the old namespace down in the background: its veths' switch ends go with it, and
    // until they have, making them again fails (EEXIST, seen once in CI)
    await waitFor(
      async () => {
        const { stdout } = await run('ip', ['-n', this.plan.switchNetns, '-o', 'link', 'show']);
        return !/ gw-[oi]@/.test(stdout);
      },
      { what: "the old gateway host's links gone from the switch", timeoutMs: 10_000, intervalMs: 20 },
    );
    await addNamespace(gw.netns);
    await ipBatch(this.plan.switchNetns, gatewayLinks(this.plan));
    await ipBatch(
      gw.netns,
      [gw.outsideIface, gw.insideIface].flatMap((i) => {
        const mac = macOf(i);
        return mac === undefined ? [] : [`link set ${i} address ${mac}`];
      }),
    );
    await addressGateway(this.plan);
    this.state = { ...this.state, daemons: this.state.daemons.filter((d) => alive(d.pid)) };
    await this.record(
      await startNginx(gw.netns, gw.name, join(this.runDir, 'gw', 'nginx'), SERVICE_PORTS.gatewayHttp),
    );
  }

  /** stopGanesha stops a node's nfs-ganesha (SIGTERM: it unregisters from rpcbind); startGanesha starts it. */
  async stopGanesha(node: string): Promise<void> {
    this.assertOpen();
    await stopGanesha(this.nfsOf(node));
  }

  /** startGanesha starts a node's nfs-ganesha again after stopGanesha; resolves with its mountd ports. */
  async startGanesha(node: string): Promise<MountdPorts> {
    this.assertOpen();
    const s = this.nfsOf(node);
    const pid = await startGanesha(this.host(node).netns, s, join(this.runDir, node, 'nfs'));
    this.state = {
      ...this.state,
      nfs: (this.state.nfs ?? []).map((x) => (x.node === node ? { ...s, ganeshaPid: pid } : x)),
      daemons: this.state.daemons.map((d) => (d.pid === s.ganeshaPid ? { ...d, pid } : d)),
    };
    await writeState(this.state);
    return this.mountdPorts(node);
  }

  /**
   * cleanup stops child processes and daemons (by pid), deletes every namespace with this lab's prefix
   * and the runtime directory. Safe to call twice. Throws an AggregateError naming what it left behind.
   */
  cleanup(): Promise<void> {
    if (!this.cleaned) {
      this.cleaned = (async () => {
        await Promise.all(this.processes.map((p) => p.stop()));
        await stopPids(this.state.daemons.map((d) => d.pid)).catch(() => undefined);
        await destroyByPrefix(this.prefix, this.runDir);
      })();
    }
    return this.cleaned;
  }

  /** record adds a daemon to the state file. */
  async record(daemon: Daemon): Promise<void> {
    this.state = { ...this.state, daemons: [...this.state.daemons, daemon] };
    await writeState(this.state);
  }

  private assertOpen(): void {
    if (this.cleaned) throw new Error(`lab ${this.id} was already cleaned up`);
  }
}

/** statusOf checks a recorded lab against the kernel and the process table. */
export async function statusOf(state: LabState): Promise<LabStatus> {
  const present = new Set(await listNamespaces(state.prefix));
  const namespaces = namespacesOf(state.plan).map((name) => ({ name, present: present.has(name) }));
  const daemons = state.daemons.map((d) => ({ ...d, alive: alive(d.pid) }));
  return {
    id: state.id,
    prefix: state.prefix,
    healthy: namespaces.every((n) => n.present) && daemons.every((d) => d.alive),
    namespaces,
    daemons,
  };
}

function randomId(): string {
  return `t${randomBytes(5).readUIntBE(0, 5).toString(36).padStart(8, '0').slice(-8)}`;
}

/** batch runs `ip -n <netns> -batch -` with one command per line. Throws naming the failing line. */
async function ipBatch(netns: string, lines: string[]): Promise<void> {
  await run('ip', ['-n', netns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

async function sysctls(netns: string, settings: Record<string, string | number>): Promise<void> {
  const args = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  await runInNetns(netns, 'sysctl', ['-qw', ...args]);
}

async function addNamespace(ns: string): Promise<void> {
  await run('ip', ['netns', 'add', ns]);
  // IPv4-only lab: no IPv6 link-local chatter in captures and counters.
  await sysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

/** veth lines (for the switch namespace): a port on `bridge` whose peer is `iface` in `netns`. */
function veth(port: string, bridge: string, mtu: number, netns: string, iface: string): string[] {
  return [
    `link add ${port} mtu ${mtu} type veth peer name ${iface} mtu ${mtu} netns ${netns}`,
    `link set ${port} master ${bridge} up`,
  ];
}

/** gatewayLinks are the switch namespace's lines that connect the gateway host to both bridges. */
function gatewayLinks(plan: LabPlan): string[] {
  const { outside: out, interconnect: ic, gateway: gw } = plan;
  return [
    ...veth('gw-o', out.bridge, out.mtu, gw.netns, gw.outsideIface),
    ...veth('gw-i', ic.bridge, ic.mtu, gw.netns, gw.insideIface),
  ];
}

/** addressGateway gives the gateway host its addresses and makes it a router. */
async function addressGateway(plan: LabPlan): Promise<void> {
  const { outside: out, interconnect: ic, gateway: gw } = plan;
  await ipBatch(gw.netns, [
    `addr add ${gw.outside}/${out.prefixLength} dev ${gw.outsideIface}`,
    `addr add ${gw.inside}/${ic.prefixLength} dev ${gw.insideIface}`,
    `link set ${gw.outsideIface} up`,
    `link set ${gw.insideIface} up`,
  ]);
  await sysctls(gw.netns, { 'net.ipv4.ip_forward': 1 });
}

/**
 * outsideIpv6 gives the clients and the gateway host's outside interface their IPv6 addresses: IPv6 on
 * for those interfaces only, no generated link-local (addr_gen_mode 1: no DAD, router solicitations or
 * MLD reports, RFC 4862 §5.4, RFC 4861 §6.3.7), addresses nodad. Clients find the IPv6 cluster address
 * on their link through the gateway's proxy NDP, so they get no route for it.
 */
async function outsideIpv6(plan: LabPlan): Promise<void> {
  const six = plan.ipv6;
  const on = async (netns: string, iface: string, address: string) => {
    await sysctls(netns, {
      [`net.ipv6.conf.${iface}.addr_gen_mode`]: 1,
      [`net.ipv6.conf.${iface}.accept_dad`]: 0,
      [`net.ipv6.conf.${iface}.disable_ipv6`]: 0,
    });
    await ipBatch(netns, [`addr add ${address}/${six.prefixLength} dev ${iface} nodad`]);
  };
  await Promise.all([
    ...plan.clients.map((c, i) => on(c.netns, c.iface, six.clients[i]!)),
    on(plan.gateway.netns, plan.gateway.outsideIface, six.gateway),
  ]);
}

async function build(plan: LabPlan): Promise<void> {
  await Promise.all(namespacesOf(plan).map(addNamespace));
  const { outside: out, interconnect: ic, gateway: gw } = plan;
  // Every veth is created from the switch namespace straight into its peer's namespace.
  await ipBatch(plan.switchNetns, [
    `link add ${out.bridge} mtu ${out.mtu} type bridge`,
    `link add ${ic.bridge} mtu ${ic.mtu} type bridge`,
    `link set ${out.bridge} up`,
    `link set ${ic.bridge} up`,
    ...plan.clients.flatMap((c) => veth(c.name, out.bridge, out.mtu, c.netns, c.iface)),
    ...gatewayLinks(plan),
    ...plan.nodes.flatMap((n) => veth(n.name, ic.bridge, ic.mtu, n.netns, n.iface)),
  ]);
  await Promise.all([
    ...plan.clients.map((c) =>
      ipBatch(c.netns, [
        `addr add ${c.address}/${out.prefixLength} dev ${c.iface}`,
        `link set ${c.iface} up`,
        ...plan.clientRoutes.map((r) => `route add ${r} via ${gw.outside}`),
      ]),
    ),
    addressGateway(plan),
    ...plan.nodes.map((n) =>
      ipBatch(n.netns, [
        `addr add ${n.address}/${ic.prefixLength} dev ${n.iface}`,
        `link set ${n.iface} up`,
        `route add default via ${gw.inside}`,
      ]),
    ),
  ]);
}

async function startServices(lab: Lab, ipv6: boolean): Promise<void> {
  const { plan } = lab;
  const started = await Promise.all([
    ...plan.nodes.flatMap((n) => [
      startNginx(n.netns, n.name, join(lab.runDir, n.name, 'nginx'), NODE_HTTP_PORTS, ipv6),
      startIperf3(n.netns, n.name, join(lab.runDir, n.name), SERVICE_PORTS.nodeIperf3),
    ]),
    startNginx(
      plan.gateway.netns,
      plan.gateway.name,
      join(lab.runDir, 'gw', 'nginx'),
      SERVICE_PORTS.gatewayHttp,
    ),
  ]);
  for (const daemon of started) await lab.record(daemon);
}

/**
 * sweepOrphans removes owned labs whose owner process has died (a test runner killed mid-run), so
 * leftovers never pile up. CLI labs (no owner) are left alone.
 */
export async function sweepOrphans(): Promise<string[]> {
  const removed: string[] = [];
  for (const state of await listStates()) {
    if (state.ownerPid === null || alive(state.ownerPid)) continue;
    await destroyByPrefix(state.prefix, state.runDir).catch(() => undefined);
    removed.push(state.id);
  }
  return removed;
}

/**
 * createLab builds a lab: namespaces, bridges, veths, addresses and routes, then (unless
 * `services: false`) nginx on every node (:80, page naming the node) and on the gateway host (:8080),
 * and iperf3 servers on the nodes. The gateway forwards between the outside and the interconnect by plain
 * routing; the onehost gateway and agents are started by the caller. Nothing is created in the host's
 * namespace. A lab with the same id that already exists is removed first. Throws (after removing what it
 * built) when a step fails.
 */
export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const id = options.id ?? randomId();
  const plan = makePlan({ id, nodes: options.nodes, clients: options.clients });
  const runDir = options.runDir ?? runDirOf(id);
  await sweepOrphans();
  await destroyByPrefix(plan.prefix, runDir);
  const state: LabState = {
    version: 1,
    id,
    prefix: plan.prefix,
    runDir,
    plan,
    daemons: [],
    ownerPid: options.owned === false ? null : process.pid,
    createdAt: new Date().toISOString(),
  };
  // Recorded before anything exists, so a crash half-way can still be cleaned up by prefix.
  await writeState(state);
  const lab = new Lab(plan, state);
  try {
    await build(plan);
    if (options.ipv6 === true) await outsideIpv6(plan);
    if (options.services !== false) await startServices(lab, options.ipv6 === true);
    const nfs = options.nfs === true ? DEFAULT_NFS : options.nfs === false ? [] : (options.nfs ?? []);
    // One after the other: each records itself in the state file.
    for (const spec of nfs) await lab.startNfs(spec);
  } catch (err) {
    await lab.cleanup().catch(() => undefined);
    throw err;
  }
  return lab;
}

/** openLab attaches to a lab recorded under `runDir` (default for `id`); undefined when none is recorded. */
export async function openLab(id: string, runDir = runDirOf(id)): Promise<Lab | undefined> {
  const state = await readState(runDir);
  if (!state) return undefined;
  return new Lab(state.plan, state);
}

/**
 * destroyLab removes lab `id` whether or not its state file survived: processes in its namespaces,
 * the namespaces (found by prefix) and the runtime directory. Idempotent.
 */
export async function destroyLab(id: string, runDir = runDirOf(id)): Promise<void> {
  const state = existsSync(runDir) ? await readState(runDir).catch(() => undefined) : undefined;
  if (state) await stopPids(state.daemons.map((d) => d.pid)).catch(() => undefined);
  await destroyByPrefix(state?.prefix ?? makePlan({ id }).prefix, runDir);
}
