import { describe, expect, it } from 'vitest';
import type { GatewayConfig } from './config.js';
import { hostProblems, interfaceExists } from './host-check.js';

const cfg = {
  outside: { interfaces: ['lo', 'nosuch0'] },
  interconnect: { interface: 'nosuch1', address: '198.18.0.1', prefix: '198.18.0.0/24', mtu: 1500 },
  control: { store: { kind: 'embedded', path: '/nonexistent/store.json' } },
} as unknown as GatewayConfig;

describe('hostProblems', () => {
  it('names each missing interface by its field', () => {
    expect(hostProblems(cfg)).toEqual([
      'outside.interfaces.1: no interface "nosuch0" on this host',
      'interconnect.interface: no interface "nosuch1" on this host',
    ]);
  });

  it('names a missing TLS file of the etcd store', () => {
    const etcd = {
      ...cfg,
      control: {
        store: {
          kind: 'etcd',
          endpoints: ['https://127.0.0.1:2379'],
          tls: { ca: '/nonexistent/ca.pem', cert: '/proc/self/status', key: '/proc/self/status' },
          prefix: '/onehost/',
        },
      },
    } as unknown as GatewayConfig;
    expect(hostProblems(etcd, () => true)).toEqual([
      'control.store.etcd.tls.ca: no file /nonexistent/ca.pem',
    ]);
  });

  it('is empty when every interface exists', () => {
    expect(hostProblems(cfg, () => true)).toEqual([]);
  });

  it('finds the loopback interface', () => {
    expect(interfaceExists('lo')).toBe(true);
  });
});
