import { basename, dirname, join } from 'node:path';
import {
  type ClientTls,
  connectMembership,
  describeError,
  isFinalRefusal,
  type MembershipConnection,
} from '@onehost/control';
import { ipJson, pidAlive, readJournal } from '@onehost/kernel';
import { KernelSplice, type NodeFlow6 } from '@onehost/ksplice';
import type { JoinResponse, MemberState } from '@onehost/proto';
import {
  type BoundFlow,
  encodeResyncDone,
  isResync,
  RESYNC_DONE_LENGTH,
  SHIFT_LENGTH,
  SHIFTS_PER_DATAGRAM,
  type Shift,
  Splicer,
} from '@onehost/splice';
import { META_STRIDE } from '@onehost/tun';
import type { Logger } from 'pino';
import {
  type AppliedNode,
  applyNodeConfig,
  missingPieces,
  rerouteVia,
  restore,
  updateMountPorts,
} from './apply.js';
import { Backoff } from './backoff.js';
import type { MountPortRestore, NodeConfig } from './config.js';
import { GatewayLiveness } from './gateway-liveness.js';
import type { HealthCheckConfig } from './health/config.js';
import { probe } from './health/probe.js';
import { HealthRunner } from './health/runner.js';
import { HeartbeatLoop, stateName } from './heartbeat-loop.js';
import {
  type LocalFacts,
  nodeConfigFromJoin,
  sameConfig,
  vxlanMacOf,
  withMountPorts,
  withSpliceCapture,
} from './join-config.js';
import { type MountOptions, MountRegistrar } from './mount-registrar.js';
import { lockNode, type NodeLock } from './node-lock.js';
import { ProbeResponder } from './probe-responder.js';
import { sendShifts } from './splice/send-shifts.js';
import { SpliceIo } from './splice/splice-io.js';

export interface DaemonOptions {
  /** the gateway's control plane, "host:port". */
  gateway: string;
  tls: ClientTls;
  local: LocalFacts;
  /** capability tags sent at Join. */
  capabilities: string[];
  logger: Logger;
  /** first and largest pause between join attempts (default 50 ms and 1 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** deadline of Join and Leave (default 2000 ms). */
  callDeadlineMs?: number;
  /** register the node's MOUNT service and exports with the gateway (absent: no NFS on this node). */
  mount?: MountOptions;
  /**
   * take over the TCP MOUNT/NFS connections the gateway hands over (docs/splice.md): the UDP port, and
   * the node's own TCP ports to capture (mountd's TCP port is added when it differs from the cluster's).
   */
  splice?: { port: number; capturePorts: number[]; kernel?: boolean };
  /** health checks of the node's services, reported to the gateway on the heartbeat stream */
  healthChecks?: HealthCheckConfig[];
}

/**
 * How often the agent tells every gateway the offsets of its established spliced flows again: well
 * inside the gateways' idle time of a spliced flow's entry (15 minutes) and of its switch binding.
 */
export const SHIFT_REFRESH_MS = 60_000;

/** Probe intervals without a probe after which a gateway is silent (watchGateways). */
const SILENT_PROBES = 4;

/**
 * kspliceDir is where the agent mounts the bpffs for its tc program: beside the state file, without
 * dots (libbpf turns them into underscores in the maps' pin paths).
 */
export function kspliceDir(stateFile: string): string {
  return join(dirname(stateFile), `${basename(stateFile).replace(/\./g, '-')}-bpf`);
}

/** AgentFailure ends the daemon with exit code 1 and a message for people (no stack). */
export class AgentFailure extends Error {
  override name = 'AgentFailure';
}

/**
 * AgentDaemon is the node agent: it undoes what a crashed run left, joins the cluster, applies the
 * node configuration the gateway answers with, keeps the heartbeat going, joins again (with backoff)
 * when the stream breaks, and on `stop()` leaves, restores the node and finishes.
 */
