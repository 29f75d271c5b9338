import type { DecisionOut } from '../decision.js';
import { SlotTable } from './slot-table.js';

/**
 * FragmentTable remembers the decision made for a first IP fragment (the only one carrying ports) so the
 * later fragments of the same datagram, keyed by (source, destination, protocol, identification; RFC 791
 * §3.2), follow it. Bounded (CLOCK eviction, expired first) and timed out. The decision is packed into
 * the slot: value = kind << 16 | node + 1, aux = reason << 17 | port + 1.
 */
export class FragmentTable {
  readonly slots: SlotTable;

  /** constructor throws RangeError for a capacity SlotTable refuses. */
  constructor(capacity: number) {
    this.slots = new SlotTable(capacity);
  }

  get size(): number {
    return this.slots.size;
  }

  /** remember stores `d` for the datagram until `expires`; returns true when it evicted another live datagram. */
  remember(
    src: number,
    dst: number,
    protocol: number,
    id: number,
    d: DecisionOut,
    now: number,
    expires: number,
  ): boolean {
    const t = this.slots;
    const c = ((protocol & 0xff) << 16) | (id & 0xffff);
    let s = t.find(src | 0, dst | 0, c);
    let evicted = false;
    if (s >= 0) t.touch(s);
    else {
      if (t.full) {
        const v = t.victim(now);
        evicted = t.expires(v) > now;
        t.remove(v);
      }
      s = t.insert(src | 0, dst | 0, c);
    }
    t.setValue(s, ((d.kind & 0xff) << 16) | ((d.node + 1) & 0xffff));
    t.setAux(s, ((d.reason & 0xff) << 17) | ((d.port + 1) & 0x1ffff));
    t.setExpires(s, expires);
    return evicted;
  }

  /** recall writes the remembered decision into `out` and returns true, or returns false when none is live. */
  recall(src: number, dst: number, protocol: number, id: number, now: number, out: DecisionOut): boolean {
    const t = this.slots;
    const s = t.find(src | 0, dst | 0, ((protocol & 0xff) << 16) | (id & 0xffff));
    if (s < 0) return false;
    if (t.expires(s) <= now) {
      t.remove(s);
      return false;
    }
    const v = t.value(s);
    const aux = t.aux(s);
    out.kind = v >>> 16;
    out.node = (v & 0xffff) - 1;
    out.port = (aux & 0x1ffff) - 1;
    out.reason = aux >>> 17;
    return true;
  }
}
