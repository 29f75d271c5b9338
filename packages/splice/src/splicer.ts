import { ipv4ToString, ipv6ToString, put16, TCP_FLAGS, type TcpView } from '@onehost/wire';
import { FlowMap } from './flow-map.js';
import { FlowMap6, same16 } from './flow-map6.js';
import { decodeHandover, HANDOVER_FLAG, type Handover, MSG, type Shift } from './message.js';
import {
  rewrite32,
  type SegmentSpec,
  setWindow,
  shiftClientSegment,
  tsOption,
  tsval,
  windowOf,
  writeSegment,
  wscaleOption,
} from './segment.js';
import { TcpSegmentView } from './segment-view.js';

/** Where the splicer's packets go. Both calls copy or send the bytes before returning. */
export interface SplicerIo {
  /** inject hands a packet to the node's kernel as if it came from the client. */
  inject(packet: Uint8Array): void;
  /** sendOut sends a packet to the client (through the node's normal routes, not captured again). */
  sendOut(packet: Uint8Array): void;
  /** established, when given, is told each flow's offsets once the node's SYN-ACK fixed them. */
  established?(shift: Shift): void;
  /**
   * bind, when given, takes over the node's segments of an established flow from here on (the kernel's
   * tc program, docs/splice.md "In the kernel"); it is called before the replayed handshake's ACK is
   * injected, so the node's first answer already finds it. True when taken.
   */
  bind?(flow: BoundFlow): boolean;
  /** unbind undoes a bind when the flow is forgotten (both FINs or a RST and closeMs, idle, replaced). */
  unbind?(flow: BoundFlow): void;
  /**
   * activity returns a number that changes while the bound flow carries segments (the kernel entry's
   * packet count): idle expiry asks it, since the node's segments no longer pass through here.
   */
  activity?(flow: BoundFlow): number;
}

/** A spliced flow as the kernel needs it to shift the node's segments. */
export interface BoundFlow {
  clientAddr: number;
  clusterAddr: number;
  /** an IPv6 flow's addresses (16 bytes each; clientAddr and clusterAddr are then 0) */
  clientAddr6?: Uint8Array;
  clusterAddr6?: Uint8Array;
  clientPort: number;
  clusterPort: number;
  nodePort: number;
  sOff: number;
  tsOff: number;
  nodeWscale: number;
  gatewayWscale: number;
}

export interface SplicerOptions {
  /** most flows at once; a handover beyond it is refused (the client gets a reset). Default 65536. */
  maxFlows?: number;
  /** a flow without a segment for this long is forgotten. Default 900 000 ms (an established TCP flow). */
  idleMs?: number;
  /** how long after both FINs, or a RST, a flow is kept for retransmissions. Default 2000 ms. */
  closeMs?: number;
  /** the replayed SYN is sent again after this long without the node's SYN-ACK. Default 200 ms. */
  synRetryMs?: number;
  /** SYNs sent before the flow is given up (and the client reset). Default 4. */
  synTries?: number;
  /** segments held for a flow whose handover has not arrived yet, and for how long. Default 16, 500 ms. */
  earlySegments?: number;
  earlyMs?: number;
}

/** Everything the splicer counts (the agent exports them). */
export const SPLICE_EVENTS = [
  'handover',
  'handover_duplicate',
  'handover_malformed',
  'handover_refused_full',
  'established',
  'bound',
  'adopted',
  'syn_given_up',
  'closed',
  'expired',
  'in_forwarded',
  'in_early_held',
  'in_unknown',
  'in_malformed',
  'out_forwarded',
  'out_unknown',
  'out_malformed',
  'message_unknown_type',
] as const;
export type SpliceEvent = (typeof SPLICE_EVENTS)[number];

const STATE = { SYN_SENT: 0, ESTABLISHED: 1, CLOSING: 2 } as const;
const FIN_IN = 1;
const FIN_OUT = 2;

interface Flow {
  h: Handover;
  state: number;
  /** node's sequence number minus the client-visible one (node → client: seq -= sOff; client → node: ack += sOff). */
  sOff: number;
  /** client-visible TSval minus the node's. */
  tsOff: number;
  nodeWscale: number;
  fins: number;
  expires: number;
  synTries: number;
  nextSyn: number;
  nodeIsn: number;
  /** client segments that arrived before the node's SYN-ACK (copies). */
  held: Uint8Array[];
  /** the kernel shifts the node's segments (io.bind took it); `activity` as last seen. */
  bound: BoundFlow | null;
  activity: number;
}

