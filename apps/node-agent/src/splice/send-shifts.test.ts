import { createSocket } from 'node:dgram';
import { decodeShifts, SHIFTS_PER_DATAGRAM, type Shift } from '@onehost/splice';
import { waitFor } from '@onehost/testkit';
import { describe, expect, it } from 'vitest';
import { sendShifts } from './send-shifts.js';

const shift = (i: number): Shift => ({
  clientAddr: 0xcb00710a,
  clusterAddr: 0xcb007150,
  clientPort: 1 + (i % 65_000),
  clusterPort: 2049,
  nodePort: 2049,
  sOff: i,
  tsOff: -i,
});

describe('sendShifts: many flows told to gateways', () => {
  it('packs 60 records a datagram, to every gateway, in order', async () => {
    const sent: [string, Shift[]][] = [];
    await sendShifts(
      Array.from({ length: 125 }, (_, i) => shift(i)),
      ['198.18.0.1', '198.18.0.2'],
      (g, d) => {
        const out: Shift[] = [];
        expect(decodeShifts(d, 0, d.length, out)).toBe(true);
        sent.push([g, out]);
        return true;
      },
    );
    expect(sent.map(([g, s]) => `${g} ${s.length}`)).toEqual([
      '198.18.0.1 60',
      '198.18.0.2 60',
      '198.18.0.1 60',
      '198.18.0.2 60',
      '198.18.0.1 5',
      '198.18.0.2 5',
    ]);
    expect(sent.filter(([g]) => g === '198.18.0.2').flatMap(([, s]) => s.map((x) => x.sOff))).toEqual(
      Array.from({ length: 125 }, (_, i) => i),
    );
  });

  it('sends IPv6 flows (version 3, 48 bytes a record) 30 a datagram, after the IPv4 ones', async () => {
    const six = (i: number): Shift => ({
      ...shift(i),
      clientAddr: 0,
      clusterAddr: 0,
      clientAddr6: Uint8Array.of(0x20, 1, 0xd, 0xb8, ...new Array(11).fill(0), i & 0xff),
      clusterAddr6: Uint8Array.of(0x20, 1, 0xd, 0xb8, ...new Array(11).fill(0), 0x80),
    });
    const sent: Shift[][] = [];
    const sizes: number[] = [];
    await sendShifts(
      [six(1), shift(2), ...Array.from({ length: 40 }, (_, i) => six(10 + i)), shift(3)],
      ['198.18.0.1'],
      (_g, d) => {
        const out: Shift[] = [];
        expect(decodeShifts(d, 0, d.length, out)).toBe(true);
        sizes.push(d.length);
        sent.push(out);
        return true;
      },
    );
    expect(sent.map((s) => s.length)).toEqual([2, 30, 11]);
    expect(sizes).toEqual([2 * 24, 30 * 48, 11 * 48]);
    expect(sent[1]![0]).toEqual(six(1));
    expect(sent.flat().filter((s) => s.clientAddr6 !== undefined)).toHaveLength(41);
  });

  it('stops when the socket is gone', async () => {
    let calls = 0;
    await sendShifts([shift(1), shift(2)], ['198.18.0.1'], () => ++calls < 0);
    expect(calls).toBe(1);
  });

  it('20,000 flows over real UDP (loopback, default receive buffer): every one arrives', async () => {
    const rx = createSocket('udp4');
    const tx = createSocket('udp4');
    let got = 0;
    const out: Shift[] = [];
    rx.on('message', (m) => {
      if (decodeShifts(m, 0, m.length, out)) got += out.length;
    });
    try {
      await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
      const port = rx.address().port;
      const n = 20_000;
      await sendShifts(
        Array.from({ length: n }, (_, i) => shift(i)),
        ['127.0.0.1'],
        (g, d) => {
          tx.send(Buffer.from(d), port, g);
          return true;
        },
      );
      await waitFor(() => got === n, { what: `${n} shifts received (got ${got})`, timeoutMs: 10_000 });
      expect(Math.ceil(n / SHIFTS_PER_DATAGRAM)).toBe(334);
    } finally {
      rx.close();
      tx.close();
    }
  });
});
