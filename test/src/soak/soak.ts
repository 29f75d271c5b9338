// The soak (issue 15, item 4): a lab cluster under mixed load for N minutes with a churn action every
// 20 s, and the books kept in a Ledger. Loads: HTTP with a new connection per request (load.py, each
// failure with the interval it was in flight) and keep-alive (wrk in short runs: a run's failures carry
// the run's interval), checksummed HTTP downloads through the cluster address, NFS reads with libnfs
// over TCP and with nfs-rpc-client.py over UDP (checksummed), NFS writes into n2's writable export
// (nfs-cp over TCP and CREATE/WRITE/COMMIT over UDP, alternating; the server's file checksummed), and
// iperf3 in short runs at the fixed entry tcp/5201 (n1, backup n2), and the nodes' own connections to
// an outside server (stamped with the cluster address from the node's
// block; checksummed downloads).
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_NFS } from '@onehost/lab';
import { waitFor } from '@onehost/testkit';
import { type Cluster, startCluster } from '../cluster.js';
import { wrkResult } from '../wrk.js';
import { type ChurnWindow, Ledger, type LoadName, lives, RULES, type Sample } from './ledger.js';

const LOAD_PY = new URL('../../src/soak/load.py', import.meta.url).pathname;
const NFS_PY = new URL('../../src/nfs-rpc-client.py', import.meta.url).pathname;

export const CHURN_ACTIONS = [
  'link-flap',
  'drain',
  'reload',
  'agent-restart',
  'gateway-restart',
  'health-flap',
] as const;
export type ChurnAction = (typeof CHURN_ACTIONS)[number];

export interface SoakOptions {
  minutes: number;
  mode: 'kernel' | 'tun';
  /** seconds between churn actions' starts */
  churnEvery: number;
  /** the actions rotated through (default all, in CHURN_ACTIONS order) */
  actions?: readonly ChurnAction[];
  /** seconds between progress lines */
  reportEvery: number;
  log: (line: string) => void;
  /** aborting ends the loads and the churn early (Ctrl-C); the books are still printed */
  signal?: AbortSignal;
}

const NODES = ['n1', 'n2', 'n3'];
/** Bytes of each file downloaded (HTTP through the cluster address, NFS, the nodes' own downloads). */
const FILE_BYTES = 4 * 1024 * 1024;
const FILE = 'soak.bin';
const OUTSIDE_PORT = 9000;
/** The health checks the agents run: the web check is what the health flap trips. */
const HEALTH_YAML = `healthChecks:
  - { name: web, kind: http, port: 80, path: /, covers: [tcp/80], intervalMs: 200, timeoutMs: 150, rise: 2, fall: 2, jitterMs: 20 }
`;

/** sleep resolves after `ms`, or at once when `signal` aborts (its listener removed either way). */
/** The soak's heartbeat timeout: a node whose link is cut is down within it. */
const HEARTBEAT_TIMEOUT_MS = 1000;
/**
 * How long a churn action may take to recover before the soak calls it a failure: generous, since on
 * the shared two cores (load 8-15 from other suites) every onehostctl poll takes a second or more; the
 * windows' real lengths are printed.
 */
const RECOVER_MS = 30_000;
/** Polling interval of the churn's waits: each poll runs onehostctl, a process of its own. */
const POLL_MS = 250;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });

const firstLine = (e: unknown) => ((e as Error).message ?? String(e)).split('\n')[0]!.slice(0, 200);
const mib = (kib: number) => (kib / 1024).toFixed(1);

