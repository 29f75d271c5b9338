// `npm run fuzz:live -- --packets N --mode kernel|tun [--rate PPS] [--seed S] [--streams N] [--json]`:
// the live fuzz (fuzz/live.ts) at a lab cluster of its own, as root, then the lab is taken down. Exits
// 1 when the gateway crashed, the service failed or memory or descriptors grew past verdict()'s
// bounds. The rate defaults to the mode's (DEFAULT_RATE).
import { parseArgs } from 'node:util';

const USAGE =
  'usage: fuzz-live --packets N --mode kernel|tun [--rate PPS] [--seed S] [--streams N] [--max-seconds S] [--json]';

const { values } = parseArgs({
  options: {
    packets: { type: 'string', default: '10000000' },
    mode: { type: 'string', default: 'kernel' },
    rate: { type: 'string' },
    seed: { type: 'string', default: '1' },
    streams: { type: 'string', default: '2000' },
    'max-seconds': { type: 'string', default: '3600' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help || (values.mode !== 'kernel' && values.mode !== 'tun')) {
  console.error(USAGE);
  process.exit(values.help ? 0 : 2);
}
// cluster.ts reads the data path mode when it loads
process.env.ONEHOST_DATAPATH = values.mode;
const { formatReport, liveFuzz, startFuzzCluster, verdict } = await import('./fuzz/live.js');

const c = await startFuzzCluster();
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await c.stop();
};
process.once('SIGINT', () => {
  void stop().then(() => process.exit(130));
});
try {
  const r = await liveFuzz(c, {
    packets: Number(values.packets),
    ...(values.rate !== undefined ? { rate: Number(values.rate) } : {}),
    seed: Number(values.seed),
    streams: Number(values.streams),
    maxSeconds: Number(values['max-seconds']),
    log: (l) => console.error(l),
  });
  console.log(values.json ? JSON.stringify(r, null, 2) : formatReport(r));
  const problems = verdict(r);
  for (const p of problems) console.log(`FAIL: ${p}`);
  process.exitCode = problems.length > 0 ? 1 : 0;
} finally {
  await stop();
}
