import { type ClientTls, connectExports, describeError, statusName } from '@onehost/control';
import { Endianness, type RegisterMountResponse, Transport } from '@onehost/proto';
import type { Logger } from 'pino';
import type { MountPortRestore } from './config.js';
import { ganeshaExports, type NodeExport } from './ganesha-config.js';
import { type MountdPorts, mountdPorts } from './rpcbind.js';

/** Where the node's NFS server keeps the export id in its handles (nfs-ganesha 4.x: bytes 2-3, big-endian). */
export interface HandleLayout {
  offset: number;
  length: number;
  endian: 'big' | 'little';
}

export const GANESHA_LAYOUT: HandleLayout = { offset: 2, length: 2, endian: 'big' };

/** MountOptions say where the agent finds the node's MOUNT service and exports. */
export interface MountOptions {
  /** the node's portmapper (default 127.0.0.1:111). */
  rpcbind: { host: string; port: number };
  /** nfs-ganesha's configuration, read for its EXPORT blocks at every check. */
  ganeshaConfig?: string;
  /** exports given directly (with or instead of the configuration). */
  exports?: NodeExport[];
  handleLayout: HandleLayout;
  /** how often the ports and exports are checked (default 1000 ms). */
  intervalMs?: number;
}

export interface MountRegistrarOptions extends MountOptions {
  gateway: string;
  tls: ClientTls;
  nodeName: string;
  log: Logger;
  /** deadline of RegisterMount (default 2000 ms). */
  deadlineMs?: number;
  /**
   * Told the source ports the node must restore whenever they change: its mountd ports that differ
   * from the cluster's MOUNT ports, per transport. Awaited before the next check.
   */
  onRestores: (restores: MountPortRestore[]) => Promise<void>;
}

/** What was registered last, to see changes. */
interface Registration {
  ports: MountdPorts;
  exports: NodeExport[];
}

/** restoresFor pairs the node's mountd ports with the cluster's MOUNT ports (a port equal to its cluster port needs nothing). */
export function restoresFor(node: MountdPorts, cluster: MountdPorts): MountPortRestore[] {
  const out: MountPortRestore[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const nodePort = node[proto];
    const clusterPort = cluster[proto];
    if (nodePort !== undefined && clusterPort !== undefined && nodePort !== clusterPort)
      out.push({ proto, nodePort, clusterPort });
  }
  return out;
}

function clusterPortsOf(r: RegisterMountResponse): MountdPorts {
  const out: MountdPorts = {};
  for (const p of r.clusterMountPorts) {
    if (p.transport === Transport.TRANSPORT_TCP) out.tcp = p.port;
    if (p.transport === Transport.TRANSPORT_UDP) out.udp = p.port;
  }
  return out;
}

/**
 * MountRegistrar keeps the gateway's picture of this node's MOUNT service current (patent Figs. 7-8:
 * the Cluster Export Table and the Mount Port Table come from these registrations). At every check it
 * asks the node's rpcbind for mountd's ports (GETPORT 100005 v3, UDP and TCP: nfs-ganesha picks new
 * random ones at each start unless MNT_Port is set) and reads the exports; when anything changed, or
 * after a (re)join, it calls RegisterMount. The answer names the cluster's MOUNT ports, to which the
 * node must restore its mountd replies' source port (the gateway rewrote the destination inbound,
 * claim 3). While mountd is not registered (the server restarting) the last registration stays.
 * Problems are logged once each until they change; nothing here ends the agent.
 */
export class MountRegistrar {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private registered: Registration | null = null;
  private registeredKey = '';
  private force = true;
  private stopped = false;
  /** the restores last handed to onRestores, and those the last registration calls for (JSON). */
  private restores = '[]';
  private wantRestores = '[]';
  private lastProblem = '';
  private readonly intervalMs: number;

  constructor(private readonly o: MountRegistrarOptions) {
    this.intervalMs = o.intervalMs ?? 1000;
  }

