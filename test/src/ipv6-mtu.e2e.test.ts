import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { withEntries, withVip6 } from './lab-yaml.js';

// Issue 16: IPv6 packets too big for the interconnect and IPv6 fragments, end to end. The interconnect
// MTU equals the outside's (1500), so an IPv6 packet of more than 1450 bytes does not fit once
// encapsulated (+50): the gateway answers a Packet Too Big (RFC 4443 §3.2) and the sender's kernel
// lowers its path MTU (RFC 8201). Fragmented datagrams (RFC 8200 §4.5) reach one node whole. Addresses
// from 2001:db8::/32 (RFC 3849) inside the lab's namespaces only.

const VIP6 = '2001:db8:113::80';
const PORT = 8088;
let c: Cluster;
let client6: string;

/** A UDP server on every node: answers each datagram with the node's name, its length and a digest. */
const SERVER = `
import socket, hashlib, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(('::', ${PORT})); print('listening', flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(('%s %d %s' % (sys.argv[1], len(data), hashlib.sha256(data).hexdigest()[:16])).encode(), peer)
`;

/**
 * Sends `count` datagrams of `size` bytes from as many sockets (their own ports) and prints each answer
 * (or "lost"), after its own digest. With mtu > 0 the socket fragments at that MTU (IPV6_MTU, RFC 3542).
 */
const SENDER = `
import socket, hashlib, sys
vip, port, size, count, mtu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
for i in range(count):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    if mtu: s.setsockopt(socket.IPPROTO_IPV6, 24, mtu)  # IPV6_MTU
    s.settimeout(2); s.connect((vip, port))
    data = bytes((i + j) % 251 for j in range(size))
    s.send(data)
    try: answer = s.recv(200).decode()
    except socket.timeout: answer = 'lost'
    print('sent %d %s answer %s' % (size, hashlib.sha256(data).hexdigest()[:16], answer), flush=True)
`;

/**
 * Path MTU discovery as a DNS-sized sender does it: datagrams of 1452 bytes (1500 on the wire) with
 * IPV6_DONTFRAG (RFC 3542 §11.2) until the kernel refuses one with EMSGSIZE, then the path MTU it learned
 * (IPV6_MTU on a connected socket). Bounded: 50 tries.
 */
const PMTU = `
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, 62, 1)  # IPV6_DONTFRAG
s.connect((sys.argv[1], int(sys.argv[2])))
for _ in range(50):
    try:
        s.send(b'x' * 1452)
    except OSError as e:
        print('refused', e.errno); break
    time.sleep(0.02)
else:
    print('sent all')
print('mtu', s.getsockopt(socket.IPPROTO_IPV6, 24), flush=True)
`;

beforeAll(async () => {
  c = await startCluster({
    ipv6: true,
    gatewayYaml: (y) =>
      withEntries(withVip6(y.replace(/(interconnect: \{[^}]*mtu: )1600/, '$11500'), VIP6), [
        `{ protocol: udp, port: ${PORT}, function: udp-flow, idleTimeout: 30, nodes: [n1, n2, n3] }`,
      ]),
  });
  client6 = c.lab.addresses.ipv6.clients[0]!;
  for (const n of ['n1', 'n2', 'n3']) {
    const server = c.lab.spawn(n, 'python3', ['-c', SERVER, n]);
    await server.waitForOutput('listening');
  }
}, 180_000);
afterAll(async () => {
  await c?.stop();
});

