import { createRequire } from 'node:module';
import { CommandError } from './command.js';

/** One element of a flow map: (cluster address, client address, client port) → mark, with its counter. */
export interface FlowElement {
  vip: number;
  client: number;
  /** an IPv6 map's element: its addresses as text (RFC 5952); vip and client are 0 */
  vip6?: string;
  client6?: string;
  port: number;
  mark: number;
  /** the element's own timeout (0: the map's default) */
  timeoutMs: number;
  /** time left before it expires */
  expiresMs: number;
  /** the element's counter (lookups and refreshes both count: see docs/fastpath.md) */
  packets: number;
  bytes: number;
}

/** What {@link NftFlows.apply} did: ops applied, ops the kernel refused, and the first refusal. */
export interface ApplyResult {
  applied: number;
  failed: number;
  errno: number;
  error?: string;
}

interface NativeNftFlows {
  apply(
    sets: readonly string[],
    count: number,
    setIdx: Int32Array,
    kinds: Uint8Array,
    keys: Uint32Array,
    marks: Uint32Array,
    timeouts: Uint32Array,
  ): ApplyResult;
  get(set: string, vip: number, client: number, port: number): FlowElement | null;
  get6(set: string, key: Uint8Array): FlowElement | null;
  dump(set: string, limit?: number): Promise<FlowElement[]>;
  counters(): Promise<Record<string, [number, number]>>;
  close(): void;
}

interface NativeNftContext {
  run(script: string): Promise<{ ok: boolean; output: string; error: string }>;
  close(): void;
}

const require = createRequire(import.meta.url);
const native = require('../build/Release/onehost_kernel.node') as {
  NftFlows: new (table: string, netns?: string, family?: 4 | 6) => NativeNftFlows;
  NftContext: new (netns?: string, json?: boolean) => NativeNftContext;
};

/**
 * NftContext runs nftables scripts in this process (libnftables), as `nft -f` would: one transaction per
 * script, on a worker thread, one script at a time. Opened in a namespace when one is named.
 */
export class NftContext {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly n: NativeNftContext,
    private readonly argv: readonly string[],
  ) {}

  /** open makes a context (`json`: listings come back as JSON). Throws when the namespace cannot be entered. */
  static open(netns?: string, json = false): NftContext {
    return new NftContext(new native.NftContext(netns, json), ['nft', ...(json ? ['-j'] : []), '-f', '-']);
  }

  /** run applies a script; resolves with its output, rejects with a CommandError carrying nft's message. */
  run(script: string): Promise<string> {
    const next = this.queue.then(async () => {
      if (this.closed) throw new Error('NftContext is closed');
      const r = await this.n.run(script);
      if (!r.ok) throw new CommandError(this.argv, r.error, 1);
      return r.output;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** close waits for the script in progress, then frees the context. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    this.n.close();
  }
}

const UPSERT = 1;
const REMOVE = 2;

/**
 * FlowBatch collects element operations on flow maps in preallocated arrays (nothing allocated per
 * operation). Full, it refuses more (`upsert`/`remove` return false): apply it and clear it.
 */
export class FlowBatch {
  count = 0;
  readonly setIdx: Int32Array;
  readonly kinds: Uint8Array;
  readonly keys: Uint32Array;
  readonly marks: Uint32Array;
  readonly timeouts: Uint32Array;

  constructor(readonly capacity = 4096) {
    this.setIdx = new Int32Array(capacity);
    this.kinds = new Uint8Array(capacity);
    this.keys = new Uint32Array(capacity * 3);
    this.marks = new Uint32Array(capacity);
    this.timeouts = new Uint32Array(capacity);
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  /** upsert adds or replaces the element (vip, client, port) of map `set` (an index into apply's list). */
  upsert(set: number, vip: number, client: number, port: number, mark: number, timeoutMs: number): boolean {
    if (this.full) return false;
    const i = this.count++;
    this.setIdx[i] = set;
    this.kinds[i] = UPSERT;
    this.keys[3 * i] = vip;
    this.keys[3 * i + 1] = client;
    this.keys[3 * i + 2] = port;
    this.marks[i] = mark;
    this.timeouts[i] = timeoutMs;
    return true;
  }

  /** remove deletes the element (vip, client, port) of map `set` if it is there. */
  remove(set: number, vip: number, client: number, port: number): boolean {
    if (this.full) return false;
    const i = this.count++;
    this.setIdx[i] = set;
    this.kinds[i] = REMOVE;
    this.keys[3 * i] = vip;
    this.keys[3 * i + 1] = client;
    this.keys[3 * i + 2] = port;
    this.marks[i] = 0;
    this.timeouts[i] = 0;
    return true;
  }

  clear(): void {
    this.count = 0;
  }
}

/**
 * NftFlows edits and reads the flow maps of one nftables table (`ip <table>`, maps typed
 * `ipv4_addr . ipv4_addr . inet_service : mark`) over a netlink socket of its own, in the namespace it
 * was opened in: batches of element operations as one transaction each, no process per operation. Opened
 * for family 6 it reads the `ip6 <table>` (maps `ipv6_addr . ipv6_addr . inet_service : mark`): `get6`,
 * `dump`, `counters`.
 */
export class NftFlows {
  private constructor(private readonly n: NativeNftFlows) {}

  /** open makes the socket (in `netns` when named). Throws an Error with code ENFTFLOWS when it cannot. */
  static open(table: string, netns?: string, family: 4 | 6 = 4): NftFlows {
    return new NftFlows(new native.NftFlows(table, netns, family));
  }

  /**
   * apply runs a batch against the maps `sets` (the batch's set indexes point into it). One transaction
   * per 2048 operations; when the kernel refuses one (a full or missing map), each of its operations is
   * tried alone, so the rest still land. Never throws for refused operations: they are counted.
   */
  apply(sets: readonly string[], b: FlowBatch): ApplyResult {
    if (b.count === 0) return { applied: 0, failed: 0, errno: 0 };
    return this.n.apply(sets, b.count, b.setIdx, b.kinds, b.keys, b.marks, b.timeouts);
  }

  /** get reads one element; null when the map has none for the key. Throws when the map is missing. */
  get(set: string, vip: number, client: number, port: number): FlowElement | null {
    return this.n.get(set, vip, client, port);
  }

  /**
   * get6 reads one element of a map of the table opened (either family) by its key as the kernel holds
   * it (12 or 36 bytes: each part of a concatenation padded to 4, integers from expressions such as
   * `jhash` in host order). Null when the map has none for the key; throws when the map is missing.
   */
  get6(set: string, key: Uint8Array): FlowElement | null {
    return this.n.get6(set, key);
  }

  /**
   * dump lists a map's elements (the first `limit`, when given), on a worker thread through a socket of
   * its own. The kernel walks the map from its start again for each part of a dump, so a whole dump
   * costs about n² (1M elements: minutes); give a limit. Rejects when the map is missing.
   */
  dump(set: string, limit?: number): Promise<FlowElement[]> {
    return this.n.dump(set, limit);
  }

  /**
   * counters reads the table's named counters (name → packets and bytes) on a worker thread: only the
   * counter objects cross the socket, not every set's elements as with `nft list counters`. Empty
   * when the table is missing; rejects when the socket cannot be opened.
   */
  async counters(): Promise<Map<string, { packets: number; bytes: number }>> {
    const r = await this.n.counters();
    return new Map(Object.entries(r).map(([k, [packets, bytes]]) => [k, { packets, bytes }]));
  }

  close(): void {
    this.n.close();
  }
}
