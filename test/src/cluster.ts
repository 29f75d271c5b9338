import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ClusterCa, createClusterCa, issueCertificate } from '@onehost/control';
import { createLab, DEFAULT_NFS, type Lab, type NfsSpec } from '@onehost/lab';
import { type LabProcess, requireRoot, waitFor } from '@onehost/testkit';
import { CtlServer } from './ctl-server.js';
import { withVip6 } from './lab-yaml.js';

const root = new URL('../../', import.meta.url).pathname;
export const GATEWAY_MAIN = join(root, 'apps/gateway/dist/main.js');
export const AGENT_MAIN = join(root, 'apps/node-agent/dist/main.js');
export const CTL_MAIN = join(root, 'apps/ctl/dist/main.js');

/**
 * INSTALLED: ONEHOST_BINARIES=installed runs the programs the Debian packages installed, from the PATH
 * (run-modes.mjs does so once after `dpkg -i`); otherwise the checkout's builds.
 */
export const INSTALLED = process.env.ONEHOST_BINARIES === 'installed';
/**
 * installed finds `program` on the PATH as a shell would, but past npm's own node_modules/.bin entries
 * (npx puts the checkout's links first). Throws when it is not installed.
 */
function installed(program: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '' || dir.includes('/node_modules/')) continue;
    const f = join(dir, program);
    if (existsSync(f)) return f;
  }
  throw new Error(`${program} is not installed on the PATH (ONEHOST_BINARIES=installed)`);
}

