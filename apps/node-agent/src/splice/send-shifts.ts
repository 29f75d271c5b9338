import {
  encodeShift,
  SHIFT_LENGTH,
  SHIFT6_LENGTH,
  SHIFTS_PER_DATAGRAM,
  SHIFTS6_PER_DATAGRAM,
  type Shift,
} from '@onehost/splice';

/** Datagrams sent per turn of the event loop: 960 flows. */
export const SHIFT_BURST = 16;

/**
 * sendShifts sends flows' offsets to gateways as type-3 records, SHIFTS_PER_DATAGRAM to a datagram
 * (IPv6 flows' records, twice as long, SHIFTS6_PER_DATAGRAM to one of their own; docs/splice.md,
 * "Several gateways"). Many at once (a resync's answer, the minute's refresh) go SHIFT_BURST datagrams
 * per turn of the event loop, so neither the agent's loop nor a gateway's receive buffer is flooded.
 * `send` copies the datagram (or refuses: false, and the rest is not sent); `buf` holds one datagram.
 * Resolves once all were handed over.
 */
export async function sendShifts(
  shifts: readonly Shift[],
  gateways: readonly string[],
  send: (gateway: string, datagram: Uint8Array) => boolean,
  buf: Uint8Array = new Uint8Array(SHIFT_LENGTH * SHIFTS_PER_DATAGRAM),
): Promise<void> {
  let datagrams = 0;
  const families = [
    { list: shifts.filter((s) => s.clientAddr6 === undefined), per: SHIFTS_PER_DATAGRAM },
    {
      list: shifts.filter((s) => s.clientAddr6 !== undefined),
      per: Math.min(SHIFTS6_PER_DATAGRAM, Math.floor(buf.length / SHIFT6_LENGTH)),
    },
  ];
  for (const { list, per } of families) {
    for (let i = 0; i < list.length; i += per) {
      let n = 0;
      for (let k = i; k < Math.min(list.length, i + per); k++) n += encodeShift(list[k]!, buf, n);
      for (const g of gateways) if (!send(g, buf.subarray(0, n))) return;
      if (++datagrams % SHIFT_BURST === 0) await new Promise((r) => setImmediate(r));
    }
  }
}
