import { type ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const root = new URL('../../', import.meta.url).pathname;
// built with the suites (turbo's test task builds first), as explain-batch
const SERVER_MAIN = join(root, 'test/dist/ctl-server-main.js');

interface Answer {
  id: number;
  code: number;
  stdout: string;
  stderr: string;
}

interface Pending {
  child: ChildProcess;
  argv: string[];
  resolve: (stdout: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * CtlServer runs onehostctl commands in one long-lived node process inside a namespace
 * (ctl-server-main.mjs): the same program, arguments, output and exit codes as the binary, without a
 * node start per command. It starts on the first command and again after its process ended or its
 * namespace was made again (a gateway host's reboot). stop ends it by its PID.
 */
export class CtlServer {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly netns: string) {}

  /**
   * run runs onehostctl with `argv`; resolves with its stdout when it exits 0, rejects naming the
   * command, its exit code and its stderr otherwise (or when no answer comes within `timeoutMs`).
   */
  run(argv: string[], timeoutMs = 30_000): Promise<string> {
    const child = this.current();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`onehostctl ${argv.join(' ')}: killed (timeout): no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { child, argv, resolve, reject, timer });
      child.stdin?.write(`${JSON.stringify({ id, argv })}\n`);
    });
  }

  /** stop ends the process (stdin closed; SIGTERM, then SIGKILL by its PID). Never throws. */
  async stop(graceMs = 2000): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const within = (ms: number) =>
      Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref()),
      ]);
    child.stdin?.end();
    if (await within(graceMs)) return;
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, signal);
      } catch {
        return; // already gone
      }
      if (await within(graceMs)) return;
    }
  }

  /** current is the running process in the namespace as it is now: started when there is none. */
  private current(): ChildProcess {
    const c = this.child;
    if (c !== undefined && c.exitCode === null && c.signalCode === null && this.inNamespace(c)) return c;
    if (c !== undefined) {
      this.child = undefined;
      // a process in a namespace that is gone: its answers would come from there
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null)
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          // already gone
        }
    }
    return this.start();
  }

  /** inNamespace: the process's network namespace is the one the name stands for now. */
  private inNamespace(c: ChildProcess): boolean {
    try {
      return statSync(`/proc/${c.pid}/ns/net`).ino === statSync(`/run/netns/${this.netns}`).ino;
    } catch {
      return false;
    }
  }

  private start(): ChildProcess {
    // `ip netns exec` execs node after setns: the child's pid is the server's
    const child = spawn('ip', ['netns', 'exec', this.netns, process.execPath, SERVER_MAIN], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    // its last words, for what it could not answer
    let said = '';
    child.stdin.on('error', () => {
      // it died: 'exit' fails what was asked
    });
    child.stderr.on('data', (chunk: Buffer) => {
      said = (said + chunk.toString('utf8')).slice(-4000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      let a: Answer;
      try {
        a = JSON.parse(line) as Answer;
      } catch {
        // not an answer (something in the program wrote to stdout itself): kept with its last words
        said = `${said}${line}\n`.slice(-4000);
        return;
      }
      const p = this.pending.get(a.id);
      if (p === undefined) return;
      this.pending.delete(a.id);
      clearTimeout(p.timer);
      if (a.code === 0) p.resolve(a.stdout);
      else
        p.reject(
          new Error(`onehostctl ${p.argv.join(' ')}: exit ${a.code}: ${a.stderr.trim() || '(no output)'}`),
        );
    });
    const failAll = (why: string) => {
      if (this.child === child) this.child = undefined;
      for (const [id, p] of this.pending) {
        if (p.child !== child) continue;
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.reject(new Error(`onehostctl ${p.argv.join(' ')}: ${why}: ${said.trim()}`));
      }
    };
    child.once('error', (err) => failAll(`could not start the ctl server: ${err.message}`));
    child.once('close', (code, signal) => failAll(`the ctl server ended (${signal ?? `exit ${code}`})`));
    return child;
  }
}
