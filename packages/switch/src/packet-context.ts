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
  /** an IPv6 flow's key for a wide flow table (`fillKey6`): address words, ports word, cluster address index */
  readonly key6 = new Int32Array(6);

  /** fillKey6 writes the key of an IPv6 flow: the address at `p.addr6[addrAt]`, then `b` and `c`. */
  fillKey6(addrAt: number, b: number, c: number): Int32Array {
    const k = this.key6;
    const w = this.p.addr6;
    k[0] = w[addrAt]!;
    k[1] = w[addrAt + 1]!;
    k[2] = w[addrAt + 2]!;
    k[3] = w[addrAt + 3]!;
    k[4] = b;
    k[5] = c;
    return k;
  }
}
