// A namespace with IPv6 off (so no router solicitations land in TUN batches) for tests.
import { type Lab, type Netns, waitFor } from '@onehost/testkit';

/** quietNetns creates a namespace with IPv6 disabled and rp_filter off. Throws when `ip`/`sysctl` fail. */
export async function quietNetns(lab: Lab): Promise<Netns> {
  const ns = await lab.netns();
  await ns.sysctl('net.ipv6.conf.all.disable_ipv6', 1);
  await ns.sysctl('net.ipv6.conf.default.disable_ipv6', 1);
  await ns.sysctl('net.ipv4.conf.all.rp_filter', 0);
  await ns.sysctl('net.ipv4.conf.default.rp_filter', 0);
  return ns;
}

/** linkExists reports whether `dev` exists in `ns`. */
export async function linkExists(ns: Netns, dev: string): Promise<boolean> {
  return ns.ip('link', 'show', 'dev', dev).then(
    () => true,
    () => false,
  );
}

/** waitForLinkGone waits until `dev` has left `ns`. Throws on timeout. */
export async function waitForLinkGone(ns: Netns, dev: string): Promise<void> {
  await waitFor(async () => !(await linkExists(ns, dev)), { what: `${dev} to disappear`, timeoutMs: 3000 });
}

/**
 * waitForQueued waits until the root qdisc of `dev` has handed at least `count` packets to the TUN
 * driver and holds none back: they now wait in the TUN's ring for a reader. (The TUN counts tx_packets
 * only when the reader takes them.) Throws on timeout.
 */
export async function waitForQueued(ns: Netns, dev: string, count: number): Promise<void> {
  await waitFor(
    async () => {
      const { stdout } = await ns.exec('tc', ['-s', '-j', 'qdisc', 'show', 'dev', dev]);
      const [root] = JSON.parse(stdout) as Array<{ packets: number; qlen: number }>;
      return root !== undefined && root.packets >= count && root.qlen === 0;
    },
    { what: `${count} packets queued on ${dev}`, timeoutMs: 3000 },
  );
}
