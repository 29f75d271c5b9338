import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { withEntries, withVip6 } from './lab-yaml.js';

// Issue 16: a node's UDP reply larger than the outside link. In the lab the interconnect carries 1600
// bytes and the outside 1500: a reply the node sends whole (or in fragments) of more than 1500 bytes
// cannot leave the gateway as it came. The gateway is a router on that path, and its Packet Too Big
// (RFC 4443 §3.2; for IPv4 "fragmentation needed", RFC 1191) would go to the reply's source, the cluster
// address — its own. So the node's routes to the outside carry the outside's MTU (the gateway says it
// at join): the node's kernel fragments its replies to fit (RFC 8200 §4.5), the gateway reassembles
// and forwards fragments of the same size. Addresses from 2001:db8::/32 (RFC 3849) and 203.0.113.0/24
// (RFC 5737), inside the lab's namespaces only.

const VIP6 = '2001:db8:113::80';
const PORT = 8089;
let c: Cluster;

/** A UDP server on n2 (both families): answers a datagram holding a number N with N bytes. */
const SERVER = `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', ${PORT})); print('listening', flush=True)
while True:
    data, peer = s.recvfrom(100)
    n = int(data)
    s.sendto(bytes(i % 251 for i in range(n)), peer)
`;

/**
 * Asks for replies of each size in argv[3:], `tries` times each from a new socket, and prints one line
 * per size: how many of the replies arrived whole.
 */
const CLIENT = `
import socket, sys
host, tries, sizes = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3:]]
family = socket.AF_INET6 if ':' in host else socket.AF_INET
for n in sizes:
    ok = 0
    for _ in range(tries):
        s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(2); s.connect((host, ${PORT}))
        s.send(b'%d' % n)
        try:
            ok += s.recv(70000) == bytes(i % 251 for i in range(n))
        except socket.timeout:
            pass
        s.close()
    print(n, ok, flush=True)
`;

beforeAll(async () => {
  c = await startCluster({
    ipv6: true,
    gatewayYaml: (y) =>
      withEntries(withVip6(y, VIP6), [`{ protocol: udp, port: ${PORT}, function: fixed, node: n2 }`]),
  });
  const server = c.lab.spawn('n2', 'python3', ['-c', SERVER]);
  await server.waitForOutput('listening');
}, 180_000);
afterAll(async () => {
  await c?.stop();
});

const SIZES = [1200, 1480, 1560, 4000, 16_384, 60_000];

async function ask(host: string): Promise<Map<number, number>> {
  const { stdout } = await c.lab.exec('c1', 'python3', ['-c', CLIENT, host, '3', ...SIZES.map(String)], {
    timeoutMs: 60_000,
  });
  return new Map(
    stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ').map(Number) as [number, number]),
  );
}

describe(`UDP replies larger than the outside link (${DATAPATH})`, () => {
  it('the node’s route to the outside carries the outside MTU, both families', async () => {
    const v4 = (await c.lab.exec('n2', 'ip', ['route', 'show', 'default'])).stdout;
    const v6 = (await c.lab.exec('n2', 'ip', ['-6', 'route', 'show', 'default'])).stdout;
    expect(v4).toMatch(/ mtu 1500\b/);
    expect(v6).toMatch(/ mtu 1500\b/);
  });

  it('IPv6: replies of every size arrive whole, the first one too', async () => {
    const got = await ask(VIP6);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(SIZES.map((n) => [n, 3])));
  });

  it('IPv4: replies of every size arrive whole', async () => {
    const got = await ask(c.vip);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(SIZES.map((n) => [n, 3])));
  });
});
