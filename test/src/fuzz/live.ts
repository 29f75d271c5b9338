// The live fuzz (issue 15 item 5): mutated packets (mutate.ts over corpus.ts) at a running gateway
// from an outside host, through the gateway's kernel to its switch, while a legitimate client fetches
// pages through the cluster address; then the service is checked (HTTP, MOUNT, NFS and the portmapper)
// and the gateway's memory, descriptors and counters compared with their values after a warm-up.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LabProcess } from '@onehost/testkit';
import { PacketSender } from '@onehost/tun';
import { type Cluster, DATAPATH, startCluster } from '../cluster.js';
import { buildCorpus, type Seed } from './corpus.js';
import { MAX_PACKET, MUTATIONS, Mutator } from './mutate.js';

const NFS_CLIENT = fileURLToPath(new URL('../../src/nfs-rpc-client.py', import.meta.url));

/** The outside host the mutated packets leave from, and the one the legitimate client runs on. */
const FUZZ_HOST = 'c1';
const CLIENT_HOST = 'c2';

/**
 * DEFAULT_RATE is each mode's pace (packets per second, 0 = as fast as the raw socket takes them). In
 * tun mode every packet crosses user space and nothing guards the TUN: at the generator's full speed
 * (150,000/s in the lab) the TUN queue dropped two thirds of the packets, a real client's among them.
 */
export const DEFAULT_RATE = { kernel: 0, tun: 30_000 } as const;

export interface LiveFuzzOptions {
  packets: number;
  /** the mutator's seed: a run is reproducible from it */
  seed?: number;
  /** packets per second; 0 = as fast as the raw socket takes them */
  rate?: number;
  /** packets sent before the baseline of memory and descriptors is taken */
  warmup?: number;
  /** the whole run's bound, seconds (the loop stops there whatever the count) */
  maxSeconds?: number;
  /** connections of mutated ONC RPC records over TCP (real handshakes from the fuzz host's address) */
  streams?: number;
  log?: (line: string) => void;
}

/** Usage is the gateway process's resident memory and open descriptors. */
export interface Usage {
  rssKiB: number;
  fds: number;
}

export interface LiveFuzzReport {
  mode: string;
  seed: number;
  sent: number;
  /** packets the sender's kernel refused (e.g. options it would not send) or the addon found malformed */
  notSent: number;
  seconds: number;
  /** counters of the gateway namespace's IPv4 stack over the fuzz (/proc/net/snmp), non-zero ones */
  gatewayKernel: Record<string, number>;
  /** packets that reached the gateway's user space through its TUN */
  reachedUserSpace: number;
  /** the TUN device's drops: packets the kernel could not queue for user space */
  tunQueueDrops: number;
  /** the gateway's own counters over the fuzz (metric{labels} → increase), non-zero ones */
  counters: Record<string, number>;
  usage: { start: Usage; warm: Usage; peakRssKiB: number; after: Usage };
  http: { during: HttpLoad; after: HttpLoad };
  rpc: { mount: string; nfsTcp: string; portmapUdp: string };
  streams: Record<string, number>;
  gatewayRunning: boolean;
  /** "node down" lines the gateway logged during the run (a missed heartbeat under load) */
  nodeDownLogs: number;
  mutations: Record<string, number>;
  seeds: Record<string, number>;
}

export interface HttpLoad {
  ok: number;
  failed: number;
  errors: string[];
  maxMs: number;
}

// One request after the other, a new connection each (the round robin decides every one), until
// SIGINT or the deadline; prints a JSON line of what happened.
const HTTP_LOOP = `
import http.client, json, signal, sys, time
url_host, deadline = sys.argv[1], time.time() + float(sys.argv[2])
ok, failed, errors, worst = 0, 0, [], 0.0
stop = False
def on_int(*_):
    global stop
    stop = True
signal.signal(signal.SIGINT, on_int)
print('started', flush=True)
while not stop and time.time() < deadline:
    t = time.time()
    try:
        c = http.client.HTTPConnection(url_host, 80, timeout=5)
        c.request('GET', '/', headers={'Connection': 'close'})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status == 200:
            ok += 1
        else:
            failed += 1
            errors.append('status %d' % r.status)
    except Exception as e:
        failed += 1
        errors.append(repr(e)[:120])
    worst = max(worst, time.time() - t)
    time.sleep(0.02)
print(json.dumps({'ok': ok, 'failed': failed, 'errors': errors[:5], 'maxMs': round(worst * 1000, 1)}), flush=True)
`;