/** command is how to run one of our programs: [file, ...args before its own]. */
export function command(program: 'onehost-gateway' | 'onehost-agent' | 'onehostctl'): [string, ...string[]] {
  if (INSTALLED) return [installed(program)];
  const main = { 'onehost-gateway': GATEWAY_MAIN, 'onehost-agent': AGENT_MAIN, onehostctl: CTL_MAIN }[
    program
  ];
  // ONEHOST_CPU_PROF=<dir>: every program of ours writes a V8 CPU profile there when it exits
  // (NODE_OPTIONS may not carry --cpu-prof)
  const prof = process.env.ONEHOST_CPU_PROF;
  return prof ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${prof}`, main] : [process.execPath, main];
}
const LAB_GATEWAY_YAML = join(root, 'infra/lab/gateway.yaml');

export interface ClusterOptions {
  nodes?: number;
  /** edits the lab's gateway.yaml text before the gateway starts */
  gatewayYaml?: (yaml: string) => string;
  /** NFS servers on nodes (the lab's `nfs` option) */
  nfs?: boolean | readonly NfsSpec[];
  /** extra flags for node `name`'s agent (e.g. --ganesha-config) */
  agentArgs?: (name: string, lab: Lab) => string[];
  /** the agents startCluster starts (default every node's); start the others with startAgent */
  agents?: string[];
  /** IPv6 on the lab's outside (the lab's `ipv6` option; the gateway's IPv6 cluster address is the test's) */
  ipv6?: boolean;
  /**
   * runs once the lab and the certificates are made, before the gateway starts (e.g. to change a
   * namespace's sysctls, or to start etcd with certificates from `ca`)
   */
  beforeGateway?: (lab: Lab, ca: ClusterCa) => Promise<void>;
}

/**
 * Cluster is the whole product in a lab: the lab's namespaces and services, a cluster CA, the gateway
 * (onehost-gateway) and one node agent (onehost-agent) per node, all as real processes.
 */
/** One node's MOUNT registration as `onehostctl exports --json` lists it. */
export interface MountRegistration {
  nodeName: string;
  mountPorts: { udp?: number; tcp?: number };
  exports: { path: string; exportId: number }[];
}

export class Cluster {
  readonly agents = new Map<string, LabProcess>();
  gateway!: LabProcess;
  private ctlServer: CtlServer | undefined;

  constructor(
    readonly lab: Lab,
    readonly dir: string,
    private readonly agentArgs: (name: string, lab: Lab) => string[] = () => [],
  ) {}

  get vip(): string {
    return this.lab.addresses.vip;
  }

  get control(): string {
    return `${this.lab.addresses.gateway.inside}:7443`;
  }

  /** metric reads the gateway's /metrics: the value of `name` over the series whose labels include `labels`. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const { stdout } = await this.lab.exec('gw', 'curl', [
      '-sS',
      '--max-time',
      '5',
      `http://${this.lab.addresses.gateway.inside}:9400/metrics`,
    ]);
    let sum = 0;
    for (const line of stdout.split('\n')) {
      const m = /^([a-z_]+)(?:\{(.*)\})? ([0-9.e+-]+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = Object.fromEntries(
        [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]),
      );
      if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
    }
    return sum;
  }

  pki(name: string): { ca: string; cert: string; key: string } {
    return {
      ca: join(this.dir, 'pki/ca.pem'),
      cert: join(this.dir, `pki/${name}.pem`),
      key: join(this.dir, `pki/${name}-key.pem`),
    };
  }

  /** startGateway starts onehost-gateway in the gateway host and waits for its ready line. */
  async startGateway(): Promise<LabProcess> {
    const [file, ...pre] = command('onehost-gateway');
    this.gateway = this.lab.spawn('gw', file, [...pre, '--config', join(this.dir, 'gateway.yaml')]);
    await this.gateway.waitForOutput('"msg":"ready"', 20_000);
    return this.gateway;
  }

  /** startAgent starts onehost-agent on node `name` (n1, n2 …) and waits until it is ready. */
  async startAgent(name: string): Promise<LabProcess> {
    const i = Number(name.slice(1)) - 1;
    const p = this.pki(name);
    const [file, ...pre] = command('onehost-agent');
    const agent = this.lab.spawn(name, file, [
      ...pre,
      '--gateway',
      this.control,
      '--name',
      name,
      '--ca',
      p.ca,
      '--cert',
      p.cert,
      '--key',
      p.key,
      '--internal-address',
      this.lab.addresses.nodes[i]!,
      '--state-file',
      join(this.dir, `agent-${name}.json`),
      ...this.agentArgs(name, this.lab),
      ...(SPLICE_KERNEL ? [] : ['--no-splice-kernel']),
    ]);
    this.agents.set(name, agent);
    await agent.waitForOutput('"msg":"ready"', 20_000);
    return agent;
  }

  /** mountRegistrations reads the gateway's MOUNT registrations (onehostctl exports --json). */
  async mountRegistrations(): Promise<MountRegistration[]> {
    return JSON.parse(await this.ctl(['exports', '--json'])) as MountRegistration[];
  }

  /** waitForMount waits until every node in `nodes` registered its MOUNT service for `transport`. */
  async waitForMount(nodes: readonly string[], transport: 'tcp' | 'udp'): Promise<void> {
    await waitFor(
      async () => {
        const r = await this.mountRegistrations();
        return nodes.every((n) => r.some((x) => x.nodeName === n && x.mountPorts[transport] !== undefined));
      },
      { what: `${nodes.join(' and ')} registered their MOUNT service`, timeoutMs: 15_000, intervalMs: 200 },
    );
  }

  /**
   * ctl runs onehostctl from the gateway host with the operator certificate against `gateway` (default
   * this cluster's); resolves with stdout, rejects on failure (naming the exit code, with stderr). The
   * commands run in one long-lived process there (CtlServer: the CLI's program, arguments and output,
   * without a node start per query); with INSTALLED, and in `cli`, the binary itself runs.
   */
  async ctl(args: string[], gateway = this.control): Promise<string> {
    if (INSTALLED) return this.cli(args, gateway);
    return this.ctlServerNow().run(this.ctlArgs(args, gateway));
  }

  /** cli runs the onehostctl binary (a process of its own) from the gateway host, as ctl does. */
  async cli(args: string[], gateway = this.control): Promise<string> {
    const [file, ...pre] = command('onehostctl');
    return (await this.lab.exec('gw', file, [...pre, ...this.ctlArgs(args, gateway)])).stdout;
  }

  private ctlServerNow(): CtlServer {
    this.ctlServer ??= new CtlServer(this.lab.host('gw').netns);
    return this.ctlServer;
  }

  private ctlArgs(args: string[], gateway: string): string[] {
    const p = this.pki('op');
    return [...args, '--gateway', gateway, '--ca', p.ca, '--cert', p.cert, '--key', p.key];
  }

  /** curl fetches a URL from a lab host; resolves with the body (throws on failure). */
  async curl(host: string, url: string, extra: string[] = []): Promise<string> {
    const r = await this.lab.exec(host, 'curl', ['-sS', '--max-time', '5', ...extra, url]);
    return r.stdout;
  }

  /** members returns `onehostctl members --json`. */
  async members(): Promise<
    Array<{ name: string; state: string; id: number; block: { lo: number; hi: number } }>
  > {
    return JSON.parse(await this.ctl(['members', '--json']));
  }

  /**
   * waitForState waits until node `name` has `state` in the gateway's membership, and the kernel data
   * path runs the table that state gave (the membership answers before the kernel has applied it).
   */
  async waitForState(name: string, state: string, timeoutMs = 5000): Promise<void> {
    await waitFor(async () => (await this.members()).some((m) => m.name === name && m.state === state), {
      timeoutMs,
      intervalMs: 50,
      what: `${name} ${state}`,
    });
    await this.inStep();
  }

  /** inStep waits until the kernel runs the switch's table (kernel mode; tun mode is always in step). */
  async inStep(timeoutMs = 10_000): Promise<void> {
    await waitFor(
      async () => {
        const s = JSON.parse(await this.ctl(['gateway', 'status', '--json'])) as {
          appliedVersion: number;
          switchVersion: number;
        };
        return s.appliedVersion === s.switchVersion;
      },
      { what: 'the kernel table in step with the switch', timeoutMs, intervalMs: 50 },
    );
  }

  /**
   * stop ends ctl's process, the agents (they restore their node), then the gateway, then the lab. Never
   * throws.
   */
  async stop(): Promise<void> {
    await this.ctlServer?.stop();
    // the agents together: each restores its own node
    await Promise.all([...this.agents.values()].map((a) => a.stop(5000)));
    await this.gateway?.stop(5000);
    await this.lab.cleanup();
  }
}

