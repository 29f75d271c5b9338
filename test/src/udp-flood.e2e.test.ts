import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { gatewayRss, httpClose, type WrkResult } from './wrk.js';

// A UDP flood at one entry (udp/53, udp-flow: every new source port is a new flow, so the flood also
// fills that entry's flow map) must leave the other entries alone: HTTP on tcp/80 (round robin, a new
// connection per request) and a UDP service on udp/5300 (fixed) keep answering while it lasts, and
// everything is normal once it stops. The flood comes from c2's own address (hping3, source ports
// counting up, no random addresses), bounded in time. Kernel mode only, as the flood guard: in tun mode
// every packet crosses user space and a flood takes the gateway's CPU from everyone.

const FLOOD_SECONDS = 6;
const UDP_PORT = 5300;

const UDP_ECHO = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', ${UDP_PORT}))
print('listening', flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
`;

// n datagrams one after the other, each waiting up to 200 ms for its echo; prints how many came back
const UDP_PROBE = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
ok = 0
for i in range(int(sys.argv[2])):
    m = b'probe %d' % i
    s.sendto(m, (sys.argv[1], ${UDP_PORT}))
    try:
        while True:
            d, _ = s.recvfrom(2048)
            if d == m:
                ok += 1
                break
    except socket.timeout:
        pass
print(ok)
`;

let c: Cluster;

beforeAll(async () => {
  if (DATAPATH !== 'kernel') return;
  c = await startCluster({
    gatewayYaml: (y) =>
      y.replace(
        /^entries:\n/m,
        `entries:\n  - { protocol: udp, port: ${UDP_PORT}, function: fixed, node: n2 }\n`,
      ),
  });
  const echo = c.lab.spawn('n2', 'python3', ['-c', UDP_ECHO]);
  await echo.waitForOutput('listening', 5000);
});
afterAll(async () => {
  await c?.stop();
});

const http = (seconds: number): Promise<WrkResult> => httpClose(c, seconds);

async function udpProbe(n: number): Promise<number> {
  const r = await c.lab.exec('c1', 'python3', ['-c', UDP_PROBE, c.vip, String(n)], { timeoutMs: 60_000 });
  return Number(r.stdout.trim());
}

const gatewayRssKiB = (): Promise<number> => gatewayRss(c);

describe.skipIf(DATAPATH !== 'kernel')('a UDP flood at one entry (kernel data path)', () => {
  it('leaves HTTP on tcp/80 and the UDP service on another entry answering; normal once it stops', async () => {
    const quiet = await http(3);
    const quietUdp = await udpProbe(100);
    expect(quietUdp).toBe(100);
    const rssBefore = await gatewayRssKiB();

    const flood = c.lab
      .exec(
        'c2',
        'timeout',
        ['-s', 'INT', String(FLOOD_SECONDS), 'hping3', '--udp', '-p', '53', '-s', '1024', '--flood', c.vip],
        { timeoutMs: (FLOOD_SECONDS + 10) * 1000 },
      )
      .catch((e: Error) => ({ stdout: '', stderr: e.message }));
    // the flood is on when the udp-flow entry's kernel counter moves fast
    const counter = () => c.metric('onehost_function_packets_total', { function: 'udp-flow' });
    const at0 = await counter();
    await waitFor(async () => (await counter()) - at0 > 10_000, {
      what: 'the flood reaching udp/53',
      timeoutMs: 4000,
      intervalMs: 100,
    });
    const [during, duringUdp] = await Promise.all([http(3), udpProbe(100)]);
    const sent = await flood;
    const floodPackets = (await counter()) - at0;
    const rssAfter = await gatewayRssKiB();
    // the next 8 s of normal service are also the interval over which memory must not keep growing
    const after = await http(8);
    const rssLater = await gatewayRssKiB();
    const userPath = await c.metric('onehost_function_packets_total', { function: 'udp-flow', path: 'user' });
    const tunPassed = await c.metric('onehost_user_space_packets_total', { outcome: 'passed' });
    const guardDrops = await c.metric('onehost_user_space_packets_total', { outcome: 'guard_drop' });
    console.log(
      `udp flood: udp-flow decided in user space ${userPath}; into user space ${tunPassed}, guard drops ${guardDrops}`,
    );

    console.log(
      `udp flood: ${floodPackets} packets at udp/53 in ${FLOOD_SECONDS} s (${Math.round(floodPackets / FLOOD_SECONDS)}/s; ${
        /(\d+) packets transmitted/.exec(`${sent.stdout}${'stderr' in sent ? sent.stderr : ''}`)?.[1] ?? '?'
      } sent); ` +
        `HTTP quiet ${quiet.requests} req, p99 ${quiet.p99Ms.toFixed(2)} ms; during ${during.requests} req, ${during.failed} failed, ` +
        `p99 ${during.p99Ms.toFixed(2)} ms (${(during.p99Ms / quiet.p99Ms).toFixed(1)}×); after ${after.requests} req, ${after.failed} failed; ` +
        `udp/${UDP_PORT} ${duringUdp}/100 answered during; gateway RSS ${rssBefore} → ${rssAfter} → ${rssLater} KiB`,
    );
    expect(floodPackets).toBeGreaterThan(50_000);
    expect(during.failed).toBeLessThanOrEqual(during.requests * 0.01);
    expect(during.requests).toBeGreaterThan(quiet.requests * 0.2);
    expect(duringUdp).toBeGreaterThanOrEqual(99);
    expect(after.failed).toBe(0);
    expect(after.requests).toBeGreaterThan(0);
    // bounded: once the flood stops the gateway's memory stops growing (the kernel keeps the flood's
    // flows until their idle timeout; the gateway's share of them is bounded, see the note)
    expect(rssLater).toBeLessThan(rssAfter * 1.1);
  });
});
