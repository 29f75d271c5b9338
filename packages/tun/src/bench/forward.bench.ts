// Forwarding benchmark: a bounded UDP flood into a TUN, forwarded as VXLAN to a counting receiver by
// (a) the addon's C loop and (b) the JS decide path. Prints, never asserts. Last line:
// tun-forward-pps c=<n> js=<n> ratio=<js/c>
import { PerformanceObserver } from 'node:perf_hooks';
import { Lab, type Netns, requireRoot } from '@onehost/testkit';
import { flood, forwardC, PacketSender, TunQueue } from '../index.js';

const ROUNDS = 4;
const FLOOD_MS = 1200; // 2 modes x 4 rounds x 1.2 s = 9.6 s of flood at most
const DESTINATIONS = 4;
const MAX_BATCH = 64;

function vxlanPrefix(vni: number): Buffer {
  // RFC 7348 section 5: flags (I), reserved, VNI, reserved; then the inner Ethernet header.
  const p = Buffer.alloc(22);
  p[0] = 0x08;
  p.writeUIntBE(vni, 4, 3);
  p.set([0x02, 0, 0, 0, 0, 0x42], 8);
  p.set([0x02, 0, 0, 0, 0, 0x01], 14);
  p.writeUInt16BE(0x0800, 20);
  return p;
}

async function sinkCount(sink: Netns): Promise<number> {
  const { stdout } = await sink.exec('nft', ['-j', 'list', 'counter', 'netdev', 'oh', 'c']);
  const entry = (JSON.parse(stdout).nftables as Array<{ counter?: { packets: number } }>).find(
    (e) => e.counter,
  );
  return entry?.counter?.packets ?? 0;
}

function startFlood(gw: Netns) {
  return flood({
    netns: gw.name,
    source: '203.0.113.5',
    destination: '198.18.20.2',
    flows: 256,
    size: 18,
    count: 100_000_000,
    durationMs: FLOOD_MS,
  });
}

let gcCount = 0;
let jsGcs = 0;
new PerformanceObserver((list) => {
  gcCount += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });

/** Round is one measurement: packets per second delivered to the sink, and offered by the flood. */
interface Round {
  pps: number;
  offered: number;
}

/** runC forwards with the addon's C loop during one flood; returns delivered packets per second. */
async function runC(gw: Netns, sink: Netns, queue: TunQueue, sender: PacketSender): Promise<Round> {
  const before = await sinkCount(sink);
  const loop = forwardC(queue, sender, { durationMs: FLOOD_MS + 200, maxBatch: MAX_BATCH });
  const f = await startFlood(gw);
  await loop;
  const delivered = (await sinkCount(sink)) - before;
  return { pps: (delivered / f.elapsedMs) * 1000, offered: (f.sent / f.elapsedMs) * 1000 };
}

/** runJs forwards with the JS path (one callback per batch, JS picks a destination per packet). */
async function runJs(gw: Netns, sink: Netns, queue: TunQueue, sender: PacketSender): Promise<Round> {
  const dst = new Int32Array(MAX_BATCH);
  let pending = 0;
  let next = 0;
  let arenaRef: Buffer = queue.arena;
  let metaRef: Int32Array = queue.meta;
  // Backpressure: stop reading, finish the batch when the socket has room, read again.
  const resume = () => {
    next = sender.sendUdp(arenaRef, metaRef, next, pending, dst);
    if (next < pending) sender.onWritable(resume);
    else queue.resume();
  };
  queue.receive(
    (count, arena, meta) => {
      for (let i = 0; i < count; i++) {
        const off = meta[i * 4]!;
        const ihl = (arena[off]! & 0x0f) << 2;
        const dport = (arena[off + ihl + 2]! << 8) | arena[off + ihl + 3]!;
        dst[i] = dport % DESTINATIONS;
      }
      next = sender.sendUdp(arena, meta, 0, count, dst);
      if (next < count) {
        pending = count;
        arenaRef = arena;
        metaRef = meta;
        queue.pause();
        sender.onWritable(resume);
      }
    },
    { maxBatch: MAX_BATCH },
  );
  const before = await sinkCount(sink);
  // Garbage collections while JS forwards: evidence that the decide path allocates (almost) nothing.
  const gcBefore = gcCount;
  const f = await startFlood(gw);
  jsGcs += gcCount - gcBefore;
  const delivered = (await sinkCount(sink)) - before;
  queue.pause();
  return { pps: (delivered / f.elapsedMs) * 1000, offered: (f.sent / f.elapsedMs) * 1000 };
}

async function main(): Promise<void> {
  requireRoot();
  const lab = new Lab();
  const closers: Array<() => void> = [];
  try {
    const gw = await lab.netns();
    const sink = await lab.netns();
    for (const ns of [gw, sink]) {
      await ns.sysctl('net.ipv6.conf.all.disable_ipv6', 1);
      await ns.sysctl('net.ipv6.conf.default.disable_ipv6', 1);
    }
    const pair = await lab.veth(gw, sink, { aAddress: '198.18.1.1/24', bAddress: '198.18.1.2/24' });
    await sink.exec('nft', ['-f', '-'], {
      input: [
        'table netdev oh {',
        '  counter c {',
        '  }',
        '  chain in {',
        `    type filter hook ingress device "${pair.b}" priority 0;`,
        '    udp dport 4789 counter name "c" drop',
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    await gw.exec('ping', ['-c', '1', '-W', '2', '198.18.1.2']);
    const queue = TunQueue.open({ name: lab.linkName('t'), netns: gw.name });
    closers.push(() => queue.close());
    queue.ipv4 = '198.18.20.1/24';
    queue.isUp = true;
    const sender = PacketSender.open({ netns: gw.name });
    closers.push(() => sender.close());
    sender.setDestinations(
      Array.from({ length: DESTINATIONS }, (_, i) => ({
        address: '198.18.1.2',
        port: 4789,
        prefix: vxlanPrefix(100 + i),
      })),
    );
    const c: number[] = [];
    const js: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which mode goes first so that drift in the machine's load hits both alike.
      let rc: Round;
      let rj: Round;
      if (round % 2 === 1) {
        rc = await runC(gw, sink, queue, sender);
        rj = await runJs(gw, sink, queue, sender);
      } else {
        rj = await runJs(gw, sink, queue, sender);
        rc = await runC(gw, sink, queue, sender);
      }
      c.push(rc.pps);
      js.push(rj.pps);
      console.log(
        `round ${round}: c=${Math.round(rc.pps)} js=${Math.round(rj.pps)} pkt/s ` +
          `(flood offered c=${Math.round(rc.offered)} js=${Math.round(rj.offered)} pkt/s)`,
      );
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const mid = s.length >> 1;
      return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
    };
    const spread = (xs: number[]) => `${Math.round(Math.min(...xs))}..${Math.round(Math.max(...xs))}`;
    const st = sender.stats();
    console.log(
      `spread c=${spread(c)} js=${spread(js)}; sender calls=${st.calls} wouldBlock=${st.wouldBlock} errors=${st.errors}; ` +
        `tun rxTruncated=${queue.stats().rxTruncated}; GCs (incl. idle-time scavenges) during JS rounds=${jsGcs}`,
    );
    const mc = median(c);
    const mj = median(js);
    console.log(`tun-forward-pps c=${Math.round(mc)} js=${Math.round(mj)} ratio=${(mj / mc).toFixed(3)}`);
  } finally {
    for (const close of closers) close();
    await lab.cleanup();
  }
}

await main();