/**
 * SPLICE_KERNEL: the agents shift spliced flows' segments with their tc program (the default);
 * ONEHOST_SPLICE_KERNEL=off starts them with --no-splice-kernel (the TUN carries every segment).
 */
export const SPLICE_KERNEL = process.env.ONEHOST_SPLICE_KERNEL !== 'off';

/** DATAPATH is the data path mode the suites run in (ONEHOST_DATAPATH, default the gateway's: kernel). */
export const DATAPATH: 'kernel' | 'tun' = process.env.ONEHOST_DATAPATH === 'tun' ? 'tun' : 'kernel';

/** withDatapathMode sets the lab gateway.yaml's data path mode to DATAPATH. */
export function withDatapathMode(yaml: string): string {
  return `${yaml.replace(/^datapath:.*\n/m, '')}\ndatapath: { mode: ${DATAPATH} }\n`;
}

/**
 * PKI_CACHE: a directory run-modes.mjs makes for one run of the suites (ONEHOST_TEST_PKI_CACHE), where
 * the first cluster leaves its certificates for the others: RSA keys and node-forge's signatures cost a
 * second of CPU per cluster. Without it every cluster makes its own.
 */
const PKI_CACHE = process.env.ONEHOST_TEST_PKI_CACHE;
const PKI_FILES = ['ca.pem', 'ca-key.pem', 'intruder-ca.pem', 'gw', 'op', 'intruder'];

/**
 * clusterPki writes into `pki` a cluster CA (ca.pem; its key ca-key.pem), certificates for the gateway
 * (serving `gatewayAddress`), an operator and nodes n1…n`nodes`, and an intruder: a node certificate from
 * another CA. Returns the CA. Taken from PKI_CACHE when a cluster of this shape left one there.
 */
