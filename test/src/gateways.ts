import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ClusterCa, issueCertificate } from '@onehost/control';
import {
  type EtcdCluster,
  type FrrInstance,
  gatewayHostConfig,
  type Lab,
  routerConfig,
  startEtcdCluster,
  startFrr,
} from '@onehost/lab';
import { LabProcess, run, runInNetns, waitFor } from '@onehost/testkit';
import { type Cluster, command } from './cluster.js';

/**
 * Two gateways behind a real router, built on the lab of startCluster (its gateway host is the first
 * gateway). Added to the lab's namespaces (same prefix: the lab's cleanup removes them):
 *
 *   c1 ─┐                 ┌─ gw  .1 (eth0) ── eth1 198.18.0.1 ─┐
 *       ├─ br-out ── r .2 ┤                                    ├─ br-ic ── n1, n2 …, db 198.18.0.250 (etcd)
 *   c2 ─┘   (203.0.113/24)└─ gw2 .3 (eth0) ── eth1 198.18.0.2 ─┘
 *
 * The router (FRR: eBGP to each gateway host with BFD 100 ms × 3, maximum-paths, L4 multipath hash) is
 * the clients' route to the cluster address; every gateway host runs its own FRR and its gateway tells
 * that bgpd to announce (`announce`). Both gateways share an etcd store, so the second knows the nodes
 * that joined the first. The router shares the outside segment with the clients and gateways (the
 * lab's single outside bridge): a shortcut of the topology, not of the routing. The lab's
 * `--gateways N` (a link per gateway) is not built yet.
 */

export const ROUTER = { address: '203.0.113.2', asn: 64600 };
export const GATEWAYS = [
  { name: 'gw', outside: '203.0.113.1', inside: '198.18.0.1', asn: 64601 },
  { name: 'gw2', outside: '203.0.113.3', inside: '198.18.0.2', asn: 64602 },
] as const;
const STORE = '198.18.0.250';

