import {
  type ClusterCa,
  createClusterCa,
  type IssuedCertificate,
  issueCertificate,
} from '../auth/certificates.js';

/** TestPki is a cluster CA with certificates for a gateway, nodes n1-n3, an operator, and a rogue CA's n1. */
export interface TestPki {
  ca: ClusterCa;
  gateway: IssuedCertificate;
  nodes: Record<'n1' | 'n2' | 'n3', IssuedCertificate>;
  operator: IssuedCertificate;
  /** a node certificate for n1 from another CA. */
  rogueN1: IssuedCertificate;
}

/** makeTestPki issues the certificates the tests use (the gateway serves 127.0.0.1 and localhost). */
export async function makeTestPki(): Promise<TestPki> {
  const [ca, rogueCa] = await Promise.all([createClusterCa(), createClusterCa({ commonName: 'rogue CA' })]);
  const [gateway, n1, n2, n3, operator, rogueN1] = await Promise.all([
    issueCertificate(ca, { role: 'gateway', name: 'gw', hosts: ['127.0.0.1', 'localhost'] }),
    issueCertificate(ca, { role: 'node', name: 'n1' }),
    issueCertificate(ca, { role: 'node', name: 'n2' }),
    issueCertificate(ca, { role: 'node', name: 'n3' }),
    issueCertificate(ca, { role: 'operator', name: 'alice' }),
    issueCertificate(rogueCa, { role: 'node', name: 'n1' }),
  ]);
  return { ca, gateway, nodes: { n1, n2, n3 }, operator, rogueN1 };
}
