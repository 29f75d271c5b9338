import { readFileSync } from 'node:fs';
import { run } from '@onehost/testkit';

/** Machine-wide CPU time from the `cpu` line of /proc/stat, in clock ticks. */
interface MachineTicks {
  total: number;
  idle: number;
  softirq: number;
}

/** CpuUse is what a {@link CpuMeter} measured over one window; fractions of one core unless said. */
export interface CpuUse {
  wallSeconds: number;
  /** per watched process: user and system time, in cores (1 = one core busy all the time) */
  procs: Record<string, { user: number; sys: number }>;
  /** busy share of all cores together (0…1): everything but idle and iowait */
  machineBusy: number;
  /** softirq share of all cores together (0…1): where kernel forwarding and veth delivery run */
  machineSoftirq: number;
}

let ticksPerSecond = 100;

/** initClock reads the kernel's clock tick rate (getconf CLK_TCK); keeps 100 when it cannot. */
export async function initClock(): Promise<void> {
  const { stdout } = await run('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }));
  const hz = Number.parseInt(stdout, 10);
  if (Number.isInteger(hz) && hz > 0) ticksPerSecond = hz;
}

function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { total, idle: f[3]! + f[4]!, softirq: f[6]! };
}

/** procTicks reads utime and stime of a process (all its threads); undefined once it has gone. */
function procTicks(pid: number): { user: number; sys: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]), sys: Number(f[12]) };
  } catch {
    return undefined;
  }
}

/**
 * CpuMeter measures, over a window, the CPU time of a few named processes (by pid) and of the whole
 * machine. Reading /proc costs microseconds, so it does not disturb what it measures.
 */
export class CpuMeter {
  private t0 = 0n;
  private m0: MachineTicks = { total: 0, idle: 0, softirq: 0 };
  private p0 = new Map<string, { user: number; sys: number }>();

  constructor(private readonly pids: Record<string, number>) {}

  /** start opens the window. */
  start(): void {
    this.p0.clear();
    for (const [name, pid] of Object.entries(this.pids)) {
      const t = procTicks(pid);
      if (t) this.p0.set(name, t);
    }
    this.m0 = machineTicks();
    this.t0 = process.hrtime.bigint();
  }

  /** stop closes the window and returns what was used in it. */
  stop(): CpuUse {
    const wallSeconds = Number(process.hrtime.bigint() - this.t0) / 1e9;
    const m = machineTicks();
    const procs: CpuUse['procs'] = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const a = this.p0.get(name);
      const b = procTicks(pid);
      if (!a || !b) continue;
      procs[name] = {
        user: (b.user - a.user) / ticksPerSecond / wallSeconds,
        sys: (b.sys - a.sys) / ticksPerSecond / wallSeconds,
      };
    }
    const total = Math.max(1, m.total - this.m0.total);
    return {
      wallSeconds,
      procs,
      machineBusy: 1 - (m.idle - this.m0.idle) / total,
      machineSoftirq: (m.softirq - this.m0.softirq) / total,
    };
  }
}

/**
 * waitQuiet waits until process `pid` used at most `below` of a core over one `windowMs` window, or
 * `maxMs` passed (or it has gone). A /metrics scrape costs the gateway a second or more of CPU, part
 * of it after the answer (parsing, collecting garbage): a load window opened at once would count it.
 * Resolves with the milliseconds waited.
 */
export async function waitQuiet(pid: number, below = 0.1, windowMs = 200, maxMs = 3000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const a = procTicks(pid);
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const b = procTicks(pid);
    if (!a || !b) break;
    const used = (b.user + b.sys - a.user - a.sys) / ticksPerSecond / (windowMs / 1000);
    if (used <= below || Date.now() - t0 >= maxMs) break;
  }
  return Date.now() - t0;
}
