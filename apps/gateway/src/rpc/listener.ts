import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { encodeRecord, OK, RecordAssembler } from '@onehost/wire';
import type { Logger } from 'pino';
import type { RpcCounters, Transport } from './counters.js';
import type { RpcDispatcher } from './dispatch.js';

/** Limits of one TCP listener: the gateway's own RPC services see little traffic and no bulk data. */
export interface TcpLimits {
  /** connections at once; more are closed at accept (counted `connection_limit`). */
  maxConnections: number;
  /** a connection idle this long is closed. */
  idleMs: number;
  /** replies queued for a peer that does not read them, in bytes, before the connection is closed. */
  maxQueuedBytes: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = {
  maxConnections: 128,
  idleMs: 30_000,
  maxQueuedBytes: 1 << 20,
};

/** The largest UDP payload an IPv4 datagram carries (65535 − 20 − 8). */
const MAX_UDP_PAYLOAD = 65507;

/**
 * RpcListener serves one program on one cluster address and port, over UDP or TCP, with ordinary
 * sockets (the gateway host's stack delivers the switch's `local` decisions to them). Over TCP each
 * connection reassembles records (RFC 5531 §11) with the program's cap: a mark that passes it closes
 * the connection, since the stream cannot be resynchronised. Nothing here throws on what a peer sends.
 */
export class RpcListener {
  private udp: UdpSocket | null = null;
  private tcp: Server | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly transport: Transport,
    readonly address: string,
    readonly port: number,
    private readonly dispatcher: RpcDispatcher,
    private readonly counters: RpcCounters,
    private readonly log: Logger,
    private readonly limits: TcpLimits,
  ) {}

  /**
   * open binds `address:port` for `transport` and starts answering. Rejects with the bind error (e.g.
   * EADDRINUSE when another portmapper holds the port, EADDRNOTAVAIL when the address is not local).
   */
  static async open(opts: {
    transport: Transport;
    address: string;
    port: number;
    dispatcher: RpcDispatcher;
    counters: RpcCounters;
    log: Logger;
    limits?: TcpLimits;
  }): Promise<RpcListener> {
    const l = new RpcListener(
      opts.transport,
      opts.address,
      opts.port,
      opts.dispatcher,
      opts.counters,
      opts.log,
      opts.limits ?? DEFAULT_TCP_LIMITS,
    );
    if (opts.transport === 'udp') await l.openUdp();
    else await l.openTcp();
    return l;
  }

  /** boundPort is the port actually bound (differs from `port` when that was 0). */
  get boundPort(): number {
    const a = this.udp?.address() ?? this.tcp?.address();
    return a !== null && typeof a === 'object' ? a.port : this.port;
  }

  private get service() {
    return this.dispatcher.program.service;
  }

  private ctx(transport: Transport) {
    return { transport, localAddress: this.address, localPort: this.port };
  }

  private openUdp(): Promise<void> {
    const sock = createSocket({ type: 'udp4' });
    const ctx = this.ctx('udp');
    sock.on('message', (msg, rinfo) => {
      let reply = this.dispatcher.handle(msg, ctx);
      if (reply === null) return;
      if (reply.length > MAX_UDP_PAYLOAD) reply = this.dispatcher.systemError(msg, 'udp');
      sock.send(reply, rinfo.port, rinfo.address, (err) => {
        if (err) this.counters.drop(this.service, 'udp', 'send_error');
      });
    });
    return new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: this.address, port: this.port, exclusive: true }, () => {
        sock.off('error', reject);
        // ICMP errors and the like surface here; none of them may end the gateway.
        sock.on('error', (err) => this.log.warn({ err: err.message }, 'udp socket error'));
        this.udp = sock;
        resolve();
      });
    });
  }

  private openTcp(): Promise<void> {
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    server.maxConnections = this.limits.maxConnections;
    server.on('drop', () => this.counters.drop(this.service, 'tcp', 'connection_limit'));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.address, port: this.port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.warn({ err: err.message }, 'tcp listener error'));
        this.tcp = server;
        resolve();
      });
    });
  }

  private accept(s: Socket): void {
    this.sockets.add(s);
    const ctx = this.ctx('tcp');
    const service = this.service;
    s.setTimeout(this.limits.idleMs, () => s.destroy());
    s.on('error', () => undefined); // resets and the like: the close handler cleans up
    s.on('close', () => this.sockets.delete(s));
    const records = new RecordAssembler(
      (buf, off, len) => {
        const reply = this.dispatcher.handle(buf.subarray(off, off + len), ctx);
        if (reply === null || s.destroyed) return;
        if (s.writableLength > this.limits.maxQueuedBytes) {
          this.counters.drop(service, 'tcp', 'slow_reader');
          s.destroy();
          return;
        }
        s.write(encodeRecord(reply));
      },
      { maxRecordSize: this.dispatcher.program.maxRecordSize },
    );
    s.on('data', (chunk: Buffer) => {
      let code: number;
      try {
        code = records.push(chunk);
      } catch {
        code = -1; // the handler never throws; should it, the stream position is lost all the same
      }
      if (code !== OK) {
        this.counters.drop(service, 'tcp', 'record_error');
        s.destroy();
      }
    });
  }

  /** close stops listening and ends every connection. */
  async close(): Promise<void> {
    const udp = this.udp;
    this.udp = null;
    if (udp !== null) await new Promise<void>((r) => udp.close(() => r()));
    const tcp = this.tcp;
    this.tcp = null;
    for (const s of this.sockets) s.destroy();
    if (tcp !== null) await new Promise<void>((r) => tcp.close(() => r()));
  }
}
