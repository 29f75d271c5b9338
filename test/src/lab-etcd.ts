import { join } from 'node:path';
import { type ClusterCa, issueCertificate } from '@onehost/control';
import { type EtcdCluster, type Lab, startEtcdCluster } from '@onehost/lab';

/**
 * withEtcdStore points a lab gateway.yaml's `control.store` at a 3-member etcd on the loopback /24 `net`
 * ("127.x.y") with the gateway's certificate, under `prefix`.
 */
export function withEtcdStore(yaml: string, net: string, prefix: string): string {
  return yaml.replace(
    /^ {2}store: .*$/m,
    [
      '  store:',
      '    etcd:',
      `      endpoints: [https://${net}.1:2379, https://${net}.2:2379, https://${net}.3:2379]`,
      '      tls: { ca: pki/ca.pem, cert: pki/gw.pem, key: pki/gw-key.pem }',
      `      prefix: ${prefix}`,
    ].join('\n'),
  );
}

/** startLabEtcd starts that etcd in the lab's gateway host, its certificates from the cluster CA. */
export function startLabEtcd(lab: Lab, ca: ClusterCa, net: string): Promise<EtcdCluster> {
  return startEtcdCluster({
    caPem: ca.certPem,
    issue: (name, hosts) => issueCertificate(ca, { role: 'gateway', name, hosts }),
    netns: lab.names.gateway,
    net,
    dir: join(lab.runDir, 'etcd'),
  });
}
