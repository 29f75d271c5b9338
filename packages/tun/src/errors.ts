/**
 * Error codes the addon puts on the `code` property of the Errors it throws. Kernel failures also carry
 * `errno` (number) and `errnoName` (e.g. "EBUSY").
 */
export type TunErrorCode =
  /** No /dev/net/tun (tun module not loaded, or not visible in this mount namespace). */
  | 'TUN_NO_DEVICE'
  /** Missing CAP_NET_ADMIN (TUN) or CAP_NET_RAW (sender), or the device file is not accessible. */
  | 'TUN_PERMISSION'
  /** Interface name empty, longer than 15 bytes, "." or "..", or containing '/', ':' or whitespace. */
  | 'TUN_BAD_NAME'
  /** The single queue is held by someone else, or the name belongs to another kind of device. */
  | 'TUN_BUSY'
  /** MTU outside 68..65535 or refused by the kernel. */
  | 'TUN_MTU_RANGE'
  /** Cannot enter the requested network namespace. */
  | 'TUN_NETNS'
  /** Used after close()/release(). */
  | 'TUN_CLOSED'
  /** A single write() the kernel refused (e.g. not IPv4/IPv6). */
  | 'TUN_WRITE'
  /** The sender's socket became unusable. */
  | 'TUN_SEND'
  /** Other ioctl failures while configuring the device. */
  | 'TUN_CONFIG'
  | 'TUN_OPEN_FAILED'
  | 'TUN_BAD_ARGUMENT'
  | 'TUN_INTERNAL';

/** TunError is the shape of errors thrown by this package. */
export interface TunError extends Error {
  code: TunErrorCode;
  errno?: number;
  errnoName?: string;
}

/** isTunError narrows an unknown error to a TunError, optionally with a given code. */
export function isTunError(err: unknown, code?: TunErrorCode): err is TunError {
  if (!(err instanceof Error)) return false;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' && c.startsWith('TUN_') && (code === undefined || c === code);
}

/** readError builds the error handed to a queue's error handler when a read fails for good. */
export function readError(name: string, errno: number): TunError {
  const err = new Error(`TUN queue "${name}" stopped: read failed with errno ${errno}`) as TunError;
  err.code = 'TUN_CLOSED';
  err.errno = errno;
  return err;
}

/** badArgument builds a TUN_BAD_ARGUMENT error for options checked on the JS side. */
export function badArgument(message: string): TunError {
  const err = new Error(message) as TunError;
  err.code = 'TUN_BAD_ARGUMENT';
  return err;
}
