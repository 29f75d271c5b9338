// The cluster benchmark: onehost vs plain kernel routing vs HAProxy (mode tcp), in one lab, one run.
//
// Paths (all from outside hosts, through the gateway host):
//   onehost       c1 → the cluster address: the gateway's kernel fast path (nftables marks, VXLAN routes),
//                 or what it leaves to user space (TUN → gateway app) → node; replies straight back (DSR)
//   kernel route  c2 → n1's own address: the gateway host's kernel forwards (c2 is on the management list)
//   HAProxy       c1 → HAProxy mode tcp on the gateway host's outside address → n1…n3 (a proxy: two sockets)
// HTTP goes round robin to nginx on n1…n3 through onehost and HAProxy, to n1's nginx on the kernel route.
// iperf3 always reaches n1: the lab's server (:5201, pinned to n1 in the switch, see benchGatewayYaml)
// through onehost and HAProxy, a server of our own bound to n1's address (:5301) on the kernel route.
// Workloads: iperf3 upload and download (-R), wrk with Connection: close, wrk over one keep-alive
// connection (latency: median and p99 in µs, two rows from one run; lower is better, the ratio is still
// onehost ÷ peer), iperf3 UDP with 64-byte payloads (packets the server received per second).
// Repetitions are interleaved (every workload on every path, then the next repetition) and the table
// shows medians and ratios from this run only.
// The IPv6 rows (upload6, download6, http_close6, latency6, udp64_6) run the same loads over IPv6, in the same
// lab: onehost is c1 → the IPv6 cluster address 2001:db8:113::80 (IPv6 inside VXLAN over the IPv4
// interconnect); the kernel route is c2 → n1's own IPv6 address, which the bench adds with a prefix of
// its own on the interconnect (route6.ts), and its bound iperf3 listens on :5302; HAProxy listens on the
// gateway host's outside IPv6 address too and reaches the nodes over IPv4. Choosing one turns IPv6 on in
// the lab; without them the lab stays IPv4 only.
// nfs-read (nfs-read.ts): nfs-cp of a 256 MiB file from n1's NFS export through the cluster address
// (delayed binding) and directly (c2 → n1's own address), alternating; its figures come last.
// Around each onehost load it scrapes the gateway's /metrics: TUN figures, drops, and per routing
// function the packets the kernel and user space decided (summed over the repetitions); the gateway
// process's CPU per workload gets a line of its own (and `bench <workload> gateway_cpu=<cores>`).
// It prints figures and asserts nothing about time. Every load stops by itself (-t / -d); the lab,
// HAProxy and every process started here are stopped when the run ends, fails or is interrupted.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { LabProcess } from '@onehost/testkit';
import { type Cluster, startCluster } from '../cluster.js';
import { CpuMeter, type CpuUse, initClock, waitQuiet } from './cpu.js';
import {
  type Counters,
  type GatewayWork,
  gatewayWork,
  type Split,
  scrapeGateway,
} from './gateway-counters.js';
import { HAPROXY_PORTS, startHaproxy } from './haproxy.js';
import { BOUND_IPERF3_PORT, BOUND_IPERF3_PORT6, startBoundIperf3 } from './iperf3-server.js';
import {
  NFS_IDS,
  NFS_PARALLEL_ID,
  NFS_READ_ID,
  NFS_READ6_ID,
  NFS_WRITE_ID,
  type NfsWay,
  nfsAgentArgs,
  nfsReadFailed,
  PARALLEL_MIB,
  reportNfsRead,
  runNfsRead,
} from './nfs-read.js';
import { fmt, median, pct, spread, table } from './report.js';
import { addKernelRoute6, ROUTE6 } from './route6.js';
import {
  type Figure,
  PATH_TITLES,
  PATHS,
  type PathId,
  type Sample,
  type Target,
  value,
  WORKLOADS,
  type Workload,
} from './workloads.js';

