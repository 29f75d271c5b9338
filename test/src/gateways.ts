import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type ClusterCa, issueCertificate } from '@onehost/control';
import {
  type EtcdCluster,
  type FrrInstance,
  frrConfigs,
  frrDirOf,
  type Lab,
  makePlan,
  routerLayout,
  startEtcdCluster,
  startFrr,
} from '@onehost/lab';
import { LabProcess, run, runInNetns, waitFor } from '@onehost/testkit';
import { type Cluster, type ClusterOptions, command, startCluster } from './cluster.js';

/**
 * Two gateways behind a real router, on the lab of startCluster: the lab's `addRouter(2)` (the router
 * at 203.0.113.1, the clients' next hop, each gateway host with a link of its own to it, gw2 on the
 * interconnect; packages/lab router.ts has the picture), FRR in the router and both gateway hosts
 * (frrConfigs: eBGP with BFD 100 ms × 3, maximum-paths, L4 multipath hash), and an etcd store in a
 * namespace of its own on the interconnect (db, 198.18.0.250), which both gateways share, so the second
 * knows the nodes that joined the first. Every gateway tells its host's bgpd to announce (`announce`).
 */

/** the addresses of the lab's router layout (they do not depend on the lab id) */
const LAYOUT = routerLayout(makePlan({ id: 'layout' }), 2);
export const ROUTER = LAYOUT.router;
export const GATEWAYS = LAYOUT.gateways;
/** the ECMP lab's etcd (one member, in a namespace of its own on the interconnect) */
export const ECMP_STORE = '198.18.0.250';
const STORE = ECMP_STORE;

