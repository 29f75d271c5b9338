import { execFile } from 'node:child_process';
import { isIPv6 } from 'node:net';
import type { Lab } from '@onehost/lab';

/** The three paths compared, in the order they run within a repetition. */
export const PATHS = ['onehost', 'kernel', 'haproxy'] as const;
export type PathId = (typeof PATHS)[number];

/** PATH_TITLES are the column titles of the table. */
export const PATH_TITLES: Record<PathId, string> = {
  onehost: 'onehost',
  kernel: 'kernel route',
  haproxy: 'HAProxy',
};

/** Target says where one path sends each workload: from which client, to which address and ports. */
export interface Target {
  client: string;
  address: string;
  iperf3Port: number;
  httpPort: number;
  /** UDP port of the iperf3 server; undefined when the path carries no UDP (HAProxy) */
  udpPort: number | undefined;
}

/** Figure is one row of the main table: a value a workload's run yields, in its unit. */
export interface Figure {
  id: string;
  unit: string;
  /** digits printed after the point */
  digits: number;
  /** which way is better; the ratio stays onehost ÷ peer either way */
  better: 'higher' | 'lower';
}

/**
 * Sample is one measurement: a value per figure of its workload (by figure id; a missing one is NaN),
 * or no values and the reason it failed.
 */
export interface Sample {
  values: Record<string, number>;
  /** anything worth printing next to the values (errors wrk counted, UDP loss) */
  note?: string;
  error?: string;
}

/** Workload is one kind of load, run against a target for a bounded time. */
export interface Workload {
  id: string;
  /** runs over IPv6: against the paths' IPv6 targets (the IPv6 cluster address and its peers) */
  ipv6?: boolean;
  /** the rows one run fills (most workloads: one, named as the workload) */
  figures: readonly Figure[];
  /** figures a run records besides its rows, shown in a note under the table */
  aside?: readonly Figure[];
  /** run loads `t` for `seconds` (the command stops by itself) and measures it. Throws on failure. */
  run(lab: Lab, t: Target, seconds: number): Promise<Sample>;
}

/** httpUrl is the URL of a target's web server (an IPv6 address in brackets, RFC 3986 §3.2.2). */
function httpUrl(t: Target): string {
  const host = isIPv6(t.address) ? `[${t.address}]` : t.address;
  return `http://${host}${t.httpPort === 80 ? '' : `:${t.httpPort}`}/`;
}

/** value is a sample's figure `f`, NaN when it has none (it failed, or the path has no such load). */
export function value(s: Sample, f: Figure): number {
  return s.values[f.id] ?? Number.NaN;
}

/** NOT_APPLICABLE is the sample of a load a path does not carry (UDP through HAProxy). */
export const NOT_APPLICABLE: Sample = { values: {}, error: 'n/a' };

/** Seconds a command may take beyond its load before it is killed. */
const GRACE_SECONDS = 10;

interface Iperf3Result {
  error?: string;
  end?: {
    sum_received?: { bits_per_second: number; seconds: number; packets?: number; lost_packets?: number };
    sum_sent?: { packets?: number; seconds: number };
  };
}

/**
 * execIn runs a command in a lab host and resolves with its exit code and output whatever the code
 * (iperf3 -J says why it failed in its JSON on stdout). The command is killed after `timeoutMs`;
 * `ip netns exec` execs it, so the pid killed is the command's own. Throws only when it cannot start.
 */
function execIn(
  lab: Lab,
  host: string,
  file: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const netns = lab.host(host).netns;
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', netns, file, ...args],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        if (err && code === null && !err.killed) reject(err);
        else resolve({ code, stdout, stderr });
      },
    );
  });
}

async function iperf3(lab: Lab, t: Target, args: string[], seconds: number): Promise<Iperf3Result> {
  const all = ['-c', t.address, '-t', String(seconds), '-J', '--connect-timeout', '3000', ...args];
  const r = await execIn(lab, t.client, 'iperf3', all, (seconds + GRACE_SECONDS) * 1000);
  let j: Iperf3Result;
  try {
    j = JSON.parse(r.stdout) as Iperf3Result;
  } catch {
    const status = r.code === null ? `killed after ${seconds + GRACE_SECONDS} s` : `exit ${r.code}`;
    throw new Error(`iperf3 ${all.join(' ')}: ${status}: ${r.stderr.trim() || r.stdout.slice(-300)}`);
  }
  if (j.error) throw new Error(`iperf3 to ${t.address}: ${j.error}`);
  return j;
}

function tcpBulk(id: string, reverse: boolean, ipv6 = false): Workload {
  return {
    id,
    ipv6,
    figures: [{ id, unit: 'Gbit/s', digits: 2, better: 'higher' }],
    async run(lab, t, seconds) {
      const j = await iperf3(lab, t, ['-p', String(t.iperf3Port), ...(reverse ? ['-R'] : [])], seconds);
      const received = j.end?.sum_received;
      if (!received) throw new Error('iperf3 printed no sum_received');
      return { values: { [id]: received.bits_per_second / 1e9 } };
    },
  };
}

/** upload: iperf3 TCP from the client to the server: every data segment crosses the gateway's path. */
export const UPLOAD = tcpBulk('upload', false);
/** download: iperf3 -R: data flows node → client (onehost: direct server return), ACKs the other way. */
export const DOWNLOAD = tcpBulk('download', true);
/** upload6, download6: the same over IPv6. */
export const UPLOAD6 = tcpBulk('upload6', false, true);
export const DOWNLOAD6 = tcpBulk('download6', true, true);

