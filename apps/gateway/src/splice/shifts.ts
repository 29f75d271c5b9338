import { FlowMap, FlowMap6, type Shift, shiftClientSegment, TcpSegmentView } from '@onehost/splice';
import { TCP_FLAGS } from '@onehost/wire';

/** Flows shifted at most per family; the oldest goes first. */
const MAX_FLOWS = 65_536;

/** A client address: IPv4 as a number, IPv6 as its 16 bytes. */
export type ClientAddress = number | Uint8Array;

/**
 * ShiftTable holds the spliced flows whose offsets their node's agent told the gateway (type-3
 * messages, docs/splice.md), and shifts those flows' client segments into the node's view so they can
 * go to the node's kernel without the agent. IPv4 flows are keyed by address and port, IPv6 ones by
 * their 16-byte address (read in place) and port.
 */
export class ShiftTable {
  /** client segments shifted here, and those left for the agent */
  readonly shifted = new Float64Array(1);
  readonly toAgent = new Float64Array(1);
  private readonly shifts = new FlowMap<Shift>();
  private readonly shifts6 = new FlowMap6<Shift>();
  private readonly seg = new TcpSegmentView();
  /** told of each SYN, FIN and RST of a known flow (the kernel's entries end by them) */
  onControl: ((shift: Shift, flags: number) => void) | null = null;

  /** set records (or replaces) a flow's offsets. */
  set(shift: Shift): void {
    const a6 = shift.clientAddr6;
    if (a6 !== undefined) {
      if (this.shifts6.get(a6, 0, shift.clientPort) === undefined && this.shifts6.size >= MAX_FLOWS)
        this.shifts6.deleteOldest();
      this.shifts6.set(a6, shift.clientPort, shift);
      return;
    }
    const map = this.shifts;
    if (!map.has(shift.clientAddr, shift.clientPort) && map.size >= MAX_FLOWS) map.deleteOldest();
    map.set(shift.clientAddr, shift.clientPort, shift);
  }

  /** get returns a flow's offsets (the connection client:clientPort → clusterPort), if known. */
  get(client: ClientAddress, clientPort: number, clusterPort: number): Shift | undefined {
    const sh =
      typeof client === 'number'
        ? this.shifts.get(client | 0, clientPort)
        : this.shifts6.get(client, 0, clientPort);
    return sh?.clusterPort === clusterPort ? sh : undefined;
  }

  /** forget drops a flow's offsets (the connection client:clientPort → clusterPort), if known. */
  forget(client: ClientAddress, clientPort: number, clusterPort: number): void {
    if (this.get(client, clientPort, clusterPort) === undefined) return;
    if (typeof client === 'number') this.shifts.delete(client | 0, clientPort);
    else this.shifts6.delete(client, 0, clientPort);
  }

  /** size is the number of flows the gateway shifts itself. */
  get size(): number {
    return this.shifts.size + this.shifts6.size;
  }

  /**
   * shiftHere rewrites a spliced client segment (IPv4 or IPv6) into the node's view when its flow's
   * offsets are known, so it can go to the node's kernel directly; FIN and RST still go to the agent,
   * which tracks the end of the flow (the flow is forgotten here on RST, and on SYN: a new connection
   * on the same ports). False: send it to the agent as it is (counted in `toAgent`).
   */
  shiftHere(arena: Uint8Array, off: number, len: number): boolean {
    const seg = this.seg;
    if (!seg.bind(arena, off, len)) {
      this.toAgent[0]!++;
      return false;
    }
    const t = seg.tcp;
    const six = seg.six;
    const key = six ? seg.srcAt : seg.src4; // IPv6: where the address is; IPv4: the address
    const sh = six ? this.shifts6.get(arena, key, t.srcPort) : this.shifts.get(key, t.srcPort);
    if (sh === undefined || sh.clusterPort !== t.dstPort) {
      this.toAgent[0]!++;
      return false;
    }
    const flags = t.flags;
    if ((flags & (TCP_FLAGS.FIN | TCP_FLAGS.RST | TCP_FLAGS.SYN)) !== 0) {
      this.onControl?.(sh, flags);
      if ((flags & (TCP_FLAGS.RST | TCP_FLAGS.SYN)) !== 0) {
        if (six) this.shifts6.delete(arena, key, t.srcPort);
        else this.shifts.delete(key, t.srcPort);
      }
      this.toAgent[0]!++;
      return false;
    }
    shiftClientSegment(t, sh.nodePort, sh.sOff, sh.tsOff);
    this.shifted[0]!++;
    return true;
  }
}
