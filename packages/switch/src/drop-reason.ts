/**
 * Drop reasons. Every drop the switch makes carries one of these codes, and every code has a counter
 * (`SwitchCounters.drops`), so an operator can tell why traffic vanished without a packet log.
 */
export const DROP = {
  /** 515 no: the destination is neither a cluster address nor a node reachable for management. */
  NOT_CLUSTER_ADDRESS: 1,
  /** 515 no: a node's internal address, from a source not on the management list. */
  MANAGEMENT_DENIED: 2,
  /** the IPv4/TCP/UDP/ICMP headers end before they should. */
  TRUNCATED: 3,
  /** the headers contradict the format. */
  MALFORMED: 4,
  /** connection manager: not a SYN and no entry (Fig. 10: "the message is discarded"). */
  NO_CONNECTION: 5,
  /** the chosen node is down and there is no operating node to take over. */
  NODE_DOWN: 6,
  /** a new flow found no active node among the function's nodes. */
  NO_ACTIVE_NODE: 7,
  /** a non-first IP fragment (either family) whose first fragment was not seen (or timed out). */
  FRAGMENT_UNKNOWN: 8,
  /** an ICMP error quoting a flow that no routing function knows. */
  ICMP_UNKNOWN_FLOW: 9,
  /** the port block's owner is down: the node that opened the connection cannot answer. */
  PORT_BLOCK_OWNER_DOWN: 10,
  /** an IPv6 packet for an entry whose function routes IPv4 only (MOUNT and NFS over TCP: delayed binding). */
  IPV6_UNSUPPORTED: 11,
} as const;

const NAMES: string[] = [];
NAMES[DROP.NOT_CLUSTER_ADDRESS] = 'not_cluster_address';
NAMES[DROP.MANAGEMENT_DENIED] = 'management_denied';
NAMES[DROP.TRUNCATED] = 'truncated';
NAMES[DROP.MALFORMED] = 'malformed';
NAMES[DROP.NO_CONNECTION] = 'no_connection';
NAMES[DROP.NODE_DOWN] = 'node_down';
NAMES[DROP.NO_ACTIVE_NODE] = 'no_active_node';
NAMES[DROP.FRAGMENT_UNKNOWN] = 'fragment_unknown';
NAMES[DROP.ICMP_UNKNOWN_FLOW] = 'icmp_unknown_flow';
NAMES[DROP.PORT_BLOCK_OWNER_DOWN] = 'port_block_owner_down';
NAMES[DROP.IPV6_UNSUPPORTED] = 'ipv6_unsupported';

/** DROP_REASON_COUNT bounds the codes (counter arrays are this long). */
export const DROP_REASON_COUNT = NAMES.length;

/** dropReasonName returns the stable snake_case name of a code (a metric label), or `unknown_<code>`. */
export function dropReasonName(code: number): string {
  return NAMES[code] ?? `unknown_${code}`;
}

/** allDropReasons lists every code with its name, for metrics that pre-create one counter per reason. */
export function allDropReasons(): { code: number; name: string }[] {
  const out: { code: number; name: string }[] = [];
  for (let c = 1; c < NAMES.length; c++) out.push({ code: c, name: NAMES[c]! });
  return out;
}
