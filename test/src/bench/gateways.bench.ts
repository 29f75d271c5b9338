// The capacity benchmark of several gateways: the same loads through the cluster address with two
// gateways announced to the lab's router (FRR, ECMP with L4 hashing; gateways.ts) and with one (gw2
// drained with `onehostctl gateway drain`: it withdraws, the router routes everything to gw), in
// interleaved repetitions. Loads: wrk with a new connection per request (many flows, which ECMP spreads)
// and iperf3 download with parallel streams (-R -P). It prints the medians, the ratio two ÷ one, and
// how the router split the packets between the gateways. It asserts nothing. The lab, FRR, etcd and
// every process started here stop when it ends, fails or is interrupted.
import { parseArgs } from 'node:util';
import type { Cluster } from '../cluster.js';
import {
  ctlAt,
  type Ecmp,
  type EcmpCluster,
  GATEWAYS,
  startEcmpCluster,
  stopEcmpCluster,
  waitNextHops,
} from '../gateways.js';
import { median, spread, table } from './report.js';

const USAGE = `usage: npm run bench:gateways -- [--reps N] [--seconds S] [--streams P]
  --reps N      interleaved repetitions of each arm (default 5)
  --seconds S   length of each load (default 4)
  --streams P   iperf3 parallel streams of the download (default 8)
Kernel data path. Runs as root (network namespaces).`;

const { values: a } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '4' },
    streams: { type: 'string', default: '8' },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  console.log(USAGE);
  process.exit(0);
}
const REPS = Number(a.reps);
const SECONDS = Number(a.seconds);
const STREAMS = Number(a.streams);
for (const [k, v] of [
  ['--reps', REPS],
  ['--seconds', SECONDS],
  ['--streams', STREAMS],
] as const) {
  if (!Number.isInteger(v) || v < 1 || v > 600) {
    console.error(`${k} must be a whole number from 1 to 600\n${USAGE}`);
    process.exit(2);
  }
}
process.env.ONEHOST_DATAPATH = 'kernel';

const [G1, G2] = [GATEWAYS[0]!, GATEWAYS[1]!];
const started: EcmpCluster = {};
const cleanup = () => stopEcmpCluster(started);
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });

type Arm = 'one' | 'two';
interface Run {
  rps: number;
  gbps: number;
  /** share of the loads' packets that reached gw2's outside interface */
  share2: number;
  errors: string;
}

async function setArm(cl: Cluster, ecmp: Ecmp, arm: Arm): Promise<void> {
  await ctlAt(cl, G1.inside, ['gateway', arm === 'one' ? 'drain' : 'undrain', 'gw2']);
  await waitNextHops(ecmp, arm === 'one' ? [G1.outside] : [G1.outside, G2.outside], 15_000);
}

async function httpClose(cl: Cluster): Promise<{ rps: number; errors: string }> {
  const { stdout } = await cl.lab.exec(
    'c1',
    'wrk',
    ['-t2', '-c32', `-d${SECONDS}s`, '--timeout', '2s', '-H', 'Connection: close', `http://${cl.vip}/`],
    { timeoutMs: (SECONDS + 10) * 1000 },
  );
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!rps) throw new Error(`wrk printed no Requests/sec:\n${stdout}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return { rps: Number(rps[1]), errors: sock ? `wrk socket errors c/r/w/t ${sock.slice(1).join('/')}` : '' };
}

async function download(cl: Cluster): Promise<number> {
  const { stdout } = await cl.lab.exec(
    'c1',
    'iperf3',
    ['-c', cl.vip, '-p', '5201', '-R', '-P', String(STREAMS), '-t', String(SECONDS), '-J'],
    { timeoutMs: (SECONDS + 15) * 1000 },
  );
  const j = JSON.parse(stdout) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  if (!j.end?.sum_received) throw new Error('iperf3 printed no sum_received');
  return j.end.sum_received.bits_per_second / 1e9;
}

async function once(cl: Cluster, ecmp: Ecmp): Promise<Run> {
  const rx0 = [await ecmp.rxPackets(0), await ecmp.rxPackets(1)];
  const h = await httpClose(cl);
  const gbps = await download(cl);
  const rx1 = [await ecmp.rxPackets(0), await ecmp.rxPackets(1)];
  const d = [rx1[0]! - rx0[0]!, rx1[1]! - rx0[1]!];
  return { rps: h.rps, gbps, share2: d[1]! / Math.max(1, d[0]! + d[1]!), errors: h.errors };
}

async function main(): Promise<void> {
  console.error('bench: starting the lab, the router, etcd and two gateways');
  const { cluster: cl, ecmp } = await startEcmpCluster(started, {
    // iperf3's control and data connections must meet one server: the benchmark's entry pins it to n1
    gatewayYaml: (y) =>
      y
        .split('\n')
        .filter((l) => !/^\s*-\s*\{.*\bport:\s*5201\b/.test(l))
        .join('\n')
        .replace(
          /^entries:\n/m,
          'entries:\n  - { protocol: tcp, port: 5201, function: connection, policy: maglev, rederive: true, nodes: [n1] }\n',
        ),
  });
  await waitNextHops(ecmp, [G1.outside, G2.outside], 15_000);
  console.error('bench: warm-up (not counted)');
  await once(cl, ecmp);
  const runs: Record<Arm, Run[]> = { one: [], two: [] };
  for (let r = 0; r < REPS; r++) {
    // alternate which arm goes first, so a drift of the machine does not favour one
    const order: Arm[] = r % 2 === 0 ? ['two', 'one'] : ['one', 'two'];
    for (const arm of order) {
      await setArm(cl, ecmp, arm);
      const x = await once(cl, ecmp);
      runs[arm].push(x);
      console.error(
        `bench: rep ${r + 1} ${arm}: ${x.rps.toFixed(0)} req/s, ${x.gbps.toFixed(2)} Gbit/s, gw2 ${(x.share2 * 100).toFixed(0)} % of packets${x.errors ? `, ${x.errors}` : ''}`,
      );
    }
  }
  const row = (label: string, unit: string, digits: number, f: (x: Run) => number) => {
    const one = runs.one.map(f);
    const two = runs.two.map(f);
    return [
      label,
      unit,
      median(one).toFixed(digits),
      median(two).toFixed(digits),
      (median(two) / median(one)).toFixed(2),
      `${(spread(one) * 100).toFixed(0)} % / ${(spread(two) * 100).toFixed(0)} %`,
    ];
  };
  console.log(
    `\nTwo gateways against one (gw2 drained), kernel data path, ${REPS} interleaved repetitions of ${SECONDS} s; medians:\n`,
  );
  console.log(
    table(
      ['load', 'unit', '1 gateway', '2 gateways', '2 ÷ 1', 'spread 1 / 2'],
      [
        row('http_close (wrk -t2 -c32, new connection per request)', 'req/s', 0, (x) => x.rps),
        row(`download (iperf3 -R -P ${STREAMS})`, 'Gbit/s', 2, (x) => x.gbps),
      ],
    ),
  );
  const shares = (arm: Arm) => runs[arm].map((x) => `${(x.share2 * 100).toFixed(0)} %`).join(', ');
  console.log(
    `\ngw2's share of the packets towards the cluster: two gateways ${shares('two')}; one ${shares('one')}`,
  );
  const errs = [...runs.one, ...runs.two].filter((x) => x.errors !== '').length;
  console.log(`runs with wrk socket errors: ${errs} of ${2 * REPS}`);
}

try {
  await main();
} finally {
  await cleanup();
}
