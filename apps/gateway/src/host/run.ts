import { execFile } from 'node:child_process';

/** CommandError carries the command line and its stderr, so setup failures say what the kernel refused. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`${command}: ${stderr.trim() || `exit ${exitCode}`}`);
  }
}

/** run executes a program (no shell) and resolves with stdout; rejects with CommandError. */
export function run(file: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new CommandError([file, ...args].join(' '), String(stderr), child.exitCode));
      else resolve(String(stdout));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** readSysctl returns the current value of a net sysctl, e.g. "net.ipv4.ip_forward". */
export async function readSysctl(key: string): Promise<string> {
  return (await run('sysctl', ['-n', key])).trim();
}

/** writeSysctl sets a sysctl; rejects when the kernel refuses it. */
export async function writeSysctl(key: string, value: string): Promise<void> {
  await run('sysctl', ['-qw', `${key}=${value}`]);
}
