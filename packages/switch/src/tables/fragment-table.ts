import type { DecisionOut } from '../decision.js';
import { SlotTable, WIDE_KEY_WORDS } from './slot-table.js';

/**
 * FragmentTable remembers the decision made for a first IP fragment (the only one carrying ports) so the
 * later fragments of the same datagram follow it. IPv4 datagrams are keyed by (source, destination,
 * protocol, identification; RFC 791 §3.2); IPv6 ones, in a wide table of their own, by (source,
 * destination, identification; RFC 8200 §4.5), the destination as the index of its cluster address.
 * Each family's table is bounded (CLOCK eviction, expired first) and timed out. The decision is packed
 * into the slot: value = kind << 16 | node + 1, aux = reason << 17 | port + 1.
 */
export class FragmentTable {
  readonly slots: SlotTable;
  /** IPv6 datagrams (six key words: the source, the identification, the cluster address index); null without IPv6 */
  readonly slots6: SlotTable | null;

  /** constructor throws RangeError for a capacity SlotTable refuses. */
  constructor(capacity: number, ipv6 = false) {
    this.slots = new SlotTable(capacity);
    this.slots6 = ipv6 ? new SlotTable(capacity, WIDE_KEY_WORDS) : null;
  }

  get size(): number {
    return this.slots.size + (this.slots6?.size ?? 0);
  }

  /** remember stores `d` for the datagram for ttl ms after now; returns true when it evicted another live datagram. */
  remember(
    src: number,
    dst: number,
    protocol: number,
    id: number,
    d: DecisionOut,
    now: number,
    ttl: number,
  ): boolean {
    const t = this.slots;
    const c = ((protocol & 0xff) << 16) | (id & 0xffff);
    let s = t.find(src | 0, dst | 0, c);
    let evicted = false;
    if (s >= 0) t.touch(s);
    else {
      if (t.full) evicted = evict(t, now);
      s = t.insert(src | 0, dst | 0, c);
    }
    store(t, s, d, now, ttl);
    return evicted;
  }

  /** recall writes the remembered decision into `out` and returns true, or returns false when none is live. */
  recall(src: number, dst: number, protocol: number, id: number, now: number, out: DecisionOut): boolean {
    const t = this.slots;
    return load(t, t.find(src | 0, dst | 0, ((protocol & 0xff) << 16) | (id & 0xffff)), now, out);
  }

  /**
   * remember6 is `remember` for an IPv6 datagram whose key is k[0..6) (`PacketContext.fillKey6` of the
   * source, the 32-bit identification and the cluster address index); false without an IPv6 table.
   */
  remember6(k: Int32Array, d: DecisionOut, now: number, ttl: number): boolean {
    const t = this.slots6;
    if (t === null) return false;
    let s = t.findWide(k, 0);
    let evicted = false;
    if (s >= 0) t.touch(s);
    else {
      if (t.full) evicted = evict(t, now);
      s = t.insertWide(k, 0);
    }
    store(t, s, d, now, ttl);
    return evicted;
  }

  /** recall6 is `recall` for the IPv6 datagram keyed k[0..6). */
  recall6(k: Int32Array, now: number, out: DecisionOut): boolean {
    const t = this.slots6;
    return t !== null && load(t, t.findWide(k, 0), now, out);
  }
}

/** evict removes CLOCK's victim from a full table; true when it was still live. */
function evict(t: SlotTable, now: number): boolean {
  const v = t.victim(now);
  const live = !t.expired(v, now);
  t.remove(v);
  return live;
}

function store(t: SlotTable, s: number, d: DecisionOut, now: number, ttl: number): void {
  t.setValue(s, ((d.kind & 0xff) << 16) | ((d.node + 1) & 0xffff));
  t.setAux(s, ((d.reason & 0xff) << 17) | ((d.port + 1) & 0x1ffff));
  t.setExpiresAfter(s, now, ttl);
}

/** load unpacks slot `s` into `out` when it is live; an expired slot is removed. */
function load(t: SlotTable, s: number, now: number, out: DecisionOut): boolean {
  if (s < 0) return false;
  if (t.expired(s, now)) {
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
