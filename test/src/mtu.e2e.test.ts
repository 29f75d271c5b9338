import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from './cluster.js';

// The interconnect MTU equals the outside's here (1500), so a full-size packet does not fit once
// encapsulated (+50): the gateway must clamp SYN MSS and answer DF packets with "fragmentation needed".
let c: Cluster;
beforeAll(async () => {
  c = await startCluster({
    gatewayYaml: (y) => y.replace(/(interconnect: \{[^}]*mtu: )1600/, '$11500'),
  });
});
afterAll(async () => {
  await c?.stop();
});

const DF_UDP = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO: DF set, no local fragmentation
s.connect((sys.argv[1], 53))
for _ in range(50):
    try:
        s.send(b'x' * 1472)
    except OSError as e:
        print('refused', e.errno); break
    import time; time.sleep(0.02)
else:
    print('sent all')
print('mtu', s.getsockopt(socket.IPPROTO_IP, 14))  # IP_MTU: what the kernel learned for this path
`;

async function metric(name: string): Promise<number> {
  const text = (await c.lab.exec('gw', 'curl', ['-sS', 'http://198.18.0.1:9400/metrics'])).stdout;
  const m = new RegExp(`^${name.replace(/[{}"]/g, (x) => `\\${x}`)} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('an interconnect no larger than the outside MTU', () => {
  it('DF datagrams too big to encapsulate get "fragmentation needed" and the sender learns the MTU', async () => {
    const out = (await c.lab.exec('c1', 'python3', ['-c', DF_UDP, c.vip], { timeoutMs: 15_000 })).stdout;
    expect(out).toMatch(/refused 90/); // EMSGSIZE once the kernel has the ICMP
    expect(out).toMatch(/mtu 1450/);
    expect(await metric('onehost_drops_total{reason="too_big"}')).toBeGreaterThan(0);
  });

  it('TCP works both ways: SYN MSS clamped toward the node, PMTU discovery toward the client', async () => {
    const up = JSON.parse(
      // c2: c1 has learned the path MTU in the test before and would offer a small MSS already
      (
        await c.lab.exec('c2', 'iperf3', ['-c', c.vip, '-t', '1', '-J', '--connect-timeout', '3000'], {
          timeoutMs: 20_000,
        })
      ).stdout,
    ) as { error?: string; end: { sum_received?: { bytes: number } } };
    expect(up.error).toBeUndefined();
    expect(up.end.sum_received?.bytes).toBeGreaterThan(1024 * 1024);
    // the kernel's clamp counter is read per scrape; wait for the scrape that sees it
    await waitFor(async () => (await metric('onehost_mss_clamped_total')) > 0, {
      timeoutMs: 5000,
      intervalMs: 200,
      what: 'a clamped SYN counted',
    });
    const page = await c.curl('c2', `http://${c.vip}/`);
    expect(page.trim()).toMatch(/^n[123]$/);
  });
});
