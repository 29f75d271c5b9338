import { PacketSummary } from '@onehost/wire';
import type { NodeDirectory } from './node-directory.js';
import type { Trace } from './trace.js';

/**
 * PacketContext is what a routing function sees for one packet: the bytes, the parsed summary, which
 * cluster address it came to, the time, and whether to record a trace or to leave state untouched.
 * One instance per switch, refilled per packet.
 */
export class PacketContext {
  buf: Uint8Array = new Uint8Array(0);
  readonly p = new PacketSummary();
  /** index of the destination cluster address in the snapshot's list. */
  vip = 0;
  /** milliseconds on the switch's clock. */
  now = 0;
  trace: Trace | null = null;
  /** dryRun: decide without creating, refreshing or removing any state (explain of a live table). */
  dryRun = false;
  nodes!: NodeDirectory;
}
