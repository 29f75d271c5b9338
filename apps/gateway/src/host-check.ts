import { existsSync } from 'node:fs';
import type { GatewayConfig } from './config.js';

/** interfaceExists asks the kernel (sysfs) whether a network interface of that name exists here. */
export function interfaceExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/**
 * hostProblems lists what the configuration names that this host lacks: the interfaces the gateway
 * uses but does not create (outside and interconnect) and the etcd store's TLS files, each as "field: problem" like the config's
 * own errors. The file alone cannot show these, so `--check` asks the host too.
 */
export function hostProblems(
  cfg: GatewayConfig,
  exists: (name: string) => boolean = interfaceExists,
): string[] {
  const problems: string[] = [];
  cfg.outside.interfaces.forEach((name, i) => {
    if (!exists(name)) problems.push(`outside.interfaces.${i}: no interface "${name}" on this host`);
  });
  if (!exists(cfg.interconnect.interface))
    problems.push(`interconnect.interface: no interface "${cfg.interconnect.interface}" on this host`);
  const store = cfg.control.store;
  // the start would fail reading them; etcd itself is not asked (it may not be up yet)
  if (store.kind === 'etcd')
    for (const k of ['ca', 'cert', 'key'] as const)
      if (!existsSync(store.tls[k])) problems.push(`control.store.etcd.tls.${k}: no file ${store.tls[k]}`);
  return problems;
}
