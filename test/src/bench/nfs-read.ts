// The nfs-read and nfs-write scenarios: nfs-cp (libnfs, NFSv3 over TCP) of one file from n1's export
// (read), or into n2's writable export (write), through the cluster address (c1 → 203.0.113.80: delayed
// binding, docs/splice.md; nfs-read6: through the IPv6 one) and directly to the node's own address (c2 →
// 198.18.0.1x, allowed by the management list: the gateway host's kernel forwards), in the same run,
// alternating. Each copy is wall-clocked around the nfs-cp process (portmapper, MNT and connection
// setup included: a few ms next to the transfer) and bounded by COPY_TIMEOUT_MS: libnfs has no timeout
// of its own and waits forever on a connection nobody answers. A side that fails is reported with its
// reason and the other side's figure is still printed; the last line is always
// `nfs-read direct=<MB/s> cluster=<MB/s> ratio=<cluster/direct>` (nfs-write for writes).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from '../cluster.js';
import { CpuMeter } from './cpu.js';
import { fmt, median } from './report.js';

export const NFS_READ_ID = 'nfs-read';
export const NFS_WRITE_ID = 'nfs-write';
/** 20 readers at once, each copying the same file: the aggregate against the same directly. */
export const NFS_PARALLEL_ID = 'nfs-read-20';
/**
 * The read through the IPv6 cluster address (docs/splice.md, IPv6); the direct side stays IPv4's (a
 * node has no IPv6 address of its own to copy from).
 */
export const NFS_READ6_ID = 'nfs-read6';
export type NfsWay = 'read' | 'write' | 'read-20' | 'read6';
/** Each scenario's name in `--only` and in the report. */
export const NFS_IDS: Record<NfsWay, string> = {
  read: NFS_READ_ID,
  write: NFS_WRITE_ID,
  'read-20': NFS_PARALLEL_ID,
  read6: NFS_READ6_ID,
};
/**
 * Readers at once in the parallel scenario, and the size of the file each copies by default: the single
 * copy's, so that the CPU figure is the transfer's. With a few MiB each (`--readers-mib`) it is mostly
 * the connections' (four per nfs-cp: two portmapper, MOUNT and NFS; the last two held, then handed over).
 */
const PARALLEL = 20;
export const PARALLEL_MIB = 256;
/** The file's size: a direct copy takes well under a second, so every copy fits the 10 s budget. */
export const NFS_READ_MIB = 256;
/**
 * A single copy lasts a third of a second (a write about one): both sides' samples spread 300–1000 MB/s
 * on this 2-core machine, and the median of 5 or 7 moved the ratio between 0.67 and 1.02 from run to run
 * of the same code. The single copies take at least this many repetitions.
 */
const SINGLE_COPY_MIN_REPS = 15;
/** Bound of one copy (the 10 s budget of a run, plus room for a slow machine); of 20 at once, per 32 MiB each. */
const COPY_TIMEOUT_MS = 15_000;
const PARALLEL_TIMEOUT_MS_PER_32_MIB = 4_000;
/** The node and export read: the lab's n1; written: n2, whose export is writable (DEFAULT_NFS). */
const NODE: Record<NfsWay, string> = { read: 'n1', write: 'n2', 'read-20': 'n1', read6: 'n1' };
/**
 * The file each read scenario copies, a name of its own: written behind nfs-ganesha's back (straight into
 * the export's tree), a file of the same name would keep the size ganesha's attribute cache holds from
 * the scenario before (seen: the 20 readers of a 32 MiB file read as the 256 MiB one and timed out).
 */
const FILES: Record<NfsWay, string> = {
  read: 'bench-nfs-read.bin',
  write: 'bench-nfs-write-source.bin',
  'read-20': 'bench-nfs-read-20.bin',
  read6: 'bench-nfs-read6.bin',
};
const PAUSE_MS = 300;

type Side = 'direct' | 'cluster';
const SIDES: readonly Side[] = ['direct', 'cluster'];

interface Copy {
  mbps: number;
  error?: string;
  /** cluster copies: the gateway's and the node agent's CPU during the copy, in cores: user + system, and user alone (JavaScript, the addons' own work) */
  cpu?: { gateway: number; agent: number; gatewayUser: number; agentUser: number };
}