/** runSoak builds the cluster, runs the loads and the churn, tears everything down, returns the books. */
export async function runSoak(opts: SoakOptions): Promise<Ledger> {
  const ledger = new Ledger();
  const { log } = opts;
  const healthFile = join('/tmp', `onehost-soak-health-${process.pid}.yaml`);
  await writeFile(healthFile, HEALTH_YAML);
  const nfsNodes = new Set(DEFAULT_NFS.map((s) => s.node));
  log(`soak: building a lab cluster (${opts.mode} data path)…`);
  const c = await startCluster({
    nfs: true,
    gatewayYaml: (y) =>
      y
        .replace(/^datapath:.*$/m, `datapath: { mode: ${opts.mode} }`)
        // the lab's 350 ms heartbeat timeout flaps nodes when the shared two cores are busy (load ≈ 8)
        .replace(
          /heartbeat: \{[^}]*\}/,
          `heartbeat: { intervalMs: 200, timeoutMs: ${HEARTBEAT_TIMEOUT_MS} }`,
        ),
    agentArgs: (name, lab) => [
      '--health-checks',
      healthFile,
      ...(nfsNodes.has(name) ? ['--ganesha-config', lab.nfsOf(name).config] : []),
    ],
  });
  try {
    await run(c, ledger, opts);
  } finally {
    await c.stop();
    await rm(healthFile, { force: true });
  }
  return ledger;
}

