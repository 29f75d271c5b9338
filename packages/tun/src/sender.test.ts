import { fileURLToPath } from 'node:url';
import { Lab, type Netns, requireRoot, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTunError } from './errors.js';
import { PacketSender } from './sender.js';
import { quietNetns } from './testing/lab.js';
import { packBatch, udpPacket, vxlanPrefix } from './testing/packets.js';

requireRoot();

const sinkScript = fileURLToPath(new URL('./testing/udp-sink.py', import.meta.url));
const NODE_MAC = '02:00:00:00:00:42';

/** outerPorts parses tcpdump's "IP 198.18.1.1.SPORT > 198.18.1.2.4789" lines (not the decoded inner ones). */
function outerPorts(out: string): number[] {
  return [...out.matchAll(/IP 198\.18\.1\.1\.(\d+) > 198\.18\.1\.2\.4789/g)].map((m) => Number(m[1]));
}

describe('PacketSender', () => {
  const lab = new Lab();
  let gw: Netns;
  let node: Netns;
  let nodeIf: string;
  let gwIf: string;
  const senders: PacketSender[] = [];
  const openSender = (options: Parameters<typeof PacketSender.open>[0] = {}) => {
    const s = PacketSender.open({ netns: gw.name, ...options });
    senders.push(s);
    return s;
  };

  beforeAll(async () => {
    gw = await quietNetns(lab);
    node = await quietNetns(lab);
    const pair = await lab.veth(gw, node, { aAddress: '198.18.1.1/24', bAddress: '198.18.1.2/24' });
    gwIf = pair.a;
    nodeIf = pair.b;
    // A real kernel VXLAN device on the node (RFC 7348), holding the address the inner packets go to.
    await node.ip(
      ...['link', 'add', 'vx0', 'address', NODE_MAC, 'type', 'vxlan', 'id', '42', 'dstport', '4789'],
      ...['local', '198.18.1.2', 'dev', nodeIf, 'nolearning'],
    );
    await node.addAddress('vx0', '198.18.200.1/32');
    await node.sysctl('net.ipv4.conf.vx0.rp_filter', 0);
    await gw.exec('ping', ['-c', '1', '-W', '2', '198.18.1.2']);
  });
  afterAll(async () => {
    for (const s of senders) s.close();
    await lab.cleanup();
  });

  it('sends VXLAN datagrams that the kernel VXLAN device decapsulates, one destination and source port each', async () => {
    const sender = openSender();
    sender.setDestinations([
      { address: '198.18.1.2', port: 4789, prefix: vxlanPrefix(42, NODE_MAC, '02:00:00:00:00:01') },
      { address: '198.18.1.9', port: 4789 },
    ]);
    const inner = [0, 1, 2, 3, 4, 5].map((f) =>
      udpPacket('203.0.113.5', '198.18.200.1', 4000 + f, 7777, Buffer.from(`flow-${f}`)),
    );
    const { arena, meta } = packBatch(inner);
    const dst = Int32Array.from([0, 0, -1, 0, 7, 0]);
    const sport = Int32Array.from([0, 0, 0, 0, 0, 40001]);
    const sink = node.spawn('python3', [sinkScript, '198.18.200.1', '7777', '4']);
    const dump = node.spawn('tcpdump', ['-l', '-n', '-i', nodeIf, '-c', '4', 'udp dst port 4789']);
    await sink.waitForOutput('ready');
    await dump.waitForOutput('listening on');
    expect(sender.sendUdp(arena, meta, 0, inner.length, dst, sport)).toBe(inner.length);
    await sink.waitForOutput('done 4');
    for (const f of [0, 1, 3, 5])
      expect(sink.output()).toContain(`${4000 + f} 6 ${Buffer.from(`flow-${f}`).toString('hex')}`);
    expect(sink.output()).not.toContain('flow-2');
    await waitFor(() => !dump.running, { what: 'tcpdump to see 4 datagrams' });
    const ports = outerPorts(dump.output());
    const expected = [0, 1, 3].map((f) => sender.flowPort(inner[f]!));
    expect(ports).toEqual([...expected, 40001]);
    // Flow-hash ports stay in RFC 7348's dynamic range and differ between these flows.
    for (const p of expected) expect(p).toBeGreaterThanOrEqual(49152);
    expect(new Set(expected).size).toBe(3);
    const st = sender.stats();
    expect(st.packets).toBe(4);
    expect(st.badDestination).toBe(1);
    expect(st.calls).toBe(1);
  });

  it('keeps every fragment of a datagram on one outer source port', () => {
    const sender = openSender({ portMin: 50000, portMax: 50099 });
    const first = udpPacket('203.0.113.5', '198.18.200.1', 1234, 7777, Buffer.alloc(40));
    first[6] = 0x20; // MF
    const later = Buffer.from(first);
    later[6] = 0x00;
    later[7] = 0x05; // offset 40 bytes, no ports inside
    later.writeUInt32BE(0xdeadbeef, 20);
    const port = sender.flowPort(first);
    expect(sender.flowPort(later)).toBe(port);
    expect(port).toBeGreaterThanOrEqual(50000);
    expect(port).toBeLessThanOrEqual(50099);
  });

  it('hashes inner IPv6 packets by addresses and ports: one flow, one port; another flow, another port', () => {
    const sender = openSender({ portMin: 50000, portMax: 59999 });
    // RFC 8200 §3 fixed header, then UDP ports; addresses from the documentation prefix (RFC 3849)
    const v6 = (srcPort: number, size: number, last = 5) => {
      const b = Buffer.alloc(48 + size);
      b[0] = 0x60;
      b.writeUInt16BE(8 + size, 4);
      b[6] = 17;
      b[7] = 64;
      Buffer.from('20010db8000100000000000000000005', 'hex').copy(b, 8);
      Buffer.from('20010db8000000000000000000000010', 'hex').copy(b, 24);
      b[23] = last;
      b.writeUInt16BE(srcPort, 40);
      b.writeUInt16BE(53, 42);
      return b;
    };
    const port = sender.flowPort(v6(4000, 10));
    expect(sender.flowPort(v6(4000, 900))).toBe(port);
    const others = [sender.flowPort(v6(4001, 10)), sender.flowPort(v6(4000, 10, 6))];
    expect(others).not.toContain(port);
  });

  it('sends an inner IPv6 packet (EtherType 0x86dd) that the node decapsulates and delivers', async () => {
    // the node side as the agent makes it for an IPv6 cluster address: IPv6 on, no link-locals
    for (const dev of ['lo', 'vx0']) {
      await node.sysctl(`net.ipv6.conf.${dev}.addr_gen_mode`, 1);
      await node.sysctl(`net.ipv6.conf.${dev}.disable_ipv6`, 0);
    }
    await node.ip('addr', 'add', '2001:db8::200/128', 'dev', 'lo', 'nodad');
    const sink = node.spawn('python3', [
      '-c',
      "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('2001:db8::200', 7777))\n" +
        "print('ready', flush=True); d, a = s.recvfrom(2048); print('got', a[0], d.decode(), flush=True)",
    ]);
    await sink.waitForOutput('ready');
    const sender = openSender();
    sender.setDestinations([
      { address: '198.18.1.2', port: 4789, prefix: vxlanPrefix(42, NODE_MAC, '02:00:00:00:00:01', 0x86dd) },
    ]);
    // RFC 8200 §3 header + UDP with its checksum over the IPv6 pseudo-header (§8.1)
    const payload = Buffer.from('hello-v6');
    const p = Buffer.alloc(48 + payload.length);
    p[0] = 0x60;
    p.writeUInt16BE(8 + payload.length, 4);
    p[6] = 17;
    p[7] = 64;
    Buffer.from('20010db8000100000000000000000005', 'hex').copy(p, 8);
    Buffer.from('20010db8000000000000000000000200', 'hex').copy(p, 24);
    p.writeUInt16BE(4000, 40);
    p.writeUInt16BE(7777, 42);
    p.writeUInt16BE(8 + payload.length, 44);
    payload.copy(p, 48);
    let sum = 17 + 8 + payload.length;
    for (let i = 8; i < p.length; i += 2) sum += i + 1 < p.length ? p.readUInt16BE(i) : p[i]! << 8;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    p.writeUInt16BE(~sum & 0xffff || 0xffff, 46);
    const { arena, meta } = packBatch([p]);
    expect(sender.sendUdp(arena, meta, 0, 1, Int32Array.of(0), null)).toBe(1);
    await sink.waitForOutput('got');
    expect(sink.output()).toContain('got 2001:db8:1::5 hello-v6');
  });

  it('sends complete IPv4 packets with sendIp and counts malformed ones', async () => {
    const sender = openSender();
    const sink = node.spawn('python3', [sinkScript, '198.18.1.2', '7778', '2']);
    await sink.waitForOutput('ready');
    const good1 = udpPacket('198.18.1.1', '198.18.1.2', 1111, 7778, Buffer.from('raw-one'));
    const good2 = udpPacket('198.18.1.1', '198.18.1.2', 2222, 7778, Buffer.from('raw-two'));
    const v6 = Buffer.from(good1);
    v6[0] = 0x65;
    const short = Buffer.alloc(12, 0x45);
    const { arena, meta } = packBatch([good1, short, v6, good2]);
    expect(sender.sendIp(arena, meta, 0, 4)).toBe(4);
    await sink.waitForOutput('done 2');
    expect(sink.output()).toContain('1111 7');
    expect(sink.output()).toContain('2222 7');
    expect(sender.stats().badPacket).toBe(2);
  });

  it('stops at a full socket buffer, resumes on writable, and loses nothing', async () => {
    // Packets wait in a slow token bucket, still charged to the socket, so its small buffer fills.
    await gw.exec('tc', [
      'qdisc',
      'add',
      'dev',
      gwIf,
      'root',
      'tbf',
      'rate',
      '20mbit',
      'burst',
      '4kb',
      'limit',
      '4mb',
    ]);
    lab.defer(() => gw.exec('tc', ['qdisc', 'del', 'dev', gwIf, 'root']));
    await node.exec('nft', ['-f', '-'], {
      input: [
        'table netdev oh {',
        '  counter c {',
        '  }',
        '  chain in {',
        `    type filter hook ingress device "${nodeIf}" priority 0;`,
        '    udp dport 9999 counter name "c" drop',
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    const sender = openSender({ sendBuffer: 4096 });
    sender.setDestinations([{ address: '198.18.1.2', port: 9999 }]);
    const N = 2000;
    const packets = Array.from({ length: N }, (_, i) =>
      udpPacket('203.0.113.7', '198.18.200.1', 1000 + (i % 50), 80, Buffer.alloc(64, i)),
    );
    const { arena, meta } = packBatch(packets);
    const dst = new Int32Array(N);
    let next = 0;
    let calls = 0;
    let wakeups = 0;
    let stalled = 0;
    await new Promise<void>((resolve) => {
      const pump = () => {
        const before = next;
        calls++;
        next = sender.sendUdp(arena, meta, next, N, dst);
        if (next === before) stalled++;
        if (next < N) {
          sender.onWritable(() => {
            wakeups++;
            pump();
          });
        } else {
          resolve();
        }
      };
      pump();
    });
    const st = sender.stats();
    expect(st.wouldBlock).toBeGreaterThan(0);
    expect(wakeups).toBeGreaterThan(0);
    // Every wakeup made progress: no spinning on a full buffer.
    expect(stalled).toBe(0);
    expect(calls).toBe(wakeups + 1);
    expect(st.packets).toBe(N);
    const counted = async () => {
      const { stdout } = await node.exec('nft', ['-j', 'list', 'counter', 'netdev', 'oh', 'c']);
      const entry = (JSON.parse(stdout).nftables as Array<{ counter?: { packets: number } }>).find(
        (e) => e.counter,
      );
      return entry?.counter?.packets ?? 0;
    };
    await waitFor(async () => (await counted()) === N, {
      what: `${N} datagrams at the node`,
      timeoutMs: 5000,
    });
  });

  it('marks what it sends with SO_MARK, which nftables sees, and rejects marks that are not u32', async () => {
    // Count, in the sender's namespace, what leaves with each mark (the output hook sees raw sockets too).
    await gw.exec('nft', ['-f', '-'], {
      input: [
        'table ip marks {',
        '  chain out {',
        '    type filter hook output priority 0; policy accept;',
        '    udp dport 7779 meta mark 0x6f6a counter',
        '    udp dport 7779 meta mark 0xffffffff counter',
        '    udp dport 7779 meta mark 0 counter',
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    lab.defer(() => gw.exec('nft', ['delete', 'table', 'ip', 'marks']));
    const counts = async () => {
      const { stdout } = await gw.exec('nft', ['list', 'chain', 'ip', 'marks', 'out']);
      return [...stdout.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
    };
    const pkt = udpPacket('198.18.1.1', '198.18.1.2', 1111, 7779, Buffer.from('marked'));
    const { arena, meta } = packBatch([pkt]);
    for (const mark of [0x6f6a, 0xffffffff, undefined, 0]) {
      expect(openSender(mark === undefined ? {} : { mark }).sendIp(arena, meta, 0, 1)).toBe(1);
    }
    // sendIp returns once the kernel took the packet, which has then passed the output hook.
    expect(await counts()).toEqual([1, 1, 2]);
    for (const mark of [-1, 2 ** 32, 1.5, Number.NaN, '1' as unknown as number, null as unknown as number]) {
      let caught: unknown;
      try {
        openSender({ mark });
      } catch (err) {
        caught = err;
      }
      expect(isTunError(caught, 'TUN_BAD_ARGUMENT'), `mark ${String(mark)}`).toBe(true);
    }
  });

  it('rejects bad destination tables and keeps the old one', () => {
    const sender = openSender();
    sender.setDestinations([{ address: '198.18.1.2', port: 9 }]);
    const bad = [
      [{ address: 'nope', port: 1 }],
      [{ address: '198.18.1.2', port: 0 }],
      [{ address: '198.18.1.2', port: 70000 }],
      [{ address: '198.18.1.2', port: 1, prefix: new Uint8Array(65) }],
    ];
    for (const table of bad) {
      let caught: unknown;
      try {
        sender.setDestinations(table);
      } catch (err) {
        caught = err;
      }
      expect(isTunError(caught, 'TUN_BAD_ARGUMENT')).toBe(true);
    }
    // Out-of-arena rows are counted, not sent; the old table still works for the good row.
    const pkt = udpPacket('203.0.113.1', '198.18.1.2', 1, 9, Buffer.alloc(4));
    const { arena, meta } = packBatch([pkt, pkt]);
    meta[4] = arena.length - 1;
    expect(sender.sendUdp(arena, meta, 0, 2, new Int32Array(2))).toBe(2);
    expect(sender.stats().badPacket).toBe(1);
    expect(sender.stats().packets).toBe(1);
    sender.close();
    sender.close();
    let closed: unknown;
    try {
      sender.sendUdp(arena, meta, 0, 2, new Int32Array(2));
    } catch (err) {
      closed = err;
    }
    expect(isTunError(closed, 'TUN_CLOSED')).toBe(true);
  });
});
