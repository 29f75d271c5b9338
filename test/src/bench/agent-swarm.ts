// agent-swarm: many node agents' control-plane side in one process, for the control-plane scale bench
// (control-scale.bench.ts starts it in the gateway host). Each simulated agent has its own certificate
// and its own mutual-TLS connection, joins over the real gRPC API and keeps a heartbeat stream beating
// at the gateway's interval, as the agent does. It has no data path: the gateway runs without data-path
// probes. Phases, each announced on stdout as one JSON line: joined, steady (heartbeats only, for the
// driver's CPU and etcd-write window), then `silent` agents stop beating without closing anything (a
// dead host: no FIN) and the swarm times, per gateway, when its WatchMembers reports each one down.
// Every phase has a deadline; the process ends by itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ClientTls, connectMembership, type MembershipConnection } from '@onehost/control/client';
import { MemberState } from '@onehost/proto';

const { values: a } = parseArgs({
  options: {
    gateway: { type: 'string', multiple: true },
    pki: { type: 'string' },
    agents: { type: 'string', default: '1000' },
    'interval-ms': { type: 'string', default: '100' },
    'steady-s': { type: 'string', default: '10' },
    silent: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '32' },
  },
});
const gateways = a.gateway ?? [];
const pki = a.pki ?? '';
const N = Number(a.agents);
const INTERVAL = Number(a['interval-ms']);
const SILENT = Math.min(Number(a.silent), N);
if (gateways.length === 0 || pki === '' || !(N > 0)) {
  console.error('agent-swarm: --gateway (one or more), --pki and --agents are required');
  process.exit(2);
}

const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const name = (i: number) => `s${String(i + 1).padStart(4, '0')}`;
const tls = (n: string): ClientTls => ({
  caPem: readFileSync(join(pki, 'ca.pem')),
  certPem: readFileSync(join(pki, `${n}.pem`)),
  keyPem: readFileSync(join(pki, `${n}-key.pem`)),
});
// the simulated nodes' interconnect addresses: 198.19.0.0/16, inside the cluster interconnect range
const address = (i: number) => `198.19.${(i + 1) >> 8}.${(i + 1) & 255}`;
const mac = (i: number) =>
  `02:00:5e:13:${((i + 1) >> 8).toString(16).padStart(2, '0')}:${((i + 1) & 255).toString(16).padStart(2, '0')}`;

let joinRetries = 0;
/** heartbeat streams the gateway ended (or that broke) while their agent was beating */
let streamsEnded = 0;
let rejoins = 0;
const JOIN_DEADLINE_MS = 480_000;
const joinMs: number[] = [];

/** Sim is one simulated agent: join, then a heartbeat stream; an ended stream means join again. */
class Sim {
  readonly name: string;
  readonly conn: MembershipConnection;
  acks = 0;
  silenced = false;
  lastEndAt = 0;
  private stream: ReturnType<MembershipConnection['heartbeat']> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly i: number) {
    this.name = name(i);
    this.conn = connectMembership(gateways[i % gateways.length]!, tls(this.name), { deadlineMs: 20_000 });
  }

  /** join as the agent does: a refused or timed-out join is tried again a second later */
  async join(): Promise<void> {
    for (;;) {
      try {
        const r = await this.conn.join({
          nodeName: this.name,
          internalAddress: address(this.i),
          capabilities: [],
          vxlanMac: mac(this.i),
        });
        this.beat(r.nodeId);
        return;
      } catch (e) {
        joinRetries++;
        if (performance.now() - t0 > JOIN_DEADLINE_MS) throw e;
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  }

  private beat(nodeId: number): void {
    const stream = this.conn.heartbeat();
    this.stream = stream;
    let over = false;
    const ended = () => {
      if (over) return;
      over = true;
      clearInterval(this.timer);
      if (this.silenced || closing) return;
      streamsEnded++;
      this.lastEndAt = performance.now();
      rejoins++;
      setTimeout(() => void this.join().catch(() => {}), 1000);
    };
    stream.on('data', () => {
      this.acks++;
    });
    stream.on('error', ended);
    stream.on('status', ended);
    let sequence = 0;
    const send = () => {
      sequence++;
      stream.write({ nodeName: this.name, nodeId, sequence, healthUpdate: sequence === 1, health: [] });
    };
    send();
    this.timer = setInterval(send, INTERVAL);
  }

  /** silence stops beating and keeps the connection: a host that died without a FIN */
  silence(): void {
    this.silenced = true;
    clearInterval(this.timer);
  }

  close(): void {
    clearInterval(this.timer);
    this.stream?.end();
    this.conn.close();
  }
}
let closing = false;
const sims: Sim[] = [];

async function joinAll(): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const sim = new Sim(next++);
      const t = performance.now();
      await sim.join();
      joinMs.push(performance.now() - t);
      sims.push(sim);
    }
  };
  await Promise.all(Array.from({ length: Number(a.concurrency) }, worker));
}

