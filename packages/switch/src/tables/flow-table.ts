import { ipv6ToString } from '@onehost/wire';
import type { SwitchCounters } from '../counters.js';
import { SlotTable, WIDE_KEY_WORDS } from './slot-table.js';

/** Flow states (connection manager; other users keep ESTABLISHED). */
export const FLOW = { SYN: 1, ESTABLISHED: 2, FIN: 3, RST: 4 } as const;

const STATE_NAMES = ['', 'syn', 'established', 'fin', 'rst'];

/** flowStateName names a FLOW code. */
export function flowStateName(s: number): string {
  return STATE_NAMES[s] ?? `state_${s}`;
}

/** NODE_ID_LIMIT: node ids are uint16 (they index per-node typed arrays). */
export const NODE_ID_LIMIT = 0x10000;

/** FlowEntry is one live flow as `entries` lists it. */
export interface FlowEntry {
  /** IPv4 client (0 in a wide table) */
  clientAddress: number;
  /** IPv6 client as text (a wide table only) */
  clientAddress6?: string;
  clientPort: number;
  clusterPort: number;
  clusterAddressIndex: number;
  node: number;
  state: string;
  expiresInMs: number;
}

/** What a flow table counts into the switch counters. */
export interface FlowTableEvents {
  evicted: number;
  expired: number;
}

/**
 * FlowTable remembers which node a flow went to: key (client address, client port << 16 | cluster
 * port, cluster address index) → node, state, aux (TCP ISN or a rewritten port), deadline. Bounded:
 * when full, CLOCK picks an expired or not recently used flow to evict. Keeps a live-flow count per
 * node (least-connections). Expired flows are removed when found and by `sweep`.
 *
 * A wide table (IPv6 flows) keys by six words instead, passed as `k[at..at+6)`: the client address's four
 * words, then the same two words (ports, cluster address index); use the `…Wide` methods.
 */
export class FlowTable {
  readonly slots: SlotTable;
  /** live flows per node id. */
  readonly perNode = new Int32Array(NODE_ID_LIMIT);

  /** constructor throws RangeError for a capacity SlotTable refuses. */
  constructor(
    capacity: number,
    private readonly counters: SwitchCounters,
    private readonly events: FlowTableEvents,
    wide = false,
  ) {
    this.slots = new SlotTable(capacity, wide ? WIDE_KEY_WORDS : 3);
  }

  /** wide: keyed by six words (IPv6 flows). */
  get wide(): boolean {
    return this.slots.keyWords === WIDE_KEY_WORDS;
  }

  get size(): number {
    return this.slots.size;
  }

  get capacity(): number {
    return this.slots.capacity;
  }

  /** byteLength is the memory the table holds (excluding the fixed perNode array). */
  get byteLength(): number {
    return this.slots.byteLength;
  }

  node(s: number): number {
    return this.slots.value(s) >>> 8;
  }

  state(s: number): number {
    return this.slots.value(s) & 0xff;
  }

  aux(s: number): number {
    return this.slots.aux(s);
  }

  /** find returns the live slot for the key, or -1; an expired entry is removed on the way. */
  find(a: number, b: number, c: number, now: number): number {
    const s = this.slots.find(a, b, c);
    if (s < 0) return -1;
    if (this.slots.expired(s, now)) {
      this.removeSlot(s);
      this.counters.event(this.events.expired);
      return -1;
    }
    return s;
  }

  /** peek is find without side effects: an expired entry reads as absent but stays. */
  peek(a: number, b: number, c: number, now: number): number {
    const s = this.slots.find(a, b, c);
    if (s < 0 || this.slots.expired(s, now)) return -1;
    return s;
  }

  /** findWide is `find` for a wide table's key k[at..at+6). */
  findWide(k: Int32Array, at: number, now: number): number {
    const s = this.slots.findWide(k, at);
    if (s < 0) return -1;
    if (this.slots.expired(s, now)) {
      this.removeSlot(s);
      this.counters.event(this.events.expired);
      return -1;
    }
    return s;
  }

  /** peekWide is `peek` for a wide table's key k[at..at+6). */
  peekWide(k: Int32Array, at: number, now: number): number {
    const s = this.slots.findWide(k, at);
    if (s < 0 || this.slots.expired(s, now)) return -1;
    return s;
  }

