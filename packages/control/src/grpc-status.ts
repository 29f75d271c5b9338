import { status } from '@grpc/grpc-js';
import type { StatusName } from './control-error.js';

/** nameOf names a gRPC status code ("UNAVAILABLE"), undefined for a number that is no status. */
function nameOf(code: number): StatusName | undefined {
  return status[code] as StatusName | undefined;
}

/** statusName names a gRPC status code ("UNAVAILABLE"); "UNKNOWN" for anything else. */
export function statusName(code: unknown): StatusName {
  return typeof code === 'number' ? (nameOf(code) ?? 'UNKNOWN') : 'UNKNOWN';
}

/** isServiceError is true for what a grpc-js call rejects with (a numeric code and the details). */
export function isServiceError(err: unknown): err is { code: number; details: string } {
  const e = err as { code?: unknown; details?: unknown } | null;
  return e !== null && typeof e === 'object' && typeof e.code === 'number' && typeof e.details === 'string';
}

/**
 * describeServiceError renders a call's failure as "UNAVAILABLE: details"; a code gRPC does not define
 * shows as its number ("status 99: details").
 */
export function describeServiceError(err: { code: number; details: string }): string {
  return `${nameOf(err.code) ?? `status ${err.code}`}: ${err.details}`;
}

/** describeError renders a grpc ServiceError as "CODE: details", any other error by its message. */
export function describeError(err: unknown): string {
  if (isServiceError(err)) return `${statusName(err.code)}: ${err.details}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Refusals no retry can fix: the gateway has judged the request itself (the certificate, a field, a
 * conflict with another node, no free port block). Anything else (unreachable, timed out, restarting)
 * is worth another try.
 */
const FINAL = new Set<StatusName>([
  'INVALID_ARGUMENT',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'UNAUTHENTICATED',
  'RESOURCE_EXHAUSTED',
  'UNIMPLEMENTED',
  'OUT_OF_RANGE',
  'NOT_FOUND',
]);

/** isFinalRefusal is true for an error whose status says that retrying the same call is useless. */
export function isFinalRefusal(err: unknown): boolean {
  return FINAL.has(statusName((err as { code?: unknown } | null)?.code));
}