  /** start checks now and then every interval. */
  start(): void {
    if (this.timer !== null || this.stopped) return;
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    void this.check();
  }

  /** joined registers again at the next check (a node that left, or a gateway that restarted, may have lost it). */
  joined(): void {
    this.force = true;
    if (this.timer !== null) void this.check();
  }

  /** stop ends the checks; resolves once a check in progress is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** check runs one check unless one is in progress; resolves when it is done. Never rejects. */
  check(): Promise<void> {
    if (this.running !== null) return this.running;
    this.running = this.once()
      .catch((err) => this.problem('warn', `mount registration: ${describeError(err)}`))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private problem(level: 'warn' | 'error', msg: string, extra: Record<string, unknown> = {}): void {
    if (msg === this.lastProblem) return;
    this.lastProblem = msg;
    this.o.log[level](extra, msg);
  }

  private async once(): Promise<void> {
    if (this.stopped) return;
    await this.register();
    // Applied apart from registering, so a failure here is retried at the next check.
    if (this.wantRestores !== this.restores) {
      const text = this.wantRestores;
      await this.o.onRestores(JSON.parse(text) as MountPortRestore[]);
      this.restores = text;
    }
  }

  private async register(): Promise<void> {
    const o = this.o;
    const exports = [...(o.exports ?? [])];
    if (o.ganeshaConfig !== undefined) exports.push(...(await ganeshaExports(o.ganeshaConfig)));
    let ports: MountdPorts;
    try {
      ports = await mountdPorts(o.rpcbind);
    } catch (err) {
      ports = {};
      this.problem('warn', `cannot ask rpcbind for mountd: ${describeError(err)}`);
    }
    if (ports.tcp === undefined && ports.udp === undefined) {
      // mountd is not registered: the server is (re)starting. Keep what the gateway has.
      if (exports.length > 0)
        this.problem('warn', 'mountd is not registered with rpcbind; the last registration stays', {
          rpcbind: `${o.rpcbind.host}:${o.rpcbind.port}`,
        });
      return;
    }
    const key = JSON.stringify({ ports, exports });
    if (key === this.registeredKey && !this.force) return;
    const force = this.force;
    this.force = false;
    const conn = connectExports(o.gateway, o.tls, { deadlineMs: o.deadlineMs ?? 2000 });
    let answer: RegisterMountResponse;
    try {
      answer = await conn.registerMount({
        nodeName: o.nodeName,
        mountPorts: [
          ...(ports.tcp !== undefined ? [{ transport: Transport.TRANSPORT_TCP, port: ports.tcp }] : []),
          ...(ports.udp !== undefined ? [{ transport: Transport.TRANSPORT_UDP, port: ports.udp }] : []),
        ],
        exports,
        handleLayout: {
          offset: o.handleLayout.offset,
          length: o.handleLayout.length,
          endianness:
            o.handleLayout.endian === 'big' ? Endianness.ENDIANNESS_BIG : Endianness.ENDIANNESS_LITTLE,
        },
      });
    } catch (err) {
      this.force = force;
      const code = statusName((err as { code?: unknown }).code);
      // A conflict (another node claims a path or an export id) or a bad field needs an operator.
      const level = code === 'ALREADY_EXISTS' || code === 'INVALID_ARGUMENT' ? 'error' : 'warn';
      this.problem(level, `the gateway refused the mount registration: ${describeError(err)}`, {
        exports,
        mountd: ports,
      });
      return;
    } finally {
      conn.close();
    }
    const cluster = clusterPortsOf(answer);
    this.registered = { ports, exports };
    this.registeredKey = key;
    this.lastProblem = '';
    o.log.info({ mountd: ports, exports, clusterMountPorts: cluster }, 'mount registered');
    this.wantRestores = JSON.stringify(restoresFor(ports, cluster));
  }

  /** last is what the gateway was told last (null before the first registration). */
  get last(): Readonly<Registration> | null {
    return this.registered;
  }
}