const pctl = (xs: number[], p: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

const deadline = setTimeout(() => {
  say({ phase: 'timeout' });
  process.exit(1);
}, 900_000);

const t0 = performance.now();
await joinAll();
say({
  phase: 'joined',
  agents: sims.length,
  seconds: (performance.now() - t0) / 1000,
  joinP50Ms: pctl(joinMs, 50),
  joinP99Ms: pctl(joinMs, 99),
  joinRetries,
});

// the operator's watch on every gateway, opened before anything goes silent
const op = tls('op');
const downAt = gateways.map(() => new Map<string, number>());
const watches = gateways.map((g, k) => {
  const w = connectMembership(g, op).watchMembers(false);
  w.on('data', (r: { member?: { nodeName: string; state: MemberState } }) => {
    const m = r.member;
    if (m && m.state === MemberState.MEMBER_STATE_DOWN && !downAt[k]!.has(m.nodeName))
      downAt[k]!.set(m.nodeName, performance.now());
  });
  w.on('error', () => {});
  return w;
});

// settled: no stream ended for 3 s (at most a minute), every agent beating again
const endedWhileJoining = streamsEnded;
const tSettle = performance.now();
while (performance.now() - tSettle < 60_000) {
  const quietSince = Math.max(tSettle, ...sims.map((s) => s.lastEndAt));
  if (performance.now() - quietSince >= 3000) break;
  await new Promise((r) => setTimeout(r, 100));
}
say({ phase: 'settled', seconds: (performance.now() - tSettle) / 1000, endedWhileJoining });

for (const s of sims) s.acks = 0;
const endedBefore = streamsEnded;
say({ phase: 'steady', seconds: Number(a['steady-s']) });
await new Promise((r) => setTimeout(r, Number(a['steady-s']) * 1000));
say({
  phase: 'steady-end',
  streamsEnded: streamsEnded - endedBefore,
  acks: sims.reduce((n, s) => n + s.acks, 0),
});

// silent agents: stop beating, keep the connection open (what a host that died without a FIN looks like)
const silent = sims.slice(0, SILENT);
for (const m of downAt) m.clear();
const tSilent = performance.now();
for (const s of silent) s.silence();
const until = Date.now() + 15_000;
while (Date.now() < until && !downAt.every((m) => silent.every((s) => m.has(s.name))))
  await new Promise((r) => setTimeout(r, 20));
say({
  phase: 'detected',
  perGateway: gateways.map((g, k) => {
    const ms = silent.filter((s) => downAt[k]!.has(s.name)).map((s) => downAt[k]!.get(s.name)! - tSilent);
    return { gateway: g, seen: ms.length, of: silent.length, p50Ms: pctl(ms, 50), maxMs: Math.max(...ms) };
  }),
  rejoins,
});
closing = true;
for (const w of watches) w.cancel();
for (const s of sims) s.close();
clearTimeout(deadline);
process.exit(0);