async function sysctls(netns: string, settings: Record<string, string | number>): Promise<void> {
  await runInNetns(netns, 'sysctl', ['-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

async function ipBatch(netns: string, lines: string[]): Promise<void> {
  await run('ip', ['-n', netns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

async function addNamespace(ns: string): Promise<void> {
  await run('ip', ['netns', 'add', ns]);
  await sysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
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

  /** nextHops lists the router's next hops for the cluster address (empty: not routed). */
  async nextHops(): Promise<string[]> {
    const { stdout } = await run('ip', ['-n', this.router, 'route', 'show', `${this.lab.addresses.vip}/32`]);
    return [...stdout.matchAll(/via (\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
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
  y += `\nannounce: { asn: ${g.asn}, vtySocket: ${frrDir}, withdrawGraceMs: 300, peers: [${ROUTER.address}] }\n`;
  return y;
}

/**
 * buildEcmp adds the router, the second gateway host and the store to `lab` (see the picture), starts
 * etcd and the three FRR instances (sessions up before it resolves), issues gw2's certificate and
 * writes both gateways' configurations (gateway.yaml, gateway2.yaml in `dir`) from `yaml` (the lab's).
 */
export async function buildEcmp(lab: Lab, ca: ClusterCa, dir: string, yaml: string): Promise<Ecmp> {
  const p = lab.prefix;
  const e = new Ecmp(lab, `${p}r`, `${p}gw2`, `${p}db`);
  await Promise.all([e.router, e.gw2Netns, e.dbNetns].map(addNamespace));
  const out = lab.plan.outside;
  const ic = lab.plan.interconnect;
  const veth = (port: string, bridge: string, mtu: number, netns: string, iface: string) => [
    `link add ${port} mtu ${mtu} type veth peer name ${iface} mtu ${mtu} netns ${netns}`,
    `link set ${port} master ${bridge} up`,
  ];
  await ipBatch(lab.names.switch, [
    ...veth('r-o', out.bridge, out.mtu, e.router, 'eth0'),
    ...veth('gw2-o', out.bridge, out.mtu, e.gw2Netns, 'eth0'),
    ...veth('gw2-i', ic.bridge, ic.mtu, e.gw2Netns, 'eth1'),
    ...veth('db-i', ic.bridge, ic.mtu, e.dbNetns, 'eth0'),
  ]);
  await ipBatch(e.router, [`addr add ${ROUTER.address}/24 dev eth0`, 'link set eth0 up']);
  await ipBatch(e.gw2Netns, [
    `addr add ${GATEWAYS[1].outside}/24 dev eth0`,
    `addr add ${GATEWAYS[1].inside}/24 dev eth1`,
    'link set eth0 up',
    'link set eth1 up',
  ]);
  await ipBatch(e.dbNetns, [`addr add ${STORE}/24 dev eth0`, 'link set eth0 up']);
  await sysctls(e.gw2Netns, { 'net.ipv4.ip_forward': 1 });
  // ECMP by the 5-tuple (policy 1), not by addresses alone: one client's connections spread
  await sysctls(e.router, {
    'net.ipv4.ip_forward': 1,
    'net.ipv4.fib_multipath_hash_policy': 1,
    'net.ipv6.fib_multipath_hash_policy': 1,
    // next hops on the clients' own segment: no redirects, the router stays in the path
    'net.ipv4.conf.all.send_redirects': 0,
    'net.ipv4.conf.eth0.send_redirects': 0,
  });
  for (const c of lab.plan.clients) {
    await sysctls(c.netns, { 'net.ipv4.conf.all.accept_redirects': 0 });
    await run('ip', ['-n', c.netns, 'route', 'replace', `${lab.addresses.vip}/32`, 'via', ROUTER.address]);
  }
  const gw2 = await issueCertificate(ca, { role: 'gateway', name: 'gw2', hosts: [GATEWAYS[1].inside] });
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
    const frrDirs = [join(lab.runDir, 'frr-gw'), join(lab.runDir, 'frr-gw2')];
    const starts = [
      startFrr(
        e.router,
        join(lab.runDir, 'frr-r'),
        routerConfig({
          asn: ROUTER.asn,
          routerId: ROUTER.address,
          peers: GATEWAYS.map((g) => ({ address: g.outside, asn: g.asn })),
          accept: [out.prefix],
        }),
      ).then((f) => e.frr.set('r', f)),
      ...GATEWAYS.map((g, i) =>
        startFrr(
          e.netnsOf(i),
          frrDirs[i]!,
          gatewayHostConfig({
            asn: g.asn,
            routerId: g.outside,
            router: { address: ROUTER.address, asn: ROUTER.asn },
            announce: [`${lab.addresses.vip}/32`],
          }),
        ).then((f) => e.frr.set(g.name, f)),
      ),
    ];
    await Promise.all(starts);
    await e.frr.get('r')!.established();
    await writeFile(join(dir, 'gateway.yaml'), gatewayYaml(yaml, 0, frrDirs[0]!));
    await writeFile(join(dir, 'gateway2.yaml'), gatewayYaml(yaml, 1, frrDirs[1]!));
  } catch (err) {
    await e.stop();
    throw err;
  }
  return e;
}

/**
 * curls runs `n` HTTP requests to the cluster address from client `host`, each its own connection (a
 * new source port: the router hashes each anew); resolves with how many failed.
 */
export async function curls(cl: Cluster, host: string, n: number): Promise<{ ok: number; failed: number }> {
  const script = `ok=0; bad=0; for i in $(seq ${n}); do if curl -sS -o /dev/null --max-time 2 http://${cl.vip}/; then ok=$((ok+1)); else bad=$((bad+1)); fi; done; echo "$ok $bad"`;
  const { stdout } = await cl.lab.exec(host, 'sh', ['-c', script], { timeoutMs: n * 3000 + 5000 });
  const [ok, failed] = stdout.trim().split(' ').map(Number);
  return { ok: ok!, failed: failed! };
}

/** ctlAt runs onehostctl against gateway `address` from the lab's gateway host; resolves with stdout. */
export async function ctlAt(cl: Cluster, address: string, args: string[]): Promise<string> {
  const p = cl.pki('op');
  const [file, ...pre] = command('onehostctl');
  const r = await cl.lab.exec('gw', file, [
    ...pre,
    ...args,
    '--gateway',
    `${address}:7443`,
    '--ca',
    p.ca,
    '--cert',
    p.cert,
    '--key',
    p.key,
  ]);
  return r.stdout;
}

/** waitNextHops waits until the router has exactly `hops` (sorted) as next hops for the cluster address. */
export async function waitNextHops(
  e: Ecmp,
  hops: string[],
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<number> {
  const t0 = Date.now();
  const want = [...hops].sort().join(',');
  await waitFor(async () => (await e.nextHops()).join(',') === want, {
    what: `the router's next hops for the cluster address to be [${want}]`,
    timeoutMs,
    intervalMs,
  });
  return Date.now() - t0;
}
