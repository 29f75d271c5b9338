import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabProcess } from '@onehost/testkit';

/** EtcdClusterOptions says how to start a lab etcd cluster ({@link startEtcdCluster}). */
export interface EtcdClusterOptions {
  /** the cluster CA's certificate (PEM): members take peers and clients it signed, and no others */
  caPem: string;
  /**
   * issues a member's certificate from the cluster CA, for server and client authentication (members
   * are each other's clients), with `hosts` (its addresses) as subjectAltName
   */
  issue: (name: string, hosts: string[]) => Promise<{ certPem: string; keyPem: string }>;
  /** members, 1-7 (default 3) */
  members?: number;
  /** network namespace to run in (a lab host's, reached on its loopback); default this process's */
  netns?: string;
  /** directory for data, certificates and logs (default a new one in the temp dir); removed by stop */
  dir?: string;
  /**
   * the loopback /24 the members take, "127.x.y" (member i is 127.x.y.i): a configuration written
   * before the start can name them. Default a random one (x ≥ 1), so no other test's etcd is there.
   */
  net?: string;
  /**
   * the members' addresses instead of `net` (one member each), e.g. on a lab namespace's interface, so
   * gateways in other namespaces reach them
   */
  addresses?: string[];
}

/** EtcdMember is one member: where it listens and, while it runs, its process. */
export interface EtcdMember {
  name: string;
  address: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  process: LabProcess | null;
}

const CLIENT_PORT = 2379;
const PEER_PORT = 2380;
/** etcd says this once it has joined its cluster and serves clients (zap logger) */
const READY = '"msg":"serving client traffic securely"';
const READY_MS = 20_000;

