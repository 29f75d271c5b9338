import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { basename, dirname, join } from 'node:path';
import {
  ControlError,
  type ControlServer,
  EtcdGatewayRegistry,
  EtcdStore,
  type GatewayRegistry,
  type GatewayRegistryOptions,
  LocalGatewayRegistry,
  type MemberRecord,
  readTlsFiles,
  startControlServer,
} from '@onehost/control';
import { FastPath, type FastPathLayout, type NodeEndpoint, trackMark } from '@onehost/fastpath';
import { localHost, NftContext } from '@onehost/kernel';
import { KernelSplice } from '@onehost/ksplice';
import { MessageSwitch } from '@onehost/switch';
import { PacketSender, TunQueue } from '@onehost/tun';
import { ipv6ToString, parseIpv4, parseIpv6, VXLAN_OVERHEAD } from '@onehost/wire';
import type { Logger } from 'pino';
import { type Announcer, makeAnnouncer } from './announce.js';
import { GatewaySwitch } from './backend.js';
import { Coalesced } from './coalesce.js';
import { ConfigError, type GatewayConfig, readGatewayConfigText } from './config.js';
import { Datapath } from './datapath.js';
import { FlowSync, type SyncPeer, syncPeers } from './flow-sync.js';
import { GatewayProcess } from './gateway-process.js';
import {
  ARPING_COUNT,
  announceClusterAddresses,
  applyGatewayHost,
  outsideMtu,
  readHostDrops,
  restoreGatewayHost,
  setRegisteredNodes,
} from './host/gateway-host.js';
import { advertiseClusterAddresses6 } from './host/neighbour-advert.js';
import { buildRegistry, serveMetrics } from './metrics.js';
import { TunSource } from './packet-io.js';
import { DatapathProbe } from './probe/datapath-probe.js';
import { checkRestartOnly, diffSwitch, type ReloadResult } from './reload.js';
import { clusterRpcPorts } from './rpc/cluster-ports.js';
import { registerRpcMetrics } from './rpc/metrics.js';
import { clusterExports } from './rpc/mount.js';
import { RpcResponders } from './rpc/responders.js';
import { Splice } from './splice/handover.js';
import { KernelShifts } from './splice/kernel-shifts.js';
import { Resync } from './splice/resync.js';
import { openShiftSocket } from './splice/shift-socket.js';
import { SpliceWing } from './splice/wing.js';
import { EventLog } from './status/events.js';
import { RateHistory } from './status/history.js';
import { StatusRoutes } from './status/server.js';

/** A running gateway; `close` undoes what it configured on the host. */
export interface Gateway {
  readonly control: ControlServer;
  readonly sw: MessageSwitch;
  readonly backend: GatewaySwitch;
  readonly datapath: Datapath;
  /** the portmapper, MOUNT and NFS services the gateway answers itself */
  readonly rpc: RpcResponders;
  /** the gateways of the cluster (etcd), or this one (embedded store) */
  readonly registry: GatewayRegistry;
  readonly metricsPort: number | null;
  /** the kernel data path (null in tun mode) */
  readonly fastpath: FastPath | null;
  /**
   * the cluster addresses' BGP announcement (state `off` without `announce`): announced once ready,
   * withdrawn first thing in close; withdraw() also drains this gateway while it keeps running
   */
  readonly announcer: Announcer;
  /** stopped resolves when an operator asked the gateway to stop (Gateway/Stop), with their choice */
  readonly stopped: Promise<{ keepDatapath: boolean }>;
  /**
   * close stops the gateway: by default it undoes what it configured on the host, kernel data path
   * included; with keepDatapath the kernel keeps forwarding and the next start adopts its state.
   */
  close(opts?: { keepDatapath?: boolean }): Promise<void>;
  /**
   * reload validates `text` as the gateway's configuration file and, unless dryRun, swaps in its
   * switch part (docs/gateway.md, "Reload"); `source` names who asked, for the log. Throws ControlError
   * INVALID_ARGUMENT naming the field, FAILED_PRECONDITION without a configuration file.
   */
  reload(text: string, dryRun: boolean, source: string): Promise<ReloadResult>;
}

export interface GatewayOptions {
  /** the configuration file the gateway was started from: reloads are read relative to it */
  configPath?: string;
}

/** The inner Ethernet source of our VXLAN frames: locally administered, never on a wire. */
const GATEWAY_MAC = '02:6f:68:00:00:01';
const SWEEP_EVERY_MS = 1000;
/** the status page's rate history: a sample every 2 s, the last 5 minutes */
const STATUS_SAMPLE_EVERY_MS = 2000;
const STATUS_SAMPLES = 151;
/** how often least-connections entries learn the live flows the kernel keeps */
const LIVE_COUNT_EVERY_MS = 5000;
/**
 * How long a restarted gateway keeps the kernel table it adopted while the nodes it knew come back: the
 * store lists them down ("gateway restart") until they join again, and applying that would send every
 * established flow to user space, which has not seen them.
 */
