import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { gatewayRss, httpClose, type WrkResult } from './wrk.js';

// A SYN flood at the round-robin entry (tcp/80): plain SYNs from spoofed sources inside
// 203.0.113.128/25 (our own generator, built here from source, refuses anything else), as fast as one
// client namespace can send them, for FLOOD_SECONDS. A legitimate client (c1, a new connection per
// request) must keep ≥ 99 % of its requests with a p99 latency ≤ 5× the quiet run; the gateway's memory,
// the flow maps and the TUN guard stay bounded; service is normal once it stops. Kernel mode only: in tun
// mode every SYN crosses user space and the flood takes the gateway's CPU (see the note in docs).

const FLOOD_SECONDS = Number(process.env.ONEHOST_SYN_FLOOD_SECONDS ?? 10);
/** generators at once (each one core's worth, in the same client namespace) */
const GENERATORS = Number(process.env.ONEHOST_SYN_FLOOD_GENERATORS ?? 2);
const HALF_OPEN = 100_000;
const SOURCE = join(new URL('../tools/', import.meta.url).pathname, 'syn-flood.c');

let c: Cluster;
let dir: string;
let generator: string;

beforeAll(async () => {
  if (DATAPATH !== 'kernel') return;
  dir = await mkdtemp(join(tmpdir(), 'onehost-syn-'));
  generator = join(dir, 'syn-flood');
  await run('cc', ['-O2', '-o', generator, SOURCE]);
  // a half-open map of 100,000 fills in the flood's first second or two: the test sees both regimes
  c = await startCluster({
    gatewayYaml: (y) =>
      y.replace(
        /(port: 80, function: connection, policy: round-robin, nodes: \[n1, n2, n3\])/,
        `$1, maxEntries: ${HALF_OPEN}`,
      ),
  });
});
afterAll(async () => {
  await c?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const http = (seconds: number): Promise<WrkResult> => httpClose(c, seconds);

const gatewayRssKiB = (): Promise<number> => gatewayRss(c);

describe.skipIf(DATAPATH !== 'kernel')('a SYN flood at the round-robin entry (kernel data path)', () => {
  it('keeps a legitimate client served; bounded; normal once it stops', async () => {
    const quiet = await http(3);
    const rssBefore = await gatewayRssKiB();
    const floods = Array.from({ length: GENERATORS }, () =>
      // niced: the attacker's CPU is another machine's; here it shares two cores with the client under
      // test, and at equal priority one CI run starved wrk into a p99 of 107 ms (the gateway was fine)
      c.lab.exec(
        'c2',
        'nice',
        [
          '-n',
          '19',
          generator,
          c.vip,
          '80',
          '203.0.113.128/25',
          String(FLOOD_SECONDS),
          String(FLOOD_SECONDS * 2_000_000),
        ],
        { timeoutMs: (FLOOD_SECONDS + 20) * 1000 },
      ),
    );
    const counter = () => c.metric('onehost_function_packets_total', { function: 'connection' });
    const at0 = await counter();
    await waitFor(async () => (await counter()) - at0 > 20_000, {
      what: 'the flood reaching tcp/80',
      timeoutMs: 5000,
      intervalMs: 100,
    });
    const during = await http(Math.max(2, FLOOD_SECONDS - 4));
    const sent = (await Promise.all(floods)).reduce(
      (a, r) => a + Number(/sent (\d+)/.exec(r.stdout)?.[1] ?? 0),
      0,
    );
    const rssAfter = await gatewayRssKiB();
    const after = await http(3);
    const rssLater = await gatewayRssKiB();
    const byHash = await c.metric('onehost_connections_by_hash_total', { protocol: 'tcp', port: '80' });
    const intoUser = await c.metric('onehost_user_space_packets_total', { outcome: 'passed' });
    // the gateway's namespace tracks no connections (the fast path keeps its own maps)
    const ct = await c.lab.exec('gw', 'sh', [
      '-c',
      'cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0',
    ]);
    console.log(
      `syn flood: ${sent} SYNs in ${FLOOD_SECONDS} s (${Math.round(sent / FLOOD_SECONDS)}/s, ${GENERATORS} generators); ` +
        `placed by hash (half-open map of ${HALF_OPEN} full) ${byHash}; into user space ${intoUser}; gateway conntrack ${ct.stdout.trim()}; ` +
        `HTTP quiet ${quiet.requests} req, p99 ${quiet.p99Ms.toFixed(2)} ms; during ${during.requests} req, ${during.failed} failed, ` +
        `p99 ${during.p99Ms.toFixed(2)} ms (${(during.p99Ms / quiet.p99Ms).toFixed(1)}×); after ${after.requests} req, ${after.failed} failed; ` +
        `gateway RSS ${rssBefore} → ${rssAfter} → ${rssLater} KiB`,
    );
    expect(sent).toBeGreaterThan(HALF_OPEN * 2);
    expect(byHash).toBeGreaterThan(0);
    expect(during.failed).toBeLessThanOrEqual(during.requests * 0.01);
    // 5× the quiet p99, but not below 10 ms: a quiet p99 of 1.6 ms on shared cores made 8.6 ms fail once
    // (served, 0 failed); without the half-open map the flood cut wrk to 8 requests in 6 s
    expect(during.p99Ms).toBeLessThanOrEqual(Math.max(quiet.p99Ms * 5, 10));
    expect(after.failed).toBe(0);
    expect(after.requests).toBeGreaterThan(quiet.requests * 0.5);
    // the flood never reaches user space, and the gateway process does not grow with it: what a busy
    // minute of scrapes and probes costs (≈ 20 MiB measured), far from a byte per SYN, and flat after
    expect(intoUser).toBeLessThan(1000);
    expect(rssAfter - rssBefore).toBeLessThan(40 * 1024);
    expect(rssLater).toBeLessThan(rssAfter * 1.05);
  });
});
