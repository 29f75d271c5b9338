import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_NFS, type Lab } from '@onehost/lab';
import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capture } from './capture.js';
import { type Cluster, DATAPATH, SPLICE_KERNEL, startCluster } from './cluster.js';
import { kernelSpliceCounters } from './ksplice.js';

// NFSv3 over TCP through the cluster address with the real libnfs tools (libnfs-utils 4.0: nfs-ls,
// nfs-cat, nfs-cp), which speak TCP only: delayed binding (docs/splice.md). The URLs carry no port
// hints (no ?mountport= / ?nfsport=): libnfs asks the portmapper at the cluster address (111) for
// MOUNT v3/TCP and NFS v3/TCP, then opens one MOUNT and one NFS connection, each starting with a NULL
// call. n1 exports /srv/projects (export id 11, random MOUNT ports), n2 /srv/home (12, MOUNT 20050).
//
// What libnfs 4.0 does with a URL: nfs-ls mounts the whole path (nfs://host/srv/projects → MNT
// /srv/projects); nfs-cat and nfs-cp mount the directory of the file and LOOKUP its last component
// (nfs://host/srv/projects/a/b.txt → MNT /srv/projects/a, LOOKUP b.txt). nfs-cp creates its local
// destination with O_EXCL: the file must not exist yet. No tool has a timeout of its own: every run
// here is bounded by the exec timeout.

/** The gateway's `splice.idleMs` in this suite: a held connection that routes nothing is reset then. */
const IDLE_MS = 2000;
/** How late after IDLE_MS the client may see the cut (timers, scheduling on a busy two-core machine). */
const IDLE_SLACK_MS = 1500;
/** The gateway's counter of held connections by outcome, and the outcomes this suite reads. */
const SPLICE_METRIC = 'onehost_splice_flows_total';
const IDLE_OUTCOME = { outcome: 'idle_timeout' };
const HANDED_OVER = { outcome: 'handed_over' };

const MOUNT_PORT = 20048;
const NFS_PORT = 2049;
/** The bulk files: one per export. */
const BIG = 64 * 1024 * 1024;
/** Bound of one bulk copy (64 MiB takes well under a second directly). */
const COPY_TIMEOUT_MS = 60_000;
/** Bound of one nfs-ls or nfs-cat. */
const TOOL_TIMEOUT_MS = 30_000;
/** nfs-cat sessions run at once, half on each export. */
const PARALLEL = 20;
/** The subdirectory made in each export. */
const SUB = 'sub';
/** Bytes of each tcpdump frame kept during a bulk transfer: Ethernet + IPv4 + TCP headers. */
const SNAPLEN = 128;

/** What a node holds: its export and the files put in it for this suite. */
interface Tree {
  node: 'n1' | 'n2';
  path: string;
  /** a text file only this export has */
  marker: string;
  markerText: string;
  /** a file in the subdirectory SUB: libnfs mounts <path>/sub for it (the gateway: longest match) */
  deep: string;
  deepText: string;
  /** the bulk file and its sha256 */
  big: string;
  bigSha: string;
  /** small files the parallel sessions read, name → content */
  small: Map<string, string>;
}

/** One TCP segment's headers, as read from a capture (snaplen-safe: no payload is read). */
interface Segment {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: number;
}

const ip4 = (p: Uint8Array, o: number) => `${p[o]}.${p[o + 1]}.${p[o + 2]}.${p[o + 3]}`;

/** segments reads the TCP segments of a capture; the payload length comes from the IPv4 total length. */
function segments(packets: Uint8Array[]): Segment[] {
  const out: Segment[] = [];
  for (const p of packets) {
    const ihl = (p[0]! & 0x0f) * 4;
    if (p[9] !== 6 || p.length < ihl + 13) continue;
    const total = (p[2]! << 8) | p[3]!;
    const doff = (p[ihl + 12]! >> 4) * 4;
    out.push({
      src: ip4(p, 12),
      dst: ip4(p, 16),
      srcPort: (p[ihl]! << 8) | p[ihl + 1]!,
      dstPort: (p[ihl + 2]! << 8) | p[ihl + 3]!,
      payload: total - ihl - doff,
    });
  }
  return out;
}

