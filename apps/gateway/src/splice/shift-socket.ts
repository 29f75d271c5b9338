import { createSocket } from 'node:dgram';
import { decodeResyncDone, decodeShifts, type Shift } from '@onehost/splice';
import type { Logger } from 'pino';

export interface ShiftSocketOptions {
  /** the gateway's interconnect address and the splice port (0: any): where the agents send to */
  address: string;
  port: number;
  /** whether a datagram's source is a member's internal address (only members are heard) */
  isMember(address: string): boolean;
  /** takes each flow's offsets */
  shifts: { setShift(shift: Shift, from: string): void };
  /** told when an agent's answer to this gateway's resync request ends (type 5): how many flows it had */
  onResyncDone?(from: string, flows: number): void;
  log: Logger;
}

/**
 * openShiftSocket binds the UDP socket on which the agents tell the gateway each spliced flow's offsets
 * (type-3 messages, docs/splice.md; type 5 ends an answer to a resync request); from then on the data
 * path shifts the client's segments itself.
 * Anything else, or anything from a stranger, is refused (logged once). Resolves once bound, with the
 * port and the function that closes it; rejects when the bind fails (e.g. the port is taken).
 */
export async function openShiftSocket(o: ShiftSocketOptions): Promise<{
  port: number;
  /** send sends a datagram from this socket (its errors are logged by the socket's error handler) */
  send(message: Uint8Array, address: string, port: number): void;
  close(): Promise<void>;
}> {
  const socket = createSocket({ type: 'udp4' });
  let strangerLogged = false;
  const shifts: Shift[] = [];
  socket.on('message', (msg, from) => {
    const member = o.isMember(from.address);
    const ok = member && decodeShifts(msg, 0, msg.length, shifts);
    const done = member && !ok ? decodeResyncDone(msg, 0, msg.length) : -1;
    if (done >= 0) {
      o.onResyncDone?.(from.address, done);
      return;
    }
    if (!ok) {
      if (!strangerLogged)
        o.log.warn(
          { from: from.address, member, type: msg[0], length: msg.length },
          'splice message refused (logged once)',
        );
      strangerLogged = true;
      return;
    }
    for (const shift of shifts) o.shifts.setShift(shift, from.address);
  });
  socket.on('error', (err) => o.log.warn({ err: err.message }, 'splice socket error'));
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: o.address, port: o.port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    socket.close();
    throw e;
  }
  return {
    port: socket.address().port,
    // a copy: the send completes later and callers reuse their buffer (once per connection, not per packet)
    send: (message, address, port) => socket.send(Buffer.from(message), port, address),
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}
