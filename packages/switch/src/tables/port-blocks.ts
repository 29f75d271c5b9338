/** A block of non-specific ports owned by one node (boxes 545/550, claims 4-5). */
export interface PortBlock {
  node: number;
  from: number;
  to: number;
}

/**
 * PortBlocks answers "which node owns this port" in one array read: a dense uint16 map from port to
 * node id + 1 (0 = no owner), 128 KiB per snapshot.
 */
export class PortBlocks {
  private readonly owner = new Uint16Array(0x10000);
  readonly blocks: readonly PortBlock[];

  /** constructor throws RangeError when a block is out of [1, 65535], inverted, overlapping, or its node id is not a uint16 below 65535. */
  constructor(blocks: readonly PortBlock[]) {
    const sorted = [...blocks].sort((a, b) => a.from - b.from);
    for (let i = 0; i < sorted.length; i++) {
      const b = sorted[i]!;
      if (
        !Number.isInteger(b.from) ||
        !Number.isInteger(b.to) ||
        b.from < 1 ||
        b.to > 0xffff ||
        b.from > b.to
      ) {
        throw new RangeError(`port block ${b.from}-${b.to} is not a range within 1-65535`);
      }
      if (!Number.isInteger(b.node) || b.node < 0 || b.node >= 0xffff)
        throw new RangeError(`port block node id ${b.node}`);
      const prev = sorted[i - 1];
      if (prev !== undefined && prev.to >= b.from) {
        throw new RangeError(`port blocks ${prev.from}-${prev.to} and ${b.from}-${b.to} overlap`);
      }
      this.owner.fill(b.node + 1, b.from, b.to + 1);
    }
    this.blocks = sorted;
  }

  /** ownerOf returns the node id owning `port`, or -1 (box 545: not a non-specific port). */
  ownerOf(port: number): number {
    return (this.owner[port & 0xffff]! | 0) - 1;
  }
}