const USAGE = `usage: npm run bench -w @onehost/e2e [-- --reps N] [--seconds S] [--only w1,w2]
  --reps N      interleaved repetitions (default 5, at least 3 for a meaningful median)
  --seconds S   length of each load (default 3)
  --only LIST   workloads to run: ${[...WORKLOADS.map((w) => w.id), ...Object.values(NFS_IDS)].join(',')} (default all)
                latency: one keep-alive connection (wrk -c1 --latency), rows latency_p50 and latency_p99
                upload6, download6, http_close6, latency6, udp64_6: the same over IPv6 (the IPv6 cluster address,
                n1's own IPv6 address on the kernel route, HAProxy on the outside IPv6 address)
                ${NFS_READ_ID}: nfs-cp of a file from n1 through the cluster address vs directly, --reps
                (at least 15) alternating copies each; ${NFS_WRITE_ID}: the same into n2's writable export;
                ${NFS_PARALLEL_ID}: 20 copies of a file from n1 at once, the aggregate; ${NFS_READ6_ID}:
                ${NFS_READ_ID} through the IPv6 cluster address (the direct side IPv4's); each prints the
                gateway's and the agent's CPU during the cluster copies, and per copy; any of them
                starts nfs-ganesha on n1 and n2 (lab nfs), so only when chosen
  --readers-mib M  the size of the file ${NFS_PARALLEL_ID} copies (default ${PARALLEL_MIB}; a few MiB: the
                connections' cost dominates)
As root; builds its own lab of network namespaces and removes it at the end. Prints medians per path and
their ratios (onehost ÷ peer; for latency lower is better), CPU, the gateway's kernel vs user-space split
per routing function, and machine lines: bench <row> onehost=… kernel=… haproxy=… ratio_kernel=…
ratio_haproxy=… unit=…, and bench <workload> gateway_cpu=<cores of the gateway process, onehost loads>.`;

/** What the gateway process may use of one core during a load on the kernel data path. */
const GATEWAY_CPU_TARGET = 0.05;

/** Pause between two loads, so one run's tail (iperf3 server reset, closing sockets) misses the next. */
const PAUSE_MS = 500;

/**
 * benchGatewayYaml sets the benchmark's own entries for iperf3 (tcp and udp 5201), whatever the lab
 * config says: iperf3's control and data connections must meet one server, and a policy that places
 * each connection by its client port (Maglev) can split them over nodes ("unable to connect stream").
 * So: the connection manager (the heavier function, as a balanced service gets) and udp-flow, both
 * restricted to n1, the node the other two paths reach too. With `ipv6` the outside also gets the IPv6
 * cluster address (the same entries serve it). The heartbeat timers are the shipped ones (the example
 * config's): the lab's 100/350 ms, set for quick failover tests, took n1 down ten times in one run of 20
 * parallel 256 MiB copies, whose lost segments cost its heartbeat stream retransmission timeouts.
 * Throws when the config has no `entries:` or no heartbeat line.
 */
