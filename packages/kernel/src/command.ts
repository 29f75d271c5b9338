import { execFile } from 'node:child_process';

/** CommandError is a failed command (`ip`, `nft`, `sysctl` …): its argument vector, stderr and exit code. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly stderr: string,
    readonly code: number | string | null,
  ) {
    super(`${argv.join(' ')}: ${stderr.trim() || `exit ${String(code)}`}`);
    this.name = 'CommandError';
  }

  /** command is the command line as one string. */
  get command(): string {
    return this.argv.join(' ');
  }
}

/** Options for {@link runCommand}. */
export interface CommandOptions {
  /** written to the command's standard input */
  input?: string;
  /** kill the command after this many milliseconds (default 15 000) */
  timeoutMs?: number;
}

/**
 * runCommand executes `file` with `args` (no shell) and resolves with its standard output. Throws a
 * CommandError when it exits non-zero, cannot start, or runs past its timeout.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 15_000, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const code = err.killed ? `killed (${err.signal ?? 'timeout'})` : (err.code ?? null);
          reject(new CommandError([file, ...args], stderr || err.message, code));
          return;
        }
        resolve(stdout);
      },
    );
    // A command that exits before reading its input must not turn into an unhandled EPIPE.
    child.stdin?.on('error', () => undefined);
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
