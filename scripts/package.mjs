#!/usr/bin/env node
// npm run package: Debian packages of the built apps (run `npm run build` first; `npm run package` does).
//   onehost-common   /usr/lib/onehost/node_modules: the shared libraries, our compiled addons, and the
//                    production dependencies (found by walking `dependencies` the way Node resolves them)
//   onehost-gateway  the gateway, /usr/bin/onehost-gateway, its systemd unit, /etc/onehost example
//   onehost-agent    the node agent, /usr/bin/onehost-agent(-net), its systemd unit, /etc/onehost example
//   onehost-ctl      /usr/bin/onehostctl
// Written to dist-deb/*.deb with dpkg-deb. Nothing is downloaded: everything comes from this checkout.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist-deb');
const LIB = 'usr/lib/onehost';
const version = JSON.parse(readFileSync(join(root, 'apps/gateway/package.json'), 'utf8')).version;
const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();

const APPS = {
  gateway: { dir: 'apps/gateway', name: '@onehost/gateway' },
  agent: { dir: 'apps/node-agent', name: '@onehost/node-agent' },
  ctl: { dir: 'apps/ctl', name: '@onehost/ctl' },
};

/** workspace packages by name → their directory (real path) */
const workspaces = new Map();
for (const group of ['packages', 'apps']) {
  for (const d of execFileSync('ls', [join(root, group)], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)) {
    const pj = join(root, group, d, 'package.json');
    if (existsSync(pj))
      workspaces.set(JSON.parse(readFileSync(pj, 'utf8')).name, realpathSync(join(root, group, d)));
  }
}

/** findPackage finds `name` from `fromDir` as Node does: the nearest node_modules up the tree. */
function findPackage(name, fromDir) {
  for (let d = fromDir; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return realpathSync(p);
    if (d === dirname(d)) return null;
  }
}

/** closure walks the production dependencies of the apps: workspace packages and external ones. */
function closure(appDirs) {
  const seen = new Map(); // real dir → package name
  const walk = (dir) => {
    const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const deps = { ...(pj.dependencies ?? {}), ...(pj.optionalDependencies ?? {}) };
    for (const name of Object.keys(deps)) {
      const found = findPackage(name, dir);
      if (found === null) {
        if (name in (pj.optionalDependencies ?? {})) continue;
        throw new Error(`${pj.name}: dependency ${name} is not installed (npm ci first)`);
      }
      if (seen.has(found)) continue;
      seen.set(found, name);
      walk(found);
    }
  };
  for (const d of appDirs) walk(join(root, d));
  return seen;
}

/** where a package directory goes under /usr/lib/onehost (node_modules layout kept as installed) */
function destOf(dir, name) {
  for (const [ws, wsDir] of workspaces) {
    if (dir === wsDir) return join('node_modules', ws);
    if (dir.startsWith(`${wsDir}/`)) return join('node_modules', ws, relative(wsDir, dir));
  }
  const rel = relative(root, dir);
  if (!rel.startsWith('node_modules/')) throw new Error(`${name} at ${rel}: outside node_modules`);
  return rel;
}

/** copyWorkspace copies what a workspace package runs from: package.json, dist, bin, compiled addons */
function copyWorkspace(dir, to) {
  mkdirSync(to, { recursive: true });
  cpSync(join(dir, 'package.json'), join(to, 'package.json'));
  for (const sub of ['dist', 'bin'])
    if (existsSync(join(dir, sub)))
      cpSync(join(dir, sub), join(to, sub), {
        recursive: true,
        filter: (src) =>
          !/\.(test|e2e\.test|fuzz|bench)\.(js|d\.ts|js\.map|d\.ts\.map)$/.test(src) &&
          !/\/(bench|testing)(\/|$)/.test(src),
      });
  // launchers and entry points stay executable whatever the checkout's modes
  for (const f of ['bin', 'dist'].flatMap((d) =>
    existsSync(join(to, d))
      ? execFileSync('ls', [join(to, d)], { encoding: 'utf8' })
          .split('\n')
          .map((x) => join(to, d, x))
      : [],
  ))
    if (/\/(bin\/[^/]+\.js|dist\/(main|net-cli)\.js)$/.test(f)) chmodSync(f, 0o755);
  const release = join(dir, 'build/Release');
  if (existsSync(release))
    for (const f of execFileSync('ls', [release], { encoding: 'utf8' }).split('\n'))
      if (f.endsWith('.node')) {
        mkdirSync(join(to, 'build/Release'), { recursive: true });
        cpSync(join(release, f), join(to, 'build/Release', f));
      }
  if (!existsSync(join(to, 'dist')) && !existsSync(join(to, 'build')))
    throw new Error(`${dir}: not built (npm run build)`);
}

function stage(pkg) {
  const dir = join(out, 'stage', pkg);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'DEBIAN'), { recursive: true });
  return dir;
}

function control(dir, fields) {
  const size = Number(
    execFileSync('du', ['-sk', '--exclude=DEBIAN', dir], { encoding: 'utf8' }).split('\t')[0],
  );
  const text = Object.entries({
    Package: fields.Package,
    Version: version,
    Architecture: arch,
    Maintainer: 'onehost developers <onehost@example.org>',
    'Installed-Size': String(size),
    ...fields,
  })
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
  writeFileSync(join(dir, 'DEBIAN/control'), `${text}\n`);
}

