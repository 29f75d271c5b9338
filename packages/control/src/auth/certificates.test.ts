import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ClusterCa, createClusterCa, identityOfCertificate, issueCertificate } from './certificates.js';
import { readTlsFiles } from './tls-files.js';

let ca: ClusterCa;
beforeAll(async () => {
  ca = await createClusterCa({ commonName: 'test CA' });
});

describe('cluster CA', () => {
  it('makes a CA that signs what it issues, with role and name in the subject', async () => {
    const caCert = new X509Certificate(ca.certPem);
    expect(caCert.ca).toBe(true);
    const n1 = await issueCertificate(ca, { role: 'node', name: 'n1', validDays: 2 });
    const cert = new X509Certificate(n1.certPem);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(identityOfCertificate(n1.certPem)).toEqual({ role: 'node', name: 'n1' });
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(1.9);
    expect(days).toBeLessThan(2.1);
    expect(n1.caPem).toBe(ca.certPem);
  });

  it('puts a gateway hosts in subjectAltName and lets it serve', async () => {
    const gw = await issueCertificate(ca, {
      role: 'gateway',
      name: 'gw',
      hosts: ['198.18.0.1', 'gw.cluster'],
    });
    const cert = new X509Certificate(gw.certPem);
    expect(cert.subjectAltName).toBe('IP Address:198.18.0.1, DNS:gw.cluster');
    expect(cert.checkIP('198.18.0.1')).toBe('198.18.0.1');
    expect(cert.checkHost('gw.cluster')).toBe('gw.cluster');
    expect(identityOfCertificate(gw.certPem)).toEqual({ role: 'gateway', name: 'gw' });
  });

  it('refuses unknown roles, names that are not DNS labels and bad hosts', async () => {
    await expect(issueCertificate(ca, { role: 'admin' as 'node', name: 'x' })).rejects.toThrow(/role admin/);
    await expect(issueCertificate(ca, { role: 'node', name: 'N_1' })).rejects.toThrow(/not a DNS label/);
    await expect(issueCertificate(ca, { role: 'gateway', name: 'gw', hosts: ['a b'] })).rejects.toThrow(
      /host "a b"/,
    );
    await expect(issueCertificate(ca, { role: 'node', name: 'n1', validDays: 0 })).rejects.toThrow(
      /validity/,
    );
  });

  it('reads no identity from a certificate without a onehost role', () => {
    expect(() => identityOfCertificate(ca.certPem)).toThrow(/no onehost role and name/);
  });

  it('reads PEM files for TLS and names a missing one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'onehost-tls-'));
    try {
      const op = await issueCertificate(ca, { role: 'operator', name: 'alice' });
      await writeFile(join(dir, 'ca.pem'), op.caPem);
      await writeFile(join(dir, 'alice.pem'), op.certPem);
      await writeFile(join(dir, 'alice-key.pem'), op.keyPem);
      const files = {
        ca: join(dir, 'ca.pem'),
        cert: join(dir, 'alice.pem'),
        key: join(dir, 'alice-key.pem'),
      };
      expect(await readTlsFiles(files)).toEqual({ caPem: op.caPem, certPem: op.certPem, keyPem: op.keyPem });
      await expect(readTlsFiles({ ...files, key: join(dir, 'nope.pem') })).rejects.toThrow(/nope\.pem/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
