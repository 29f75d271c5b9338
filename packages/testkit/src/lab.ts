import { randomBytes } from 'node:crypto';
import { LabProcess } from './process.js';
import { type RunOptions, type RunResult, run } from './run.js';

/** The root network namespace, for veth ends that stay on the host. */
export const ROOT = null;

/** Netns is a network namespace created by a {@link Lab}; removed by the lab's cleanup. */
export class Netns {
  constructor(
    readonly lab: Lab,
    readonly name: string,
  ) {}

  /** exec runs a command inside this namespace. Throws when it fails (see `run`). */
  exec(file: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.name, file, ...args], options);
  }

  /** ip runs `ip -n <this> <args>`. Throws when it fails. */
  ip(...args: string[]): Promise<RunResult> {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** spawn starts a long-running command inside this namespace; the lab stops it on cleanup. */
  spawn(file: string, args: readonly string[]): LabProcess {
    return this.lab.spawn(this, file, args);
  }

  /** addAddress adds `cidr` (e.g. 198.18.0.1/24) to `dev` and brings it up. Throws when `ip` fails. */
  async addAddress(dev: string, cidr: string): Promise<void> {
    await this.ip('addr', 'add', cidr, 'dev', dev);
    await this.ip('link', 'set', dev, 'up');
  }

  /** sysctl sets a sysctl inside this namespace. Throws when it fails. */
  async sysctl(key: string, value: string | number): Promise<void> {
    await this.exec('sysctl', ['-qw', `${key}=${value}`]);
  }

  /** linkStats reads a device's packet counters in this namespace. Throws if the device is missing. */
  async linkStats(
    dev: string,
  ): Promise<{ rxPackets: number; txPackets: number; rxBytes: number; txBytes: number }> {
    const { stdout } = await this.ip('-s', '-j', 'link', 'show', 'dev', dev);
    const [info] = JSON.parse(stdout) as Array<{
      stats64: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } };
    }>;
    if (!info) throw new Error(`no device ${dev} in ${this.name}`);
    return {
      rxPackets: info.stats64.rx.packets,
      txPackets: info.stats64.tx.packets,
      rxBytes: info.stats64.rx.bytes,
      txBytes: info.stats64.tx.bytes,
    };
  }
}

/** VethPair names the two ends of a veth pair created by {@link Lab.veth}. */
export interface VethPair {
  a: string;
  b: string;
}

/** Options for {@link Lab.veth}. */
export interface VethOptions {
  /** Address for end a, e.g. 198.18.0.1/24. */
  aAddress?: string;
  /** Address for end b. */
  bAddress?: string;
  mtu?: number;
}

let labCounter = 0;

/**
 * Lab owns network namespaces, root-namespace links and processes that a test creates, and removes them
 * all in `cleanup()`. Names carry the prefix `oh-` (links `oh`) plus this process's pid and a random
 * suffix, so parallel runs never collide. Everything created is recorded before it exists, so a failure
 * half-way still gets cleaned up.
 */
export class Lab {
  /** Short unique id for this lab: pid and random characters, base 36. */
  readonly id: string;
  private readonly namespaces: Netns[] = [];
  private readonly rootLinks: string[] = [];
  private readonly processes: LabProcess[] = [];
  private readonly deferred: Array<() => unknown> = [];
  private counter = 0;
  // "oh-<pid base 36>-<rest>": the pid lets sweepStaleNamespaces() find leftovers of dead processes.
  private readonly nsPrefix: string;
  private cleaned: Promise<void> | undefined;

  constructor() {
    labCounter += 1;
    this.id = `${process.pid.toString(36)}${(labCounter % 36).toString(36)}${randomBytes(2).readUInt16LE(0).toString(36).padStart(2, '0').slice(0, 2)}`;
    this.nsPrefix = `oh-${process.pid.toString(36)}-${this.id.slice(process.pid.toString(36).length)}`;
  }

  private nextName(): string {
    this.counter += 1;
    return `${this.id}${this.counter.toString(36)}`;
  }

  /** linkName returns a fresh interface name (≤ 15 bytes, IFNAMSIZ) unique to this lab. */
  linkName(tag = ''): string {
    const name = `oh${this.nextName()}${tag}`;
    if (name.length > 15) throw new Error(`interface name ${name} is longer than 15 bytes`);
    return name;
  }

