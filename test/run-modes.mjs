#!/usr/bin/env node
// run-modes.mjs: the end-to-end suites once per data path mode (kernel, then tun), with the arguments
// given (the JSON report of the tun run goes next to the first as vitest-tun.json). Exits non-zero when
// either run fails. ONEHOST_DATAPATH set by the caller picks one mode only.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const modes = process.env.ONEHOST_DATAPATH ? [process.env.ONEHOST_DATAPATH] : ['kernel', 'tun'];
let status = 0;
for (const mode of modes) {
  const own = args.map((a) => (mode === 'kernel' ? a : a.replace(/vitest\.json$/, `vitest-${mode}.json`)));
  console.log(`\n== end-to-end suites, data path ${mode}\n`);
  const r = spawnSync('npx', ['vitest', 'run', ...own], {
    stdio: 'inherit',
    env: { ...process.env, ONEHOST_DATAPATH: mode },
  });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
