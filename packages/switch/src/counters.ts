import { errorInfo } from '@onehost/wire';
import { DROP_REASON_COUNT, dropReasonName } from './drop-reason.js';

/**
 * Events worth counting that are not drops: fallbacks to the gateway, table churn, failovers.
 * Counted in a Float64Array (exact to 2^53, no overflow in practice) so the packet loop never allocates.
 */
export const EVENT = {
  /** box 525 no: not a port-type protocol, handed to the gateway. */
  NOT_PORT_TYPE: 0,
  /** an ICMP error routed by its quoted flow. */
  ICMP_QUOTED: 1,
  /** 545 no: no entry and no port block; the gateway handles it. */
  UNKNOWN_PORT: 2,
  /** claim 16: the fixed node is down and its backup took the packet. */
  BACKUP_USED: 3,
  /** management bypass to a node's internal address. */
  MANAGEMENT_BYPASS: 4,
  CONN_CREATED: 5,
  /** a SYN found an entry with another ISN and replaced it (stale entry lost to the new SYN). */
  CONN_REPLACED: 6,
  CONN_SYN_RETRANSMIT: 7,
  /** a non-SYN without an entry, re-derived by Maglev. */
  CONN_REDERIVED: 8,
  /** bounded table full: the least recently used entry was evicted. */
  CONN_EVICTED: 9,
  CONN_EXPIRED: 10,
  /** an entry pointed at a node that is now down or gone; the entry was removed. */
  CONN_NODE_LOST: 11,
  UDP_FLOW_CREATED: 12,
  UDP_FLOW_EVICTED: 13,
  /** an RPC call that could not be parsed (mount/nfs): the gateway handles it. */
  RPC_MALFORMED: 14,
  /** an RPC call for another program or version than the function serves. */
  RPC_WRONG_PROGRAM: 15,
  /** MOUNT: no export matched the dirpath (Fig. 8 box 820). */
  MOUNT_NO_MATCH: 16,
  /** MOUNT: a call the gateway answers itself (NULL, EXPORT, DUMP, UMNTALL). */
  MOUNT_TO_GATEWAY: 17,
  /** NFS: the handle's export id is not registered by any node. */
  NFS_UNKNOWN_EXPORT: 18,
  /** NFS: NULL or a call without a file handle. */
  NFS_TO_GATEWAY: 19,
  /** a TCP segment on a payload-routed port with no RPC record and no remembered flow: the gateway's. */
  RPC_TCP_UNBOUND: 20,
  FRAGMENT_REMEMBERED: 21,
  FRAGMENT_FOLLOWED: 22,
  FRAGMENT_EVICTED: 23,
  PORT_BLOCK_HIT: 24,
  /** an echo reply routed by its identifier to the node whose block holds it (the node's own ping) */
  ECHO_REPLY_BY_BLOCK: 25,
} as const;

const EVENT_NAMES = Object.entries(EVENT)
  .sort((a, b) => a[1] - b[1])
  .map(([k]) => k.toLowerCase());

/**
 * Per-function packet counts (`SwitchCounters.functionPackets`): a table entry's function counts at its
 * registry index (below FUNCTION_SLOT_BASE); these count what no entry decides.
 */
export const FUNCTION_SLOT = {
  /** 545/550: no entry, routed by the port blocks or to the gateway */
  UNMATCHED: 28,
  /** 525: not a port-type protocol (ICMP, others) */
  NON_PORT: 29,
  /** a later fragment, following its first */
  FRAGMENT: 30,
  /** a node's own address (management bypass, or denied) */
  MANAGEMENT: 31,
} as const;
/** FUNCTION_SLOT_BASE: registry indexes below it are functions' own slots. */
export const FUNCTION_SLOT_BASE = 28;
const FUNCTION_SLOT_NAMES = ['unmatched', 'non_port', 'fragment', 'management'];

/** functionSlotName names a `functionPackets` slot: a function kind from `kinds`, or one of FUNCTION_SLOT. */
export function functionSlotName(slot: number, kinds: readonly string[]): string {
  if (slot >= FUNCTION_SLOT_BASE) return FUNCTION_SLOT_NAMES[slot - FUNCTION_SLOT_BASE] ?? `slot_${slot}`;
  return kinds[slot] ?? `slot_${slot}`;
}

/** WIRE_CODE_LIMIT bounds wire error codes counted individually (wire codes are small integers). */
const WIRE_CODE_LIMIT = 1024;

/**
 * SwitchCounters holds every counter of one switch. The arrays are public so the gateway's metrics can
 * read them without copying; `toJSON` gives the named view.
 */
export class SwitchCounters {
  /** decisions by KIND code. */
  readonly decisions = new Float64Array(4);
  /** drops by DROP code. */
  readonly drops = new Float64Array(DROP_REASON_COUNT);
  /** events by EVENT code. */
  readonly events = new Float64Array(EVENT_NAMES.length);
  /** packets the wire parser refused, by wire error code (codes past the limit share the last cell). */
  readonly wireErrors = new Float64Array(WIRE_CODE_LIMIT);
  /** packets the packet loop decided, by function (FUNCTION_SLOT; explain does not count here) */
  readonly functionPackets = new Float64Array(FUNCTION_SLOT_BASE + FUNCTION_SLOT_NAMES.length);

  event(code: number): void {
    this.events[code]!++;
  }

  wireError(code: number): void {
    this.wireErrors[code < WIRE_CODE_LIMIT ? code : WIRE_CODE_LIMIT - 1]!++;
  }

  reset(): void {
    this.decisions.fill(0);
    this.drops.fill(0);
    this.events.fill(0);
    this.wireErrors.fill(0);
    this.functionPackets.fill(0);
  }

  /** toJSON names every non-zero counter (allocates; for tools and tests). */
  toJSON(): {
    decisions: Record<string, number>;
    drops: Record<string, number>;
    events: Record<string, number>;
    wireErrors: Record<string, number>;
  } {
    const decisions: Record<string, number> = {};
    const kinds = ['', 'forward', 'local', 'drop'];
    for (let k = 1; k < 4; k++) if (this.decisions[k]) decisions[kinds[k]!] = this.decisions[k]!;
    const drops: Record<string, number> = {};
    for (let c = 1; c < this.drops.length; c++) if (this.drops[c]) drops[dropReasonName(c)] = this.drops[c]!;
    const events: Record<string, number> = {};
    for (let c = 0; c < this.events.length; c++)
      if (this.events[c]) events[EVENT_NAMES[c]!] = this.events[c]!;
    const wireErrors: Record<string, number> = {};
    for (let c = 0; c < this.wireErrors.length; c++) {
      if (this.wireErrors[c]) wireErrors[errorInfo(c)?.name ?? `code_${c}`] = this.wireErrors[c]!;
    }
    return { decisions, drops, events, wireErrors };
  }
}

/** eventName returns the snake_case name of an EVENT code. */
export function eventName(code: number): string {
  return EVENT_NAMES[code] ?? `unknown_${code}`;
}
