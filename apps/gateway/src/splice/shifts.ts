import { FlowMap, type Shift, shiftClientSegment } from '@onehost/splice';
import { IPPROTO, Ipv4View, OK, TCP_FLAGS, TcpView } from '@onehost/wire';

/** Flows shifted at most; the oldest goes first. */
const MAX_FLOWS = 65_536;

/**
 * ShiftTable holds the spliced flows whose offsets their node's agent told the gateway (type-3
 * messages, docs/splice.md), and shifts those flows' client segments into the node's view so they can
 * go to the node's kernel without the agent.
 */
export class ShiftTable {
  /** client segments shifted here, and those left for the agent */
  readonly shifted = new Float64Array(1);
  readonly toAgent = new Float64Array(1);
  private readonly shifts = new FlowMap<Shift>();
  private readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  /** told of each SYN, FIN and RST of a known flow (the kernel's entries end by them) */
  onControl: ((client: number, clientPort: number, clusterPort: number, flags: number) => void) | null = null;

  /** set records (or replaces) a flow's offsets. */
  set(shift: Shift): void {
    const map = this.shifts;
    if (!map.has(shift.clientAddr, shift.clientPort) && map.size >= MAX_FLOWS) map.deleteOldest();
    map.set(shift.clientAddr, shift.clientPort, shift);
  }

  /** get returns a flow's offsets (the connection client:clientPort → clusterPort), if known. */
  get(clientAddr: number, clientPort: number, clusterPort: number): Shift | undefined {
    const sh = this.shifts.get(clientAddr | 0, clientPort);
    return sh?.clusterPort === clusterPort ? sh : undefined;
  }

  /** forget drops a flow's offsets (the connection client:clientPort → clusterPort), if known. */
  forget(clientAddr: number, clientPort: number, clusterPort: number): void {
    if (this.get(clientAddr, clientPort, clusterPort) !== undefined)
      this.shifts.delete(clientAddr | 0, clientPort);
  }

  /** size is the number of flows the gateway shifts itself. */
  get size(): number {
    return this.shifts.size;
  }

  /**
   * shiftHere rewrites a spliced client segment into the node's view when its flow's offsets are known,
   * so it can go to the node's kernel directly; FIN and RST still go to the agent, which tracks the end
   * of the flow (the flow is forgotten here on RST, and on SYN: a new connection on the same ports).
   * False: send it to the agent as it is (counted in `toAgent`).
   */
  shiftHere(arena: Uint8Array, off: number, len: number): boolean {
    const ip = this.ip;
    const t = this.tcp;
    // an IPv6 segment too: its flows are shifted by their agent only (docs/splice.md)
    if (
      ip.bind(arena, off, len) !== OK ||
      ip.protocol !== IPPROTO.TCP ||
      ip.isFragment ||
      t.bind(arena, ip.payloadOffset, ip.payloadLength) !== OK
    ) {
      this.toAgent[0]!++;
      return false;
    }
    const src = ip.srcI32; // int32: `ip.src` of 2^31 or more may come back boxed
    const sh = this.shifts.get(src, t.srcPort);
    if (sh === undefined || sh.clusterPort !== t.dstPort) {
      this.toAgent[0]!++;
      return false;
    }
    const flags = t.flags;
    if ((flags & (TCP_FLAGS.FIN | TCP_FLAGS.RST | TCP_FLAGS.SYN)) !== 0) {
      this.onControl?.(src, t.srcPort, t.dstPort, flags);
      if ((flags & (TCP_FLAGS.RST | TCP_FLAGS.SYN)) !== 0) this.shifts.delete(src, t.srcPort);
      this.toAgent[0]!++;
      return false;
    }
    shiftClientSegment(t, sh.nodePort, sh.sOff, sh.tsOff);
    this.shifted[0]!++;
    return true;
  }
}
