import type { PortRange } from '../port-blocks.js';
import type { ExportsRecord, MemberRecord, StoreContents } from './records.js';

/** AllocationRules is how a new member's id and port block are chosen. */
export interface AllocationRules {
  portRange: PortRange;
  blockSize: number;
  /** the highest node id that may be handed out */
  maxNodeId: number;
}

/** NewMember is a new member's record before it has an id and a block. */
export type NewMember = Omit<MemberRecord, 'id' | 'block'>;

/**
 * Allocation is what allocateMember did: `created` a record with a fresh id and block, found the
 * `existing` record of that name (another gateway admitted the node first), or found the ids or the
 * blocks `exhausted`.
 */
export type Allocation =
  | { kind: 'created'; member: MemberRecord }
  | { kind: 'existing'; member: MemberRecord }
  | { kind: 'exhausted'; what: 'ids' | 'blocks'; holders: number };

/**
 * ControlStore is where the control plane keeps membership and exports. The embedded default
 * (`FileStore`) keeps them in the gateway process and in a local file; a shared store (etcd) lets
 * several gateways agree on them. Writes resolve once they are durable; they reject when the write
 * failed (the caller's RPC then fails).
 */
export interface ControlStore {
  /** load returns everything stored. Throws when the stored state cannot be read or is malformed. */
  load(): Promise<StoreContents>;
  /**
   * allocateMember, in a store that several gateways share, chooses a new member's id and block and
   * stores its record in one atomic step, so two gateways never hand out the same id or block. A store
   * with one writer (the embedded one) leaves it out: membership allocates from its own records.
   * Rejects when the store cannot be reached.
   */
  allocateMember?(m: NewMember, rules: AllocationRules): Promise<Allocation>;
  /** putMember creates or replaces the record for `m.name`; the id counter moves past `m.id`. */
  putMember(m: MemberRecord): Promise<void>;
  deleteMember(name: string): Promise<void>;
  putExports(r: ExportsRecord): Promise<void>;
  deleteExports(nodeName: string): Promise<void>;
  /** close waits for pending writes. */
  close(): Promise<void>;
}
