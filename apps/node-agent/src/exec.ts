import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';

/** CommandError is a failed `ip`/`nft` call, with its standard error. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly stderr: string,
    readonly code: number | string | null,
  ) {
    super(`${argv.join(' ')}: ${stderr.trim() || `exit ${String(code)}`}`);
    this.name = 'CommandError';
  }
}

/**
 * sh runs a command without a shell and resolves with its standard output. Throws a CommandError when
 * it exits non-zero or runs longer than 15 s.
 */
export function sh(file: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: 15_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code ?? null;
          reject(new CommandError([file, ...args], stderr || err.message, code));
          return;
        }
        resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** ip runs `ip <args>`. Throws a CommandError on failure. */
export function ip(...args: string[]): Promise<string> {
  return sh('ip', args);
}

/** ipJson runs `ip -j <args>` and parses the output (an empty output is an empty list). Throws on failure. */
export async function ipJson<T = Record<string, unknown>>(...args: string[]): Promise<T[]> {
  const out = (await sh('ip', ['-j', ...args])).trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

/** nft feeds a script to `nft -f -` (one transaction). Throws a CommandError on failure. */
export function nft(script: string): Promise<string> {
  return sh('nft', ['-f', '-'], script);
}

/** sysctlPath turns "net/ipv4/conf/all/rp_filter" into its /proc/sys file. */
function sysctlPath(key: string): string {
  if (!/^[a-zA-Z0-9_./-]+$/.test(key) || key.includes('..')) throw new Error(`bad sysctl key ${key}`);
  return `/proc/sys/${key}`;
}

/** readSysctl reads a sysctl of this process's network namespace (key with slashes). Throws when missing. */
export async function readSysctl(key: string): Promise<string> {
  return (await readFile(sysctlPath(key), 'utf8')).trim().replace(/\s+/g, ' ');
}

/** writeSysctl writes a sysctl of this process's network namespace. Throws when missing or refused. */
export async function writeSysctl(key: string, value: string): Promise<void> {
  await writeFile(sysctlPath(key), `${value}\n`);
}
