import type { Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeHandover, HANDOVER_FLAG, HANDOVER_HEADER } from '@onehost/splice';
import { DecisionOut, KIND, type MessageSwitch, NO_PORT } from '@onehost/switch';
import { TCPI_OPT, tcpRepairDetach } from '@onehost/tun';
import {
  checksum,
  IPPROTO,
  parseIpv4,
  parseIpv6,
  pseudoHeaderSum6,
  put16,
  TCP_FLAGS,
  writeIpv4Header,
  writeTcpHeader,
} from '@onehost/wire';
import type { Logger } from 'pino';
import type { ClientTcpState } from './client-tcp.js';

/** What became of the TCP connections the gateway held for delayed binding (metric outcome label). */
export const SPLICE_OUTCOMES = [
  'handed_over',
  'closed_by_client',
  'idle_timeout',
  'record_too_large',
  'not_rpc',
  'handover_failed',
] as const;
export type SpliceOutcome = (typeof SPLICE_OUTCOMES)[number];

/** Where a record goes: a node (and the destination port there), or the gateway's own answer. */
export type SpliceRoute = { node: number; nodePort: number } | null;

/** The packet side of delayed binding the handover needs (SpliceWing). */
export interface SpliceFlows {
  /** the client's TCP state as last seen: an IPv4 address as a number, an IPv6 one as its 16 bytes */
  clientTcpState(client: number | Uint8Array, clientPort: number): ClientTcpState | undefined;
  forgetClient(client: number | Uint8Array, clientPort: number): void;
  sendHandover(node: number, message: Uint8Array): boolean;
  /** spliced client segments the gateway shifted itself, and those it sent to the agent */
  readonly splicedShifted: Float64Array;
  readonly splicedToAgent: Float64Array;
  /** spliced flows whose segments the gateway shifts itself */
  readonly shiftCount: number;
  /** spliced client segments the gateway's tc program shifted, and the flows it shifts (0 without it) */
  readonly splicedInKernel: number;
  readonly kernelFlows: number;
}

export interface SpliceOptions {
  sw: MessageSwitch;
  flows: SpliceFlows;
  /** how long a connection may stay with the gateway without a record that routes it */
  idleMs: number;
  /** the largest record the gateway reads before a handover */
  maxRecord: number;
  log: Logger;
  /** how long to wait for the client to acknowledge the gateway's own answers before giving up */
  ackWaitMs?: number;
}

/**
 * HELD_RECEIVE_BUFFER is the SO_RCVBUF of a held MOUNT or NFS connection (the kernel doubles it). What
 * its socket acknowledged goes to the node in the handover, which must carry it (64 KiB) and the node
 * must take within its first window (~64 KiB). A client that pipelines MiBs (libnfs replaying WRITEs
 * after a reconnect) would otherwise see its window grow with the gateway's autotuning.
 */
export const HELD_RECEIVE_BUFFER = 16 * 1024;

