import type { DecisionOut } from '../decision.js';
import { SlotTable } from './slot-table.js';

/**
 * FragmentTable remembers the decision made for a first IP fragment (the only one carrying ports) so the
 * later fragments of the same datagram, keyed by (source, destination, protocol, identification; RFC 791
 * §3.2), follow it. Bounded (least recently used evicted) and timed out.
 */
export class FragmentTable {
  readonly slots: SlotTable;
  private readonly kind: Uint8Array;
  private readonly node: Int32Array;
  private readonly port: Int32Array;
  private readonly reason: Uint8Array;

  /** constructor throws RangeError for a capacity SlotTable refuses. */
  constructor(capacity: number) {
    this.slots = new SlotTable(capacity);
    this.kind = new Uint8Array(capacity);
    this.node = new Int32Array(capacity);
    this.port = new Int32Array(capacity);
    this.reason = new Uint8Array(capacity);
  }

  get size(): number {
    return this.slots.size;
  }

  /** remember stores `d` for the datagram until `expires`; returns true when it evicted another datagram. */
  remember(src: number, dst: number, protocol: number, id: number, d: DecisionOut, expires: number): boolean {
    const c = ((protocol & 0xff) << 16) | (id & 0xffff);
    let s = this.slots.find(src, dst, c);
    let evicted = false;
    if (s >= 0) this.slots.touch(s);
    else {
      if (this.slots.full) {
        this.slots.remove(this.slots.tail);
        evicted = true;
      }
      s = this.slots.insert(src, dst, c);
    }
    this.kind[s] = d.kind;
    this.node[s] = d.node;
    this.port[s] = d.port;
    this.reason[s] = d.reason;
    this.slots.expires[s] = expires;
    return evicted;
  }

  /** recall writes the remembered decision into `out` and returns true, or returns false when none is live. */
  recall(src: number, dst: number, protocol: number, id: number, now: number, out: DecisionOut): boolean {
    const s = this.slots.find(src, dst, ((protocol & 0xff) << 16) | (id & 0xffff));
    if (s < 0) return false;
    if (this.slots.expires[s]! <= now) {
      this.slots.remove(s);
      return false;
    }
    out.kind = this.kind[s]!;
    out.node = this.node[s]!;
    out.port = this.port[s]!;
    out.reason = this.reason[s]!;
    return true;
  }
}
