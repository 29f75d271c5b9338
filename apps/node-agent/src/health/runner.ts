import { describeCheck, type HealthCheckConfig } from './config.js';
import type { ProbeResult } from './probe.js';

/** One check's state as the gateway gets it (onehost.v1.HealthCheck). */
export interface CheckState {
  name: string;
  description: string;
  covers: string[];
  healthy: boolean;
  detail: string;
  sinceUnixMs: number;
}

/**
 * Streak turns probe results into a state with rise/fall hysteresis (keepalived, HAProxy): `rise`
 * passes in a row make a check healthy, `fall` failures in a row unhealthy. Until its first result a
 * check is unhealthy ("not checked yet"); the first result sets the state at once, so a node that starts
 * takes traffic as soon as its service has answered once.
 */
export class Streak {
  healthy = false;
  detail = 'not checked yet';
  since: number;
  private run = 0;
  private checked = false;

  constructor(
    private readonly rise: number,
    private readonly fall: number,
    now: number,
  ) {
    this.since = now;
  }

  /** add records a result; true when the state changed. */
  add(r: ProbeResult, now: number): boolean {
    if (!this.checked) {
      this.checked = true;
      this.healthy = r.ok;
      this.detail = r.detail;
      this.since = now;
      return true;
    }
    if (r.ok === this.healthy) {
      this.run = 0;
      this.detail = r.detail;
      return false;
    }
    this.run++;
    if (this.run < (r.ok ? this.rise : this.fall)) return false;
    this.run = 0;
    this.healthy = r.ok;
    this.detail = r.detail;
    this.since = now;
    return true;
  }
}

export interface HealthRunnerOptions {
  checks: HealthCheckConfig[];
  probe: (c: HealthCheckConfig) => Promise<ProbeResult>;
  /** called after a check changed state, with every check */
  onChange: (all: CheckState[]) => void;
  now?: () => number;
  random?: () => number;
}

/**
 * HealthRunner runs each check every interval (± jitter), one probe at a time per check, and keeps its
 * state. `version` grows with each change, so the heartbeat sends the report only when it moved.
 */
export class HealthRunner {
  version = 0;
  private readonly streaks: Streak[];
  private readonly timers: (NodeJS.Timeout | null)[];
  private stopped = false;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly o: HealthRunnerOptions) {
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
    this.streaks = o.checks.map((c) => new Streak(c.rise, c.fall, this.now()));
    this.timers = o.checks.map(() => null);
  }

  /** start probes every check now, then every interval. */
  start(): void {
    for (let i = 0; i < this.o.checks.length; i++) this.schedule(i, 0);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) if (t !== null) clearTimeout(t);
  }

  /** states lists every check as it stands. */
  states(): CheckState[] {
    return this.o.checks.map((c, i) => {
      const s = this.streaks[i]!;
      return {
        name: c.name,
        description: describeCheck(c),
        covers: [...c.covers],
        healthy: s.healthy,
        detail: s.detail,
        sinceUnixMs: s.since,
      };
    });
  }

  private schedule(i: number, delay: number): void {
    if (this.stopped) return;
    this.timers[i] = setTimeout(() => void this.runOne(i), delay);
    this.timers[i].unref();
  }

  private async runOne(i: number): Promise<void> {
    const c = this.o.checks[i]!;
    const r = await this.o.probe(c);
    if (this.stopped) return;
    if (this.streaks[i]!.add(r, this.now())) {
      this.version++;
      this.o.onChange(this.states());
    }
    const jitter = c.jitterMs === 0 ? 0 : Math.round((this.random() * 2 - 1) * c.jitterMs);
    this.schedule(i, Math.max(10, c.intervalMs + jitter));
  }
}
