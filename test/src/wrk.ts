import type { Cluster } from './cluster.js';

/** WrkResult is what the e2e suites read from wrk's report. */
export interface WrkResult {
  requests: number;
  /** socket errors (connect, read, write, timeout) plus non-2xx/3xx answers */
  failed: number;
  /** the 99th percentile latency in ms (NaN unless wrk ran with --latency) */
  p99Ms: number;
}

/** wrkResult parses wrk's text report. */
export function wrkResult(out: string): WrkResult {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)$/m.exec(out);
  const unit = { us: 0.001, ms: 1, s: 1000 }[(p99?.[2] ?? 'ms') as 'us' | 'ms' | 's'];
  return { requests, failed: errors + non2xx, p99Ms: Number(p99?.[1] ?? Number.NaN) * unit };
}

/** httpClose runs `wrk -t1 -c4 --latency` from `host` at the cluster address, a new connection per request. */
export async function httpClose(c: Cluster, seconds: number, host = 'c1'): Promise<WrkResult> {
  const r = await c.lab.exec(
    host,
    'wrk',
    ['-t1', '-c4', `-d${seconds}s`, '--latency', '-H', 'Connection: close', `http://${c.vip}/`],
    { timeoutMs: (seconds + 20) * 1000 },
  );
  return wrkResult(r.stdout);
}

/** gatewayRss reads the gateway process's resident memory in KiB. */
export async function gatewayRss(c: Cluster): Promise<number> {
  const r = await c.lab.exec('gw', 'ps', ['-o', 'rss=', '-p', String(c.gateway.pid)]);
  return Number(r.stdout.trim());
}