const fdOf = (s: Socket): number => (s as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;

/**
 * Splice is the gateway's half of delayed binding (docs/splice.md). The host's stack holds MOUNT and NFS
 * connections (SYN cookies, the NULL calls answered by the RPC listeners) until a record routes to a
 * node; then `handover` freezes the socket (TCP_REPAIR), tells the node's agent the connection's state
 * and bytes, binds the flow in the switch so its later segments go to that agent, and closes the socket
 * without a word to the client.
 */
export class Splice {
  readonly outcomes = new Map<SpliceOutcome, number>(SPLICE_OUTCOMES.map((o) => [o, 0]));
  private readonly probe = new Uint8Array(40 + 65_536);
  private readonly decision = new DecisionOut();
  private readonly msg = new Uint8Array(HANDOVER_HEADER + 65_536);
  private loggedFailure = false;

  constructor(readonly o: SpliceOptions) {}

  count(outcome: SpliceOutcome): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  /**
   * route asks the switch where the record (with its record mark) of a held connection goes: a dry run of
   * the packet that carried it (no table touched, no trace built). Null: the gateway answers it.
   */
  route(s: Socket, record: Uint8Array): SpliceRoute {
    const six = isIPv6(s.localAddress ?? '');
    const ipLen = six ? 40 : 20;
    const p = this.probe;
    const n = Math.min(record.length, p.length - ipLen - 20);
    if (six) {
      // RFC 8200 §3: version 6, payload length, next header TCP, hop limit 64
      p.fill(0, 0, 4);
      p[0] = 0x60;
      put16(p, 4, 20 + n);
      p[6] = IPPROTO.TCP;
      p[7] = 64;
      p.set(parseIpv6(s.remoteAddress ?? '::'), 8);
      p.set(parseIpv6(s.localAddress ?? '::'), 24);
    } else {
      const src = parseIpv4(s.remoteAddress ?? '0.0.0.0');
      const dst = parseIpv4(s.localAddress ?? '0.0.0.0');
      writeIpv4Header(p, 0, { src, dst, protocol: IPPROTO.TCP, payloadLength: 20 + n });
    }
    writeTcpHeader(p, ipLen, {
      srcPort: s.remotePort ?? 0,
      dstPort: s.localPort ?? 0,
      seq: 1,
      ack: 1,
      flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH,
    });
    p.set(record.subarray(0, n), ipLen + 20);
    // the switch reads IPv6's upper-layer checksum nowhere; set it all the same, the probe is a packet
    if (six) put16(p, 56, checksum(p, 40, 20 + n, pseudoHeaderSum6(p, 8, 24, IPPROTO.TCP, 20 + n)));
    const d = this.decision;
    if (this.o.sw.decideDry(p, 0, ipLen + 20 + n, d) !== KIND.FORWARD) return null;
    return { node: d.node, nodePort: d.port !== NO_PORT ? d.port : (s.localPort ?? 0) };
  }

  /**
   * handover passes the connection (paused, `data` = the routing record and every byte after it that the
   * application read) to `to.node`. Resolves true when handed over; false when it could not be (the
   * socket is then reset).
   */
  async handover(s: Socket, data: Uint8Array, to: { node: number; nodePort: number }): Promise<boolean> {
    const six = isIPv6(s.localAddress ?? '');
    const client6 = six ? parseIpv6(s.remoteAddress ?? '::') : undefined;
    const cluster6 = six ? parseIpv6(s.localAddress ?? '::') : undefined;
    const client: number | Uint8Array = client6 ?? parseIpv4(s.remoteAddress ?? '0.0.0.0');
    const clientPort = s.remotePort ?? 0;
    const cluster = six ? 0 : parseIpv4(s.localAddress ?? '0.0.0.0');
    const port = s.localPort ?? 0;
    const fd = fdOf(s);
    try {
      if (fd < 0) throw new Error('socket has no descriptor');
      // The gateway's answers (NULL …) must be acknowledged first: the node cannot resend them.
      const deadline = Date.now() + (this.o.ackWaitMs ?? 1000);
      let info = tcpRepairDetach(fd);
      while (info.sndNxt === undefined) {
        if (Date.now() > deadline || s.destroyed)
          throw new Error('the client did not acknowledge our answers');
        await delay(2);
        info = tcpRepairDetach(fd);
      }
      const unread = info.recvData ?? new Uint8Array(0);
      const total = data.length + unread.length;
      if (total > this.msg.length - HANDOVER_HEADER) throw new Error(`${total} bytes buffered`);
      const bytes = new Uint8Array(total);
      bytes.set(data, 0);
      bytes.set(unread, data.length);
      const ts = (info.options & TCPI_OPT.TIMESTAMPS) !== 0;
      const ws = (info.options & TCPI_OPT.WSCALE) !== 0;
      const seen = this.o.flows.clientTcpState(client, clientPort);
      const n = encodeHandover(
        {
          flags:
            (ts ? HANDOVER_FLAG.TIMESTAMPS : 0) |
            ((info.options & TCPI_OPT.SACK) !== 0 ? HANDOVER_FLAG.SACK : 0) |
            (ws ? HANDOVER_FLAG.WINDOW_SCALE : 0),
          clientAddr: typeof client === 'number' ? client : 0,
          clusterAddr: cluster,
          ...(client6 !== undefined && cluster6 !== undefined
            ? { clientAddr6: client6, clusterAddr6: cluster6 }
            : {}),
          clientPort,
          clusterPort: port,
          nodePort: to.nodePort,
          clientSeq: (info.rcvNxt! - total) >>> 0,
          serverSeq: info.sndNxt >>> 0,
          // tcpi_snd_mss is the client's MSS less the options every segment carries (RFC 7323 §3.2: 12)
          mss: Math.min(0xffff, info.sndMss + (ts ? 12 : 0)),
          clientWscale: ws ? info.sndWscale : 0,
          gatewayWscale: ws ? info.rcvWscale : 0,
          clientTsval: seen?.tsval ?? 0,
          gatewayTsval: info.tsNow! >>> 0,
          clientWindow: seen?.window ?? 0xffff,
          data: bytes,
        },
        this.msg,
      );
      if (n < 0) throw new Error('handover does not fit a datagram');
      // Bind first: from here on the client's segments go to the node's agent, not to this socket.
      const bound =
        typeof client === 'number'
          ? this.o.sw.bindSplicedFlow(client, clientPort, cluster, port, to.node)
          : this.o.sw.bindSplicedFlow6(client, clientPort, cluster6 ?? client, port, to.node);
      if (!bound) throw new Error(`no TCP binding entry for port ${port}`);
      if (!this.o.flows.sendHandover(to.node, this.msg.subarray(0, n)))
        throw new Error(`node ${to.node} has no destination`);
      this.o.flows.forgetClient(client, clientPort);
      s.destroy(); // in repair mode: closed without a FIN or RST
      this.count('handed_over');
      return true;
    } catch (e) {
      if (!this.loggedFailure) {
        this.o.log.warn(
          { err: (e as Error).message, node: to.node },
          'handover failed; connection reset (logged once)',
        );
        this.loggedFailure = true;
      }
      this.count('handover_failed');
      this.o.flows.forgetClient(client, clientPort);
      if (!s.destroyed) s.resetAndDestroy();
      return false;
    }
  }
}
