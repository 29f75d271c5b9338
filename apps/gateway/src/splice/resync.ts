import { encodeResync } from '@onehost/splice';

export interface ResyncOptions {
  /** the agents to ask: their internal addresses */
  agents: readonly string[];
  /** sends a datagram to an agent's splice port */
  send(message: Uint8Array, address: string): void;
  /** how long to wait for every answer (default 1000 ms) */
  deadlineMs?: number;
  /** asked again after this long without an answer (default 250 ms: UDP may lose a request) */
  retryMs?: number;
}

export interface ResyncResult {
  asked: number;
  answered: number;
  /** spliced flows the agents told */
  flows: number;
  /** of those, the shifts that did not arrive (lost datagrams: the agents tell them again within a minute) */
  missing: number;
  ms: number;
}

/**
 * Resync asks every agent, once when the gateway starts, for the offsets of all its established
 * spliced flows (type 4; each answers with its type-3 shifts and a type 5, docs/splice.md "Several
 * gateways"): a router may move any of them here, and this gateway was not there when their agents
 * told the others. The gateway is ready (and announced) only after every agent answered or the
 * deadline passed.
 */
export class Resync {
  private readonly waiting = new Set<string>();
  /** shifts heard from each agent since the request */
  private readonly heardFrom = new Map<string, number>();
  private flows = 0;
  private missing = 0;
  private finish: (() => void) | null = null;

  constructor(private readonly o: ResyncOptions) {}

  /** heard counts a shift from an agent (taken as it came, before its type 5). */
  heard(from: string): void {
    if (this.waiting.has(from)) this.heardFrom.set(from, (this.heardFrom.get(from) ?? 0) + 1);
  }

  /** done takes an agent's type 5: how many shifts it sent before it. */
  done(from: string, flows: number): void {
    if (!this.waiting.delete(from)) return;
    this.flows += flows;
    this.missing += Math.max(0, flows - (this.heardFrom.get(from) ?? 0));
    if (this.waiting.size === 0) this.finish?.();
  }

  async run(): Promise<ResyncResult> {
    const start = Date.now();
    for (const a of this.o.agents) this.waiting.add(a);
    const asked = this.waiting.size;
    const msg = new Uint8Array(2);
    encodeResync(msg);
    const ask = () => {
      for (const a of this.waiting) this.o.send(msg, a);
    };
    if (asked > 0) {
      await new Promise<void>((resolve) => {
        const retry = setInterval(ask, this.o.retryMs ?? 250);
        const deadline = setTimeout(() => this.finish?.(), this.o.deadlineMs ?? 1000);
        this.finish = () => {
          clearInterval(retry);
          clearTimeout(deadline);
          this.finish = null;
          resolve();
        };
        ask();
      });
    }
    const answered = asked - this.waiting.size;
    this.waiting.clear();
    return { asked, answered, flows: this.flows, missing: this.missing, ms: Date.now() - start };
  }
}
