#!/usr/bin/env node
// `npm run soak -- --minutes N [--mode tun]`: the soak from the command line (as root, after a build).
// Prints progress, then the books and the verdict; exits 1 when a requirement failed, 130 on Ctrl-C.
import { Command, InvalidArgumentError, Option } from 'commander';
import { RULES, verdict } from './ledger.js';
import { CHURN_ACTIONS, type ChurnAction, report, runSoak } from './soak.js';

const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number');
  return n;
};

const program = new Command('soak')
  .description('a lab cluster under mixed load with churn every 20 s; exits 1 when a requirement fails')
  .option('--minutes <n>', 'how long the load runs', positive, 3)
  .addOption(new Option('--mode <mode>', 'data path').choices(['kernel', 'tun']).default('kernel'))
  .option('--churn-every <s>', 'seconds between churn actions', positive, 20)
  .option('--report-every <s>', 'seconds between progress lines', positive, 30)
  .option('--actions <list>', `churn actions rotated, comma-separated (${CHURN_ACTIONS.join(',')})`, (v) => {
    const xs = v.split(',').filter((x) => x !== '');
    for (const x of xs)
      if (!(CHURN_ACTIONS as readonly string[]).includes(x))
        throw new InvalidArgumentError(`unknown action ${x}`);
    return xs as ChurnAction[];
  });
program.parse();
const o = program.opts<{
  minutes: number;
  mode: 'kernel' | 'tun';
  churnEvery: number;
  reportEvery: number;
  actions?: ChurnAction[];
}>();

const abort = new AbortController();
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    // the first signal ends the loads; the lab is torn down before the process exits
    interrupted = true;
    abort.abort();
  });

const log = (line: string) => console.log(line);
const ledger = await runSoak({ ...o, log, signal: abort.signal });
const bad = verdict(ledger);
report(ledger, log);
log('== requirements');
log(`  corrupt bytes = 0; HTTP success ≥ ${RULES.httpSuccess * 100} %; no failure outside a churn window`);
log('  (a failure is inside when the operation was in flight during [action start, recovery]);');
log('  every outbound connection stamped; every churn action recovered;');
log(
  `  each process (gateway, agents; a restart is a new one) judged from ${RULES.warmupMs / 1000} s of age if it then lived ≥ ${RULES.judgeMinMs / 1000} s:`,
);
log(
  `  RSS growth (median of its last ${RULES.edge} readings vs its first ${RULES.edge} after warm-up) < ${RULES.rssGrowth * 100} %; FDs flat: last median ≤ first median + ${RULES.fdSlack}`,
);
if (interrupted) {
  log('soak: interrupted');
  process.exit(130);
}
log(bad.length === 0 ? 'soak: PASS' : `soak: FAIL\n${bad.map((b) => `  - ${b}`).join('\n')}`);
process.exit(bad.length === 0 ? 0 : 1);