async function sysctls(netns: string, settings: Record<string, string | number>): Promise<void> {
  await runInNetns(netns, 'sysctl', ['-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

export async function ipBatch(netns: string, lines: string[]): Promise<void> {
  await run('ip', ['-n', netns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/** Ecmp is the router, the second gateway host, the FRR instances and the etcd store. */
export class Ecmp {
  /** FRR by host: r, gw, gw2 */
  readonly frr = new Map<string, FrrInstance>();
  etcd: EtcdCluster | undefined;
  gw2: LabProcess | undefined;

  constructor(
    readonly lab: Lab,
    readonly router: string,
    readonly gw2Netns: string,
    readonly dbNetns: string,
  ) {}

  /** netns of gateway `i` (0: the lab's gateway host). */
  netnsOf(i: number): string {
    return i === 0 ? this.lab.names.gateway : this.gw2Netns;
  }

  /** nextHops lists the router's next hops for the (IPv6: `six`) cluster address (empty: not routed). */
  async nextHops(six = false): Promise<string[]> {
    const { stdout } = await run('ip', [
      '-n',
      this.router,
      six ? '-6' : '-4',
      'route',
      'show',
      six ? `${this.lab.addresses.ipv6.vip}/128` : `${this.lab.addresses.vip}/32`,
    ]);
    if (!six) return [...stdout.matchAll(/via (\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
    // IPv6 next hops are the gateway hosts' link-locals (FRR takes them over the global address of a
    // directly connected peer): named here by the link's gateway end
    return [...stdout.matchAll(/via \S+ dev (\S+)/g)]
      .map((m) => GATEWAYS.find((g) => `${g.name}-o` === m[1])?.outside6 ?? `? ${m[1]}`)
      .sort();
  }

  /** rxPackets: what gateway `i`'s outside interface received so far. */
  async rxPackets(i: number): Promise<number> {
    const { stdout } = await run('ip', ['-n', this.netnsOf(i), '-s', '-j', 'link', 'show', 'dev', 'eth0']);
    return (JSON.parse(stdout) as Array<{ stats64: { rx: { packets: number } } }>)[0]!.stats64.rx.packets;
  }

  /** startGateway2 starts the second onehost-gateway and waits for its ready line. */
  async startGateway2(dir: string): Promise<LabProcess> {
    const [file, ...pre] = command('onehost-gateway');
    const p = new LabProcess(
      'ip',
      ['netns', 'exec', this.gw2Netns, file, ...pre, '--config', join(dir, 'gateway2.yaml')],
      'onehost-gateway gw2',
    );
    this.gw2 = p;
    await p.waitForOutput('"msg":"ready"', 20_000);
    return p;
  }

  /** stop ends the second gateway, the FRR instances and etcd (the lab's cleanup removes the rest). */
  async stop(): Promise<void> {
    await this.gw2?.stop(5000);
    await Promise.all([...this.frr.values()].map((f) => f.stop()));
    await this.etcd?.stop();
  }
}

/** gatewayYaml turns the lab's gateway.yaml into gateway `i`'s: etcd store, both gateways, announce. */
export function gatewayYaml(yaml: string, i: number, frrDir: string): string {
  const g = GATEWAYS[i]!;
  const pki = i === 0 ? 'gw' : 'gw2';
  let y = yaml
    .replace(/^name: .*$/m, `name: ${g.name}`)
    .replace(
      /^interconnect: .*$/m,
      `interconnect: { interface: eth1, address: ${g.inside}, prefix: 198.18.0.0/15, mtu: 1600, gateways: [${GATEWAYS.map((x) => x.inside).join(', ')}] }`,
    )
    .replace(/^ {2}listen: .*$/m, `  listen: ${g.inside}:7443`)
    .replace(/^ {2}tls: .*$/m, `  tls: { ca: pki/ca.pem, cert: pki/${pki}.pem, key: pki/${pki}-key.pem }`)
    .replace(/^metrics: .*$/m, `metrics: ${g.inside}:9400`)
    .replace(/^host: .*$/m, `host: { state: gateway-${g.name}-host.json }`)
    .replace(
      /^ {2}store: .*$/m,
      [
        '  store:',
        '    etcd:',
        `      endpoints: [https://${STORE}:2379]`,
        `      tls: { ca: pki/ca.pem, cert: pki/${pki}.pem, key: pki/${pki}-key.pem }`,
        '      prefix: /onehost/ecmp/',
      ].join('\n'),
    );
  y += `\nannounce: { asn: ${g.asn}, vtySocket: ${frrDir}, withdrawGraceMs: 300, peers: [${g.router}] }\n`;
  // round robin and least-connections keep their node when the router moves a connection to the other
  y += 'flowSync: { port: 3780 }\n';
  return y;
}

/**
 * buildEcmp adds the router, the second gateway host and the store to `lab` (see the picture), starts
 * etcd and the three FRR instances (sessions up before it resolves), issues gw2's certificate and
 * writes both gateways' configurations (gateway.yaml, gateway2.yaml in `dir`) from `yaml` (the lab's).
 * `ipv6` (a lab made with `ipv6`, a `yaml` with the IPv6 cluster address): the router's IPv6 plan too.
 */
export async function buildEcmp(
  lab: Lab,
  ca: ClusterCa,
  dir: string,
  yaml: string,
  ipv6 = false,
): Promise<Ecmp> {
  const layout = await lab.addRouter(2, ipv6);
  const e = new Ecmp(lab, layout.router.netns, layout.gateways[1]!.netns, `${lab.prefix}db`);
  await run('ip', ['netns', 'add', e.dbNetns]);
  await sysctls(e.dbNetns, { 'net.ipv6.conf.all.disable_ipv6': 1 });
  const ic = lab.plan.interconnect;
  await ipBatch(lab.names.switch, [
    `link add db-i mtu ${ic.mtu} type veth peer name eth0 mtu ${ic.mtu} netns ${e.dbNetns}`,
    `link set db-i master ${ic.bridge} up`,
  ]);
  await ipBatch(e.dbNetns, ['link set lo up', `addr add ${STORE}/24 dev eth0`, 'link set eth0 up']);
  const gw2 = await issueCertificate(ca, { role: 'gateway', name: 'gw2', hosts: [GATEWAYS[1]!.inside] });
  await writeFile(join(dir, 'pki/gw2.pem'), gw2.certPem);
  await writeFile(join(dir, 'pki/gw2-key.pem'), gw2.keyPem, { mode: 0o600 });
  try {
    e.etcd = await startEtcdCluster({
      caPem: ca.certPem,
      issue: (name, hosts) => issueCertificate(ca, { role: 'gateway', name, hosts }),
      netns: e.dbNetns,
      addresses: [STORE],
      dir: join(lab.runDir, 'etcd'),
    });
    await Promise.all(
      [...frrConfigs(lab.plan, layout, ipv6)].map(async ([host, config]) => {
        const netns =
          host === 'r' ? layout.router.netns : layout.gateways.find((g) => g.name === host)!.netns;
        e.frr.set(host, await startFrr(netns, frrDirOf(lab.runDir, host), config));
      }),
    );
    await e.frr.get('r')!.established();
    await writeFile(join(dir, 'gateway.yaml'), gatewayYaml(yaml, 0, frrDirOf(lab.runDir, 'gw')));
    await writeFile(join(dir, 'gateway2.yaml'), gatewayYaml(yaml, 1, frrDirOf(lab.runDir, 'gw2')));
  } catch (err) {
    await e.stop();
    throw err;
  }
  return e;
}

/**
 * curls runs `n` HTTP requests to the cluster address (or `url`) from client `host`, each its own
 * connection (a new source port: the router hashes each anew); resolves with how many failed.
 */
export async function curls(
  cl: Cluster,
  host: string,
  n: number,
  url = `http://${cl.vip}/`,
): Promise<{ ok: number; failed: number }> {
  const script = `ok=0; bad=0; for i in $(seq ${n}); do if curl -gsS -o /dev/null --max-time 2 '${url}'; then ok=$((ok+1)); else bad=$((bad+1)); fi; done; echo "$ok $bad"`;
  const { stdout } = await cl.lab.exec(host, 'sh', ['-c', script], { timeoutMs: n * 3000 + 5000 });
  const [ok, failed] = stdout.trim().split(' ').map(Number);
  return { ok: ok!, failed: failed! };
}

/** defaultRouteHops: the next hops of node `node`'s default route (IPv6 with `six`), sorted. */
export async function defaultRouteHops(cl: Cluster, node: string, six = false): Promise<string[]> {
  const netns = cl.lab.host(node).netns;
  const { stdout } = await run('ip', ['-n', netns, six ? '-6' : '-4', '-j', 'route', 'show', 'default']);
  const [r] = JSON.parse(stdout) as { gateway?: string; nexthops?: { gateway: string }[] }[];
  return (r?.nexthops?.map((h) => h.gateway) ?? (r?.gateway ? [r.gateway] : [])).sort();
}

/** ctlAt runs onehostctl against gateway `address` from the lab's gateway host; resolves with stdout. */
export function ctlAt(cl: Cluster, address: string, args: string[]): Promise<string> {
  return cl.ctl(args, `${address}:7443`);
}

/**
 * runsOwnTable tells whether gateway `address` applied its switch's current table (not before its first
 * apply, nor while it holds a table it adopted at a restart).
 */
export async function runsOwnTable(cl: Cluster, address: string): Promise<boolean> {
  const s = JSON.parse(await ctlAt(cl, address, ['gateway', 'status', '--json'])) as {
    appliedVersion: number;
    switchVersion: number;
  };
  return s.appliedVersion > 0 && s.appliedVersion === s.switchVersion;
}

/**
 * waitNextHops waits until the router has exactly `hops` (sorted) as next hops for the cluster address
 * (IPv6 addresses in `hops`: the IPv6 one).
 */
export async function waitNextHops(
  e: Ecmp,
  hops: string[],
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<number> {
  const t0 = Date.now();
  const want = [...hops].sort().join(',');
  const six = hops.some((h) => h.includes(':'));
  await waitFor(async () => (await e.nextHops(six)).join(',') === want, {
    what: `the router's next hops for the cluster address to be [${want}]`,
    timeoutMs,
    intervalMs,
  });
  return Date.now() - t0;
}

/** EcmpCluster is what startEcmpCluster started, filled in as it goes (a signal handler's cleanup reads it). */
export interface EcmpCluster {
  cluster?: Cluster;
  ecmp?: Ecmp;
}

/**
 * startEcmpCluster starts a cluster (startCluster with `opts`) with the router, etcd and the second
 * gateway host built around it (buildEcmp), starts gw2 and waits until it runs the nodes' table. On a
 * failure it stops what it started and throws.
 */
export async function startEcmpCluster(
  into: EcmpCluster,
  opts: ClusterOptions = {},
): Promise<{ cluster: Cluster; ecmp: Ecmp }> {
  try {
    into.cluster = await startCluster({
      ...opts,
      beforeGateway: async (lab, ca) => {
        await opts.beforeGateway?.(lab, ca);
        const dir = join(lab.runDir, 'onehost');
        const yaml = await readFile(join(dir, 'gateway.yaml'), 'utf8');
        into.ecmp = await buildEcmp(lab, ca, dir, yaml, opts.ipv6 === true);
      },
    });
    const cl = into.cluster;
    const ecmp = into.ecmp!;
    await ecmp.startGateway2(cl.dir);
    await waitFor(() => runsOwnTable(cl, GATEWAYS[1]!.inside), {
      what: 'gw2 running the table',
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    return { cluster: cl, ecmp };
  } catch (err) {
    await stopEcmpCluster(into);
    throw err;
  }
}

/** stopEcmpCluster stops what startEcmpCluster started (gw2, FRR and etcd first, then the cluster). */
export async function stopEcmpCluster(e: EcmpCluster): Promise<void> {
  await e.ecmp?.stop();
  await e.cluster?.stop();
}

const KEEPALIVE_CLIENT = fileURLToPath(new URL('./keepalive-client.py', import.meta.url));
const NFS_KEEPALIVE_CLIENT = fileURLToPath(new URL('./nfs-keepalive-client.py', import.meta.url));

/** A file in an NFS export, for the NFS keep-alive client: its export, its name, its path here. */
export interface NfsKeepAliveFile {
  export: string;
  name: string;
  file: string;
}

/** What `check` of the keep-alive client answers. */
export interface KeepAliveCheck {
  same: number;
  changed: number;
  failed: number;
  errors: string[];
}

/**
 * KeepAlives holds long-lived HTTP/1.1 connections from an outside client to the cluster address
 * (keepalive-client.py, Python's http.client, in the client's namespace): `open` adds connections to a
 * port, `check` asks on each again and says per port whether the same node answered. Ended by `close`.
 */
export class KeepAlives {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;

  /**
   * With `nfs`, NFSv3 connections over TCP (nfs-keepalive-client.py) instead of HTTP: `open`'s port is
   * a key of `nfs`, `check` READs a piece of that file and compares it, and `close` ends each
   * connection and tells how the server ended it.
   */
  constructor(netns: string, vip: string, nfs?: Record<string, NfsKeepAliveFile>) {
    const args =
      nfs === undefined ? [KEEPALIVE_CLIENT, vip] : [NFS_KEEPALIVE_CLIENT, vip, JSON.stringify(nfs)];
    this.child = spawn('ip', ['netns', 'exec', netns, 'python3', ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const w = this.waiting;
      this.waiting = null;
      if (w !== null) w(l);
      else this.lines.push(l);
    });
  }

  private ask<T>(command: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`keepalive-client: no answer to ${command} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiting = (l) => {
        clearTimeout(t);
        resolve(JSON.parse(l) as T);
      };
      this.child.stdin!.write(`${command}\n`);
    });
  }

  open(n: number, port: number | string): Promise<{ opened: number; failed: number }> {
    return this.ask(`open ${n} ${port}`, n * 3500 + 2000);
  }

  /** check asks on every open connection (`n` of them in all, for the time allowed); by port. */
  check(n: number): Promise<Record<string, KeepAliveCheck>> {
    return this.ask('check', n * 3500 + 2000);
  }

  /** closeAll (NFS only) ends every connection; per key how the server ended each: FIN, RST, not at all. */
  closeAll(n: number): Promise<Record<string, { fin: number; rst: number; open: number }>> {
    return this.ask('close', n * 3500 + 2000);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end('quit\n');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }
}