const ADOPT_GRACE_MS = 5000;
/** membership and exports changes closer together than this are applied together (coalesce.ts) */
const REFRESH_SPACING_MS = 50;

const isRestartDown = (m: MemberRecord): boolean => m.state === 'down' && m.downReason === 'gateway restart';
/** asBeforeRestart is a member the store lists down for the gateway's restart, in the state it had. */
const asBeforeRestart = (m: MemberRecord): MemberRecord => ({
  ...m,
  state: m.drained ? 'draining' : 'active',
  downReason: '',
});

/**
 * startGateway brings the gateway up: validates the switch table, opens the TUN, configures the host
 * (policy routing of the cluster addresses into the TUN), starts the control plane and the packet
 * loop. Throws ControlError (INVALID_ARGUMENT) for a table the switch refuses, TunError for the TUN,
 * CommandError for host setup; whatever was set up before the failure is undone.
 */
export async function startGateway(
  cfg: GatewayConfig,
  log: Logger,
  opts: GatewayOptions = {},
): Promise<Gateway> {
  const undo: Array<() => unknown> = [];
  // set by close({ keepDatapath }): the host's and the kernel's state stay for the next start
  let keep = false;
  const unwind = async (): Promise<void> => {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch (e) {
        log.warn({ err: e }, 'cleanup step failed');
      }
    }
  };
  try {
    const sw = new MessageSwitch();
    const backend = new GatewaySwitch(sw, cfg);
    backend.setMembership([], []); // refuses a bad static table before anything is touched

    const queue = TunQueue.open({ name: cfg.tun.name });
    undo.push(() => queue.close());
    queue.mtu = cfg.tun.mtu;
    // Only packets routed into the TUN may reach the switch: with a link-local address the kernel would
    // send its own IPv6 (DAD, router solicitations, MLD) into it, counted as malformed on an idle gateway.
    // addr_gen_mode rather than disable_ipv6 keeps IPv6 routable into the device for IPv6 cluster addresses.
    await localHost.noIpv6Autoconf(queue.name);
    // IPv6 cluster addresses are routed into the TUN, and `local` ones come back out of it: the kernel
    // refuses an IPv6 route through a device with IPv6 off (the setting goes with the device)
    if (ipv6ClusterAddresses(cfg).length > 0)
      await localHost.writeSysctl(`net/ipv6/conf/${queue.name}/disable_ipv6`, '0');
    queue.isUp = true;
    const kernel = cfg.datapath.mode === 'kernel';
    let fastpath: FastPath | null = null;
    let flowSync: FlowSync | null = null;
    const vips = ipv4ClusterAddresses(cfg).map(parseIpv4);
    const vips6 = ipv6ClusterAddresses(cfg);
    if (cfg.host.manage) {
      const host = await applyGatewayHost({
        name: cfg.name,
        tun: queue.name,
        vips,
        vips6,
        interconnectAddress: cfg.interconnect.address,
        outside: cfg.outside.interfaces,
        interconnect: cfg.interconnect.interface,
        interconnectPrefix: cfg.interconnect.prefix,
        management: managementList(cfg),
        routingPeers: cfg.announce?.peers ?? [],
        vxlanPort: cfg.vxlan.port,
        hostPorts: [cfg.control.listen.port, ...(cfg.metrics !== null ? [cfg.metrics.port] : [])],
        txQueueLen: 10_000,
        table: cfg.host.table,
        rulePref: cfg.host.rulePref,
        localPref: cfg.host.localPref,
        statePath: cfg.host.state,
        trackMark: flowSyncPeers(cfg).length > 0 ? trackMark(cfg.datapath) : undefined,
      });
      undo.push(() => (keep ? undefined : restoreGatewayHost(cfg.host.state)));
      if (host.adopted) log.info({ state: cfg.host.state }, 'adopted the host state a previous gateway left');
      if (kernel) {
        fastpath = await FastPath.start({
          layout: fastPathLayout(cfg),
          host: localHost,
          journal: host.journal,
          log: log.child({ component: 'fastpath' }),
        });
        const fp = fastpath;
        undo.push(() => fp.close());
        const peers = flowSyncPeers(cfg);
        if (peers.length > 0 && cfg.flowSync !== null) {
          const sync = new FlowSync({
            self: cfg.interconnect.address,
            peers,
            iface: cfg.interconnect.interface,
            vips: [...ipv4ClusterAddresses(cfg), ...ipv6ClusterAddresses(cfg)],
            dir: `${cfg.host.state.replace(/\.json$/, '')}-sync`,
            conntrackd: cfg.flowSync.conntrackd,
            log: log.child({ component: 'flow-sync' }),
          });
          flowSync = sync;
          undo.push(() => sync.stop());
          await sync.start();
        }
        // user space's flow decisions for flows the kernel keeps reach it after each batch
        sw.flowLog.enabled = true;
      }
    }
    const sender = PacketSender.open({ source: cfg.interconnect.address });
    undo.push(() => sender.close());
    const wing = new SpliceWing({ sink: sender, port: cfg.splice.port });
    const datapath = new Datapath({
      sw,
      source: new TunSource(queue),
      sink: sender,
      interconnectMtu: cfg.interconnect.mtu,
      vni: cfg.vxlan.vni,
      vxlanPort: cfg.vxlan.port,
      gatewayMac: GATEWAY_MAC,
      maxBatch: cfg.tun.maxBatch,
      splice: wing,
      ...(fastpath !== null ? { onBatchEnd: () => fastpath.drainFlowLog(sw.flowLog) } : {}),
    });

    // The live status page's memory: per-node rates (a sample every 2 s, 5 minutes) and recent events.
    const rates = new RateHistory(STATUS_SAMPLES);
    const events = new EventLog();
    // The configuration in force: a reload compares the next file with it and swaps its switch part.
    let running = cfg;
    const reloadLog = log.child({ component: 'reload' });
    const reload = async (text: string, dryRun: boolean, source: string): Promise<ReloadResult> => {
      const path = opts.configPath;
      if (path === undefined)
        throw new ControlError(
          'FAILED_PRECONDITION',
          'this gateway was started without a configuration file',
        );
      try {
        let next: GatewayConfig;
        try {
          next = readGatewayConfigText(text, path);
          checkRestartOnly(running, next, path);
        } catch (e) {
          throw e instanceof ConfigError ? new ControlError('INVALID_ARGUMENT', e.message) : e;
        }
        const changes = diffSwitch(backend.switchConfig(), next.switch);
        const version = backend.reload(next.switch, dryRun);
        if (!dryRun) {
          running = next;
          process.reloads.applied++;
          reloadLog.info({ source, changes, version }, 'reloaded');
          events.add(
            'reload',
            `reloaded (${source}): ${changes.length === 0 ? 'no changes' : changes.join('; ')}`,
          );
        }
        return { changes, version, applied: !dryRun };
      } catch (e) {
        if (!dryRun) {
          process.reloads.refused++;
          events.add('refused', `reload refused (${source}): ${(e as Error).message}`);
          reloadLog.warn(
            { source, problem: (e as Error).message },
            'reload refused; the running configuration stays',
          );
        }
        throw e;
      }
    };
    const process = new GatewayProcess({
      name: cfg.name,
      sw,
      fastpath,
      reload: (t, d) => reload(t, d, 'gRPC'),
      ...(cfg.host.manage ? { readHostDrops } : {}),
    });
    const storeCfg = cfg.control.store;
    // etcd is first asked when the control plane loads the store: unreachable, the start fails
    const store =
      storeCfg.kind === 'etcd'
        ? {
            store: new EtcdStore({
              endpoints: storeCfg.endpoints,
              tls: await readTlsFiles(storeCfg.tls),
              prefix: storeCfg.prefix,
              logger: log,
            }),
          }
        : { storePath: storeCfg.path };
    // the registry's record: ready once the packet path runs (below)
    let ready = false;
    let drained = false;
    const announcer = makeAnnouncer(cfg, log);
    const etcdStore = 'store' in store ? (store.store ?? null) : null;
    const registryOpts: GatewayRegistryOptions = {
      name: cfg.name,
      address: `${cfg.control.listen.host}:${cfg.control.listen.port}`,
      datapath: cfg.datapath.mode,
      self: () => ({
        ready,
        appliedRevision: etcdStore?.appliedRevision ?? 0,
        switchVersion: sw.snapshot?.version ?? 0,
      }),
      // the registry reports the announcement; a drain (onehostctl gateway drain) withdraws it, and
      // lifted, announces again once ready
      announcer: {
        announcementState: () => announcer.state(),
        drain: (d: boolean) => {
          drained = d;
          if (d) return announcer.withdraw();
          return ready ? announcer.announce() : undefined;
        },
      },
      logger: log,
    };
    const registry: GatewayRegistry =
      etcdStore !== null
        ? new EtcdGatewayRegistry({ ...registryOpts, client: etcdStore.etcd, keys: etcdStore.keys })
        : new LocalGatewayRegistry(registryOpts);
    const control = await startControlServer({
      host: cfg.control.listen.host,
      port: cfg.control.listen.port,
      tls: await readTlsFiles(cfg.control.tls),
      cluster: {
        addresses: cfg.switch.clusterAddresses.map((c) => {
          const a = c as { network: string; address: string; default?: boolean };
          return { network: a.network, address: a.address, isDefault: a.default === true };
        }),
        vxlan: {
          vni: cfg.vxlan.vni,
          udpPort: cfg.vxlan.port,
          gatewayAddresses: [...cfg.interconnect.gateways],
          probeUdpPort: cfg.probe.port,
          probeIntervalMs: cfg.probe.intervalMs,
        },
        interconnectPrefixes: [cfg.interconnect.prefix],
        outsideMtu: await outsideMtu(cfg.outside.interfaces),
      },
      ...store,
      portRange: cfg.control.portRange,
      blockSize: cfg.control.blockSize,
      heartbeatIntervalMs: cfg.control.heartbeatIntervalMs,
      heartbeatTimeoutMs: cfg.control.heartbeatTimeoutMs,
      switchBackend: backend,
      gatewayBackend: process,
      gatewayRegistry: registry,
      // Nodes restore their mountd replies to these ports (the gateway rewrote them inbound, claim 3).
      clusterMountPorts: () => clusterRpcPorts(backend.listEntries().entries).mount,
      // the control plane names its own parts (membership, exports, grpc) in `component`
      logger: log,
    });
    undo.push(() => control.close());
    // registered as starting; undone before the control plane closes the etcd client it shares (and
    // after a failed start too: its lease may be out)
    undo.push(() => registry.close());
    await registry.start();

    const swLog = log.child({ component: 'switch' });
    const hostLog = log.child({ component: 'host' });
    let lastRefusal = '';
    // Node-address filter updates run one at a time, in order, off the packet path.
    // A burst of changes (agents joining by the hundred) costs one update per update's run time, not
    // one per change: only the latest set waits behind the running one.
    let nodesFilter: Promise<void> = Promise.resolve();
    const hostNft = cfg.host.manage ? NftContext.open() : null;
    if (hostNft !== null) undo.push(() => hostNft.close());
    let nodesKey = '';
    let nodesNext: string[] | null = null;
    const updateNodesFilter = (addresses: string[]): void => {
      const key = addresses.join(',');
      if (!cfg.host.manage || key === nodesKey) return;
      nodesKey = key;
      const queued = nodesNext !== null;
      nodesNext = addresses;
      if (queued) return;
      nodesFilter = nodesFilter
        .then(() => {
          const next = nodesNext ?? [];
          nodesNext = null;
          return setRegisteredNodes(next, (script) => hostNft!.run(script));
        })
        .catch((e: Error) =>
          hostLog.error({ problem: e.message }, 'could not update the registered-node filter'),
        );
    };
    // A restarted gateway's store lists the nodes it knew as down ("gateway restart") until they join
    // again. Until every one is back, or ADOPT_GRACE_MS pass, the switch takes them as they were, so the
    // established flows of fixed entries and Maglev keep their nodes in either data path (a fixed entry's
    // backup would reset them).
    let restartHold = control.membership.members().some(isRestartDown);
    const refresh = (): void => {
      const members = restartHold
        ? control.membership.members().map((m) => (isRestartDown(m) ? asBeforeRestart(m) : m))
        : control.membership.members();
      try {
        const version = backend.setMembership(
          members,
          control.exports.list(),
          control.membership.unhealthyCovers(),
        );
        swLog.debug({ version, members: members.length }, 'snapshot swapped');
        lastRefusal = '';
      } catch (e) {
        // A membership the switch refuses keeps the previous table; log each distinct refusal once.
        const msg = e instanceof ControlError ? e.message : String(e);
        if (msg !== lastRefusal)
          swLog.error({ problem: msg }, 'switch refused the membership; previous table kept');
        lastRefusal = msg;
      }
      updateNodesFilter(members.map((m) => m.internalAddress).sort());
      datapath.setNodes(
        members
          .filter((m) => m.state !== 'down' && m.state !== 'unreachable' && m.vxlanMac !== '')
          .map((m) => ({ id: m.id, address: m.internalAddress, mac: m.vxlanMac })),
      );
    };
    undo.push(() => nodesFilter);
    const refreshes = new Coalesced(refresh, REFRESH_SPACING_MS);
    const refreshNow = () => refreshes.now();
    const refreshSoon = () => refreshes.soon();
    undo.push(() => refreshes.cancel());
    // what the gateway reports (status: the switch's version) includes a change waiting to be applied
    process.beforeStatus = () => refreshes.flush();
    // first of the membership listeners: the others (the adopted table's release) see the new snapshot
    // when it was applied at once, and apply it themselves when not
    undo.push(control.membership.onChange(refreshSoon));
    // the kernel table a previous gateway left stays as it is while the hold lasts
    let holding = fastpath?.adopting ?? false;
    if (holding) sw.flowLog.enabled = false;
    const releaseHold: Array<() => void> = [];
    if (restartHold || holding) {
      const release = (why: string) => {
        if (!restartHold && !holding) return;
        log.info({ why, adopted: holding }, 'restart hold released: the switch takes the nodes as they are');
        restartHold = false;
        holding = false;
        sw.flowLog.enabled = true;
        refreshNow();
        for (const r of releaseHold) r();
      };
      log.info(
        { adopted: holding, graceMs: ADOPT_GRACE_MS },
        'restart hold: the switch takes the nodes as they were',
      );
      const grace = setTimeout(() => release('grace period over'), ADOPT_GRACE_MS);
      undo.push(() => clearTimeout(grace));
      undo.push(
        control.membership.onChange(() => {
          if (!control.membership.members().some(isRestartDown)) release('every node is back');
        }),
      );
    }
    if (fastpath !== null) {
      const fp = fastpath;
      const endpoints = (): NodeEndpoint[] =>
        control.membership
          .members()
          .filter((m) => m.vxlanMac !== '')
          .map((m) => ({ id: m.id, address: m.internalAddress, mac: m.vxlanMac }));
      // every swap (membership, drains, exports, entries) reaches the kernel in one transaction; until
      // the hold ends, user space must not make the kernel forget flows it has not seen
      const apply = () => {
        if (sw.snapshot !== null && !holding) void fp.apply(sw.snapshot, endpoints());
      };
      releaseHold.push(apply);
      backend.onSwap(apply);
      backend.setPathExplainer((packet) => (sw.snapshot === null ? '' : fp.explain(sw.snapshot, packet)));
      backend.setKernelFlows(fp);
      let counting = false;
      const live = setInterval(() => {
        if (sw.snapshot === null || counting) return;
        counting = true;
        void fp.countLiveFlows(sw.snapshot).finally(() => {
          counting = false;
        });
      }, LIVE_COUNT_EVERY_MS);
      undo.push(() => clearInterval(live));
      undo.push(() => fp.settled());
    }
    undo.push(
      control.membership.onChange((c) => {
        if (c.kind !== 'health') events.member(c);
        else for (const h of control.membership.healthOf(c.member.name)) events.health(c.member.name, h);
      }),
    );
    undo.push(control.exports.onChange(refreshSoon));

    // Heartbeats say the agent lives; these probes say the node's data path does (docs/gateway.md).
    let probe: DatapathProbe | null = null;
    if (cfg.probe.port !== 0) {
      const p = new DatapathProbe({
        timing: { intervalMs: cfg.probe.intervalMs, fall: cfg.probe.fall, rise: cfg.probe.rise },
        source: cfg.interconnect.address,
        vni: cfg.vxlan.vni,
        vxlanPort: cfg.vxlan.port,
        gatewayMac: GATEWAY_MAC,
        clusterAddress: defaultClusterAddress(cfg),
        probePort: cfg.probe.port,
        innerLength: cfg.interconnect.mtu - VXLAN_OVERHEAD,
        members: () => control.membership.members(),
        generation: () => control.membership.generation,
        onTransition: (name, t) => control.membership.setReachable(name, t.reachable, t.reason),
        canForward: () => cfg.outside.interfaces.some(linkUp),
        log: log.child({ component: 'probe' }),
      });
      undo.push(
        control.membership.onChange((c) => {
          if (c.kind === 'joined') p.reset(c.member.id);
        }),
      );
      await p.start();
      undo.push(() => p.close());
      probe = p;
    }
    const status = new StatusRoutes({
      name: cfg.name,
      datapath: cfg.datapath.mode,
      clusterAddresses: cfg.switch.clusterAddresses.map((c) => String((c as { address: unknown }).address)),
      members: () => control.membership.members(),
      healthOf: (node) => control.membership.healthOf(node),
      skippedFor: (key) => backend.skippedFor(key),
      exports: () => control.exports.list(),
      entries: () => backend.listEntries(),
      connections: (limit) => backend.listConnections({ limit }),
      explain: (packet) => backend.explain(packet, { updateTables: false }),
      rates,
      events,
    });
    undo.push(() => status.close());
    let kernelError = '';
    const sampleRates = async (): Promise<void> => {
      await process.refreshCounters();
      const totals: [number, number, number][] = [];
      datapath.packetsByNode.forEach((p, id) => {
        if (p > 0) totals.push([id, p, datapath.bytesByNode[id]!]);
      });
      for (const [name, c] of process.counters) {
        const m = /^n_(\d+)$/.exec(name);
        if (m) totals.push([Number(m[1]), c.packets, c.bytes]);
      }
      rates.sample(Date.now(), totals);
      const err = fastpath?.lastError ?? '';
      if (err !== kernelError && err !== '') events.add('kernel', `the kernel refused a change: ${err}`);
      kernelError = err;
    };
    let sampling = false;
    const sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      void sampleRates().finally(() => {
        sampling = false;
      });
    }, STATUS_SAMPLE_EVERY_MS);
    undo.push(() => clearInterval(sampler));
    refreshNow();
    if (fastpath !== null) {
      await fastpath.settled();
      if (fastpath.lastError !== '' && fastpath.applied === null)
        throw new Error(`the kernel refused the fast path: ${fastpath.lastError}`);
      await process.refreshCounters();
    }
    datapath.start();
    if (cfg.host.manage) {
      // tell the outside networks who has the cluster addresses now (a previous gateway may have)
      void announceClusterAddresses(vips, cfg.outside.interfaces).then((failed) => {
        const runs = vips.length * cfg.outside.interfaces.length;
        process.announcements.arpSent += ARPING_COUNT * (runs - failed.length);
        process.announcements.arpFailed += failed.length;
        if (failed.length > 0)
          log.warn({ failed }, 'cluster addresses not announced; neighbours learn them at their next ARP');
        else log.info({ interfaces: cfg.outside.interfaces }, 'cluster addresses announced (gratuitous ARP)');
      });
      // IPv6: unsolicited neighbour advertisements of our own (the kernel sends none for proxy NDP)
      if (vips6.length > 0) {
        const stopAdvertising = new AbortController();
        undo.push(() => stopAdvertising.abort());
        void advertiseClusterAddresses6({
          vips6,
          outside: cfg.outside.interfaces,
          signal: stopAdvertising.signal,
          onResult: (sent) => {
            if (sent) process.announcements.naSent++;
            else process.announcements.naFailed++;
          },
        }).then(({ sent, failed }) => {
          if (failed.length > 0)
            log.warn(
              { failed, sent },
              'IPv6 cluster addresses not all advertised; neighbours learn them at their next solicitation',
            );
          else
            log.info(
              { interfaces: cfg.outside.interfaces, sent },
              'IPv6 cluster addresses advertised (unsolicited neighbour advertisements)',
            );
        });
      }
    }
    undo.push(() => datapath.stop());
    const sweep = setInterval(() => sw.sweep(Date.now()), SWEEP_EVERY_MS);
    undo.push(() => clearInterval(sweep));

    // The RPC services the switch hands to the gateway (portmap, MOUNT EXPORT, stale NFS handles),
    // listening on the cluster addresses, which are local now; they follow the table's entries.
    // The agents tell us each spliced flow's offsets; from then on the data path shifts the client's
    // segments itself and sends them to the node's kernel (docs/splice.md). Only from members.
    // Every agent tells every gateway (docs/splice.md, "Several gateways"): this one also binds the flows
    // it did not hand over itself, so a router that moves one here sends its FIN and RST to the agent.
    // The sender of the datagram being read, looked up once per datagram (isMember comes first, then
    // its records, up to 60, synchronously): a refresh brings a datagram per 60 flows and agent.
    let shiftSender: { address: string; member: MemberRecord | undefined } = {
      address: '',
      member: undefined,
    };
    undo.push(control.membership.onChange(() => (shiftSender = { address: '', member: undefined })));
    const memberAt = (address: string) =>
      shiftSender.address === address ? shiftSender.member : control.membership.memberAt(address);
    let resync: Resync | null = null;
    const shiftSocket = await openShiftSocket({
      address: cfg.interconnect.address,
      port: cfg.splice.port,
      isMember: (address) => {
        shiftSender = { address, member: control.membership.memberAt(address) };
        return shiftSender.member !== undefined;
      },
      shifts: {
        setShift: (shift, from) => {
          resync?.heard(from);
          wing.setShift(shift, from);
          const m = memberAt(from);
          if (m !== undefined && shift.clientAddr6 !== undefined && shift.clusterAddr6 !== undefined)
            sw.bindSplicedFlow6(
              shift.clientAddr6,
              shift.clientPort,
              shift.clusterAddr6,
              shift.clusterPort,
              m.id,
            );
          else if (m !== undefined && shift.clusterAddr !== 0)
            sw.bindSplicedFlow(
              shift.clientAddr,
              shift.clientPort,
              shift.clusterAddr,
              shift.clusterPort,
              m.id,
            );
        },
      },
      onResyncDone: (from, flows) => resync?.done(from, flows),
      log: log.child({ component: 'splice' }),
    });
    undo.push(shiftSocket.close);
    wing.useDatagrams(shiftSocket.send);
    if (fastpath !== null) {
      // The kernel data path: the gateway's tc program shifts and routes spliced flows' client segments
      // (docs/splice.md, "In the kernel"); without it user space does, as in tun mode.
      const slog = log.child({ component: 'splice' });
      try {
        const k = await KernelSplice.open({
          dir: kspliceDir(cfg.host.state),
          side: 'gateway',
          devices: cfg.outside.interfaces,
        });
        undo.push(() => k.close(keep));
        const markBase = cfg.datapath.markBase;
        const shifts = new KernelShifts({
          map: k,
          markOf: (address) => {
            const m = memberAt(address);
            return m === undefined ? undefined : (markBase + m.id) >>> 0;
          },
        });
        const adopted = k.adopted ? shifts.adopt(Date.now()) : 0;
        wing.useKernel(shifts, () => k.counters().gatewayShifted);
        backend.setSplicedInKernel((addr, port, clusterPort) => {
          if (addr.includes(':')) {
            const a6 = parseIpv6(addr);
            return shifts.has(a6, port, clusterPort)
              ? k.gatewayPackets6({ clientAddr: a6, clientPort: port, clusterPort })
              : -1;
          }
          return shifts.has(parseIpv4(addr), port, clusterPort)
            ? k.gatewayPackets({ clientAddr: parseIpv4(addr), clientPort: port, clusterPort })
            : -1;
        });
        const t = setInterval(() => shifts.sweep(Date.now()), KERNEL_SWEEP_MS);
        undo.push(() => clearInterval(t));
        slog.info({ devices: k.devices, adopted }, 'spliced client segments shifted in the kernel (tc)');
      } catch (err) {
        slog.error(
          { err: err instanceof Error ? err.message : String(err) },
          'cannot shift spliced segments in the kernel; user space does',
        );
      }
    }
    // The agents' spliced flows, before a router may send any of them here (a gateway that starts, or
    // comes back, was not told their offsets).
    resync = new Resync({
      agents: control.membership
        .members()
        .filter((m) => m.state !== 'down' && m.state !== 'unreachable')
        .map((m) => m.internalAddress),
      send: (message, address) => shiftSocket.send(message, address, cfg.splice.port),
    });
    const resynced = await resync.run();
    resync = null;
    if (resynced.asked > 0)
      log
        .child({ component: 'splice' })
        [resynced.answered < resynced.asked || resynced.missing > 0 ? 'warn' : 'info'](
          resynced,
          'spliced flows asked of the agents',
        );
    // explain and onehostctl conns show a spliced flow's offsets (both data paths)
    backend.setSpliceShifts((addr, port, clusterPort) => {
      const sh = wing.shiftOf(addr.includes(':') ? parseIpv6(addr) : parseIpv4(addr), port, clusterPort);
      return sh === undefined
        ? undefined
        : { seqOffset: sh.sOff | 0, tsOffset: sh.tsOff | 0, nodePort: sh.nodePort };
    });
    const splice = new Splice({
      sw,
      flows: wing,
      idleMs: cfg.splice.idleMs,
      maxRecord: cfg.splice.maxRecord,
      log: log.child({ component: 'splice' }),
    });
    const rpc = new RpcResponders({
      addresses: [...ipv4ClusterAddresses(cfg), ...ipv6ClusterAddresses(cfg)],
      exports: () => clusterExports(control.membership.members(), control.exports.list()),
      log: log.child({ component: 'rpc' }),
      splice,
    });
    undo.push(() => rpc.close());
    const followTable = (): void => {
      const ports = clusterRpcPorts(backend.listEntries().entries);
      wing.setSplicePorts([ports.mount.tcp, ports.nfs.tcp].filter((p): p is number => p !== undefined));
      void rpc.reconcile(backend.listEntries().entries);
    };
    backend.onSwap(followTable);
    followTable();
    await rpc.reconcile(backend.listEntries().entries);

    let metrics: Server | null = null;
    if (cfg.metrics !== null) {
      const reg = buildRegistry({
        sw,
        datapath,
        control,
        queue,
        sender,
        nodeName: (id) => sw.snapshot?.nodes.nameOf(id),
        failOpen: () => backend.failOpen,
        kernel: process,
        probe,
        flowSync,
      });
      registerRpcMetrics(reg, {
        responders: rpc,
        exports: control.exports,
        switchCounters: sw.counters,
        splice,
      });
      // one read of the kernel's counters per scrape, shared by every metric
      const srv = await serveMetrics(
        reg,
        cfg.metrics.host,
        cfg.metrics.port,
        () => process.refreshCounters(),
        (req, res) => status.handle(req, res),
      );
      metrics = srv;
      undo.push(() => new Promise((r) => srv.close(r)));
    }
    const addr = metrics?.address();
    log.info(
      {
        tun: queue.name,
        control: `${control.host}:${control.port}`,
        metrics: addr && typeof addr === 'object' ? `${addr.address}:${addr.port}` : null,
        clusterAddresses: cfg.switch.clusterAddresses,
        rpc: rpc.listening(),
        datapath: cfg.datapath.mode,
      },
      'ready',
    );
    // data path and control plane are up: only now may the router send clients here (not while an
    // operator has this gateway drained)
    ready = true;
    if (!drained) void announcer.announce();
    registry.changed();
    let closed = false;
    return {
      control,
      sw,
      backend,
      datapath,
      rpc,
      registry,
      fastpath,
      stopped: process.stopped,
      announcer,
      reload,
      metricsPort: addr && typeof addr === 'object' ? addr.port : null,
      async close(opts = {}) {
        if (closed) return;
        closed = true;
        keep = opts.keepDatapath === true;
        // withdrawn while everything still forwards: the router has moved new flows before we go
        await announcer.withdraw().catch((e: Error) => log.warn({ problem: e.message }, 'withdraw failed'));
        await unwind();
      },
    };
  } catch (e) {
    await unwind();
    throw e;
  }
}