async function run(c: Cluster, ledger: Ledger, opts: SoakOptions): Promise<void> {
  const { log } = opts;
  const lab = c.lab;
  const vip = c.vip;
  const outside = lab.addresses.clients[0]!;
  // one file, served everywhere: by each node's nginx, by the outside server, from each NFS export
  const data = randomBytes(FILE_BYTES);
  const sha = createHash('sha256').update(data).digest('hex');
  const www = join(lab.runDir, 'c1', 'soak-www');
  await lab.exec('c1', 'mkdir', ['-p', www]);
  await writeFile(join(www, FILE), data);
  for (const n of NODES) await writeFile(join(lab.runDir, n, 'nginx/html', FILE), data);
  for (const s of DEFAULT_NFS) await writeFile(join(lab.nfsOf(s.node).tree, FILE), data);
  await c.waitForMount(
    DEFAULT_NFS.map((s) => s.node),
    'tcp',
  );
  await c.waitForMount(
    DEFAULT_NFS.map((s) => s.node),
    'udp',
  );
  const server = lab.spawn('c1', 'python3', [LOAD_PY, 'serve', String(OUTSIDE_PORT), www]);
  await server.waitForOutput('listening', 10_000);
  const blocks = new Map((await c.members()).map((m) => [m.name, m.block]));
  const gatewayYaml = join(c.dir, 'gateway.yaml');
  const tableA = await readFile(gatewayYaml, 'utf8');
  // B: a real change of the table that keeps port 80 on every node: one more entry, a bigger fragment table
  const tableB = tableA
    .replace(
      '  - { protocol: tcp, port: 2222,',
      '  - { protocol: tcp, port: 8080, function: fixed, node: n3 }\n  - { protocol: tcp, port: 2222,',
    )
    .replace('maxEntries: 4096', 'maxEntries: 8192');

  const started = Date.now();
  const deadline = started + opts.minutes * 60_000;
  const stop = new AbortController();
  // a Ctrl-C while the cluster was being built has already fired
  if (opts.signal?.aborted) stop.abort();
  else opts.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  const over = () => stop.signal.aborted || Date.now() >= deadline;
  const at = (t: number) => `${((t - started) / 1000).toFixed(1)}s`;

  /** loop runs `op` until the end, `pauseMs` apart; an op that throws is a failure over its interval. */
  const loop = async (load: LoadName, pauseMs: number, op: (i: number) => Promise<void>) => {
    // bounded in count as well as time, whatever happens to the clock
    for (let i = 0; i < 1_000_000 && !over(); i++) {
      const from = Date.now();
      try {
        await op(i);
        ledger.succeed(load);
      } catch (e) {
        ledger.fail({ load, from, to: Date.now(), count: 1, detail: firstLine(e) });
      }
      await sleep(pauseMs, stop.signal);
    }
  };

  /** checked compares a fetched file with the original; a complete transfer with other bytes is corrupt. */
  const checked = async (what: string, file: string) => {
    const got = await readFile(file);
    await rm(file, { force: true });
    if (got.length !== FILE_BYTES) throw new Error(`${what}: ${got.length} bytes of ${FILE_BYTES}`);
    if (createHash('sha256').update(got).digest('hex') !== sha) {
      ledger.corruptBytes += got.length;
      ledger.corrupt.push(`${what} at ${at(Date.now())}`);
      throw new Error(`${what}: sha256 differs`);
    }
    ledger.bytesVerified += got.length;
  };

  // HTTP, a new connection per request: load.py reports each second, each failure with its interval
  const closeRun = (async () => {
    while (!over()) {
      const seconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
      const p = lab.spawn('c1', 'python3', [LOAD_PY, 'close', vip, '80', String(seconds), '100']);
      let buf = '';
      p.child.stdout?.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const r = JSON.parse(line) as { ok: number; failed: [number, number, string][] };
            ledger.succeed('http-close', r.ok);
            for (const [from, to, detail] of r.failed)
              ledger.fail({ load: 'http-close', from, to, count: 1, detail });
          } catch {
            // not a report line
          }
        }
      });
      const aborted = () => void p.stop();
      stop.signal.addEventListener('abort', aborted, { once: true });
      await p.whenExited();
      stop.signal.removeEventListener('abort', aborted);
    }
  })();

  // HTTP keep-alive: wrk in 2 s runs, 8 s apart (the machine is shared); failures are only known per run, so they carry the run's interval
  const keepAliveRun = loop('http-keepalive', 6000, async () => {
    const from = Date.now();
    const r = wrkResult(
      (
        await lab.exec('c1', 'wrk', ['-t1', '-c2', '-d2s', '--timeout', '2s', `http://${vip}/`], {
          timeoutMs: 15_000,
        })
      ).stdout,
    );
    if (!Number.isFinite(r.requests)) throw new Error('wrk printed no report');
    ledger.succeed('http-keepalive', r.requests - r.failed - 1); // loop() counts one more
    if (r.failed > 0)
      ledger.fail({
        load: 'http-keepalive',
        from,
        to: Date.now(),
        count: r.failed,
        detail: `wrk: ${r.failed} of ${r.requests} failed`,
      });
  });

  const downloadRun = loop('download', 2000, async (i) => {
    const dst = join(lab.runDir, `soak-dl-${i}.bin`);
    await lab.exec(
      'c2',
      'curl',
      ['-sS', '--fail', '--max-time', '20', '--limit-rate', '10M', '-o', dst, `http://${vip}/${FILE}`],
      { timeoutMs: 30_000 },
    );
    await checked(`download #${i}`, dst);
  });

  const nfsTcpRun = loop('nfs-tcp', 3000, async (i) => {
    const spec = DEFAULT_NFS[i % DEFAULT_NFS.length]!;
    const dst = join(lab.runDir, `soak-nfs-${i}.bin`);
    await rm(dst, { force: true }); // nfs-cp creates its destination with O_EXCL
    try {
      // libnfs has no timeout of its own: the exec bounds it
      await lab.exec('c1', 'nfs-cp', [`nfs://${vip}${spec.path}/${FILE}`, dst], { timeoutMs: 30_000 });
    } catch (e) {
      await rm(dst, { force: true });
      throw e;
    }
    await checked(`nfs-cp ${spec.path} #${i}`, dst);
  });

  const nfsUdpRun = loop('nfs-udp', 3000, async (i) => {
    const spec = DEFAULT_NFS[i % DEFAULT_NFS.length]!;
    const call = async <T>(req: Record<string, unknown>): Promise<T> =>
      JSON.parse(
        (
          await lab.exec('c2', 'python3', [NFS_PY, JSON.stringify({ host: vip, ...req })], {
            timeoutMs: 60_000,
          })
        ).stdout,
      ) as T;
    const m = await call<{ status: number; handle?: string }>({ op: 'mnt', path: spec.path });
    if (m.status !== 0 || !m.handle) throw new Error(`MNT ${spec.path}: status ${m.status}`);
    const f = await call<{ status: number; handle?: string }>({ op: 'lookup', handle: m.handle, name: FILE });
    if (f.status !== 0 || !f.handle) throw new Error(`LOOKUP ${FILE}: status ${f.status}`);
    const r = await call<{ status: number; bytes: number; sha256?: string }>({
      op: 'readall',
      handle: f.handle,
      chunk: 32768,
    });
    if (r.status !== 0) throw new Error(`READ ${spec.path}/${FILE}: status ${r.status} at ${r.bytes}`);
    if (r.bytes !== FILE_BYTES) throw new Error(`READ ${spec.path}/${FILE}: ${r.bytes} bytes`);
    if (r.sha256 !== sha) {
      ledger.corruptBytes += r.bytes;
      ledger.corrupt.push(`NFS/UDP read ${spec.path} #${i} at ${at(Date.now())}`);
      throw new Error('NFS/UDP read: sha256 differs');
    }
    ledger.bytesVerified += r.bytes;
  });

  // writes into the writable export, over TCP (nfs-cp) and UDP (our client) in turn; what the server
  // stored is compared with what was sent
  const home = DEFAULT_NFS.find((s) => s.writable === true)!;
  const homeTree = lab.nfsOf(home.node).tree;
  const source = join(lab.runDir, 'soak-write-src.bin');
  await writeFile(source, data);
  const nfsWriteRun = loop('nfs-write', 3000, async (i) => {
    const name = `soak-w-${i}.bin`;
    const atServer = join(homeTree, name);
    try {
      let what: string;
      let want = sha;
      if (i % 2 === 0) {
        what = `nfs-cp into ${home.path} #${i}`;
        await lab.exec('c1', 'nfs-cp', [source, `nfs://${vip}${home.path}/${name}`], { timeoutMs: 30_000 });
      } else {
        what = `NFS/UDP write into ${home.path} #${i}`;
        const call = async <T>(req: Record<string, unknown>): Promise<T> =>
          JSON.parse(
            (
              await lab.exec('c2', 'python3', [NFS_PY, JSON.stringify({ host: vip, ...req })], {
                timeoutMs: 60_000,
              })
            ).stdout,
          ) as T;
        const m = await call<{ status: number; handle?: string }>({ op: 'mnt', path: home.path });
        if (m.status !== 0 || !m.handle) throw new Error(`MNT ${home.path}: status ${m.status}`);
        const w = await call<{ status: number; bytes: number; sha256: string }>({
          op: 'writeall',
          handle: m.handle,
          name,
          size: FILE_BYTES,
          chunk: 8192,
          seed: i,
        });
        if (w.status !== 0 || w.bytes !== FILE_BYTES)
          throw new Error(`${what}: status ${w.status} after ${w.bytes} bytes`);
        want = w.sha256;
      }
      const got = await readFile(atServer);
      if (got.length !== FILE_BYTES) throw new Error(`${what}: the server holds ${got.length} bytes`);
      if (createHash('sha256').update(got).digest('hex') !== want) {
        ledger.corruptBytes += got.length;
        ledger.corrupt.push(`${what} at ${at(Date.now())}`);
        throw new Error(`${what}: sha256 at the server differs`);
      }
      ledger.bytesVerified += got.length;
    } finally {
      await rm(atServer, { force: true });
    }
  });

  // iperf3 (its control and data connections both on the fixed entry's node): bulk TCP both ways in
  // turn; iperf3 checks nothing of the bytes, the downloads above do
  // An iperf3 server runs one test at a time and takes a while to notice one a churn action cut: a refusal
  // after a window is that window's doing, so a run asks again (up to 15 s) before it counts as failed.
  const iperfRun = loop('iperf3', 4000, async (i) => {
    type Result = { error?: string; end?: { sum_received?: { bytes: number } } };
    const once = (): Promise<Result> =>
      lab
        .exec(
          'c2',
          'iperf3',
          ['-c', vip, '-t', '2', '-J', '--connect-timeout', '3000', ...(i % 2 === 1 ? ['-R'] : [])],
          { timeoutMs: 20_000 },
        )
        .then(
          (r) => JSON.parse(r.stdout) as Result,
          (e: unknown) => ({ error: firstLine(e) }),
        );
    // refused at the start: "busy", or the server's close of a test it refuses, seen by a client that
    // was still writing its parameters (reset, broken pipe) within a second of starting
    const refused = (r: Result, ms: number) =>
      /busy/.test(r.error ?? '') ||
      (ms < 1000 && /reset by peer|Broken pipe|control message/.test(r.error ?? ''));
    let t = Date.now();
    let r = await once();
    for (let k = 0; k < 15 && refused(r, Date.now() - t) && !over(); k++) {
      await sleep(1000, stop.signal);
      t = Date.now();
      r = await once();
    }
    if (r.error !== undefined) throw new Error(`iperf3: ${r.error}`);
    if (!((r.end?.sum_received?.bytes ?? 0) > 0)) throw new Error('iperf3: nothing received');
    ledger.iperfBytes += r.end!.sum_received!.bytes;
  });

  // the nodes' own connections out: who the outside saw (the stamp), then a checksummed download
  const outboundRun = loop('outbound', 1000, async (i) => {
    const node = NODES[i % NODES.length]!;
    if (Math.floor(i / NODES.length) % 2 === 0) {
      const peer = (
        await c.curl(node, `http://${outside}:${OUTSIDE_PORT}/whoami`, ['--max-time', '3'])
      ).trim();
      const [addr, port] = peer.split(':');
      const b = blocks.get(node)!;
      if (addr !== vip || Number(port) < b.lo || Number(port) > b.hi)
        ledger.unstamped.push(`${node} seen as ${peer} at ${at(Date.now())}`);
      return;
    }
    const dst = join(lab.runDir, `soak-out-${i}.bin`);
    await lab.exec(
      node,
      'curl',
      ['-sS', '--fail', '--max-time', '20', '-o', dst, `http://${outside}:${OUTSIDE_PORT}/${FILE}`],
      { timeoutMs: 30_000 },
    );
    await checked(`${node}'s download #${i}`, dst);
  });

  // resources every 5 s
  const rssKiB = async (pid: number) =>
    Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
  const sample = async (): Promise<Sample> => {
    const s: Sample = { t: Date.now(), agents: {} };
    const g = c.gateway;
    if (g?.running) {
      try {
        s.gateway = {
          pid: g.pid,
          rssKiB: await rssKiB(g.pid),
          fds: (await readdir(`/proc/${g.pid}/fd`)).length,
        };
      } catch {
        // it ended between the check and the read
      }
    }
    for (const n of NODES) {
      const a = c.agents.get(n);
      if (a?.running)
        s.agents[n] = await rssKiB(a.pid).then(
          (r) => ({ pid: a.pid, rssKiB: r }),
          () => undefined,
        );
    }
    s.conntrack = Number(
      (
        await lab
          .exec('gw', 'cat', ['/proc/sys/net/netfilter/nf_conntrack_count'])
          .catch(() => ({ stdout: '' }))
      ).stdout,
    );
    if (opts.mode === 'kernel') s.flowMaps = await flowMaps(c).catch(() => undefined);
    return s;
  };
  const samplerRun = (async () => {
    while (!over()) {
      ledger.samples.push(await sample());
      await sleep(5000, stop.signal);
    }
    ledger.samples.push(await sample());
  })();

  const progress = () => {
    const s = ledger.samples[ledger.samples.length - 1];
    const h = ledger.httpSuccess();
    log(
      `[${at(Date.now())}] http ok=${h.ok} failed=${h.failed} (${(h.rate * 100).toFixed(3)} %) | ` +
        `dl ${ledger.ok.download}/${ledger.failed.download} nfs-tcp ${ledger.ok['nfs-tcp']}/${ledger.failed['nfs-tcp']} ` +
        `nfs-udp ${ledger.ok['nfs-udp']}/${ledger.failed['nfs-udp']} nfs-write ${ledger.ok['nfs-write']}/${ledger.failed['nfs-write']} iperf3 ${ledger.ok.iperf3}/${ledger.failed.iperf3} out ${ledger.ok.outbound}/${ledger.failed.outbound} (ok/failed) | ` +
        `verified ${(ledger.bytesVerified / 2 ** 20).toFixed(0)} MiB corrupt ${ledger.corruptBytes} | ` +
        `outside windows ${ledger.outsideWindows().reduce((n, f) => n + f.count, 0)}` +
        (s ? ` | ${resources(s)}` : ''),
    );
  };
  const progressRun = (async () => {
    while (!over()) {
      await sleep(opts.reportEvery * 1000, stop.signal);
      progress();
    }
  })();

  // churn: one action every churnEvery s, rotating actions; nodes rotate so each action meets each node
  const actions = opts.actions ?? CHURN_ACTIONS;
  const churnRun = (async () => {
    for (let k = 0; k < 100_000; k++) {
      const next = started + (k + 1) * opts.churnEvery * 1000;
      await sleep(next - Date.now(), stop.signal);
      if (over() || deadline - Date.now() < 5000) return;
      const action = actions[k % actions.length]!;
      const node = NODES[(k + Math.floor(k / actions.length)) % NODES.length]!;
      const w: ChurnWindow = { action, start: Date.now(), end: 0, ok: true };
      if (action !== 'reload' && action !== 'gateway-restart') w.node = node;
      ledger.windows.push(w);
      // while an action runs, its window is open to the end of time: a failure seen meanwhile is inside
      w.end = Number.MAX_SAFE_INTEGER;
      try {
        await churn(c, action, node, k, { tableA, tableB, gatewayYaml });
      } catch (e) {
        w.ok = false;
        w.detail = firstLine(e);
        // what the gateway said last, for whoever reads the failure
        log(`churn ${action} failed; the gateway's last lines:\n${c.gateway.output().slice(-1500)}`);
      }
      w.end = Date.now();
      log(
        `[${at(w.start)}–${at(w.end)}] churn ${action}${w.node ? ` ${w.node}` : ''}: ${w.ok ? 'recovered' : `NOT recovered: ${w.detail}`}`,
      );
    }
  })();

  await Promise.all([
    closeRun,
    keepAliveRun,
    downloadRun,
    nfsTcpRun,
    nfsUdpRun,
    nfsWriteRun,
    iperfRun,
    outboundRun,
    samplerRun,
    progressRun,
    churnRun,
  ]);
  progress();
  await server.stop();
}

