import { Server, ServerCredentials } from '@grpc/grpc-js';
import {
  ExportsService,
  GatewayService,
  MembershipService,
  SERVICE_NAMES,
  SwitchService,
} from '@onehost/proto';
import { HealthImplementation } from 'grpc-health-check';
import type { Clock } from './clock.js';
import { type ClusterConfig, checkClusterConfig } from './cluster-config.js';
import { ExportsRegistry } from './exports-registry.js';
import { followStore } from './follow-store.js';
import type { GatewayRegistry } from './gateway-registry.js';
import { type Logger, silentLogger } from './logger.js';
import { Membership } from './membership.js';
import type { PortRange } from './port-blocks.js';
import { addReflection } from './reflection.js';
import { RpcCounters } from './rpc-counters.js';
import { exportsService } from './services/exports-service.js';
import { gatewayService } from './services/gateway-service.js';
import { membershipService, type OpenStreams } from './services/membership-service.js';
import { switchService } from './services/switch-service.js';
import type { ControlStore } from './store/control-store.js';
import { FileStore } from './store/file-store.js';
import type { StoreContents } from './store/records.js';
import type { GatewayBackend, SwitchBackend } from './switch-backend.js';

/** ServerTls is the gateway's certificate and key and the cluster CA that client certificates need. */
export interface ServerTls {
  caPem: string | Buffer;
  certPem: string | Buffer;
  keyPem: string | Buffer;
}

export interface ControlServerOptions {
  /** address to listen on (default 127.0.0.1). */
  host?: string;
  /** port (default 0: any free port; read it back from `ControlServer.port`). */
  port?: number;
  tls: ServerTls;
  cluster: ClusterConfig;
  /** the store; default a FileStore at `storePath` (in memory only when that is absent too). */
  store?: ControlStore;
  storePath?: string;
  /** ephemeral range for port blocks (default 32768-60999) and ports per block (default 1024). */
  portRange?: PortRange;
  blockSize?: number;
  /** defaults 200 ms and 1000 ms (DEFAULT_HEARTBEAT_*). */
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /**
   * the cluster's MOUNT ports by transport (the switch's `mount` entries), told to nodes in the
   * RegisterMount answer so they restore their mountd replies' source port; read at each call, since
   * operators may change the entries. Absent: no MOUNT port is routed.
   */
  clusterMountPorts?: () => { tcp?: number; udp?: number };
  /** the gateway's message switch, for the Switch service (UNIMPLEMENTED without it; Drain works). */
  switchBackend?: SwitchBackend;
  /** the gateway process, for the Gateway service (UNIMPLEMENTED without it). */
  gatewayBackend?: GatewayBackend;
  /** the gateway registry, for ListGateways and DrainGateway (UNIMPLEMENTED without it). */
  gatewayRegistry?: GatewayRegistry;
  logger?: Logger;
  clock?: Clock;
  /** how long close() lets calls finish before cutting them (default 1000 ms). */
  shutdownGraceMs?: number;
}

/** ControlServer is a running control plane. */
export interface ControlServer {
  readonly host: string;
  /** the bound port. */
  readonly port: number;
  readonly membership: Membership;
  readonly exports: ExportsRegistry;
  readonly counters: RpcCounters;
  /** setServing switches the health status of every service (e.g. NOT_SERVING while draining). */
  setServing(serving: boolean): void;
  /** close stops serving: health NOT_SERVING, streams ended, calls given the grace period, store flushed. */
  close(): Promise<void>;
}

/**
 * startControlServer loads the store, binds the gRPC server (mutual TLS: every connection needs a
 * certificate from the cluster CA) and serves Membership, Exports, Switch, grpc.health.v1 and
 * reflection. Throws RangeError for a bad configuration, StoreFileError for a bad store file, and
 * the bind error when the address is taken.
 */
export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  checkClusterConfig(opts.cluster);
  const logger = opts.logger ?? silentLogger();
  const store = opts.store ?? new FileStore(opts.storePath ?? null);
  let contents: StoreContents;
  try {
    contents = await store.load();
  } catch (err) {
    await store.close();
    throw err;
  }
  const membership = new Membership({
    store,
    contents,
    ...(opts.portRange !== undefined ? { portRange: opts.portRange } : {}),
    ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
    ...(opts.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}),
    ...(opts.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: opts.heartbeatTimeoutMs } : {}),
    ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
    logger,
  });
  const exports = new ExportsRegistry({
    store,
    contents,
    membership,
    ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
    logger,
  });
  // another gateway's changes from the loaded revision on (a shared store)
  try {
    await followStore(store, membership, exports);
  } catch (err) {
    membership.close();
    await store.close();
    throw err;
  }
  const counters = new RpcCounters();
  const ctx = { counters, log: logger.child({ component: 'grpc' }) };
  const watchers: OpenStreams = new Set();

  const server = new Server();
  server.addService(MembershipService, membershipService(ctx, membership, opts.cluster, watchers));
  server.addService(
    ExportsService,
    exportsService(ctx, exports, membership, opts.clusterMountPorts ?? (() => ({}))),
  );
  server.addService(SwitchService, switchService(ctx, opts.switchBackend, membership));
  server.addService(GatewayService, gatewayService(ctx, opts.gatewayBackend, opts.gatewayRegistry));
  const names = ['', ...SERVICE_NAMES];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, 'SERVING' as const])));
  health.addToServer(server);
  addReflection(server);

  const host = opts.host ?? '127.0.0.1';
  const creds = ServerCredentials.createSsl(
    Buffer.from(opts.tls.caPem),
    [{ cert_chain: Buffer.from(opts.tls.certPem), private_key: Buffer.from(opts.tls.keyPem) }],
    true,
  );
  const target = `${host.includes(':') ? `[${host}]` : host}:${opts.port ?? 0}`;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(target, creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
  } catch (err) {
    membership.close();
    await store.close();
    throw err;
  }
  ctx.log.info({ host, port, members: contents.members.length }, 'control plane serving');

  const setServing = (serving: boolean) => {
    for (const n of names) health.setStatus(n, serving ? 'SERVING' : 'NOT_SERVING');
  };
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      setServing(false);
      membership.close();
      for (const w of [...watchers]) w.end();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, opts.shutdownGraceMs ?? 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await store.close();
      ctx.log.info('control plane stopped');
    })();
    return closing;
  };
  return { host, port, membership, exports, counters, setServing, close };
}
