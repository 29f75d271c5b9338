import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from './wait-for.js';

/**
 * LabProcess is a long-running command started by a {@link Lab}. It keeps the last 64 KiB of its
 * output so that a failing test can show what the program said.
 */
export class LabProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  private out = '';
  private exited = false;
  private exitCode: number | null = null;
  private exitSignal: NodeJS.Signals | null = null;
  private readonly exitPromise: Promise<void>;
  private readonly closePromise: Promise<void>;

  /** Throws when the command cannot be started (no pid). */
  constructor(
    file: string,
    args: readonly string[],
    readonly label: string,
  ) {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.out += chunk.toString('utf8');
      if (this.out.length > 65536) this.out = this.out.slice(-65536);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
      child.once('error', (err) => {
        this.out += `\nspawn error: ${err.message}`;
        this.exited = true;
        resolve();
      });
    });
    // 'close' comes after 'exit' once stdout and stderr have ended: a crash's last words (a stack
    // trace on stderr) may still be in the pipe when 'exit' fires
    this.closePromise = new Promise((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => resolve());
    });
    if (child.pid === undefined) throw new Error(`${label}: could not start ${file}`);
    this.pid = child.pid;
  }

  /** output returns what the process printed so far (stdout and stderr interleaved, last 64 KiB). */
  output(): string {
    return this.out;
  }

  /** running is true until the process has exited. */
  get running(): boolean {
    return !this.exited;
  }

  /** exitStatus describes how the process ended, or null while it runs. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.exited ? { code: this.exitCode, signal: this.exitSignal } : null;
  }

  /** exited resolves once the process has ended (never rejects). */
  whenExited(): Promise<void> {
    return this.exitPromise;
  }

  /**
   * finalOutput waits (at most `timeoutMs`) until an exited process's output streams have ended, then
   * returns its output: what it printed as it died is then included.
   */
  async finalOutput(timeoutMs = 2000): Promise<string> {
    await Promise.race([
      this.closePromise,
      new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ]);
    return this.out;
  }

  /** waitForOutput waits until the output contains `text`. Throws on timeout or if the process exits first. */
  async waitForOutput(text: string, timeoutMs = 5000): Promise<void> {
    await waitFor(
      () => {
        if (this.out.includes(text)) return true;
        if (this.exited) throw new Error(`${this.label} exited: ${this.out.slice(-2000)}`);
        return false;
      },
      { timeoutMs, what: `"${text}" in the output of ${this.label}` },
    );
  }

  /**
   * stop sends SIGTERM to this process (by PID), then SIGKILL if it has not ended within `graceMs`.
   * Safe to call twice and after the process has exited; never throws.
   */
  async stop(graceMs = 2000): Promise<void> {
    if (this.exited) return;
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    const ended = await Promise.race([
      this.exitPromise.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref()),
    ]);
    if (ended) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await this.exitPromise;
  }
}