async function clusterPki(pki: string, gatewayAddress: string, nodes: number): Promise<ClusterCa> {
  await mkdir(pki, { recursive: true, mode: 0o700 });
  const names = [...PKI_FILES, ...Array.from({ length: nodes }, (_, i) => `n${i + 1}`)];
  const files = names.flatMap((n) => (n.endsWith('.pem') ? [n] : [`${n}.pem`, `${n}-key.pem`]));
  const cached = PKI_CACHE === undefined ? undefined : join(PKI_CACHE, `${gatewayAddress}-${nodes}`);
  if (cached !== undefined && existsSync(cached)) {
    await Promise.all(files.map((f) => copyFile(join(cached, f), join(pki, f))));
    return {
      certPem: await readFile(join(pki, 'ca.pem'), 'utf8'),
      keyPem: await readFile(join(pki, 'ca-key.pem'), 'utf8'),
    };
  }
  const ca = await createClusterCa();
  const put = async (name: string, pem: { certPem: string; keyPem: string }): Promise<void> => {
    await writeFile(join(pki, `${name}.pem`), pem.certPem);
    await writeFile(join(pki, `${name}-key.pem`), pem.keyPem, { mode: 0o600 });
  };
  await writeFile(join(pki, 'ca.pem'), ca.certPem);
  await writeFile(join(pki, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  // the RSA keys are made in the thread pool: all at once
  const issue = async (name: string, o: Parameters<typeof issueCertificate>[1]) =>
    put(name, await issueCertificate(ca, o));
  const intruder = async () => {
    const other = await createClusterCa();
    await put('intruder', await issueCertificate(other, { role: 'node', name: 'n1' }));
    await writeFile(join(pki, 'intruder-ca.pem'), other.certPem);
  };
  await Promise.all([
    issue('gw', { role: 'gateway', name: 'gw', hosts: [gatewayAddress] }),
    issue('op', { role: 'operator', name: 'op' }),
    ...Array.from({ length: nodes }, (_, i) => issue(`n${i + 1}`, { role: 'node', name: `n${i + 1}` })),
    intruder(),
  ]);
  if (cached !== undefined) {
    // complete or not at all: copied aside, then renamed into place (a second writer's rename fails)
    const aside = `${cached}.${process.pid}`;
    await mkdir(aside, { recursive: true, mode: 0o700 });
    await Promise.all(files.map((f) => copyFile(join(pki, f), join(aside, f))));
    await rename(aside, cached).catch(() => rm(aside, { recursive: true, force: true }));
  }
  return ca;
}

/**
 * startCluster builds a lab, a cluster CA with certificates for the gateway, the nodes, an operator and
 * an intruder (another CA), the gateway and every agent. On any failure it tears down what it started.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  requireRoot();
  const lab = await createLab({
    nodes: opts.nodes ?? 3,
    ...(opts.nfs !== undefined ? { nfs: opts.nfs } : {}),
    ...(opts.ipv6 === true ? { ipv6: true } : {}),
  });
  const dir = join(lab.runDir, 'onehost');
  const cluster = new Cluster(lab, dir, opts.agentArgs);
  try {
    const ca = await clusterPki(join(dir, 'pki'), lab.addresses.gateway.inside, opts.nodes ?? 3);
    let yaml = withDatapathMode(await readFile(LAB_GATEWAY_YAML, 'utf8'));
    if (opts.gatewayYaml) yaml = opts.gatewayYaml(yaml);
    await writeFile(join(dir, 'gateway.yaml'), yaml);
    await opts.beforeGateway?.(lab, ca);
    await cluster.startGateway();
    const agents = opts.agents ?? Array.from({ length: opts.nodes ?? 3 }, (_, i) => `n${i + 1}`);
    // together: each joins on its own; ids and blocks do not depend on the order
    await Promise.all(agents.map((name) => cluster.startAgent(name)));
    await cluster.inStep();
    return cluster;
  } catch (e) {
    const gw = cluster.gateway?.output().slice(-3000) ?? '';
    await cluster.stop();
    throw new Error(`${(e as Error).message}\n--- gateway output ---\n${gw}`);
  }
}

/**
 * startNfs6Cluster starts two nodes with the lab's nfs-ganesha (n1 /srv/projects, n2 /srv/home), their
 * agents watching it, and the IPv6 cluster address `vip6` beside the IPv4 one.
 */
export function startNfs6Cluster(vip6: string): Promise<Cluster> {
  return startCluster({
    nodes: 2,
    ipv6: true,
    nfs: DEFAULT_NFS,
    agents: ['n1', 'n2'],
    agentArgs: (name, l) => ['--ganesha-config', l.nfsOf(name).config, '--mount-check-ms', '200'],
    gatewayYaml: (y) => withVip6(y, vip6),
  });
}
