import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listening } from '@onehost/lab';
import type { LabProcess } from '@onehost/testkit';
import { waitFor } from '@onehost/testkit';
import type { Cluster } from '../cluster.js';

/** Ports HAProxy listens on, on the gateway host's outside address. */
export const HAPROXY_PORTS = { http: 8081, iperf3: 5202 } as const;

/**
 * haproxyConfig is a plain layer-4 proxy on the gateway host: HTTP round robin over every node's :80,
 * and iperf3 to the first node's :5201 (iperf3's control and data connections must meet one server).
 * Foreground, no logs, no health checks (the onehost switch does none on the data path either).
 */
export function haproxyConfig(listen: string, nodes: readonly string[], listen6?: string): string {
  // IPv6 clients reach the same frontends on the host's outside IPv6 address; the nodes stay IPv4
  const bind = (port: number) =>
    `  bind ${listen}:${port}${listen6 === undefined ? '' : `\n  bind [${listen6}]:${port}`}`;
  const servers = nodes.map((a, i) => `  server n${i + 1} ${a}:80`).join('\n');
  return `# onehost bench: HAProxy mode tcp on the gateway host
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend http
${bind(HAPROXY_PORTS.http)}
  default_backend nodes_http
backend nodes_http
  balance roundrobin
${servers}
frontend iperf3
${bind(HAPROXY_PORTS.iperf3)}
  default_backend n1_iperf3
backend n1_iperf3
  server n1 ${nodes[0]}:5201
`;
}

/**
 * startHaproxy writes the config into the lab's run directory and starts haproxy in the gateway host
 * in the foreground (`-db`, so the pid we hold is HAProxy itself and stopping it by pid ends it), as a
 * child of the lab (the lab's cleanup stops it too). Resolves once both ports listen. Throws (after
 * stopping it) when it does not come up. With `listen6` it listens on that IPv6 address too.
 */
export async function startHaproxy(c: Cluster, listen6?: string): Promise<LabProcess> {
  const conf = join(c.lab.runDir, 'bench-haproxy.cfg');
  await writeFile(conf, haproxyConfig(c.lab.addresses.gateway.outside, c.lab.addresses.nodes, listen6));
  await c.lab.exec('gw', 'haproxy', ['-c', '-q', '-f', conf]);
  const proc = c.lab.spawn('gw', 'haproxy', ['-db', '-f', conf]);
  try {
    const netns = c.lab.names.gateway;
    await waitFor(
      async () => {
        if (!proc.running) throw new Error(`haproxy exited: ${proc.output().slice(-2000)}`);
        return (await listening(netns, HAPROXY_PORTS.http)) && (await listening(netns, HAPROXY_PORTS.iperf3));
      },
      { timeoutMs: 10_000, what: 'haproxy listening' },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}
