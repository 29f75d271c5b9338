import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type Server, type Socket } from 'node:net';
import { setReceiveBuffer } from '@onehost/tun';
import { encodeRecord, OK, RECORD_TRUNCATED, RecordAssembler, RecordView } from '@onehost/wire';
import type { Logger } from 'pino';
import { HELD_RECEIVE_BUFFER, type Splice } from '../splice/handover.js';
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

/**
 * DEFAULT_UDP_QUEUE caps the replies waiting for room in a UDP socket's send buffer. Node queues them
 * without limit, and the buffer stays full while replies wait for neighbours that never answer (calls
 * from spoofed sources): the queue grew to 70,000 replies (170 MB) in the live fuzz and the real
 * clients' replies waited behind it for minutes.
 */
export const DEFAULT_UDP_QUEUE = 256;

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
    private readonly splice: Splice | null,
    private readonly udpQueue: number,
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
    /** TCP only: hold each connection until a record routes it, then hand it over (delayed binding). */
    splice?: Splice | null;
    /** UDP only: replies waiting to be sent, at most; more are dropped (`send_backlog`) */
    udpQueue?: number;
  }): Promise<RpcListener> {
    const l = new RpcListener(
      opts.transport,
      opts.address,
      opts.port,
      opts.dispatcher,
      opts.counters,
      opts.log,
      opts.limits ?? DEFAULT_TCP_LIMITS,
      opts.transport === 'tcp' ? (opts.splice ?? null) : null,
      opts.udpQueue ?? DEFAULT_UDP_QUEUE,
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
    const sock = createSocket({ type: isIPv6(this.address) ? 'udp6' : 'udp4' });
    const ctx = this.ctx('udp');
    sock.on('message', (msg, rinfo) => this.onDatagram(sock, msg, rinfo, ctx));
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

  /** onDatagram answers one UDP call; public for the unit test of the cases no socket can send. */
  onDatagram(
    sock: UdpSocket,
    msg: Uint8Array,
    rinfo: { address: string; port: number },
    ctx: { transport: Transport; localAddress: string; localPort: number },
  ): void {
    // source port 0: nowhere to answer (RFC 768), and dgram's send would throw
    if (rinfo.port === 0) {
      this.counters.drop(this.service, 'udp', 'no_reply_port');
      return;
    }
    let reply = this.dispatcher.handle(msg, ctx);
    if (reply === null) return;
    if (reply.length > MAX_UDP_PAYLOAD) reply = this.dispatcher.systemError(msg, 'udp');
    if (sock.getSendQueueCount() >= this.udpQueue) {
      this.counters.drop(this.service, 'udp', 'send_backlog');
      return;
    }
    try {
      sock.send(reply, rinfo.port, rinfo.address, (err) => {
        if (err) this.counters.drop(this.service, 'udp', 'send_error');
      });
    } catch {
      // a synchronous refusal (an address or port dgram will not send to) is a send error too
      this.counters.drop(this.service, 'udp', 'send_error');
    }
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
    if (this.splice !== null) {
      this.acceptSpliced(s, this.splice);
      return;
    }
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

  /**
   * acceptSpliced serves a connection of a payload-routed port (MOUNT, NFS) until one of its records
   * routes to a node: the records before it (libnfs sends NULL first) are answered here, then the
   * connection is handed over with that record and everything after it.
   */
  private acceptSpliced(s: Socket, splice: Splice): void {
    this.sockets.add(s);
    // What this socket acknowledges goes to the node in the handover: keep its window from growing
    // (docs/splice.md). Per socket, not on the listener: a small listener buffer would also shrink
    // the window scale the SYN cookie settles, which the node's window goes through for good.
    try {
      setReceiveBuffer(
        (s as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1,
        HELD_RECEIVE_BUFFER,
      );
    } catch {
      // a socket already gone: its close handler counts it
    }
    const ctx = this.ctx('tcp');
    const view = new RecordView();
    let pending: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (outcome: Parameters<Splice['count']>[0], reset: boolean): void => {
      if (done) return;
      done = true;
      splice.count(outcome);
      if (reset) s.resetAndDestroy();
      else s.destroy();
    };
    s.setTimeout(splice.o.idleMs, () => finish('idle_timeout', true));
    s.on('error', () => undefined);
    s.on('close', () => {
      this.sockets.delete(s);
      if (!done) {
        done = true;
        splice.count('closed_by_client');
      }
    });
    s.on('data', (chunk: Buffer) => {
      if (done) return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const code = view.bind(pending, 0, pending.length, splice.o.maxRecord);
        let record: Buffer;
        if (code === OK) record = pending.subarray(0, view.len);
        else if (code === RECORD_TRUNCATED && pending.length < splice.o.maxRecord) return;
        // Longer than maxRecord (a reconnecting client replays 1 MiB WRITEs): its call header and file
        // handle come first, so it routes on what arrived; what does not route there is reset.
        else record = pending.subarray(0, splice.o.maxRecord);
        const to = splice.route(s, record);
        if (to === null && code !== OK) {
          finish('record_too_large', true);
          return;
        }
        if (to !== null) {
          done = true;
          s.pause();
          s.setTimeout(0);
          // bytes Node read ahead into the stream belong to the node as well
          const ahead = s.read() as Buffer | null;
          const data = ahead === null ? pending : Buffer.concat([pending, ahead]);
          void splice.handover(s, data, to);
          return;
        }
        const msg = view.fragments === 1 ? pending.subarray(4, view.len) : joinFragments(view);
        const reply = this.dispatcher.handle(msg, ctx);
        if (reply === null) {
          finish('not_rpc', true);
          return;
        }
        s.write(encodeRecord(reply));
        pending = pending.subarray(view.len);
        if (pending.length === 0) return;
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

/** joinFragments copies a multi-fragment record's payload (RFC 5531 §11) into one buffer. */
function joinFragments(v: RecordView): Uint8Array {
  const out = new Uint8Array(v.recordLength);
  let p = v.off;
  let o = 0;
  for (let i = 0; i < v.fragments; i++) {
    const len =
      ((v.buf[p]! << 24) | (v.buf[p + 1]! << 16) | (v.buf[p + 2]! << 8) | v.buf[p + 3]!) & 0x7fffffff;
    out.set(v.buf.subarray(p + 4, p + 4 + len), o);
    o += len;
    p += 4 + len;
  }
  return out;
}
