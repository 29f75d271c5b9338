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
];

/** isServiceError is true for what a grpc-js call rejects with (a numeric code and the details). */
export function isServiceError(err: unknown): err is { code: number; details: string } {
  const e = err as { code?: unknown; details?: unknown } | null;
  return e !== null && typeof e === 'object' && typeof e.code === 'number' && typeof e.details === 'string';
}

/** describeServiceError renders a call's failure as "UNAVAILABLE: details". */
export function describeServiceError(err: { code: number; details: string }): string {
  return `${NAMES[err.code] ?? `status ${err.code}`}: ${err.details}`;
}
