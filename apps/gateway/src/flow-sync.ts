import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIpv4 } from '@onehost/wire';

/**
 * Shared connections (docs/fastpath.md, "Flows that change gateway"): round robin's and
 * least-connections' node is written into the connection's conntrack entry (its mark), and conntrackd
 * (conntrack-tools) replicates the entries to the other gateways, straight into their kernel tables. A
 * connection the router moves to another gateway finds its node there.
 *
 * conntrackd's UDP transport has one peer (several UDP blocks are redundant links, one active at a
 * time), so each gateway runs one conntrackd per other gateway. Both ends of a pair must use the same
 * port: the pair's index among all pairs of `interconnect.gateways` (sorted) is added to the base port.
 */

/** One peer's synchronisation: whom, on which port. */
export interface SyncPeer {
  address: string;
  port: number;
}

/** syncPeers lists this gateway's peers and each pair's port (the same on both ends). */
export function syncPeers(self: string, gateways: readonly string[], basePort: number): SyncPeer[] {
  const all = [...new Set(gateways)].sort((a, b) => parseIpv4(a) - parseIpv4(b));
  const out: SyncPeer[] = [];
  let k = 0;
  for (let i = 0; i < all.length; i++)
    for (let j = i + 1; j < all.length; j++, k++) {
      if (all[i] === self) out.push({ address: all[j]!, port: basePort + k });
      else if (all[j] === self) out.push({ address: all[i]!, port: basePort + k });
    }
  return out;
}

/** pairCount is how many ports `n` gateways' pairs take from the base port. */
export function pairCount(n: number): number {
  return (n * (n - 1)) / 2;
}

/** conntrackdConfig writes one conntrackd's configuration (FTFW over UDP to one peer). */
export function conntrackdConfig(o: {
  self: string;
  peer: SyncPeer;
  iface: string;
  dir: string;
  /** the cluster addresses (either family): only their connections are shared */
  vips: readonly string[];
}): string {
  return `# written by onehost-gateway: shares the kernel's conntrack entries of connections to the cluster
# addresses with the gateway at ${o.peer.address}
Sync {
  Mode FTFW {
    # received entries go straight into the kernel's table, where the fast path reads their mark
    DisableExternalCache on
    # a (re)started gateway asks its peer for every entry at once
    StartupResync on
  }
  UDP {
    IPv4_address ${o.self}
    IPv4_Destination_Address ${o.peer.address}
    Port ${o.peer.port}
    Interface ${o.iface}
    Checksum on
  }
}
General {
  HashSize 16384
  HashLimit 262144
  LogFile ${join(o.dir, 'conntrackd.log')}
  Syslog off
  LockFile ${join(o.dir, 'lock')}
  UNIX {
    Path ${join(o.dir, 'ctl')}
  }
  NetlinkEventsReliable on
  # in user space: conntrackd's kernel-side address filter let nothing through here (conntrack-tools 1.4.7)
  Filter From Userspace {
    Protocol Accept {
      TCP
    }
    Address Accept {
${o.vips.map((v) => `      IPv${v.includes(':') ? 6 : 4}_address ${v}`).join('\n')}
    }
  }
}
`;
}

type Log = { info(o: object, m: string): void; warn(o: object, m: string): void };

/** Spawner starts a conntrackd (tests give their own). */
export type Spawner = (file: string, args: string[]) => ChildProcess;

/**
 * The child dies with the gateway, however it ends (setpriv's parent-death signal survives the exec):
 * a conntrackd left behind would hold its lock and port, and the next gateway's could not start.
 */
const spawnConntrackd: Spawner = (file, args) =>
  spawn('setpriv', ['--pdeathsig', 'KILL', '--', file, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });

const RESTART_MS = 1000;

interface Instance {
  peer: SyncPeer;
  dir: string;
  child: ChildProcess | null;
  restarts: number;
  timer: NodeJS.Timeout | undefined;
  lastProblem: string;
}

/**
 * FlowSync runs one conntrackd per peer gateway in this gateway's network namespace, started again a
 * second after it ends (counted; each distinct reason logged once), stopped with the gateway.
 */
export class FlowSync {
  private readonly instances: Instance[] = [];
  private stopping = false;

  constructor(
    private readonly o: {
      self: string;
      peers: SyncPeer[];
      iface: string;
      vips: readonly string[];
      /** the directory for the configurations, logs, locks and sockets */
      dir: string;
      conntrackd: string;
      log: Log;
      spawn?: Spawner;
    },
  ) {}

  async start(): Promise<void> {
    for (const peer of this.o.peers) {
      const dir = join(this.o.dir, `peer-${peer.address}`);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(
        join(dir, 'conntrackd.conf'),
        conntrackdConfig({ self: this.o.self, peer, iface: this.o.iface, dir, vips: this.o.vips }),
      );
      const inst: Instance = { peer, dir, child: null, restarts: 0, timer: undefined, lastProblem: '' };
      this.instances.push(inst);
      await this.run(inst);
    }
    if (this.o.peers.length > 0)
      this.o.log.info({ peers: this.o.peers }, 'sharing connections with the other gateways (conntrackd)');
  }

  /** status per peer: whether its conntrackd runs, and how often it was started again. */
  status(): { peer: string; port: number; running: boolean; restarts: number }[] {
    return this.instances.map((i) => ({
      peer: i.peer.address,
      port: i.peer.port,
      running: i.child !== null && i.child.exitCode === null && i.child.signalCode === null,
      restarts: i.restarts,
    }));
  }

  private async run(inst: Instance): Promise<void> {
    // a conntrackd that ended (killed with its gateway) leaves its lock and socket: both refuse the next
    await rm(join(inst.dir, 'lock'), { force: true });
    await rm(join(inst.dir, 'ctl'), { force: true });
    if (this.stopping) return;
    const child = (this.o.spawn ?? spawnConntrackd)(this.o.conntrackd, [
      '-C',
      join(inst.dir, 'conntrackd.conf'),
    ]);
    inst.child = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 2000) stderr += d.toString('utf8');
    });
    child.on('error', (e) => this.ended(inst, child, e.message));
    child.on('exit', (code, signal) => this.ended(inst, child, stderr.trim() || `exit ${code ?? signal}`));
  }

  private ended(inst: Instance, child: ChildProcess, problem: string): void {
    if (inst.child !== child) return;
    inst.child = null;
    if (this.stopping) return;
    inst.restarts++;
    if (problem !== inst.lastProblem) {
      inst.lastProblem = problem;
      this.o.log.warn(
        { peer: inst.peer.address, problem },
        'conntrackd ended; starting it again every second',
      );
    }
    inst.timer = setTimeout(() => {
      inst.timer = undefined;
      void this.run(inst);
    }, RESTART_MS);
    inst.timer.unref();
  }

  /** stop ends every conntrackd (SIGTERM) and waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.instances.map(async (inst) => {
        if (inst.timer !== undefined) clearTimeout(inst.timer);
        const c = inst.child;
        if (c === null || c.exitCode !== null || c.signalCode !== null) return;
        const gone = new Promise<void>((r) => c.once('exit', () => r()));
        c.kill('SIGTERM');
        const t = setTimeout(() => c.kill('SIGKILL'), 3000);
        await gone;
        clearTimeout(t);
      }),
    );
  }
}
