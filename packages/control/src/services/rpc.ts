import { type handleUnaryCall, type ServerUnaryCall, type StatusObject, status } from '@grpc/grpc-js';
import { ControlError } from '../control-error.js';
import type { Logger } from '../logger.js';
import type { RpcCounters } from '../rpc-counters.js';

/** RpcContext is what every handler shares: counters and the service's logger. */
export interface RpcContext {
  counters: RpcCounters;
  log: Logger;
}

/**
 * statusOf turns what a handler threw into the call's status: a ControlError keeps its code and
 * message; anything else is logged and becomes INTERNAL without details.
 */
export function statusOf(
  ctx: RpcContext,
  method: string,
  err: unknown,
): Partial<StatusObject> & { code: status } {
  if (err instanceof ControlError) {
    ctx.log.debug({ method, code: err.codeName, details: err.message }, 'call refused');
    return { code: err.code, details: err.message };
  }
  ctx.log.error({ err, method }, 'call failed');
  return { code: status.INTERNAL, details: 'internal error' };
}

/** countStatus counts a finished call. */
export function countStatus(ctx: RpcContext, method: string, code: status): void {
  ctx.counters.add(method, status[code] ?? String(code));
}

/**
 * unary wraps an async handler: its result answers the call, a throw becomes the call's status
 * (see statusOf); either way the call is counted.
 */
export function unary<Req, Res>(
  ctx: RpcContext,
  method: string,
  fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let result: Promise<Res>;
    try {
      result = Promise.resolve(fn(call.request, call));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (res) => {
        countStatus(ctx, method, status.OK);
        callback(null, res);
      },
      (err: unknown) => {
        const s = statusOf(ctx, method, err);
        countStatus(ctx, method, s.code);
        callback(s);
      },
    );
  };
}