/**
 * linkUp: whether interface `name` may carry packets (its operstate is not down; `unknown`, as of a
 * TUN or dummy device, counts as up). One small read of sysfs per probe round.
 */
function linkUp(name: string): boolean {
  try {
    const state = readFileSync(`/sys/class/net/${name}/operstate`, 'utf8').trim();
    return state !== 'down' && state !== 'lowerlayerdown' && state !== 'notpresent';
  } catch {
    return false;
  }
}

/** How often the gateway's spliced-flow entries in the kernel are checked for their end. */
const KERNEL_SWEEP_MS = 5000;

/**
 * kspliceDir is where the gateway mounts the bpffs for its tc program: beside the host state file,
 * without dots (libbpf turns them into underscores in the maps' pin paths).
 */
export function kspliceDir(stateFile: string): string {
  return join(dirname(stateFile), `${basename(stateFile).replace(/\./g, '-')}-bpf`);
}

/** fastPathLayout lays the kernel data path out from the configuration (docs/fastpath.md). */
/** flowSyncPeers lists the gateways this one shares connections with (none without `flowSync`). */
export function flowSyncPeers(cfg: GatewayConfig): SyncPeer[] {
  if (cfg.flowSync === null || cfg.datapath.mode !== 'kernel') return [];
  return syncPeers(cfg.interconnect.address, cfg.interconnect.gateways, cfg.flowSync.port);
}