/** bySourcePort sums segments and payload bytes per source port. */
function bySourcePort(segs: Segment[]): Map<number, { segments: number; bytes: number }> {
  const m = new Map<number, { segments: number; bytes: number }>();
  for (const s of segs) {
    const e = m.get(s.srcPort) ?? { segments: 0, bytes: 0 };
    e.segments++;
    e.bytes += s.payload;
    m.set(s.srcPort, e);
  }
  return m;
}

/** sha256 of a file, streamed. */
async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * A client that connects to each port and sends nothing (or the bytes of an optional 4th argument, in
 * hex), then waits (at most `limit` s) for the server to end the connection; prints
 * {port: {how: rst|fin|data|open, ms}} (ms from the handshake).
 */
const IDLE_PROBE = `
import json, socket, sys, threading, time
host, ports, limit = sys.argv[1], [int(p) for p in sys.argv[2].split(',')], float(sys.argv[3])
first = bytes.fromhex(sys.argv[4]) if len(sys.argv) > 4 else b''
out = {}
def probe(port):
    s = socket.create_connection((host, port), timeout=3)
    t0 = time.monotonic()
    s.sendall(first)
    s.settimeout(limit)
    try:
        how = 'fin' if s.recv(1) == b'' else 'data'
    except ConnectionResetError:
        how = 'rst'
    except socket.timeout:
        how = 'open'
    out[str(port)] = {'how': how, 'ms': round((time.monotonic() - t0) * 1000)}
    s.close()
ts = [threading.Thread(target=probe, args=(p,)) for p in ports]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps(out))
`;

