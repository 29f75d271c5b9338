import { readFile } from 'node:fs/promises';

/** TlsFiles names PEM files: the cluster CA certificate, a certificate and its private key. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** TlsPems is what ServerTls and ClientTls need. */
export interface TlsPems {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** readTlsFiles reads the three PEM files. Throws the file system's error naming the missing file. */
export async function readTlsFiles(files: TlsFiles): Promise<TlsPems> {
  const [caPem, certPem, keyPem] = await Promise.all([
    readFile(files.ca, 'utf8'),
    readFile(files.cert, 'utf8'),
    readFile(files.key, 'utf8'),
  ]);
  return { caPem, certPem, keyPem };
}
