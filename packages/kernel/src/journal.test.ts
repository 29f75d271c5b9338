import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, requireRoot } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from './command.js';
import { Host, isMarkRule, pidAlive, routeArgs } from './host.js';
import { JournalFile, readJournal, restoreJournal } from './journal.js';

requireRoot();

let lab: Lab;
let host: Host;
let dir: string;

/** state is what restore must bring back exactly (counters and handles left out). */
async function state(): Promise<string> {
  const q = (file: string, args: string[]) => host.run(file, args);
  return [
    await q('ip', ['-4', 'addr']),
    await q('ip', ['link']),
    await q('ip', ['rule']),
    await q('ip', ['-4', 'route', 'show', 'table', 'all']),
    await q('nft', ['list', 'ruleset']),
    await host.readSysctl('net.ipv4.ip_forward'),
    await host.readSysctl('net/ipv4/conf/all/rp_filter'),
  ].join('\n');
}

beforeAll(async () => {
  lab = new Lab();
  const ns = await lab.netns();
  host = new Host(ns.name);
  // no IPv6 link-local addresses appearing while the test compares states
  await host.writeSysctl('net/ipv6/conf/all/disable_ipv6', '1');
  await host.writeSysctl('net/ipv6/conf/default/disable_ipv6', '1');
  await host.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
  await host.ip('link', 'set', 'eth0p', 'up');
  await host.ip('addr', 'add', '198.18.0.1/24', 'dev', 'eth0');
  await host.ip('link', 'set', 'eth0', 'up');
  dir = await mkdtemp(join(tmpdir(), 'onehost-kernel-'));
});
afterAll(async () => {
  await lab?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('Host', () => {
  it('runs commands in its namespace and names the refused one in a CommandError', async () => {
    expect(await host.linkExists('eth0')).toBe(true);
    expect(await host.hasAddress('eth0', '198.18.0.1')).toBe(true);
    expect([...(await host.addresses('eth0'))]).toEqual(['198.18.0.1/24']);
    const err = await host.ip('link', 'del', 'nosuchdev').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).command).toBe(`ip netns exec ${host.netns} ip link del nosuchdev`);
    expect((err as CommandError).message).toMatch(/nosuchdev/);
  });

  it('ipBatch stops at the first failing line and says which', async () => {
    const err = (await host
      .ipBatch(['route add 203.0.113.7/32 dev eth0 table 71', 'route add 203.0.113.7/32 dev nosuch table 71'])
      .catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.stderr).toMatch(/Command failed -:2/);
    expect((await host.routes(71)).map((r) => r.dst)).toEqual(['203.0.113.7']);
    await host.ip('route', 'flush', 'table', '71');
    expect(await host.routes(71)).toEqual([]);
  });

  it('reads and writes sysctls by dotted or slashed keys', async () => {
    const before = await host.readSysctl('net.ipv4.ip_forward');
    await host.writeSysctl('net/ipv4/ip_forward', before === '1' ? '0' : '1');
    expect(await host.readSysctl('net.ipv4.ip_forward')).not.toBe(before);
    await host.writeSysctl('net.ipv4.ip_forward', before);
    await expect(host.readSysctl('net/../etc')).rejects.toThrow(/bad sysctl key/);
    expect(await host.sysctlExists('net/ipv4/conf/nosuch/rp_filter')).toBe(false);
  });

  it('routeArgs puts a route read back as it was', () => {
    expect(
      routeArgs({ dst: 'default', gateway: '198.18.0.1', dev: 'eth0', protocol: '111', flags: ['onlink'] }),
    ).toEqual(['default', 'via', '198.18.0.1', 'dev', 'eth0', 'proto', '111', 'onlink']);
    expect(() => routeArgs({ dst: '' })).toThrow(/without destination/);
    expect(
      isMarkRule({ priority: 9, fwmark: '0x10', table: '7' }, { priority: 9, fwmark: 16, table: 7 }),
    ).toBe(true);
    expect(
      isMarkRule(
        { priority: 9, fwmark: '0x10', fwmask: '0xff', table: '7' },
        { priority: 9, fwmark: 16, table: 7 },
      ),
    ).toBe(false);
  });
});