/** snmp6 reads counters of the gateway host's IPv6 statistics (/proc/net/snmp6 in its namespace). */
async function snmp6(...names: string[]): Promise<number[]> {
  const text = (await c.lab.exec('gw', 'cat', ['/proc/net/snmp6'])).stdout;
  return names.map((n) => Number(new RegExp(`^${n}\\s+(\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN));
}

/** answers parses SENDER's lines: [length sent, digest sent, node, length received, digest received]. */
function answers(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .map((l) => {
      const m = /^sent (\d+) (\w+) answer (?:(n\d) (\d+) (\w+)|lost)$/.exec(l);
      if (!m) throw new Error(`unexpected line: ${l}`);
      return m.slice(1).map((x) => x ?? 'lost');
    });
}

describe(`IPv6 fragments and Packet Too Big (${DATAPATH})`, () => {
  it('fragmented 4000-byte datagrams (IPV6_MTU 1280) reach one node whole', async () => {
    const userFragments = () =>
      c.metric('onehost_function_packets_total', { function: 'fragment', path: 'user' });
    const before = await userFragments();
    const [reasm0, creates0] = await snmp6('Ip6ReasmOKs', 'Ip6FragCreates');
    const out = (
      await c.lab.exec('c1', 'python3', ['-c', SENDER, VIP6, String(PORT), '4000', '6', '1280'], {
        timeoutMs: 30_000,
      })
    ).stdout;
    const rows = answers(out);
    expect(rows.length).toBe(6);
    for (const [len, digest, node, got, gotDigest] of rows) {
      expect(node).toMatch(/^n[123]$/);
      expect([got, gotDigest]).toEqual([len, digest]);
    }
    const after = await userFragments();
    const [reasm1, creates1] = await snmp6('Ip6ReasmOKs', 'Ip6FragCreates');
    console.log(
      `later fragments decided in user space: ${after - before}; host reassembled ${reasm1! - reasm0!}, fragments created ${creates1! - creates0!}`,
    );
    // The host's conntrack defrag (nf_defrag_ipv6, which the host filter's `ct` rules load) reassembles
    // each datagram before any of our rules, and the kernel fragments it again on output at the largest
    // fragment it received (1280: 4 fragments each): into the TUN in tun mode, where the 3 later ones
    // follow the first in the switch; toward the node in kernel mode, where the fast path routed the
    // whole datagram by its ports and no fragment reaches user space.
    expect(creates1! - creates0!).toBeGreaterThanOrEqual(24);
    if (DATAPATH === 'tun') expect(after - before).toBeGreaterThanOrEqual(18);
    else expect(after - before).toBe(0);
  });

  it('a packet too big for the interconnect gets a Packet Too Big from the cluster address; the sender learns 1450', async () => {
    const dump = c.lab.spawn('c1', 'tcpdump', [
      '-l',
      '-n',
      '-v',
      '-c',
      '1',
      '-i',
      'eth0',
      'icmp6 and ip6[40] == 2',
    ]);
    try {
      await dump.waitForOutput('listening on', 5000);
      const out = (await c.lab.exec('c1', 'python3', ['-c', PMTU, VIP6, String(PORT)], { timeoutMs: 15_000 }))
        .stdout;
      expect(out).toMatch(/refused 90/); // EMSGSIZE once the kernel has the Packet Too Big
      expect(out).toMatch(/mtu 1450/);
      await waitFor(() => !dump.running, { what: 'tcpdump saw the Packet Too Big', timeoutMs: 5000 });
      const seen = dump.output();
      expect(seen).toContain(`${VIP6} > ${client6}: [icmp6 sum ok] ICMP6, packet too big, mtu 1450`);
      if (DATAPATH === 'tun')
        expect(await c.metric('onehost_icmp_sent_total', { message: 'packet_too_big' })).toBeGreaterThan(0);
      expect(await c.metric('onehost_drops_total', { reason: 'too_big' })).toBeGreaterThan(0);
    } finally {
      await dump.stop();
    }
  });

  it('after it, 4000-byte datagrams fragmented at the learned path MTU reach one node whole', async () => {
    const out = (
      await c.lab.exec('c1', 'python3', ['-c', SENDER, VIP6, String(PORT), '4000', '4', '0'], {
        timeoutMs: 30_000,
      })
    ).stdout;
    const rows = answers(out);
    expect(rows.length).toBe(4);
    for (const [len, digest, , got, gotDigest] of rows) expect([got, gotDigest]).toEqual([len, digest]);
  });
});
