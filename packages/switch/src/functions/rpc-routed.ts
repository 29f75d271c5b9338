import { ADDR6, IPPROTO, ipv4ToString, ipv6WordsText, OK, RpcCallView, TCP_FLAGS, u32 } from '@onehost/wire';
import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { KernelPlan } from '../kernel-plan.js';
import type { PacketContext } from '../packet-context.js';
import { FLOW, FlowTable } from '../tables/flow-table.js';
import type { RoutingDeps, RoutingFunction } from './types.js';

export const DEFAULT_RPC_TCP_FLOWS = 65_536;
export const DEFAULT_RPC_TCP_IDLE = 900;
const RST_GRACE_MS = 10_000;
const FIN_GRACE_MS = 120_000;
const RECORD_MARK = 4;

/** Options shared by the functions that route by an RPC call's content. */
export interface RpcRoutedConfig {
  /** TCP: flows remembered after their first call was routed. */
  maxEntries: number;
  /** TCP: seconds a bound flow lives without a segment. */
  idleTimeout: number;
}

/**
 * RpcRouted is the shared part of the MOUNT and NFS functions: every UDP datagram carries the call that
 * routes it (the patent's case). Over TCP a connection is bound by its first routed call and its later
 * segments follow the binding; segments before that (the SYN, a bare ACK) belong to the gateway, which
 * answers the handshake itself and reads the first record (delayed binding).
 */
export abstract class RpcRouted implements RoutingFunction {
  abstract readonly kind: string;
  readonly nullFunction = false;
  /**
   * ipv6: a UDP datagram carries its whole call, whatever the family; a TCP connection is handed over
   * after delayed binding in either family (its IPv6 flows are bound in a wide table).
   */
  readonly ipv6 = true;
  /** the call being routed (bound by `route` before `routeCall`). */
  protected readonly call = new RpcCallView();
  private readonly flows: FlowTable | null;
  private readonly flows6: FlowTable | null;
  private readonly ttl: number;

  constructor(
    protected readonly deps: RoutingDeps,
    config: RpcRoutedConfig,
  ) {
    this.flows =
      deps.protocol === 'tcp'
        ? deps.state(
            `rpc-flows:${config.maxEntries}`,
            () =>
              new FlowTable(config.maxEntries, deps.counters, {
                evicted: EVENT.CONN_EVICTED,
                expired: EVENT.CONN_EXPIRED,
              }),
          )
        : null;
    this.flows6 =
      deps.protocol === 'tcp' && deps.ipv6
        ? deps.state(
            `rpc-flows6:${config.maxEntries}`,
            () =>
              new FlowTable(
                config.maxEntries,
                deps.counters,
                { evicted: EVENT.CONN_EVICTED, expired: EVENT.CONN_EXPIRED },
                true,
              ),
          )
        : null;
    this.ttl = Math.round(config.idleTimeout * 1000);
  }

  /** flowTable holds the TCP connections bound by their first call (null over UDP). */
  get flowTable(): FlowTable | null {
    return this.flows;
  }

  /** flowTable6 holds the IPv6 ones (null over UDP, or without an IPv6 cluster address). */
  get flowTable6(): FlowTable | null {
    return this.flows6;
  }

  /** routeCall decides for a parsed call (this.call is bound to it). */
  protected abstract routeCall(ctx: PacketContext, out: DecisionOut): void;

  route(ctx: PacketContext, out: DecisionOut): void {
    const p = ctx.p;
    const v6 = p.family === 6;
    const flows = v6 ? this.flows6 : this.flows;
    if (this.flows === null || p.protocol !== IPPROTO.TCP) {
      this.routeDatagram(ctx, out, false);
      return;
    }
    if (flows === null) {
      // an IPv6 segment, and the table has no IPv6 cluster address: nothing of ours sent it here
      out.drop(DROP.IPV6_UNSUPPORTED);
      return;
    }
    const a = p.src | 0;
    const b = (p.srcPort << 16) | p.dstPort;
    const flags = p.tcpFlags;
    let s: number;
    if (v6) {
      const k = ctx.fillKey6(ADDR6.SRC, b, ctx.vip);
      s = ctx.dryRun ? flows.peekWide(k, 0, ctx.now) : flows.findWide(k, 0, ctx.now);
    } else s = ctx.dryRun ? flows.peek(a, b, ctx.vip, ctx.now) : flows.find(a, b, ctx.vip, ctx.now);
    if (s >= 0 && (flags & TCP_FLAGS.SYN) !== 0) {
      if (!ctx.dryRun) flows.removeSlot(s);
      s = -1;
    }
    if (s >= 0) {
      const node = flows.node(s);
      if (ctx.nodes.isUp(node)) {
        if (!ctx.dryRun) {
          const rst = (flags & TCP_FLAGS.RST) !== 0;
          const fin = (flags & TCP_FLAGS.FIN) !== 0 || flows.state(s) === FLOW.FIN;
          flows.refresh(
            s,
            fin ? FLOW.FIN : FLOW.ESTABLISHED,
            ctx.now,
            rst ? RST_GRACE_MS : fin ? FIN_GRACE_MS : this.ttl,
          );
        }
        if (ctx.trace !== null) {
          ctx.trace.add(
            `${this.kind}: TCP flow ${v6 ? `[${ipv6WordsText(p.addr6, ADDR6.SRC)}]` : ipv4ToString(a)}:${p.srcPort} handed over to ${ctx.nodes.nameOf(node)} → its agent`,
          );
        }
        out.forwardSpliced(node);
        return;
      }
      if (!ctx.dryRun) {
        flows.removeSlot(s);
        this.deps.counters.event(EVENT.CONN_NODE_LOST);
      }
    }
    if (p.payloadLength === 0 || !ctx.dryRun) {
      // Delayed binding: the gateway's own stack answers the handshake (SYN cookies) and reads records
      // until one routes; then it hands the connection over (bind). A dry run (explain, the gateway's
      // question about a record it read) routes the record as it would.
      if (ctx.trace !== null)
        ctx.trace.add(`${this.kind}: TCP flow not handed over yet → the gateway (delayed binding)`);
      this.deps.counters.event(EVENT.RPC_TCP_UNBOUND);
      out.local();
      return;
    }
    this.routeDatagram(ctx, out, true);
  }

