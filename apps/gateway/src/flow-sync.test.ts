import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@onehost/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { conntrackdConfig, FlowSync, pairCount, syncPeers } from './flow-sync.js';

const GWS = ['198.18.0.3', '198.18.0.2', '198.18.0.10'];

describe('syncPeers', () => {
  it('gives each pair of gateways one port, the same on both ends, and none twice', () => {
    const all = GWS.map((g) => syncPeers(g, GWS, 3780));
    for (const [i, g] of GWS.entries()) {
      expect(all[i]!.map((p) => p.address).sort()).toEqual(GWS.filter((x) => x !== g).sort());
      for (const p of all[i]!) {
        const back = all[GWS.indexOf(p.address)]!.find((q) => q.address === g);
        expect(back?.port).toBe(p.port);
      }
    }
    const ports = new Set(all.flat().map((p) => p.port));
    expect([...ports].sort()).toEqual([3780, 3781, 3782]);
    expect(pairCount(GWS.length)).toBe(3);
    // sorted by address, not as written: .2–.3 is the first pair, .3–.10 the last
    expect(syncPeers('198.18.0.2', GWS, 3780)[0]).toEqual({ address: '198.18.0.3', port: 3780 });
    expect(syncPeers('198.18.0.10', GWS, 3780)).toContainEqual({ address: '198.18.0.3', port: 3782 });
  });

  it('a lone gateway has no peers', () => {
    expect(syncPeers('198.18.0.2', ['198.18.0.2'], 3780)).toEqual([]);
  });
});

describe('conntrackdConfig', () => {
  it('FTFW over UDP to the one peer, entries into the kernel, only TCP to the cluster addresses', () => {
    const c = conntrackdConfig({
      self: '198.18.0.2',
      peer: { address: '198.18.0.3', port: 3781 },
      iface: 'eth1',
      dir: '/run/x',
      vips: ['203.0.113.80', '203.0.113.81'],
    });
    expect(c).toMatch(/Mode FTFW \{[^}]*DisableExternalCache on[^}]*StartupResync on/);
    expect(c).toMatch(
      /IPv4_address 198\.18\.0\.2\s+IPv4_Destination_Address 198\.18\.0\.3\s+Port 3781\s+Interface eth1/,
    );
    expect(c).toMatch(/Filter From Userspace \{\s+Protocol Accept \{\s+TCP\s+\}/);
    expect(c).toContain('IPv4_address 203.0.113.80\n      IPv4_address 203.0.113.81');
    expect(c).toContain('LockFile /run/x/lock');
    expect(c).toContain('Path /run/x/ctl');
  });
});

describe('FlowSync', () => {
  let dir = '';
  let sync: FlowSync | undefined;
  afterEach(async () => {
    await sync?.stop();
    sync = undefined;
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  function make(conntrackd: string, logs: string[]): FlowSync {
    return new FlowSync({
      self: '198.18.0.2',
      peers: [{ address: '198.18.0.3', port: 3780 }],
      iface: 'eth1',
      vips: ['203.0.113.80'],
      dir,
      conntrackd,
      log: { info: () => undefined, warn: (_o, m) => logs.push(m) },
    });
  }

  it('writes the peer’s configuration and keeps its process running until stopped', async () => {
    dir = await mkdtemp(join(tmpdir(), 'flow-sync-'));
    // a stand-in that runs until ended, as conntrackd does (the real one: the ECMP end-to-end test)
    const standIn = join(dir, 'stand-in');
    await writeFile(standIn, '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 });
    sync = make(standIn, []);
    await sync.start();
    await waitFor(async () => sync!.status()[0]!.running, { what: 'the process running', timeoutMs: 5000 });
    expect(await readFile(join(dir, 'peer-198.18.0.3', 'conntrackd.conf'), 'utf8')).toContain(
      'IPv4_Destination_Address 198.18.0.3',
    );
    await sync.stop();
    expect(sync.status()[0]).toMatchObject({ peer: '198.18.0.3', running: false, restarts: 0 });
  });

  it('a process that ends is started again every second, counted, the reason logged once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'flow-sync-'));
    const logs: string[] = [];
    sync = make('false', logs);
    await sync.start();
    await waitFor(async () => sync!.status()[0]!.restarts >= 2, {
      what: 'two restarts',
      timeoutMs: 5000,
      intervalMs: 50,
    });
    expect(logs.filter((m) => m.startsWith('conntrackd ended'))).toHaveLength(1);
  });
});