/** resources is one sample as text. */
export function resources(s: Sample): string {
  const gw = s.gateway ? `gw rss=${mib(s.gateway.rssKiB)} MiB fds=${s.gateway.fds}` : 'gw —';
  const agents = Object.entries(s.agents)
    .map(([n, a]) => `${n}=${a ? mib(a.rssKiB) : '—'}`)
    .join(' ');
  const flows = s.flowMaps
    ? ` flows=${Object.values(s.flowMaps).reduce((a, b) => a + b, 0)} (${Object.entries(s.flowMaps)
        .map(([k, v]) => `${k}:${v}`)
        .join(' ')})`
    : '';
  return `${gw} conntrack=${s.conntrack ?? '—'}${flows} agents rss ${agents} MiB`;
}

/** flowMaps counts the elements of each kernel flow map (nftables sets named f_<proto>_<port>). */
async function flowMaps(c: Cluster): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const { stdout } = await c.lab.exec('gw', 'nft', ['-j', 'list', 'maps', 'ip']);
  const names = (JSON.parse(stdout) as { nftables: { map?: { table: string; name: string } }[] }).nftables
    .map((o) => o.map)
    .filter((m) => m?.table === 'onehost_fastpath' && m.name.startsWith('f_'))
    .map((m) => m!.name);
  for (const name of names) {
    const r = await c.lab.exec('gw', 'nft', ['-j', 'list', 'map', 'ip', 'onehost_fastpath', name]);
    const m = (JSON.parse(r.stdout) as { nftables: { map?: { elem?: unknown[] } }[] }).nftables.find(
      (o) => o.map,
    );
    out[name] = m?.map?.elem?.length ?? 0;
  }
  return out;
}

