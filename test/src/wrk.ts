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