interface Early {
  until: number;
  packets: Uint8Array[];
}

/** fromClient: the addresses of a segment from the handover's client to its cluster address. */
function fromClient(h: Handover): Pick<SegmentSpec, 'src' | 'dst' | 'src6' | 'dst6'> {
  return h.clientAddr6 !== undefined
    ? { src: 0, dst: 0, src6: h.clientAddr6, dst6: h.clusterAddr6 }
    : { src: h.clientAddr, dst: h.clusterAddr };
}

/** shiftOf: a flow's offsets as the gateways take them (type 3). */
function shiftOf(f: Flow): Shift {
  const h = f.h;
  return {
    clientAddr: h.clientAddr,
    clusterAddr: h.clusterAddr,
    ...(h.clientAddr6 !== undefined && h.clusterAddr6 !== undefined
      ? { clientAddr6: h.clientAddr6, clusterAddr6: h.clusterAddr6 }
      : {}),
    clientPort: h.clientPort,
    clusterPort: h.clusterPort,
    nodePort: h.nodePort,
    sOff: f.sOff,
    tsOff: f.tsOff,
  };
}

/**
 * Splicer is the agent's half of delayed binding (docs/splice.md): it replays the client's handshake into
 * the node's kernel, delivers the bytes the gateway buffered, and from then on shifts sequence numbers,
 * timestamps, SACK blocks and the window between the client's view and the node's. Pure: packets in,
 * packets out through {@link SplicerIo}; time is passed in.
 */
export class Splicer {
  readonly counters: Record<SpliceEvent, number> = Object.fromEntries(
    SPLICE_EVENTS.map((e) => [e, 0]),
  ) as Record<SpliceEvent, number>;
  private readonly flows = new FlowMap<Flow>();
  private readonly flows6 = new FlowMap6<Flow>();
  /** client segments for flows without a handover yet: key → [deadline, copies]. */
  private readonly early = new FlowMap<Early>();
  private readonly early6 = new FlowMap6<Early>();
  private readonly seg = new TcpSegmentView();
  private readonly out = new Uint8Array(65_600);
  private readonly maxFlows: number;
  private readonly idleMs: number;
  private readonly closeMs: number;
  private readonly synRetryMs: number;
  private readonly synTries: number;
  private readonly earlySegments: number;
  private readonly earlyMs: number;

  constructor(
    private readonly io: SplicerIo,
    options: SplicerOptions = {},
  ) {
    this.maxFlows = options.maxFlows ?? 65_536;
    this.idleMs = options.idleMs ?? 900_000;
    this.closeMs = options.closeMs ?? 2000;
    this.synRetryMs = options.synRetryMs ?? 200;
    this.synTries = options.synTries ?? 4;
    this.earlySegments = options.earlySegments ?? 16;
    this.earlyMs = options.earlyMs ?? 500;
  }

  /** size is the number of spliced flows. */
  get size(): number {
    return this.flows.size + this.flows6.size;
  }

  /** flowOf finds a handover's flow (either family). */
  private flowOf(h: Handover): Flow | undefined {
    return h.clientAddr6 !== undefined
      ? this.flows6.get(h.clientAddr6, 0, h.clientPort)
      : this.flows.get(h.clientAddr, h.clientPort);
  }

  private setFlow(h: Handover, f: Flow): void {
    if (h.clientAddr6 !== undefined) this.flows6.set(h.clientAddr6, h.clientPort, f);
    else this.flows.set(h.clientAddr, h.clientPort, f);
  }

  private deleteFlow(h: Handover): void {
    if (h.clientAddr6 !== undefined) this.flows6.delete(h.clientAddr6, 0, h.clientPort);
    else this.flows.delete(h.clientAddr, h.clientPort);
  }