  /**
   * set stores a flow (replacing the key's entry if present); evicts a flow when the table is full.
   * A new flow starts unreferenced: under pressure, flows that never saw a second packet (a SYN flood)
   * go before flows in use. Returns the slot.
   */
  set(
    a: number,
    b: number,
    c: number,
    node: number,
    state: number,
    aux: number,
    ttl: number,
    now: number,
  ): number {
    const t = this.slots;
    let s = t.find(a, b, c);
    if (s >= 0) this.reuse(s);
    else {
      this.makeRoom(now);
      s = t.insert(a, b, c);
    }
    this.store(s, node, state, aux, now, ttl);
    return s;
  }

  /** setWide is `set` for a wide table's key k[at..at+6). */
  setWide(
    k: Int32Array,
    at: number,
    node: number,
    state: number,
    aux: number,
    ttl: number,
    now: number,
  ): number {
    const t = this.slots;
    let s = t.findWide(k, at);
    if (s >= 0) this.reuse(s);
    else {
      this.makeRoom(now);
      s = t.insertWide(k, at);
    }
    this.store(s, node, state, aux, now, ttl);
    return s;
  }

  private reuse(s: number): void {
    this.perNode[this.node(s)]!--;
    this.slots.touch(s);
  }

  private makeRoom(now: number): void {
    const t = this.slots;
    if (!t.full) return;
    const v = t.victim(now);
    const expired = t.expired(v, now);
    this.removeSlot(v);
    this.counters.event(expired ? this.events.expired : this.events.evicted);
  }

  private store(s: number, node: number, state: number, aux: number, now: number, ttl: number): void {
    const t = this.slots;
    t.setValue(s, ((node & 0xffff) << 8) | (state & 0xff));
    t.setAux(s, aux);
    t.setExpiresAfter(s, now, ttl);
    this.perNode[node & 0xffff]!++;
  }

  /** refresh marks a slot used with a new state and a deadline ttl ms after now. */
  refresh(s: number, state: number, now: number, ttl: number): void {
    const t = this.slots;
    t.setValue(s, (t.value(s) & ~0xff) | (state & 0xff));
    t.setExpiresAfter(s, now, ttl);
    t.touch(s);
  }

  removeSlot(s: number): void {
    this.perNode[this.node(s)]!--;
    this.slots.remove(s);
  }

  /**
   * sweep examines up to `budget` slots and removes the expired flows among them; returns how many it
   * removed. Run it now and then (per batch) so idle flows release their node's count.
   */
  sweep(now: number, budget: number): number {
    let removed = 0;
    for (let i = 0; i < budget; i++) {
      const s = this.slots.nextExpired(now, 1);
      if (s < 0) continue;
      this.removeSlot(s);
      this.counters.event(this.events.expired);
      removed++;
    }
    return removed;
  }

  /**
   * entries lists the live flows (allocates: for listings, never per packet). Keys decode as the
   * owner wrote them: client address, client port << 16 | cluster port, cluster address index.
   */
  entries(now: number): FlowEntry[] {
    const t = this.slots;
    const out: FlowEntry[] = [];
    // an empty table is not walked: a walk reads every page of a table that may never have been used
    // (a 1M-flow table is 32 MiB), and reading them makes them resident
    if (t.size === 0) return out;
    for (let s = 0; s < t.slotCount; s++) {
      if (!t.isUsed(s) || t.expires(s) <= now) continue;
      const wide = t.keyWords === WIDE_KEY_WORDS;
      const b = t.key(s, wide ? 4 : 1);
      out.push({
        clientAddress: wide ? 0 : t.key(s, 0),
        ...(wide ? { clientAddress6: wideAddressText(t, s) } : {}),
        clientPort: b >>> 16,
        clusterPort: b & 0xffff,
        clusterAddressIndex: t.key(s, wide ? 5 : 2),
        node: this.node(s),
        state: flowStateName(this.state(s)),
        expiresInMs: t.expires(s) - now,
      });
    }
    return out;
  }

  /** clear forgets every flow. */
  clear(): void {
    this.slots.clear();
    this.perNode.fill(0);
  }
}

function wideAddressText(t: SlotTable, s: number): string {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  for (let i = 0; i < 4; i++) v.setUint32(4 * i, t.key(s, i));
  return ipv6ToString(b);
}
