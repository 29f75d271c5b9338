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
