import { ipv4ToString } from '@onehost/wire';
import type { HandleLayout, NodeConfig, NodeStateName } from './config/types.js';
import { NODE_ID_LIMIT } from './tables/flow-table.js';

/** Node states as small integers; NONE means "not a member" (a removed node, an unknown id). */
export const NODE_STATE = { NONE: 0, ACTIVE: 1, DRAINING: 2, DOWN: 3 } as const;

const STATE_CODES: Record<NodeStateName, number> = {
  active: NODE_STATE.ACTIVE,
  draining: NODE_STATE.DRAINING,
  down: NODE_STATE.DOWN,
};

export interface NodeInfo {
  readonly id: number;
  readonly name: string;
  readonly address: number;
  readonly state: NodeStateName;
  readonly mountd: { readonly udp?: number; readonly tcp?: number };
  readonly nfsHandle: HandleLayout;
}

/**
 * NodeDirectory is the immutable node part of a table snapshot: lookups by id (dense arrays, per packet),
 * by name and by internal address.
 */
export class NodeDirectory {
  readonly nodes: readonly NodeInfo[];
  /** state by node id: NODE_STATE codes. */
  readonly state = new Uint8Array(NODE_ID_LIMIT);
  readonly gatewayId: number;
  private readonly byId: (NodeInfo | undefined)[] = [];
  private readonly byName = new Map<string, NodeInfo>();
  private readonly byAddress = new Map<number, NodeInfo>();

  /** constructor throws Error on duplicate ids/names/addresses, an id outside [0, 65534], or an unknown gateway name (validation catches these first). */
  constructor(nodes: readonly NodeConfig[], gatewayName: string) {
    const list: NodeInfo[] = [];
    for (const n of nodes) {
      if (!Number.isInteger(n.id) || n.id < 0 || n.id >= NODE_ID_LIMIT - 1)
        throw new Error(`node id ${n.id} out of range`);
      if (this.byId[n.id] !== undefined) throw new Error(`node id ${n.id} twice`);
      if (this.byName.has(n.name)) throw new Error(`node name ${n.name} twice`);
      if (this.byAddress.has(n.address)) throw new Error(`node address ${ipv4ToString(n.address)} twice`);
      const info: NodeInfo = Object.freeze({
        id: n.id,
        name: n.name,
        address: n.address,
        state: n.state,
        mountd: Object.freeze({ ...n.mountd }),
        nfsHandle: Object.freeze({ ...n.nfsHandle }),
      });
      list.push(info);
      this.byId[n.id] = info;
      this.byName.set(n.name, info);
      this.byAddress.set(n.address, info);
      this.state[n.id] = STATE_CODES[n.state];
    }
    const gw = this.byName.get(gatewayName);
    if (gw === undefined) throw new Error(`gateway ${gatewayName} is not a node`);
    this.gatewayId = gw.id;
    this.nodes = Object.freeze(list);
  }

  get(id: number): NodeInfo | undefined {
    return this.byId[id];
  }

  named(name: string): NodeInfo | undefined {
    return this.byName.get(name);
  }

  atAddress(address: number): NodeInfo | undefined {
    return this.byAddress.get(address);
  }

  /** nameOf returns a node's name, or `#<id>` for an id that is not a member. */
  nameOf(id: number): string {
    return this.byId[id]?.name ?? `#${id}`;
  }

  /** isActive: takes new flows. */
  isActive(id: number): boolean {
    return this.state[id] === NODE_STATE.ACTIVE;
  }

  /** isUp: keeps the flows it has (active or draining). */
  isUp(id: number): boolean {
    const s = this.state[id]!;
    return s === NODE_STATE.ACTIVE || s === NODE_STATE.DRAINING;
  }
}