function build(dir, pkg) {
  const file = join(out, `${pkg}_${version}_${arch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', dir, file], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  console.log(`${relative(root, file)}  ${Math.round(statSync(file).size / 1024)} KiB`);
  return file;
}

function link(dir, from, to) {
  mkdirSync(dirname(join(dir, from)), { recursive: true });
  symlinkSync(to, join(dir, from));
}

function docs(dir, pkg, files) {
  const d = join(dir, 'usr/share/doc', pkg);
  mkdirSync(d, { recursive: true });
  for (const f of files) cpSync(join(root, f), join(d, f.replaceAll('/', '_')));
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const deps = closure(Object.values(APPS).map((a) => a.dir));
const appNames = new Set(Object.values(APPS).map((a) => a.name));

// onehost-common: every library the apps run on
{
  const dir = stage('onehost-common');
  let n = 0;
  for (const [src, name] of deps) {
    if (appNames.has(name)) continue;
    const to = join(dir, LIB, destOf(src, name));
    if (workspaces.has(name) && workspaces.get(name) === src) copyWorkspace(src, to);
    else
      cpSync(src, to, {
        recursive: true,
        // a dependency's own nested node_modules are separate entries of the closure
        filter: (p) => p === src || !relative(src, p).split('/').includes('node_modules'),
      });
    n++;
  }
  control(dir, {
    Package: 'onehost-common',
    Depends: 'nodejs (>= 20)',
    Section: 'net',
    Priority: 'optional',
    Description: `onehost: libraries shared by the gateway, the node agent and onehostctl\n ${n} packages under /${LIB}: the message switch, the control plane, the kernel plumbing and\n TUN addons (compiled for this architecture), and their production dependencies.`,
  });
  build(dir, 'onehost-common');
}

function appPackage(pkg, app, bins, extra) {
  const dir = stage(pkg);
  copyWorkspace(join(root, app.dir), join(dir, LIB, 'node_modules', app.name));
  for (const [bin, target] of Object.entries(bins))
    link(dir, `usr/bin/${bin}`, `/${LIB}/node_modules/${app.name}/${target}`);
  extra(dir);
  return dir;
}

const common = `onehost-common (= ${version}), nodejs (>= 20)`;
const unit = (dir, name) => {
  mkdirSync(join(dir, 'lib/systemd/system'), { recursive: true });
  cpSync(join(root, 'infra/debian', name), join(dir, 'lib/systemd/system', name));
};
const example = (dir, from, name) => {
  mkdirSync(join(dir, 'etc/onehost'), { recursive: true });
  cpSync(join(root, from), join(dir, 'etc/onehost', name));
  writeFileSync(join(dir, 'DEBIAN/conffiles'), `/etc/onehost/${name}\n`);
};

{
  const dir = appPackage(
    'onehost-gateway',
    APPS.gateway,
    { 'onehost-gateway': 'bin/onehost-gateway.js' },
    (d) => {
      unit(d, 'onehost-gateway.service');
      example(d, 'infra/etc/gateway.yaml', 'gateway.yaml.example');
      docs(d, 'onehost-gateway', ['README.md', 'docs/gateway.md', 'docs/fastpath.md']);
    },
  );
  control(dir, {
    Package: 'onehost-gateway',
    Depends: `${common}, nftables, iproute2, iputils-arping, bpftool`,
    // several gateways: the announcement (bgpd, bfdd) and shared connections (flowSync)
    Suggests: 'frr, conntrackd',
    Section: 'net',
    Priority: 'optional',
    Description:
      'onehost gateway: one cluster address for a cluster of machines\n Reads each incoming packet, looks up the message switch table and forwards it to the chosen node\n without rewriting its destination (VXLAN); established flows are forwarded by the kernel.\n Configure /etc/onehost/gateway.yaml (example alongside), then: systemctl enable --now onehost-gateway',
  });
  build(dir, 'onehost-gateway');
}
{
  const dir = appPackage(
    'onehost-agent',
    APPS.agent,
    { 'onehost-agent': 'bin/onehost-agent.js', 'onehost-agent-net': 'bin/onehost-agent-net.js' },
    (d) => {
      unit(d, 'onehost-agent.service');
      example(d, 'infra/etc/agent.yaml', 'agent.yaml.example');
      docs(d, 'onehost-agent', ['README.md', 'apps/node-agent/README.md']);
    },
  );
  control(dir, {
    Package: 'onehost-agent',
    Depends: `${common}, nftables, iproute2, bpftool`,
    Section: 'net',
    Priority: 'optional',
    Description:
      'onehost node agent: makes this machine a node behind the cluster address\n Joins the gateway over mutual TLS, accepts the cluster address, stamps it on what leaves, takes\n its ephemeral ports from the block the gateway hands it, and checks its services.\n Configure /etc/onehost/agent.yaml (example alongside), then: systemctl enable --now onehost-agent',
  });
  build(dir, 'onehost-agent');
}
{
  const dir = appPackage('onehost-ctl', APPS.ctl, { onehostctl: 'bin/onehostctl.js' }, (d) => {
    docs(d, 'onehost-ctl', ['README.md', 'apps/ctl/README.md']);
  });
  control(dir, {
    Package: 'onehost-ctl',
    Depends: common,
    Section: 'net',
    Priority: 'optional',
    Description:
      'onehostctl: the onehost operator command line\n Members, routes, connections, drains, exports, explain, reload (apply -f) and the cluster CA.',
  });
  build(dir, 'onehost-ctl');
}