  /** netns creates a network namespace with loopback up. Throws when `ip` fails. */
  async netns(): Promise<Netns> {
    this.assertOpen();
    this.counter += 1;
    const ns = new Netns(this, `${this.nsPrefix}${this.counter.toString(36)}`);
    this.namespaces.push(ns);
    await run('ip', ['netns', 'add', ns.name]);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /**
   * veth creates a veth pair with end a in `nsA` and end b in `nsB` (`ROOT`/null for the host's namespace),
   * brings both up and adds the given addresses. Throws when `ip` fails.
   */
  async veth(nsA: Netns | null, nsB: Netns | null, options: VethOptions = {}): Promise<VethPair> {
    this.assertOpen();
    const base = this.linkName();
    const pair = { a: `${base}a`, b: `${base}b` };
    if (pair.a.length > 15) throw new Error(`interface name ${pair.a} is longer than 15 bytes`);
    // Created in the root namespace first: record it there so cleanup finds it if the move fails.
    this.rootLinks.push(pair.a);
    const args = ['link', 'add', pair.a];
    if (options.mtu !== undefined) args.push('mtu', String(options.mtu));
    args.push('type', 'veth', 'peer', 'name', pair.b);
    if (options.mtu !== undefined) args.push('mtu', String(options.mtu));
    await run('ip', args);
    if (nsA) await run('ip', ['link', 'set', pair.a, 'netns', nsA.name]);
    if (nsB) await run('ip', ['link', 'set', pair.b, 'netns', nsB.name]);
    if (!nsB) this.rootLinks.push(pair.b);
    const ipIn = (ns: Netns | null) => (ns ? ['-n', ns.name] : []);
    if (options.aAddress) await run('ip', [...ipIn(nsA), 'addr', 'add', options.aAddress, 'dev', pair.a]);
    if (options.bAddress) await run('ip', [...ipIn(nsB), 'addr', 'add', options.bAddress, 'dev', pair.b]);
    await run('ip', [...ipIn(nsA), 'link', 'set', pair.a, 'up']);
    await run('ip', [...ipIn(nsB), 'link', 'set', pair.b, 'up']);
    return pair;
  }

  /** spawn starts a long-running command in `ns` (or the host namespace for null); stopped on cleanup. */
  spawn(ns: Netns | null, file: string, args: readonly string[]): LabProcess {
    this.assertOpen();
    const full = ns ? ['netns', 'exec', ns.name, file, ...args] : [...args];
    // `ip netns exec` execs the command after setns, so the child's pid is the command's pid.
    const proc = ns ? new LabProcess('ip', full, `${file} in ${ns.name}`) : new LabProcess(file, full, file);
    this.processes.push(proc);
    return proc;
  }

  /** defer registers an extra cleanup action, run (last registered first) before namespaces are removed. */
  defer(action: () => unknown): void {
    this.deferred.push(action);
  }

  /** names lists the namespaces this lab created (for assertions). */
  namespaceNames(): string[] {
    return this.namespaces.map((n) => n.name);
  }

  /**
   * cleanup stops every process (by PID), runs deferred actions, deletes root-namespace links and
   * namespaces. Safe to call twice (the second call waits for the first). Throws an AggregateError
   * listing what could not be removed; everything else is still attempted.
   */
  cleanup(): Promise<void> {
    if (!this.cleaned) this.cleaned = this.doCleanup();
    return this.cleaned;
  }

  private assertOpen(): void {
    if (this.cleaned) throw new Error(`lab ${this.id} was already cleaned up`);
  }

  private async doCleanup(): Promise<void> {
    const errors: unknown[] = [];
    await Promise.all(this.processes.map((p) => p.stop()));
    for (const action of this.deferred.reverse()) {
      try {
        await action();
      } catch (err) {
        errors.push(err);
      }
    }
    for (const link of this.rootLinks) {
      const exists = await run('ip', ['link', 'show', 'dev', link]).then(
        () => true,
        () => false,
      );
      if (!exists) continue;
      try {
        await run('ip', ['link', 'del', link]);
      } catch (err) {
        // Deleting one end of a veth removes the other; only a link that is still there is an error.
        const still = await run('ip', ['link', 'show', 'dev', link]).then(
          () => true,
          () => false,
        );
        if (still) errors.push(err);
      }
    }
    const existing = new Set(
      (await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }))).stdout
        .split('\n')
        .map((l) => l.split(' ')[0]),
    );
    for (const ns of this.namespaces) {
      if (!existing.has(ns.name)) continue;
      try {
        await run('ip', ['netns', 'del', ns.name]);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `lab ${this.id}: cleanup left things behind`);
  }
}

const STALE = /^oh-([0-9a-z]{1,7})-[0-9a-z]+$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * sweepStaleNamespaces deletes namespaces that a Lab of a process that no longer runs left behind (a
 * test run that crashed before its cleanup). Only names of the form `oh-<pid>-<id>` whose pid is dead
 * are touched. Resolves with the names removed; throws an AggregateError if some could not be.
 */
export async function sweepStaleNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  const removed: string[] = [];
  const errors: unknown[] = [];
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = STALE.exec(name);
    if (!m) continue;
    const pid = Number.parseInt(m[1]!, 36);
    if (pid === process.pid || processAlive(pid)) continue;
    try {
      await run('ip', ['netns', 'del', name]);
      removed.push(name);
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'could not remove some stale namespaces');
  return removed;
}
