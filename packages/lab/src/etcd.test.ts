import { describe, expect, it } from 'vitest';
import { startEtcdCluster } from './etcd.js';

const issue = async () => ({ certPem: '', keyPem: '' });

describe('startEtcdCluster', () => {
  it('refuses a member count or a loopback /24 it cannot use, before starting anything', async () => {
    await expect(startEtcdCluster({ caPem: '', issue, members: 0 })).rejects.toThrow(/etcd members 0: 1-7/);
    await expect(startEtcdCluster({ caPem: '', issue, members: 8 })).rejects.toThrow(/1-7/);
    for (const net of ['10.0.0', '127.0.300', '127.1'])
      await expect(startEtcdCluster({ caPem: '', issue, net })).rejects.toThrow(/must be 127\.x\.y/);
  });
});
