// The two-gateway demo (`./scripts/demo gateways`): the lab with a router (FRR: ECMP over the 5-tuple,
// eBGP + BFD) in front of two gateway hosts that share an etcd store (gateways.ts), two nodes, and each
// gateway announcing the cluster address itself. It shows the router's next hops, `onehostctl gateways`,
// connections spread over both gateways, a drain of one (withdrawn at the router, nothing fails) and its
// end; then it stops everything it started. Kernel data path; run as root after a build.
import { waitFor } from '@onehost/testkit';
import type { Cluster } from './cluster.js';
import {
  ctlAt,
  curls,
  type Ecmp,
  type EcmpCluster,
  GATEWAYS,
  startEcmpCluster,
  stopEcmpCluster,
  waitNextHops,
} from './gateways.js';

const [G1, G2] = [GATEWAYS[0]!, GATEWAYS[1]!];
const BOTH = [G1.outside, G2.outside];
const started: EcmpCluster = {};
const say = (s: string) => console.log(s);
const stop = () => stopEcmpCluster(started);
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void stop().finally(() => process.exit(130));
  });

/** spread sends n connections from c1 and says how many packets each gateway took meanwhile. */
async function spread(ecmp: Ecmp, cl: Cluster, n: number): Promise<string> {
  const before = [await ecmp.rxPackets(0), await ecmp.rxPackets(1)];
  const r = await curls(cl, 'c1', n);
  const after = [await ecmp.rxPackets(0), await ecmp.rxPackets(1)];
  return `${r.ok} ok, ${r.failed} failed; packets in (BFD included): gw ${after[0]! - before[0]!}, gw2 ${after[1]! - before[1]!}`;
}

try {
  say('starting: lab, router (FRR), etcd (3 members), two gateways with BGP announce, two node agents …');
  const { cluster: cl, ecmp } = await startEcmpCluster(started, { nodes: 2 });
  await waitNextHops(ecmp, BOTH, 30_000);
  say(`\n$ ip route show ${cl.vip} (in the router)\n  next hops: ${(await ecmp.nextHops()).join(', ')}`);
  say(`\n$ onehostctl gateways\n${await ctlAt(cl, G1.inside, ['gateways'])}`);
  say(
    `$ onehostctl members (asked of gw2: it knows the nodes from etcd)\n${await ctlAt(cl, G2.inside, ['members'])}`,
  );
  say(`40 connections from c1 to http://${cl.vip}/: ${await spread(ecmp, cl, 40)}`);
  say('\n$ onehostctl gateway drain gw2   (asked of gw)');
  await ctlAt(cl, G1.inside, ['gateway', 'drain', 'gw2']);
  const t0 = Date.now();
  await waitNextHops(ecmp, [G1.outside], 10_000, 5);
  say(`  the router's next hops: ${(await ecmp.nextHops()).join(', ')} (${Date.now() - t0} ms)`);
  say(`40 connections: ${await spread(ecmp, cl, 40)}`);
  say('\n$ onehostctl gateway undrain gw2');
  await ctlAt(cl, G1.inside, ['gateway', 'undrain', 'gw2']);
  await waitNextHops(ecmp, BOTH, 30_000);
  await waitFor(async () => (await ctlAt(cl, G1.inside, ['gateways'])).includes('announced'), {
    what: 'gw2 announced again',
    timeoutMs: 10_000,
  });
  say(`  the router's next hops: ${(await ecmp.nextHops()).join(', ')}`);
  say(`40 connections: ${await spread(ecmp, cl, 40)}`);
  say('\nstopping everything the demo started …');
  await stop();
} catch (err) {
  console.error(`demo gateways: ${(err as Error).message}`);
  await stop();
  process.exitCode = 1;
}