  /**
   * bind remembers that the TCP flow (client a:port → cluster address index vip, port dstPort) was
   * handed over to `node`; its later segments go to that node's agent. Returns false when it cannot be
   * (not a TCP function).
   */
  bind(client: number, clientPort: number, dstPort: number, vip: number, node: number, now: number): boolean {
    const flows = this.flows;
    if (flows === null) return false;
    flows.set(client | 0, (clientPort << 16) | dstPort, vip, node, FLOW.ESTABLISHED, 0, this.ttl, now);
    return true;
  }

  /**
   * bind6 is `bind` for an IPv6 client, its address as four int32 words (big-endian, as PacketSummary
   * reads them). False without an IPv6 table.
   */
  bind6(
    client: Int32Array,
    clientPort: number,
    dstPort: number,
    vip: number,
    node: number,
    now: number,
  ): boolean {
    const flows = this.flows6;
    if (flows === null) return false;
    const k = this.key6;
    k.set(client.subarray(0, 4), 0);
    k[4] = (clientPort << 16) | dstPort;
    k[5] = vip;
    flows.setWide(k, 0, node, FLOW.ESTABLISHED, 0, this.ttl, now);
    return true;
  }

  private readonly key6 = new Int32Array(6);

  private routeDatagram(ctx: PacketContext, out: DecisionOut, tcp: boolean): void {
    const p = ctx.p;
    const buf = ctx.buf;
    let off = p.payloadOffset;
    let len = p.payloadLength;
    let code = OK;
    if (tcp) {
      // RFC 5531 §11: a record mark, then the call; a long record continues in later segments, so
      // read the part this segment holds (the header and the first argument are at its start).
      if (len < RECORD_MARK) code = -1;
      else {
        const fragment = u32(buf, off) & 0x7fffffff;
        off += RECORD_MARK;
        len = Math.min(len - RECORD_MARK, fragment);
      }
    }
    if (code === OK) code = this.call.bind(buf, off, len);
    if (code !== OK) {
      if (ctx.trace !== null) ctx.trace.add(`${this.kind}: not an RPC call we can read → the gateway`);
      this.deps.counters.event(EVENT.RPC_MALFORMED);
      if (code > 0) this.deps.counters.wireError(code);
      out.local();
      return;
    }
    this.routeCall(ctx, out);
  }

  /** routeQuoted: the quoted 8 bytes never hold the call, so ICMP errors go to the bound node or the gateway. */
  routeQuoted(ctx: PacketContext, out: DecisionOut): void {
    const p = ctx.p;
    const v6 = p.family === 6;
    const flows = v6 ? this.flows6 : this.flows;
    const b = (p.innerDstPort << 16) | p.innerSrcPort;
    const s =
      flows === null
        ? -1
        : v6
          ? flows.peekWide(ctx.fillKey6(ADDR6.INNER_DST, b, ctx.vip), 0, ctx.now)
          : flows.peek(p.innerDst | 0, b, ctx.vip, ctx.now);
    if (s >= 0 && flows !== null && ctx.nodes.isUp(flows.node(s))) {
      if (ctx.trace !== null)
        ctx.trace.add(`${this.kind}: quoted TCP flow bound to ${ctx.nodes.nameOf(flows.node(s))}`);
      out.forward(flows.node(s), NO_PORT);
      return;
    }
    if (ctx.trace !== null) ctx.trace.add(`${this.kind}: quoted datagram carries no call → the gateway`);
    out.local();
  }

  sweep(now: number, budget: number): void {
    this.flows?.sweep(now, budget);
    this.flows6?.sweep(now, budget);
  }

  describe(): Record<string, unknown> {
    return this.flows === null
      ? {}
      : {
          boundFlows: this.flows.size + (this.flows6?.size ?? 0),
          maxEntries: this.flows.capacity,
        };
  }

  /** What routes a call (explain's "user space: …"): only user space reads the RPC payload. */
  protected abstract readonly reads: string;

  kernel(): KernelPlan {
    return { path: 'user', why: this.reads };
  }
}
