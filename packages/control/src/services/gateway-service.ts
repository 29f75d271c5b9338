import type { GatewayServer } from '@onehost/proto';
import { requireRole } from '../auth/peer.js';
import { ControlError } from '../control-error.js';
import type { GatewayRegistry } from '../gateway-registry.js';
import type { GatewayBackend } from '../switch-backend.js';
import { type RpcContext, unary } from './rpc.js';

const READERS = ['operator', 'gateway'] as const;
const WRITERS = ['operator'] as const;
/** a gateway's name as certificates and the store take it */
const GATEWAY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** a gateway file with thousands of entries stays far below this */
const MAX_CONFIG_BYTES = 1 << 20;

/**
 * gatewayService implements onehost.v1.Gateway: the data path's status for operators and gateways, and
 * Stop and Reload for operators (Stop's answer goes out before the process ends), the gateway registry
 * (ListGateways for both, DrainGateway for operators). UNIMPLEMENTED without a backend or registry.
 */
export function gatewayService(
  ctx: RpcContext,
  backend: GatewayBackend | undefined,
  registry?: GatewayRegistry,
): GatewayServer {
  const need = (): GatewayBackend => {
    if (backend === undefined) throw new ControlError('UNIMPLEMENTED', 'this server has no gateway attached');
    return backend;
  };
  const reg = (): GatewayRegistry => {
    if (registry === undefined)
      throw new ControlError('UNIMPLEMENTED', 'this server has no gateway registry');
    return registry;
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
    listGateways: unary(ctx, 'Gateway/ListGateways', async (_req, call) => {
      requireRole(call, READERS);
      let list: Awaited<ReturnType<GatewayRegistry['list']>>;
      try {
        list = await reg().list();
      } catch (err) {
        if (err instanceof ControlError) throw err;
        throw new ControlError('UNAVAILABLE', `gateway registry: ${(err as Error).message}`);
      }
      return {
        gateways: list.gateways.map((g) => ({
          name: g.name,
          controlAddress: g.address,
          datapath: g.datapath,
          announcement: g.announcement,
          health: g.health,
          appliedRevision: g.appliedRevision,
          switchVersion: g.switchVersion,
          startedUnixMs: g.startedUnixMs,
          updatedUnixMs: g.updatedUnixMs,
          stale: g.stale,
          drained: g.drained,
        })),
        storeRevision: list.storeRevision,
      };
    }),
    drainGateway: unary(ctx, 'Gateway/DrainGateway', async (req, call) => {
      requireRole(call, WRITERS);
      if (!GATEWAY_NAME.test(req.name))
        throw new ControlError(
          'INVALID_ARGUMENT',
          `name: ${JSON.stringify(req.name)} is not a gateway name (letters, digits, . _ -; up to 63)`,
        );
      try {
        await reg().setDrained(req.name, req.drained);
      } catch (err) {
        if (err instanceof ControlError) throw err;
        throw new ControlError('UNAVAILABLE', `gateway registry: ${(err as Error).message}`);
      }
      return {};
    }),
  };
}
