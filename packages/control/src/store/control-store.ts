import type { ExportsRecord, MemberRecord, StoreContents } from './records.js';

/**
 * ControlStore is where the control plane keeps membership and exports. The embedded default
 * (`FileStore`) keeps them in the gateway process and in a local file; a shared store (etcd) lets
 * several gateways agree on them. Writes resolve once they are durable; they reject when the write
 * failed (the caller's RPC then fails).
 */
export interface ControlStore {
  /** load returns everything stored. Throws when the stored state cannot be read or is malformed. */
  load(): Promise<StoreContents>;
  /** putMember creates or replaces the record for `m.name`; the id counter moves past `m.id`. */
  putMember(m: MemberRecord): Promise<void>;
  deleteMember(name: string): Promise<void>;
  putExports(r: ExportsRecord): Promise<void>;
  deleteExports(nodeName: string): Promise<void>;
  /** close waits for pending writes. */
  close(): Promise<void>;
}
