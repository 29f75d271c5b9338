// The control-plane scale benchmark: many agents (agent-swarm.ts: real gRPC, one certificate and one
// mutual-TLS connection each) join the gateway and heartbeat, with the gateway's store on a 3-member etcd
// (mutual TLS) in the gateway host. It prints: how long the joins took, the gateway's CPU while only
// heartbeats flow (and the swarm's, which shares the machine), etcd writes in that window (the design
// has none per heartbeat), and how long the gateway took to report silent agents down (no FIN: their
// heartbeats just stop). It asserts nothing about time. The lab, etcd and every process started here
// stop when it ends, fails or is interrupted.
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { issueCertificate } from '@onehost/control';
import type { EtcdCluster } from '@onehost/lab';
import type { LabProcess } from '@onehost/testkit';
import { type Cluster, type ClusterOptions, startCluster } from '../cluster.js';
import { ECMP_STORE, type EcmpCluster, GATEWAYS, startEcmpCluster, stopEcmpCluster } from '../gateways.js';
import { startLabEtcd, withEtcdStore } from '../lab-etcd.js';
import { CpuMeter, initClock } from './cpu.js';

const { values: a } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    'interval-ms': { type: 'string', default: '100' },
    'timeout-ms': { type: 'string', default: '350' },
    'steady-s': { type: 'string', default: '10' },
    silent: { type: 'string', default: '20' },
    gateways: { type: 'string', default: '1' },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  console.log(
    'npm run bench:control -- [--agents 1000] [--interval-ms 100] [--timeout-ms 350] [--steady-s 10] [--silent 20] [--gateways 1|2]\n  --gateways 2: two gateways on one etcd (the ECMP lab of gateways.ts), the agents spread over both',
  );
  process.exit(0);
}
const N = Number(a.agents);
const G = Number(a.gateways);
if (G !== 1 && G !== 2) {
  console.error('--gateways must be 1 or 2');
  process.exit(2);
}
const NET = '127.0.81';
/** the etcd whose /metrics count the writes: the lab's own (one gateway) or the ECMP lab's */
const ETCD_METRICS = G === 1 ? `https://${NET}.1:2379/metrics` : `https://${ECMP_STORE}:2379/metrics`;
const here = dirname(fileURLToPath(import.meta.url));

let c: Cluster | undefined;
let etcd: EtcdCluster | undefined;
let swarm: LabProcess | undefined;
const ecmp: EcmpCluster = {};
const cleanup = async () => {
  await swarm?.stop(2000);
  await stopEcmpCluster(ecmp);
  await c?.stop();
  await etcd?.stop();
};
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });

