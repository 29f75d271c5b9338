import { Lab, requireRoot } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from './command.js';
import { Host } from './host.js';
import { FlowBatch, NftContext, NftFlows } from './nft-flows.js';

requireRoot();

const ip = (s: string): number => s.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
const VIP = ip('203.0.113.80');
const CLIENT = ip('203.0.113.10');

let lab: Lab;
let host: Host;
let flows: NftFlows;

beforeAll(async () => {
  lab = new Lab();
  host = new Host((await lab.netns()).name);
  await host.nft(`table ip t {
  map f { type ipv4_addr . ipv4_addr . inet_service : mark; flags timeout; size 4; counter; }
  map g { type ipv4_addr . ipv4_addr . inet_service : mark; flags timeout; size 100000; }
}
`);
  flows = NftFlows.open('t', host.netns);
});
afterAll(async () => {
  flows?.close();
  await lab?.cleanup();
});

/** listed reads a map back through nft itself, the reference. */
async function listed(map: string): Promise<string> {
  return host.run('nft', ['list', 'map', 'ip', 't', map]);
}

describe('NftFlows', () => {
  it('upserts: adds, then replaces an element whose mark differs (one transaction)', async () => {
    const b = new FlowBatch();
    b.upsert(0, VIP, CLIENT, 40000, 0x101, 60_000);
    b.upsert(0, VIP, CLIENT, 40001, 0x102, 0);
    expect(flows.apply(['f'], b)).toEqual({ applied: 2, failed: 0, errno: 0 });
    b.clear();
    b.upsert(0, VIP, CLIENT, 40000, 0x103, 900_000);
    expect(flows.apply(['f'], b)).toMatchObject({ applied: 1, failed: 0 });
    const text = await listed('f');
    expect(text).toMatch(
      /203\.0\.113\.80 \. 203\.0\.113\.10 \. 40000 counter packets 0 bytes 0 timeout 15m expires \S+ : 0x00000103/,
    );
    expect(text).toMatch(
      /203\.0\.113\.80 \. 203\.0\.113\.10 \. 40001 counter packets 0 bytes 0 : 0x00000102/,
    );
    const e = flows.get('f', VIP, CLIENT, 40000);
    expect(e).toMatchObject({
      vip: VIP,
      client: CLIENT,
      port: 40000,
      mark: 0x103,
      timeoutMs: 900_000,
      packets: 0,
    });
    expect(e!.expiresMs).toBeGreaterThan(890_000);
    expect(e!.expiresMs).toBeLessThanOrEqual(900_000);
  });

  it('removes elements, present or not, and get says null for a missing key', async () => {
    const b = new FlowBatch();
    b.remove(0, VIP, CLIENT, 40001);
    b.remove(0, VIP, CLIENT, 49999);
    expect(flows.apply(['f'], b)).toMatchObject({ applied: 2, failed: 0 });
    expect(flows.get('f', VIP, CLIENT, 40001)).toBeNull();
    expect(await listed('f')).not.toMatch(/40001/);
  });

  it('a full map refuses what does not fit, and the rest of the batch still lands, counted', async () => {
    const b = new FlowBatch();
    for (let p = 1; p <= 6; p++) b.upsert(0, VIP, CLIENT, 50000 + p, 0x101, 60_000);
    const r = flows.apply(['f'], b);
    // size 4, one element already in: three fit
    expect(r.applied).toBe(3);
    expect(r.failed).toBe(3);
    expect(r.error).toMatch(/^ENFILE/);
    expect(await flows.dump('f')).toHaveLength(4);
  });

  it('a missing map is refused with its errno, and dump/get throw naming it', async () => {
    const b = new FlowBatch();
    b.upsert(0, VIP, CLIENT, 1, 1, 0);
    expect(flows.apply(['nosuch'], b)).toMatchObject({
      applied: 0,
      failed: 1,
      error: expect.stringMatching(/^ENOENT/),
    });
    await expect(flows.dump('nosuch')).rejects.toThrow(/dump of nosuch .*ENOENT/);
  });

  it('dumps 60,000 elements written in one apply; a limit returns the first ones', async () => {
    const b = new FlowBatch(60_000);
    for (let i = 0; i < 60_000; i++)
      b.upsert(0, VIP, (CLIENT + (i >> 12)) >>> 0, 1024 + (i & 0xfff), 0x100 + (i % 3), 120_000);
    const r = flows.apply(['g'], b);
    expect(r).toMatchObject({ applied: 60_000, failed: 0 });
    const all = await flows.dump('g');
    expect(all).toHaveLength(60_000);
    const byMark = new Map<number, number>();
    for (const e of all) byMark.set(e.mark, (byMark.get(e.mark) ?? 0) + 1);
    expect(byMark).toEqual(
      new Map([
        [0x100, 20_000],
        [0x101, 20_000],
        [0x102, 20_000],
      ]),
    );
    expect(await flows.dump('g', 10)).toHaveLength(10);
  });

  it('reads the table’s named counters, and only those', async () => {
    await host.nft('add counter ip t hits\nadd counter ip t misses\n');
    const c = await flows.counters();
    expect(c.get('hits')).toEqual({ packets: 0, bytes: 0 });
    expect([...c.keys()].sort()).toEqual(['hits', 'misses']);
    const other = NftFlows.open('nosuch', host.netns);
    expect((await other.counters()).size).toBe(0); // the kernel filters its dump by table: none there
    other.close();
  });

  it('refuses bad arguments and a closed socket with a clear error', () => {
    const b = new FlowBatch(2);
    expect(b.upsert(0, 1, 2, 3, 4, 5)).toBe(true);
    expect(b.remove(0, 1, 2, 3)).toBe(true);
    expect(b.upsert(0, 1, 2, 3, 4, 5)).toBe(false);
    const bad = new FlowBatch(1);
    bad.upsert(3, 1, 2, 3, 4, 5);
    expect(() => flows.apply(['f'], bad)).toThrow(/bad set index/);
    expect(() => NftFlows.open('t', 'no-such-namespace')).toThrow(
      /in namespace 'no-such-namespace' \(ENOENT/,
    );
    const other = NftFlows.open('t', host.netns);
    other.close();
    expect(() => other.dump('f')).toThrow(/closed/);
  });
});

describe('NftContext', () => {
  it('runs transactions in process, names the failing line, and lists as JSON', async () => {
    const c = NftContext.open(host.netns);
    const j = NftContext.open(host.netns, true);
    try {
      await c.run('add table ip u\nadd chain ip u c\nadd counter ip u hits\n');
      const err = (await c
        .run('add table ip u\nadd rule ip u nochain accept\n')
        .catch((e: unknown) => e)) as CommandError;
      expect(err).toBeInstanceOf(CommandError);
      expect(err.stderr).toMatch(
        /:2:\d+-\d+: Error: Could not process rule: No such file or directory\nadd rule ip u nochain accept/,
      );
      const listed = JSON.parse(await j.run('list counters table ip u')) as { nftables: unknown[] };
      expect(listed.nftables).toContainEqual({
        counter: expect.objectContaining({ name: 'hits', packets: 0 }),
      });
      // a failed transaction left nothing behind; the table is as it was
      expect(await host.run('nft', ['list', 'table', 'ip', 'u'])).not.toMatch(/nochain/);
    } finally {
      await c.close();
      await j.close();
    }
    await expect(c.run('add table ip u\n')).rejects.toThrow(/closed/);
  });
});