interface Tables {
  tableA: string;
  tableB: string;
  gatewayYaml: string;
}

/** stateIs waits until node `name` has `state` and the kernel runs the table that gave it. */
async function stateIs(c: Cluster, name: string, state: string, timeoutMs = RECOVER_MS): Promise<void> {
  await waitFor(async () => (await c.members()).some((m) => m.name === name && m.state === state), {
    timeoutMs,
    intervalMs: POLL_MS,
    what: `${name} ${state}`,
  });
  await c.inStep(timeoutMs);
}

/** churn runs one action and waits until the cluster says it recovered. Throws when it does not. */
async function churn(c: Cluster, action: ChurnAction, node: string, k: number, t: Tables): Promise<void> {
  switch (action) {
    case 'link-flap':
      await c.lab.exec(node, 'ip', ['link', 'set', 'eth0', 'down']);
      try {
        await stateIs(c, node, 'down');
        await sleep(1000);
      } finally {
        await c.lab.exec(node, 'ip', ['link', 'set', 'eth0', 'up']);
      }
      await stateIs(c, node, 'active');
      return;
    case 'drain':
      await c.ctl(['drain', node]);
      try {
        await stateIs(c, node, 'draining');
        await sleep(3000);
      } finally {
        await c.ctl(['undrain', node]);
      }
      await stateIs(c, node, 'active');
      return;
    case 'reload': {
      const before = await c.metric('onehost_reloads_total', { outcome: 'applied' });
      await writeFile(t.gatewayYaml, Math.floor(k / CHURN_ACTIONS.length) % 2 === 0 ? t.tableB : t.tableA);
      process.kill(c.gateway.pid, 'SIGHUP');
      await waitFor(async () => (await c.metric('onehost_reloads_total', { outcome: 'applied' })) > before, {
        what: 'the reload applied',
        timeoutMs: RECOVER_MS,
        intervalMs: POLL_MS,
      });
      await c.inStep(RECOVER_MS);
      return;
    }
    case 'agent-restart': {
      const a = c.agents.get(node)!;
      process.kill(a.pid, 'SIGKILL');
      await a.whenExited();
      await stateIs(c, node, 'down');
      await c.startAgent(node);
      await stateIs(c, node, 'active');
      return;
    }
    case 'gateway-restart':
      process.kill(c.gateway.pid, 'SIGKILL');
      await c.gateway.whenExited();
      await c.startGateway();
      for (const n of NODES) await stateIs(c, n, 'active');
      return;
    case 'health-flap': {
      const healthy = async () =>
        (
          JSON.parse(await c.ctl(['members', '--json'])) as {
            name: string;
            health: { name: string; healthy: boolean }[];
          }[]
        )
          .find((m) => m.name === node)
          ?.health.find((h) => h.name === 'web')?.healthy;
      await c.lab.stopNginx(node);
      try {
        await waitFor(async () => (await healthy()) === false, {
          what: `${node}'s web check failing`,
          timeoutMs: RECOVER_MS,
          intervalMs: POLL_MS,
        });
      } finally {
        await c.lab.startNginx(node);
      }
      await waitFor(async () => (await healthy()) === true, {
        what: `${node}'s web check passing`,
        timeoutMs: RECOVER_MS,
        intervalMs: POLL_MS,
      });
      await c.inStep(RECOVER_MS);
      return;
    }
  }
}

