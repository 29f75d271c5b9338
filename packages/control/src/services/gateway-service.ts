import type { GatewayServer } from '@onehost/proto';
import { requireRole } from '../auth/peer.js';
import { ControlError } from '../control-error.js';
import type { GatewayBackend } from '../switch-backend.js';
import { type RpcContext, unary } from './rpc.js';

const READERS = ['operator', 'gateway'] as const;
const WRITERS = ['operator'] as const;
/** a gateway file with thousands of entries stays far below this */
const MAX_CONFIG_BYTES = 1 << 20;

/**
 * gatewayService implements onehost.v1.Gateway: the data path's status for operators and gateways, and
 * Stop and Reload for operators (Stop's answer goes out before the process ends). UNIMPLEMENTED without a backend.
 */
export function gatewayService(ctx: RpcContext, backend: GatewayBackend | undefined): GatewayServer {
  const need = (): GatewayBackend => {
    if (backend === undefined) throw new ControlError('UNIMPLEMENTED', 'this server has no gateway attached');
    return backend;
  };
  return {
    status: unary(ctx, 'Gateway/Status', async (_req, call) => {
      requireRole(call, READERS);
      return need().status();
    }),
    stop: unary(ctx, 'Gateway/Stop', async (req, call) => {
      requireRole(call, WRITERS);
      const b = need();
      // after the reply is on its way: stopping closes this very server
      setImmediate(() => b.stop(req.keepDatapath));
      return {};
    }),
    reload: unary(ctx, 'Gateway/Reload', async (req, call) => {
      requireRole(call, WRITERS);
      if (req.configYaml.length > MAX_CONFIG_BYTES)
        throw new ControlError('INVALID_ARGUMENT', `config_yaml: longer than ${MAX_CONFIG_BYTES} bytes`);
      return need().reload(req.configYaml, req.dryRun);
    }),
  };
}