describe('NFSv3 over TCP with the libnfs tools (nfs-ls, nfs-cat, nfs-cp)', () => {
  let cluster: Cluster;
  let lab: Lab;
  let vip: string;
  let copies: string;
  const trees: Tree[] = [];
  let copyNo = 0;

  const metric = (name: string, labels: Record<string, string> = {}) => cluster.metric(name, labels);

  /** url names an export (`/srv/projects`) or a file in it, with no port hints: libnfs asks the portmapper. */
  const url = (server: string, path: string, name?: string) =>
    `nfs://${server}${path}${name === undefined ? '' : `/${name}`}`;

  /** ls runs nfs-ls on `host` and returns the names it lists (sorted). */
  async function ls(host: string, server: string, path: string): Promise<string[]> {
    const { stdout } = await lab.exec(host, 'nfs-ls', [url(server, path)], { timeoutMs: TOOL_TIMEOUT_MS });
    return stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const m = /^\S+\s+\d+\s+\d+\s+\d+\s+\d+\s+(.+)$/.exec(l);
        if (!m) throw new Error(`nfs-ls printed an unexpected line: ${JSON.stringify(l)}`);
        return m[1]!;
      })
      .sort();
  }

  /** cat runs nfs-cat on `host`; resolves with what it printed. */
  async function cat(host: string, server: string, path: string, name: string): Promise<string> {
    const { stdout } = await lab.exec(host, 'nfs-cat', [url(server, path, name)], {
      timeoutMs: TOOL_TIMEOUT_MS,
    });
    return stdout;
  }

  /** copy runs nfs-cp of a file to a new local file (removed after); resolves with the copy's sha256. */
  async function copy(
    host: string,
    server: string,
    path: string,
    name: string,
    timeoutMs = COPY_TIMEOUT_MS,
  ): Promise<{ sha: string }> {
    const dst = join(copies, `${host}-${++copyNo}-${name}`);
    await rm(dst, { force: true }); // nfs-cp opens its destination with O_EXCL
    try {
      const { stdout } = await lab.exec(host, 'nfs-cp', [url(server, path, name), dst], { timeoutMs });
      expect(stdout.trim()).toBe(`copied ${BIG} bytes`);
      return { sha: await sha256File(dst) };
    } finally {
      await rm(dst, { force: true });
    }
  }

  /** parallelCats runs PARALLEL nfs-cat sessions at once, spread over both trees; returns the mismatches. */
  async function parallelCats(host: string, server: (t: Tree) => string): Promise<string[]> {
    const jobs = Array.from({ length: PARALLEL }, (_, i) => {
      const t = trees[i % trees.length]!;
      const names = [...t.small.keys()];
      const name = names[Math.floor(i / trees.length) % names.length]!;
      return { t, name };
    });
    const got = await Promise.all(
      jobs.map(({ t, name }) =>
        cat(host, server(t), t.path, name).then(
          (s) => ({ t, name, s }),
          (e: Error) => ({ t, name, s: `FAILED: ${e.message}` }),
        ),
      ),
    );
    return got
      .filter(({ t, name, s }) => s !== t.small.get(name))
      .map(({ t, name, s }) => `${t.node}:${t.path}/${name}: ${s.slice(0, 200)}`);
  }

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 2,
      nfs: DEFAULT_NFS,
      agents: ['n1', 'n2'],
      agentArgs: (name, l) => ['--ganesha-config', l.nfsOf(name).config, '--mount-check-ms', '200'],
      gatewayYaml: (yaml) => `${yaml}\nsplice: { idleMs: ${IDLE_MS} }\n`,
    });
    lab = cluster.lab;
    vip = cluster.vip;
    copies = join(lab.runDir, 'nfs-copies');
    await mkdir(copies, { recursive: true });
    for (const spec of DEFAULT_NFS) {
      const node = spec.node as Tree['node'];
      const big = randomBytes(BIG);
      const small = new Map<string, string>();
      for (let i = 0; i < PARALLEL / 2; i++)
        small.set(
          `${node}-${i}.txt`,
          `${node} ${spec.path} ${i} ${randomBytes(512 * (i + 1)).toString('hex')}\n`,
        );
      const t: Tree = {
        node,
        path: spec.path,
        marker: `only-on-${node}.txt`,
        markerText: `${spec.path} lives on ${node}\n`,
        deep: `${node}-deep.txt`,
        deepText: `${spec.path}/${SUB} lives on ${node} too\n`,
        big: `${node}-big.bin`,
        bigSha: createHash('sha256').update(big).digest('hex'),
        small,
      };
      const dir = lab.nfsOf(node).tree;
      await writeFile(join(dir, t.marker), t.markerText);
      await mkdir(join(dir, SUB));
      await writeFile(join(dir, SUB, t.deep), t.deepText);
      await writeFile(join(dir, t.big), big);
      for (const [name, text] of small) await writeFile(join(dir, name), text);
      trees.push(t);
    }
    await cluster.waitForMount(['n1', 'n2'], 'tcp');
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  /** tunTxPackets is what the node's kernel sent into the agent's TUN (the spliced segments the agent shifts). */
  async function tunTxPackets(node: string): Promise<number> {
    const { stdout } = await lab.exec(node, 'ip', ['-j', '-s', 'link', 'show', 'dev', 'ohsplice0']);
    return (JSON.parse(stdout) as Array<{ stats64: { tx: { packets: number } } }>)[0]!.stats64.tx.packets;
  }

  /** throttle slows what `host` sends on eth0 to ~100 Mbit/s (64 MiB: ~5 s), so a fault lands mid-transfer. */
  const throttle = (host: string) =>
    lab.exec(host, 'tc', [
      'qdisc',
      'replace',
      'dev',
      'eth0',
      'root',
      'tbf',
      'rate',
      '100mbit',
      'burst',
      '256kb',
      'latency',
      '100ms',
    ]);
  const unthrottle = (host: string) =>
    lab.exec(host, 'tc', ['qdisc', 'del', 'dev', 'eth0', 'root']).catch(() => undefined);

  /** sizeOf is a file's size, 0 while it does not exist. */
  const sizeOf = (file: string) =>
    stat(file).then(
      (st) => st.size,
      () => 0,
    );

  const names = (t: Tree) => [t.marker, t.big, SUB, ...t.small.keys()].sort();
  const nodeAddress = (t: Tree) => lab.addresses.nodes[Number(t.node.slice(1)) - 1]!;

  it(
    'libnfs tools work against n1 and n2 directly (baseline for the cluster tests)',
    async () => {
      // c2 is on the management list: it reaches the nodes' own addresses through the gateway host
      for (const t of trees) {
        expect(await ls('c2', nodeAddress(t), t.path), `${t.node} ${t.path}`).toEqual(names(t));
        expect(await cat('c2', nodeAddress(t), t.path, t.marker)).toBe(t.markerText);
        expect(await cat('c2', nodeAddress(t), `${t.path}/${SUB}`, t.deep)).toBe(t.deepText);
        const c = await copy('c2', nodeAddress(t), t.path, t.big);
        expect(c.sha, `${t.node}: sha256 of the copy`).toBe(t.bigSha);
      }
      // each node has its own export only
      await expect(ls('c2', nodeAddress(trees[0]!), trees[1]!.path)).rejects.toThrow(/MNT3ERR/);
      expect(await parallelCats('c2', nodeAddress)).toEqual([]);
    },
    4 * COPY_TIMEOUT_MS,
  );

  it('directly, n1’s replies leave from its own address and its own (random) MOUNT port', async () => {
    const n1 = trees[0]!;
    const mountd = (await lab.mountdPorts('n1')).tcp!;
    expect(mountd).not.toBe(MOUNT_PORT);
    const filter = `tcp and src host ${nodeAddress(n1)} and dst host ${lab.addresses.clients[1]}`;
    const cap = await capture(lab, 'n1', 'eth0', filter, 'direct', SNAPLEN);
    const c = await copy('c2', nodeAddress(n1), n1.path, n1.big);
    const segs = segments(await cap.packets());
    expect(c.sha).toBe(n1.bigSha);
    const ports = bySourcePort(segs);
    expect([...ports.keys()].sort((a, b) => a - b)).toEqual([111, NFS_PORT, mountd].sort((a, b) => a - b));
    expect(ports.get(NFS_PORT)!.bytes).toBeGreaterThanOrEqual(BIG);
    expect(new Set(segs.map((s) => s.dst))).toEqual(new Set([lab.addresses.clients[1]]));
  });

  it(`a held MOUNT or NFS connection that sends nothing is reset after splice.idleMs (${IDLE_MS} ms), counted`, async () => {
    // Only the gateway's half of delayed binding is involved: the connection never reaches a node.
    const before = await metric(SPLICE_METRIC, IDLE_OUTCOME);
    const { stdout } = await lab.exec(
      'c1',
      'python3',
      ['-c', IDLE_PROBE, vip, `${NFS_PORT},${MOUNT_PORT}`, String((IDLE_MS + 10_000) / 1000)],
      { timeoutMs: IDLE_MS + 20_000 },
    );
    const seen = JSON.parse(stdout) as Record<string, { how: string; ms: number }>;
    for (const port of [NFS_PORT, MOUNT_PORT]) {
      const r = seen[String(port)]!;
      expect(['rst', 'fin'], `port ${port}: ${JSON.stringify(r)}`).toContain(r.how);
      expect(r.ms, `port ${port}`).toBeGreaterThanOrEqual(IDLE_MS - 100);
      expect(r.ms, `port ${port}`).toBeLessThanOrEqual(IDLE_MS + IDLE_SLACK_MS);
    }
    await waitFor(async () => (await metric(SPLICE_METRIC, IDLE_OUTCOME)) >= before + 2, {
      what: `${SPLICE_METRIC}${JSON.stringify(IDLE_OUTCOME)} to count both`,
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect(await metric(SPLICE_METRIC, IDLE_OUTCOME)).toBe(before + 2);
  });

  it('a first record over splice.maxRecord, or one that is not an RPC call, resets the connection, counted', async () => {
    // Record mark: last fragment, 1 MiB (over the 8 KiB cap). Then a 28-byte record holding an RPC
    // *reply* (msg_type 1), which no server answers (RFC 5531 §9).
    const huge = `80100000${'00'.repeat(64)}`;
    const reply = `8000001c${'0000002a'}${'00000001'}${'00'.repeat(20)}`;
    for (const [hex, outcome] of [
      [huge, 'record_too_large'],
      [reply, 'not_rpc'],
    ] as const) {
      const before = await metric(SPLICE_METRIC, { outcome });
      const { stdout } = await lab.exec(
        'c1',
        'python3',
        ['-c', IDLE_PROBE, vip, String(NFS_PORT), '10', hex],
        {
          timeoutMs: 20_000,
        },
      );
      expect(JSON.parse(stdout)[String(NFS_PORT)].how, outcome).toBe('rst');
      await waitFor(async () => (await metric(SPLICE_METRIC, { outcome })) === before + 1, {
        what: `${SPLICE_METRIC}{outcome="${outcome}"} + 1`,
        timeoutMs: 5000,
        intervalMs: 100,
      });
    }
  });

  describe('through the cluster address (TCP delayed binding)', () => {
    it('nfs-ls lists /srv/projects from n1 and /srv/home from n2; each session handed over', async () => {
      for (const t of trees) {
        const before = await metric(SPLICE_METRIC, HANDED_OVER);
        expect(await ls('c1', vip, t.path), t.path).toEqual(names(t));
        // its MOUNT connection and its NFS connection, each after the NULL call the gateway answered
        expect(await metric(SPLICE_METRIC, HANDED_OVER)).toBeGreaterThanOrEqual(before + 2);
      }
      // the cluster has no /srv export
      await expect(ls('c1', vip, '/srv')).rejects.toThrow(/MNT3ERR_NOENT/);
    });

    it('nfs-cat returns each export’s files exactly, in the export and in a subdirectory', async () => {
      for (const t of trees) {
        expect(await cat('c1', vip, t.path, t.marker)).toBe(t.markerText);
        // MNT <export>/sub: the longest export that is a parent of the path (Fig. 8) picks the node
        expect(await cat('c1', vip, `${t.path}/${SUB}`, t.deep)).toBe(t.deepText);
      }
    });

    it(
      `nfs-cp copies a ${BIG >> 20} MiB file from each export; sha256 equal to the original; the node's segments shifted by its tc program, not through the agent`,
      async () => {
        for (const t of trees) {
          const before = await kernelSpliceCounters(lab, t.node, 'eth0');
          const tunBefore = await tunTxPackets(t.node);
          const c = await copy('c1', vip, t.path, t.big);
          expect(c.sha, `${t.node}: sha256 of the copy`).toBe(t.bigSha);
          const after = await kernelSpliceCounters(lab, t.node, 'eth0');
          if (!SPLICE_KERNEL) {
            // --no-splice-kernel: no program, every segment through the agent's TUN
            expect(before, `${t.node}: no tc program`).toBeNull();
            expect(
              (await tunTxPackets(t.node)) - tunBefore,
              `${t.node}: packets into the TUN`,
            ).toBeGreaterThan(1000);
            continue;
          }
          expect(before, `${t.node}: the agent's tc program on eth0`).not.toBeNull();
          // ≥ 64 KiB per super-packet: 1024 at the least for 64 MiB, and the agent's TUN saw only the
          // replayed handshakes, FINs and resets of the MOUNT and NFS sessions
          expect(
            after!.nodeShifted - before!.nodeShifted,
            `${t.node}: shifted in the kernel`,
          ).toBeGreaterThan(1000);
          expect(after!.nodeNoFlow, `${t.node}: marked without a flow entry`).toBe(0);
          expect(
            (await tunTxPackets(t.node)) - tunBefore,
            `${t.node}: packets into the agent's TUN`,
          ).toBeLessThan(50);
        }
      },
      3 * COPY_TIMEOUT_MS,
    );

    it(
      `nfs-cp writes a ${BIG >> 20} MiB file into the writable export (n2) and reads it back; sha256 equal at the server and in the copy`,
      async () => {
        const home = trees.find((t) => t.node === 'n2')!;
        const name = 'written-through-the-cluster.bin';
        const local = join(copies, name);
        const data = randomBytes(BIG);
        const sha = createHash('sha256').update(data).digest('hex');
        await writeFile(local, data);
        const atServer = join(lab.nfsOf('n2').tree, name);
        const segments = async () => ({
          kernel: await metric('onehost_splice_segments_total', { path: 'kernel' }),
          gateway: await metric('onehost_splice_segments_total', { path: 'gateway' }),
          agent: await metric('onehost_splice_segments_total', { path: 'agent' }),
        });
        try {
          const before = await segments();
          const { stdout } = await lab.exec('c1', 'nfs-cp', [local, url(vip, home.path, name)], {
            timeoutMs: COPY_TIMEOUT_MS,
          });
          expect(stdout.trim()).toBe(`copied ${BIG} bytes`);
          const after = await segments();
          if (DATAPATH === 'kernel') {
            // the client's segments (all the data of a write) shifted and routed by the gateway's tc
            // program: user space saw only the sessions' first segments, FINs and resets
            expect(after.kernel - before.kernel, 'shifted by the gateway’s tc program').toBeGreaterThan(1000);
            expect(after.gateway - before.gateway, 'shifted by the gateway’s user space').toBeLessThan(100);
            expect(after.agent - before.agent, 'sent to the agent').toBeLessThan(100);
          } else {
            expect(after.gateway - before.gateway, 'shifted by the gateway’s user space').toBeGreaterThan(
              1000,
            );
          }
          expect(await sha256File(atServer), 'sha256 of the file the server wrote').toBe(sha);
          expect((await copy('c1', vip, home.path, name)).sha, 'sha256 read back').toBe(sha);
        } finally {
          await rm(local, { force: true });
          await rm(atServer, { force: true });
        }
      },
      3 * COPY_TIMEOUT_MS,
    );

    it.skipIf(!SPLICE_KERNEL)(
      'n1’s agent killed in the middle of a read: the kernel keeps shifting, the copy is exact (kernel mode; an error at worst in tun mode), the restarted agent adopts the flows',
      async () => {
        const n1 = trees.find((t) => t.node === 'n1')!;
        // n1's replies slowed, so the kill lands in the middle of the 64 MiB read
        await throttle('n1');
        try {
          const before = (await kernelSpliceCounters(lab, 'n1', 'eth0'))!.nodeShifted;
          // tun mode: a read that stalls is given 15 s, not the minute a copy may take
          const copying = copy('c1', vip, n1.path, n1.big, DATAPATH === 'kernel' ? COPY_TIMEOUT_MS : 15_000);
          copying.catch(() => undefined);
          await waitFor(
            async () => (await kernelSpliceCounters(lab, 'n1', 'eth0'))!.nodeShifted - before > 100,
            {
              timeoutMs: 20_000,
              what: 'the read under way through the kernel',
            },
          );
          if (DATAPATH === 'kernel') {
            // onehostctl conns shows the read's NFS connection as shifted by the kernel, its packets
            // growing (the listing also keeps the earlier copies' closed connections for a while)
            type Conn = {
              client: string;
              nodeName: string;
              path: string;
              packets?: number;
              splice?: { seqOffset: number; tsOffset: number; nodePort: number };
            };
            const seen = new Map<string, number>();
            const flow = await waitFor(
              async () => {
                const conns = JSON.parse(await cluster.ctl(['conns', '--json', '--port', '2049'])) as {
                  connections: Conn[];
                };
                let live: Conn | null = null;
                for (const c of conns.connections) {
                  if (c.nodeName !== 'n1' || c.path !== 'kernel') continue;
                  const before = seen.get(c.client);
                  if (before !== undefined && (c.packets ?? 0) > before) live = c;
                  seen.set(c.client, c.packets ?? 0);
                }
                return live;
              },
              {
                timeoutMs: 10_000,
                what: 'onehostctl conns listing the read as path kernel, its packets growing',
              },
            );
            // and explain says who shifts a segment of it
            const explained = JSON.parse(
              await cluster.ctl(['explain', '--json', '--flow', `tcp ${flow.client} ${vip}:2049 ack`]),
            ) as { path?: string; trace?: string[] };
            expect(explained.path).toMatch(/^kernel: spliced flow shifted by tc/);
            // both show the offsets the node's agent told: the node's NFS port is 2049, and the
            // sequence offset is the node's ISN less the gateway's (random: 0 once in 2^32)
            expect(flow.splice?.nodePort, 'conns: the spliced flow’s node port').toBe(NFS_PORT);
            expect(flow.splice?.seqOffset, 'conns: the sequence offset').not.toBe(0);
            expect(explained.trace?.join('\n')).toContain(
              `splice: the client's segments are shifted into the node's view: ack and SACK ${flow.splice!.seqOffset > 0 ? '+' : ''}${flow.splice!.seqOffset}`,
            );
          }
          const agent = cluster.agents.get('n1')!;
          process.kill(agent.pid, 'SIGKILL');
          await agent.whenExited();
          // started again at once: the gateway takes n1 for down until it joins again (as for any
          // function), and the client's TCP retransmits what it dropped meanwhile
          const next = await cluster.startAgent('n1');
          const adopted = /"adopted":(\d+),"msg":"spliced segments shifted in the kernel/.exec(next.output());
          expect(Number(adopted?.[1] ?? -1), 'flows the restarted agent adopted').toBeGreaterThan(0);
          if (DATAPATH === 'kernel') {
            const c = await copying;
            expect(c.sha, 'sha256 of the copy read across the agent’s death').toBe(n1.bigSha);
            expect((await kernelSpliceCounters(lab, 'n1', 'eth0'))!.nodeShifted - before).toBeGreaterThan(
              500,
            );
          } else {
            // tun mode: the gateway's user space handles the flow's packets while n1 is down, and the
            // read may fail; it must never deliver a wrong file
            const c = await copying.then(
              (r) => r.sha,
              () => 'failed',
            );
            expect([n1.bigSha, 'failed']).toContain(c);
          }
        } finally {
          await unthrottle('n1');
        }
        await cluster.waitForMount(['n1'], 'tcp');
        // and the restarted agent splices new connections as before
        expect((await copy('c1', vip, n1.path, n1.big)).sha).toBe(n1.bigSha);
      },
      4 * COPY_TIMEOUT_MS,
    );

    it(`${PARALLEL} nfs-cat sessions at once over both exports are all correct`, async () => {
      expect(await parallelCats('c1', () => vip)).toEqual([]);
    });

    it(
      'on the interconnect the nodes’ replies leave from the cluster address and ports 2049 and 20048 (not their own MOUNT ports)',
      async () => {
        const [n1, n2] = trees as [Tree, Tree];
        const mountd = (await lab.mountdPorts('n1')).tcp!;
        expect(mountd).not.toBe(MOUNT_PORT);
        const filter = `tcp and src host ${vip}`;
        const cap1 = await capture(lab, 'n1', 'eth0', filter, 'spliced-n1', SNAPLEN);
        const cap2 = await capture(lab, 'n2', 'eth0', filter, 'spliced-n2', SNAPLEN);
        // both to the end (each bounded by its own timeout) before the captures stop
        const [copied, text] = await Promise.allSettled([
          copy('c1', vip, n1.path, n1.big),
          cat('c1', vip, n2.path, n2.marker),
        ]);
        const s1 = segments(await cap1.packets());
        const s2 = segments(await cap2.packets());
        if (copied.status === 'rejected') throw copied.reason;
        if (text.status === 'rejected') throw text.reason;
        expect(copied.value.sha).toBe(n1.bigSha);
        expect(text.value).toBe(n2.markerText);
        for (const [segs, what] of [
          [s1, 'n1'],
          [s2, 'n2'],
        ] as const) {
          const ports = bySourcePort(segs);
          expect(
            [...ports.keys()].sort((a, b) => a - b),
            what,
          ).toEqual([NFS_PORT, MOUNT_PORT]);
          expect(ports.get(MOUNT_PORT)!.bytes, `${what}: MNT reply`).toBeGreaterThan(0);
          expect(ports.get(NFS_PORT)!.bytes, `${what}: NFS replies`).toBeGreaterThan(0);
          expect(new Set(segs.map((s) => `${s.src}>${s.dst}`)), what).toEqual(
            new Set([`${vip}>${lab.addresses.clients[0]}`]),
          );
        }
        expect(bySourcePort(s1).get(NFS_PORT)!.bytes, 'n1: the READ replies').toBeGreaterThanOrEqual(BIG);
        expect(s1.some((s) => s.srcPort === mountd)).toBe(false);
        expect(s2.some((s) => s.srcPort === 20050)).toBe(false);
      },
      2 * COPY_TIMEOUT_MS,
    );

    // The server crashes come last: they restart n2's ganesha. Kernel mode only for the read: the crash
    // is the server's, and the write's case below runs in both modes.
    it.skipIf(DATAPATH !== 'kernel')(
      'nfs-ganesha killed (SIGKILL) in the middle of a read, then restarted: the copy completes exactly or fails, never a wrong file',
      async () => {
        const home = trees.find((t) => t.node === 'n2')!;
        const dst = join(copies, 'read-across-a-crash.bin');
        await rm(dst, { force: true });
        // n2's replies slowed; the read is under way once its local copy has grown
        await throttle('n2');
        let said: string;
        try {
          const reading = lab
            .exec('c1', 'nfs-cp', [url(vip, home.path, home.big), dst], { timeoutMs: COPY_TIMEOUT_MS })
            .then(
              (r) => r.stdout.trim(),
              (e: Error) => `failed: ${e.message.replace(/\s+/g, ' ').slice(-200)}`,
            );
          await waitFor(async () => (await sizeOf(dst)) > 4 << 20, {
            timeoutMs: 20_000,
            what: 'the read under way',
          });
          const pid = lab.nfsOf('n2').ganeshaPid;
          process.kill(pid, 'SIGKILL');
          await waitFor(async () => !existsSync(`/proc/${pid}`), { timeoutMs: 5_000, what: 'ganesha gone' });
          await lab.startGanesha('n2');
          said = await reading;
          if (said === `copied ${BIG} bytes`) expect(await sha256File(dst), 'the copy').toBe(home.bigSha);
          else expect(said).toMatch(/^failed/);
        } finally {
          await unthrottle('n2');
          await rm(dst, { force: true });
        }
        console.log(`ganesha killed mid-read: ${said}`);
        // the restarted server serves new sessions through the cluster address as before
        await cluster.waitForMount(['n2'], 'tcp');
        expect((await copy('c1', vip, home.path, home.big)).sha).toBe(home.bigSha);
      },
      3 * COPY_TIMEOUT_MS,
    );

    // libnfs reconnects at once and replays its pending WRITEs: the new connection's first record is a
    // 1 MiB WRITE, routed on its first splice.maxRecord bytes, and its handover is longer than a packet
    // (docs/splice.md, "Long first records"). Both data paths: the handover is the gateway's either way.
    // Then sessions started at once on the restarted server.
    it('nfs-ganesha killed (SIGKILL) in the middle of a write, then restarted: the copy completes, the file at the server exact; new sessions at once all served', async () => {
      const home = trees.find((t) => t.node === 'n2')!;
      const name = 'written-across-a-crash.bin';
      const local = join(copies, name);
      const data = randomBytes(BIG);
      const sha = createHash('sha256').update(data).digest('hex');
      await writeFile(local, data);
      const atServer = join(lab.nfsOf('n2').tree, name);
      // the client's writes slowed, so the kill lands in the middle of the 64 MiB write
      await throttle('c1');
      const tooLarge = { outcome: 'record_too_large' };
      const resetBefore = await metric(SPLICE_METRIC, tooLarge);
      try {
        const writing = lab
          .exec('c1', 'nfs-cp', [local, url(vip, home.path, name)], { timeoutMs: 15_000 })
          .then(
            (r) => r.stdout.trim(),
            (e: Error) => `failed: ${e.message.replace(/\s+/g, ' ').slice(-200)}`,
          );
        await waitFor(async () => (await sizeOf(atServer)) > 8 << 20, {
          timeoutMs: 10_000,
          what: 'the write under way',
        });
        const pid = lab.nfsOf('n2').ganeshaPid;
        process.kill(pid, 'SIGKILL');
        await waitFor(async () => !existsSync(`/proc/${pid}`), { timeoutMs: 5_000, what: 'ganesha gone' });
        expect(await sizeOf(atServer), 'the kill landed before the end of the write').toBeLessThan(BIG);
        await lab.startGanesha('n2');
        expect(await writing).toBe(`copied ${BIG} bytes`);
        expect(await sha256File(atServer), 'sha256 of the file the server wrote').toBe(sha);
        // the replayed 1 MiB WRITEs were routed on their start, not reset
        expect(await metric(SPLICE_METRIC, tooLarge)).toBe(resetBefore);
        // New sessions reuse the reserved ports of connections the server reset (the gateway saw no
        // end of them): each must start afresh, not be shifted to the node by the old flow's entry.
        // Before that was fixed, 3 of 20 such rounds had a session stall until killed.
        for (let round = 0; round < 3; round++) {
          const got = await Promise.all(
            [...home.small.keys()].map((n) =>
              lab.exec('c1', 'nfs-cat', [url(vip, home.path, n)], { timeoutMs: 5_000 }).then(
                (r) => (r.stdout === home.small.get(n) ? 'ok' : `${n}: wrong content`),
                (e: Error) => `${n}: ${e.message.slice(0, 80)}`,
              ),
            ),
          );
          expect(
            got.filter((r) => r !== 'ok'),
            `round ${round}`,
          ).toEqual([]);
        }
      } finally {
        await unthrottle('c1');
        await rm(local, { force: true });
        await rm(atServer, { force: true });
      }
    }, 20_000);
  });
});
