#!/usr/bin/env node
// run-modes.mjs: the end-to-end suites once per data path mode (kernel, then tun; KERNEL_PASS_ONLY below in
// the first only), with the arguments
// given (the JSON report of the tun run goes next to the first as vitest-tun.json). Exits non-zero when
// either run fails. ONEHOST_DATAPATH set by the caller picks one mode only.
// Then, as root with dpkg (and unless ONEHOST_DATAPATH or ONEHOST_PACKAGES=skip): the Debian packages are
// built, installed with dpkg -i, their units checked by systemd-analyze verify, and the cluster suites
// run again with the installed programs from the PATH (vitest-installed.json); the packages are purged
// afterwards, so the machine is left as it was.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const modes = process.env.ONEHOST_DATAPATH ? [process.env.ONEHOST_DATAPATH] : ['kernel', 'tun'];
// Suites whose subject does not depend on the data path run in the kernel pass only when both run (the
// suite's time): UDP MOUNT/NFS/portmap (IPv4 and IPv6) are decided in user space and reach it through
// the TUN in both modes; the status page reads the same state either way; the host filter (exposure) is
// one nft table in both, and kernel mode adds its VXLAN device, the larger surface; datapath-diff
// compares the compiled kernel table with the switch's explanation, and in tun mode the switch is both
// (its promises have unit tests); the gateway's neighbour advertisements go out the same way in both.
// ONEHOST_DATAPATH=tun still runs them.
const KERNEL_PASS_ONLY = [
  'src/datapath-diff.e2e.test.ts',
  'src/nfs.e2e.test.ts',
  'src/nfs6.e2e.test.ts',
  'src/status-page.e2e.test.ts',
  'src/exposure.e2e.test.ts',
  'src/exposure6.e2e.test.ts',
  'src/neighbour-advert.e2e.test.ts',
];
// one cluster PKI per shape for the whole run (cluster.ts): removed at the end
const pkiCache = mkdtempSync(join(tmpdir(), 'onehost-test-pki-'));
process.env.ONEHOST_TEST_PKI_CACHE = pkiCache;
process.on('exit', () => rmSync(pkiCache, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
let status = 0;
for (const mode of modes) {
  const own = args.map((a) => (mode === 'kernel' ? a : a.replace(/vitest\.json$/, `vitest-${mode}.json`)));
  console.log(`\n== end-to-end suites, data path ${mode}\n`);
  const skip = mode === 'tun' && modes.length > 1 ? KERNEL_PASS_ONLY.flatMap((f) => ['--exclude', f]) : [];
  const r = spawnSync('npx', ['vitest', 'run', ...own, ...skip], {
    stdio: 'inherit',
    env: { ...process.env, ONEHOST_DATAPATH: mode },
  });
  if (r.status !== 0) status = r.status ?? 1;
}

const PACKAGES = ['onehost-ctl', 'onehost-agent', 'onehost-gateway', 'onehost-common'];
const UNITS = ['/lib/systemd/system/onehost-gateway.service', '/lib/systemd/system/onehost-agent.service'];
const CLUSTER_SUITES = ['src/single-image.e2e.test.ts', 'src/cluster-life.e2e.test.ts'];

/** step runs a command; false (and a message) when it fails or, with quiet, prints anything. */
function step(what, file, argv, { quiet = false, env } = {}) {
  const r = spawnSync(file, argv, { encoding: 'utf8', env: env ?? process.env });
  const said = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  if (r.status === 0 && !(quiet && said !== '')) return said;
  console.error(
    `packages: ${what} failed (${file} ${argv.join(' ')}: exit ${r.status}${r.error ? `, ${r.error.message}` : ''})\n${said}`,
  );
  return null;
}

function packagesPass() {
  console.log(
    '\n== Debian packages: build, dpkg -i, systemd-analyze verify, the cluster suites with the installed programs\n',
  );
  if (step('building the packages', 'node', ['../scripts/package.mjs']) === null) return 1;
  const debs = readdirSync('../dist-deb')
    .filter((f) => f.endsWith('.deb'))
    .map((f) => `../dist-deb/${f}`);
  try {
    if (step('installing them', 'dpkg', ['-i', ...debs]) === null) return 1;
    if (step('verifying the units', 'systemd-analyze', ['verify', ...UNITS], { quiet: true }) === null)
      return 1;
    for (const bin of ['onehost-gateway', 'onehost-agent', 'onehostctl']) {
      const v = step(`${bin} --version`, bin, ['--version']);
      if (v === null || !/^\d+\.\d+\.\d+$/.test(v)) return 1;
    }
    const own = args.map((a) => a.replace(/vitest\.json$/, 'vitest-installed.json'));
    const r = spawnSync('npx', ['vitest', 'run', ...own, ...CLUSTER_SUITES], {
      stdio: 'inherit',
      env: { ...process.env, ONEHOST_BINARIES: 'installed', ONEHOST_DATAPATH: 'kernel' },
    });
    return r.status ?? 1;
  } finally {
    if (!process.env.ONEHOST_KEEP_PACKAGES) step('purging the packages', 'dpkg', ['--purge', ...PACKAGES]);
  }
}

const canPackage =
  !process.env.ONEHOST_DATAPATH &&
  process.env.ONEHOST_PACKAGES !== 'skip' &&
  process.getuid?.() === 0 &&
  existsSync('/usr/bin/dpkg-deb') &&
  existsSync('/usr/bin/systemd-analyze');
if (canPackage) {
  const r = packagesPass();
  if (r !== 0) status = r;
} else if (!process.env.ONEHOST_DATAPATH) {
  console.log('\n== Debian packages: skipped (needs root, dpkg-deb and systemd-analyze)\n');
  // in CI the packages must be tested: a missing tool there is a failure, not a skip
  if (process.env.CI && process.env.ONEHOST_PACKAGES !== 'skip') status = 1;
}
process.exit(status);
