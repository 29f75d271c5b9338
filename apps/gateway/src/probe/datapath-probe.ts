import { createSocket, type Socket } from 'node:dgram';
import type { MemberRecord } from '@onehost/control';
import type { Logger } from 'pino';
import { buildProbeFrame, readProbeReply, setProbeSequence } from './probe-frame.js';
import { ProbeStates, type ProbeTiming, type ProbeTransition } from './probe-states.js';

export interface DatapathProbeOptions {
  timing: ProbeTiming;
  /** the gateway's interconnect address: outer and inner source, where answers come back */
  source: string;
  vni: number;
  vxlanPort: number;
  gatewayMac: string;
  /** the inner destination: the default cluster address */
  clusterAddress: string;
  probePort: number;
  /** the inner IPv4 length of each probe (the inner MTU) */
  innerLength: number;
  members: () => readonly MemberRecord[];
  /** moves whenever `members()` would answer differently (Membership.generation); absent: every round asks */
  generation?: () => number;
  /** called once per transition, with the node's name */
  onTransition: (name: string, t: ProbeTransition) => void;
  /**
   * whether this gateway can forward the nodes' replies to the outside (an outside link is up): while
   * it cannot, no probes go out, and the agents route their replies through the other gateways
   */
  canForward?: () => boolean;
  log: Logger;
}

interface Target {
  address: string;
  mac: string;
  name: string;
  frame: Buffer;
}

/**
 * DatapathProbe sends each up node, every interval, a VXLAN frame built like traffic (same VNI and
 * port, inner destination the cluster address) holding a UDP probe the node's agent echoes to the
 * gateway's interconnect address (docs/gateway.md, "Data-path probe"). Frames are built once per node
 * and only their sequence changes. `ProbeStates` judges the answers.
 */
export class DatapathProbe {
  readonly states: ProbeStates;
  private readonly targets = new Map<number, Target>();
  private socket: Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private port = 0;
  private paused = false;
  /** the up nodes with a VXLAN address, as of `seen` (the generation they were read at; -1: never) */
  private ids: number[] = [];
  private seen = -1;
  sendErrors = 0;

  constructor(private readonly o: DatapathProbeOptions) {
    this.states = new ProbeStates(o.timing);
  }

  /** start binds the probe socket (interconnect address, a free port) and starts the rounds. */
  async start(): Promise<void> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, this.o.source, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (e) => this.o.log.warn({ problem: e.message }, 'probe socket error'));
    s.on('message', (msg, rinfo) => {
      const r = readProbeReply(msg);
      if (r === null) return;
      const t = this.targets.get(r.id);
      // only the node itself answers for itself
      if (t === undefined || t.address !== rinfo.address) return;
      const tr = this.states.answered(r.id, r.seq);
      if (tr !== null) this.o.onTransition(t.name, tr);
    });
    this.socket = s;
    this.port = s.address().port;
    // After a busy spell the timer runs before the answers that came meanwhile are read: judge once
    // they have been (setImmediate runs after the poll phase), or a starved gateway blames the nodes.
    this.timer = setInterval(() => setImmediate(() => this.round()), this.o.timing.intervalMs);
  }

  /** reset starts a node over as reachable (it joined again). */
  reset(id: number): void {
    this.states.reset(id);
  }

  private round(): void {
    const s = this.socket;
    if (s === null) return;
    const paused = this.o.canForward?.() === false;
    if (paused !== this.paused) {
      this.paused = paused;
      if (paused)
        this.o.log.warn('no outside link up: probes paused (the nodes route their replies elsewhere)');
      else this.o.log.info('an outside link is up: probes resumed');
    }
    if (paused) return;
    const g = this.o.generation?.();
    if (g === undefined || g !== this.seen) {
      this.ids = this.readTargets();
      this.seen = g ?? -1;
    }
    const transitions = this.states.tick(this.ids, (id, seq) => {
      const t = this.targets.get(id)!;
      setProbeSequence(t.frame, seq);
      s.send(t.frame, this.o.vxlanPort, t.address, (err) => {
        if (err) this.sendErrors++;
      });
    });
    for (const tr of transitions) {
      const t = this.targets.get(tr.id);
      if (t !== undefined) this.o.onTransition(t.name, tr);
    }
  }

  /** readTargets lists the nodes to probe and (re)builds the frames of new or changed ones. */
  private readTargets(): number[] {
    const ids: number[] = [];
    for (const m of this.o.members()) {
      if (m.state === 'down' || m.vxlanMac === '') continue;
      let t = this.targets.get(m.id);
      if (t === undefined || t.address !== m.internalAddress || t.mac !== m.vxlanMac) {
        t = {
          address: m.internalAddress,
          mac: m.vxlanMac,
          name: m.name,
          frame: buildProbeFrame({
            vni: this.o.vni,
            gatewayMac: this.o.gatewayMac,
            nodeMac: m.vxlanMac,
            source: this.o.source,
            sourcePort: this.port,
            clusterAddress: this.o.clusterAddress,
            probePort: this.o.probePort,
            nodeId: m.id,
            innerLength: this.o.innerLength,
          }),
        };
        this.targets.set(m.id, t);
      }
      ids.push(m.id);
    }
    const keep = new Set(ids);
    for (const id of this.targets.keys()) if (!keep.has(id)) this.targets.delete(id);
    return ids;
  }

  /** close stops the rounds and the socket. */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.socket?.close();
    this.socket = null;
  }
}