// Mutated ONC RPC records over real TCP connections (the raw packets cannot finish a handshake from a
// spoofed source): record marks, XDR words, bit flips, records split across writes. Bounded by count
// and deadline; replies are read briefly and counted.
const RPC_STREAMS = `
import json, random, socket, struct, sys, time
host, req = sys.argv[1], json.loads(sys.argv[2])
rnd = random.Random(req['seed'])
seeds = [(p, bytes.fromhex(h)) for p, h in req['seeds']]
deadline = time.time() + req['seconds']
out = {'connections': 0, 'connect_failed': 0, 'records': 0, 'replies': 0, 'reset': 0, 'closed_by_gateway': 0}
def mutate(m):
    m = bytearray(m)
    for _ in range(rnd.randrange(1, 4)):
        k = rnd.randrange(5)
        if k == 0:
            m[0:4] = struct.pack('>I', rnd.choice([0, 0x80000000, 0x7fffffff, 0xffffffff, 0x80000000 | (len(m) + 100), len(m) - 4, rnd.getrandbits(32)]))
        elif k == 1 and len(m) >= 8:
            at = 4 + rnd.randrange((len(m) - 4) // 4) * 4
            m[at:at + 4] = struct.pack('>I', rnd.choice([0, 1, 3, 0xff, 0x10000, 0x7fffffff, 0xffffffff, 401, 1025]))
        elif k == 2:
            at = rnd.randrange(len(m))
            m[at] ^= 1 << rnd.randrange(8)
        elif k == 3:
            m = m[: rnd.randrange(4, len(m) + 1)]
        else:
            m += bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(64)))
    return bytes(m)
while out['connections'] < req['count'] and time.time() < deadline:
    port, seed = rnd.choice(seeds)
    out['connections'] += 1
    try:
        s = socket.create_connection((host, port), timeout=1)
    except OSError:
        out['connect_failed'] += 1
        continue
    try:
        s.settimeout(0.15)
        data = b''.join(mutate(seed) if rnd.randrange(4) else seed for _ in range(rnd.randrange(1, 4)))
        cut = rnd.randrange(len(data) + 1) if rnd.randrange(3) == 0 else len(data)
        s.sendall(data[:cut])
        if cut < len(data):
            time.sleep(0.01)
            s.sendall(data[cut:])
        out['records'] += 1
        while True:
            d = s.recv(65536)
            if not d:
                out['closed_by_gateway'] += 1
                break
            out['replies'] += 1
    except socket.timeout:
        pass
    except OSError:
        out['reset'] += 1
    finally:
        if rnd.randrange(2):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()
print(json.dumps(out), flush=True)
`;

/** usageOf reads a process's resident memory and open descriptors from /proc. */
export function usageOf(pid: number): Usage {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

/** exitedCheck throws, with the seed that repeats the run and the gateway's last output, if it exited. */
async function exitedCheck(c: Cluster, seed: number, after: string): Promise<void> {
  if (c.gateway.running) return;
  const last = (await c.gateway.finalOutput()).slice(-6000);
  throw new Error(
    `the gateway exited during the live fuzz (seed ${seed}, after ${after}, ${JSON.stringify(
      c.gateway.exitStatus(),
    )}):\n${last}`,
  );
}

/** scrape reads the gateway's whole /metrics as series (`name{labels}`) → value. */
async function scrape(c: Cluster): Promise<Map<string, number>> {
  const { stdout } = await c.lab.exec('gw', 'curl', [
    '-sS',
    '--max-time',
    '10',
    `http://${c.lab.addresses.gateway.inside}:9400/metrics`,
  ]);
  const m = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const x = /^([a-z_]+(?:\{.*\})?) ([0-9.e+-]+)$/.exec(line);
    if (x) m.set(x[1]!, Number(x[2]));
  }
  return m;
}

