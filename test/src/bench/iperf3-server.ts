import { listening } from '@onehost/lab';
import type { LabProcess } from '@onehost/testkit';
import { waitFor } from '@onehost/testkit';
import type { Cluster } from '../cluster.js';

/** Port of the benchmark's own iperf3 server on n1, bound to n1's internal address. */
export const BOUND_IPERF3_PORT = 5301;
/** Port of its IPv6 twin, bound to n1's IPv6 address (route6.ts); a port of its own, so its wait is its own. */
export const BOUND_IPERF3_PORT6 = 5302;

/**
 * startBoundIperf3 starts an iperf3 server on n1 bound to n1's own address (`-B`), in the foreground, as
 * a child of the lab, for the kernel-route path. The lab's servers listen on the wildcard address, and a
 * node in the cluster makes the cluster address the source towards the outside: iperf3's UDP socket
 * (connected after the first datagram) would answer a client that wrote to n1's own address from the
 * cluster address, and the client's connected socket would never hear it. Bound, replies leave from
 * n1's address. Resolves once it listens; throws (after stopping it) when it does not. `address` and
 * `port` default to n1's IPv4 address and BOUND_IPERF3_PORT.
 */
export async function startBoundIperf3(
  c: Cluster,
  address = c.lab.addresses.nodes[0]!,
  port = BOUND_IPERF3_PORT,
): Promise<LabProcess> {
  const proc = c.lab.spawn('n1', 'iperf3', ['-s', '-B', address, '-p', String(port)]);
  try {
    await waitFor(
      async () => {
        if (!proc.running) throw new Error(`iperf3 exited: ${proc.output().slice(-2000)}`);
        return listening(c.lab.names.nodes[0]!, port);
      },
      { timeoutMs: 10_000, what: `iperf3 on n1 listening on ${port}` },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}
