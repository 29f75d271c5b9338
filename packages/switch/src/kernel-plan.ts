/**
 * What the kernel fast path needs to run a routing function itself (the switch compiles its table into
 * kernel state; `@onehost/fastpath` renders these plans as nftables rules and maps). A function that
 * returns no plan, or a `user` plan, keeps its packets on the TUN path: the switch decides them in user
 * space as before. Plans are built from one snapshot (node states included) and never change.
 */

/** Connection-manager timeouts, in milliseconds. */
export interface KernelTimeouts {
  syn: number;
  established: number;
  fin: number;
  rst: number;
}

/** A Maglev table: node id per slot (-1: no active node), and its size (a prime). */
export interface KernelMaglev {
  readonly table: Int32Array;
  readonly size: number;
}

export type KernelPlan =
  /** the null function: `node` is whom the kernel sends to now (the primary, or its backup), -1 drops */
  | { path: 'kernel'; kind: 'fixed'; node: number }
  /** by the port blocks (box 550), the owner down drops */
  | { path: 'kernel'; kind: 'port-block' }
  /** the gateway host's own stack, the destination port unchanged */
  | { path: 'kernel'; kind: 'local' }
  /**
   * the connection manager: a flow map keyed by (cluster address, client address, client port) holds
   * each connection's node; new connections by `policy` (round robin over `active`, Maglev over
   * `maglev`), least-connections by user space (first packet on the TUN, then the kernel).
   */
  | {
      path: 'kernel';
      kind: 'connection';
      policy: 'round-robin' | 'maglev' | 'least-conn';
      /** the nodes that take new connections, in round-robin order */
      active: readonly number[];
      maglev: KernelMaglev | null;
      rederive: boolean;
      maxEntries: number;
      timeouts: KernelTimeouts;
    }
  /** UDP flows: Maglev for a new flow, sticky while not idle */
  | { path: 'kernel'; kind: 'udp-flow'; maglev: KernelMaglev; maxEntries: number; idleMs: number }
  /** stays in user space; `why` says what only user space can do (explain prints it) */
  | { path: 'user'; why: string };

/** Operations in a {@link FlowLog}. */
export const FLOW_OP = { UPSERT: 1, REMOVE: 2 } as const;

const WORDS = 8;

/**
 * FlowLog is the switch's record of flow decisions the kernel must learn: when user space decides a flow
 * of an entry whose flows the kernel keeps (least-connections' first packet, a re-derived or re-hashed
 * flow, a flow whose node is gone), the routing function appends an upsert or a remove here and the fast
 * path drains the log after each batch into the kernel's flow maps. Bounded: when full, records are
 * dropped and counted (the TUN path stays correct without them; the next packet of such a flow logs it
 * again). Callers test `enabled` first: an address of 2^31 or more passed to a call the engine does not
 * inline is a heap number, so even a disabled append would allocate per packet.
 */
export class FlowLog {
  enabled = false;
  /** records dropped because the log was full */
  dropped = 0;
  /**
   * during `drain`, the IPv6 record's addresses: cluster address (16 bytes), then the client's. The
   * kernel keys IPv6 flows on hashes of them (fastpath's compile.ts), which the log leaves to its reader.
   */
  readonly addr6 = new Uint8Array(32);
  private readonly rec: Int32Array;
  /** per record: 4 or 6; IPv6 records' addresses in `addrs6` (32 bytes each) */
  private readonly family: Uint8Array;
  private readonly addrs6: Uint8Array;
  private n = 0;

  constructor(readonly capacity = 65_536) {
    this.rec = new Int32Array(capacity * WORDS);
    this.family = new Uint8Array(capacity);
    this.addrs6 = new Uint8Array(capacity * 32);
  }

  get size(): number {
    return this.n;
  }

  /**
   * upsert records that the flow (client:clientPort → vip, on the entry protocol/port) goes to `node` and
   * lives `timeoutMs` without a packet.
   */
  upsert(
    protocol: number,
    port: number,
    vip: number,
    client: number,
    clientPort: number,
    node: number,
    timeoutMs: number,
  ): void {
    const o = this.add(FLOW_OP.UPSERT, protocol, port, clientPort, node, timeoutMs, 4);
    if (o >= 0) this.put4(o, vip, client);
  }

