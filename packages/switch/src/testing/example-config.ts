import { formatIssue } from '../config/fields.js';
import { parseConfigText } from '../config/load.js';
import type { SwitchConfig } from '../config/types.js';

/**
 * EXAMPLE_YAML is a small table used by tests and the benchmark: gateway gw, nodes n1-n3, the built-in
 * functions on their usual ports. (examples/cluster.yaml is the documented one.)
 */
export const EXAMPLE_YAML = `
gateway: gw
clusterAddresses:
  - { network: outside, address: 203.0.113.10, default: true }
  - { network: second, address: 203.0.113.11 }
nodes:
  - { id: 1, name: gw, address: 198.18.0.1 }
  - { id: 2, name: n1, address: 198.18.0.11, mountd: { udp: 20048, tcp: 20048 } }
  - { id: 3, name: n2, address: 198.18.0.12, mountd: { udp: 8081, tcp: 8082 } }
  - { id: 4, name: n3, address: 198.18.0.13 }
management:
  allow: [203.0.113.200/32]
portBlocks:
  - { node: n1, from: 40000, to: 40999 }
  - { node: n2, from: 41000, to: 41999 }
  - { node: gw, from: 49000, to: 49999 }
exports:
  - { path: /srv/projects, node: n1, exportId: 1 }
  - { path: /srv/home, node: n2, exportId: 2 }
  - { path: /srv/home/shared, node: n3, exportId: 3 }
entries:
  - { protocol: tcp, port: 80, function: connection, policy: round-robin, nodes: [n1, n2, n3], maxEntries: 1024 }
  - { protocol: tcp, port: 443, function: connection, policy: maglev, rederive: true, nodes: [n1, n2, n3], maxEntries: 1024 }
  - { protocol: tcp, port: 8080, function: connection, policy: least-conn, nodes: [n1, n2, n3], maxEntries: 1024 }
  - { protocol: tcp, port: 22, function: fixed, node: n1, backup: n2 }
  - { protocol: tcp, port: 25, function: fixed, node: gw }
  - { protocol: udp, port: 53, function: udp-flow, idleTimeout: 30, nodes: [n1, n2, n3], maxEntries: 1024 }
  - { protocol: udp, port: 111, function: portmap }
  - { protocol: udp, port: 20048, function: mount }
  - { protocol: tcp, port: 20048, function: mount, maxEntries: 1024 }
  - { protocol: udp, port: 2049, function: nfs }
  - { protocol: tcp, port: 2049, function: nfs, maxEntries: 1024 }
  - { protocol: udp, port: 7000, function: port-block }
fragments: { maxEntries: 64, timeout: 30 }
`;

/** configFrom parses YAML text into a config; throws Error listing the issues when it is invalid. */
export function configFrom(text: string): SwitchConfig {
  const r = parseConfigText(text);
  if (!r.ok) throw new Error(r.issues.map((i) => formatIssue(i)).join('\n'));
  return r.config;
}