/** COUNTERS are the series worth reporting as increases (the others are gauges or unrelated). */
const COUNTERS =
  /^onehost_(decisions_total|drops_total|wire_errors_total|rpc_calls_total|rpc_dropped_total|user_space_packets_total|function_packets_total|local_packets_total|forwarded_packets_total|splice_flows_total|mss_clamped_total)\{|^onehost_io\{side="tun",counter="(rxPackets|rxTruncated|rxErrors)"/;

function increases(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    if (!COUNTERS.test(k)) continue;
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** snmp reads the IPv4, ICMP and UDP counters of a lab host's namespace. */
async function snmp(c: Cluster, host: string): Promise<Map<string, number>> {
  const { stdout } = await c.lab.exec(host, 'cat', ['/proc/net/snmp']);
  const lines = stdout.trim().split('\n');
  const m = new Map<string, number>();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    const group = names[0]!.replace(':', '');
    if (!['Ip', 'Icmp', 'Udp', 'Tcp'].includes(group)) continue;
    names.slice(1).forEach((n, k) => {
      m.set(`${group}${n}`, Number(values[k + 1]));
    });
  }
  return m;
}

/** tunDrops reads the gateway's TUN device's transmit drops (to user space: the reader fell behind). */
async function tunDrops(c: Cluster): Promise<number> {
  const { stdout } = await c.lab.exec('gw', 'ip', ['-s', '-j', 'link', 'show', 'onehost0']);
  const link = (JSON.parse(stdout) as Array<{ stats64?: { tx?: { dropped?: number } } }>)[0];
  return link?.stats64?.tx?.dropped ?? 0;
}

/** httpLoad starts the legitimate client; stop() ends it (SIGINT, by its pid) and reads its report. */
function httpLoad(c: Cluster, seconds: number): { proc: LabProcess; stop(): Promise<HttpLoad> } {
  const proc = c.lab.spawn(CLIENT_HOST, 'python3', ['-c', HTTP_LOOP, c.vip, String(seconds)]);
  return {
    proc,
    async stop() {
      if (proc.running) process.kill(proc.pid, 'SIGINT');
      await Promise.race([proc.whenExited(), new Promise((r) => setTimeout(r, 10_000))]);
      await proc.stop(1000);
      const line = proc
        .output()
        .split('\n')
        .find((l) => l.startsWith('{'));
      if (line === undefined) return { ok: 0, failed: 1, errors: [`no report: ${proc.output()}`], maxMs: 0 };
      return JSON.parse(line) as HttpLoad;
    },
  };
}

/** checkRpc makes one MOUNT call (UDP), one NFS NULL call (TCP) and one portmapper call (UDP). */
async function checkRpc(c: Cluster): Promise<LiveFuzzReport['rpc']> {
  const mnt = await c.lab
    .exec(
      CLIENT_HOST,
      'python3',
      [NFS_CLIENT, JSON.stringify({ host: c.vip, op: 'mnt', path: '/srv/projects', mountPort: 20048 })],
      { timeoutMs: 30_000 },
    )
    .then(
      (r) => {
        const a = JSON.parse(r.stdout) as { status: number; handle?: string };
        return a.status === 0 && a.handle ? 'ok' : `status ${a.status}`;
      },
      (e: Error) => e.message.split('\n')[0]!,
    );
  const rpcinfo = (flag: string, prog: string, vers: string) =>
    c.lab.exec(CLIENT_HOST, 'rpcinfo', [flag, c.vip, prog, vers], { timeoutMs: 20_000 }).then(
      (r) => (r.stdout.includes('ready and waiting') ? 'ok' : r.stdout.trim()),
      (e: Error) => e.message.split('\n')[0]!,
    );
  return {
    mount: mnt,
    nfsTcp: await rpcinfo('-t', '100003', '3'),
    portmapUdp: await rpcinfo('-u', '100000', '2'),
  };
}

/**
 * startFuzzCluster starts the lab's cluster with NFS servers on n1 and n2 (the MOUNT check needs an
 * export) and waits until both registered their MOUNT service.
 */
export async function startFuzzCluster(): Promise<Cluster> {
  const c = await startCluster({
    nfs: true,
    agentArgs: (name, l) =>
      l.nfs.some((n) => n.node === name) ? ['--ganesha-config', l.nfsOf(name).config] : [],
  });
  try {
    await c.waitForMount(['n1', 'n2'], 'udp');
  } catch (e) {
    await c.stop();
    throw e;
  }
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Blaster sends mutated packets from a lab host's namespace through the addon's raw socket
 * (IP_HDRINCL, sendmmsg), in batches, paced to `rate` when one is given.
 */
class Blaster {
  private static readonly BATCH = 256;
  private static readonly SLOT = (MAX_PACKET + 15) & ~15;
  private readonly sender: PacketSender;
  private readonly arena = Buffer.alloc(Blaster.BATCH * Blaster.SLOT);
  private readonly meta = new Int32Array(Blaster.BATCH * 4);
  sent = 0;

  constructor(
    netns: string,
    private readonly mutator: Mutator,
  ) {
    this.sender = PacketSender.open({ netns, sendBuffer: 4 << 20 });
  }

  /** send sends n packets (fewer if `until` says stop); resolves with how many went to the socket. */
  async send(n: number, rate: number, until: () => boolean): Promise<number> {
    const t0 = Date.now();
    let done = 0;
    while (done < n && !until()) {
      const k = Math.min(Blaster.BATCH, n - done);
      for (let i = 0; i < k; i++) {
        const off = i * Blaster.SLOT;
        this.meta[i * 4] = off;
        this.meta[i * 4 + 1] = this.mutator.next(this.arena, off);
      }
      let at = 0;
      while (at < k) {
        at = this.sender.sendIp(this.arena, this.meta, at, k);
        if (at < k)
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 50);
            this.sender.onWritable(() => {
              clearTimeout(t);
              resolve();
            });
          });
      }
      done += k;
      this.sent += k;
      const ahead = rate > 0 ? (done / rate) * 1000 - (Date.now() - t0) : 0;
      // yield every batch so timers (sampling, the deadline) run; sleep when ahead of the rate
      if (ahead > 2) await sleep(ahead);
      else await new Promise((r) => setImmediate(r));
    }
    return done;
  }

  stats(): { packets: number; errors: number; badPacket: number; lastErrno: number } {
    return this.sender.stats();
  }

  close(): void {
    this.sender.close();
  }
}

