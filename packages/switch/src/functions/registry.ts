import { FUNCTION_SLOT_BASE } from '../counters.js';
import { connectionSpec } from './connection.js';
import { fixedSpec } from './fixed.js';
import { mountSpec } from './mount.js';
import { nfsSpec } from './nfs.js';
import { portBlockSpec } from './port-block.js';
import { portmapSpec } from './portmap.js';
import type { RoutingFunctionSpec } from './types.js';
import { udpFlowSpec } from './udp-flow.js';

/**
 * FunctionRegistry maps a kind name (the config's `function:`) to its spec. `defaultRegistry()` holds
 * the built-in kinds; a caller may register more before loading a config.
 */
export class FunctionRegistry {
  private readonly specs = new Map<string, RoutingFunctionSpec<unknown>>();

  /** register adds a kind; throws Error when the kind is already registered. */
  register<C>(spec: RoutingFunctionSpec<C>): this {
    if (this.specs.has(spec.kind)) throw new Error(`routing function ${spec.kind} registered twice`);
    if (this.specs.size >= FUNCTION_SLOT_BASE)
      throw new Error(`at most ${FUNCTION_SLOT_BASE} routing functions (per-function counters)`);
    this.specs.set(spec.kind, spec as RoutingFunctionSpec<unknown>);
    return this;
  }

  get(kind: string): RoutingFunctionSpec<unknown> | undefined {
    return this.specs.get(kind);
  }

  kinds(): string[] {
    return [...this.specs.keys()];
  }

  /** indexOf is a kind's position in registration order (-1 when unknown). */
  indexOf(kind: string): number {
    return this.kinds().indexOf(kind);
  }
}

/** defaultRegistry returns a registry with fixed, connection, udp-flow, port-block, mount, nfs, portmap. */
export function defaultRegistry(): FunctionRegistry {
  return new FunctionRegistry()
    .register(fixedSpec)
    .register(connectionSpec)
    .register(udpFlowSpec)
    .register(portBlockSpec)
    .register(mountSpec)
    .register(nfsSpec)
    .register(portmapSpec);
}
