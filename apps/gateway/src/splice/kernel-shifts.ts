import type { GatewayFlow, GatewayFlow6 } from '@onehost/ksplice';
import { FlowMap, FlowMap6, type Shift } from '@onehost/splice';
import { TCP_FLAGS } from '@onehost/wire';
import type { ClientAddress } from './shifts.js';

/** The gateway's flow maps of its tc program (`KernelSplice`, side gateway), as KernelShifts uses them. */
export interface GatewayFlowMap {
  setGatewayFlow(f: GatewayFlow): void;
  deleteGatewayFlow(f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>): boolean;
  /** the entry's packet count, -1 when there is none */
  gatewayPackets(f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>): number;
  gatewayFlows(): Array<GatewayFlow & { packets: number }>;
  /** the same for IPv6 flows (ks_gw6) */
  setGatewayFlow6(f: GatewayFlow6): void;
  deleteGatewayFlow6(f: Pick<GatewayFlow6, 'clientAddr' | 'clientPort' | 'clusterPort'>): boolean;
  gatewayPackets6(f: Pick<GatewayFlow6, 'clientAddr' | 'clientPort' | 'clusterPort'>): number;
  gatewayFlows6(): Array<GatewayFlow6 & { packets: number }>;
}

export interface KernelShiftsOptions {
  map: GatewayFlowMap;
  /** the mark that routes to the node at `address` (its internal address), undefined for a stranger */
  markOf(address: string): number | undefined;
  /** an entry whose packet count has not moved for this long goes (default 900 000 ms, as the agent) */
  idleMs?: number;
  /** an entry goes this long after the client's FIN (default 120 000 ms: the node's last ACKs pass) */
  finMs?: number;
  /** most entries (the program's map size) */
  maxFlows?: number;
}

interface Entry {
  /** an IPv4 flow; or an IPv6 one, whose client address is its 16 bytes */
  flow: GatewayFlow | GatewayFlow6;
  packets: number;
  movedAt: number;
  finAt: number;
}

/**
 * KernelShifts keeps the gateway's tc program's flow map (docs/splice.md, "In the kernel"): an entry per
 * spliced flow whose offsets its agent told, so the kernel shifts the client's segments and routes them
 * to the node without user space. The segments that still come here (SYN, FIN, RST) tell the end of a
 * flow; an entry whose packet count stops moving is idle. One bpf(2) call per flow change, none per
 * packet; `sweep` reads each entry's count only when it may have expired.
 */
export class KernelShifts {
  readonly counters = { added: 0, refused: 0, removed: 0, adopted: 0, refreshed: 0 };
  private readonly flows = new FlowMap<Entry>();
  private readonly flows6 = new FlowMap6<Entry>();
  private readonly idleMs: number;
  private readonly finMs: number;
  private readonly maxFlows: number;

  constructor(private readonly o: KernelShiftsOptions) {
    this.idleMs = o.idleMs ?? 900_000;
    this.finMs = o.finMs ?? 120_000;
    this.maxFlows = o.maxFlows ?? 65_536;
  }

  get size(): number {
    return this.flows.size + this.flows6.size;
  }

  private entryOf(client: ClientAddress, clientPort: number): Entry | undefined {
    return typeof client === 'number'
      ? this.flows.get(client, clientPort)
      : this.flows6.get(client, 0, clientPort);
  }

  /**
   * set puts a flow in the kernel: false (and user space shifts it) when its sender is no member, the
   * map is full, or the kernel refuses.
   */
  set(shift: Shift, from: string, now: number): boolean {
    const mark = this.o.markOf(from);
    const client: ClientAddress = shift.clientAddr6 ?? shift.clientAddr;
    const old = this.entryOf(client, shift.clientPort);
    const full = (typeof client === 'number' ? this.flows.size : this.flows6.size) >= this.maxFlows;
    if (mark === undefined || (old === undefined && full)) {
      this.counters.refused++;
      return false;
    }
    if (old !== undefined && old.flow.clusterPort !== shift.clusterPort) this.remove(old);
    else if (old !== undefined && sameShift(old.flow, shift, mark)) {
      // told again (the agent's refresh, or a resync): the flow lives, wherever it passes
      old.movedAt = now;
      this.counters.refreshed++;
      return true;
    }
    const rest = {
      clientPort: shift.clientPort,
      clusterPort: shift.clusterPort,
      nodePort: shift.nodePort,
      sOff: shift.sOff,
      tsOff: shift.tsOff,
      mark,
    };
    const flow =
      typeof client === 'number' ? { ...rest, clientAddr: client >>> 0 } : { ...rest, clientAddr: client };
    try {
      this.write(flow);
    } catch {
      this.counters.refused++;
      return false;
    }
    const e: Entry = { flow, packets: 0, movedAt: now, finAt: 0 };
    if (typeof client === 'number') this.flows.set(client, shift.clientPort, e);
    else this.flows6.set(client, shift.clientPort, e);
    this.counters.added++;
    return true;
  }

