/**
 * Decisions the switch makes per packet. The hot path writes them into one reused `DecisionOut`
 * (small integers only); `Decision` is the tagged union handed to people and tools (explain, the CLI).
 */

/** Decision kinds as small integers (the packet loop stores them in typed arrays). */
export const KIND = {
  /** send to a node over the interconnect, the destination address untouched (claim 15). */
  FORWARD: 1,
  /** the gateway host's own stack handles it (box 580: NODE_ADDR is the gateway). */
  LOCAL: 2,
  DROP: 3,
} as const;

export type KindCode = (typeof KIND)[keyof typeof KIND];

/** NO_PORT in `DecisionOut.port`: the destination port stays as it is (box 570 does nothing). */
export const NO_PORT = -1;

/**
 * DecisionOut is the reusable result of one decision. `node` is a node id (meaningful for FORWARD),
 * `port` the new destination port or NO_PORT, `reason` a DROP_* code (meaningful for DROP).
 */
export class DecisionOut {
  kind: number = KIND.DROP;
  node = -1;
  port = NO_PORT;
  reason = 0;
  /** FORWARD of a spliced TCP flow (delayed binding): the node's agent takes it, not its kernel. */
  spliced = false;

  forward(node: number, port: number): void {
    this.kind = KIND.FORWARD;
    this.node = node;
    this.port = port;
    this.reason = 0;
    this.spliced = false;
  }

  /** forwardSpliced sends a segment of a handed-over TCP flow to its node's agent (docs/splice.md). */
  forwardSpliced(node: number): void {
    this.kind = KIND.FORWARD;
    this.node = node;
    this.port = NO_PORT;
    this.reason = 0;
    this.spliced = true;
  }

  local(): void {
    this.kind = KIND.LOCAL;
    this.node = -1;
    this.port = NO_PORT;
    this.reason = 0;
    this.spliced = false;
  }

  drop(reason: number): void {
    this.kind = KIND.DROP;
    this.node = -1;
    this.port = NO_PORT;
    this.reason = reason;
    this.spliced = false;
  }

  copyFrom(o: DecisionOut): void {
    this.kind = o.kind;
    this.node = o.node;
    this.port = o.port;
    this.reason = o.reason;
    this.spliced = o.spliced;
  }
}

/** Decision is the readable form: forward(node, newDstPort?), local, drop(reason). */
export type Decision =
  | { kind: 'forward'; node: number; nodeName: string; port?: number; spliced?: boolean }
  | { kind: 'local' }
  | { kind: 'drop'; reason: string };
