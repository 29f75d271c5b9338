import { type Clock, systemClock } from './clock.js';
import { ControlError } from './control-error.js';
import { type Logger, silentLogger } from './logger.js';
import type { Membership } from './membership.js';
import type { ControlStore } from './store/control-store.js';
import type { ExportsRecord, StoreContents } from './store/records.js';

/** ExportsInput is a validated RegisterMount: one node's whole registration. */
export type ExportsInput = Omit<ExportsRecord, 'registeredUnixMs'>;

/** ExportsChange is one event of `ExportsRegistry.onChange`. */
export type ExportsChange =
  | { kind: 'registered'; registration: ExportsRecord }
  | { kind: 'removed'; nodeName: string };

export type ExportsListener = (change: ExportsChange) => void;

export interface ExportsRegistryOptions {
  store: ControlStore;
  contents: StoreContents;
  membership: Membership;
  clock?: Clock;
  logger?: Logger;
}

/**
 * ExportsRegistry holds each node's MOUNT registration (mountd ports, exports with their ids, handle
 * layout): the source of the gateway's Cluster Export Table and Mount Port Table. No two nodes share
 * an export path or an export id. A node that leaves or is forgotten loses its registration.
 */
export class ExportsRegistry {
  private readonly store: ControlStore;
  private readonly membership: Membership;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly records = new Map<string, ExportsRecord>();
  private readonly listeners = new Set<ExportsListener>();
  /**
   * conflicts counts registrations refused because another node claims one of the paths or export ids
   * (by field), for the gateway's metrics.
   */
  readonly conflicts = { path: 0, exportId: 0 };

  constructor(opts: ExportsRegistryOptions) {
    this.store = opts.store;
    this.membership = opts.membership;
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'exports' });
    for (const r of opts.contents.exports)
      if (this.membership.member(r.nodeName) !== undefined) this.records.set(r.nodeName, structuredClone(r));
    this.membership.onChange((c) => {
      // another gateway deletes the registration of a node that left through it
      if (c.kind === 'left' || c.kind === 'forgotten') this.remove(c.member.name, c.remote !== true);
    });
  }

  /** list returns a copy of every registration, by node name. */
  list(): ExportsRecord[] {
    return [...this.records.values()]
      .sort((a, b) => (a.nodeName < b.nodeName ? -1 : 1))
      .map((r) => structuredClone(r));
  }

  /** get returns a copy of the node's registration, or undefined. */
  get(nodeName: string): ExportsRecord | undefined {
    const r = this.records.get(nodeName);
    return r === undefined ? undefined : structuredClone(r);
  }

  /** onChange calls `listener` after every change; returns the function that unsubscribes it. */
  onChange(listener: ExportsListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * register replaces the node's registration. Resolves once durable. Throws ControlError:
   * FAILED_PRECONDITION when the node has not joined or is down, ALREADY_EXISTS when another node
   * claims one of the paths or export ids (the message names the field and the other node),
   * UNAVAILABLE when the store failed.
   */
  async register(input: ExportsInput): Promise<ExportsRecord> {
    const member = this.membership.member(input.nodeName);
    if (member === undefined)
      throw new ControlError('FAILED_PRECONDITION', `node_name: ${input.nodeName} has not joined`);
    if (member.state === 'down')
      throw new ControlError(
        'FAILED_PRECONDITION',
        `${input.nodeName} is down (${member.downReason}): join first`,
      );
    for (const other of this.records.values()) {
      if (other.nodeName === input.nodeName) continue;
      input.exports.forEach((e, i) => {
        const samePath = other.exports.find((o) => o.path === e.path);
        if (samePath !== undefined) {
          this.conflicts.path++;
          throw new ControlError(
            'ALREADY_EXISTS',
            `exports[${i}].path: ${e.path} is already exported by ${other.nodeName}`,
          );
        }
        const sameId = other.exports.find((o) => o.exportId === e.exportId);
        if (sameId !== undefined) {
          this.conflicts.exportId++;
          throw new ControlError(
            'ALREADY_EXISTS',
            `exports[${i}].export_id: ${e.exportId} is already used by ${other.nodeName} (for ${sameId.path})`,
          );
        }
      });
    }
    const rec: ExportsRecord = { ...structuredClone(input), registeredUnixMs: this.clock.now() };
    this.records.set(rec.nodeName, rec);
    this.log.info(
      { node: rec.nodeName, exports: rec.exports.length, mountPorts: rec.mountPorts },
      'mount registration',
    );
    this.emit({ kind: 'registered', registration: structuredClone(rec) });
    try {
      await this.store.putExports(rec);
    } catch (err) {
      this.log.error({ err, node: rec.nodeName }, 'store write failed');
      throw new ControlError('UNAVAILABLE', `store: ${(err as Error).message}`);
    }
    return structuredClone(rec);
  }

  /** applyStored takes another gateway's change to a node's registration (null: removed). */
  applyStored(nodeName: string, stored: ExportsRecord | null): void {
    if (stored === null) {
      this.remove(nodeName, false);
      return;
    }
    const prev = this.records.get(nodeName);
    if (prev !== undefined && JSON.stringify(prev) === JSON.stringify(stored)) return;
    this.records.set(nodeName, structuredClone(stored));
    this.log.info({ node: nodeName, exports: stored.exports.length }, 'mount registration (another gateway)');
    this.emit({ kind: 'registered', registration: structuredClone(stored) });
  }

  /** applyStoredAll makes the registrations what a shared store holds. */
  applyStoredAll(all: readonly ExportsRecord[]): void {
    const names = new Set(all.map((r) => r.nodeName));
    for (const name of [...this.records.keys()]) if (!names.has(name)) this.remove(name, false);
    for (const r of all) this.applyStored(r.nodeName, r);
  }

  private remove(nodeName: string, write = true): void {
    if (!this.records.delete(nodeName)) return;
    this.log.info({ node: nodeName }, 'mount registration removed');
    this.emit({ kind: 'removed', nodeName });
    if (!write) return;
    this.store.deleteExports(nodeName).catch((err: unknown) => {
      this.log.error({ err, node: nodeName }, 'store write failed');
    });
  }

  private emit(change: ExportsChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.log.error({ err }, 'exports listener failed');
      }
    }
  }
}