describe('the journal', () => {
  it('undoes every kind of change, newest first, and leaves the namespace as it was', async () => {
    const before = await state();
    const path = join(dir, 'a.json');
    const j = await JournalFile.create(path, 'gw');
    const doRecord = async (change: Parameters<JournalFile['record']>[0], act: () => Promise<unknown>) => {
      await j.record(change);
      await act();
    };
    await doRecord(
      { kind: 'sysctl', key: 'net/ipv4/ip_forward', previous: await host.readSysctl('net.ipv4.ip_forward') },
      () => host.writeSysctl('net.ipv4.ip_forward', '1'),
    );
    await doRecord({ kind: 'addr', dev: 'lo', cidr: '203.0.113.80/32' }, () =>
      host.ip('addr', 'add', '203.0.113.80/32', 'dev', 'lo'),
    );
    await doRecord({ kind: 'link', name: 'vxe' }, () =>
      host.ip('link', 'add', 'vxe', 'type', 'vxlan', 'external', 'dstport', '4789'),
    );
    await doRecord(
      {
        kind: 'rule-args',
        args: ['priority', '100', 'iif', 'eth0', 'to', '203.0.113.80/32', 'lookup', '4789'],
      },
      () =>
        host.ip('rule', 'add', 'priority', '100', 'iif', 'eth0', 'to', '203.0.113.80/32', 'lookup', '4789'),
    );
    await doRecord({ kind: 'rules-at', priority: 90 }, () =>
      host.ipBatch([
        'rule add priority 90 fwmark 0x101 lookup 5001',
        'rule add priority 90 fwmark 0x102 lookup 5002',
      ]),
    );
    await doRecord({ kind: 'tables', from: 5000, to: 5999 }, () =>
      host.ipBatch([
        'route add 203.0.113.80/32 dev eth0 table 5001',
        'route add 203.0.113.80/32 dev eth0 table 5002',
        'route add unreachable 203.0.113.80/32 table 4789',
      ]),
    );
    await doRecord({ kind: 'tables', from: 4789, to: 4789 }, async () => undefined);
    await doRecord({ kind: 'local-rule', priority: 200 }, async () => {
      await host.ip('rule', 'add', 'priority', '200', 'lookup', 'local');
      await host.ip('rule', 'del', 'priority', '0', 'lookup', 'local');
    });
    await doRecord({ kind: 'rule', priority: 95, fwmark: 0x1ff, table: 255 }, () =>
      host.ip('rule', 'add', 'priority', '95', 'fwmark', '0x1ff', 'lookup', '255'),
    );
    await doRecord({ kind: 'nft-table', family: 'ip', name: 'onehost_t' }, () =>
      host.nft('table ip onehost_t {\n chain c { type filter hook prerouting priority 0; }\n}\n'),
    );
    // recorded, never made: harmless to undo
    await j.record({ kind: 'table-route', table: 77, dst: '203.0.113.9/32', dev: 'eth0' });
    await j.markComplete();
    const during = await state();
    expect(during).not.toBe(before);
    expect(during).toContain('fwmark 0x102 lookup 5002');
    const report = await restoreJournal(path, host);
    expect(report).toEqual({ found: true, undone: 11 });
    expect(await state()).toBe(before);
    expect(await readJournal(path)).toBeUndefined();
    expect(await restoreJournal(path, host)).toEqual({ found: false, undone: 0 });
  });

  it('keeps the state file when something cannot be undone, naming it', async () => {
    const path = join(dir, 'b.json');
    const j = await JournalFile.create(path, 'gw');
    await j.record({ kind: 'sysctl', key: 'net/ipv4/ip_forward', previous: 'not-a-number' });
    await expect(restoreJournal(path, host)).rejects.toThrow(/1 change\(s\) could not be undone/);
    expect((await readJournal(path))?.changes).toHaveLength(1);
  });

  it('adopt takes over a dead writer’s journal with its changes; refuses a live one', async () => {
    const path = join(dir, 'c.json');
    const j = await JournalFile.create(path, 'gw');
    await j.record({ kind: 'addr', dev: 'lo', cidr: '203.0.113.81/32' });
    const dead = (pid: number) => pid !== process.pid && false;
    const again = await JournalFile.adopt(path, 'gw', dead);
    expect(again.current.changes).toEqual([{ kind: 'addr', dev: 'lo', cidr: '203.0.113.81/32' }]);
    await again.recordOnce({ kind: 'addr', dev: 'lo', cidr: '203.0.113.81/32' });
    await again.recordOnce({ kind: 'link', name: 'x' });
    expect(again.current.changes).toHaveLength(2);
    const onDisk = JSON.parse(await readFile(path, 'utf8')) as { pid: number; complete: boolean };
    expect(onDisk.pid).toBe(process.pid);
    const other = JSON.stringify({ ...onDisk, pid: 1 });
    await import('node:fs/promises').then((fs) => fs.writeFile(path, other));
    await expect(JournalFile.adopt(path, 'gw', pidAlive)).rejects.toThrow(/running process \(pid 1\)/);
    const fresh = await JournalFile.adopt(join(dir, 'none.json'), 'gw', pidAlive);
    expect(fresh.current.changes).toEqual([]);
  });
});
