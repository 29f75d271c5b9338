import { createSocket } from 'node:dgram';
import { encodeResyncDone, encodeShift, RESYNC_DONE_LENGTH, SHIFT_LENGTH, type Shift } from '@onehost/splice';
import type { Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { openShiftSocket } from './shift-socket.js';

const SHIFT: Shift = {
  clientAddr: 0xc0000207,
  clusterAddr: 0xcb007164,
  clientPort: 7000,
  clusterPort: 2049,
  nodePort: 2049,
  sOff: -5,
  tsOff: 9,
};

describe('openShiftSocket', () => {
  it('takes shifts and resync ends from members only, refuses strangers and other messages (logged once)', async () => {
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as Logger;
    const got: Shift[] = [];
    const dones: string[] = [];
    let arrived: () => void = () => {};
    const shiftSocket = await openShiftSocket({
      address: '127.0.0.1',
      port: 0,
      isMember: (address) => address === '127.0.0.1',
      shifts: {
        setShift: (s) => {
          got.push(s);
          if (got.length === 3) arrived();
        },
      },
      onResyncDone: (from, flows) => dones.push(`${from} ${flows}`),
      log,
    });
    const member = createSocket('udp4');
    const stranger = createSocket('udp4');
    try {
      await new Promise<void>((r) => stranger.bind(0, '127.0.0.2', r));
      const send = (from: typeof member, b: Uint8Array) =>
        new Promise<void>((r, j) => from.send(b, shiftSocket.port, '127.0.0.1', (e) => (e ? j(e) : r())));
      const good = new Uint8Array(SHIFT_LENGTH);
      encodeShift(SHIFT, good);
      const taken = new Promise<void>((r) => {
        arrived = r;
      });
      // Loopback queues each datagram before its send completes: once the last is taken, the others were seen.
      await send(stranger, good);
      await send(stranger, good);
      await send(member, Uint8Array.of(2, 1, 0, 0)); // not a type-3 message
      await send(member, good.subarray(0, SHIFT_LENGTH - 1));
      const done = new Uint8Array(RESYNC_DONE_LENGTH);
      encodeResyncDone(3, done);
      await send(stranger, done);
      await send(member, done);
      // two records in one datagram, then the last one alone
      const two = new Uint8Array(2 * SHIFT_LENGTH);
      encodeShift({ ...SHIFT, clientPort: 7001 }, two, 0);
      encodeShift({ ...SHIFT, clientPort: 7002 }, two, SHIFT_LENGTH);
      await send(member, two);
      await send(member, good);
      await taken;
      expect(got.map((s) => s.clientPort)).toEqual([7001, 7002, 7000]);
      expect(got[2]).toEqual(SHIFT);
      expect(dones).toEqual(['127.0.0.1 3']);
      expect(warnings).toEqual(['splice message refused (logged once)']);
    } finally {
      member.close();
      stranger.close();
      await shiftSocket.close();
    }
  });

  it('rejects when the port is taken', async () => {
    const first = await openShiftSocket({
      address: '127.0.0.1',
      port: 0,
      isMember: () => true,
      shifts: { setShift: () => {} },
      log: { warn: () => {} } as unknown as Logger,
    });
    try {
      await expect(
        openShiftSocket({
          address: '127.0.0.1',
          port: first.port,
          isMember: () => true,
          shifts: { setShift: () => {} },
          log: { warn: () => {} } as unknown as Logger,
        }),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
