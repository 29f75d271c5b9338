import { describe, expect, it } from 'vitest';
import { summarize } from './cluster-commands.js';
import { ago, duration, renderTable } from './table.js';

describe('tables for people', () => {
  it('renderTable pads every column but the last, two spaces apart', () => {
    expect(
      renderTable(
        ['A', 'LONG'],
        [
          ['xyz', '1'],
          ['', 'last column unpadded'],
        ],
      ),
    ).toEqual(['A    LONG', 'xyz  1', '     last column unpadded']);
  });

  it('duration and ago pick a readable unit', () => {
    expect([999, 1000, 59_940, 60_000, 3_600_000, 86_400_000 * 2].map(duration)).toEqual([
      '999 ms',
      '1.0 s',
      '59.9 s',
      '1 min',
      '1 h',
      '2 d',
    ]);
    expect(ago(0, 5000)).toBe('never');
    expect(ago(4000, 5000)).toBe('1.0 s ago');
    expect(ago(6000, 5000)).toBe('0 ms ago');
  });

  it('summarize renders options as key=value, lists with commas, objects as JSON', () => {
    expect(summarize(undefined)).toBe('');
    expect(summarize({ node: 'n1', nodes: ['n1', 'n2'], backup: { node: 'n3' }, idle: 30 })).toBe(
      'node=n1 nodes=n1,n2 backup={"node":"n3"} idle=30',
    );
  });
});
