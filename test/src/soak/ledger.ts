// The soak's books: what each load did, when each churn action ran, what the resources were, and the
// verdict against the requirements (issue 15, item 4). Pure: soak.ts feeds it, tests can too.

/** The loads the soak runs. */
export const LOADS = [
  'http-close',
  'http-keepalive',
  'download',
  'nfs-tcp',
  'nfs-udp',
  'nfs-write',
  'iperf3',
  'outbound',
] as const;
export type LoadName = (typeof LOADS)[number];

/** ChurnWindow is one churn action from its start until the cluster said it had recovered (epoch ms). */
export interface ChurnWindow {
  action: string;
  node?: string;
  start: number;
  end: number;
  /** false when the cluster did not recover within the action's bound */
  ok: boolean;
  detail?: string;
}

/** Failure is one or more failed operations of a load, in flight during [from, to] (epoch ms). */
export interface Failure {
  load: LoadName;
  from: number;
  to: number;
  count: number;
  detail: string;
}

/** Sample is one reading of the resources; a process is named by its pid (a restart is a new one). */
export interface Sample {
  t: number;
  gateway?: { pid: number; rssKiB: number; fds: number };
  agents: Record<string, { pid: number; rssKiB: number } | undefined>;
  conntrack?: number;
  /** elements of each kernel flow map (kernel mode) */
  flowMaps?: Record<string, number>;
}

/** The thresholds, printed with the verdict so a reader knows what was asked. */
export const RULES = {
  httpSuccess: 0.999,
  /**
   * a process's RSS is judged from this age on: the gateway's grows with its flow maps, which fill for
   * the FIN timeout (120 s) before they hold steady (measured: 216 → 384 MiB by 160 s, then 385 at 305 s)
   */
  warmupMs: 150_000,
  /** and only if it then lived this long (a shorter life says nothing about a leak) */
  judgeMinMs: 60_000,
  rssGrowth: 0.1,
  /** FDs flat: the last readings' median exceeds the first readings' median after warm-up by at most this */
  fdSlack: 2,
  /** readings averaged at each end (median) */
  edge: 3,
} as const;

export class Ledger {
  readonly ok: Record<LoadName, number> = Object.fromEntries(LOADS.map((l) => [l, 0])) as Record<
    LoadName,
    number
  >;
  readonly failed: Record<LoadName, number> = Object.fromEntries(LOADS.map((l) => [l, 0])) as Record<
    LoadName,
    number
  >;
  readonly failures: Failure[] = [];
  readonly windows: ChurnWindow[] = [];
  readonly samples: Sample[] = [];
  bytesVerified = 0;
  /** bytes iperf3 moved (not checked: iperf3 sends no content worth checking) */
  iperfBytes = 0;
  corruptBytes = 0;
  readonly corrupt: string[] = [];
  /** outbound connections the outside saw from another address or a port outside the node's block */
  readonly unstamped: string[] = [];

  succeed(load: LoadName, n = 1): void {
    this.ok[load] += n;
  }

  fail(f: Failure): void {
    this.failed[f.load] += f.count;
    this.failures.push(f);
  }

  /** inWindow: was [from, to] in flight during some churn action's window? */
  inWindow(from: number, to: number): ChurnWindow | undefined {
    return this.windows.find((w) => from <= w.end && to >= w.start);
  }

  outsideWindows(): Failure[] {
    return this.failures.filter((f) => !this.inWindow(f.from, f.to));
  }

  httpSuccess(): { ok: number; failed: number; rate: number } {
    const ok = this.ok['http-close'] + this.ok['http-keepalive'];
    const failed = this.failed['http-close'] + this.failed['http-keepalive'];
    return { ok, failed, rate: ok + failed === 0 ? 0 : ok / (ok + failed) };
  }
}

/** Life is one process incarnation's readings after warm-up, and what they say. */
export interface Life {
  who: string;
  pid: number;
  /** ms of readings after warm-up */
  judgedMs: number;
  judged: boolean;
  rssFirstKiB: number;
  rssLastKiB: number;
  growth: number;
  fdsFirst?: number;
  fdsLast?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!;
};

/** lives splits the samples into process incarnations (gateway and each agent) and measures each. */
export function lives(samples: readonly Sample[]): Life[] {
  const series = new Map<string, { who: string; pid: number; t: number; rss: number; fds?: number }[]>();
  const add = (who: string, pid: number, t: number, rss: number, fds?: number) => {
    const k = `${who}/${pid}`;
    const s = series.get(k) ?? [];
    s.push({ who, pid, t, rss, ...(fds === undefined ? {} : { fds }) });
    series.set(k, s);
  };
  for (const s of samples) {
    if (s.gateway) add('gateway', s.gateway.pid, s.t, s.gateway.rssKiB, s.gateway.fds);
    for (const [n, a] of Object.entries(s.agents)) if (a) add(`agent ${n}`, a.pid, s.t, a.rssKiB);
  }
  const out: Life[] = [];
  for (const xs of series.values()) {
    const born = xs[0]!.t;
    const after = xs.filter((x) => x.t - born >= RULES.warmupMs);
    if (after.length === 0) continue;
    const judgedMs = after[after.length - 1]!.t - after[0]!.t;
    const first = after.slice(0, RULES.edge);
    const last = after.slice(-RULES.edge);
    const rssFirstKiB = median(first.map((x) => x.rss));
    const rssLastKiB = median(last.map((x) => x.rss));
    const life: Life = {
      who: xs[0]!.who,
      pid: xs[0]!.pid,
      judgedMs,
      judged: judgedMs >= RULES.judgeMinMs && after.length >= 2 * RULES.edge,
      rssFirstKiB,
      rssLastKiB,
      growth: (rssLastKiB - rssFirstKiB) / rssFirstKiB,
    };
    if (xs[0]!.fds !== undefined) {
      life.fdsFirst = median(first.map((x) => x.fds!));
      life.fdsLast = median(last.map((x) => x.fds!));
    }
    out.push(life);
  }
  return out;
}

/** verdict lists every requirement that failed (empty: the soak passed). */
export function verdict(l: Ledger): string[] {
  const bad: string[] = [];
  if (l.corruptBytes > 0) bad.push(`corrupt bytes: ${l.corruptBytes} (${l.corrupt.join('; ')})`);
  const h = l.httpSuccess();
  if (h.rate < RULES.httpSuccess)
    bad.push(`HTTP success ${(h.rate * 100).toFixed(3)} % < ${RULES.httpSuccess * 100} %`);
  const outside = l.outsideWindows();
  if (outside.length > 0)
    bad.push(`${outside.reduce((s, f) => s + f.count, 0)} failure(s) outside every churn window`);
  if (l.unstamped.length > 0) bad.push(`unstamped outbound connections: ${l.unstamped.length}`);
  for (const w of l.windows.filter((x) => !x.ok))
    bad.push(`churn ${w.action}${w.node ? ` ${w.node}` : ''} did not recover: ${w.detail ?? ''}`);
  const ls = lives(l.samples);
  for (const x of ls.filter((y) => y.judged)) {
    if (x.growth >= RULES.rssGrowth)
      bad.push(`${x.who} (pid ${x.pid}) RSS grew ${(x.growth * 100).toFixed(1)} % after warm-up`);
    if (x.fdsFirst !== undefined && x.fdsLast! > x.fdsFirst + RULES.fdSlack)
      bad.push(`${x.who} (pid ${x.pid}) open FDs ${x.fdsFirst} → ${x.fdsLast}`);
  }
  // a gateway restarted every few minutes never lives long enough to be judged: the report says so
  return bad;
}
