import { readExportId } from '@onehost/wire';
import type { HandleLayout } from '../config/types.js';

/** One row of the Cluster Export Table (Fig. 7: path → node), with the export id its handles carry. */
export interface ExportRow {
  readonly path: string;
  readonly node: number;
  readonly exportId: number | undefined;
}

interface LayoutIndex {
  readonly layout: HandleLayout;
  readonly byId: Map<number, number>;
  readonly rows: Map<number, number>;
}

const encoder = new TextEncoder();

/** normalizeExportPath removes a trailing slash (except for the root) and repeated slashes. */
export function normalizeExportPath(p: string): string {
  const s = p.replace(/\/{2,}/g, '/');
  return s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s;
}

/**
 * ExportTable answers the MOUNT function's question (which node exports the longest prefix of this
 * dirpath, Fig. 8 boxes 810-825) and the NFS function's (which node serves the export id inside this
 * handle, Fig. 9 box 935), both straight from packet bytes without allocating.
 */
export class ExportTable {
  readonly rows: readonly ExportRow[];
  /** rows sorted by path length, longest first, with their bytes. */
  private readonly byLength: { row: number; bytes: Uint8Array }[];
  private readonly layouts: LayoutIndex[] = [];

  /**
   * constructor throws Error when two rows share a path, or two nodes with the same handle layout
   * claim the same export id (validation reports these first).
   */
  constructor(rows: readonly ExportRow[], layoutOf: (node: number) => HandleLayout | undefined) {
    this.rows = rows.map((r) => Object.freeze({ ...r, path: normalizeExportPath(r.path) }));
    const seen = new Set<string>();
    for (const r of this.rows) {
      if (seen.has(r.path)) throw new Error(`export path ${r.path} twice`);
      seen.add(r.path);
    }
    this.byLength = this.rows
      .map((r, i) => ({ row: i, bytes: encoder.encode(r.path) }))
      .sort((a, b) => b.bytes.length - a.bytes.length);
    this.rows.forEach((r, i) => {
      if (r.exportId === undefined) return;
      const layout = layoutOf(r.node);
      if (layout === undefined) return;
      let li = this.layouts.find(
        (l) =>
          l.layout.offset === layout.offset &&
          l.layout.length === layout.length &&
          l.layout.endian === layout.endian,
      );
      if (li === undefined) {
        li = { layout, byId: new Map(), rows: new Map() };
        this.layouts.push(li);
      }
      const other = li.byId.get(r.exportId);
      if (other !== undefined && other !== r.node) {
        throw new Error(`export id ${r.exportId} claimed by nodes ${other} and ${r.node}`);
      }
      li.byId.set(r.exportId, r.node);
      li.rows.set(r.exportId, i);
    });
  }

  /**
   * matchDirpath returns the row index of the longest export that is the dirpath or a parent directory
   * of it (component boundaries: /srv/a matches /srv/a and /srv/a/b, not /srv/ab), or -1.
   */
  matchDirpath(buf: Uint8Array, off: number, len: number): number {
    const list = this.byLength;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!.bytes;
      const el = e.length;
      if (el > len) continue;
      let j = 0;
      while (j < el && buf[off + j] === e[j]) j++;
      if (j !== el) continue;
      if (el === len || (el === 1 && e[0] === 0x2f) || buf[off + el] === 0x2f) return list[i]!.row;
    }
    return -1;
  }

  /**
   * matchHandle reads the export id at each registered layout's byte range of the handle
   * buf[off, off+len) and returns the row whose id and layout match, or -1.
   */
  matchHandle(buf: Uint8Array, off: number, len: number): number {
    const ls = this.layouts;
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i]!;
      const id = readExportId(buf, off, len, l.layout.offset, l.layout.length, l.layout.endian === 'little');
      if (id < 0) continue;
      const row = l.rows.get(id);
      if (row !== undefined) return row;
    }
    return -1;
  }
}
