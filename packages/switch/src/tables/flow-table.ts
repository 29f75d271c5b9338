import type { SwitchCounters } from '../counters.js';
import { SlotTable } from './slot-table.js';

/** Flow states (connection manager; other users keep ESTABLISHED). */
export const FLOW = { SYN: 1, ESTABLISHED: 2, FIN: 3, RST: 4 } as const;

const STATE_NAMES = ['', 'syn', 'established', 'fin', 'rst'];

/** flowStateName names a FLOW code. */
export function flowStateName(s: number): string {
  return STATE_NAMES[s] ?? `state_${s}`;
}

/** NODE_ID_LIMIT: node ids are uint16 (they index per-node typed arrays). */
export const NODE_ID_LIMIT = 0x10000;

/** What a flow table counts into the switch counters. */
export interface FlowTableEvents {
  evicted: number;
  expired: number;
}

/**
 * FlowTable remembers which node a flow went to: key (client address, client port << 16 | cluster
 * port, cluster address index) → node, rewritten port, state, TCP ISN, deadline. Bounded: when full, the
 * least recently used flow is evicted. Keeps a live-flow count per node (least-connections).
 *
 * Expired entries are removed when found, and by `sweep` from the old end of the LRU list.
 */
export class FlowTable {
  readonly slots: SlotTable;
  readonly node: Uint16Array;
  /** rewritten destination port, 0 when none. */
  readonly port: Uint16Array;
  readonly state: Uint8Array;
  readonly isn: Uint32Array;
  /** live flows per node id. */
  readonly perNode = new Int32Array(NODE_ID_LIMIT);

  /** constructor throws RangeError for a capacity SlotTable refuses. */
  constructor(
    capacity: number,
    private readonly counters: SwitchCounters,
    private readonly events: FlowTableEvents,
  ) {
    this.slots = new SlotTable(capacity);
    this.node = new Uint16Array(capacity);
    this.port = new Uint16Array(capacity);
    this.state = new Uint8Array(capacity);
    this.isn = new Uint32Array(capacity);
  }

  get size(): number {
    return this.slots.size;
  }

  get capacity(): number {
    return this.slots.capacity;
  }

  /** byteLength is what the table's typed arrays hold (excluding perNode). */
  get byteLength(): number {
    return this.slots.byteLength + this.capacity * (2 + 2 + 1 + 4);
  }

  /** find returns the live slot for the key, or -1; an expired entry is removed on the way. */
  find(a: number, b: number, c: number, now: number): number {
    const s = this.slots.find(a, b, c);
    if (s < 0) return -1;
    if (this.slots.expires[s]! <= now) {
      this.removeSlot(s);
      this.counters.event(this.events.expired);
      return -1;
    }
    return s;
  }

  /** peek is find without side effects: an expired entry reads as absent but stays. */
  peek(a: number, b: number, c: number, now: number): number {
    const s = this.slots.find(a, b, c);
    if (s < 0 || this.slots.expires[s]! <= now) return -1;
    return s;
  }

  /**
   * set stores a flow (replacing the key's entry if present) and makes it the most recent; evicts the
   * least recently used flow when the table is full. Returns the slot.
   */
  set(
    a: number,
    b: number,
    c: number,
    node: number,
    port: number,
    state: number,
    isn: number,
    expires: number,
  ): number {
    let s = this.slots.find(a, b, c);
    if (s >= 0) {
      this.perNode[this.node[s]!]!--;
      this.slots.touch(s);
    } else {
      if (this.slots.full) {
        this.removeSlot(this.slots.tail);
        this.counters.event(this.events.evicted);
      }
      s = this.slots.insert(a, b, c);
    }
    this.node[s] = node;
    this.perNode[node]!++;
    this.port[s] = port;
    this.state[s] = state;
    this.isn[s] = isn;
    this.slots.expires[s] = expires;
    return s;
  }

  /** refresh moves a slot to the recent end with a new state and deadline. */
  refresh(s: number, state: number, expires: number): void {
    this.slots.touch(s);
    this.state[s] = state;
    this.slots.expires[s] = expires;
  }

  removeSlot(s: number): void {
    this.perNode[this.node[s]!]!--;
    this.slots.remove(s);
  }

  /**
   * sweep examines up to `budget` flows from the least recently used end and removes the expired ones;
   * returns how many it removed. Run it now and then (per batch) so idle flows release their node's count.
   */
  sweep(now: number, budget: number): number {
    let removed = 0;
    let s = this.slots.tail;
    for (let i = 0; i < budget && s >= 0; i++) {
      const newer = this.slots.newerThan(s);
      if (this.slots.expires[s]! <= now) {
        this.removeSlot(s);
        this.counters.event(this.events.expired);
        removed++;
      }
      s = newer;
    }
    return removed;
  }

  /** clear forgets every flow. */
  clear(): void {
    this.slots.clear();
    this.perNode.fill(0);
  }
}
