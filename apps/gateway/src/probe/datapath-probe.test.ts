import { createSocket } from 'node:dgram';
import type { MemberRecord } from '@onehost/control';
import { waitFor } from '@onehost/testkit';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DatapathProbe } from './datapath-probe.js';

const member = (mac: string): MemberRecord => ({
  name: 'n1',
  id: 1,
  block: { lo: 32768, hi: 33791 },
  internalAddress: '127.0.0.1',
  vxlanMac: mac,
  capabilities: ['vxlan'],
  drained: false,
  state: 'active',
  lastSeenUnixMs: 0,
  downReason: '',
});

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

describe('DatapathProbe', () => {
  it('reads the members again only when their generation moved, and probes with what it read', async () => {
    // a real UDP socket stands for the nodes' VXLAN port: the frames it gets are the probes
    const frames: Buffer[] = [];
    const rx = createSocket('udp4');
    closers.push(() => rx.close());
    rx.on('message', (m) => frames.push(m));
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
    let m = member('02:00:5e:10:00:0b');
    let reads = 0;
    let generation = 7;
    const probe = new DatapathProbe({
      timing: { intervalMs: 20, fall: 1000, rise: 1 },
      source: '127.0.0.1',
      vni: 4242,
      vxlanPort: rx.address().port,
      gatewayMac: '02:00:5e:10:00:01',
      clusterAddress: '203.0.113.80',
      probePort: 7473,
      innerLength: 1400,
      members: () => {
        reads++;
        return [m];
      },
      generation: () => generation,
      onTransition: () => undefined,
      log: pino({ level: 'silent' }),
    });
    await probe.start();
    closers.push(() => probe.close());
    await waitFor(() => frames.length >= 5, { timeoutMs: 5000, what: 'five probe rounds' });
    expect(reads).toBe(1);
    // the inner Ethernet destination (after the 8-byte VXLAN header) is the node's MAC
    const innerDst = (f: Buffer) => [...f.subarray(8, 14)].map((b) => b.toString(16)).join(':');
    expect(innerDst(frames.at(-1)!)).toBe('2:0:5e:10:0:b');
    m = member('02:00:5e:10:00:0c');
    generation++;
    await waitFor(() => frames.length > 0 && innerDst(frames.at(-1)!) === '2:0:5e:10:0:c', {
      timeoutMs: 5000,
      what: 'a probe to the new MAC',
    });
    const n = frames.length;
    await waitFor(() => frames.length >= n + 5, { timeoutMs: 5000, what: 'five more rounds' });
    expect(reads).toBe(2);
  });
});
