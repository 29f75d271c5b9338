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
 * StoreEvent is a change another writer (another gateway) made to a shared store: a member or an
 * exports record put (`record`) or deleted (null), or `reload` when the store could not say what
 * changed (its history was compacted away) and hands over everything it holds instead.
 */
export type StoreEvent =
  | { kind: 'member'; name: string; record: MemberRecord | null }
  | { kind: 'exports'; nodeName: string; record: ExportsRecord | null }
  | { kind: 'reload'; contents: StoreContents };

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
  /**
   * watch, in a store that several gateways share, reports the changes other writers make from the
   * state `load` returned on: none is missed between the load and the watch, nor while the store is
   * unreachable. This store's own writes are not reported. Resolves once watching. A store with one
   * writer (the embedded one) leaves it out. Throws when called before `load`.
   */
  watch?(listener: (e: StoreEvent) => void): Promise<void>;
  /** close waits for pending writes (and ends a watch). */
  close(): Promise<void>;
}
