/** RpcCount is how many calls of one method ended with one status. */
export interface RpcCount {
  /** "Membership/Join". */
  method: string;
  /** status name: "OK", "INVALID_ARGUMENT", … */
  code: string;
  count: number;
}

/**
 * RpcCounters counts finished calls per method and status (refusals included), for the gateway's
 * metrics. Heartbeat streams count once, when they end.
 */
export class RpcCounters {
  private readonly counts = new Map<string, RpcCount>();

  add(method: string, code: string): void {
    const key = `${method} ${code}`;
    const c = this.counts.get(key);
    if (c === undefined) this.counts.set(key, { method, code, count: 1 });
    else c.count++;
  }

  /** get returns the count for one method and status (0 when none). */
  get(method: string, code: string): number {
    return this.counts.get(`${method} ${code}`)?.count ?? 0;
  }

  /** snapshot returns every count, sorted by method then status. */
  snapshot(): RpcCount[] {
    return [...this.counts.values()]
      .map((c) => ({ ...c }))
      .sort((a, b) => a.method.localeCompare(b.method) || a.code.localeCompare(b.code));
  }
}
