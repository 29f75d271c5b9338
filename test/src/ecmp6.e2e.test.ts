import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_NFS } from '@onehost/lab';
import { run, waitFor } from '@onehost/testkit';
import { ipv4LinkLocal, parseIpv4 } from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATAPATH } from './cluster.js';
import { type Download, nfsStream } from './downloads.js';
import {
  ctlAt,
  curls,
  defaultRouteHops,
  type EcmpCluster,
  GATEWAYS,
  KeepAlives,
  runsOwnTable,
  startEcmpCluster,
  stopEcmpCluster,
  waitNextHops,
} from './gateways.js';
import { withVip6 } from './lab-yaml.js';

// Issue 16 with several gateways: the IPv6 cluster address announced by both gateways over the same
// BGP sessions (RFC 4760), routed by the router (FRR, ECMP on the 5-tuple) to either gateway host by
// its IPv6 address on their link; the nodes' IPv6 replies go back over every gateway (their derived
// link-locals). Kernel data path only, as ecmp-gateways. NFS over TCP too: the agents tell every
// gateway their IPv6 spliced flows (docs/splice.md), so gw1 shifts those gw2 handed over.

const VIP6 = '2001:db8:113::80';
/** each NFS stream's file, read at 4 MB/s (nfsStream): 4 s, across gw2's kill */
const STREAM_BYTES = 16 * 1024 * 1024;
const MAX_STREAMS = 16;
const [G1, G2] = [GATEWAYS[0]!, GATEWAYS[1]!];
const BOTH6 = [G1.outside6, G2.outside6];
const URL6 = `http://[${VIP6}]/`;
const started: EcmpCluster = {};

/** the link-local the nodes reach gateway `inside` by */
const linkLocal = (inside: string) => ipv4LinkLocal(parseIpv4(inside));