export function fastPathLayout(cfg: GatewayConfig): FastPathLayout {
  const d = cfg.datapath;
  return {
    shareFlows: flowSyncPeers(cfg).length > 0,
    table: d.table,
    device: d.device,
    outside: cfg.outside.interfaces,
    vips: ipv4ClusterAddresses(cfg).map(parseIpv4),
    vips6: ipv6ClusterAddresses(cfg),
    source: cfg.interconnect.address,
    vni: cfg.vxlan.vni,
    vxlanPort: cfg.vxlan.port,
    innerMtu: cfg.interconnect.mtu - VXLAN_OVERHEAD,
    markBase: d.markBase,
    tableBase: d.tableBase,
    rulePref: d.rulePref,
    guard: { ...d.guard },
  };
}

/** defaultClusterAddress is the IPv4 cluster address marked default (the first when none is). */
function defaultClusterAddress(cfg: GatewayConfig): string {
  const cas = (cfg.switch.clusterAddresses as { address: unknown; default?: unknown }[]).filter(
    (c) => !String(c.address).includes(':'),
  );
  return String((cas.find((c) => c.default === true) ?? cas[0])?.address);
}

/** ipv4ClusterAddresses lists the IPv4 cluster addresses of the configuration, as written. */
function ipv4ClusterAddresses(cfg: GatewayConfig): string[] {
  return cfg.switch.clusterAddresses
    .map((c) => String((c as { address: unknown }).address))
    .filter((a) => !a.includes(':'));
}

/**
 * ipv6ClusterAddresses lists the IPv6 cluster addresses as `ip` prints them (RFC 5952), so the host's
 * journal and rules compare equal to what the kernel shows.
 */
function ipv6ClusterAddresses(cfg: GatewayConfig): string[] {
  return cfg.switch.clusterAddresses
    .map((c) => String((c as { address: unknown }).address))
    .filter((a) => a.includes(':'))
    .map((a) => ipv6ToString(parseIpv6(a)));
}

function managementList(cfg: GatewayConfig): string[] {
  const m = cfg.switch.management as { allow?: unknown } | undefined;
  return Array.isArray(m?.allow) ? m.allow.map(String) : [];
}
