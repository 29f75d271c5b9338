import { describe, expect, it } from 'vitest';
import { ExportTable, normalizeExportPath } from './export-table.js';

const enc = (s: string) => new TextEncoder().encode(s);
const layout = { offset: 2, length: 2, endian: 'big' as const };

describe('ExportTable', () => {
  const t = new ExportTable(
    [
      { path: '/srv', node: 1, exportId: 10 },
      { path: '/srv/home/', node: 2, exportId: 20 },
      { path: '/srv/home/shared', node: 3, exportId: 30 },
    ],
    () => layout,
  );
  const match = (p: string) => {
    const b = enc(`xx${p}`);
    const r = t.matchDirpath(b, 2, b.length - 2);
    return r < 0 ? null : t.rows[r]!.path;
  };

  it.each([
    ['/srv', '/srv'],
    ['/srv/', '/srv'],
    ['/srv/x', '/srv'],
    ['/srv/home', '/srv/home'],
    ['/srv/home/', '/srv/home'],
    ['/srv/homer', '/srv'],
    ['/srv/home/shared/a/b', '/srv/home/shared'],
    ['/srvx', null],
    ['/', null],
    ['', null],
  ])('Fig. 8 box 810: %j matches %j (longest export on a path boundary)', (dirpath, want) => {
    expect(match(dirpath)).toBe(want);
  });

  it('the root export matches everything below it', () => {
    const r = new ExportTable([{ path: '/', node: 1, exportId: undefined }], () => layout);
    const b = enc('/any/thing');
    expect(r.matchDirpath(b, 0, b.length)).toBe(0);
  });

  it('Fig. 9 box 935: reads the export id at the layout, big- and little-endian', () => {
    const h = new Uint8Array(32);
    h[2] = 0;
    h[3] = 20;
    expect(t.rows[t.matchHandle(h, 0, 32)]!.node).toBe(2);
    h[3] = 99;
    expect(t.matchHandle(h, 0, 32)).toBe(-1);
    expect(t.matchHandle(h, 0, 3)).toBe(-1); // handle shorter than the range
    const le = new ExportTable([{ path: '/a', node: 5, exportId: 0x0102 }], () => ({
      offset: 0,
      length: 2,
      endian: 'little',
    }));
    expect(le.matchHandle(Uint8Array.of(0x02, 0x01), 0, 2)).toBe(0);
  });

  it('refuses a path twice and an export id claimed by two nodes with one layout', () => {
    expect(
      () =>
        new ExportTable(
          [
            { path: '/a', node: 1, exportId: 1 },
            { path: '/a/', node: 2, exportId: 2 },
          ],
          () => layout,
        ),
    ).toThrow(/twice/);
    expect(
      () =>
        new ExportTable(
          [
            { path: '/a', node: 1, exportId: 1 },
            { path: '/b', node: 2, exportId: 1 },
          ],
          () => layout,
        ),
    ).toThrow(/claimed/);
  });

  it('normalizes paths', () => {
    expect(normalizeExportPath('//srv///home/')).toBe('/srv/home');
    expect(normalizeExportPath('/')).toBe('/');
  });
});
