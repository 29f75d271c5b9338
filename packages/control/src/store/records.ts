import type { PortRange } from '../port-blocks.js';

/**
 * MemberStateName is a member's state: active, draining (operator), unreachable (heartbeating, but the
 * gateway's data-path probes go unanswered), or down.
 */
export type MemberStateName = 'active' | 'draining' | 'unreachable' | 'down';

/** MemberRecord is what the store keeps per node name. Ids and blocks never change for a name. */
export interface MemberRecord {
  name: string;
  id: number;
  block: PortRange;
  internalAddress: string;
  vxlanMac: string;
  capabilities: string[];
  /** operator's drain, kept across downs and rejoins until lifted. */
  drained: boolean;
  state: MemberStateName;
  /** Unix ms of the last join or heartbeat this gateway saw; 0 when never. */
  lastSeenUnixMs: number;
  /** why the node is down or unreachable; '' while it is up. */
  downReason: string;
}

/**
 * HealthRecord is one of a node's health checks as its agent reported it. Kept in memory only: a node
 * that comes back reports again.
 */
export interface HealthRecord {
  name: string;
  description: string;
  /** switch entries it covers, "tcp/80" */
  covers: string[];
  healthy: boolean;
  detail: string;
  sinceUnixMs: number;
}

/** HandleLayoutRecord is where the export id sits in the node's NFS file handles. */
export interface HandleLayoutRecord {
  offset: number;
  length: number;
  endian: 'big' | 'little';
}

/** ExportsRecord is one node's MOUNT registration (Mount Port Table and Cluster Export Table rows). */
export interface ExportsRecord {
  nodeName: string;
  mountPorts: { tcp?: number; udp?: number };
  exports: { path: string; exportId: number }[];
  handleLayout: HandleLayoutRecord;
  registeredUnixMs: number;
}

/** StoreContents is everything a store holds. */
export interface StoreContents {
  members: MemberRecord[];
  exports: ExportsRecord[];
  /** the next node id to hand out: ids are never reused, even after ForgetMember. */
  nextNodeId: number;
}