  /** has tells whether the kernel shifts this client's flow to `clusterPort`. */
  has(client: ClientAddress, clientPort: number, clusterPort: number): boolean {
    return this.entryOf(client, clientPort)?.flow.clusterPort === clusterPort;
  }

  /**
   * noteControl takes a segment of a flow the kernel left to user space (SYN, FIN, RST): a RST or a
   * SYN (a new connection on the same ports) ends the entry, a FIN starts its last finMs.
   */
  noteControl(
    client: ClientAddress,
    clientPort: number,
    clusterPort: number,
    flags: number,
    now: number,
  ): void {
    const e = this.entryOf(client, clientPort);
    if (e === undefined || e.flow.clusterPort !== clusterPort) return;
    if ((flags & (TCP_FLAGS.RST | TCP_FLAGS.SYN)) !== 0) this.remove(e);
    else if ((flags & TCP_FLAGS.FIN) !== 0 && e.finAt === 0) e.finAt = now;
  }

  /** adopt takes the entries a previous gateway left in the kernel (after it was killed). */
  adopt(now: number): number {
    let n = 0;
    for (const f of this.o.map.gatewayFlows()) {
      if (this.flows.get(f.clientAddr | 0, f.clientPort) !== undefined) continue;
      const { packets, ...flow } = f;
      this.flows.set(f.clientAddr | 0, f.clientPort, { flow, packets, movedAt: now, finAt: 0 });
      n++;
    }
    for (const f of this.o.map.gatewayFlows6()) {
      if (this.flows6.get(f.clientAddr, 0, f.clientPort) !== undefined) continue;
      const { packets, ...flow } = f;
      this.flows6.set(f.clientAddr, f.clientPort, { flow, packets, movedAt: now, finAt: 0 });
      n++;
    }
    this.counters.adopted += n;
    return n;
  }

  /** sweep removes finished and idle entries. Call it every few seconds. */
  sweep(now: number): void {
    const keep = (e: Entry): boolean => {
      if (e.finAt !== 0 && now - e.finAt >= this.finMs) return this.drop(e);
      if (now - e.movedAt < this.idleMs) return true;
      const f = e.flow;
      const p =
        typeof f.clientAddr === 'number'
          ? this.o.map.gatewayPackets(f as GatewayFlow)
          : this.o.map.gatewayPackets6(f as GatewayFlow6);
      if (p < 0) return false; // gone from the kernel already
      if (p !== e.packets) {
        e.packets = p;
        e.movedAt = now;
        return true;
      }
      return this.drop(e);
    };
    this.flows.sweep(keep);
    this.flows6.sweep(keep);
  }

  /** write puts a flow of either family into its map. */
  private write(f: GatewayFlow | GatewayFlow6): void {
    if (typeof f.clientAddr === 'number') this.o.map.setGatewayFlow(f as GatewayFlow);
    else this.o.map.setGatewayFlow6(f as GatewayFlow6);
  }

  private drop(e: Entry): false {
    const f = e.flow;
    try {
      if (typeof f.clientAddr === 'number') this.o.map.deleteGatewayFlow(f as GatewayFlow);
      else this.o.map.deleteGatewayFlow6(f as GatewayFlow6);
    } catch {
      // the map is gone (closing)
    }
    this.counters.removed++;
    return false;
  }

  private remove(e: Entry): void {
    this.drop(e);
    const a = e.flow.clientAddr;
    if (typeof a === 'number') this.flows.delete(a | 0, e.flow.clientPort);
    else this.flows6.delete(a, 0, e.flow.clientPort);
  }
}

function sameShift(f: GatewayFlow | GatewayFlow6, s: Shift, mark: number): boolean {
  return f.nodePort === s.nodePort && f.sOff === s.sOff && f.tsOff === s.tsOff && f.mark === mark;
}