export interface NfsReadResult {
  way: NfsWay;
  id: string;
  node: string;
  samples: Record<Side, Copy[]>;
  /** why a side stopped being tried (its warm-up copy failed) */
  skipped: Partial<Record<Side, string>>;
  targets: Record<Side, { client: string; server: string }>;
  path: string;
  bytes: number;
  /** copies at once (each of `bytes`) */
  parallel: number;
  reps: number;
  /** the gateway's delayed-binding counters after the run, when a cluster copy failed */
  spliceCounters?: string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * nfsAgentArgs gives the agents of nodes that run an NFS server their ganesha config (they register
 * the exports and MOUNT ports with the gateway); other nodes get nothing.
 */
export function nfsAgentArgs(name: string, lab: Cluster['lab']): string[] {
  return lab.nfs.some((s) => s.node === name) ? ['--ganesha-config', lab.nfsOf(name).config] : [];
}

/**
 * runNfsRead writes the file into n1's export, waits until n1 registered its MOUNT service, then runs one
 * warm-up copy per side and `asked` alternating repetitions (single copies: at least 15). `log` gets a
 * progress line per copy. `vip6` is the IPv6 cluster address `read6` copies through.
 * Throws only when the scenario cannot be set up (no NFS server on n1, no registration).
 */
export async function runNfsRead(
  c: Cluster,
  asked: number,
  log: (line: string) => void,
  way: NfsWay = 'read',
  readersMib = PARALLEL_MIB,
  vip6 = '',
): Promise<NfsReadResult> {
  const reps = way === 'read-20' ? asked : Math.max(asked, SINGLE_COPY_MIN_REPS);
  const lab = c.lab;
  const node = NODE[way];
  const ID = NFS_IDS[way];
  if (way === 'read6' && vip6 === '') throw new Error(`${ID} needs the IPv6 cluster address`);
  const reading = way !== 'write';
  const parallel = way === 'read-20' ? PARALLEL : 1;
  const nfs = lab.nfsOf(node);
  const bytes = (parallel > 1 ? readersMib : NFS_READ_MIB) * 1024 * 1024;
  const timeoutMs =
    parallel > 1
      ? Math.max(COPY_TIMEOUT_MS, Math.ceil(readersMib / 32) * PARALLEL_TIMEOUT_MS_PER_32_MIB)
      : COPY_TIMEOUT_MS;
  const data = randomBytes(bytes);
  const sha = createHash('sha256').update(data).digest('hex');
  await c.waitForMount([node], 'tcp');
  const result: NfsReadResult = {
    way,
    id: ID,
    node,
    samples: { direct: [], cluster: [] },
    skipped: {},
    targets: {
      direct: { client: 'c2', server: lab.addresses.nodes[Number(node.slice(1)) - 1]! },
      // libnfs takes an IPv6 address in a URL unbracketed only (docs/gateway.md)
      cluster: { client: 'c1', server: way === 'read6' ? vip6 : c.vip },
    },
    path: nfs.path,
    bytes,
    parallel,
    reps,
  };
  const meter = new CpuMeter({ gateway: c.gateway.pid, agent: c.agents.get(node)?.pid ?? -1 });
  // the copies land in tmpfs when there is one, so the local disk does not time the network
  const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'onehost-nfs-read-'));
  // reads copy the file in the export; writes copy a local one into the export, a new name each time
  const FILE = FILES[way];
  const source = join(reading ? nfs.tree : dir, FILE);
  await writeFile(source, data);
  const checked = new Set<Side>();
  let n = 0;
  /**
   * copy runs `parallel` nfs-cp at once and times them together; the first good copy of each side is
   * checked byte for byte (sha256), the others by size.
   */
  const copy = async (side: Side): Promise<Copy> => {
    const t = result.targets[side];
    const names = Array.from({ length: parallel }, () => `${side}-${++n}.bin`);
    // nfs-cp creates its destination with O_EXCL
    const dsts = names.map((name) => (reading ? join(dir, name) : join(nfs.tree, name)));
    try {
      if (side === 'cluster') meter.start();
      const t0 = performance.now();
      const runs = await Promise.all(
        names.map((name, i) => {
          const url = `nfs://${t.server}${result.path}/${reading ? FILE : name}`;
          return lab
            .exec(t.client, 'nfs-cp', reading ? [url, dsts[i]!] : [source, url], {
              timeoutMs,
            })
            .then(
              () => null,
              (e: Error) =>
                /killed/.test(e.message)
                  ? `nfs-cp ${url} from ${t.client} did not finish within ${timeoutMs / 1000} s (killed)`
                  : e.message.split('\n')[0]!,
            );
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const used = side === 'cluster' ? meter.stop() : null;
      const failed = runs.find((r) => r !== null);
      if (failed) return { mbps: Number.NaN, error: failed };
      for (const dst of dsts) {
        const size = (await stat(dst)).size;
        if (size !== bytes) return { mbps: Number.NaN, error: `copied ${size} bytes of ${bytes}` };
      }
      if (!checked.has(side)) {
        if ((await sha256File(dsts[0]!)) !== sha)
          return { mbps: Number.NaN, error: 'sha256 of the copy differs' };
        checked.add(side);
      }
      const core = (name: string) =>
        used?.procs[name] ? used.procs[name].user + used.procs[name].sys : Number.NaN;
      return {
        mbps: (parallel * bytes) / 1e6 / seconds,
        ...(used
          ? {
              cpu: {
                gateway: core('gateway'),
                agent: core('agent'),
                gatewayUser: used.procs.gateway?.user ?? Number.NaN,
                agentUser: used.procs.agent?.user ?? Number.NaN,
              },
            }
          : {}),
      };
    } finally {
      for (const dst of dsts) await rm(dst, { force: true });
    }
  };
  try {
    for (const side of SIDES) {
      const w = await copy(side);
      log(`warm-up  ${ID} ${side.padEnd(7)} ${w.error ? `FAILED: ${w.error}` : `${fmt(w.mbps, 1)} MB/s`}`);
      if (w.error) {
        result.skipped[side] = w.error;
        log(`${ID}: the ${side} side failed its warm-up copy; it is not tried again in this run`);
      }
      await sleep(PAUSE_MS);
    }
    for (let rep = 1; rep <= reps; rep++)
      for (const side of SIDES) {
        if (result.skipped[side] !== undefined) continue;
        const s = await copy(side);
        result.samples[side].push(s);
        log(
          `rep ${rep}/${reps} ${ID} ${side.padEnd(7)} ${s.error ? `FAILED: ${s.error}` : `${fmt(s.mbps, 1)} MB/s`}`,
        );
        await sleep(PAUSE_MS);
      }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (result.skipped.cluster !== undefined || result.samples.cluster.some((s) => s.error !== undefined))
    result.spliceCounters = await c
      .curl('gw', 'http://198.18.0.1:9400/metrics')
      .then((m) => m.split('\n').filter((l) => l.startsWith('onehost_splice_flows_total')))
      .catch((e: Error) => [`(metrics unavailable: ${e.message})`]);
  return result;
}

/** reportNfsRead prints the scenario; its last line is `nfs-read direct=… cluster=… ratio=…`. */
export function reportNfsRead(r: NfsReadResult): string {
  const out: string[] = [];
  const m = (s: Side) => median(r.samples[s].map((x) => x.mbps));
  const direct = m('direct');
  const cluster = m('cluster');
  const ratio =
    Number.isFinite(direct) && Number.isFinite(cluster) && direct > 0 ? cluster / direct : Number.NaN;
  out.push(
    `${r.id}: ${r.parallel > 1 ? `${r.parallel} nfs-cp at once, each` : 'nfs-cp'} of a ${r.bytes >> 20} MiB file ${r.way === 'write' ? 'into' : 'from'} ${r.node} (${r.path}), ${r.reps} alternating repetitions, MB/s (10^6 bytes/s${r.parallel > 1 ? ', all copies together' : ''}), medians`,
  );
  for (const side of SIDES) {
    const t = r.targets[side];
    const list = r.samples[side];
    const shown = list.map((x) => (x.error ? 'FAILED' : fmt(x.mbps, 1))).join(' ') || '-';
    out.push(
      `  ${side.padEnd(7)} ${t.client} → ${t.server.padEnd(12)} median ${fmt(m(side), 1).padStart(8)}   samples ${shown}`,
    );
    if (r.skipped[side] !== undefined) out.push(`    FAILED (warm-up, not tried again): ${r.skipped[side]}`);
    const errors = [...new Set(list.flatMap((x) => (x.error ? [x.error] : [])))];
    for (const e of errors) out.push(`    failed: ${e}`);
  }
  const cpu = r.samples.cluster.flatMap((x) => (x.cpu ? [x.cpu] : []));
  // user CPU per copy (ms): what a copy costs the processes whatever its length (its connections' share)
  const perCopy = (user: (c: NonNullable<Copy['cpu']>) => number) =>
    median(
      r.samples.cluster.flatMap((x) =>
        x.cpu && Number.isFinite(x.mbps) ? [(1000 * user(x.cpu) * (r.bytes / 1e6)) / x.mbps] : [],
      ),
    );
  if (cpu.length > 0)
    out.push(
      `  CPU during the cluster copies (user + system, % of a core, median): gateway ${fmt(100 * median(cpu.map((x) => x.gateway)), 1)} %, ${r.node}'s agent ${fmt(100 * median(cpu.map((x) => x.agent)), 1)} %; of which user (JavaScript and the addons; the rest is the kernel's, softirq included): gateway ${fmt(100 * median(cpu.map((x) => x.gatewayUser)), 1)} %, agent ${fmt(100 * median(cpu.map((x) => x.agentUser)), 1)} %`,
      `  user CPU per copy (ms, median): gateway ${fmt(
        perCopy((c) => c.gatewayUser),
        1,
      )}, agent ${fmt(
        perCopy((c) => c.agentUser),
        1,
      )}`,
    );
  if (r.spliceCounters !== undefined)
    out.push(
      '  the gateway’s delayed-binding counters (docs/splice.md):',
      ...r.spliceCounters.map((l) => `    ${l}`),
    );
  out.push(`${r.id} direct=${fmt(direct, 1)} cluster=${fmt(cluster, 1)} ratio=${fmt(ratio, 2)}`);
  return out.join('\n');
}

/** nfsReadFailed is the scenario's report when it could not even be set up. */
export function nfsReadFailed(err: unknown, id = NFS_READ_ID): string {
  return [
    `${id}: FAILED to set up: ${err instanceof Error ? err.message : String(err)}`,
    `${id} direct=n/a cluster=n/a ratio=n/a`,
  ].join('\n');
}
