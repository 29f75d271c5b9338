import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ControlServer } from '@onehost/control';
import { allDropReasons, type MessageSwitch } from '@onehost/switch';
import type { PacketSender, TunQueue } from '@onehost/tun';
import { allErrors } from '@onehost/wire';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Datapath } from './datapath.js';
import { DATAPATH_DROPS } from './drops.js';
import type { FlowSync } from './flow-sync.js';
import type { GatewayProcess } from './gateway-process.js';
import type { DatapathProbe } from './probe/datapath-probe.js';

export interface MetricsSources {
  sw: MessageSwitch;
  datapath: Datapath;
  control: ControlServer;
  queue: TunQueue;
  sender: PacketSender;
  nodeName(id: number): string | undefined;
  /** entries whose every candidate failed a health check (health ignored for them) */
  failOpen(): readonly string[];
  /** the kernel data path's counters (as read at the start of the scrape) and status */
  kernel: GatewayProcess;
  /** the data-path probe (null when probes are off) */
  probe?: DatapathProbe | null;
  /** the conntrackd per peer gateway (null without `flowSync`) */
  flowSync?: FlowSync | null;
}

/** kernelNodeCounters yields (node id, counter) for the kernel's per-node counters n_<id>. */
function* kernelNodes(s: MetricsSources): Generator<[number, { packets: number; bytes: number }]> {
  for (const [name, c] of s.kernel.counters) {
    const m = /^n_(\d+)$/.exec(name);
    if (m) yield [Number(m[1]), c];
  }
}

/**
 * buildRegistry exposes the gateway's counters to Prometheus. Values are read at scrape time from the
 * typed arrays the packet loop increments; nothing on the packet path touches prom-client.
 */
