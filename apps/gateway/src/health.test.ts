import type { HealthRecord } from '@onehost/control';
import { describe, expect, it } from 'vitest';
import { describeFailure, withoutUnhealthy } from './health.js';

const failing = (covers: string[]): HealthRecord => ({
  name: 'web',
  description: 'http /healthz',
  covers,
  healthy: false,
  detail: '503',
  sinceUnixMs: Date.UTC(2026, 0, 1, 12, 1, 3),
});
const entries = [
  { protocol: 'tcp', port: 80, function: 'connection', policy: 'round-robin', nodes: ['n1', 'n2', 'n3'] },
  { protocol: 'tcp', port: 443, function: 'connection', policy: 'maglev' },
  { protocol: 'tcp', port: 22, function: 'fixed', node: 'n2', backup: 'n1' },
  { protocol: 'udp', port: 2049, function: 'nfs' },
];
const all = ['gw', 'n1', 'n2', 'n3'];

describe('health: a failing check takes its node out of the entries it covers', () => {
  it('only those entries: lists lose the node, an absent list becomes the others, fixed uses its backup', () => {
    const u = new Map([
      [
        'n2',
        new Map([
          ['tcp/80', failing(['tcp/80'])],
          ['tcp/443', failing(['tcp/443'])],
          ['tcp/22', failing(['tcp/22'])],
          ['udp/2049', failing(['udp/2049'])],
        ]),
      ],
    ]);
    const r = withoutUnhealthy(entries, all, u);
    expect(r.entries[0]!.nodes).toEqual(['n1', 'n3']);
    expect(r.entries[1]!.nodes).toEqual(['gw', 'n1', 'n3']);
    expect(r.entries[2]).toMatchObject({ node: 'n1' });
    expect(r.entries[2]!.backup).toBeUndefined();
    expect(r.entries[3]).toEqual(entries[3]); // routed by payload: no candidates to take it out of
    expect(r.skipped.get('tcp/80')).toEqual(['n2 skipped: http /healthz 503 since 12:01:03']);
    expect(r.failOpen).toEqual([]);
  });

  it('keeps every candidate when none would be left, and says so', () => {
    const f = failing(['tcp/80', 'tcp/22']);
    const u = new Map(
      ['n1', 'n2', 'n3'].map((n) => [
        n,
        new Map([
          ['tcp/80', f],
          ['tcp/22', f],
        ]),
      ]),
    );
    const r = withoutUnhealthy(entries, all, u);
    expect(r.entries[0]!.nodes).toEqual(['n1', 'n2', 'n3']);
    expect(r.entries[2]).toEqual(entries[2]);
    expect(r.failOpen).toEqual(['tcp/80', 'tcp/22']);
  });

  it('drops a failing backup, and changes nothing without failures', () => {
    const u = new Map([['n1', new Map([['tcp/22', failing(['tcp/22'])]])]]);
    expect(withoutUnhealthy(entries, all, u).entries[2]).toEqual({
      protocol: 'tcp',
      port: 22,
      function: 'fixed',
      node: 'n2',
    });
    expect(withoutUnhealthy(entries, all, new Map()).entries).toEqual(entries);
    expect(describeFailure(failing([]))).toBe('http /healthz 503 since 12:01:03');
  });
});
