import { status } from '@grpc/grpc-js';

/** StatusName is a gRPC status code by name, e.g. 'INVALID_ARGUMENT'. */
export type StatusName = Exclude<keyof typeof status, number>;

/**
 * ControlError is a refusal with a precise gRPC status: the services turn it into the call's status,
 * so its message is what the caller reads ("internal_address: not an IPv4 address"). Domain code and
 * switch backends throw it; any other error becomes INTERNAL.
 */
export class ControlError extends Error {
  readonly code: status;

  constructor(code: StatusName, message: string) {
    super(message);
    this.name = 'ControlError';
    this.code = status[code];
  }

  /** codeName is the status as a name, for logs and counters. */
  get codeName(): StatusName {
    return status[this.code] as StatusName;
  }
}

/** invalidArgument is the INVALID_ARGUMENT refusal for one request field: "<field>: <problem>". */
export function invalidArgument(field: string, problem: string): ControlError {
  return new ControlError('INVALID_ARGUMENT', `${field}: ${problem}`);
}
