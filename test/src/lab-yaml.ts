// Edits of the lab's gateway.yaml that several suites make.

/** withVip6 adds the IPv6 cluster address `vip6` on the outside network, after the IPv4 one. */
export function withVip6(yaml: string, vip6: string): string {
  const v4 = /^( {2}- \{ network: outside, address: 203\.0\.113\.80, default: true \}\n)/m;
  if (!v4.test(yaml)) throw new Error('the lab gateway.yaml has no outside cluster address 203.0.113.80');
  return yaml.replace(v4, `$1  - { network: outside, address: "${vip6}" }\n`);
}

/** withEntries puts switch-table entries (one YAML flow mapping each) first in `entries:`. */
export function withEntries(yaml: string, entries: readonly string[]): string {
  return yaml.replace(/^entries:\n/m, `entries:\n${entries.map((e) => `  - ${e}\n`).join('')}`);
}