describe.skipIf(DATAPATH !== 'kernel')(
  'the IPv6 cluster address through two gateways behind a router',
  () => {
    beforeAll(async () => {
      const { ecmp } = await startEcmpCluster(started, {
        nodes: 2,
        ipv6: true,
        nfs: DEFAULT_NFS,
        agentArgs: (name, l) => ['--ganesha-config', l.nfsOf(name).config, '--mount-check-ms', '200'],
        gatewayYaml: (y) => withVip6(y, VIP6),
      });
      await waitNextHops(ecmp, BOTH6, 15_000, 50);
    }, 120_000);

    afterAll(async () => {
      await stopEcmpCluster(started);
    });

    it('the router takes it from both gateways and spreads IPv6 connections over them; every request answered', async () => {
      const { cluster: cl, ecmp } = started as Required<EcmpCluster>;
      expect(await ecmp.nextHops(true)).toEqual([...BOTH6].sort());
      expect(await cl.curl('c1', URL6)).toMatch(/^n[12]\n$/);
      const before = [await ecmp.rxPackets(0), await ecmp.rxPackets(1)];
      const r = await curls(cl, 'c1', 40, URL6);
      const got = [(await ecmp.rxPackets(0)) - before[0]!, (await ecmp.rxPackets(1)) - before[1]!];
      console.log(
        `40 IPv6 connections: ${r.ok} ok, ${r.failed} failed; packets in at gw ${got[0]}, gw2 ${got[1]}`,
      );
      expect(r).toEqual({ ok: 40, failed: 0 });
      // each gateway carries a real share (the router hashes IPv6 flows too)
      expect(Math.min(...got)).toBeGreaterThan((got[0]! + got[1]!) * 0.15);
    });

    it('gw2 drained: its IPv6 route leaves the router too, and gw1 answers every request; undrained, back', async () => {
      const { cluster: cl, ecmp } = started as Required<EcmpCluster>;
      await ctlAt(cl, G1.inside, ['gateway', 'drain', G2.name]);
      await waitNextHops(ecmp, [G1.outside6], 10_000, 50);
      // IPv4 is withdrawn by the same drain
      expect(await ecmp.nextHops()).toEqual([G1.outside]);
      expect(await curls(cl, 'c1', 10, URL6)).toEqual({ ok: 10, failed: 0 });
      await ctlAt(cl, G2.inside, ['gateway', 'undrain', G2.name]);
      await waitNextHops(ecmp, BOTH6, 10_000, 50);
    });

    it('gw2 killed (SIGKILL): IPv6 keep-alive connections the router moves to gw1 keep their node (round robin, shared through conntrackd); the nodes’ IPv6 default routes leave gw2', {
      timeout: 60_000,
    }, async () => {
      const { cluster: cl, ecmp } = started as Required<EcmpCluster>;
      await waitFor(() => runsOwnTable(cl, G2.inside), {
        what: 'gw2 running its own table',
        timeoutMs: 15_000,
      });
      const ka = new KeepAlives(cl.lab.host('c1').netns, VIP6);
      try {
        const N = 16;
        expect(await ka.open(N, 80)).toEqual({ opened: N, failed: 0 });
        const before = await ka.check(N);
        expect(before['80']).toMatchObject({ same: N, failed: 0 });
        // the router's own hash: how many of them it sends through gw2 (a few, or this proves nothing)
        const { stdout } = await cl.lab.exec('c1', 'ss', [
          '-Htn',
          'state',
          'established',
          `dst [${VIP6}]:80`,
        ]);
        const ports = [...stdout.matchAll(/\]:(\d+)\s+\[/g)].map((m) => m[1]!);
        expect(ports).toHaveLength(N);
        let viaGw2 = 0;
        for (const sport of ports) {
          const r = await run('ip', [
            ...['-n', ecmp.router, '-6', 'route', 'get', VIP6, 'from', cl.lab.addresses.ipv6.clients[0]!],
            ...['iif', 'eth0', 'ipproto', 'tcp', 'sport', sport, 'dport', '80'],
          ]);
          if (r.stdout.includes(`dev ${G2.name}-o`)) viaGw2++;
        }
        console.log(`IPv6 keep-alives through gw2 before its kill: ${viaGw2} of ${N}`);
        expect(viaGw2).toBeGreaterThanOrEqual(2);
        for (const n of ['n1', 'n2'])
          expect(await defaultRouteHops(cl, n, true)).toEqual(
            [linkLocal(G1.inside), linkLocal(G2.inside)].sort(),
          );
        const gw2 = ecmp.gw2!;
        process.kill(gw2.pid, 'SIGKILL');
        await gw2.whenExited();
        await waitNextHops(ecmp, [G1.outside6], 5000, 5);
        const after = await ka.check(N);
        console.log(`IPv6 keep-alives after gw2's kill: ${JSON.stringify(after['80'])}`);
        expect(after['80']).toMatchObject({ same: N, changed: 0, failed: 0 });
        // gw2 no longer probes: the agents take it out of the nodes' IPv6 default routes too (its host
        // still forwards here, so the connections above did not need it)
        const t0 = Date.now();
        await waitFor(
          async () => {
            for (const n of ['n1', 'n2'])
              if ((await defaultRouteHops(cl, n, true)).join() !== linkLocal(G1.inside)) return false;
            return true;
          },
          { what: "the nodes' IPv6 default routes through gw1 alone", timeoutMs: 5000, intervalMs: 20 },
        );
        console.log(
          `the nodes' IPv6 default routes left gw2 ${Date.now() - t0} ms after the keep-alives' check`,
        );
        expect((await ka.check(N))['80']).toMatchObject({ same: N, changed: 0, failed: 0 });
      } finally {
        await ka.close();
      }
    });

    it('NFS over TCP to the IPv6 address (libnfs streams, delayed binding) while gw2 is killed: every stream completes with the file’s sha256', {
      timeout: 90_000,
    }, async () => {
      const { cluster: cl, ecmp } = started as Required<EcmpCluster>;
      if (ecmp.gw2 === undefined || ecmp.gw2.exitStatus() !== null) await ecmp.startGateway2(cl.dir);
      await waitNextHops(ecmp, BOTH6, 15_000, 50);
      await waitFor(() => runsOwnTable(cl, G2.inside), {
        what: 'gw2 running its own table',
        timeoutMs: 15_000,
      });
      await cl.waitForMount(['n1', 'n2'], 'tcp');
      const files = await Promise.all(
        DEFAULT_NFS.map(async (spec) => {
          const bytes = randomBytes(STREAM_BYTES);
          await writeFile(join(cl.lab.nfsOf(spec.node).tree, 'stream6.bin'), bytes);
          return {
            url: `nfs://${VIP6}${spec.path}/stream6.bin`,
            sha: createHash('sha256').update(bytes).digest('hex'),
          };
        }),
      );
      const nfsPorts = async () =>
        [
          ...(
            await cl.lab.exec('c1', 'ss', ['-Htn', 'state', 'established', `dst [${VIP6}]:2049`])
          ).stdout.matchAll(/\]:(\d+)\s+\[/g),
        ].map((m) => m[1]!);
      const viaGw2 = async (ports: string[]) => {
        let n = 0;
        for (const sport of ports) {
          const r = await run('ip', [
            ...['-n', ecmp.router, '-6', 'route', 'get', VIP6, 'from', cl.lab.addresses.ipv6.clients[0]!],
            ...['iif', 'eth0', 'ipproto', 'tcp', 'sport', sport, 'dport', '2049'],
          ]);
          if (r.stdout.includes(`dev ${G2.name}-o`)) n++;
        }
        return n;
      };
      // streams until at least one goes through gw2 (the router hashes each connection's ports)
      const streams: Download[] = [];
      let moved = 0;
      while (streams.length < MAX_STREAMS && (streams.length < 4 || moved === 0)) {
        for (const f of files) streams.push(nfsStream(cl.lab, `NFS6 #${streams.length}`, f.url, f.sha));
        await waitFor(async () => (await nfsPorts()).length >= streams.length, {
          what: 'every NFS stream connected',
          timeoutMs: 10_000,
          intervalMs: 50,
        });
        moved = await viaGw2(await nfsPorts());
      }
      console.log(`IPv6 NFS streams through gw2 before its kill: ${moved} of ${streams.length}`);
      expect(moved).toBeGreaterThanOrEqual(1);
      const gw2 = ecmp.gw2!;
      process.kill(gw2.pid, 'SIGKILL');
      await gw2.whenExited();
      await waitNextHops(ecmp, [G1.outside6], 5000, 5);
      const results = await Promise.all(streams.map(async (d) => ({ what: d.what, ...(await d.done) })));
      expect(results.filter((r) => !r.ok || r.bytes !== STREAM_BYTES)).toEqual([]);
    });
  },
);