/** putsNow reads etcd's applied writes (puts, deletes, transactions) from member 1's /metrics. */
async function writesNow(cl: Cluster): Promise<number> {
  const p = cl.pki('gw');
  const r = await cl.lab.exec('gw', 'curl', [
    '-sS',
    '--max-time',
    '5',
    '--cacert',
    p.ca,
    '--cert',
    p.cert,
    '--key',
    p.key,
    ETCD_METRICS,
  ]);
  let n = 0;
  for (const m of r.stdout.matchAll(/^etcd_mvcc_(put|delete|txn)_total (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm))
    n += Number(m[2]);
  return n;
}

/** phase waits for the swarm's JSON line of `phase` and returns it. */
async function phase(p: LabProcess, name: string, timeoutMs: number): Promise<Record<string, unknown>> {
  await p.waitForOutput(`"phase":"${name}"`, timeoutMs);
  const line = p
    .output()
    .split('\n')
    .find((l) => l.startsWith(`{"phase":"${name}"`));
  return JSON.parse(line ?? '{}') as Record<string, unknown>;
}

try {
  await initClock();
  const opts: ClusterOptions = {
    nodes: 1,
    agents: [],
    gatewayYaml: (y) =>
      (G === 1 ? withEtcdStore(y, NET, '/onehost/bench/') : y)
        // room for the swarm's blocks; its nodes have no data path to probe
        .replace(/^ {2}portRange: .*$/m, '  portRange: { lo: 10000, hi: 65535 }')
        .replace(/^ {2}blockSize: .*$/m, '  blockSize: 32')
        .replace(
          /^ {2}heartbeat: .*$/m,
          `  heartbeat: { intervalMs: ${a['interval-ms']}, timeoutMs: ${a['timeout-ms']} }`,
        )
        .concat('\nprobe: { port: 0 }\n'),
    beforeGateway: async (lab, ca) => {
      if (G === 1) etcd = await startLabEtcd(lab, ca, NET);
      // the swarm's certificates, from the same CA (RSA keys in the thread pool, a few at a time);
      // kept for the next run with ONEHOST_TEST_PKI_CACHE, where the cluster's CA is kept too
      const dir = join(lab.runDir, 'swarm-pki');
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const kept = process.env.ONEHOST_TEST_PKI_CACHE;
      if (kept !== undefined) {
        await mkdir(join(kept, 'swarm'), { recursive: true, mode: 0o700 });
        await cp(join(kept, 'swarm'), dir, { recursive: true });
      }
      const t = performance.now();
      let next = 0;
      const worker = async () => {
        while (next < N) {
          const n = `s${String(++next).padStart(4, '0')}`;
          if (existsSync(join(dir, `${n}-key.pem`))) continue;
          const pem = await issueCertificate(ca, { role: 'node', name: n });
          await writeFile(join(dir, `${n}.pem`), pem.certPem);
          await writeFile(join(dir, `${n}-key.pem`), pem.keyPem, { mode: 0o600 });
          if (kept !== undefined) {
            await copyFile(join(dir, `${n}.pem`), join(kept, 'swarm', `${n}.pem`));
            await copyFile(join(dir, `${n}-key.pem`), join(kept, 'swarm', `${n}-key.pem`));
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      console.error(`bench: ${N} agent certificates in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    },
  };
  c = G === 1 ? await startCluster(opts) : (await startEcmpCluster(ecmp, opts)).cluster;
  const cl = c;
  const dir = join(cl.lab.runDir, 'swarm-pki');
  const op = cl.pki('op');
  await copyFile(op.ca, join(dir, 'ca.pem'));
  await copyFile(op.cert, join(dir, 'op.pem'));
  await copyFile(op.key, join(dir, 'op-key.pem'));

  swarm = cl.lab.spawn('gw', process.execPath, [
    join(here, 'agent-swarm.js'),
    '--gateway',
    cl.control,
    ...(G === 2 ? ['--gateway', `${GATEWAYS[1]!.inside}:7443`] : []),
    '--pki',
    dir,
    '--agents',
    String(N),
    '--interval-ms',
    String(a['interval-ms']),
    '--steady-s',
    String(a['steady-s']),
    '--silent',
    String(a.silent),
  ]);
  const joined = await phase(swarm, 'joined', 600_000);
  const settled = await phase(swarm, 'settled', 90_000);
  await phase(swarm, 'steady', 10_000);
  const meter = new CpuMeter({
    gateway: cl.gateway!.pid,
    ...(ecmp.ecmp?.gw2 ? { gateway2: ecmp.ecmp.gw2.pid } : {}),
    swarm: swarm.pid,
  });
  const w0 = await writesNow(cl);
  meter.start();
  const steadyEnd = await phase(swarm, 'steady-end', Number(a['steady-s']) * 1000 + 30_000);
  const use = meter.stop();
  const w1 = await writesNow(cl);
  const detected = (await phase(swarm, 'detected', 60_000)) as {
    perGateway: Array<{ gateway: string; seen: number; of: number; p50Ms: number; maxMs: number }>;
    rejoins: number;
  };
  const cores = (p: string) => (use.procs[p] ? use.procs[p]!.user + use.procs[p]!.sys : Number.NaN);
  const f = (x: unknown, d = 1) => Number(x).toFixed(d);
  console.log(
    `\ncontrol-plane scale: ${N} agents, ${G} gateway${G === 1 ? '' : 's'}, heartbeat every ${a['interval-ms']} ms, timeout ${a['timeout-ms']} ms, store etcd (${G === 1 ? '3 members' : '1 member'}, mutual TLS)`,
  );
  console.log(
    `  joined               ${joined.agents} in ${f(joined.seconds)} s (join p50 ${f(joined.joinP50Ms, 0)} ms, p99 ${f(joined.joinP99Ms, 0)} ms, ${joined.joinRetries} tried again)`,
  );
  console.log(
    `  settled              after ${f(settled.seconds)} s more (${settled.endedWhileJoining} heartbeat streams ended by the gateway while agents joined; their agents joined again)`,
  );
  console.log(
    `  steady window        ${f(use.wallSeconds)} s, ${steadyEnd.acks} acknowledgements, ${steadyEnd.streamsEnded} streams ended`,
  );
  console.log(
    `  gateway CPU          ${f(cores('gateway') * 100)} % of a core${G === 2 ? `, gw2 ${f(cores('gateway2') * 100)} %` : ''} (swarm ${f(cores('swarm') * 100)} %, machine ${f(use.machineBusy * 100)} % of 2 cores)`,
  );
  console.log(`  etcd writes          ${w1 - w0} in the window (${f((w1 - w0) / use.wallSeconds, 2)}/s)`);
  for (const g of detected.perGateway)
    console.log(
      `  silent agents down   ${g.seen} of ${g.of} seen by ${g.gateway}: p50 ${f(g.p50Ms, 0)} ms, max ${f(g.maxMs, 0)} ms`,
    );
  console.log(
    `bench control_scale agents=${N} gateway_cpu=${f(cores('gateway'), 3)} etcd_writes_per_s=${f((w1 - w0) / use.wallSeconds, 2)} detect_max_ms=${f(Math.max(...detected.perGateway.map((g) => g.maxMs)), 0)}`,
  );
  // the gateway's errors during the run (a refused write, a clash), first lines
  const errors =
    cl.gateway
      ?.output()
      .split('\n')
      .filter((l) => /"level":50/.test(l)) ?? [];
  console.log(`  gateway errors       ${errors.length}`);
  for (const l of errors.slice(0, 5)) console.log(`    ${l.slice(0, 400)}`);
  await cleanup();
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  if (swarm) console.error(swarm.output().slice(-2000));
  // the gateway's first warnings and errors say why
  const said =
    c?.gateway
      ?.output()
      .split('\n')
      .filter((l) => /"level":(40|50)/.test(l)) ?? [];
  if (said.length > 0)
    console.error(
      `--- gateway warnings and errors (first 15 of ${said.length}) ---\n${said.slice(0, 15).join('\n')}`,
    );
  await cleanup();
  process.exitCode = 1;
}
