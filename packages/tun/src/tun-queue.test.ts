import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Lab, type Netns, requireRoot, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTunError } from './errors.js';
import { flood } from './index.js';
import { linkExists, quietNetns, waitForLinkGone, waitForQueued } from './testing/lab.js';
import { echoReply, packBatch, tcp6ChecksumOk, tcp6Partial, udpPacket } from './testing/packets.js';
import { Tun } from './tun.js';
import { TunQueue } from './tun-queue.js';

requireRoot();

const sinkScript = fileURLToPath(new URL('./testing/udp-sink.py', import.meta.url));
const addonPath = fileURLToPath(new URL('../build/Release/onehost_tun.node', import.meta.url));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isTunError(err)) return err.code;
    throw err;
  }
  return undefined;
}

describe('TunQueue', () => {
  const lab = new Lab();
  let ns: Netns;
  const open: TunQueue[] = [];
  const openQueue = (options: Parameters<typeof TunQueue.open>[0]) => {
    const q = TunQueue.open({ netns: ns.name, ...options });
    open.push(q);
    return q;
  };

  beforeAll(async () => {
    ns = await quietNetns(lab);
  });
  afterAll(async () => {
    for (const q of open) q.close();
    await lab.cleanup();
  });

  it('answers a ping written back through the TUN (read + write round trip)', async () => {
    const q = openQueue({ name: lab.linkName('t') });
    q.ipv4 = '198.18.5.1/24';
    q.isUp = true;
    let replies = 0;
    q.receive((count, arena, meta) => {
      for (let i = 0; i < count; i++) {
        const reply = echoReply(arena.subarray(meta[i * 4]!, meta[i * 4]! + meta[i * 4 + 1]!));
        if (reply && q.write(reply)) replies++;
      }
    });
    const { stdout } = await ns.exec('ping', ['-c', '3', '-i', '0.05', '-W', '2', '198.18.5.2']);
    expect(stdout).toContain('3 received');
    expect(replies).toBe(3);
    expect(q.stats().rxPackets).toBeGreaterThanOrEqual(3);
    q.close();
  });

  it('delivers a UDP datagram written into the TUN to a socket in the namespace', async () => {
    const q = openQueue({ name: lab.linkName('t') });
    q.ipv4 = '198.18.6.1/24';
    q.isUp = true;
    const sink = ns.spawn('python3', [sinkScript, '198.18.6.1', '9000', '1']);
    await sink.waitForOutput('ready');
    const payload = Buffer.from('hello-through-tun');
    expect(q.write(udpPacket('198.18.6.2', '198.18.6.1', 4000, 9000, payload))).toBe(true);
    await sink.waitForOutput('done 1');
    expect(sink.output()).toContain(`4000 ${payload.length} ${payload.subarray(0, 8).toString('hex')}`);
    q.close();
  });

  it('hands at least 64 waiting packets to one callback', async () => {
    const q = openQueue({ name: lab.linkName('t') });
    q.ipv4 = '198.18.7.1/24';
    q.isUp = true;
    const sent = await flood({
      netns: ns.name,
      destination: '198.18.7.2',
      count: 100,
      durationMs: 2000,
      flows: 8,
    });
    expect(sent.sent).toBe(100);
    // The kernel queues them on the TUN (its ring holds txqueuelen = 500) until we read.
    await waitForQueued(ns, q.name, 100);
    const batches: number[] = [];
    let udp = 0;
    q.receive(
      (count, arena, meta) => {
        batches.push(count);
        for (let i = 0; i < count; i++) if (arena[meta[i * 4]! + 9] === 17) udp++;
      },
      { maxBatch: 64 },
    );
    await waitFor(() => udp >= 100, { what: 'all 100 packets read' });
    expect(batches[0]).toBe(64);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(100);
    expect(q.stats().rxBatches).toBe(batches.length);
    q.close();
  });

  it('keeps packets in the arena while paused and reads again on resume', async () => {
    const q = openQueue({ name: lab.linkName('t') });
    q.ipv4 = '198.18.8.1/24';
    q.isUp = true;
    let seen = 0;
    let firstOffset = -1;
    let held: Buffer | undefined;
    q.receive(
      (count, arena, meta) => {
        seen += count;
        if (!held) {
          q.pause();
          firstOffset = meta[0]!;
          held = Buffer.from(arena.subarray(meta[0]!, meta[0]! + meta[1]!));
        }
      },
      { maxBatch: 4 },
    );
    await flood({ netns: ns.name, destination: '198.18.8.2', count: 20, durationMs: 2000, flows: 20 });
    await waitFor(() => seen > 0, { what: 'the first batch' });
    const afterPause = seen;
    await waitForQueued(ns, q.name, 20);
    // Paused: the arena still holds the first packet and no more batches arrived.
    expect(seen).toBe(afterPause);
    expect(q.arena.subarray(firstOffset, firstOffset + held!.length).equals(held!)).toBe(true);
    q.resume();
    await waitFor(() => seen >= 20, { what: 'the rest after resume' });
    q.close();
  });

  it('keeps a reading queue alive when the program holds no reference to it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const name = lab.linkName('t');
    let seen = 0;
    let weak: WeakRef<{ close(): void }> | undefined;
    (() => {
      const q = TunQueue.open({ name, netns: ns.name });
      q.ipv4 = '198.18.14.1/24';
      q.isUp = true;
      // The handler holds nothing that leads back to the queue.
      q.receive((count, arena, meta) => {
        for (let i = 0; i < count; i++) if (arena[meta[i * 4]! + 9] === 1) seen++;
      });
      weak = new WeakRef(q.nativeQueue);
    })();
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    await ns.exec('ping', ['-c', '1', '-W', '1', '198.18.14.2']).catch(() => undefined);
    await waitFor(() => seen >= 1, {
      what: 'the echo request read by the unreferenced queue',
      timeoutMs: 2000,
    });
    expect(await linkExists(ns, name)).toBe(true);
    weak?.deref()?.close();
    await waitForLinkGone(ns, name);
  });

  it('configures MTU, address and state, and rejects MTUs out of range', async () => {
    const q = openQueue({ name: lab.linkName('t') });
    expect(q.ipv4).toBeUndefined();
    expect(q.isUp).toBe(false);
    q.mtu = 9000;
    q.ipv4 = '198.18.9.1/24';
    q.isUp = true;
    expect(q.mtu).toBe(9000);
    expect(q.ipv4).toBe('198.18.9.1/24');
    const { stdout } = await ns.ip('addr', 'show', 'dev', q.name);
    expect(stdout).toContain('mtu 9000');
    expect(stdout).toContain('inet 198.18.9.1/24');
    expect(stdout).toMatch(/<[^>]*\bUP\b/);
    q.isUp = false;
    expect(q.isUp).toBe(false);
    expect(codeOf(() => (q.mtu = 67))).toBe('TUN_MTU_RANGE');
    expect(codeOf(() => (q.mtu = 65536))).toBe('TUN_MTU_RANGE');
    expect(codeOf(() => (q.mtu = 1500.5))).toBe('TUN_MTU_RANGE');
    expect(q.mtu).toBe(9000);
    q.mtu = 68;
    q.mtu = 65535;
    expect(q.mtu).toBe(65535);
    expect(codeOf(() => (q.ipv4 = '198.18.9.300/24'))).toBe('TUN_BAD_ARGUMENT');
    q.close();
  });

  it('closes (device gone) and reopens under the same name', async () => {
    const name = lab.linkName('t');
    const q = openQueue({ name });
    q.ipv4 = '198.18.10.1/24';
    expect(await linkExists(ns, name)).toBe(true);
    q.close();
    q.close();
    expect(q.closed).toBe(true);
    expect(codeOf(() => q.mtu)).toBe('TUN_CLOSED');
    expect(codeOf(() => q.write(Buffer.alloc(20)))).toBe('TUN_CLOSED');
    await waitForLinkGone(ns, name);
    const again = openQueue({ name });
    expect(again.name).toBe(name);
    expect(again.ipv4).toBeUndefined();
    again.close();
  });

  it('lets the kernel pick a name when none is given', () => {
    const q = openQueue({});
    expect(q.name).toMatch(/^tun\d+$/);
    q.close();
  });

  it('writes IPv6 back with its offload header: the kernel completes the checksum behind extension headers', async () => {
    // A packet written into an offloading TUN with a partial checksum (NEEDS_CSUM), forwarded to a TUN
    // without offloads: the kernel must complete the checksum where the header says, past the IPv6
    // header and its extension headers (csum_start), before it hands the packet over.
    const a = openQueue({ name: lab.linkName('t'), offload: true });
    const b = openQueue({ name: lab.linkName('t') });
    for (const q of [a, b]) {
      await ns.sysctl(`net.ipv6.conf.${q.name}.addr_gen_mode`, 1);
      await ns.sysctl(`net.ipv6.conf.${q.name}.disable_ipv6`, 0);
    }
    await ns.sysctl(`net.ipv6.conf.${a.name}.force_forwarding`, 1);
    a.isUp = true;
    b.isUp = true;
    await ns.exec('ip', ['-6', 'route', 'add', '2001:db8:2::/64', 'dev', b.name]);
    const got: Buffer[] = [];
    b.receive((count, arena, meta) => {
      for (let i = 0; i < count; i++)
        got.push(Buffer.from(arena.subarray(meta[i * 4]!, meta[i * 4]! + meta[i * 4 + 1]!)));
    });
    const src = Uint8Array.of(0x20, 1, 0xd, 0xb8, 0, 1, ...new Array(9).fill(0), 2);
    const dst = Uint8Array.of(0x20, 1, 0xd, 0xb8, 0, 2, ...new Array(9).fill(0), 5);
    const payload = Buffer.alloc(301, 7);
    const packets = [tcp6Partial(src, dst, payload), tcp6Partial(src, dst, payload, 16)];
    const { arena, meta } = packBatch(packets);
    meta[2] = 1; // NEEDS_CSUM, as read
    meta[6] = 1;
    expect(a.writeBatch(arena, meta, 0, 2)).toBe(2);
    await waitFor(() => got.length === 2, { what: 'both packets forwarded into the second TUN' });
    for (const [i, p] of got.entries()) {
      expect([...p.subarray(8, 40)], `packet ${i}: addresses`).toEqual([...src, ...dst]);
      expect(tcp6ChecksumOk(p, i === 0 ? 40 : 56), `packet ${i}: TCP checksum`).toBe(true);
    }
    a.close();
    b.close();
  });

  it('writes a batch, counting and skipping what the kernel refuses or lies outside the arena', async () => {
    const q = openQueue({ name: lab.linkName('t') });
    q.ipv4 = '198.18.11.1/24';
    q.isUp = true;
    const sink = ns.spawn('python3', [sinkScript, '198.18.11.1', '9001', '10']);
    await sink.waitForOutput('ready');
    const packets: Buffer[] = [];
    for (let i = 0; i < 10; i++)
      packets.push(udpPacket('198.18.11.2', '198.18.11.1', 5000 + i, 9001, Buffer.from([i])));
    packets.splice(3, 0, Buffer.from([0x00, 0x01, 0x02, 0x03])); // version 0: neither IPv4 nor IPv6
    const { arena, meta } = packBatch(packets);
    const bigMeta = new Int32Array(meta.length + 4);
    bigMeta.set(meta);
    bigMeta[meta.length] = arena.length - 2;
    bigMeta[meta.length + 1] = 100;
    expect(q.writeBatch(arena, bigMeta, 0, packets.length + 1)).toBe(packets.length + 1);
    await sink.waitForOutput('done 10');
    const st = q.stats();
    expect(st.txPackets).toBe(10);
    expect(st.txErrors).toBe(1);
    expect(st.txLastErrno).toBe(22); // EINVAL
    expect(st.txBadPacket).toBe(1);
    expect(codeOf(() => q.write(Buffer.from([0x10, 0, 0, 0])))).toBe('TUN_WRITE');
    q.close();
  });

  it('reports a deleted device once and stops reading', async () => {
    const q = openQueue({ name: lab.linkName('t') });
    q.isUp = true;
    const errors: unknown[] = [];
    q.receive(
      () => undefined,
      {},
      (err) => errors.push(err),
    );
    await ns.ip('link', 'del', 'dev', q.name);
    await waitFor(() => errors.length > 0, { what: 'the read error' });
    expect(isTunError(errors[0], 'TUN_CLOSED')).toBe(true);
    const wakeups = q.stats().rxWakeups;
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Measured over 50 ms: a level-triggered error left armed would wake us thousands of times.
    expect(q.stats().rxWakeups - wakeups).toBe(0);
    expect(errors.length).toBe(1);
    q.close();
  });

  describe('errors', () => {
    it('rejects bad names', () => {
      for (const name of ['a/b', 'x'.repeat(16), 'has space', '..', 'a:b']) {
        expect(codeOf(() => openQueue({ name }))).toBe('TUN_BAD_NAME');
      }
    });

    it('reports a busy single-queue device and a name taken by another device', async () => {
      const name = lab.linkName('t');
      const q = openQueue({ name });
      let caught: unknown;
      try {
        openQueue({ name });
      } catch (err) {
        caught = err;
      }
      expect(isTunError(caught, 'TUN_BUSY')).toBe(true);
      expect((caught as { errnoName?: string }).errnoName).toBe('EBUSY');
      expect(codeOf(() => openQueue({ name, multiQueue: true }))).toBe('TUN_BUSY');
      q.close();
      const pair = await lab.veth(ns, ns);
      expect(codeOf(() => openQueue({ name: pair.a }))).toBe('TUN_BUSY');
    });

    it('reports a namespace that does not exist', () => {
      expect(codeOf(() => TunQueue.open({ name: 'ohx', netns: 'oh-no-such-namespace' }))).toBe('TUN_NETNS');
    });

    it('reports a missing /dev/net/tun (child process in a mount namespace without it)', () => {
      const script = `
        const b = require(${JSON.stringify(addonPath)});
        try { new b.TunQueue({ name: 'ohnodev' }); console.log('opened'); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
      const r = spawnSync(
        'unshare',
        ['-m', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$0" -e "$1"', process.execPath, script],
        { encoding: 'utf8', timeout: 10_000 },
      );
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { code: string; message: string };
      expect(out.code).toBe('TUN_NO_DEVICE');
      expect(out.message).toContain('/dev/net/tun');
    });

    it('reports missing CAP_NET_ADMIN (child process without it)', () => {
      const script = `
        const b = require(${JSON.stringify(addonPath)});
        for (const make of [() => new b.TunQueue({ name: 'ohnoperm' }), () => new b.Sender({})]) {
          try { make(); console.log('opened'); }
          catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
        }`;
      const r = spawnSync(
        'setpriv',
        [
          '--inh-caps=-net_admin,-net_raw',
          '--bounding-set=-net_admin,-net_raw',
          process.execPath,
          '-e',
          script,
        ],
        { encoding: 'utf8', timeout: 10_000 },
      );
      expect(r.stderr).toBe('');
      const [tun, sender] = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { code: string; message: string });
      expect(tun?.code).toBe('TUN_PERMISSION');
      expect(tun?.message).toContain('CAP_NET_ADMIN');
      expect(sender?.code).toBe('TUN_PERMISSION');
      expect(sender?.message).toContain('CAP_NET_RAW');
    });

    it('rejects bad receive options', () => {
      const q = openQueue({ name: lab.linkName('t') });
      expect(codeOf(() => q.receive(() => undefined, { maxBatch: 0 }))).toBe('TUN_BAD_ARGUMENT');
      expect(codeOf(() => q.receive(() => undefined, { frameSize: 10 }))).toBe('TUN_BAD_ARGUMENT');
      expect(codeOf(() => q.receive(() => undefined, { maxBatch: 1e9 }))).toBe('TUN_BAD_ARGUMENT');
      expect(codeOf(() => q.receive(() => undefined, { maxBatch: 2.5 }))).toBe('TUN_BAD_ARGUMENT');
      expect(codeOf(() => q.resume())).toBe('TUN_BAD_ARGUMENT');
      q.close();
    });
  });
});

describe('Tun (convenience)', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it('opens configured, copies received packets, writes and releases', async () => {
    const ns = await quietNetns(lab);
    const tun = new Tun({ name: lab.linkName('c'), netns: ns.name, mtu: 1400, ipv4: '198.18.12.1/24' });
    try {
      expect(tun.mtu).toBe(1400);
      expect(tun.ipv4).toBe('198.18.12.1/24');
      expect(tun.isUp).toBe(true);
      const kept: Buffer[] = [];
      tun.onReceive((packet) => {
        kept.push(packet);
        const reply = echoReply(packet);
        if (reply) tun.write(reply);
      });
      const { stdout } = await ns.exec('ping', ['-c', '2', '-i', '0.05', '-W', '2', '198.18.12.9']);
      expect(stdout).toContain('2 received');
      // Copies stay intact after later batches reuse the arena.
      const requests = kept.filter((p) => p[9] === 1);
      expect(requests.length).toBe(2);
      expect(requests[0]!.readUInt16BE(26)).toBe(1); // ICMP sequence numbers 1, 2 (RFC 792)
      expect(requests[1]!.readUInt16BE(26)).toBe(2);
    } finally {
      tun.release();
      tun.release();
    }
  });

  it('closes the device when a configuration option is refused', async () => {
    const ns = await quietNetns(lab);
    const name = lab.linkName('c');
    expect(codeOf(() => new Tun({ name, netns: ns.name, mtu: 10 }))).toBe('TUN_MTU_RANGE');
    await waitForLinkGone(ns, name);
  });
});
