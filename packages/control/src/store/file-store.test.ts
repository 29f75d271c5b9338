import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreFileError } from './file-format.js';
import { FileStore } from './file-store.js';
import type { MemberRecord } from './records.js';

const member = (name: string, id: number, lo: number): MemberRecord => ({
  name,
  id,
  block: { lo, hi: lo + 1023 },
  internalAddress: `198.18.0.${10 + id}`,
  vxlanMac: `02:00:5e:10:00:0${id}`,
  capabilities: ['vxlan'],
  drained: false,
  state: 'active',
  lastSeenUnixMs: 1_700_000_000_000,
  downReason: '',
});

describe('FileStore', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'onehost-store-'));
    path = join(dir, 'control.json');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts empty without a file and reads back what it wrote after a restart', async () => {
    const a = new FileStore(path);
    expect(await a.load()).toEqual({ members: [], exports: [], nextNodeId: 1 });
    await a.putMember(member('n1', 1, 32768));
    await a.putMember(member('n2', 2, 33792));
    await a.putExports({
      nodeName: 'n1',
      mountPorts: { tcp: 20048 },
      exports: [{ path: '/srv/projects', exportId: 1 }],
      handleLayout: { offset: 2, length: 2, endian: 'big' },
      registeredUnixMs: 5,
    });
    await a.close();

    const b = new FileStore(path);
    const c = await b.load();
    expect(c.members.map((m) => [m.name, m.id, m.block.lo])).toEqual([
      ['n1', 1, 32768],
      ['n2', 2, 33792],
    ]);
    expect(c.exports[0]?.exports).toEqual([{ path: '/srv/projects', exportId: 1 }]);
    expect(c.nextNodeId).toBe(3);
  });

  it('keeps the id counter past deleted members so ids are never reused', async () => {
    const a = new FileStore(path);
    await a.load();
    await a.putMember(member('n1', 1, 32768));
    await a.putMember(member('n2', 2, 33792));
    await a.deleteMember('n2');
    const c = await new FileStore(path).load();
    expect(c.members.map((m) => m.name)).toEqual(['n1']);
    expect(c.nextNodeId).toBe(3);
  });

  it('coalesces concurrent writes and leaves no temporary file behind', async () => {
    const a = new FileStore(path);
    await a.load();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => a.putMember(member(`n${i + 1}`, i + 1, 32768 + i * 1024))),
    );
    const c = await new FileStore(path).load();
    expect(c.members).toHaveLength(20);
    expect(await readdir(dir)).toEqual(['control.json']);
  });

  it('removes temporary files a crash left and keeps the last complete file', async () => {
    const a = new FileStore(path);
    await a.load();
    await a.putMember(member('n1', 1, 32768));
    await writeFile(join(dir, '.control.json.999.1.tmp'), '{"half":');
    const c = await new FileStore(path).load();
    expect(c.members).toHaveLength(1);
    expect(await readdir(dir)).toEqual(['control.json']);
  });

  it('refuses a malformed file, naming the field', async () => {
    const a = new FileStore(path);
    await a.load();
    await a.putMember(member('n1', 1, 32768));
    const doc = JSON.parse(await readFile(path, 'utf8'));
    doc.members[0].block.hi = 70000;
    await writeFile(path, JSON.stringify(doc));
    await expect(new FileStore(path).load()).rejects.toThrow(StoreFileError);
    await expect(new FileStore(path).load()).rejects.toThrow(/members\[0\]\.block\.hi: not an integer/);

    doc.members[0].block.hi = 33791;
    doc.members.push({ ...doc.members[0], name: 'n2' });
    await writeFile(path, JSON.stringify(doc));
    await expect(new FileStore(path).load()).rejects.toThrow(/members\[1\]\.id: duplicate 1/);

    await writeFile(path, '{ not json');
    await expect(new FileStore(path).load()).rejects.toThrow(/not JSON/);
    await writeFile(path, JSON.stringify({ format: 'something-else', version: 1 }));
    await expect(new FileStore(path).load()).rejects.toThrow(/format: expected "onehost-control-store"/);
  });

  it('fails a write when the directory is gone, and the caller sees it', async () => {
    const a = new FileStore(join(dir, 'missing', 'control.json'));
    await a.load();
    await expect(a.putMember(member('n1', 1, 32768))).rejects.toThrow(/ENOENT/);
  });

  it('keeps state in memory only without a path', async () => {
    const a = new FileStore(null);
    await a.load();
    await a.putMember(member('n1', 1, 32768));
    expect((await a.load()).members).toHaveLength(1);
    expect(await readdir(dir)).toEqual([]);
  });
});
