/** PortRange is an inclusive range of ports [lo, hi]. */
export interface PortRange {
  lo: number;
  hi: number;
}

/** DEFAULT_PORT_RANGE is Linux's default ephemeral range (net.ipv4.ip_local_port_range). */
export const DEFAULT_PORT_RANGE: PortRange = { lo: 32768, hi: 60999 };
/** DEFAULT_BLOCK_SIZE ports per node: 27 nodes fit the default range. */
export const DEFAULT_BLOCK_SIZE = 1024;

/**
 * checkPortBlockConfig checks an ephemeral range and block size. Throws RangeError when the range is
 * not within 1024-65535 or holds no block.
 */
export function checkPortBlockConfig(range: PortRange, blockSize: number): void {
  const { lo, hi } = range;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1024 || hi > 65535 || lo > hi)
    throw new RangeError(`port range ${lo}-${hi}: must lie within 1024-65535, lo ≤ hi`);
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > hi - lo + 1)
    throw new RangeError(`block size ${blockSize}: must be 1 to ${hi - lo + 1} (the range's size)`);
}

/**
 * allocatePortBlock returns the lowest block of `size` ports, aligned on `range.lo`, that overlaps none
 * of `taken` (blocks allocated earlier stay where they are, even when the configuration changed since),
 * or null when the range has no free block.
 */
export function allocatePortBlock(
  range: PortRange,
  size: number,
  taken: readonly PortRange[],
): PortRange | null {
  for (let lo = range.lo; lo + size - 1 <= range.hi; lo += size) {
    const hi = lo + size - 1;
    if (!taken.some((t) => t.lo <= hi && lo <= t.hi)) return { lo, hi };
  }
  return null;
}