function benchGatewayYaml(yaml: string, ipv6: boolean): string {
  const shipped = /^\s*heartbeat:.*$/m.exec(readFileSync(SHIPPED_GATEWAY_YAML, 'utf8'))?.[0];
  const heartbeat = /^\s*heartbeat:.*$/m;
  if (shipped === undefined || !heartbeat.test(yaml))
    throw new Error('the lab or the example gateway.yaml has no "heartbeat:" line');
  const lines = yaml
    .replace(heartbeat, shipped)
    .split('\n')
    .filter((l) => !/^\s*-\s*\{.*\bport:\s*5201\b/.test(l));
  const at = lines.findIndex((l) => /^entries:\s*$/.test(l));
  if (at < 0) throw new Error('the lab gateway.yaml has no "entries:" list');
  lines.splice(
    at + 1,
    0,
    '  - { protocol: tcp, port: 5201, function: connection, policy: maglev, rederive: true, nodes: [n1] }',
    '  - { protocol: udp, port: 5201, function: udp-flow, idleTimeout: 30, nodes: [n1] }',
  );
  if (ipv6) {
    const v4 = lines.findIndex((l) => /^\s*-\s*\{ network: outside, address: 203\.0\.113\.80\b/.test(l));
    if (v4 < 0) throw new Error('the lab gateway.yaml has no outside cluster address 203.0.113.80');
    lines.splice(v4 + 1, 0, `  - { network: outside, address: "${VIP6}" }`);
  }
  // HAProxy, the peer, listens on the gateway host's outside address, which the host's input filter
  // keeps from clients that are not management sources (docs/gateway.md): c1 drives the loads; over
  // IPv6 c2 (the kernel route's client) is one by its IPv6 address too
  const six = ipv6 ? '2001:db8:113::10/128, 2001:db8:113::11/128, ' : '';
  return lines.join('\n').replace(/^(\s*allow: \[)/m, (_m, head: string) => `${head}203.0.113.10/32, ${six}`);
}

/** The example configuration operators start from (its heartbeat timers are the bench's). */
const SHIPPED_GATEWAY_YAML = new URL('../../../infra/etc/gateway.yaml', import.meta.url);

/** The lab's IPv6 cluster address (packages/lab plan.ts), served when an IPv6 workload is chosen. */
const VIP6 = '2001:db8:113::80';

interface Options {
  reps: number;
  seconds: number;
  /** the iperf3 / wrk workloads over the three paths (may be empty) */
  workloads: Workload[];
  /** the NFS copy scenarios chosen, in order */
  nfs: NfsWay[];
  /** an IPv6 workload is chosen: the lab gets IPv6 and the gateway its IPv6 cluster address */
  ipv6: boolean;
  /** the size of the file each of the 20 readers copies */
  readersMib: number;
}

function options(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      reps: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '3' },
      only: { type: 'string' },
      'readers-mib': { type: 'string', default: String(PARALLEL_MIB) },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const reps = Number(values.reps);
  const seconds = Number(values.seconds);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50)
    throw new Error(`--reps: want 1…50, got ${values.reps}`);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 30)
    throw new Error(`--seconds: want 1…30, got ${values.seconds}`);
  const readersMib = Number(values['readers-mib']);
  if (!Number.isInteger(readersMib) || readersMib < 1 || readersMib > 1024)
    throw new Error(`--readers-mib: want 1…1024, got ${values['readers-mib']}`);
  const nfsIds = Object.entries(NFS_IDS) as [NfsWay, string][];
  const ids = values.only?.split(',') ?? [...WORKLOADS.map((w) => w.id), ...nfsIds.map(([, id]) => id)];
  const workloads = ids
    .filter((id) => !nfsIds.some(([, n]) => n === id))
    .map((id) => {
      const w = WORKLOADS.find((x) => x.id === id);
      if (!w) throw new Error(`--only: no workload ${id}`);
      return w;
    });
  const nfs = nfsIds.filter(([, id]) => ids.includes(id)).map(([way]) => way);
  const ipv6 = workloads.some((w) => w.ipv6 === true) || nfs.includes('read6');
  return { reps, seconds, workloads, nfs, readersMib, ipv6 };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** showSample prints a sample's figures for the progress lines: `4906 req/s`, or named when there are several. */
function showSample(w: Workload, s: Sample): string {
  const named = w.figures.length > 1;
  return w.figures.map((f) => `${named ? `${f.id} ` : ''}${fmt(value(s, f), f.digits)} ${f.unit}`).join(', ');
}

type Key = `${string}/${PathId}`;

/** Results collects every sample and what was measured around it. */
class Results {
  readonly samples = new Map<Key, Sample[]>();
  readonly cpu = new Map<Key, CpuUse[]>();
  readonly gateway = new Map<string, GatewayWork[]>();
  /** how long each onehost load waited for the gateway to go quiet after the scrape before it */
  readonly quietMs: number[] = [];

  /** gatewayCpu is the gateway process's CPU (user + sys, in cores) in each of workload `w`'s runs on `p`. */
  gatewayCpu(w: Workload, p: PathId): number[] {
    return (this.cpu.get(`${w.id}/${p}`) ?? []).map((u) => {
      const g = u.procs.gateway;
      return g ? g.user + g.sys : Number.NaN;
    });
  }

  add<T>(m: Map<string, T[]>, key: string, v: T): void {
    const list = m.get(key) ?? [];
    list.push(v);
    m.set(key, list);
  }

  /** values are figure `f` of workload `w`'s samples on path `p`, in run order (NaN where one failed). */
  values(w: Workload, f: Figure, p: PathId): number[] {
    return (this.samples.get(`${w.id}/${p}`) ?? []).map((s) => value(s, f));
  }
}

/** Bench runs the loads against a started cluster and HAProxy. */
class Bench {
  readonly results = new Results();
  readonly targets: Record<PathId, Target>;
  /** the IPv6 workloads' targets (the same paths over IPv6) */
  readonly targets6: Record<PathId, Target>;
  private readonly pids: Record<string, number>;

  constructor(
    readonly c: Cluster,
    haproxy: LabProcess,
    readonly o: Options,
  ) {
    const a = c.lab.addresses;
    this.targets = {
      onehost: { client: 'c1', address: c.vip, iperf3Port: 5201, httpPort: 80, udpPort: 5201 },
      kernel: {
        client: 'c2',
        address: a.nodes[0]!,
        iperf3Port: BOUND_IPERF3_PORT,
        httpPort: 80,
        udpPort: BOUND_IPERF3_PORT,
      },
      haproxy: {
        client: 'c1',
        address: a.gateway.outside,
        iperf3Port: HAPROXY_PORTS.iperf3,
        httpPort: HAPROXY_PORTS.http,
        udpPort: undefined,
      },
    };
    const a6 = a.ipv6;
    this.targets6 = {
      onehost: { client: 'c1', address: a6.vip, iperf3Port: 5201, httpPort: 80, udpPort: 5201 },
      kernel: {
        client: 'c2',
        address: ROUTE6.n1,
        iperf3Port: BOUND_IPERF3_PORT6,
        httpPort: 80,
        udpPort: BOUND_IPERF3_PORT6,
      },
      haproxy: { ...this.targets.haproxy, address: a6.gateway },
    };
    this.pids = { gateway: c.gateway.pid, haproxy: haproxy.pid };
  }

  /** target is where workload `w` goes on path `p`: its address family's target. */
  target(w: Workload, p: PathId): Target {
    return (w.ipv6 === true ? this.targets6 : this.targets)[p];
  }

  /** check fetches one page over every path, so a broken path fails the run before any load. */
  async check(): Promise<void> {
    for (const p of PATHS) {
      const t = this.targets[p];
      const page = await this.c.curl(t.client, `http://${t.address}:${t.httpPort}/`);
      if (!/^n\d\n$/.test(page)) throw new Error(`${p}: unexpected page ${JSON.stringify(page)}`);
      if (!this.o.ipv6) continue;
      const t6 = this.targets6[p];
      const page6 = await this.c.curl(t6.client, `http://[${t6.address}]:${t6.httpPort}/`, ['-6']);
      if (!/^n\d\n$/.test(page6)) throw new Error(`${p} (IPv6): unexpected page ${JSON.stringify(page6)}`);
    }
  }

  /** once runs one load; one retry after a failure (e.g. an iperf3 server still closing the last test). */
  private async once(w: Workload, p: PathId, seconds: number): Promise<Sample> {
    try {
      return await w.run(this.c.lab, this.target(w, p), seconds);
    } catch (first) {
      await sleep(1000);
      try {
        return await w.run(this.c.lab, this.target(w, p), seconds);
      } catch (err) {
        return { values: {}, error: `${(first as Error).message}; retry: ${(err as Error).message}` };
      }
    }
  }

  /** measure runs one load and records it with the CPU and (onehost) gateway counters around it. */
  async measure(w: Workload, p: PathId): Promise<Sample> {
    const before: Counters | undefined = p === 'onehost' ? await scrapeGateway(this.c) : undefined;
    if (before) this.results.quietMs.push(await waitQuiet(this.c.gateway.pid));
    const meter = new CpuMeter(this.pids);
    meter.start();
    const s = await this.once(w, p, this.o.seconds);
    const use = meter.stop();
    const key: Key = `${w.id}/${p}`;
    this.results.add(this.results.samples, key, s);
    if (s.error === undefined) this.results.add(this.results.cpu, key, use);
    if (before && s.error === undefined)
      this.results.add(
        this.results.gateway,
        w.id,
        gatewayWork(before, await scrapeGateway(this.c), use.wallSeconds),
      );
    return s;
  }

  /** warmUp runs every load for one second and forgets the figures (JIT, ARP, connection tables). */
  async warmUp(): Promise<void> {
    for (const w of this.o.workloads)
      for (const p of PATHS) {
        if (w.id.startsWith('udp64') && this.target(w, p).udpPort === undefined) continue;
        await this.once(w, p, 1);
        await sleep(PAUSE_MS);
      }
  }

  /** runAll runs the repetitions, interleaved: every workload on every path, then the next repetition. */
  async runAll(): Promise<void> {
    for (let rep = 1; rep <= this.o.reps; rep++) {
      for (const w of this.o.workloads) {
        for (const p of PATHS) {
          const s = await this.measure(w, p);
          const shown = s.error ? (s.error === 'n/a' ? 'n/a' : `FAILED: ${s.error}`) : showSample(w, s);
          console.error(
            `rep ${rep}/${this.o.reps} ${w.id.padEnd(10)} ${PATH_TITLES[p].padEnd(12)} ${shown}${s.note ? ` (${s.note})` : ''}`,
          );
          if (s.error !== 'n/a') await sleep(PAUSE_MS);
        }
      }
    }
  }
}

/** splitTable is one workload's packets per function, kernel vs user space, summed over its runs. */
function splitTable(id: string, runs: readonly GatewayWork[]): string[] {
  if (runs.length === 0) return [`${id}: no onehost run measured`];
  const sum = new Map<string, Split>();
  const classes = new Map<string, { passed: number; guardDrops: number }>();
  for (const g of runs) {
    for (const [f, x] of Object.entries(g.functions)) {
      const t = sum.get(f) ?? { kernel: 0, user: 0 };
      sum.set(f, { kernel: t.kernel + x.kernel, user: t.user + x.user });
    }
    for (const [c, x] of Object.entries(g.userSpace)) {
      const t = classes.get(c) ?? { passed: 0, guardDrops: 0 };
      classes.set(c, { passed: t.passed + x.passed, guardDrops: t.guardDrops + x.guardDrops });
    }
  }
  if (sum.size === 0) return [`${id}: no packets counted`];
  const share = (x: Split) =>
    x.kernel + x.user > 0 ? `${fmt((100 * x.kernel) / (x.kernel + x.user), 1)}%` : 'n/a';
  const rows = [...sum].sort((a, b) => b[1].kernel + b[1].user - (a[1].kernel + a[1].user));
  const all = rows.reduce((a, [, x]) => ({ kernel: a.kernel + x.kernel, user: a.user + x.user }), {
    kernel: 0,
    user: 0,
  });
  const out = [
    `${id}:`,
    table(
      ['function', 'kernel pkts', 'user pkts', 'kernel share'],
      [...rows, ['all', all] as const].map(([f, x]) => [f, String(x.kernel), String(x.user), share(x)]),
    ),
  ];
  const passed = [...classes].map(
    ([c, x]) => `${c} ${x.passed}${x.guardDrops > 0 ? ` (guard dropped ${x.guardDrops})` : ''}`,
  );
  if (passed.length > 0) out.push(`  left to user space, by class: ${passed.join(', ')}`);
  return out;
}

function report(b: Bench, load: { start: number[]; end: number[] }): string {
  const { results: r, o } = b;
  const out: string[] = [];
  const ratio = (a: number, c: number) =>
    Number.isFinite(a) && Number.isFinite(c) && c > 0 ? a / c : Number.NaN;
  out.push(
    `onehost bench: ${o.reps} interleaved repetitions × ${o.seconds} s per load, order ${PATHS.map((p) => PATH_TITLES[p]).join(' → ')}; medians`,
    `load average (1 min) at start ${load.start[0]!.toFixed(2)}, at end ${load.end[0]!.toFixed(2)}`,
    '',
  );
  // one row per figure: a workload whose run yields several figures fills several rows
  const figures = o.workloads.flatMap((w) => w.figures.map((f) => ({ w, f })));
  const rows = figures.map(({ w, f }) => {
    const m = PATHS.map((p) => median(r.values(w, f, p)));
    return { f, m, rk: ratio(m[0]!, m[1]!), rh: ratio(m[0]!, m[2]!) };
  });
  out.push(
    table(
      ['workload', 'unit', ...PATHS.map((p) => PATH_TITLES[p]), 'onehost/kernel', 'onehost/HAProxy'],
      rows.map(({ f, m, rk, rh }) => [
        f.id,
        f.unit,
        ...m.map((v) => fmt(v, f.digits)),
        fmt(rk, 2),
        fmt(rh, 2),
      ]),
    ),
  );
  const lower = rows.filter(({ f }) => f.better === 'lower').map(({ f }) => f.id);
  if (lower.length > 0)
    out.push(
      `lower is better for ${lower.join(', ')}; their ratios are onehost ÷ peer too, so ≤ 1.10 means onehost is at most 10% slower`,
    );
  for (const w of o.workloads)
    for (const f of w.aside ?? [])
      out.push(
        `${f.id} (${f.unit}, the same runs; stalls wrk's latency leaves out show here): ${PATHS.map((p) => `${PATH_TITLES[p]} ${fmt(median(r.values(w, f, p)), f.digits)}`).join(', ')}`,
      );
  out.push('');
  for (const { f, m, rk, rh } of rows)
    out.push(
      `bench ${f.id} onehost=${fmt(m[0]!, f.digits)} kernel=${fmt(m[1]!, f.digits)} haproxy=${fmt(m[2]!, f.digits)} ratio_kernel=${fmt(rk, 2)} ratio_haproxy=${fmt(rh, 2)} unit=${f.unit}`,
    );
  for (const w of o.workloads)
    out.push(`bench ${w.id} gateway_cpu=${fmt(median(r.gatewayCpu(w, 'onehost')), 3)}`);
  // Loads of one repetition run seconds apart, so a ratio within a repetition cancels slow drift in what
  // else the machine does; the median of those ratios is a second estimate next to the ratio of medians.
  const perRep = (w: Workload, f: Figure, p: PathId) => {
    const a = r.values(w, f, 'onehost');
    const b = r.values(w, f, p);
    const q = a.map((v, i) => ratio(v, b[i] ?? Number.NaN)).filter(Number.isFinite);
    return q.length === 0
      ? 'n/a'
      : `${fmt(median(q), 2)} [${fmt(Math.min(...q), 2)}–${fmt(Math.max(...q), 2)}]`;
  };
  out.push('', 'ratios within each repetition, median [min–max]:');
  out.push(
    table(
      ['workload', 'onehost/kernel', 'onehost/HAProxy'],
      figures.map(({ w, f }) => [f.id, perRep(w, f, 'kernel'), perRep(w, f, 'haproxy')]),
    ),
  );
  out.push('', 'spread of the samples, (max − min) / median:');
  out.push(
    table(
      ['workload', ...PATHS.map((p) => PATH_TITLES[p])],
      figures.map(({ w, f }) => [f.id, ...PATHS.map((p) => pct(spread(r.values(w, f, p))))]),
    ),
  );

  out.push('', 'CPU during the loads (medians; process: 100% = one core busy; machine: share of all cores):');
  const cpuRows: string[][] = [];
  for (const w of o.workloads)
    for (const p of PATHS) {
      const uses = r.cpu.get(`${w.id}/${p}`) ?? [];
      if (uses.length === 0) continue;
      const proc = p === 'onehost' ? 'gateway' : p === 'haproxy' ? 'haproxy' : undefined;
      const pm = (f: (u: CpuUse) => number) => pct(median(uses.map(f)));
      cpuRows.push([
        w.id,
        PATH_TITLES[p],
        proc ?? '-',
        proc ? pm((u) => u.procs[proc]?.user ?? Number.NaN) : '-',
        proc ? pm((u) => u.procs[proc]?.sys ?? Number.NaN) : '-',
        pm((u) => u.machineBusy),
        pm((u) => u.machineSoftirq),
      ]);
    }
  out.push(
    table(['workload', 'path', 'process', 'proc user', 'proc sys', 'machine busy', 'softirq'], cpuRows),
  );
  // The gateway's own line per workload, next to what it uses when the load goes elsewhere (kernel
  // route: heartbeats, timers), which is the floor of the figure.
  const pct1 = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : 'n/a');
  out.push('');
  for (const w of o.workloads) {
    const v = median(r.gatewayCpu(w, 'onehost'));
    const verdict = Number.isFinite(v) ? (v <= GATEWAY_CPU_TARGET ? 'met' : 'not met') : 'n/a';
    out.push(
      `gateway process: ${pct1(v)} of a core during ${w.id} (target ≤ ${pct1(GATEWAY_CPU_TARGET)}: ${verdict}; at rest, while the kernel route carried ${w.id}: ${pct1(median(r.gatewayCpu(w, 'kernel')))})`,
    );
  }
  out.push(
    `(each onehost load starts once the gateway is quiet after the /metrics scrape before it, ≤ 10% of a core over 200 ms: waited ${fmt(median(r.quietMs), 0)} ms median, ${fmt(Math.max(0, ...r.quietMs), 0)} ms at most)`,
  );

  out.push('', 'onehost gateway counters during its loads (medians; drops summed over the repetitions):');
  out.push(
    table(
      ['workload', 'TUN pkt/s', 'pkts/batch', 'pkts/sendmmsg', 'drops'],
      o.workloads.map((w) => {
        const g = r.gateway.get(w.id) ?? [];
        const drops = new Map<string, number>();
        for (const x of g)
          for (const [k, v] of Object.entries(x.drops)) drops.set(k, (drops.get(k) ?? 0) + v);
        return [
          w.id,
          fmt(median(g.map((x) => x.tunPps)), 0),
          fmt(median(g.map((x) => x.perBatch)), 1),
          fmt(median(g.map((x) => x.perSend)), 1),
          [...drops].map(([k, v]) => `${k} ${v}`).join(', ') || '0',
        ];
      }),
    ),
  );

  out.push(
    '',
    `onehost: who decided each packet, per function — the kernel (fast path) or user space (the switch, via the TUN); packets summed over ${o.reps} repetition${o.reps === 1 ? '' : 's'}, towards the cluster only (replies go straight back); the kernel counts packets as received, GRO may have merged segments:`,
  );
  for (const w of o.workloads) out.push(...splitTable(w.id, r.gateway.get(w.id) ?? []));

  out.push('', 'samples, in run order:');
  for (const w of o.workloads)
    for (const p of PATHS) {
      const list = r.samples.get(`${w.id}/${p}`) ?? [];
      for (const f of w.figures) {
        const text = list.map((s) =>
          s.error ? (s.error === 'n/a' ? 'n/a' : 'FAILED') : fmt(value(s, f), f.digits),
        );
        out.push(`  ${f.id.padEnd(11)} ${PATH_TITLES[p].padEnd(12)} ${text.join(' ')}`);
      }
      // notes and failures once per run, after its figures
      for (const s of list) if (s.note) out.push(`    ${s.note}`);
      for (const s of list) if (s.error && s.error !== 'n/a') out.push(`    failed: ${s.error}`);
    }
  return out.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const o = options(argv);
  if (!o) {
    console.log(USAGE);
    return 0;
  }
  await initClock();
  let cluster: Cluster | undefined;
  let haproxy: LabProcess | undefined;
  let iperf3: LabProcess | undefined;
  let iperf36: LabProcess | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= (async () => {
      await haproxy?.stop(3000);
      await iperf3?.stop(3000);
      await iperf36?.stop(3000);
      await cluster?.stop();
    })();
    return cleaning;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`bench: ${sig}, stopping the lab`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    console.error('bench: starting the lab and the cluster');
    cluster = await startCluster({
      gatewayYaml: (y) => benchGatewayYaml(y, o.ipv6),
      ...(o.ipv6 ? { ipv6: true } : {}),
      ...(o.nfs.length > 0 ? { nfs: true, agentArgs: nfsAgentArgs } : {}),
    });
    if (o.workloads.length > 0) {
      haproxy = await startHaproxy(cluster, o.ipv6 ? cluster.lab.addresses.ipv6.gateway : undefined);
      iperf3 = await startBoundIperf3(cluster);
      if (o.ipv6) {
        await addKernelRoute6(cluster);
        iperf36 = await startBoundIperf3(cluster, ROUTE6.n1, BOUND_IPERF3_PORT6);
      }
      const bench = new Bench(cluster, haproxy, o);
      // For profiling from another shell, e.g. `perf record -g -p <pid>` during the onehost loads.
      console.error(`bench: gateway pid ${cluster.gateway.pid}, haproxy pid ${haproxy.pid}`);
      await bench.check();
      console.error('bench: warm-up (1 s per load, not counted)');
      await bench.warmUp();
      const load = { start: loadavg(), end: [] as number[] };
      await bench.runAll();
      load.end = loadavg();
      console.log(report(bench, load));
    }
    for (const way of o.nfs) {
      // last, and on its own: a failure here (the cluster side before delayed binding works) must not
      // cost the figures above, and the direct figure is printed whatever happens to the cluster side
      const id = NFS_IDS[way];
      console.error(`bench: ${id} (${o.reps} alternating repetitions)`);
      let text: string;
      try {
        text = reportNfsRead(
          await runNfsRead(cluster, o.reps, (line) => console.error(line), way, o.readersMib, VIP6),
        );
      } catch (err) {
        text = nfsReadFailed(err, id);
      }
      console.log(o.workloads.length > 0 || way !== o.nfs[0] ? `\n${text}` : text);
    }
    return 0;
  } finally {
    await cleanup();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
