import type { ExportsRegistry } from './exports-registry.js';
import type { Membership } from './membership.js';
import type { ControlStore, StoreEvent } from './store/control-store.js';

/**
 * followStore applies the changes other gateways make to a shared store to this gateway's
 * membership and exports, as if made here: their listeners (the switch table, WatchMembers) see
 * them. Resolves once the store watches; does nothing for a store with one writer.
 */
export async function followStore(
  store: ControlStore,
  membership: Membership,
  exports: ExportsRegistry,
): Promise<void> {
  if (store.watch === undefined) return;
  await store.watch((e: StoreEvent) => {
    switch (e.kind) {
      case 'member':
        membership.applyStored(e.name, e.record);
        break;
      case 'exports':
        exports.applyStored(e.nodeName, e.record);
        break;
      case 'reload':
        membership.applyStoredAll(e.contents.members);
        exports.applyStoredAll(e.contents.exports);
        break;
    }
  });
}
