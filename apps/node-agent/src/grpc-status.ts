// gRPC status codes (grpc/doc/statuscodes.md), by name, without importing grpc-js here.
const NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export type StatusName = (typeof NAMES)[number];

/** statusName names a gRPC status code ("UNAVAILABLE"); "UNKNOWN" for anything else. */
export function statusName(code: unknown): StatusName {
  return typeof code === 'number' ? (NAMES[code] ?? 'UNKNOWN') : 'UNKNOWN';
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

/** describeError renders a grpc ServiceError as "CODE: details", any other error by its message. */
export function describeError(err: unknown): string {
  const e = err as { code?: unknown; details?: unknown; message?: unknown } | null;
  if (e && typeof e.code === 'number' && typeof e.details === 'string')
    return `${statusName(e.code)}: ${e.details}`;
  return err instanceof Error ? err.message : String(err);
}
