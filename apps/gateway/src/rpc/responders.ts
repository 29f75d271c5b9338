import type { ExportEntry } from '@onehost/wire';
import type { Logger } from 'pino';
import type { Splice } from '../splice/handover.js';
import {
  type ClusterRpcPorts,
  clusterRpcPorts,
  type EntryLike,
  RPC_FUNCTIONS,
  type RpcService,
} from './cluster-ports.js';
import { RpcCounters, type Transport } from './counters.js';
import { RpcDispatcher, type RpcProgram } from './dispatch.js';
import { DEFAULT_TCP_LIMITS, RpcListener, type TcpLimits } from './listener.js';
import { MountProgram } from './mount.js';
import { NfsProgram } from './nfs.js';
import { PortmapProgram } from './portmap.js';

export interface RpcRespondersOptions {
  /** the cluster addresses: every responder listens on each of them. */
  addresses: readonly string[];
  /** the exports the cluster serves now, for MOUNT EXPORT. */
  exports: () => readonly ExportEntry[];
  log: Logger;
  tcpLimits?: TcpLimits;
  /** delayed binding for MOUNT and NFS over TCP (absent: those connections stay with the gateway). */
  splice?: Splice;
}

/**
 * RpcResponders runs the ONC RPC services the gateway answers itself, on the ports the switch table
 * gives the `portmap`, `mount` and `nfs` functions (the switch hands those ports' `local` decisions to
 * the gateway host's stack, which delivers them to these sockets): the portmapper, MOUNT (EXPORT,
 * NULL, unmatched MNT) and NFS (NULL, stale handles). `reconcile` follows the table: listeners for
 * new entries are opened, those of removed entries closed. A port that cannot be bound is logged and
 * retried at the next reconcile; it never stops the gateway.
 */
export class RpcResponders {
  readonly counters = new RpcCounters();
  private readonly listeners = new Map<string, RpcListener>();
  private readonly failed = new Set<string>();
  private readonly dispatchers: Record<RpcService, RpcDispatcher>;
  private ports: ClusterRpcPorts = { portmap: {}, mount: {}, nfs: {} };
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly opts: RpcRespondersOptions) {
    const programs: Record<RpcService, RpcProgram> = {
      portmap: new PortmapProgram(() => this.ports),
      mount: new MountProgram(opts.exports),
      nfs: new NfsProgram(),
    };
    this.dispatchers = {
      portmap: new RpcDispatcher(programs.portmap, this.counters),
      mount: new RpcDispatcher(programs.mount, this.counters),
      nfs: new RpcDispatcher(programs.nfs, this.counters),
    };
  }

  /** clusterPorts are the RPC ports of the table last reconciled. */
  get clusterPorts(): ClusterRpcPorts {
    return this.ports;
  }

  /** listening lists the open listeners as "service transport address:port". */
  listening(): string[] {
    return [...this.listeners.keys()].sort();
  }

  /**
   * reconcile opens and closes listeners to match `entries` (the switch table). Calls are serialised;
   * resolves when this one is done. Never rejects: bind failures are logged (once per listener until it
   * succeeds) and tried again next time.
   */
  reconcile(entries: readonly EntryLike[]): Promise<void> {
    const run = async () => {
      if (this.closed) return;
      this.ports = clusterRpcPorts(entries);
      const want = new Map<
        string,
        { service: RpcService; transport: Transport; address: string; port: number }
      >();
      for (const e of entries) {
        if (!(RPC_FUNCTIONS as readonly string[]).includes(e.function)) continue;
        if (e.protocol !== 'udp' && e.protocol !== 'tcp') continue;
        const transport: Transport = e.protocol;
        for (const address of this.opts.addresses) {
          const spec = { service: e.function as RpcService, transport, address, port: e.port };
          want.set(keyOf(spec), spec);
        }
      }
      for (const [k, l] of this.listeners) {
        if (want.has(k)) continue;
        this.listeners.delete(k);
        await l.close();
        this.opts.log.info({ listener: k }, 'rpc responder closed');
      }
      for (const [k, spec] of want) {
        if (this.listeners.has(k)) continue;
        try {
          const l = await RpcListener.open({
            ...spec,
            dispatcher: this.dispatchers[spec.service],
            counters: this.counters,
            log: this.opts.log.child({ listener: k }),
            limits: this.opts.tcpLimits ?? DEFAULT_TCP_LIMITS,
            splice: spec.service === 'portmap' ? null : (this.opts.splice ?? null),
          });
          if (this.closed) {
            await l.close();
            return;
          }
          this.listeners.set(k, l);
          this.failed.delete(k);
          this.opts.log.info({ listener: k }, 'rpc responder listening');
        } catch (err) {
          if (!this.failed.has(k))
            this.opts.log.error(
              { listener: k, err: (err as Error).message },
              'rpc responder cannot listen; its calls go unanswered',
            );
          this.failed.add(k);
        }
      }
    };
    this.queue = this.queue.then(run, run);
    return this.queue;
  }

  /** close stops every listener. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
    const all = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(all.map((l) => l.close()));
  }
}

function keyOf(s: { service: string; transport: string; address: string; port: number }): string {
  return `${s.service} ${s.transport} ${s.address}:${s.port}`;
}
