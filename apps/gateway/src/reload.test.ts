import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseGatewayConfig } from './config.js';
import { checkRestartOnly, diffSwitch, firstDifference } from './reload.js';

const lab = await readFile(new URL('../../../infra/lab/gateway.yaml', import.meta.url), 'utf8');
const running = parseGatewayConfig(lab, 'gateway.yaml');

function refusal(text: string): string {
  try {
    checkRestartOnly(running, parseGatewayConfig(text, 'gateway.yaml'), 'gateway.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  return '';
}

describe('reload: what a reload may change', () => {
  it('lets entries and fragments change', () => {
    const next = lab
      .replace('policy: round-robin, nodes: [n1, n2, n3]', 'policy: maglev, nodes: [n1, n2]')
      .replace(
        'fragments: { maxEntries: 4096, timeout: 30 }',
        'fragments: { maxEntries: 8192, timeout: 30 }',
      );
    expect(refusal(next)).toBe('');
  });

  it('names the first field that takes a restart', () => {
    expect(refusal(lab.replace('listen: 198.18.0.1:7443', 'listen: 198.18.0.1:7444'))).toBe(
      'gateway.yaml: control.listen: changes only with a restart (a reload swaps entries and fragments)',
    );
    expect(refusal(lab.replace('address: 203.0.113.80', 'address: 203.0.113.81'))).toMatch(
      /^gateway\.yaml: clusterAddresses\.0\.address: changes only with a restart/,
    );
    expect(refusal(lab.replace('allow: [203.0.113.11/32]', 'allow: [203.0.113.12/32]'))).toMatch(
      /^gateway\.yaml: management\.allow\.0: /,
    );
    expect(refusal(lab.replace('name: gw', 'name: gw\ndatapath: { mode: tun }'))).toMatch(
      /^gateway\.yaml: datapath\.mode: /,
    );
  });
});

describe('reload: the difference', () => {
  const entries = running.switch.entries as Record<string, unknown>[];

  it('lists added, removed and changed entries by protocol and port, in port order', () => {
    const next = parseGatewayConfig(
      lab
        .replace('policy: round-robin, nodes: [n1, n2, n3]', 'policy: maglev, nodes: [n1, n2]')
        .replace(
          / {2}- \{ protocol: tcp, port: 2222.*\n/,
          '  - { protocol: tcp, port: 8080, function: fixed, node: n3 }\n',
        ),
      'gateway.yaml',
    );
    expect(diffSwitch({ entries, fragments: running.switch.fragments }, next.switch)).toEqual([
      '~ tcp/80 connection nodes=[n1,n2,n3] policy=round-robin → connection nodes=[n1,n2] policy=maglev',
      '- tcp/2222 fixed backup=n2 node=n1',
      '+ tcp/8080 fixed node=n3',
    ]);
  });

  it('is empty for the same file, and says when fragments change', () => {
    expect(diffSwitch({ entries, fragments: running.switch.fragments }, running.switch)).toEqual([]);
    const next = parseGatewayConfig(lab.replace('maxEntries: 4096', 'maxEntries: 512'), 'gateway.yaml');
    expect(diffSwitch({ entries, fragments: running.switch.fragments }, next.switch)).toEqual([
      '~ fragments {"maxEntries":4096,"timeout":30} → {"maxEntries":512,"timeout":30}',
    ]);
  });

  it('finds a difference exactly when two JSON values differ', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        const same = JSON.stringify(a) === JSON.stringify(b);
        expect(firstDifference(a, b, []) === null).toBe(same || isSameUnordered(a, b));
      }),
      { numRuns: 20_000 },
    );
  });
});

/** objects with the same keys in another order are equal to firstDifference, not to JSON.stringify */
function isSameUnordered(a: unknown, b: unknown): boolean {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
          )
        : v;
  return JSON.stringify(sort(a)) === JSON.stringify(sort(b));
}