/** seedFamily names a seed's group in the report (its protocol and port). */
const seedFamily = (s: Seed): string => s.name.split(' ')[0]!;

/**
 * liveFuzz runs the fuzz at a running cluster (startFuzzCluster) and returns what happened; the caller
 * judges the report (verdict). Throws when the gateway exited during the run (with its last output and
 * the seed that repeats the run) or when the lab itself fails.
 */
export async function liveFuzz(c: Cluster, o: LiveFuzzOptions): Promise<LiveFuzzReport> {
  const log = o.log ?? (() => undefined);
  const seed = o.seed ?? 1;
  const rate = o.rate ?? DEFAULT_RATE[DATAPATH];
  const warmup = o.warmup ?? Math.min(200_000, Math.ceil(o.packets / 10));
  const deadline = Date.now() + (o.maxSeconds ?? 3600) * 1000;
  const pid = c.gateway.pid;
  const seeds = buildCorpus(c.vip);
  const mutator = new Mutator(seeds, seed);
  const blaster = new Blaster(c.lab.host(FUZZ_HOST).netns, mutator);
  const gone = () => !c.gateway.running || Date.now() > deadline;
  try {
    const start = usageOf(pid);
    log(`warm-up: ${warmup} packets`);
    await blaster.send(warmup, rate, gone);
    await sleep(2000);
    await exitedCheck(c, seed, `the warm-up's ${warmup} packets`);
    // before the baseline: the first scrape walks every flow table (onehost_connections), which faults
    // in their preallocated memory (166 MB in the lab), once
    const [m0, k0, t0] = await Promise.all([scrape(c), snmp(c, 'gw'), tunDrops(c)]);
    await sleep(2000);
    const warm = usageOf(pid);
    const s0 = blaster.stats();
    const http = httpLoad(c, o.maxSeconds ?? 3600);
    await http.proc.waitForOutput('started', 10_000);
    const streamSeeds = seeds
      .filter((s) => s.protocol === 6 && s.rpc >= 4)
      .map((s) => [
        (s.bytes[22]! << 8) | s.bytes[23]!,
        Buffer.from(s.bytes.subarray(s.rpc - 4)).toString('hex'),
      ]);
    const streams =
      (o.streams ?? 0) > 0
        ? c.lab.exec(
            FUZZ_HOST,
            'python3',
            [
              '-c',
              RPC_STREAMS,
              c.vip,
              JSON.stringify({ seed, count: o.streams, seconds: o.maxSeconds ?? 3600, seeds: streamSeeds }),
            ],
            { timeoutMs: ((o.maxSeconds ?? 3600) + 30) * 1000 },
          )
        : Promise.resolve({ stdout: '{}' });
    let peak = warm.rssKiB;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, usageOf(pid).rssKiB);
      } catch {
        // the gateway is gone: the loop stops at its next batch and the report says so
      }
    }, 1000);
    const nodeDown = () => (c.gateway.output().match(/"msg":"node down"/g) ?? []).length;
    const down0 = nodeDown();
    const began = Date.now();
    let sent = 0;
    try {
      const step = Math.max(1, Math.floor(o.packets / 10));
      while (sent < o.packets && !gone()) {
        sent += await blaster.send(Math.min(step, o.packets - sent), rate, gone);
        log(
          `${sent} packets, ${Math.round(sent / ((Date.now() - began) / 1000))}/s, gateway RSS ${peak} KiB peak`,
        );
      }
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - began) / 1000;
    await exitedCheck(c, seed, `${sent} packets`);
    const streamReport = JSON.parse(
      (await streams.catch((e: Error) => ({ stdout: JSON.stringify({ error: e.message }) }))).stdout || '{}',
    ) as Record<string, number>;
    const during = await http.stop();
    // after: the service answers, and memory has stopped where it was
    await sleep(3000);
    const running = c.gateway.running;
    const after = running ? usageOf(pid) : { rssKiB: Number.NaN, fds: Number.NaN };
    const afterHttp = httpLoad(c, 5);
    await afterHttp.proc.whenExited();
    const httpAfter = await afterHttp.stop();
    const rpc = await checkRpc(c);
    const [m1, k1, t1] = await Promise.all([scrape(c), snmp(c, 'gw'), tunDrops(c)]);
    const s1 = blaster.stats();
    const counters = increases(m0, m1);
    const gatewayKernel: Record<string, number> = {};
    for (const [k, v] of k1) if (v - (k0.get(k) ?? 0) !== 0) gatewayKernel[k] = v - (k0.get(k) ?? 0);
    const fam: Record<string, number> = {};
    seeds.forEach((s, i) => {
      fam[seedFamily(s)] = (fam[seedFamily(s)] ?? 0) + mutator.perSeed[i]!;
    });
    return {
      mode: DATAPATH,
      seed,
      sent,
      notSent: s1.errors - s0.errors + (s1.badPacket - s0.badPacket),
      seconds,
      gatewayKernel,
      reachedUserSpace: counters['onehost_io{side="tun",counter="rxPackets"}'] ?? 0,
      tunQueueDrops: t1 - t0,
      counters,
      usage: { start, warm, peakRssKiB: peak, after },
      http: { during, after: httpAfter },
      rpc,
      streams: streamReport,
      gatewayRunning: running,
      nodeDownLogs: nodeDown() - down0,
      mutations: Object.fromEntries(MUTATIONS.map((m, i) => [m, mutator.applied[i]!])),
      seeds: fam,
    };
  } finally {
    blaster.close();
  }
}