/** report prints the books: loads, churn windows, failures, resources over time, the verdict. */
export function report(l: Ledger, log: (line: string) => void): void {
  const t0 = l.samples[0]?.t ?? l.windows[0]?.start ?? Date.now();
  const at = (t: number) => `${((t - t0) / 1000).toFixed(1)}s`;
  const h = l.httpSuccess();
  log('== soak: loads (ok / failed)');
  for (const load of Object.keys(l.ok) as LoadName[])
    log(`  ${load.padEnd(15)} ${l.ok[load]} / ${l.failed[load]}`);
  log(`  HTTP success ${(h.rate * 100).toFixed(3)} % (${h.ok} ok, ${h.failed} failed)`);
  log(
    `  bytes verified by sha256: ${l.bytesVerified} (${(l.bytesVerified / 2 ** 30).toFixed(2)} GiB); corrupt: ${l.corruptBytes}; iperf3 moved ${(l.iperfBytes / 2 ** 30).toFixed(2)} GiB`,
  );
  log(
    `  outbound connections not stamped with the cluster address and the node's block: ${l.unstamped.length}`,
  );
  for (const u of l.unstamped.slice(0, 10)) log(`    ${u}`);
  log(`== churn windows (${l.windows.length}; times from the first sample)`);
  for (const w of l.windows) {
    const inside = l.failures
      .filter((f) => f.from <= w.end && f.to >= w.start)
      .reduce((n, f) => n + f.count, 0);
    log(
      `  ${at(w.start)}–${at(w.end)} ${w.action}${w.node ? ` ${w.node}` : ''} ${((w.end - w.start) / 1000).toFixed(1)} s ${w.ok ? 'recovered' : `NOT recovered: ${w.detail}`}; failures in flight: ${inside}`,
    );
  }
  // what share of the run the windows cover: the closer to 100 %, the less "inside a window" says
  const first = l.samples[0]?.t ?? t0;
  const last = l.samples[l.samples.length - 1]?.t ?? first;
  const covered = l.windows.reduce(
    (n, w) => n + Math.max(0, Math.min(w.end, last) - Math.max(w.start, first)),
    0,
  );
  log(`  the windows cover ${((100 * covered) / Math.max(1, last - first)).toFixed(0)} % of the run`);
  const outside = l.outsideWindows();
  log(
    `== failures: ${l.failures.reduce((n, f) => n + f.count, 0)} in all, ${outside.reduce((n, f) => n + f.count, 0)} outside every churn window`,
  );
  for (const f of outside.slice(0, 30))
    log(`  OUTSIDE ${at(f.from)}–${at(f.to)} ${f.load} ×${f.count}: ${f.detail}`);
  const byKind = new Map<string, number>();
  for (const f of l.failures) {
    const k = `${f.load}: ${f.detail.replace(/\d+/g, 'N').slice(0, 90)}`;
    byKind.set(k, (byKind.get(k) ?? 0) + f.count);
  }
  for (const [k, n] of [...byKind].sort((a, b) => b[1] - a[1]).slice(0, 12)) log(`  ${n} × ${k}`);
  log(
    `== processes (a restart is a new one), judged from ${RULES.warmupMs / 1000} s of age if they then lived ≥ ${RULES.judgeMinMs / 1000} s`,
  );
  for (const x of lives(l.samples))
    log(
      `  ${x.who.padEnd(10)} pid ${String(x.pid).padEnd(7)} ${x.judged ? 'judged' : 'too short'} over ${(x.judgedMs / 1000).toFixed(0)} s: rss ${mib(x.rssFirstKiB)} → ${mib(x.rssLastKiB)} MiB (${(x.growth * 100).toFixed(1)} %)${x.fdsFirst !== undefined ? `, fds ${x.fdsFirst} → ${x.fdsLast}` : ''}`,
    );
  if (!lives(l.samples).some((x) => x.who === 'gateway' && x.judged))
    log(
      '  no gateway process lived long enough after warm-up to judge its RSS and FDs (run without gateway-restart)',
    );
  log('== resources over time (one reading a minute, and the last)');
  const shown = l.samples.filter((_s, i) => i === l.samples.length - 1 || i % 12 === 0);
  for (const s of shown) log(`  ${at(s.t).padStart(7)} ${resources(s)}`);
}