// Members still running when this process exits (a failed test that skipped its cleanup) are killed.
const running = new Set<LabProcess>();
process.once('exit', () => {
  for (const p of running) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * EtcdCluster is a running etcd cluster with mutual TLS, each member on its own loopback address
 * (127.x.y.n: no other test's etcd can be on it). Stop members to test quorum and outages; stop()
 * ends every member by its pid and removes the directory.
 */
export class EtcdCluster {
  readonly members: EtcdMember[];
  private stopped: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    members: EtcdMember[],
    private readonly argsOf: (m: EtcdMember, state: 'new' | 'existing') => string[],
    private readonly netns: string | undefined,
    private readonly ownDir: boolean,
  ) {
    this.members = members;
  }

  /** endpoints are the members' client URLs. */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** pids of the members that run. */
  get pids(): number[] {
    return this.members.flatMap((m) => (m.process?.running ? [m.process.pid] : []));
  }

  /**
   * stopMember ends member `i` by its pid: SIGTERM, SIGKILL after `graceMs` (a member that lost its
   * quorum may not end by itself: it waits for a leader). Its data stays.
   */
  async stopMember(i: number, graceMs = 3000): Promise<void> {
    const m = this.member(i);
    const p = m.process;
    m.process = null;
    if (p === null) return;
    await p.stop(graceMs);
    running.delete(p);
  }

  /**
   * startMember starts member `i` again on its data. Resolves once it serves clients (which needs a
   * quorum: when every member was stopped, start them together). Throws with its output when it
   * exits or is not ready in time.
   */
  async startMember(i: number): Promise<void> {
    this.assertRunning();
    const m = this.member(i);
    if (m.process?.running) return;
    m.process = this.spawn(m, 'existing');
    await this.ready(m);
  }

  /** startMembers starts several stopped members at once (a quorum after a full outage). */
  async startMembers(indexes: number[]): Promise<void> {
    this.assertRunning();
    for (const i of indexes) {
      const m = this.member(i);
      if (!m.process?.running) m.process = this.spawn(m, 'existing');
    }
    await Promise.all(indexes.map((i) => this.ready(this.member(i))));
  }

  /** output is member `i`'s output so far (for a failing test's message). */
  output(i: number): string {
    return this.member(i).process?.output() ?? '';
  }

  /** stop ends every member by its pid and removes the directory (when startEtcdCluster made it). Safe twice. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      // the data goes too: no need to let the members part in good order
      await Promise.all(this.members.map((_, i) => this.stopMember(i, 200)));
      if (this.ownDir) await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopped;
  }

  /** start launches every member (first start: the cluster is formed). */
  async start(): Promise<void> {
    for (const m of this.members) m.process = this.spawn(m, 'new');
    await Promise.all(this.members.map((m) => this.ready(m)));
  }

  private spawn(m: EtcdMember, state: 'new' | 'existing'): LabProcess {
    const args = this.argsOf(m, state);
    const p =
      this.netns === undefined
        ? new LabProcess('etcd', args, `etcd ${m.name}`)
        : new LabProcess('ip', ['netns', 'exec', this.netns, 'etcd', ...args], `etcd ${m.name}`);
    running.add(p);
    return p;
  }

  private async ready(m: EtcdMember): Promise<void> {
    const p = m.process;
    if (p === null) throw new Error(`etcd ${m.name} is not running`);
    try {
      await p.waitForOutput(READY, READY_MS);
    } catch (err) {
      throw new Error(
        `etcd ${m.name} did not come up: ${(err as Error).message}\n${p.output().slice(-3000)}`,
      );
    }
  }

  private member(i: number): EtcdMember {
    const m = this.members[i];
    if (m === undefined) throw new RangeError(`etcd cluster has no member ${i}`);
    return m;
  }

  private assertRunning(): void {
    if (this.stopped) throw new Error('etcd cluster was already stopped');
  }
}

/**
 * startEtcdCluster starts an etcd cluster (etcd-server's `etcd`) of `members` with mutual TLS between
 * peers and towards clients, certificates from the cluster CA (through `issue`), data in `dir`, every
 * member on its own address of a random 127.x.y.0/24 (in `netns` when given). Resolves once every
 * member serves clients. Throws (after stopping what it started) when one does not.
 */
export async function startEtcdCluster(opts: EtcdClusterOptions): Promise<EtcdCluster> {
  const n = opts.addresses?.length ?? opts.members ?? 3;
  if (!Number.isInteger(n) || n < 1 || n > 7) throw new RangeError(`etcd members ${n}: 1-7`);
  // a /24 of the loopback range no other lab etcd picked (127.0.0.0/16 left to everything else)
  const net = opts.net ?? `127.${randomInt(1, 255)}.${randomInt(0, 256)}`;
  if (!/^127\.([0-9]{1,3})\.([0-9]{1,3})$/.test(net) || net.split('.').some((o) => Number(o) > 255))
    throw new RangeError(`etcd net ${JSON.stringify(net)}: must be 127.x.y`);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'onehost-etcd-')));
  const members: EtcdMember[] = Array.from({ length: n }, (_, i) => {
    const address = opts.addresses?.[i] ?? `${net}.${i + 1}`;
    return {
      name: `etcd-${i + 1}`,
      address,
      clientUrl: `https://${address}:${CLIENT_PORT}`,
      peerUrl: `https://${address}:${PEER_PORT}`,
      dataDir: join(dir, `etcd-${i + 1}`),
      process: null,
    };
  });
  const token = `onehost-lab-${randomBytes(6).toString('hex')}`;
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const ca = join(dir, 'ca.pem');
  const argsOf = (m: EtcdMember, state: 'new' | 'existing'): string[] => {
    const cert = join(dir, `${m.name}.pem`);
    const key = join(dir, `${m.name}-key.pem`);
    return [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${m.clientUrl}`,
      `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=${m.peerUrl}`,
      `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-state=${state}`,
      `--initial-cluster-token=${token}`,
      '--client-cert-auth',
      `--trusted-ca-file=${ca}`,
      `--cert-file=${cert}`,
      `--key-file=${key}`,
      '--peer-client-cert-auth',
      `--peer-trusted-ca-file=${ca}`,
      `--peer-cert-file=${cert}`,
      `--peer-key-file=${key}`,
      // a lost leader is replaced in about half a second (the defaults take a second or more)
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-outputs=stderr',
    ];
  };
  const cluster = new EtcdCluster(dir, members, argsOf, opts.netns, ownDir);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(ca, opts.caPem);
    for (const m of members) {
      // Peers dial each other from 127.0.0.1 (the loopback's source address), and etcd checks a
      // peer's address against its certificate.
      const pem = await opts.issue(m.name, [m.address, '127.0.0.1']);
      await writeFile(join(dir, `${m.name}.pem`), pem.certPem);
      await writeFile(join(dir, `${m.name}-key.pem`), pem.keyPem, { mode: 0o600 });
    }
    await cluster.start();
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
  return cluster;
}