  /** onMessage takes one datagram from a gateway (type byte first). Never throws. */
  onMessage(buf: Uint8Array, off: number, len: number, now: number): void {
    if (len < 1) {
      this.counters.message_unknown_type++;
      return;
    }
    const type = buf[off];
    if (type === MSG.SEGMENT) this.inbound(buf, off + 1, len - 1, now);
    else if (type === MSG.HANDOVER) this.handover(buf, off, len, now);
    else this.counters.message_unknown_type++;
  }

  private handover(buf: Uint8Array, off: number, len: number, now: number): void {
    const h = decodeHandover(buf, off, len);
    if (typeof h === 'string') {
      this.counters.handover_malformed++;
      return;
    }
    const old = this.flowOf(h);
    if (old !== undefined) {
      // The gateway sends a handover again when the client repeats its record; a new connection on the
      // same client port (after the old one closed) replaces the flow.
      if (old.h.clientSeq === h.clientSeq && old.h.clusterPort === h.clusterPort) {
        this.counters.handover_duplicate++;
        return;
      }
      this.forget(old);
      this.deleteFlow(h);
    }
    if (this.size >= this.maxFlows) {
      this.counters.handover_refused_full++;
      this.resetClient(h);
      return;
    }
    this.counters.handover++;
    const f: Flow = {
      h,
      state: STATE.SYN_SENT,
      sOff: 0,
      tsOff: 0,
      nodeWscale: 0,
      fins: 0,
      expires: now + this.idleMs,
      synTries: 0,
      nextSyn: 0,
      nodeIsn: 0,
      held: [],
      bound: null,
      activity: 0,
    };
    const e =
      h.clientAddr6 !== undefined
        ? this.early6.get(h.clientAddr6, 0, h.clientPort)
        : this.early.get(h.clientAddr, h.clientPort);
    if (e !== undefined) {
      if (h.clientAddr6 !== undefined) this.early6.delete(h.clientAddr6, 0, h.clientPort);
      else this.early.delete(h.clientAddr, h.clientPort);
      f.held = e.packets;
    }
    this.setFlow(h, f);
    this.sendSyn(f, now);
  }

  /** sendSyn replays the client's SYN as if it had started right before the buffered bytes. */
  private sendSyn(f: Flow, now: number): void {
    const h = f.h;
    const ts = (h.flags & HANDOVER_FLAG.TIMESTAMPS) !== 0;
    const ws = (h.flags & HANDOVER_FLAG.WINDOW_SCALE) !== 0;
    f.synTries++;
    f.nextSyn = now + this.synRetryMs * f.synTries;
    const n = writeSegment(this.out, {
      ...fromClient(h),
      srcPort: h.clientPort,
      dstPort: h.nodePort,
      seq: h.clientSeq - 1,
      ack: 0,
      flags: TCP_FLAGS.SYN,
      // RFC 7323 §2.2: the window of a SYN is never scaled.
      window: Math.min(0xffff, h.clientWindow * 2 ** (ws ? h.clientWscale : 0)),
      syn: {
        mss: h.mss,
        sack: (h.flags & HANDOVER_FLAG.SACK) !== 0,
        wscale: ws ? h.clientWscale : null,
      },
      ...(ts ? { ts: { val: h.clientTsval, ecr: 0 } } : {}),
    });
    this.io.inject(this.out.subarray(0, n));
  }

  /** onOutbound takes a packet the node's kernel sent on a captured port and sends what is due. Never throws. */
  onOutbound(buf: Uint8Array, off: number, len: number, now: number): void {
    const n = this.rewriteOutbound(buf, off, len, now);
    if (n > 0) this.io.sendOut(buf.subarray(off, off + n));
  }