/** HTTP_CLOSE: wrk, one thread, 16 connections, a new TCP connection per request (Connection: close). */
function httpClose(id: string, ipv6 = false): Workload {
  return {
    id,
    ipv6,
    figures: [{ id, unit: 'req/s', digits: 0, better: 'higher' }],
    async run(lab, t, seconds) {
      const url = httpUrl(t);
      const { stdout } = await lab.exec(
        t.client,
        'wrk',
        ['-t1', '-c16', `-d${seconds}s`, '--timeout', '2s', '-H', 'Connection: close', url],
        { timeoutMs: (seconds + GRACE_SECONDS) * 1000 },
      );
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      if (!rps) throw new Error(`wrk printed no Requests/sec:\n${stdout}`);
      const notes: string[] = [];
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      if (sock) notes.push(`socket errors c/r/w/t ${sock.slice(1).join('/')}`);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
      if (non2xx) notes.push(`${non2xx[1]} non-2xx`);
      return { values: { [id]: Number(rps[1]) }, note: notes.join(', ') || undefined };
    },
  };
}
export const HTTP_CLOSE = httpClose('http_close');
/** HTTP_CLOSE6: the same over IPv6. */
export const HTTP_CLOSE6 = httpClose('http_close6', true);

/** Microseconds per unit wrk prints a time in (its format_time: us, ms, s, then m and h). */
const WRK_TIME_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };

/** wrkPercentile reads one line of wrk's "Latency Distribution" (e.g. `99%  1.23ms`) in µs. */
export function wrkPercentile(stdout: string, percent: number): number {
  const m = new RegExp(`^\\s*${percent}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(stdout);
  if (!m) throw new Error(`wrk printed no ${percent}% latency:\n${stdout}`);
  return Number(m[1]) * WRK_TIME_US[m[2]!]!;
}

/**
 * LATENCY: wrk, one thread, one keep-alive connection (requests back to back, never two in flight): the
 * time a request takes over the path, from wrk's Latency Distribution. One run yields the median and
 * p99; its req/s goes in the note. nginx closes a connection after 1000 requests (keepalive_requests),
 * so wrk reconnects now and then: a few new flows per second, too few to reach the p99. wrk's latency
 * leaves connecting out, so a stalled reconnect (or a retransmitted request) shows in the req/s.
 */
function latency(id: string, ipv6 = false): Workload {
  return {
    id,
    ipv6,
    figures: [
      { id: `${id}_p50`, unit: 'µs', digits: 0, better: 'lower' },
      { id: `${id}_p99`, unit: 'µs', digits: 0, better: 'lower' },
    ],
    aside: [{ id: `${id}_rps`, unit: 'req/s', digits: 0, better: 'higher' }],
    async run(lab, t, seconds) {
      const url = httpUrl(t);
      const { stdout } = await lab.exec(
        t.client,
        'wrk',
        ['-t1', '-c1', `-d${seconds}s`, '--timeout', '2s', '--latency', url],
        { timeoutMs: (seconds + GRACE_SECONDS) * 1000 },
      );
      const requests = /(\d+) requests in/.exec(stdout);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      if (!requests || !rps) throw new Error(`wrk printed no request count:\n${stdout}`);
      if (Number(requests[1]) === 0) throw new Error('wrk completed no request');
      const notes = [`${Math.round(Number(rps[1]))} req/s`];
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      if (sock) notes.push(`socket errors c/r/w/t ${sock.slice(1).join('/')}`);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
      if (non2xx) notes.push(`${non2xx[1]} non-2xx`);
      return {
        values: {
          [`${id}_p50`]: wrkPercentile(stdout, 50),
          [`${id}_p99`]: wrkPercentile(stdout, 99),
          [`${id}_rps`]: Number(rps[1]),
        },
        note: notes.join(', '),
      };
    },
  };
}
export const LATENCY = latency('latency');
/** LATENCY6: the same over IPv6 (rows latency6_p50, latency6_p99). */
export const LATENCY6 = latency('latency6', true);

/** UDP64: iperf3 UDP, 64-byte payloads, unlimited rate; the value is what the server received per second. */
function udp64(id: string, ipv6 = false): Workload {
  return {
    id,
    ipv6,
    figures: [{ id, unit: 'kpkt/s', digits: 1, better: 'higher' }],
    async run(lab, t, seconds) {
      if (t.udpPort === undefined) return NOT_APPLICABLE;
      const j = await iperf3(lab, t, ['-p', String(t.udpPort), '-u', '-l', '64', '-b', '0'], seconds);
      const r = j.end?.sum_received;
      const s = j.end?.sum_sent;
      if (r?.packets === undefined || r.lost_packets === undefined || !s?.packets)
        throw new Error('iperf3 printed no UDP packet counts');
      const received = r.packets - r.lost_packets;
      return {
        values: { [id]: received / r.seconds / 1000 },
        note: `sent ${(s.packets / s.seconds / 1000).toFixed(1)}k/s, lost ${((100 * r.lost_packets) / r.packets).toFixed(1)}%`,
      };
    },
  };
}
export const UDP64 = udp64('udp64');
/** UDP64_6: the same over IPv6. */
export const UDP64_6 = udp64('udp64_6', true);

/** WORKLOADS in the order they run within a repetition. */
export const WORKLOADS: readonly Workload[] = [
  UPLOAD,
  DOWNLOAD,
  HTTP_CLOSE,
  LATENCY,
  UDP64,
  UPLOAD6,
  DOWNLOAD6,
  HTTP_CLOSE6,
  LATENCY6,
  UDP64_6,
];