/** decisions is how many packets the switch decided over the run (each TUN read gets one). */
export function decisions(r: LiveFuzzReport): number {
  return Object.entries(r.counters)
    .filter(([k]) => k.startsWith('onehost_decisions_total'))
    .reduce((a, [, v]) => a + v, 0);
}

/** formatReport prints a report for people: the figures the issue's note asks for. */
export function formatReport(r: LiveFuzzReport): string {
  const by = (prefix: string, label: string) =>
    Object.entries(r.counters)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => `${new RegExp(`${label}="([^"]*)"`).exec(k)?.[1] ?? k} ${v}`)
      .join(', ') || 'none';
  const labels = (prefix: string) =>
    Object.entries(r.counters)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => `${k.slice(prefix.length).replace(/[{}"]/g, '')} ${v}`)
      .join('; ') || 'none';
  const k = r.gatewayKernel;
  const u = r.usage;
  return [
    `live fuzz, data path ${r.mode}, seed ${r.seed}`,
    `  packets sent        ${r.sent} in ${r.seconds.toFixed(1)} s (${Math.round(r.sent / r.seconds)}/s); not sent by the client's kernel ${r.notSent}`,
    `  gateway kernel      received ${k.IpInReceives ?? 0}, header errors ${k.IpInHdrErrors ?? 0}, address errors ${k.IpInAddrErrors ?? 0}, unknown protocols ${k.IpInUnknownProtos ?? 0}, discards ${k.IpInDiscards ?? 0}, forwarded ${k.IpForwDatagrams ?? 0}, reassembly needed ${k.IpReasmReqds ?? 0} / failed ${k.IpReasmFails ?? 0}`,
    `  reached user space  ${r.reachedUserSpace} (TUN reads); TUN queue drops ${r.tunQueueDrops}; switch decisions ${decisions(r)}`,
    `  user-space classes  ${labels('onehost_user_space_packets_total')}`,
    `  decisions           ${by('onehost_decisions_total', 'decision')}`,
    `  drops by reason     ${by('onehost_drops_total', 'reason')}`,
    `  parser refusals     ${by('onehost_wire_errors_total', 'reason')}`,
    `  RPC answered        ${labels('onehost_rpc_calls_total')}`,
    `  RPC unanswered      ${labels('onehost_rpc_dropped_total')}`,
    `  RPC over TCP        ${JSON.stringify(r.streams)}`,
    `  gateway RSS         ${u.start.rssKiB} KiB at start, ${u.warm.rssKiB} after warm-up, ${u.peakRssKiB} peak, ${u.after.rssKiB} after (${(((u.after.rssKiB - u.warm.rssKiB) / u.warm.rssKiB) * 100).toFixed(1)} % over warm-up)`,
    `  gateway FDs         ${u.start.fds} at start, ${u.warm.fds} after warm-up, ${u.after.fds} after`,
    `  HTTP during         ${r.http.during.ok} ok, ${r.http.during.failed} failed, slowest ${r.http.during.maxMs} ms ${r.http.during.errors.join(' | ')}`,
    `  HTTP after          ${r.http.after.ok} ok, ${r.http.after.failed} failed ${r.http.after.errors.join(' | ')}`,
    `  RPC after           MOUNT/udp ${r.rpc.mount}, NFS/tcp ${r.rpc.nfsTcp}, portmap/udp ${r.rpc.portmapUdp}`,
    `  gateway             ${r.gatewayRunning ? 'running' : 'NOT RUNNING'}; "node down" logged ${r.nodeDownLogs} times`,
    `  seeds               ${Object.entries(r.seeds)
      .map(([f, n]) => `${f} ${n}`)
      .join(', ')}`,
    `  mutations           ${Object.entries(r.mutations)
      .map(([m, n]) => `${m} ${n}`)
      .join(', ')}`,
  ].join('\n');
}

