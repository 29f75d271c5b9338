import type { RpcService } from './cluster-ports.js';

export type Transport = 'udp' | 'tcp';

/**
 * What became of a call the gateway read: the answer it got. `success` is a normal answer; `stale`
 * (NFS3ERR_STALE), `noent` (MNT of a path no node exports) and `refused` (portmapper SET/UNSET from
 * the network) are successful replies worth telling apart; the rest are the RPC errors of RFC 5531 §9.
 */
export const OUTCOMES = [
  'success',
  'stale',
  'noent',
  'refused',
  'garbage_args',
  'proc_unavail',
  'prog_unavail',
  'prog_mismatch',
  'system_err',
  'rpc_mismatch',
  'auth_error',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * Why a message got no answer at all: a call cut short before its header ends (`truncated`; RFC 5531
 * gives no reply for a header that cannot be decoded), not a call (`not_call`), a TCP record over the
 * cap or with too many fragments (`record_error`: the stream cannot be resynchronised, so the
 * connection is closed), a connection over the limit (`connection_limit`), a peer that does not read
 * its replies (`slow_reader`), a reply that could not be sent (`send_error`), a UDP reply dropped
 * because too many wait for room in the socket's send buffer (`send_backlog`), a UDP call from source
 * port 0, which has no port to answer to (`no_reply_port`, RFC 768).
 */
export const DROP_REASONS = [
  'truncated',
  'not_call',
  'record_error',
  'connection_limit',
  'slow_reader',
  'send_error',
  'send_backlog',
  'no_reply_port',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** RpcCounters counts every call the gateway's RPC responders saw, by service, transport and result. */
export class RpcCounters {
  private readonly calls = new Map<string, number>();
  private readonly drops = new Map<string, number>();

  outcome(service: RpcService, transport: Transport, outcome: Outcome): void {
    const k = `${service}/${transport}/${outcome}`;
    this.calls.set(k, (this.calls.get(k) ?? 0) + 1);
  }

  drop(service: RpcService, transport: Transport, reason: DropReason): void {
    const k = `${service}/${transport}/${reason}`;
    this.drops.set(k, (this.drops.get(k) ?? 0) + 1);
  }

  /** get reads one counter (0 when never counted); `what` is an outcome or a drop reason. */
  get(service: RpcService, transport: Transport, what: Outcome | DropReason): number {
    const k = `${service}/${transport}/${what}`;
    return this.calls.get(k) ?? this.drops.get(k) ?? 0;
  }

  /** snapshot lists the non-zero counters. */
  snapshot(): {
    calls: Array<{ service: string; transport: string; outcome: string; count: number }>;
    drops: Array<{ service: string; transport: string; reason: string; count: number }>;
  } {
    const split = (k: string) => k.split('/') as [string, string, string];
    return {
      calls: [...this.calls].map(([k, count]) => {
        const [service, transport, outcome] = split(k);
        return { service, transport, outcome, count };
      }),
      drops: [...this.drops].map(([k, count]) => {
        const [service, transport, reason] = split(k);
        return { service, transport, reason, count };
      }),
    };
  }
}
