import { createServer, type Server } from 'node:http';
import type { ControlServer } from '@onehost/control';
import { allDropReasons, type MessageSwitch } from '@onehost/switch';
import type { PacketSender, TunQueue } from '@onehost/tun';
import { allErrors } from '@onehost/wire';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Datapath } from './datapath.js';
import { DATAPATH_DROPS } from './drops.js';

export interface MetricsSources {
  sw: MessageSwitch;
  datapath: Datapath;
  control: ControlServer;
  queue: TunQueue;
  sender: PacketSender;
  nodeName(id: number): string | undefined;
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
  new Counter({
    name: 'onehost_forwarded_packets_total',
    help: 'Packets sent to a node over the interconnect, by node.',
    labelNames: ['node'],
    registers: [reg],
    collect() {
      this.reset();
      s.datapath.packetsByNode.forEach((v, id) => {
        if (v > 0) this.inc({ node: s.nodeName(id) ?? `#${id}` }, v);
      });
    },
  });
  new Counter({
    name: 'onehost_forwarded_bytes_total',
    help: 'Bytes (inner IPv4 packets) sent to a node, by node.',
    labelNames: ['node'],
    registers: [reg],
    collect() {
      this.reset();
      s.datapath.bytesByNode.forEach((v, id) => {
        if (v > 0) this.inc({ node: s.nodeName(id) ?? `#${id}` }, v);
      });
    },
  });
  new Counter({
    name: 'onehost_local_packets_total',
    help: 'Packets handed to the gateway host’s own stack.',
    registers: [reg],
    collect() {
      this.reset();
      this.inc(s.datapath.localPackets[0]!);
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
      for (const r of reasons) this.inc({ reason: r.name }, s.sw.counters.drops[r.code] ?? 0);
      for (let i = 0; i < DATAPATH_DROPS.length; i++)
        this.inc({ reason: DATAPATH_DROPS[i]! }, s.datapath.drops[i]!);
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
      this.inc(s.datapath.mssClamped[0]!);
    },
  });
  new Gauge({
    name: 'onehost_connections',
    help: 'Live entries in the switch’s flow tables, by protocol and port.',
    labelNames: ['protocol', 'port'],
    registers: [reg],
    collect() {
      this.reset();
      const snap = s.sw.snapshot;
      if (snap === null) return;
      for (const e of snap.entries.values()) {
        if (!e.fn.flowTable) continue;
        const protocol = e.protocol === 6 ? 'tcp' : 'udp';
        this.set(
          { protocol, port: String(e.port) },
          s.sw.listFlows({ protocol, port: e.port, limit: 0 }).total,
        );
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
      const by: Record<string, number> = { active: 0, draining: 0, down: 0 };
      for (const m of s.control.membership.members()) by[m.state] = (by[m.state] ?? 0) + 1;
      for (const [state, n] of Object.entries(by)) this.set({ state }, n);
    },
  });
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

/** serveMetrics answers GET /metrics on host:port; resolves once listening. */
export function serveMetrics(reg: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    reg.metrics().then(
      (body) => res.writeHead(200, { 'content-type': reg.contentType }).end(body),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