  /**
   * rewriteOutbound is onOutbound for batches: it rewrites the packet in place into the client's view and
   * returns its length when the caller must send it, 0 when not (swallowed, unknown, malformed). Replies
   * it makes itself (the replayed handshake's ACK and data, resets) still go through the io.
   * `partialChecksum`: the TCP checksum field holds only the pseudo header's sum (a TUN with offloads,
   * the kernel completes it later), which none of the rewritten fields enter: it is left as it is.
   */
  rewriteOutbound(buf: Uint8Array, off: number, len: number, now: number, partialChecksum = false): number {
    const seg = this.seg;
    const t = seg.tcp;
    if (!seg.bind(buf, off, len)) {
      this.counters.out_malformed++;
      return 0;
    }
    const six = seg.six;
    const f = six ? this.flows6.get(buf, seg.dstAt, t.dstPort) : this.flows.get(seg.dst4, t.dstPort);
    if (
      f === undefined ||
      (six
        ? f.h.clusterAddr6 === undefined || !same16(f.h.clusterAddr6, buf, seg.srcAt)
        : f.h.clusterAddr6 !== undefined || (f.h.clusterAddr | 0) !== seg.src4)
    ) {
      this.counters.out_unknown++;
      return 0;
    }
    const h = f.h;
    const flags = t.flags;
    if (f.state === STATE.SYN_SENT) {
      if (
        (flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK)) === (TCP_FLAGS.SYN | TCP_FLAGS.ACK) &&
        t.ack === h.clientSeq
      ) {
        this.establish(f, t, now);
      } else if ((flags & TCP_FLAGS.RST) !== 0) {
        // The node refused the connection (nothing listens): tell the client.
        this.resetClient(h);
        this.close(f, now);
      } else this.counters.out_unknown++;
      return 0;
    }
    if ((flags & TCP_FLAGS.SYN) !== 0) return 0; // a retransmitted SYN-ACK: the client already has one
    const partial = partialChecksum ? t.checksum : -1;
    t.setSrcPort(h.clusterPort);
    t.setSeq((t.seq - f.sOff) >>> 0);
    const i = tsOption(t);
    if (i >= 0 && f.tsOff !== 0) rewrite32(t, i + 2, (tsval(t, i) + f.tsOff) >>> 0);
    if (f.nodeWscale !== h.gatewayWscale) {
      const w = Math.floor((windowOf(t) * 2 ** f.nodeWscale) / 2 ** h.gatewayWscale);
      setWindow(t, Math.min(0xffff, w));
    }
    if (partial >= 0) put16(t.buf, t.off + 16, partial);
    this.track(f, flags, FIN_OUT, now);
    this.counters.out_forwarded++;
    return seg.length;
  }

  /** establish completes the replayed handshake and delivers the buffered bytes and held segments. */
  private establish(f: Flow, synAck: TcpView, now: number): void {
    const h = f.h;
    const nodeIsn = synAck.seq;
    f.nodeIsn = nodeIsn;
    f.sOff = (nodeIsn + 1 - h.serverSeq) | 0;
    const i = tsOption(synAck);
    const ts = (h.flags & HANDOVER_FLAG.TIMESTAMPS) !== 0 && i >= 0;
    const nodeTs = ts ? tsval(synAck, i) : 0;
    f.tsOff = ts ? (h.gatewayTsval - nodeTs) | 0 : 0;
    const ws = wscaleOption(synAck);
    f.nodeWscale = (h.flags & HANDOVER_FLAG.WINDOW_SCALE) !== 0 && ws >= 0 ? ws : 0;
    f.state = STATE.ESTABLISHED;
    f.expires = now + this.idleMs;
    this.counters.established++;
    const bound: BoundFlow = { ...shiftOf(f), nodeWscale: f.nodeWscale, gatewayWscale: h.gatewayWscale };
    if (this.io.bind?.(bound) === true) {
      f.bound = bound;
      this.counters.bound++;
    }
    this.io.established?.(shiftOf(f));
    const base = {
      ...fromClient(h),
      srcPort: h.clientPort,
      dstPort: h.nodePort,
      ack: nodeIsn + 1,
      window: h.clientWindow,
      ...(ts ? { ts: { val: h.clientTsval, ecr: nodeTs } } : {}),
    };
    let n = writeSegment(this.out, { ...base, seq: h.clientSeq, flags: TCP_FLAGS.ACK });
    this.io.inject(this.out.subarray(0, n));
    const chunk = Math.max(64, h.mss - (ts ? 12 : 0));
    for (let at = 0; at < h.data.length; at += chunk) {
      const payloadLen = Math.min(chunk, h.data.length - at);
      n = writeSegment(this.out, {
        ...base,
        seq: h.clientSeq + at,
        flags: TCP_FLAGS.ACK | (at + payloadLen === h.data.length ? TCP_FLAGS.PSH : 0),
        payload: h.data,
        payloadOff: at,
        payloadLen,
      });
      this.io.inject(this.out.subarray(0, n));
    }
    const held = f.held;
    f.held = [];
    for (const p of held) this.inbound(p, 0, p.length, now);
  }

  /** inbound takes a client segment the gateway forwarded (an IPv4 or IPv6 packet). */
  private inbound(buf: Uint8Array, off: number, len: number, now: number): void {
    const seg = this.seg;
    const t = seg.tcp;
    if (!seg.bind(buf, off, len)) {
      this.counters.in_malformed++;
      return;
    }
    const total = seg.length;
    const src = seg.six ? 0 : seg.src4;
    const f = seg.six ? this.flows6.get(buf, seg.srcAt, t.srcPort) : this.flows.get(src, t.srcPort);
    if (f === undefined || f.h.clusterPort !== t.dstPort) {
      this.holdEarly(src, t.srcPort, buf, off, total, now);
      return;
    }
    if (f.state === STATE.SYN_SENT) {
      if (f.held.length < this.earlySegments) f.held.push(buf.slice(off, off + total));
      this.counters.in_early_held++;
      return;
    }
    shiftClientSegment(t, f.h.nodePort, f.sOff, f.tsOff);
    this.track(f, t.flags, FIN_IN, now);
    this.counters.in_forwarded++;
    this.io.inject(buf.subarray(off, off + total));
  }

  /** holdEarly keeps a copy of the segment just bound (IPv4 source `addr`, or IPv6 at seg.srcAt). */
  private holdEarly(
    addr: number,
    port: number,
    buf: Uint8Array,
    off: number,
    len: number,
    now: number,
  ): void {
    const seg = this.seg;
    const six = seg.six;
    let e = six ? this.early6.get(buf, seg.srcAt, port) : this.early.get(addr, port);
    if (e === undefined) {
      if (this.early.size + this.early6.size >= 1024) {
        this.counters.in_unknown++;
        return;
      }
      e = { until: now + this.earlyMs, packets: [] };
      if (six) this.early6.set(buf.subarray(seg.srcAt, seg.srcAt + 16), port, e);
      else this.early.set(addr, port, e);
    }
    if (e.packets.length >= this.earlySegments) {
      this.counters.in_unknown++;
      return;
    }
    e.packets.push(buf.slice(off, off + len));
    this.counters.in_early_held++;
  }

  /** track follows FIN and RST so a finished flow is forgotten soon after. */
  private track(f: Flow, flags: number, finBit: number, now: number): void {
    if ((flags & TCP_FLAGS.RST) !== 0) {
      this.close(f, now);
      return;
    }
    if ((flags & TCP_FLAGS.FIN) !== 0) f.fins |= finBit;
    if (f.fins === (FIN_IN | FIN_OUT)) this.close(f, now);
    else if (f.state !== STATE.CLOSING) f.expires = now + this.idleMs;
  }

  private close(f: Flow, now: number): void {
    if (f.state !== STATE.CLOSING) this.counters.closed++;
    f.state = STATE.CLOSING;
    f.expires = Math.min(f.expires, now + this.closeMs);
  }

  /** resetClient sends the client a RST in the gateway's sequence space (the flow cannot be spliced). */
  private resetClient(h: Handover): void {
    const n = writeSegment(this.out, {
      src: h.clusterAddr,
      dst: h.clientAddr,
      ...(h.clientAddr6 !== undefined ? { src6: h.clusterAddr6, dst6: h.clientAddr6 } : {}),
      srcPort: h.clusterPort,
      dstPort: h.clientPort,
      seq: h.serverSeq,
      ack: 0,
      flags: TCP_FLAGS.RST,
      window: 0,
    });
    this.io.sendOut(this.out.subarray(0, n));
  }

  /** forget undoes the kernel's part of a flow that goes away. */
  private forget(f: Flow): void {
    if (f.bound === null) return;
    this.io.unbind?.(f.bound);
    f.bound = null;
  }

  /**
   * adopt takes over an established flow the kernel already shifts (a predecessor agent bound it and
   * died): from here on its FIN, RST and idleness are tracked as if it had been handed over here.
   * False when the flow is known already or the table is full.
   */
  adopt(b: BoundFlow, now: number): boolean {
    const six = b.clientAddr6 !== undefined && b.clusterAddr6 !== undefined;
    const known = six
      ? this.flows6.get(b.clientAddr6!, 0, b.clientPort)
      : this.flows.get(b.clientAddr, b.clientPort);
    if (known !== undefined || this.size >= this.maxFlows) return false;
    const h: Handover = {
      flags: HANDOVER_FLAG.SACK | HANDOVER_FLAG.TIMESTAMPS | HANDOVER_FLAG.WINDOW_SCALE,
      clientAddr: b.clientAddr,
      clusterAddr: b.clusterAddr,
      ...(six ? { clientAddr6: b.clientAddr6, clusterAddr6: b.clusterAddr6 } : {}),
      clientPort: b.clientPort,
      clusterPort: b.clusterPort,
      nodePort: b.nodePort,
      clientSeq: 0,
      serverSeq: 0,
      mss: 0,
      clientWscale: 0,
      gatewayWscale: b.gatewayWscale,
      clientTsval: 0,
      gatewayTsval: 0,
      clientWindow: 0,
      data: new Uint8Array(0),
    };
    this.setFlow(h, {
      h,
      state: STATE.ESTABLISHED,
      sOff: b.sOff,
      tsOff: b.tsOff,
      nodeWscale: b.nodeWscale,
      fins: 0,
      expires: now + this.idleMs,
      synTries: 0,
      nextSyn: 0,
      nodeIsn: 0,
      held: [],
      bound: b,
      activity: this.io.activity?.(b) ?? 0,
    });
    this.counters.adopted++;
    return true;
  }

  /** tick retries replayed SYNs and forgets expired flows and held segments. Call it every ~100 ms. */
  tick(now: number): void {
    const keep = (f: Flow): boolean => {
      if (f.state === STATE.SYN_SENT && now >= f.nextSyn) {
        if (f.synTries >= this.synTries) {
          this.counters.syn_given_up++;
          this.resetClient(f.h);
          return false;
        }
        this.sendSyn(f, now);
      }
      if (now < f.expires) return true;
      if (f.state === STATE.ESTABLISHED && f.bound !== null && this.io.activity !== undefined) {
        // The node's segments pass through the kernel only: its count tells whether the flow is idle.
        const a = this.io.activity(f.bound);
        if (a !== f.activity) {
          f.activity = a;
          f.expires = now + this.idleMs;
          return true;
        }
      }
      if (f.state !== STATE.CLOSING) this.counters.expired++;
      this.forget(f);
      return false;
    };
    this.flows.sweep(keep);
    this.flows6.sweep(keep);
    const keepEarly = (e: Early): boolean => {
      if (now < e.until) return true;
      this.counters.in_unknown += e.packets.length;
      return false;
    };
    this.early.sweep(keepEarly);
    this.early6.sweep(keepEarly);
  }

  /**
   * shifts lists the offsets of the established flows, as `established` told them: for a gateway that
   * asks (it started, and a router may move any flow to it) and for the periodic refresh that keeps
   * the gateways' entries of long flows from idling out where the flow does not pass.
   */
  shifts(): Shift[] {
    const out: Shift[] = [];
    for (const [, , f] of this.flows.entries()) if (f.state === STATE.ESTABLISHED) out.push(shiftOf(f));
    for (const [, , f] of this.flows6.entries()) if (f.state === STATE.ESTABLISHED) out.push(shiftOf(f));
    return out;
  }

  /** list lists the spliced flows (for the agent's status and tests). */
  list(): { client: string; clusterPort: number; nodePort: number; state: string; kernel: boolean }[] {
    const names = ['syn-sent', 'established', 'closing'];
    return [...this.flows.entries(), ...this.flows6.entries()].map(([, , f]) => ({
      client:
        f.h.clientAddr6 !== undefined
          ? `[${ipv6ToString(f.h.clientAddr6)}]:${f.h.clientPort}`
          : `${ipv4ToString(f.h.clientAddr)}:${f.h.clientPort}`,
      clusterPort: f.h.clusterPort,
      nodePort: f.h.nodePort,
      state: names[f.state]!,
      kernel: f.bound !== null,
    }));
  }
}
