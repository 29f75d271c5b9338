import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterCa, IssuedCertificate, Role } from '@onehost/control';
import type { Output } from './explain-command.js';

export interface CaInitOptions {
  dir: string;
  days?: number;
  force: boolean;
}

export interface CaIssueOptions {
  dir: string;
  role: Role;
  name: string;
  host: string[];
  days?: number;
  force: boolean;
}

/** FileRefusal is a file the command will not overwrite: exit 1. */
class FileRefusal extends Error {}

async function writeFiles(files: Array<[string, string, number]>, force: boolean): Promise<void> {
  const existing = files.map(([p]) => p).filter((p) => existsSync(p));
  if (existing.length > 0 && !force)
    throw new FileRefusal(`${existing.join(', ')} already exist(s); --force overwrites`);
  for (const [path, text, mode] of files) {
    await writeFile(path, text, { mode });
    await chmod(path, mode); // an overwritten file keeps its old mode otherwise
  }
}

async function report(command: string, io: Output, fn: () => Promise<void>): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (err) {
    if (err instanceof RangeError) {
      io.err(`onehostctl ${command}: ${err.message}`);
      return 2;
    }
    io.err(`onehostctl ${command}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

/**
 * runCaInit creates the cluster CA in `dir` (ca.pem, and ca-key.pem readable by the owner only).
 * Returns 0, 1 when a file exists (without --force) or cannot be written, 2 for a bad validity.
 */
export function runCaInit(opts: CaInitOptions, io: Output): Promise<number> {
  return report('ca init', io, async () => {
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    // loaded here: the certificate authority's code is the heaviest part of the control package
    const { createClusterCa } = await import('@onehost/control');
    const ca = await createClusterCa(opts.days !== undefined ? { validDays: opts.days } : {});
    const cert = join(opts.dir, 'ca.pem');
    const key = join(opts.dir, 'ca-key.pem');
    await writeFiles(
      [
        [cert, ca.certPem, 0o644],
        [key, ca.keyPem, 0o600],
      ],
      opts.force,
    );
    io.out(`wrote ${cert} and ${key}`);
  });
}

/**
 * runCaIssue issues a certificate from the CA in `dir` and writes <name>.pem and <name>-key.pem there.
 * Returns 0, 1 when a file exists (without --force) or cannot be written, 2 when the CA cannot be read
 * or the role, name or a host is not valid.
 */
export function runCaIssue(opts: CaIssueOptions, io: Output): Promise<number> {
  return report('ca issue', io, async () => {
    const ca: Partial<ClusterCa> = {};
    for (const [field, file] of [
      ['certPem', 'ca.pem'],
      ['keyPem', 'ca-key.pem'],
    ] as const) {
      try {
        ca[field] = await readFile(join(opts.dir, file), 'utf8');
      } catch (err) {
        throw new RangeError(
          `--dir: cannot read ${join(opts.dir, file)}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (onehostctl ca init makes it)`,
        );
      }
    }
    const { issueCertificate } = await import('@onehost/control');
    let issued: IssuedCertificate;
    try {
      issued = await issueCertificate(ca as ClusterCa, {
        role: opts.role,
        name: opts.name,
        hosts: opts.host,
        ...(opts.days !== undefined ? { validDays: opts.days } : {}),
      });
    } catch (err) {
      // The library names the part at fault ("host …", "name …"); say which flag that was.
      const m = (err as Error).message;
      if (err instanceof RangeError && /^(host|name|role) /.test(m))
        throw new RangeError(`--${m.split(' ')[0]}: ${m}`);
      throw new RangeError(`--dir: the CA in ${opts.dir} cannot be used: ${m}`);
    }
    const cert = join(opts.dir, `${opts.name}.pem`);
    const key = join(opts.dir, `${opts.name}-key.pem`);
    await writeFiles(
      [
        [cert, issued.certPem, 0o644],
        [key, issued.keyPem, 0o600],
      ],
      opts.force,
    );
    io.out(`wrote ${cert} and ${key} (${opts.role} ${opts.name})`);
  });
}
