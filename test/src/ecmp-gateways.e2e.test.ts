import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_NFS } from '@onehost/lab';
import { run, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { type Download, download, nfsStream } from './downloads.js';
import {
  buildEcmp,
  ctlAt,
  curls,
  defaultRouteHops,
  type Ecmp,
  GATEWAYS,
  ipBatch,
  type KeepAliveCheck,
  KeepAlives,
  type NfsKeepAliveFile,
  runsOwnTable,
  waitNextHops,
} from './gateways.js';
import { withEntries } from './lab-yaml.js';

// Two gateways behind a real router (FRR): ECMP over both, BGP announcements made by the gateways
// themselves (`announce`), BFD so a dead gateway host is withdrawn in under a second (gateways.ts has
// the picture). The gateways share an etcd store. Kernel data path only: the router and the
// announcement have nothing to do with the mode, and tun mode would only double the run time.

let c: Cluster | undefined;
let e: Ecmp | undefined;
const [G1, G2] = [GATEWAYS[0]!, GATEWAYS[1]!];
const BOTH = [G1.outside, G2.outside];
/** the connection entries the lab's nodes answer HTTP on (nginx on 80 and SERVICE_PORTS.nodeHttpMore) */
const FUNCTIONS: Record<string, string> = {
  '80': 'round robin',
  '8091': 'maglev',
  '8092': 'least-conn',
  '8093': 'fixed',
};
/** the ports whose connections conntrackd shares (the others are placed alike by every gateway) */
const SHARED = [80, 8092];
/** the long downloads' file (each lasts about 4 s at 4 MB/s), how many per function, c1's file port */
const BIG = 16 * 1024 * 1024;
const DOWNLOADS = 6;
const FILE_PORT = 9001;
/** the outside peer of the nodes' own connections (port-block function for its replies) */
const OUTSIDE_PORT = 9000;
// HTTP/1.1 keep-alive in c1 answering each request with the peer it sees (the cluster address and a
// port of the node's block)
const OUTSIDE_SERVER = `
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        b = ('%s:%d' % self.client_address[:2]).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(b))); self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer.daemon_threads = True
s = http.server.ThreadingHTTPServer(('0.0.0.0', ${OUTSIDE_PORT}), H)
print('listening', flush=True)
s.serve_forever()
`;

/** the NFS keep-alive connections' files: one per export (n1 /srv/projects, n2 /srv/home) */
const NFS_FILES: Record<string, NfsKeepAliveFile> = {};

beforeAll(async () => {
  if (DATAPATH !== 'kernel') return;
  c = await startCluster({
    nodes: 2,
    nfs: DEFAULT_NFS,
    agentArgs: (name, l) => ['--ganesha-config', l.nfsOf(name).config, '--mount-check-ms', '200'],
    gatewayYaml: (y) =>
      withEntries(y, [
        '{ protocol: tcp, port: 8091, function: connection, policy: maglev, nodes: [n1, n2] }',
        '{ protocol: tcp, port: 8092, function: connection, policy: least-conn, nodes: [n1, n2] }',
        '{ protocol: tcp, port: 8093, function: fixed, node: n1, backup: n2 }',
      ]),
    beforeGateway: async (lab, ca) => {
      const dir = join(lab.runDir, 'onehost');
      e = await buildEcmp(lab, ca, dir, await readFile(join(dir, 'gateway.yaml'), 'utf8'));
    },
  });
  for (const spec of DEFAULT_NFS) {
    const name = `${spec.node}-keepalive.bin`;
    const file = join(c.lab.nfsOf(spec.node).tree, name);
    await writeFile(file, randomBytes(1 << 20));
    NFS_FILES[spec.node] = { export: spec.path, name, file };
  }
  await c.waitForMount(['n1', 'n2'], 'tcp');
  await e!.startGateway2(c.dir);
  // the second gateway knows the nodes from etcd and runs their table
  await waitFor(
    async () => {
      const m = JSON.parse(await ctlAt(c!, G2.inside, ['members', '--json'])) as { state: string }[];
      return m.length === 2 && m.every((x) => x.state === 'active') && (await runsOwnTable(c!, G2.inside));
    },
    { what: 'gw2 with both nodes active', timeoutMs: 15_000, intervalMs: 100 },
  );
}, 120_000);

afterAll(async () => {
  await e?.stop();
  await c?.stop();
});

/** sum adds up keep-alive checks (errors: all of them, in order). */
function sum(checks: KeepAliveCheck[]): KeepAliveCheck {
  const t: KeepAliveCheck = { same: 0, changed: 0, failed: 0, errors: [] };
  for (const x of checks) {
    t.same += x.same;
    t.changed += x.changed;
    t.failed += x.failed;
    t.errors.push(...x.errors);
  }
  return t;
}

/**
 * viaGateway counts the nodes' established TCP connections with `peer` whose packets the node's routes
 * send through `gateway` (`ip route get` with the connection's ports: the kernel's multipath hash).
 */
async function viaGateway(cl: Cluster, nodes: string[], peer: string, gateway: string): Promise<number> {
  let n = 0;
  for (const node of nodes) {
    const netns = cl.lab.host(node).netns;
    const { stdout } = await run('ip', [
      'netns',
      'exec',
      netns,
      'ss',
      '-Htn',
      'state',
      'established',
      `dst ${peer}`,
    ]);
    for (const line of stdout.split('\n')) {
      const m = /(\S+):(\d+)\s+(\S+):(\d+)\s*$/.exec(line.trim());
      if (m === null) continue;
      const [, local, lport, remote, rport] = m;
      const route = await run('ip', [
        '-n',
        netns,
        'route',
        'get',
        remote!,
        'from',
        local!,
        'ipproto',
        'tcp',
        'sport',
        lport!,
        'dport',
        rport!,
      ]);
      if (route.stdout.includes(`via ${gateway} `)) n++;
    }
  }
  return n;
}

/** bothReady waits for both gateways as next hops, and gw2 (restarted by the tests before) running its
 * own table: it holds the table it adopted for its first 5 s, then rewrites it. */
async function bothReady(): Promise<void> {
  await waitNextHops(e!, BOTH);
  await waitFor(() => runsOwnTable(c!, G2.inside), {
    what: 'gw2 running its own table',
    timeoutMs: 15_000,
    intervalMs: 100,
  });
}

/** killGw2 kills gw2 (SIGKILL) and waits for the router to have gw1 alone. */
async function killGw2(): Promise<void> {
  const gw2 = e!.gw2!;
  process.kill(gw2.pid, 'SIGKILL');
  await gw2.whenExited();
  await waitNextHops(e!, [G1.outside], 5000, 5);
}

/** gw2Back starts gw2 again when a test left it stopped, and waits for both next hops. */
async function gw2Back(): Promise<void> {
  const ecmp = e!;
  if (ecmp.gw2 === undefined || ecmp.gw2.exitStatus() !== null) await ecmp.startGateway2(c!.dir);
  await waitNextHops(ecmp, BOTH, 20_000, 50);
}

describe.skipIf(DATAPATH !== 'kernel')('two gateways behind a router (ECMP, BGP + BFD)', () => {
  it('the router has both gateways as next hops; connections spread over both', {
    timeout: 30_000,
  }, async () => {
    const ecmp = e!;
    const cl = c!;
    await waitNextHops(ecmp, BOTH);
    expect(await ecmp.nextHops()).toEqual(BOTH);
    // with both gateways' host filters in place, BGP and BFD with the router are still up
    await ecmp.frr.get('r')!.established(5000);
    expect(JSON.parse(await ctlAt(cl, G2.inside, ['gateway', 'status', '--json']))).toBeTruthy();
    expect(await cl.curl('c1', `http://${cl.vip}/`)).toMatch(/^n[12]\n$/);
    const before = [await ecmp.rxPackets(0), await ecmp.rxPackets(1)];
    const r = await curls(cl, 'c1', 60);
    const got = [(await ecmp.rxPackets(0)) - before[0]!, (await ecmp.rxPackets(1)) - before[1]!];
    console.log(`60 connections: ${r.ok} ok, ${r.failed} failed; packets in at gw ${got[0]}, gw2 ${got[1]}`);
    expect(r.failed).toBe(0);
    // ≥ 5 packets a connection; each gateway must carry a real share (L4 hashing, not one path)
    const total = got[0]! + got[1]!;
    expect(Math.min(...got)).toBeGreaterThan(total * 0.15);
  });

  it('a clean stop of gw2 withdraws before its process exits; no connection fails', {
    timeout: 40_000,
  }, async () => {
    const ecmp = e!;
    const cl = c!;
    const gw2 = ecmp.gw2!;
    let exitedAt = 0;
    void gw2.whenExited().then(() => {
      exitedAt = Date.now();
    });
    const t0 = Date.now();
    const withdrawn = waitNextHops(ecmp, [G1.outside], 10_000, 5).then(() => Date.now());
    const stopping = gw2.stop(10_000);
    const withdrawnAt = await withdrawn;
    await stopping;
    console.log(
      `clean stop: withdrawn at the router after ${withdrawnAt - t0} ms, gw2 exited after ${exitedAt - t0} ms`,
    );
    expect(exitedAt).toBeGreaterThan(0);
    expect(withdrawnAt).toBeLessThan(exitedAt);
    // the gateway's own account: announced once ready, withdrawn before it undid its data path
    const out = await gw2.finalOutput();
    expect(out.indexOf('"msg":"announced"')).toBeGreaterThan(out.indexOf('"msg":"ready"'));
    expect(out.indexOf('"msg":"withdrawn"')).toBeGreaterThan(0);
    expect(out.indexOf('"msg":"withdrawn"')).toBeLessThan(out.lastIndexOf('"msg":"stopped"'));
    const r = await curls(cl, 'c1', 20);
    expect(r).toEqual({ ok: 20, failed: 0 });
    // started again: announced again once ready
    await ecmp.startGateway2(cl.dir);
    await waitNextHops(ecmp, BOTH);
  });

  it('the gateway registry: both gateways listed alike by either; a drain withdraws gw2; a killed gw2 is withdrawn at the router in < 1 s (its guard) and leaves the registry within 4 s (lease 2 s)', {
    timeout: 60_000,
  }, async () => {
    const ecmp = e!;
    const cl = c!;
    await waitNextHops(ecmp, BOTH);
    type Listed = { gateways: Array<{ name: string; health: string; announcement: string; stale: string }> };
    const listAt = async (address: string): Promise<Listed> =>
      JSON.parse(await ctlAt(cl, address, ['gateways', '--json']));
    const brief = (l: Listed) => l.gateways.map((g) => `${g.name} ${g.health} ${g.announcement}`);
    // the records follow announcements within a second
    await waitFor(
      async () => {
        const [a, b] = [await listAt(G1.inside), await listAt(G2.inside)];
        const want = [`${G1.name} ready announced`, `${G2.name} ready announced`];
        return (
          JSON.stringify(brief(a)) === JSON.stringify(want) &&
          JSON.stringify(brief(b)) === JSON.stringify(want)
        );
      },
      { what: 'both gateways ready and announced, as either lists them', timeoutMs: 5000, intervalMs: 100 },
    );
    expect((await ctlAt(cl, G1.inside, ['gateways'])).split('\n')[0]).toMatch(/^NAME\s+ADDRESS\s+MODE/);

    // drained through gw1: gw2 follows its flag in etcd, withdraws, reports draining; no connection fails
    await ctlAt(cl, G1.inside, ['gateway', 'drain', G2.name]);
    await waitNextHops(ecmp, [G1.outside], 5000, 10);
    await waitFor(async () => brief(await listAt(G1.inside)).includes(`${G2.name} draining withdrawn`), {
      what: 'gw2 draining and withdrawn in the registry',
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect(await curls(cl, 'c1', 10)).toEqual({ ok: 10, failed: 0 });
    await ctlAt(cl, G2.inside, ['gateway', 'undrain', G2.name]);
    await waitNextHops(ecmp, BOTH, 10_000, 10);

    // killed: no revoke; etcd drops gw2's record when its 2 s lease runs out, and gw1 lists gw1 alone
    const gw2 = ecmp.gw2!;
    process.kill(gw2.pid, 'SIGKILL');
    await gw2.whenExited();
    const killedAt = Date.now();
    // its host and FRR live on: the withdraw guard gw2 left behind withdraws its announcement
    const withdrawnMs = await waitNextHops(ecmp, [G1.outside], 5000, 5);
    console.log(`gw2 killed: its withdraw guard withdrew it at the router after ${withdrawnMs} ms`);
    expect(withdrawnMs).toBeLessThan(1000);
    await waitFor(async () => (await listAt(G1.inside)).gateways.every((g) => g.name !== G2.name), {
      what: "the killed gw2's record gone",
      timeoutMs: 4000,
      intervalMs: 100,
    });
    console.log(`gw2 killed: gone from the registry after ${Date.now() - killedAt} ms (lease TTL 2 s)`);
    // the next gw2 adopts its kernel state, registers and announces again
    await ecmp.startGateway2(cl.dir);
    await waitNextHops(ecmp, BOTH, 20_000, 50);
    await waitFor(async () => (await listAt(G1.inside)).gateways.length === 2, {
      what: 'gw2 registered again',
      timeoutMs: 5000,
      intervalMs: 100,
    });
  });

  it('established connections keep their node when the router moves them (gw2 killed, a new gw2, gw2 stopped): every function (NFS over TCP too), round robin and least-connections through conntrackd', {
    timeout: 120_000,
  }, async () => {
    const ecmp = e!;
    const cl = c!;
    // the connections are opened once gw2's table is its own
    await bothReady();
    // the seconds left of the tracked connections to the cluster address in gateway i's kernel (shared
    // ones only: SHARED ports)
    const timeouts = async (i: number, state = '') => {
      const { stdout } = await run('ip', ['netns', 'exec', ecmp.netnsOf(i), 'conntrack', '-L', '-p', 'tcp']);
      return stdout
        .split('\n')
        .filter((l) => l.includes(`dst=${cl.vip} `) && l.includes(` ${state}`))
        .map((l) => Number(/^tcp\s+6\s+(\d+)\s/.exec(l)?.[1] ?? 0));
    };
    const entries = async (i: number) => (await timeouts(i)).length;
    const ka = new KeepAlives(cl.lab.host('c1').netns, cl.vip);
    // NFS over TCP (delayed binding): each connection handed over to its export's node by the gateway
    // that got its first call; the kernel of every gateway shifts its segments (docs/splice.md)
    const nfs = new KeepAlives(cl.lab.host('c1').netns, cl.vip, NFS_FILES);
    // the nodes' own connections to the outside: their replies come back over either gateway, which
    // sends them to the node by its port block (from etcd, the same on both)
    const server = cl.lab.spawn('c1', 'python3', ['-c', OUTSIDE_SERVER]);
    await server.waitForOutput('listening');
    const client = cl.lab.addresses.clients[0]!;
    const outbound = ['n1', 'n2'].map((n) => new KeepAlives(cl.lab.host(n).netns, client));
    const N = 20;
    const open = async () => {
      for (const port of Object.keys(FUNCTIONS))
        expect(await ka.open(N, Number(port))).toEqual({ opened: N, failed: 0 });
      for (const o of outbound)
        expect(await o.open(N / 2, OUTSIDE_PORT)).toEqual({ opened: N / 2, failed: 0 });
      for (const node of Object.keys(NFS_FILES))
        expect(await nfs.open(N / 2, node), `NFS to ${node}`).toEqual({ opened: N / 2, failed: 0 });
    };
    const figures: string[] = [];
    const line = (event: string, fn: string, x: KeepAliveCheck) =>
      `${event.padEnd(12)} ${fn.padEnd(12)} ${x.same}/${x.same + x.changed + x.failed} kept${x.errors.length > 0 ? ` (${x.errors[0]})` : ''}`;
    const check = async (event: string, total: number) => {
      const r = await ka.check(total);
      for (const [port, fn] of Object.entries(FUNCTIONS)) figures.push(line(event, fn, r[port]!));
      // both nodes' outbound connections as one figure, and both exports' NFS connections
      const o = sum(
        (await Promise.all(outbound.map((k) => k.check(total)))).map((x) => x[String(OUTSIDE_PORT)]!),
      );
      figures.push(line(event, 'port-block', o));
      r.outbound = o;
      const n = sum(Object.values(await nfs.check(total)));
      figures.push(line(event, 'NFS (TCP)', n));
      r.nfs = n;
      return r;
    };
    const allKept = (r: Record<string, { same: number; changed: number; failed: number }>, per: number) => {
      for (const port of [...Object.keys(FUNCTIONS), 'outbound', 'nfs'])
        expect(r[port], `port ${port}`).toMatchObject({ same: per, changed: 0, failed: 0 });
    };
    try {
      // A: opened over both gateways (the router hashes each connection), each placed by one of them
      await open();
      // every shared entry reached the other gateway's kernel (conntrackd, both ways)
      const shared = SHARED.length * N;
      await waitFor(async () => (await entries(0)) >= shared && (await entries(1)) >= shared, {
        what: `both gateways with ${shared} conntrack entries`,
        timeoutMs: 5000,
        intervalMs: 100,
      });
      // no open connection's entry ends before it has idled as long as the flow map keeps it (900 s),
      // and the copies of the other gateway's entries (conntrackd's) last until the original ends
      for (const i of [0, 1]) {
        const t = await timeouts(i, 'ESTABLISHED');
        expect(Math.min(...t), `gw${i + 1}`).toBeGreaterThan(800);
        expect(t.filter((x) => x > 400_000).length, `gw${i + 1}`).toBeGreaterThan(0);
      }
      // the router sent some of the outbound connections' replies to gw2, whose kernel sent them on by
      // port block (counted as `unmatched`: no entry of the switch decides them)
      const { stdout: m2 } = await cl.lab.exec('gw', 'curl', [
        '-sS',
        '--max-time',
        '5',
        `http://${G2.inside}:9400/metrics`,
      ]);
      expect(
        Number(
          /onehost_function_packets_total\{function="unmatched",path="kernel"\} (\d+)/.exec(m2)?.[1] ?? 0,
        ),
        m2
          .split('\n')
          .filter((l) => l.startsWith('onehost_function_packets_total'))
          .join('; '),
      ).toBeGreaterThan(0);
      // gw2 killed: its connections move to gw1, which never saw their start
      await killGw2();
      allKept(await check('gw2 killed', 4 * N), N);
      // B: opened while gw1 is alone: all placed by gw1
      await open();
      // a new gw2 (its kernel state adopted) asks gw1 for every entry at its start; half of A and B
      // come back to it, B's never seen there
      await ecmp.startGateway2(cl.dir);
      await waitNextHops(ecmp, BOTH, 20_000, 50);
      await waitFor(async () => (await entries(1)) >= 2 * shared, {
        what: `gw2 with the ${2 * shared} shared connections' entries (conntrackd's resync)`,
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      allKept(await check('gw2 added', 8 * N), 2 * N);
      // the returning gateway found connections by their entries
      const { stdout: m } = await cl.lab.exec('gw', 'curl', [
        '-sS',
        '--max-time',
        '5',
        `http://${G2.inside}:9400/metrics`,
      ]);
      expect(m).toMatch(/onehost_connections_from_peers_total\{protocol="tcp",port="80"\} [1-9]/);
      expect(m).toMatch(/onehost_flow_sync_up\{peer="198\.18\.0\.\d+"\} 1/);
      // gw2 stopped cleanly: it withdraws, its connections move to gw1
      await ecmp.gw2!.stop(5000);
      await waitNextHops(ecmp, [G1.outside], 5000, 5);
      allKept(await check('gw2 stopped', 8 * N), 2 * N);
      // the NFS connections end as the client and the server agree (FIN, not the gateway's RST), also
      // those handed over by gw2 or while gw1 was not there: gw1 sends their FINs to the node's agent
      const ends = await nfs.closeAll(2 * N);
      for (const node of Object.keys(NFS_FILES))
        expect(ends[node], `NFS to ${node}`).toEqual({ fin: N, rst: 0, open: 0 });
    } finally {
      console.log(
        `connections kept per event and function (ECMP over 2 gateways, ${N} per function and phase):\n${figures.join('\n')}`,
      );
      await ka.close();
      await nfs.close();
      await Promise.all(outbound.map((o) => o.close()));
      await server.stop();
      await gw2Back();
    }
  });

  it('long downloads while gw2 is killed (data flowing, the clients’ ACKs moved to gw1): every function’s and NFS reads over TCP complete in full', {
    timeout: 90_000,
  }, async () => {
    const ecmp = e!;
    const cl = c!;
    await bothReady();
    // the nodes' nginx serves its html directory on every port; c1 serves one for the nodes' own
    // downloads, whose replies come back by their port blocks
    const client = cl.lab.addresses.clients[0]!;
    for (const host of ['n1', 'n2', 'c1']) {
      const dir = join(cl.lab.runDir, host, host === 'c1' ? 'www' : 'nginx/html');
      await cl.lab.exec(host, 'sh', ['-c', `mkdir -p ${dir} && head -c ${BIG} /dev/urandom > ${dir}/big`]);
    }
    const files = cl.lab.spawn('c1', 'python3', [
      '-m',
      'http.server',
      String(FILE_PORT),
      '--bind',
      '0.0.0.0',
      '--directory',
      join(cl.lab.runDir, 'c1', 'www'),
    ]);
    try {
      await waitFor(
        async () => (await cl.lab.exec('c1', 'ss', ['-Hltn', `sport = :${FILE_PORT}`])).stdout.trim() !== '',
        { what: `c1's file server on :${FILE_PORT}` },
      );
      const get = (what: string, host: string, url: string) => download(cl.lab, what, host, url, '4M');
      // NFS over TCP with libnfs (nfs-cat, delayed binding), paced to the same 4 MB/s by a slow reader
      // of its output (nfs-cat reads the next piece once its last one was written)
      const nfsFiles = await Promise.all(
        DEFAULT_NFS.map(async (spec) => {
          const name = `${spec.node}-stream.bin`;
          const bytes = randomBytes(BIG);
          await writeFile(join(cl.lab.nfsOf(spec.node).tree, name), bytes);
          return { spec, name, sha: createHash('sha256').update(bytes).digest('hex') };
        }),
      );
      const rx0 = await ecmp.rxPackets(1);
      const downloads: Download[] = [];
      for (let i = 0; i < DOWNLOADS; i++) {
        for (const [port, fn] of Object.entries(FUNCTIONS))
          downloads.push(get(`${fn} #${i}`, 'c1', `http://${cl.vip}:${port}/big`));
        downloads.push(get(`port-block #${i}`, `n${(i % 2) + 1}`, `http://${client}:${FILE_PORT}/big`));
        const f = nfsFiles[i % nfsFiles.length]!;
        downloads.push(
          nfsStream(cl.lab, `NFS ${f.spec.node} #${i}`, `nfs://${cl.vip}${f.spec.path}/${f.name}`, f.sha),
        );
      }
      const established = async (host: string, filter: string) =>
        (await cl.lab.exec(host, 'ss', ['-Htn', 'state', 'established', filter])).stdout
          .split('\n')
          .filter((l) => l.trim() !== '').length;
      // every download past its handshake, and the shared ones' entries on gw1 too
      await waitFor(
        async () =>
          (await established('c1', `dst ${cl.vip} and dport != :2049`)) >= 4 * DOWNLOADS &&
          (await established('c1', `dst ${cl.vip} and dport = :2049`)) >= DOWNLOADS &&
          (await established('n1', `dst ${client}`)) + (await established('n2', `dst ${client}`)) >=
            DOWNLOADS,
        { what: 'every download under way', timeoutMs: 15_000, intervalMs: 100 },
      );
      // data flowing, and gw2 carrying its share of the clients' ACKs (and of the nodes' downloads' data)
      let viaGw2 = 0;
      await waitFor(
        async () => {
          viaGw2 = (await ecmp.rxPackets(1)) - rx0;
          return viaGw2 > 300;
        },
        { what: 'the downloads’ packets through gw2', timeoutMs: 5000, intervalMs: 50 },
      );
      await killGw2();
      const results = await Promise.all(downloads.map(async (d) => ({ what: d.what, ...(await d.done) })));
      const failed = results
        .filter((r) => !r.ok || r.bytes !== BIG)
        .map((r) => `${r.what}: ${r.ok ? `${r.bytes} bytes` : r.detail}`);
      console.log(
        `long downloads across gw2 killed: ${results.length - failed.length}/${results.length} complete in full (${DOWNLOADS} per function and NFS, ${BIG >> 20} MiB at 4 MB/s each; ${viaGw2} packets through gw2 before its kill)`,
      );
      expect(failed).toEqual([]);
    } finally {
      await files.stop();
      await gw2Back();
    }
  });

  it('gw2’s host dies (kill -9, its links down): the nodes route their replies through gw1 alone in about a second, every connection kept; gw2’s outside link down alone does the same (it stops probing); back when gw2 probes again', {
    timeout: 90_000,
  }, async () => {
    const ecmp = e!;
    const cl = c!;
    await bothReady();
    const nodes = ['n1', 'n2'];
    // the next hops of a node's default route
    const hopsAre = async (want: string[]) => {
      for (const n of nodes) if ((await defaultRouteHops(cl, n)).join() !== want.join()) return false;
      return true;
    };
    expect(await hopsAre([G1.inside, G2.inside])).toBe(true);
    const ka = new KeepAlives(cl.lab.host('c1').netns, cl.vip);
    const server = cl.lab.spawn('c1', 'python3', ['-c', OUTSIDE_SERVER]);
    await server.waitForOutput('listening');
    const client = cl.lab.addresses.clients[0]!;
    const outbound = nodes.map((n) => new KeepAlives(cl.lab.host(n).netns, client));
    const N = 10;
    // down takes the host's route to the outside with it; up puts it back
    const links = (state: 'up' | 'down') =>
      ipBatch(ecmp.gw2Netns, [
        `link set eth0 ${state}`,
        `link set eth1 ${state}`,
        ...(state === 'up' ? [`route replace ${cl.lab.plan.outside.prefix} via ${G2.router}`] : []),
      ]);
    try {
      for (const port of Object.keys(FUNCTIONS))
        expect(await ka.open(N, Number(port))).toEqual({ opened: N, failed: 0 });
      for (const o of outbound) expect(await o.open(N, OUTSIDE_PORT)).toEqual({ opened: N, failed: 0 });
      // the nodes hash each connection over both gateways: some of these leave through gw2
      const viaGw2 = await viaGateway(cl, nodes, client, G2.inside);
      expect(viaGw2).toBeGreaterThan(0);
      const gw2 = ecmp.gw2!;
      const t0 = Date.now();
      process.kill(gw2.pid, 'SIGKILL');
      await links('down');
      await gw2.whenExited();
      await waitNextHops(ecmp, [G1.outside], 5000, 5);
      await waitFor(() => hopsAre([G1.inside]), {
        what: 'both nodes routing through gw1 alone',
        timeoutMs: 5000,
        intervalMs: 20,
      });
      const rerouted = Date.now() - t0;
      const r = await ka.check(4 * N);
      const o = await Promise.all(outbound.map((k) => k.check(N)));
      console.log(
        `gw2's host died (${viaGw2} of the nodes' connections to c1 had left through gw2): both nodes routed through gw1 alone ${rerouted} ms after the kill; kept: ${Object.entries(
          FUNCTIONS,
        )
          .map(([port, fn]) => `${fn} ${r[port]!.same}/${N}`)
          .join(', ')}, port-block ${o.map((x) => x[String(OUTSIDE_PORT)]!.same).join('+')}/${2 * N}`,
      );
      for (const port of Object.keys(FUNCTIONS))
        expect(r[port], `port ${port}`).toMatchObject({ same: N, changed: 0, failed: 0 });
      for (const x of o) expect(x[String(OUTSIDE_PORT)]).toMatchObject({ same: N, changed: 0, failed: 0 });
      // the agents leave gw2 out after 4 probe intervals of silence (200 ms each)
      expect(rerouted).toBeLessThan(1500);
    } finally {
      await ka.close();
      await Promise.all(outbound.map((k) => k.close()));
      await server.stop();
      await links('up');
      await gw2Back();
    }
    // gw2 probes again: the nodes take it back
    await waitFor(() => hopsAre([G1.inside, G2.inside]), {
      what: 'both nodes routing through both gateways again',
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    // gw2 alive, its outside link down: it cannot forward replies, so it stops probing and the nodes
    // leave it out the same way; back when the link is
    const rr = new KeepAlives(cl.lab.host('c1').netns, cl.vip);
    try {
      expect(await rr.open(2 * N, 80)).toEqual({ opened: 2 * N, failed: 0 });
      const t1 = Date.now();
      await ipBatch(ecmp.gw2Netns, ['link set eth0 down']);
      await waitFor(() => hopsAre([G1.inside]), {
        what: 'both nodes routing through gw1 alone (gw2’s outside link down)',
        timeoutMs: 5000,
        intervalMs: 20,
      });
      const left = Date.now() - t1;
      const kept = (await rr.check(2 * N))['80']!;
      console.log(
        `gw2's outside link down: the nodes left it out after ${left} ms; round robin kept ${kept.same}/${2 * N}`,
      );
      expect(kept).toMatchObject({ same: 2 * N, changed: 0, failed: 0 });
    } finally {
      await rr.close();
      await ipBatch(ecmp.gw2Netns, [
        'link set eth0 up',
        `route replace ${cl.lab.plan.outside.prefix} via ${G2.router}`,
      ]);
    }
    await waitFor(() => hopsAre([G1.inside, G2.inside]), {
      what: 'both nodes routing through both gateways (gw2’s outside link up)',
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    await waitNextHops(ecmp, BOTH, 20_000, 50);
  });

  it('gw2 host’s FRR frozen (SIGSTOP: TCP stays up, only BFD can tell): withdrawn in < 1 s', {
    timeout: 40_000,
  }, async () => {
    const ecmp = e!;
    const cl = c!;
    await waitNextHops(ecmp, BOTH);
    const frr = ecmp.frr.get('gw2')!;
    const t0 = Date.now();
    frr.freeze();
    try {
      await waitNextHops(ecmp, [G1.outside], 5000, 5).catch(async (err) => {
        const r = ecmp.frr.get('r')!;
        console.log(await r.vtysh('show bfd peers brief'), await r.vtysh('show bgp summary'));
        console.log(await r.vtysh('show ip bgp 203.0.113.80/32'));
        throw err;
      });
      const ms = Date.now() - t0;
      console.log(`gw2's FRR frozen: withdrawn at the router after ${ms} ms (BFD 100 ms × 3)`);
      expect(ms).toBeLessThan(1000);
      const r = await curls(cl, 'c1', 20);
      expect(r).toEqual({ ok: 20, failed: 0 });
    } finally {
      frr.thaw();
    }
    // the session comes back by itself (connect retry 1 s), and with it the announcement
    await waitNextHops(ecmp, BOTH, 20_000, 50);
  });

  it('kill -9 of gw2 host’s FRR: the router withdraws it in < 1 s; new connections all succeed', {
    timeout: 30_000,
  }, async () => {
    const ecmp = e!;
    const cl = c!;
    await waitNextHops(ecmp, BOTH);
    const frr = ecmp.frr.get('gw2')!;
    const t0 = Date.now();
    await frr.kill();
    const ms = await waitNextHops(ecmp, [G1.outside], 5000, 5);
    const total = Date.now() - t0;
    console.log(
      `kill -9 of gw2's FRR: withdrawn at the router after ${total} ms (${ms} ms after the kill returned)`,
    );
    expect(total).toBeLessThan(1000);
    const r = await curls(cl, 'c1', 30);
    expect(r).toEqual({ ok: 30, failed: 0 });
  });
});
