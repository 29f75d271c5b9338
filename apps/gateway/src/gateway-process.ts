import { readFile } from 'node:fs/promises';
import type { GatewayBackend, GatewayReload, GatewayStatus } from '@onehost/control';
import { type FastPath, type FastPathStats, type KernelCounter, TUN_CLASSES } from '@onehost/fastpath';
import { FUNCTION_SLOT, FUNCTION_SLOT_BASE, functionSlotName, type MessageSwitch } from '@onehost/switch';

export interface GatewayProcessOptions {
  name: string;
  sw: MessageSwitch;
  fastpath: FastPath | null;
  /** reload validates and swaps in a changed configuration file (Gateway/Reload) */
  reload: (configYaml: string, dryRun: boolean) => Promise<GatewayReload>;
  /** reads the host filter's drop counters (absent when the gateway leaves the host alone) */
  readHostDrops?: () => Promise<Map<string, number>>;
}

const NONE = new Map<string, KernelCounter>();

/**
 * GatewayProcess is the gateway behind the Gateway service: the data path's status (the switch's
 * counters for user space, the kernel's named counters for the fast path), reloads and the operator's stop. It
 * also keeps the kernel's counters as read at the last scrape, for the metrics.
 */
export class GatewayProcess implements GatewayBackend {
  /** resolves when an operator asked the gateway to stop */
  readonly stopped: Promise<{ keepDatapath: boolean }>;
  private resolveStop!: (v: { keepDatapath: boolean }) => void;
  private cache: Map<string, KernelCounter> = NONE;
  /** the kernel's IP FragFails when the gateway started, and since (packets too big for the interconnect) */
  private fragBase = -1;
  fragFails = 0;

  constructor(private readonly o: GatewayProcessOptions) {
    this.stopped = new Promise((r) => {
      this.resolveStop = r;
    });
  }

  /** reloads counts reloads applied and refused (dry runs not counted) */
  readonly reloads = { applied: 0, refused: 0 };

  /** beforeStatus applies a membership change still waiting (the gateway sets it), so status is current */
  beforeStatus: () => void = () => undefined;

  /**
   * announcements counts the cluster addresses' announcements on the outside: gratuitous ARPs sent
   * (ARPING_COUNT per address and interface whose `arping` succeeded) and `arping` runs that failed;
   * unsolicited neighbour advertisements sent and failed (one each per send)
   */
  readonly announcements = { arpSent: 0, arpFailed: 0, naSent: 0, naFailed: 0 };

  reload(configYaml: string, dryRun: boolean): Promise<GatewayReload> {
    return this.o.reload(configYaml, dryRun);
  }

  stop(keepDatapath: boolean): void {
    this.resolveStop({ keepDatapath });
  }

  /** counters are the kernel's named counters as last read (empty in tun mode). */
  get counters(): ReadonlyMap<string, KernelCounter> {
    return this.cache;
  }

  /** hostDrops are the host filter's drop counters as last read, by reason (empty when not read). */
  hostDrops: ReadonlyMap<string, number> = new Map();

  /** refreshCounters reads the kernel's counters again; keeps the last reading when nft fails. */
  async refreshCounters(): Promise<void> {
    if (this.o.readHostDrops !== undefined)
      this.hostDrops = await this.o.readHostDrops().catch(() => this.hostDrops);
    if (this.o.fastpath === null) return;
    try {
      this.cache = await this.o.fastpath.counters();
      const n = await readFragFails();
      if (this.fragBase < 0) this.fragBase = n;
      this.fragFails = n - this.fragBase;
    } catch {
      // the table is being replaced or is gone: the metrics show the last reading
    }
  }

  /** fastpathStats are the kernel data path's own counters (null in tun mode). */
  fastpathStats(): FastPathStats | null {
    return this.o.fastpath?.stats ?? null;
  }

  /** kernelByFunction sums the kernel counters of every entry of each routing function. */
  private kernelByFunction(): Map<string, number> {
    const out = new Map<string, number>();
    const s = this.o.fastpath?.applied;
    if (s === null || s === undefined) return out;
    for (const e of s.entries.values())
      out.set(e.kind, (out.get(e.kind) ?? 0) + (this.cache.get(e.counter)?.packets ?? 0));
    out.set('unmatched', (out.get('unmatched') ?? 0) + (this.cache.get('e_unmatched')?.packets ?? 0));
    return out;
  }

  /** functionSplit lists per routing function the packets the kernel and user space decided. */
  functionSplit(): { function: string; kernel: number; user: number }[] {
    const kinds = this.o.sw.registry.kinds();
    const user = this.o.sw.counters.functionPackets;
    const kernel = this.kernelByFunction();
    const names = new Set<string>([...kernel.keys()]);
    for (let i = 0; i < user.length; i++) if (user[i]! > 0) names.add(functionSlotName(i, kinds));
    const userOf = (name: string): number => {
      const i = kinds.indexOf(name);
      if (i >= 0 && i < FUNCTION_SLOT_BASE) return user[i]!;
      const slot = (FUNCTION_SLOT as Record<string, number>)[name.toUpperCase()];
      return slot === undefined ? 0 : user[slot]!;
    };
    return [...names].sort().map((f) => ({ function: f, kernel: kernel.get(f) ?? 0, user: userOf(f) }));
  }

  /** userClasses lists what the kernel let into user space by class, and what its guard dropped. */
  userClasses(): { class: string; packets: number; guardDrops: number }[] {
    if (this.o.fastpath === null) return [];
    return TUN_CLASSES.map((c) => ({
      class: c,
      packets: this.cache.get(`t_${c}`)?.packets ?? 0,
      guardDrops: this.cache.get(`g_${c}`)?.packets ?? 0,
    }));
  }

  async status(): Promise<GatewayStatus> {
    this.beforeStatus();
    await this.refreshCounters();
    const fp = this.o.fastpath;
    return {
      name: this.o.name,
      datapath: fp === null ? 'tun' : 'kernel',
      appliedVersion: fp?.stats.appliedVersion ?? this.o.sw.snapshot?.version ?? 0,
      switchVersion: this.o.sw.snapshot?.version ?? 0,
      lastError: fp?.lastError ?? '',
      functions: this.functionSplit(),
      userClasses: this.userClasses(),
      flowWrites: fp?.stats.flowWrites ?? 0,
      flowWriteFailures: fp?.stats.flowWriteFailures ?? 0,
      lastApplyMs: fp?.stats.lastApplyMs ?? 0,
    };
  }
}

/**
 * readFragFails reads the IP FragFails counters of this namespace (/proc/net/snmp and /proc/net/snmp6,
 * summed): packets the kernel refused to forward because they did not fit the next hop's MTU (IPv4 with
 * DF set: answered with ICMP "fragmentation needed", RFC 1191; IPv6: with a Packet Too Big, RFC 4443
 * §3.2, from ip6_forward).
 */
async function readFragFails(): Promise<number> {
  const lines = (await readFile('/proc/net/snmp', 'utf8')).split('\n').filter((l) => l.startsWith('Ip:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const i = names.indexOf('FragFails');
  const v4 = i < 0 ? 0 : Number(values[i] ?? 0);
  const v6 = /^Ip6FragFails\s+(\d+)$/m.exec(await readFile('/proc/net/snmp6', 'utf8').catch(() => ''));
  return v4 + Number(v6?.[1] ?? 0);
}
