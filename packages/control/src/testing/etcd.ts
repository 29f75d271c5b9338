import { type EtcdCluster, startEtcdCluster } from '@onehost/lab';
import { issueCertificate } from '../auth/certificates.js';
import type { TestPki } from './pki.js';

/** startTestEtcd starts a 3-member etcd with mutual TLS whose members' certificates come from `pki`'s CA. */
export function startTestEtcd(pki: TestPki): Promise<EtcdCluster> {
  return startEtcdCluster({
    caPem: pki.ca.certPem,
    issue: (name, hosts) => issueCertificate(pki.ca, { role: 'gateway', name, hosts }),
  });
}