/** RSS_GROWTH bounds the gateway's memory after the fuzz relative to after the warm-up. */
export const RSS_GROWTH = 0.25;

/** verdict lists what went wrong in a run (empty: the gateway held). */
export function verdict(r: LiveFuzzReport): string[] {
  const out: string[] = [];
  if (!r.gatewayRunning) out.push('the gateway is not running');
  if (r.http.during.failed > 0) out.push(`${r.http.during.failed} HTTP requests failed during the fuzz`);
  if (r.http.during.ok === 0) out.push('no HTTP request succeeded during the fuzz');
  if (r.http.after.failed > 0 || r.http.after.ok === 0) out.push('HTTP after the fuzz is not normal');
  for (const [k, v] of Object.entries(r.rpc)) if (v !== 'ok') out.push(`${k} after the fuzz: ${v}`);
  const u = r.usage;
  if (!(u.after.rssKiB <= u.warm.rssKiB * (1 + RSS_GROWTH)))
    out.push(`RSS grew from ${u.warm.rssKiB} to ${u.after.rssKiB} KiB`);
  if (!(Math.abs(u.after.fds - u.warm.fds) <= 2))
    out.push(`open FDs went from ${u.warm.fds} to ${u.after.fds}`);
  if (r.reachedUserSpace === 0) out.push('nothing reached user space');
  return out;
}
