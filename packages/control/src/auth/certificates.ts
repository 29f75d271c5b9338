import { generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { CERT_ORGANIZATION, type Identity, ROLES, type Role } from './roles.js';

// node-forge builds and signs the certificates (pure JS, no global polyfill, no external binary);
// Node's crypto makes the RSA keys (native, fast) and parses certificates.

const generateKeyPairAsync = promisify(generateKeyPair);
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const CLOCK_SKEW_MS = 5 * 60_000;
const DAY_MS = 86_400_000;

/** ClusterCa is the cluster's certificate authority: its certificate and private key, PEM. */
export interface ClusterCa {
  certPem: string;
  keyPem: string;
}

/** IssuedCertificate is a certificate with its private key, and the CA certificate that checks it. */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  caPem: string;
}

export interface CreateCaOptions {
  /** subject CN (default "onehost cluster CA"). */
  commonName?: string;
  /** default 3650. */
  validDays?: number;
  /** default 2048. */
  keyBits?: number;
  /** issue time (default now). */
  now?: Date;
}

export interface IssueOptions {
  role: Role;
  /** the node, operator or gateway name (DNS label): the subject CN. */
  name: string;
  /** host names and IPv4/IPv6 addresses the certificate serves (gateways): subjectAltName. */
  hosts?: string[];
  /** default 365. */
  validDays?: number;
  keyBits?: number;
  now?: Date;
}

/**
 * createClusterCa makes a self-signed CA (RSA, SHA-256) that issues the node, operator and gateway
 * certificates. Throws RangeError for a bad validity or key size.
 */
export async function createClusterCa(opts: CreateCaOptions = {}): Promise<ClusterCa> {
  const { publicPem, privatePem, keyPem } = await newKey(opts.keyBits);
  const cert = forge.pki.createCertificate();
  const subject = [
    { name: 'commonName', value: opts.commonName ?? 'onehost cluster CA' },
    { name: 'organizationName', value: CERT_ORGANIZATION },
  ];
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = serialNumber();
  setValidity(cert, opts.now, opts.validDays ?? 3650);
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privatePem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/**
 * issueCertificate issues a certificate for a node, operator or gateway: subject CN = name, OU = role;
 * client authentication for all, server authentication too for gateways (with `hosts` as
 * subjectAltName). Throws RangeError for an unknown role, a name that is not a DNS label, or a bad
 * host; throws the parser's Error for a malformed CA.
 */
export async function issueCertificate(ca: ClusterCa, opts: IssueOptions): Promise<IssuedCertificate> {
  if (!ROLES.includes(opts.role))
    throw new RangeError(`role ${String(opts.role)}: not one of ${ROLES.join(', ')}`);
  if (!NAME.test(opts.name)) throw new RangeError(`name ${JSON.stringify(opts.name)}: not a DNS label`);
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const { publicPem, keyPem } = await newKey(opts.keyBits);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = serialNumber();
  setValidity(cert, opts.now, opts.validDays ?? 365);
  cert.setSubject([
    { name: 'commonName', value: opts.name },
    { name: 'organizationalUnitName', value: opts.role },
    { name: 'organizationName', value: CERT_ORGANIZATION },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = (opts.hosts ?? []).map((h) => {
    if (isIP(h) !== 0) return { type: 7, ip: h };
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(h))
      throw new RangeError(`host ${JSON.stringify(h)}: not a host name or address`);
    return { type: 2, value: h };
  });
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true, serverAuth: opts.role === 'gateway' },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ];
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames });
  cert.setExtensions(extensions);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem, caPem: ca.certPem };
}

/**
 * identityOfCertificate reads the role and name a certificate carries (without checking who signed
 * it). Throws Error when it carries none.
 */
export function identityOfCertificate(certPem: string): Identity {
  const subject = new X509Certificate(certPem).subject;
  const fields = new Map(
    subject.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const identity = identityOfSubject({ CN: fields.get('CN'), OU: fields.get('OU'), O: fields.get('O') });
  if (identity === null) throw new Error(`certificate ${JSON.stringify(subject)}: no onehost role and name`);
  return identity;
}

/**
 * identityOfSubject reads role (OU) and name (CN) from a parsed subject; null when either is missing,
 * repeated, or not ours.
 */
export function identityOfSubject(subject: Record<string, unknown> | undefined): Identity | null {
  if (subject === undefined) return null;
  const { CN, OU, O } = subject;
  if (typeof CN !== 'string' || typeof OU !== 'string' || O !== CERT_ORGANIZATION) return null;
  if (!ROLES.includes(OU as Role) || !NAME.test(CN)) return null;
  return { role: OU as Role, name: CN };
}

async function newKey(bits = 2048) {
  if (!Number.isInteger(bits) || bits < 2048 || bits > 8192)
    throw new RangeError(`key size ${bits}: 2048-8192`);
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: bits });
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive and without a leading zero byte
  return b.toString('hex');
}

function setValidity(cert: forge.pki.Certificate, now: Date | undefined, days: number): void {
  if (!Number.isInteger(days) || days < 1)
    throw new RangeError(`validity ${days} days: must be a positive integer`);
  const t = (now ?? new Date()).getTime();
  cert.validity.notBefore = new Date(t - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(t + days * DAY_MS);
}
