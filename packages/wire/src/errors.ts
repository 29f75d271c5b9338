/**
 * Parse outcomes. Views report failures as small integer codes so that the packet loop can count them
 * without allocating; `errorInfo(code)` turns a code into its kind and name for logs and metrics.
 *
 * - `truncated`: the buffer ends before a header or a length field says it should (more bytes might
 *   make it valid; a TCP stream reader would wait).
 * - `malformed`: the bytes that are there contradict the format (never valid, whatever follows).
 */
export type ErrorKind = 'truncated' | 'malformed';

export interface WireErrorInfo {
  readonly code: number;
  readonly kind: ErrorKind;
  /** snake_case, stable: used as a metric label. */
  readonly name: string;
}

/** OK is the one success code every `bind`/`check` returns. */
export const OK = 0;

const registry = new Map<number, WireErrorInfo>();

/** defineError registers a code once at module load; throws on a clash (a programming error). */
export function defineError(code: number, kind: ErrorKind, name: string): number {
  const had = registry.get(code);
  if (had !== undefined) throw new Error(`wire error code ${code} defined twice (${had.name}, ${name})`);
  registry.set(code, { code, kind, name });
  return code;
}

/** errorInfo returns the registered description of a code, or undefined for OK and unknown codes. */
export function errorInfo(code: number): WireErrorInfo | undefined {
  return registry.get(code);
}

/** allErrors lists every registered code (for metrics that pre-create one counter per reason). */
export function allErrors(): WireErrorInfo[] {
  return [...registry.values()].sort((a, b) => a.code - b.code);
}

/** Checked is what the allocating `parse` helpers return; the packet loop uses `bind` instead. */
export type Checked<T> = { ok: true; value: T } | { ok: false; error: WireErrorInfo };

/** checked wraps a bind result into a Checked (off the hot path only: it allocates). */
export function checked<T>(code: number, value: T): Checked<T> {
  if (code === OK) return { ok: true, value };
  const error = registry.get(code) ?? { code, kind: 'malformed' as const, name: `unknown_${code}` };
  return { ok: false, error };
}
