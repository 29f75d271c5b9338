#!/usr/bin/env node
// demo.mjs up|down: the lab demo. `up` builds the lab of namespaces (packages/lab), a cluster CA, starts
// onehost-gateway and one onehost-agent per node as daemons, then shows the single image at work.
// `down` stops everything and removes the lab. Run from the repository root as root (scripts/demo).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createClusterCa, issueCertificate } from '@onehost/control';
import { createLab, destroyLab } from '@onehost/lab';

const ID = 'demo';
const root = new URL('../../', import.meta.url).pathname;
const bin = {
  gateway: join(root, 'apps/gateway/dist/main.js'),
  agent: join(root, 'apps/node-agent/dist/main.js'),
  ctl: join(root, 'apps/ctl/dist/main.js'),
};
const say = (s = '') => process.stdout.write(`${s}\n`);
const step = (s) => say(`\n\x1b[1m== ${s}\x1b[0m`);

async function waitFor(what, fn, ms = 20_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      if (await fn()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

async function up() {
  step(
    'lab: 2 outside clients, a gateway host, 3 nodes (network namespaces), nginx, iperf3, nfs-ganesha; IPv6 outside too',
  );
  const lab = await createLab({ id: ID, owned: false, nfs: true, ipv6: true });
  const vip6 = lab.addresses.ipv6.vip;
  const dir = join(lab.runDir, 'onehost');
  await mkdir(join(dir, 'pki'), { recursive: true, mode: 0o700 });
  say(`namespaces ${lab.prefix}*, runtime files in ${lab.runDir}`);

  step('cluster CA and certificates (mutual TLS for every control-plane call)');
  const ca = await createClusterCa();
  const put = async (name, pem) => {
    await writeFile(join(dir, `pki/${name}.pem`), pem.certPem);
    await writeFile(join(dir, `pki/${name}-key.pem`), pem.keyPem, { mode: 0o600 });
  };
  await writeFile(join(dir, 'pki/ca.pem'), ca.certPem);
  await put(
    'gw',
    await issueCertificate(ca, { role: 'gateway', name: 'gw', hosts: [lab.addresses.gateway.inside] }),
  );
  await put('op', await issueCertificate(ca, { role: 'operator', name: 'op' }));
  for (const n of lab.plan.nodes)
    await put(n.name, await issueCertificate(ca, { role: 'node', name: n.name }));
  // dual stack: the outside network gets the lab's IPv6 cluster address beside its IPv4 one
  const yaml = (await readFile(join(root, 'infra/lab/gateway.yaml'), 'utf8')).replace(
    /^( {2}- \{ network: outside, address: 203\.0\.113\.80, default: true \}\n)/m,
    `$1  - { network: outside, address: "${vip6}" }\n`,
  );
  if (!yaml.includes(vip6))
    throw new Error('infra/lab/gateway.yaml: no outside cluster address to add IPv6 to');
  await writeFile(join(dir, 'gateway.yaml'), yaml);

  step('onehost-gateway on gw, onehost-agent on every node');
  const gw = await lab.startIn('gw', 'onehost-gateway', process.execPath, [
    bin.gateway,
    '--config',
    join(dir, 'gateway.yaml'),
  ]);
  await waitFor('the gateway', async () => (await readFile(gw.log, 'utf8')).includes('"msg":"ready"'));
  const control = `${lab.addresses.gateway.inside}:7443`;
  for (const [i, n] of lab.plan.nodes.entries()) {
    const d = await lab.startIn(n.name, 'onehost-agent', process.execPath, [
      bin.agent,
      '--gateway',
      control,
      '--name',
      n.name,
      '--ca',
      join(dir, 'pki/ca.pem'),
      '--cert',
      join(dir, `pki/${n.name}.pem`),
      '--key',
      join(dir, `pki/${n.name}-key.pem`),
      '--internal-address',
      lab.addresses.nodes[i],
      '--state-file',
      join(dir, `agent-${n.name}.json`),
      // nodes with an NFS server register its MOUNT ports and exports with the gateway
      ...lab.nfs.filter((s) => s.node === n.name).flatMap((s) => ['--ganesha-config', s.config]),
      // each agent checks its node's own services: nginx, and NFS and MOUNT where ganesha runs
      '--health-checks',
      join(root, 'infra/lab', lab.nfs.some((s) => s.node === n.name) ? 'health-nfs.yaml' : 'health-web.yaml'),
    ]);
    await waitFor(`agent ${n.name}`, async () => (await readFile(d.log, 'utf8')).includes('"msg":"ready"'));
  }
  const ctl = async (...args) =>
    (
      await lab.exec('gw', process.execPath, [
        bin.ctl,
        ...args,
        '--gateway',
        control,
        '--ca',
        join(dir, 'pki/ca.pem'),
        '--cert',
        join(dir, 'pki/op.pem'),
        '--key',
        join(dir, 'pki/op-key.pem'),
      ])
    ).stdout;

  // a change reaches the kernel's table a moment after the switch takes it (one nftables transaction for
  // both families): the demo's connections wait for the kernel to be in step, so they show the change
  const inStep = (what) =>
    waitFor(`the kernel table in step with the switch (${what})`, async () => {
      const s = JSON.parse(await ctl('gateway', 'status', '--json'));
      return s.datapath !== 'kernel' || s.appliedVersion === s.switchVersion;
    });
  await inStep('every node joined');

  step('onehostctl members');
  say((await ctl('members')).trimEnd());

  step(`curl http://${lab.addresses.vip}/ from c1, six times: one address, three nodes (round robin)`);
  for (let i = 0; i < 6; i++) {
    const r = await lab.exec('c1', 'curl', [
      '-sS',
      '-m',
      '5',
      '-w',
      ' (server %{remote_ip}:%{remote_port})',
      `http://${lab.addresses.vip}/`,
    ]);
    say(`  ${r.stdout.replace('\n', '')}`);
  }

  step(`curl -6 http://[${vip6}]/ from c1, six times: the IPv6 cluster address, the same round robin`);
  for (let i = 0; i < 6; i++) {
    const r = await lab.exec('c1', 'curl', [
      '-6',
      '-sS',
      '-m',
      '5',
      '-w',
      ' (server [%{remote_ip}]:%{remote_port})',
      `http://[${vip6}]/`,
    ]);
    say(`  ${r.stdout.replace('\n', '')}`);
  }

  step('n1 opens a connection to c1: c1 sees the cluster address and a port from n1’s block');
  const server = lab.spawn('c1', 'python3', [
    '-c',
    [
      'import socket',
      's=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      "s.bind(('0.0.0.0', 9000)); s.listen(1); print('listening', flush=True)",
      "k,a=s.accept(); k.recv(4096); k.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\n'+('%s:%d' % a).encode()); k.close()",
    ].join('\n'),
  ]);
  await server.waitForOutput('listening');
  const seen = await lab.exec('n1', 'curl', ['-sS', '-m', '5', `http://${lab.addresses.clients[0]}:9000/`]);
  say(`  c1 saw the connection come from ${seen.stdout.trim()}`);
  await server.stop();

  step('the same over IPv6: n1 connects to c1’s IPv6 address; c1 sees the IPv6 cluster address');
  const server6 = lab.spawn('c1', 'python3', [
    '-c',
    [
      'import socket',
      's=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      "s.bind(('::', 9006)); s.listen(1); print('listening', flush=True)",
      "k,a=s.accept(); k.recv(4096); k.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\n'+('[%s]:%d' % a[:2]).encode()); k.close()",
    ].join('\n'),
  ]);
  await server6.waitForOutput('listening');
  const client6 = lab.addresses.ipv6.clients[0];
  const seen6 = await lab.exec('n1', 'curl', ['-6', '-sS', '-m', '5', `http://[${client6}]:9006/`]);
  const n1 = JSON.parse(await ctl('members', '--json')).find((m) => m.name === 'n1');
  say(
    `  c1 saw the connection come from ${seen6.stdout.trim()}${n1?.block ? ` (n1’s block ${n1.block.lo}–${n1.block.hi})` : ''}`,
  );
  await server6.stop();

  step(`NFS: n1 exports /srv/projects, n2 /srv/home; outside, ${lab.addresses.vip} is one NFS server`);
  await waitFor('both nodes’ exports at the gateway', async () => {
    const out = await ctl('exports');
    return out.includes('/srv/projects') && out.includes('/srv/home');
  });
  say((await ctl('exports')).trimEnd());
  const showmount = await lab.exec('c1', 'showmount', ['-e', lab.addresses.vip]);
  say(`  c1$ showmount -e ${lab.addresses.vip}\n${showmount.stdout.trimEnd().replace(/^/gm, '  ')}`);
  for (const path of ['/srv/projects', '/srv/home']) {
    const r = await lab.exec('c1', 'python3', [
      join(root, 'test/src/nfs-rpc-client.py'),
      JSON.stringify({ host: lab.addresses.vip, op: 'mnt', path }),
    ]);
    const a = JSON.parse(r.stdout);
    say(
      `  MNT ${path} over UDP: status ${a.status}, reply from ${a.from.join(':')}, handle export id ${Number.parseInt(a.handle.slice(4, 8), 16)}`,
    );
  }

  step(
    `NFS over TCP with libnfs (delayed binding): nfs-ls, nfs-cat and a write with nfs-cp at ${lab.addresses.vip}, no port hints`,
  );
  await writeFile(join(lab.nfsOf('n1').tree, 'hello-from-n1.txt'), 'n1 serves /srv/projects\n');
  await writeFile(join(lab.nfsOf('n2').tree, 'hello-from-n2.txt'), 'n2 serves /srv/home\n');
  for (const [path, file] of [
    ['/srv/projects', 'hello-from-n1.txt'],
    ['/srv/home', 'hello-from-n2.txt'],
  ]) {
    const ls = await lab.exec('c1', 'nfs-ls', [`nfs://${lab.addresses.vip}${path}`], { timeoutMs: 20_000 });
    say(`  c1$ nfs-ls nfs://${lab.addresses.vip}${path}\n${ls.stdout.trimEnd().replace(/^/gm, '    ')}`);
    const cat = await lab.exec('c1', 'nfs-cat', [`nfs://${lab.addresses.vip}${path}/${file}`], {
      timeoutMs: 20_000,
    });
    say(`  c1$ nfs-cat nfs://${lab.addresses.vip}${path}/${file}\n    ${cat.stdout.trimEnd()}`);
  }
  // n2's export is writable: a file written through the cluster address lands on n2
  const note = join(lab.runDir, 'note-from-c1.txt');
  await writeFile(note, 'written by c1 through the cluster address\n');
  const cp = await lab.exec('c1', 'nfs-cp', [note, `nfs://${lab.addresses.vip}/srv/home/note-from-c1.txt`], {
    timeoutMs: 20_000,
  });
  say(`  c1$ nfs-cp note-from-c1.txt nfs://${lab.addresses.vip}/srv/home/\n    ${cp.stdout.trimEnd()}`);
  say(`  n2 has it: ${(await readFile(join(lab.nfsOf('n2').tree, 'note-from-c1.txt'), 'utf8')).trimEnd()}`);

  step('health: nginx stopped on n3; its agent’s check fails and n3 leaves port 80’s candidates only');
  await lab.stopNginx('n3');
  await waitFor('n3’s web check failing', async () => (await ctl('members')).includes('web: http /'));
  await inStep('n3 left port 80');
  say((await ctl('members')).trimEnd());
  const answers = [];
  for (let i = 0; i < 6; i++)
    answers.push(
      (await lab.exec('c1', 'curl', ['-sS', '-m', '5', `http://${lab.addresses.vip}/`])).stdout.trim(),
    );
  say(`  six new connections to ${lab.addresses.vip}:80 reached: ${answers.join(' ')}`);
  await lab.startNginx('n3');
  await waitFor('n3’s web check passing', async () => !(await ctl('members')).includes('web: http /'));
  say('  nginx started again on n3: its check passes, n3 takes new connections again');

  step(`onehostctl explain --flow 'tcp 203.0.113.10:40000 ${lab.addresses.vip}:80 syn'`);
  say((await ctl('explain', '--flow', `tcp 203.0.113.10:40000 ${lab.addresses.vip}:80 syn`)).trimEnd());

  step('onehostctl gateway status: the switch compiled into the kernel; what each function decided where');
  say((await ctl('gateway', 'status')).trimEnd());

  step('done');
  say(
    `The lab stays up. Try:\n  ip netns exec ${lab.prefix}c1 curl http://${lab.addresses.vip}/\n  ip netns exec ${lab.prefix}c1 curl -6 http://[${vip6}]/\n  ip netns exec ${lab.prefix}c1 rpcinfo -p ${lab.addresses.vip}\n  ip netns exec ${lab.prefix}c1 nfs-ls nfs://${lab.addresses.vip}/srv/projects\n  ip netns exec ${lab.prefix}gw curl -s http://${lab.addresses.gateway.inside}:9400/metrics | grep onehost_\n  the status page: http://${lab.addresses.gateway.inside}:9400/status from the gateway host (e.g. ip netns exec ${lab.prefix}gw chromium --headless --screenshot …)\n  logs: ${lab.runDir}/<host>/*.log`,
  );
  say('Stop it with:  ./scripts/demo down');
}

async function down() {
  await destroyLab(ID);
  say('demo lab removed');
}

const cmd = process.argv[2];
if (cmd === 'up') await up();
else if (cmd === 'down') await down();
else {
  process.stderr.write('usage: demo.mjs up|down\n');
  process.exit(2);
}
