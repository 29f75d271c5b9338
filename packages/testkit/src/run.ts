import { execFile } from 'node:child_process';

/** Output of a finished command. */
export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Options for {@link run}. */
export interface RunOptions {
  /** Kill the command after this many milliseconds (default 30000). */
  timeoutMs?: number;
  /** Data written to the command's standard input. */
  input?: string;
}

/**
 * run executes `file` with `args` (no shell) and resolves with its output. Throws an Error naming the
 * command line, its exit status and its standard error when it fails or times out.
 */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const status = err.killed ? `killed (${err.signal ?? 'timeout'})` : `exit ${String(err.code)}`;
          reject(
            new Error(`${[file, ...args].join(' ')}: ${status}: ${stderr.trim() || err.message}`, {
              cause: err,
            }),
          );
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * runInNetns runs a command inside the named network namespace (`ip netns exec`). Throws like
 * {@link run}.
 */
export function runInNetns(
  netns: string,
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return run('ip', ['netns', 'exec', netns, file, ...args], options);
}