  /**
   * upsertPacket is `upsert` for the IPv4 packet `p` (its protocol, ports and addresses): the addresses
   * are read here, not passed, so none is boxed on the way (see the class comment).
   */
  upsertPacket(
    p: { protocol: number; dstPort: number; dst: number; src: number; srcPort: number },
    node: number,
    timeoutMs: number,
  ): void {
    const o = this.add(FLOW_OP.UPSERT, p.protocol, p.dstPort, p.srcPort, node, timeoutMs, 4);
    if (o >= 0) {
      this.rec[o + 3] = p.dst | 0;
      this.rec[o + 4] = p.src | 0;
    }
  }

  /** remove records that the kernel must forget the flow. */
  remove(protocol: number, port: number, vip: number, client: number, clientPort: number): void {
    const o = this.add(FLOW_OP.REMOVE, protocol, port, clientPort, -1, 0, 4);
    if (o >= 0) this.put4(o, vip, client);
  }

  /**
   * upsert6 is `upsert` for an IPv6 flow: `buf` holds its packet, the IPv6 header at `ipOff` (source at
   * +8, destination at +24: RFC 8200 §3).
   */
  upsert6(
    protocol: number,
    port: number,
    buf: Uint8Array,
    ipOff: number,
    clientPort: number,
    node: number,
    timeoutMs: number,
  ): void {
    if (this.add(FLOW_OP.UPSERT, protocol, port, clientPort, node, timeoutMs, 6) >= 0) this.copy6(buf, ipOff);
  }

  /** remove6 is `remove` for an IPv6 flow (see upsert6). */
  remove6(protocol: number, port: number, buf: Uint8Array, ipOff: number, clientPort: number): void {
    if (this.add(FLOW_OP.REMOVE, protocol, port, clientPort, -1, 0, 6) >= 0) this.copy6(buf, ipOff);
  }

  /** copy6 marks the last record IPv6 and keeps its addresses, byte by byte (a subarray would allocate). */
  private copy6(buf: Uint8Array, ipOff: number): void {
    const i = this.n - 1;
    this.family[i] = 6;
    const a = this.addrs6;
    const o = i * 32;
    for (let j = 0; j < 16; j++) {
      a[o + j] = buf[ipOff + 24 + j]!;
      a[o + 16 + j] = buf[ipOff + 8 + j]!;
    }
  }

  private put4(o: number, vip: number, client: number): void {
    this.rec[o + 3] = vip | 0;
    this.rec[o + 4] = client | 0;
  }

  /** add appends a record without its addresses (callers write them) and returns its offset, or -1. */
  private add(
    op: number,
    protocol: number,
    port: number,
    clientPort: number,
    node: number,
    timeoutMs: number,
    family: number,
  ): number {
    if (!this.enabled) return -1;
    if (this.n >= this.capacity) {
      this.dropped++;
      return -1;
    }
    const o = this.n * WORDS;
    const r = this.rec;
    r[o] = op;
    r[o + 1] = protocol;
    r[o + 2] = port;
    r[o + 3] = 0;
    r[o + 4] = 0;
    r[o + 5] = clientPort;
    r[o + 6] = node;
    r[o + 7] = Math.min(timeoutMs, 0x7fffffff);
    this.family[this.n] = family;
    this.n++;
    return o;
  }

  /**
   * drain hands every record to `fn` (addresses as uint32) in order and empties the log; returns how many.
   * For an IPv6 record (`family` 6) `vip` and `client` are 0 and `addr6` holds its addresses while `fn`
   * runs. `fn` must not append to this log.
   */
  drain(
    fn: (
      op: number,
      protocol: number,
      port: number,
      vip: number,
      client: number,
      clientPort: number,
      node: number,
      timeoutMs: number,
      family: number,
    ) => void,
  ): number {
    const r = this.rec;
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const o = i * WORDS;
      const f = this.family[i]!;
      if (f === 6) for (let j = 0; j < 32; j++) this.addr6[j] = this.addrs6[i * 32 + j]!;
      fn(r[o]!, r[o + 1]!, r[o + 2]!, r[o + 3]! >>> 0, r[o + 4]! >>> 0, r[o + 5]!, r[o + 6]!, r[o + 7]!, f);
    }
    this.n = 0;
    return n;
  }
}
