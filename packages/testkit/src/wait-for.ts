/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds (default 5000). */
  timeoutMs?: number;
  /** Poll this often (default 20 ms). */
  intervalMs?: number;
  /** What is being waited for; named in the timeout error. */
  what: string;
}

/**
 * waitFor polls `condition` until it returns a truthy value (or a promise of one) and resolves with
 * that value. Throws, once the deadline has passed, an Error naming `what` and the last value seen
 * or the last error the condition threw.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions,
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    try {
      last = await condition();
      lastError = undefined;
      if (last) return last as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))),
    );
  }
  const detail =
    lastError !== undefined
      ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
      : `last value: ${String(last)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what} (${detail})`, {
    cause: lastError,
  });
}
