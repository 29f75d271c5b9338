import { maglevSlot, maglevSlot6 } from '../hash.js';
import type { NodeDirectory } from '../node-directory.js';
import { buildMaglev } from '../tables/maglev.js';
import { activeBackends } from './candidates.js';
import type { RoutingDeps } from './types.js';

/**
 * MaglevPicker maps a client flow (source address, source port) to one of a function's active nodes
 * through a Maglev table built once per snapshot (shared between entries with the same node set).
 * `lastSlot` tells explain which slot was read.
 */
export class MaglevPicker {
  readonly table: Int32Array;
  readonly size: number;
  lastSlot = -1;

  constructor(ids: Int32Array, size: number, deps: RoutingDeps) {
    const backends = activeBackends(ids, deps.nodes);
    const key = `maglev:${size}:${backends.map((b) => `${b.id}=${b.name}`).join(',')}`;
    this.table = deps.memo(key, () => buildMaglev(backends, size));
    this.size = size;
  }

  /** pick returns the node id for the flow, or -1 when no node is active. */
  pick(srcAddr: number, srcPort: number): number {
    const slot = maglevSlot(srcAddr, srcPort, this.size);
    this.lastSlot = slot;
    return this.table[slot]!;
  }

  /**
   * pick6 is pick for an IPv6 client whose address is at buf[off, off+16): the slot the kernel fast
   * path's `jhash ip6 saddr . th sport` reads, so user space and the kernel place a flow alike.
   */
  pick6(buf: Uint8Array, off: number, srcPort: number): number {
    const slot = maglevSlot6(buf, off, srcPort, this.size);
    this.lastSlot = slot;
    return this.table[slot]!;
  }
}

/** RoundRobinCursor is the patent's policy (claim 14): the next active node after the last one chosen. */
export class RoundRobinCursor {
  next = 0;

  /** pick returns the next active node id in `ids` order, or -1; advances unless `peek`. */
  pick(ids: Int32Array, nodes: NodeDirectory, peek: boolean): number {
    const n = ids.length;
    for (let i = 0; i < n; i++) {
      const at = (this.next + i) % n;
      const id = ids[at]!;
      if (nodes.isActive(id)) {
        if (!peek) this.next = (at + 1) % n;
        return id;
      }
    }
    return -1;
  }
}

/**
 * pickLeastConn returns the active node with the fewest live flows (first in order on ties), or -1; with
 * `more` (the IPv6 flows' counts) a node's flows of both families count.
 */
export function pickLeastConn(
  ids: Int32Array,
  nodes: NodeDirectory,
  perNode: Int32Array,
  more: Int32Array | null = null,
): number {
  let best = -1;
  let bestCount = Infinity;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!nodes.isActive(id)) continue;
    const c = more === null ? perNode[id]! : perNode[id]! + more[id]!;
    if (c < bestCount) {
      best = id;
      bestCount = c;
    }
  }
  return best;
}