export class AgentDaemon {
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly deadlineMs: number;
  private stopping = false;
  private wake: (() => void) | null = null;
  private readonly stopped: Promise<void>;
  private signalStop!: () => void;
  private conn: MembershipConnection | null = null;
  private heartbeat: HeartbeatLoop | null = null;
  private applied: { config: NodeConfig; node: AppliedNode } | null = null;
  private everJoined = false;
  /** source ports the node restores for the gateway's MOUNT rewrite (from the last RegisterMount). */
  private mountRestores: MountPortRestore[] = [];
  private readonly registrar: MountRegistrar | null;
  private readonly health: HealthRunner | null;
  /** kernel changes (apply, mount port updates, restore) run one at a time, in order. */
  private kernel: Promise<unknown> = Promise.resolve();
  /** delayed binding: the packet I/O (open while a configuration is applied) and the splicer. */
  private spliceIo: SpliceIo | null = null;
  /** answers the gateway's data-path probes (docs/gateway.md, "Data-path probe") */
  private probeResponder: ProbeResponder | null = null;
  /** which gateways probe this node, and the timer that routes through those (watchGateways) */
  private liveness: GatewayLiveness | null = null;
  private gatewayWatch: NodeJS.Timeout | null = null;
  /** the gateways the routes to the outside go through now; null: all of the applied configuration's */
  private routedVia: string[] | null = null;
  readonly splicer: Splicer | null;
  private spliceTick: NodeJS.Timeout | null = null;
  private shiftRefresh: NodeJS.Timeout | null = null;
  private readonly spliceMeta = new Int32Array(4096 * META_STRIDE);
  private readonly shiftMsg = new Uint8Array(SHIFT_LENGTH * SHIFTS_PER_DATAGRAM);
  /** the tc program that shifts the node's established spliced segments (null: the TUN does) */
  private ksplice: KernelSplice | null = null;
  private kspliceTried = false;
  private kspliceRefusalLogged = false;

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.logger;
    this.backoff = new Backoff(opts.backoff?.initialMs ?? 50, opts.backoff?.maxMs ?? 1000);
    this.deadlineMs = opts.callDeadlineMs ?? 2000;
    this.stopped = new Promise((resolve) => {
      this.signalStop = resolve;
    });
    const checks = opts.healthChecks ?? [];
    const healthLog = opts.logger.child({ component: 'health' });
    this.health =
      checks.length === 0
        ? null
        : new HealthRunner({
            checks,
            probe: (c) => probe(c, opts.local.internalAddress),
            onChange: (all) => {
              for (const c of all)
                healthLog.info({ check: c.name, healthy: c.healthy, detail: c.detail }, 'health check state');
            },
          });
    this.registrar =
      opts.mount === undefined
        ? null
        : new MountRegistrar({
            ...opts.mount,
            gateway: opts.gateway,
            tls: opts.tls,
            nodeName: opts.local.nodeName,
            log: opts.logger.child({ component: 'mount' }),
            deadlineMs: this.deadlineMs,
            onRestores: (r) => this.exclusive(() => this.restoreMountPorts(r)),
          });
    this.splicer =
      opts.splice === undefined
        ? null
        : new Splicer({
            inject: (p) => void this.spliceIo?.inject(p),
            bind: (f) => {
              const k = this.ksplice;
              if (k === null) return false;
              try {
                const six = node6(f);
                if (six === null) k.setNodeFlow(f);
                else k.setNodeFlow6(six);
                return true;
              } catch (err) {
                // A full map: the flow's segments leave unshifted (the rule marks them all); say so once.
                if (!this.kspliceRefusalLogged)
                  this.log.error(
                    { err: describeError(err) },
                    'kernel splice map refused a flow (logged once)',
                  );
                this.kspliceRefusalLogged = true;
                return false;
              }
            },
            unbind: (f) => {
              try {
                const six = node6(f);
                if (six === null) this.ksplice?.deleteNodeFlow(f);
                else this.ksplice?.deleteNodeFlow6(six);
              } catch {
                // gone with the map
              }
            },
            activity: (f) => {
              const six = node6(f);
              return (six === null ? this.ksplice?.nodePackets(f) : this.ksplice?.nodePackets6(six)) ?? -1;
            },
            sendOut: (p) => void this.spliceIo?.sendOut(p),
            // The gateway shifts the client's later segments itself and sends them to this node's kernel.
            // Every gateway: a router may move the flow to any of them (docs/splice.md, "Several gateways").
            established: (shift) => void this.tellShifts([shift], this.applied?.config.gateways ?? []),
          });
  }

  /** tellShifts sends flows' offsets to gateways, from the agent's splice port (`sendShifts`). */
  private tellShifts(shifts: readonly Shift[], gateways: readonly string[]): Promise<void> {
    const send = (gateway: string, datagram: Uint8Array) => {
      const io = this.spliceIo;
      io?.tellGateway(gateway, datagram);
      return io !== null;
    };
    return sendShifts(shifts, gateways, send, this.shiftMsg);
  }

  /**
   * resync answers a gateway that asks for every established flow's offsets (type 4, sent when it
   * starts): the shifts, then a type 5 with their count, so it knows it has them all.
   */
  private async resync(splicer: Splicer, gateway: string): Promise<void> {
    const shifts = splicer.shifts();
    await this.tellShifts(shifts, [gateway]);
    const done = new Uint8Array(RESYNC_DONE_LENGTH);
    encodeResyncDone(shifts.length, done);
    this.spliceIo?.tellGateway(gateway, done);
    this.log.debug({ gateway, flows: shifts.length }, 'spliced flows told to a starting gateway');
  }

  /** withNodeExtras adds what the node restores and captures to a configuration from Join. */
  private withNodeExtras(config: NodeConfig): NodeConfig {
    const withRestores = withMountPorts(config, this.mountRestores);
    const splice = this.opts.splice;
    if (splice === undefined) return withRestores;
    const ports = new Set(splice.capturePorts);
    for (const r of this.mountRestores) if (r.proto === 'tcp') ports.add(r.nodePort);
    return withSpliceCapture(
      withRestores,
      [...ports].sort((a, b) => a - b),
      this.ksplice !== null,
    );
  }

  /**
   * openKernelSplice attaches the tc program for spliced flows (once, before the first apply, so the
   * agent's table marks segments for it only when it is there), adopting a killed predecessor's
   * program and flows. On failure the TUN shifts everything, as with --no-splice-kernel.
   */
  private async openKernelSplice(): Promise<void> {
    const splice = this.opts.splice;
    if (splice === undefined || splice.kernel === false || this.kspliceTried || this.splicer === null) return;
    this.kspliceTried = true;
    const log = this.log.child({ component: 'splice' });
    try {
      // The node's Ethernet devices but its VXLAN device: replies to clients leave by one of them.
      const links = await ipJson<{ ifname: string; link_type?: string; linkinfo?: { info_kind?: string } }>(
        '-d',
        'link',
        'show',
      );
      const devices = links
        .filter((l) => l.link_type === 'ether' && l.linkinfo?.info_kind !== 'vxlan')
        .map((l) => l.ifname);
      const k = await KernelSplice.open({
        dir: kspliceDir(this.opts.local.stateFile),
        side: 'node',
        devices,
      });
      this.ksplice = k;
      let adopted = 0;
      if (k.adopted) {
        const now = Date.now();
        for (const f of k.nodeFlows()) if (this.splicer.adopt(f, now)) adopted++;
        for (const f of k.nodeFlows6()) {
          const b = {
            ...f,
            clientAddr: 0,
            clusterAddr: 0,
            clientAddr6: f.clientAddr,
            clusterAddr6: f.clusterAddr,
          };
          if (this.splicer.adopt(b, now)) adopted++;
        }
      }
      log.info({ devices, adopted }, 'spliced segments shifted in the kernel (tc)');
    } catch (err) {
      log.error({ err: describeError(err) }, 'cannot shift spliced segments in the kernel; the TUN does');
    }
  }

  /** openSplice starts delayed binding's packet I/O for the applied configuration (once). */
  private async openSplice(config: NodeConfig): Promise<void> {
    const splice = this.opts.splice;
    const splicer = this.splicer;
    if (splice === undefined || splicer === null || this.spliceIo !== null) return;
    const log = this.log.child({ component: 'splice' });
    try {
      this.spliceIo = await SpliceIo.open(
        {
          stateFile: this.opts.local.stateFile,
          listenAddress: this.opts.local.internalAddress,
          gateways: config.gateways,
          port: splice.port,
          logger: log,
        },
        {
          onMessage: (payload, from) => {
            if (isResync(payload, 0, payload.length)) void this.resync(splicer, from);
            else splicer.onMessage(payload, 0, payload.length, Date.now());
          },
          onOutbound: (count, arena, meta) => {
            // Rewritten in place, then sent in one sendmmsg per batch.
            const now = Date.now();
            const out = this.spliceMeta;
            let n = 0;
            for (let i = 0; i < count; i++) {
              const at = i * META_STRIDE;
              const off = meta[at]!;
              const flags = meta[at + 2]!;
              const len = splicer.rewriteOutbound(arena, off, meta[at + 1]!, now, (flags & 1) !== 0);
              if (len === 0) continue;
              const to = n * META_STRIDE;
              out[to] = off;
              out[to + 1] = len;
              out[to + 2] = flags;
              out[to + 3] = meta[at + 3]!;
              n++;
            }
            this.spliceIo?.forwardBatch(arena, out, n);
          },
          onError: (err) =>
            log.error({ err: err.message }, 'splice I/O failed; TCP MOUNT/NFS hand-overs stop'),
        },
      );
      this.spliceTick ??= setInterval(() => splicer.tick(Date.now()), 100);
      // Gateways the flows do not pass would idle their entries out (and lose them for a later move).
      this.shiftRefresh ??= setInterval(
        () => void this.tellShifts(splicer.shifts(), this.applied?.config.gateways ?? []),
        SHIFT_REFRESH_MS,
      );
      log.info({ port: splice.port }, 'taking over TCP MOUNT/NFS connections');
    } catch (err) {
      log.error({ err: describeError(err) }, 'cannot take over TCP MOUNT/NFS connections');
    }
  }

  /** openProbeResponder answers the gateway's probes on the port Join named (none when 0). */
  private async openProbeResponder(join: JoinResponse): Promise<void> {
    const port = join.vxlan?.probeUdpPort ?? 0;
    const gateways = join.vxlan?.gatewayAddresses ?? [];
    this.watchGateways(join);
    if (this.probeResponder?.sameAs(port, gateways)) return;
    this.probeResponder?.close();
    this.probeResponder = null;
    if (port === 0) return;
    try {
      this.probeResponder = await ProbeResponder.open(port, gateways, this.log);
      this.probeResponder.onProbe = (g) => this.liveness?.heard(g, performance.now());
    } catch (err) {
      // the gateway will find the node unreachable: say why here
      this.log.error({ port, err: describeError(err) }, 'cannot answer data-path probes');
    }
  }

  /**
   * watchGateways follows which gateways still probe this node (GatewayLiveness) and routes the node's
   * replies through those only: a gateway host that died, or lost its interconnect link, would
   * otherwise take its share of the multipath routes' flows with it. Needs the gateways' probes (a
   * probe port and interval in Join) and more than one gateway.
   */
  private watchGateways(join: JoinResponse): void {
    const gateways = join.vxlan?.gatewayAddresses ?? [];
    const interval = join.vxlan?.probeIntervalMs ?? 0;
    if (this.gatewayWatch !== null) clearInterval(this.gatewayWatch);
    this.gatewayWatch = null;
    this.liveness = null;
    if (gateways.length < 2 || interval === 0 || (join.vxlan?.probeUdpPort ?? 0) === 0) return;
    // the gateway takes a node for unreachable after `probe.fall` (3) unanswered probes; one more here
    const liveness = new GatewayLiveness(gateways, SILENT_PROBES * interval);
    this.liveness = liveness;
    this.gatewayWatch = setInterval(() => {
      const applied = this.applied;
      if (applied === null || this.liveness !== liveness) return;
      const live = liveness.live(performance.now());
      const now = this.routedVia ?? applied.config.gateways;
      if (live.length === now.length && live.every((g, i) => g === now[i])) return;
      void this.exclusive(async () => {
        if (this.applied !== applied) return; // applied again meanwhile: the next tick decides
        await rerouteVia(applied.node, live);
        this.routedVia = live;
        const left = applied.config.gateways.filter((g) => !live.includes(g));
        this.log.warn(
          { through: live, left },
          left.length > 0
            ? 'gateway silent: replies leave through the others'
            : 'every gateway probes again: replies leave through all',
        );
      }).catch((err) =>
        this.log.error({ err: describeError(err) }, 'cannot change the routes through the gateways'),
      );
    }, interval);
  }

  /** closeSplice stops delayed binding's packet I/O (before the state file is undone). */
  private async closeSplice(): Promise<void> {
    const io = this.spliceIo;
    this.spliceIo = null;
    await io?.close();
  }

  /** exclusive runs `fn` after every kernel change queued before it. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.kernel.then(fn, fn);
    this.kernel = p.catch(() => undefined);
    return p;
  }

  /**
   * restoreMountPorts makes the node send its mountd's replies from the cluster's MOUNT ports (the
   * gateway rewrote the destination port inbound, claim 3): only the nftables table changes.
   */
  private async restoreMountPorts(restores: MountPortRestore[]): Promise<void> {
    this.mountRestores = restores;
    const applied = this.applied;
    if (applied === null) return; // the next apply includes them
    const config = this.withNodeExtras(applied.config);
    if (sameConfig(applied.config, config)) return;
    await updateMountPorts(config);
    applied.config = config;
    this.log.info({ restores }, 'mount reply ports restored');
  }

  /** stop asks the daemon to leave, restore and finish; `run()` then resolves. */
  stop(signal?: string): void {
    if (this.stopping) {
      this.log.info({ signal }, 'already stopping');
      return;
    }
    this.stopping = true;
    this.log.info({ signal }, 'stopping');
    this.signalStop();
    this.wake?.();
  }

  /**
   * run does the agent's whole life and resolves with the exit code: 0 after a stop with everything
   * restored, 1 when the gateway refused the node for good, applying failed, or restoring failed.
   * Never rejects.
   */
  async run(): Promise<number> {
    // Before anything: a second agent for a node that runs one touches nothing of the running one's.
    let lock: NodeLock;
    try {
      lock = await lockNode(this.opts.local.stateFile);
    } catch (err) {
      this.log.error(describeError(err));
      return 1;
    }
    try {
      return await this.runLocked();
    } finally {
      await lock.release();
    }
  }

  private async runLocked(): Promise<number> {
    let code = 0;
    try {
      await this.restoreLeftovers();
      this.health?.start();
      await this.serve();
    } catch (err) {
      code = 1;
      this.log.error({ err: err instanceof AgentFailure ? undefined : err }, describeError(err));
    }
    return (await this.shutdown()) && code === 0 ? 0 : 1;
  }

  /** restoreLeftovers undoes what a run that crashed (or was killed) left in the kernel. */
  private async restoreLeftovers(): Promise<void> {
    const { stateFile } = this.opts.local;
    const journal = await readJournal(stateFile);
    if (journal === undefined) return;
    if (journal.pid !== process.pid && pidAlive(journal.pid)) {
      throw new AgentFailure(`${stateFile} belongs to a running agent (pid ${journal.pid})`);
    }
    const r = await restore(stateFile);
    this.log.info(
      { stateFile, undone: r.undone, previousPid: journal.pid },
      'restored leftovers of an earlier run',
    );
  }

  private async serve(): Promise<void> {
    while (!this.stopping) {
      const join = await this.joinWithBackoff();
      if (join === null || this.stopping) return;
      let config: NodeConfig;
      try {
        config = nodeConfigFromJoin(join, this.opts.local);
      } catch (err) {
        throw new AgentFailure(describeError(err));
      }
      const { nodeName } = this.opts.local;
      let acked = false;
      let applied = false;
      let ready = false;
      let state: MemberState | null = null;
      const heartbeat = new HeartbeatLoop(this.conn!, {
        nodeName,
        nodeId: join.nodeId,
        intervalMs: join.heartbeatIntervalMs,
        timeoutMs: join.heartbeatTimeoutMs,
        ...(this.health !== null
          ? { health: () => ({ version: this.health!.version, checks: this.health!.states() }) }
          : {}),
        onAck: (s) => {
          if (s !== state) {
            if (state !== null) this.log.info({ state: stateName(s) }, 'member state changed');
            state = s;
          }
          acked = true;
          if (!ready && applied) ready = this.ready(join);
        },
      });
      this.heartbeat = heartbeat;
      // Beats start at once: the gateway's deadline runs from Join, and applying can take longer.
      // The mount ports to restore are read when it is this apply's turn: an update queued before it
      // has changed them.
      await this.exclusive(async () => {
        await this.openKernelSplice();
        await this.applyIfChanged(this.withNodeExtras(config));
        await this.openSplice(config);
      });
      await this.openProbeResponder(join);
      applied = true;
      // A node that left lost its registration, and a gateway may have restarted: register again.
      this.registrar?.joined();
      this.registrar?.start();
      if (acked && !ready) ready = this.ready(join);
      const reason = await Promise.race([heartbeat.closed, this.stopped.then(() => null)]);
      if (reason === null) return;
      this.log.warn({ reason }, 'heartbeat lost; joining again');
    }
  }

  private ready(join: JoinResponse): true {
    const node = this.applied!.node;
    this.log.info(
      {
        nodeId: join.nodeId,
        portBlock: join.portBlock,
        addresses: node.addresses,
        vxlan: { device: node.vxlan.device, mac: node.vxlan.mac, vni: node.vxlan.vni },
        heartbeatIntervalMs: join.heartbeatIntervalMs,
      },
      'ready',
    );
    return true;
  }

  /** joinWithBackoff joins, retrying what may pass; null once stopping. Throws AgentFailure on a final refusal. */
  private async joinWithBackoff(): Promise<JoinResponse | null> {
    const { local } = this.opts;
    let failures = 0;
    while (!this.stopping) {
      this.closeConnection();
      const conn = connectMembership(this.opts.gateway, this.opts.tls, { deadlineMs: this.deadlineMs });
      this.conn = conn;
      try {
        const join = await conn.join({
          nodeName: local.nodeName,
          internalAddress: local.internalAddress,
          capabilities: this.opts.capabilities,
          vxlanMac: vxlanMacOf(local.nodeName),
        });
        this.backoff.reset();
        this.log.info(
          {
            nodeId: join.nodeId,
            portBlock: join.portBlock,
            rejoin: this.everJoined,
            ...(failures > 0 ? { attempts: failures + 1 } : {}),
          },
          'joined',
        );
        this.everJoined = true;
        return join;
      } catch (err) {
        if (isFinalRefusal(err)) {
          throw new AgentFailure(`the gateway ${this.opts.gateway} refused to join: ${describeError(err)}`);
        }
        failures += 1;
        // Once per outage at warn; each further attempt only at debug.
        if (failures === 1)
          this.log.warn({ gateway: this.opts.gateway }, `cannot join: ${describeError(err)}`);
        else this.log.debug({ attempt: failures }, `cannot join: ${describeError(err)}`);
        await this.pause(this.backoff.delay());
      }
    }
    return null;
  }

  /**
   * applyIfChanged applies `config` unless it is what is applied already and all of it is still in the
   * kernel (taking the internal interface down, for one, flushes the routes through it).
   */
  private async applyIfChanged(config: NodeConfig): Promise<void> {
    let why = 'applied';
    if (this.applied !== null) {
      if (sameConfig(this.applied.config, config)) {
        const missing = await missingPieces(config).catch((err) => [`unknown: ${describeError(err)}`]);
        if (missing.length === 0) return;
        this.log.warn({ missing }, 'parts of the node configuration are gone');
        why = 'reapplied: parts were gone';
      } else {
        why = 'reapplied: the gateway answered differently';
      }
    }
    this.applied = null;
    // Applying undoes the whole state file first, the splice device and rules included.
    await this.closeSplice();
    let node: AppliedNode;
    try {
      node = await applyNodeConfig(config, {
        onStep: (step) => this.log.debug({ step }, 'apply step'),
      });
    } catch (err) {
      throw new AgentFailure(`applying the node configuration failed: ${describeError(err)}`);
    }
    this.applied = { config, node };
    this.routedVia = null;
    this.log.info(
      {
        addresses: node.addresses,
        portBlock: config.portBlock,
        ports: node.ports,
        vxlan: node.vxlan,
        gateways: config.gateways,
        stateFile: node.stateFile,
      },
      why,
    );
  }

  /** pause waits `ms`, or less when stop() is called. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  private closeConnection(): void {
    this.heartbeat?.end();
    this.heartbeat = null;
    this.conn?.close();
    this.conn = null;
  }

  /** shutdown leaves (when joined), ends the heartbeat and restores the node. False when restoring failed. */
  private async shutdown(): Promise<boolean> {
    this.health?.stop();
    await this.registrar?.stop();
    if (this.everJoined) {
      // A short deadline: a gateway that does not answer must not hold up restoring the node (a
      // supervisor's stop timeout would kill the agent half-way).
      const conn = connectMembership(this.opts.gateway, this.opts.tls, {
        deadlineMs: Math.min(this.deadlineMs, 1000),
      });
      try {
        await conn.leave(this.opts.local.nodeName);
        this.log.info('left the cluster');
      } catch (err) {
        this.log.warn(`leave failed: ${describeError(err)}`);
      } finally {
        conn.close();
      }
    }
    this.closeConnection();
    if (this.spliceTick !== null) clearInterval(this.spliceTick);
    if (this.shiftRefresh !== null) clearInterval(this.shiftRefresh);
    this.probeResponder?.close();
    this.probeResponder = null;
    if (this.gatewayWatch !== null) clearInterval(this.gatewayWatch);
    try {
      const r = await this.exclusive(async () => {
        await this.closeSplice();
        const r = await restore(this.opts.local.stateFile);
        // After the agent's table is gone: no segment is marked for a program that is no more.
        await this.ksplice?.close();
        this.ksplice = null;
        return r;
      });
      if (r.found) this.log.info({ undone: r.undone }, 'restored the node configuration');
      return true;
    } catch (err) {
      const errors = err instanceof AggregateError ? err.errors.map(describeError) : [];
      this.log.error({ errors }, describeError(err));
      return false;
    }
  }
}

/** node6 is an IPv6 bound flow as the kernel's ks_node6 takes it; null for an IPv4 one. */
function node6(f: BoundFlow): NodeFlow6 | null {
  return f.clientAddr6 === undefined || f.clusterAddr6 === undefined
    ? null
    : { ...f, clientAddr: f.clientAddr6, clusterAddr: f.clusterAddr6 };
}
