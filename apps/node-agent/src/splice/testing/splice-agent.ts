// The test side of splice-agent.mjs: start it in a namespace, send it commands, wait for its events.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Netns, waitFor } from '@onehost/testkit';

export const SPLICE_AGENT = fileURLToPath(new URL('./splice-agent.mjs', import.meta.url));

/** An event the agent printed ({"ev": ...}). */
export interface AgentEvent {
  ev: string;
  [k: string]: unknown;
}

/**
 * SpliceAgent is one splice-agent.mjs process inside a namespace. Its lab's cleanup stops it (by pid);
 * `kill('SIGKILL')` plays a crash.
 */
export class SpliceAgent {
  readonly events: AgentEvent[] = [];
  private readonly replies = new Map<number, Record<string, unknown>>();
  private nextId = 1;
  private err = '';
  private exited = false;
  private readonly exit: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        if (!line.startsWith('{')) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (typeof msg.id === 'number') this.replies.set(msg.id, msg);
        else this.events.push(msg as AgentEvent);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.err = (this.err + chunk.toString('utf8')).slice(-8192);
    });
    this.exit = new Promise((resolve) => {
      child.once('exit', () => {
        this.exited = true;
        resolve();
      });
    });
  }

  /** start runs the agent in `ns` with a NodeConfig file and waits until it is ready. */
  static async start(ns: Netns, configFile: string): Promise<SpliceAgent> {
    const child = spawn('ip', ['netns', 'exec', ns.name, 'node', SPLICE_AGENT, configFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const agent = new SpliceAgent(child);
    ns.lab.defer(() => agent.kill('SIGKILL'));
    await agent.waitEvent((e) => e.ev === 'ready', 'the agent to be ready', 10_000);
    return agent;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** stderr is the end of what the agent wrote to standard error (its logs). */
  get stderr(): string {
    return this.err;
  }

  private alive(): void {
    if (this.exited) throw new Error(`the splice agent exited: ${this.err}`);
  }

  /** request sends a command and resolves with the answer. Throws on an error answer or a timeout. */
  async request(op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    this.alive();
    const id = this.nextId++;
    this.child.stdin?.write(`${JSON.stringify({ id, op, ...args })}\n`);
    const reply = await waitFor(
      () => {
        this.alive();
        return this.replies.get(id);
      },
      { what: `the answer to ${op}`, timeoutMs: 10_000 },
    );
    if (typeof reply.error === 'string') throw new Error(`${op}: ${reply.error}`);
    return reply;
  }

  /** waitEvent waits for an event (counting from `from`, an index into `events`) and returns it. */
  async waitEvent(
    match: (e: AgentEvent) => boolean,
    what: string,
    timeoutMs = 5000,
    from = 0,
  ): Promise<AgentEvent> {
    return waitFor(
      () => {
        const found = this.events.slice(from).find(match);
        if (found) return found;
        this.alive();
        return undefined;
      },
      { what, timeoutMs },
    );
  }

  /** kill signals the agent by pid and waits until it has exited. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // Already gone.
    }
    await this.exit;
  }

  /** end closes the agent's standard input (it exits without restoring) and waits for it to exit. */
  async end(): Promise<void> {
    this.child.stdin?.end();
    await this.exit;
  }
}