export function buildRegistry(s: MetricsSources): Registry {
  const reg = new Registry();
  const kinds = ['', 'forward', 'local', 'drop'];
  new Counter({
    name: 'onehost_decisions_total',
    help: 'Switch decisions by kind (forward, local, drop).',
    labelNames: ['decision'],
    registers: [reg],
    collect() {
      this.reset();
      for (let k = 1; k < 4; k++) this.inc({ decision: kinds[k]! }, s.sw.counters.decisions[k]!);
    },
  });
  new Gauge({
    name: 'onehost_health_check_up',
    help: 'Each health check the agents report: 1 passing, 0 failing (the node leaves the candidates of the entries it covers).',
    labelNames: ['node', 'check'],
    registers: [reg],
    collect() {
      this.reset();
      for (const m of s.control.membership.members())
        for (const h of s.control.membership.healthOf(m.name))
          this.set({ node: m.name, check: h.name }, h.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'onehost_health_fail_open_entries',
    help: 'Entries whose every candidate fails a health check: they keep all candidates rather than none.',
    registers: [reg],
    collect() {
      this.set(s.failOpen().length);
    },
  });
  new Counter({
    name: 'onehost_reloads_total',
    help: 'Configuration reloads (SIGHUP, Gateway/Reload) by outcome: applied, or refused with the running configuration kept.',
    labelNames: ['outcome'],
    registers: [reg],
    collect() {
      this.reset();
      this.inc({ outcome: 'applied' }, s.kernel.reloads.applied);
      this.inc({ outcome: 'refused' }, s.kernel.reloads.refused);
    },
  });
  new Counter({
    name: 'onehost_announcements_total',
    help: 'The cluster addresses announced on the outside, by family (ipv4: gratuitous ARP, RFC 5227 §3; ipv6: unsolicited neighbour advertisements, RFC 4861 §7.2.6) and result (sent: packets; failed: arping runs or sends that failed).',
    labelNames: ['family', 'result'],
    registers: [reg],
    collect() {
      this.reset();
      const a = s.kernel.announcements;
      this.inc({ family: 'ipv4', result: 'sent' }, a.arpSent);
      this.inc({ family: 'ipv4', result: 'failed' }, a.arpFailed);
      this.inc({ family: 'ipv6', result: 'sent' }, a.naSent);
      this.inc({ family: 'ipv6', result: 'failed' }, a.naFailed);
    },
  });
  // per node and path: user space's per-node counts and the kernel's per-node counters
  const forwarded = (name: string, help: string, what: 'packets' | 'bytes') =>
    new Counter({
      name,
      help,
      labelNames: ['node', 'path'],
      registers: [reg],
      collect() {
        this.reset();
        const tun = what === 'packets' ? s.datapath.packetsByNode : s.datapath.bytesByNode;
        tun.forEach((v, id) => {
          if (v > 0) this.inc({ node: s.nodeName(id) ?? `#${id}`, path: 'tun' }, v);
        });
        for (const [id, c] of kernelNodes(s))
          if (c[what] > 0) this.inc({ node: s.nodeName(id) ?? `#${id}`, path: 'kernel' }, c[what]);
      },
    });
  forwarded(
    'onehost_forwarded_packets_total',
    'Packets sent to a node over the interconnect, by node and path (kernel: the fast path; tun: user space).',
    'packets',
  );
  forwarded(
    'onehost_forwarded_bytes_total',
    'Bytes (inner packets) sent to a node, by node and path.',
    'bytes',
  );
  new Counter({
    name: 'onehost_local_packets_total',
    help: 'Packets handed to the gateway host’s own stack, by path.',
    labelNames: ['path'],
    registers: [reg],
    collect() {
      this.reset();
      this.inc({ path: 'tun' }, s.datapath.localPackets[0]!);
      this.inc({ path: 'kernel' }, s.kernel.counters.get('n_local')?.packets ?? 0);
    },
  });
  new Counter({
    name: 'onehost_function_packets_total',
    help: 'Packets decided per routing function (or class no entry decides), by path: kernel or user (the switch in user space).',
    labelNames: ['function', 'path'],
    registers: [reg],
    collect() {
      this.reset();
      for (const f of s.kernel.functionSplit()) {
        this.inc({ function: f.function, path: 'kernel' }, f.kernel);
        this.inc({ function: f.function, path: 'user' }, f.user);
      }
    },
  });
  // the kernel's per-entry counters named <prefix>_<protocol>_<port>, by protocol and port
  const perEntry = (name: string, help: string, prefix: string) =>
    new Counter({
      name,
      help,
      labelNames: ['protocol', 'port'],
      registers: [reg],
      collect() {
        this.reset();
        const re = new RegExp(`^${prefix}_(tcp|udp)_(\\d+)$`);
        for (const [n, c] of s.kernel.counters) {
          const m = re.exec(n);
          if (m) this.inc({ protocol: m[1]!, port: m[2]! }, c.packets);
        }
      },
    });
  perEntry(
    'onehost_connections_by_hash_total',
    'Packets of connections the kernel placed by hash, without state (the half-open map full under a SYN flood, or a connection it no longer knows), by protocol and port.',
    'x',
  );
  perEntry(
    'onehost_connections_from_peers_total',
    'Packets of connections another gateway placed (round robin, least-connections), found by their conntrack entry that conntrackd brought, by protocol and port; each adds a flow here.',
    'y',
  );
  new Gauge({
    name: 'onehost_flow_sync_up',
    help: 'Per peer gateway: 1 while this gateway’s conntrackd for it runs (flowSync).',
    labelNames: ['peer'],
    registers: [reg],
    collect() {
      this.reset();
      for (const p of s.flowSync?.status() ?? []) this.set({ peer: p.peer }, p.running ? 1 : 0);
    },
  });
  new Counter({
    name: 'onehost_flow_sync_restarts_total',
    help: 'Per peer gateway: how often its conntrackd ended and was started again.',
    labelNames: ['peer'],
    registers: [reg],
    collect() {
      this.reset();
      for (const p of s.flowSync?.status() ?? []) this.inc({ peer: p.peer }, p.restarts);
    },
  });
  new Counter({
    name: 'onehost_user_space_packets_total',
    help: 'Packets the kernel data path left to user space (through the TUN), by class; and its guard’s drops.',
    labelNames: ['class', 'outcome'],
    registers: [reg],
    collect() {
      this.reset();
      for (const c of s.kernel.userClasses()) {
        this.inc({ class: c.class, outcome: 'passed' }, c.packets);
        this.inc({ class: c.class, outcome: 'guard_drop' }, c.guardDrops);
      }
    },
  });
  new Counter({
    name: 'onehost_fastpath_transactions_total',
    help: 'Kernel data path transactions (switch table changes reaching the kernel), applied or refused.',
    labelNames: ['outcome'],
    registers: [reg],
    collect() {
      this.reset();
      const st = s.kernel.fastpathStats();
      if (st === null) return;
      this.inc({ outcome: 'applied' }, st.applied);
      this.inc({ outcome: 'refused' }, st.failures);
    },
  });
  new Gauge({
    name: 'onehost_fastpath_table_version',
    help: 'The switch table version the kernel runs, and the switch’s own (they differ while a change is applied, or after a refusal).',
    labelNames: ['which'],
    registers: [reg],
    collect() {
      this.reset();
      const st = s.kernel.fastpathStats();
      if (st === null) return;
      this.set({ which: 'kernel' }, st.appliedVersion);
      this.set({ which: 'switch' }, st.wantedVersion);
    },
  });
  new Gauge({
    name: 'onehost_fastpath_last_apply_seconds',
    help: 'How long the last switch table change took to reach the kernel.',
    registers: [reg],
    collect() {
      this.reset();
      const st = s.kernel.fastpathStats();
      if (st !== null) this.set(st.lastApplyMs / 1000);
    },
  });
  new Counter({
    name: 'onehost_fastpath_flow_writes_total',
    help: 'Flow entries user space wrote into the kernel (least-connections, re-derived flows), by outcome.',
    labelNames: ['outcome'],
    registers: [reg],
    collect() {
      this.reset();
      const st = s.kernel.fastpathStats();
      if (st === null) return;
      this.inc({ outcome: 'written' }, st.flowWrites);
      this.inc({ outcome: 'refused' }, st.flowWriteFailures);
      this.inc({ outcome: 'log_full' }, st.flowLogDropped);
    },
  });
  const reasons = allDropReasons();
  new Counter({
    name: 'onehost_drops_total',
    help: 'Packets dropped, by reason (switch decisions and the data path).',
    labelNames: ['reason'],
    registers: [reg],
    collect() {
      this.reset();
      const k = s.kernel.counters;
      const kernelDrops: Record<string, number> = {
        node_down: k.get('d_node_down')?.packets ?? 0,
        too_big: s.kernel.fragFails,
        flood_guard: s.kernel.userClasses().reduce((a, c) => a + c.guardDrops, 0),
      };
      for (const r of reasons)
        this.inc({ reason: r.name }, (s.sw.counters.drops[r.code] ?? 0) + (kernelDrops[r.name] ?? 0));
      for (let i = 0; i < DATAPATH_DROPS.length; i++)
        this.inc(
          { reason: DATAPATH_DROPS[i]! },
          s.datapath.drops[i]! + (kernelDrops[DATAPATH_DROPS[i]!] ?? 0),
        );
      this.inc({ reason: 'flood_guard' }, kernelDrops.flood_guard!);
    },
  });
  new Counter({
    name: 'onehost_host_drops_total',
    help: "Packets the gateway host's own filter dropped, by reason (docs/gateway.md, exposure).",
    labelNames: ['reason'],
    registers: [reg],
    collect() {
      this.reset();
      for (const [reason, n] of s.kernel.hostDrops) this.inc({ reason }, n);
    },
  });
  const wire = allErrors().filter((e) => e.code < s.sw.counters.wireErrors.length);
  new Counter({
    name: 'onehost_wire_errors_total',
    help: 'Packets the parser refused, by reason.',
    labelNames: ['reason', 'kind'],
    registers: [reg],
    collect() {
      this.reset();
      for (const e of wire) {
        const v = s.sw.counters.wireErrors[e.code]!;
        if (v > 0) this.inc({ reason: e.name, kind: e.kind }, v);
      }
    },
  });
  new Counter({
    name: 'onehost_mss_clamped_total',
    help: 'TCP SYNs whose MSS was lowered to fit the interconnect.',
    registers: [reg],
    collect() {
      this.reset();
      this.inc(s.datapath.mssClamped[0]! + (s.kernel.counters.get('mss_clamped')?.packets ?? 0));
    },
  });
  new Counter({
    name: 'onehost_icmp_sent_total',
    help: 'ICMP errors the user-space data path sent to clients whose packets were too big for the interconnect, by message (frag_needed: IPv4, RFC 1191; packet_too_big: IPv6, RFC 4443 §3.2).',
    labelNames: ['message'],
    registers: [reg],
    collect() {
      this.reset();
      this.inc({ message: 'frag_needed' }, s.datapath.fragNeeded.sent[0]!);
      this.inc({ message: 'packet_too_big' }, s.datapath.packetTooBig.sent[0]!);
    },
  });
  new Gauge({
    name: 'onehost_connections',
    help: 'Entries in the switch’s flow tables, by protocol and port (expired ones leave at the next sweep, within a second).',
    labelNames: ['protocol', 'port'],
    registers: [reg],
    collect() {
      this.reset();
      const snap = s.sw.snapshot;
      if (snap === null) return;
      for (const e of snap.entries.values()) {
        if (!e.fn.flowTable) continue;
        const protocol = e.protocol === 6 ? 'tcp' : 'udp';
        // the table's size (flows that expired leave at the next sweep): a scrape walks no table
        this.set({ protocol, port: String(e.port) }, e.fn.flowTable.size);
      }
    },
  });
  new Gauge({
    name: 'onehost_members',
    help: 'Cluster members by state.',
    labelNames: ['state'],
    registers: [reg],
    collect() {
      this.reset();
      const by: Record<string, number> = { active: 0, draining: 0, unreachable: 0, down: 0 };
      for (const m of s.control.membership.members()) by[m.state] = (by[m.state] ?? 0) + 1;
      for (const [state, n] of Object.entries(by)) this.set({ state }, n);
    },
  });
  new Counter({
    name: 'onehost_liveness_late_judgements_total',
    help: 'Node liveness judgements put off by one heartbeat interval because the gateway itself ran late.',
    registers: [reg],
    collect() {
      this.reset();
      this.inc(s.control.membership.lateJudgements);
    },
  });
  const probeCounter = (name: string, help: string, pick: (c: { sent: number; lost: number }) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['node'],
      registers: [reg],
      collect() {
        this.reset();
        const p = s.probe;
        if (p === null || p === undefined) return;
        for (const id of p.states.ids()) {
          const c = p.states.counters(id);
          if (c !== undefined) this.inc({ node: s.nodeName(id) ?? String(id) }, pick(c));
        }
      },
    });
  probeCounter('onehost_probe_sent_total', 'Data-path probes sent through VXLAN, per node.', (c) => c.sent);
  probeCounter(
    'onehost_probe_lost_total',
    'Data-path probes the node did not answer before the next one, per node.',
    (c) => c.lost,
  );
  new Counter({
    name: 'onehost_grpc_calls_total',
    help: 'Finished gRPC calls by method and status.',
    labelNames: ['method', 'code'],
    registers: [reg],
    collect() {
      this.reset();
      for (const c of s.control.counters.snapshot())
        this.inc({ method: c.method, code: String(c.code) }, c.count);
    },
  });
  new Gauge({
    name: 'onehost_io',
    help: 'TUN queue and interconnect sender counters (addon statistics).',
    labelNames: ['side', 'counter'],
    registers: [reg],
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(s.queue.stats()))
        if (typeof v === 'number') this.set({ side: 'tun', counter: k }, v);
      for (const [k, v] of Object.entries(s.sender.stats()))
        if (typeof v === 'number') this.set({ side: 'sender', counter: k }, v);
    },
  });
  return reg;
}

/**
 * serveMetrics answers GET /metrics on host:port, after `beforeScrape` (reading the kernel's counters
 * once for every metric); resolves once listening.
 */
export function serveMetrics(
  reg: Registry,
  host: string,
  port: number,
  beforeScrape: () => Promise<void> = async () => undefined,
  /** more routes on the same listener (the status page); true when it answered the request */
  routes: (req: IncomingMessage, res: ServerResponse) => boolean = () => false,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (routes(req, res)) return;
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    beforeScrape()
      .then(() => reg.metrics())
      .then(
        (body) => res.writeHead(200, { 'content-type': reg.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
