// The live fuzz's seeds: real packets (packages/wire/fixtures, captured from curl, iperf3, ping, the
// Linux NFS client and libnfs against ganesha) re-addressed to the cluster address, one or more per
// routing function of the lab's gateway.yaml, plus ICMP errors quoting what the cluster sends.
import { readFileSync } from 'node:fs';
import { checksum, IPPROTO, parseIpv4, pseudoHeaderSum, writeIpv4Header } from '@onehost/wire';

const FIXTURES = new URL('../../../packages/wire/fixtures/', import.meta.url);

/** A seed packet and where the fields the gateway parses sit in it. */
export interface Seed {
  name: string;
  /** the whole IPv4 packet (20-byte header) to the cluster address, checksums right */
  bytes: Uint8Array;
  protocol: number;
  /** offset of the first byte after the L4 header (TCP, UDP, ICMP's 8) */
  payload: number;
  /** offset of the ONC RPC call (after the record mark over TCP); -1 when it carries none */
  rpc: number;
  /** relative share of the stream */
  weight: number;
}

/** hexPackets reads a fixture file: `#` lines are provenance, every other line one IPv4 packet. */
function hexPackets(name: string): Uint8Array[] {
  return readFileSync(new URL(name, FIXTURES), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => new Uint8Array(Buffer.from(l, 'hex')));
}

const put16 = (b: Uint8Array, o: number, v: number): void => {
  b[o] = v >>> 8;
  b[o + 1] = v & 0xff;
};
const put32 = (b: Uint8Array, o: number, v: number): void => {
  put16(b, o, v >>> 16);
  put16(b, o + 2, v & 0xffff);
};

/** l4Checksum rewrites the TCP, UDP or ICMP checksum of an IPv4 packet with a 20-byte header. */
export function l4Checksum(b: Uint8Array, len: number): void {
  const protocol = b[9]!;
  const l4 = len - 20;
  if (protocol === IPPROTO.ICMP) {
    put16(b, 22, 0);
    put16(b, 22, checksum(b, 20, l4));
    return;
  }
  const at = protocol === IPPROTO.TCP ? 36 : protocol === IPPROTO.UDP ? 26 : -1;
  if (at < 0 || len < at + 2) return;
  const src = ((b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!) >>> 0;
  const dst = ((b[16]! << 24) | (b[17]! << 16) | (b[18]! << 8) | b[19]!) >>> 0;
  put16(b, at, 0);
  const c = checksum(b, 20, l4, pseudoHeaderSum(src, dst, protocol, l4));
  // RFC 768: a computed UDP checksum of 0 goes out as all ones (0 means "none")
  put16(b, at, protocol === IPPROTO.UDP && c === 0 ? 0xffff : c);
}

/** readdress points a captured packet at `dst`:`dport` from `src`:`sport` and fixes its checksums. */
function readdress(p: Uint8Array, src: number, dst: number, sport: number, dport: number): Uint8Array {
  const b = new Uint8Array(p);
  put32(b, 12, src);
  put32(b, 16, dst);
  put16(b, 20, sport);
  put16(b, 22, dport);
  put16(b, 10, 0);
  put16(b, 10, checksum(b, 0, 20));
  l4Checksum(b, b.length);
  return b;
}

/** udpOf wraps a payload in IPv4/UDP. */
function udpOf(payload: Uint8Array, src: number, dst: number, sport: number, dport: number): Uint8Array {
  const b = new Uint8Array(28 + payload.length);
  writeIpv4Header(b, 0, { src, dst, protocol: IPPROTO.UDP, payloadLength: 8 + payload.length });
  put16(b, 20, sport);
  put16(b, 22, dport);
  put16(b, 24, 8 + payload.length);
  b.set(payload, 28);
  l4Checksum(b, b.length);
  return b;
}

/**
 * icmpError builds an ICMP error (RFC 792) from `src` to the cluster address quoting a packet the
 * cluster sent to `src` (its header and first 8 bytes: the ports the switch routes the error by).
 */
function icmpError(
  type: number,
  code: number,
  rest: number,
  src: number,
  vip: number,
  protocol: number,
  clusterPort: number,
  clientPort: number,
): Uint8Array {
  const b = new Uint8Array(20 + 8 + 20 + 8);
  writeIpv4Header(b, 0, { src, dst: vip, protocol: IPPROTO.ICMP, payloadLength: 36 });
  b[20] = type;
  b[21] = code;
  put32(b, 24, rest);
  writeIpv4Header(b, 28, { src: vip, dst: src, protocol, payloadLength: protocol === IPPROTO.TCP ? 20 : 8 });
  put16(b, 48, clusterPort);
  put16(b, 50, clientPort);
  put32(b, 52, protocol === IPPROTO.TCP ? 0x11223344 : (8 << 16) | 0);
  l4Checksum(b, b.length);
  return b;
}

/** echo builds an ICMP echo (request 8, reply 0) with identifier `id`. */
function echo(type: number, id: number, src: number, vip: number): Uint8Array {
  const b = new Uint8Array(20 + 8 + 32);
  writeIpv4Header(b, 0, { src, dst: vip, protocol: IPPROTO.ICMP, payloadLength: 40 });
  b[20] = type;
  put16(b, 24, id);
  put16(b, 26, 1);
  for (let i = 0; i < 32; i++) b[28 + i] = i;
  l4Checksum(b, b.length);
  return b;
}

/** The cluster ports of infra/lab/gateway.yaml, for the mutation that moves a packet to another entry. */
export const CLUSTER_PORTS = [80, 443, 5201, 2222, 53, 111, 20048, 2049] as const;

/**
 * buildCorpus returns the seeds, from source `src` (the mutator re-sources them) to `vip`. One seed per
 * function at least: round robin (tcp/80) and Maglev (tcp/443) SYN, ACK and data; fixed (tcp/2222,
 * udp/5201); udp-flow (udp/53); portmap, MOUNT and NFS calls over UDP and TCP (and replies, which the
 * gateway must refuse); ICMP errors quoting TCP and UDP; echo requests and replies; VXLAN from outside.
 */
export function buildCorpus(vip: string, src = '203.0.113.128'): Seed[] {
  const d = parseIpv4(vip);
  const s = parseIpv4(src);
  const seeds: Seed[] = [];
  const add = (name: string, bytes: Uint8Array, weight: number, rpc = -1): void => {
    const protocol = bytes[9]!;
    const l4 = protocol === IPPROTO.TCP ? (bytes[32]! >>> 4) << 2 : 8;
    seeds.push({ name, bytes, protocol, payload: 20 + l4, rpc, weight });
  };
  const curl = hexPackets('ip/tcp-curl.hex');
  // client → server only: SYN, ACK, GET, ACKs and FIN (every other packet is the server's)
  const fromClient = curl.filter((p) => p[12] === curl[0]![12] && p[15] === curl[0]![15]);
  for (const port of [80, 443, 2222]) {
    fromClient.forEach((p, i) => {
      add(`tcp/${port} curl#${i}`, readdress(p, s, d, 40000 + i, port), port === 80 ? 4 : 2);
    });
  }
  const iperf = hexPackets('ip/udp-iperf3.hex').filter((p) => p[15] === 2);
  iperf.forEach((p, i) => {
    add(`udp/5201 iperf3#${i}`, readdress(p, s, d, 39000, 5201), 1);
    add(`udp/53 iperf3#${i}`, readdress(p, s, d, 39000, 53), 2);
  });
  const dns = Uint8Array.from(
    Buffer.from('123401000001000000000000076578616d706c6503636f6d0000010001', 'hex'),
  );
  add('udp/53 dns query', udpOf(dns, s, d, 5353, 53), 3);
  for (const name of [
    'mnt-call-tcp',
    'mnt-export-call-tcp',
    'nfs3-access-call-tcp',
    'nfs3-fsinfo-call-tcp',
    'nfs3-getattr-call-tcp',
    'nfs3-lookup-call-tcp',
    'nfs3-null-call-tcp',
    'nfs3-read-call-tcp',
    'nfs3-readdirplus-call-tcp',
    'pmap-dump-call-tcp',
    'pmap-getport-call-tcp',
    'pmap-getport-reply-tcp',
    'mnt-reply-tcp',
  ]) {
    const p = hexPackets(`rpc/${name}.hex`)[0]!;
    const port = name.startsWith('nfs3') ? 2049 : name.startsWith('mnt') ? 20048 : 111;
    const reply = name.includes('reply');
    const tcp = readdress(p, s, d, 800 + seeds.length, port);
    const payload = 20 + ((tcp[32]! >>> 4) << 2);
    add(`tcp/${port} ${name}`, tcp, reply ? 1 : 3, payload + 4);
    // the same call over UDP: without the record mark (RFC 5531 §11)
    const udp = udpOf(tcp.subarray(payload + 4), s, d, 900 + seeds.length, port);
    add(`udp/${port} ${name.replace(/-tcp$/, '-udp')}`, udp, reply ? 1 : 4, 28);
  }
  const mnt = hexPackets('rpc/mnt-call-udp.hex')[0]!;
  add('udp/20048 mnt-call-udp', readdress(mnt, s, d, 700, 20048), 4, 28);
  const vx = hexPackets('ip/vxlan.hex')[0]!;
  add('udp/4789 vxlan', readdress(vx, s, d, 4789, 4789), 1);
  // ICMP errors about what the cluster sent (RFC 792; frag needed carries the next-hop MTU, RFC 1191)
  for (const [type, code, rest] of [
    [3, 4, 1280],
    [3, 3, 0],
    [3, 1, 0],
    [11, 0, 0],
    [12, 0, 0x08000000],
  ] as const) {
    add(`icmp ${type}/${code} quoting tcp/80`, icmpError(type, code, rest, s, d, IPPROTO.TCP, 80, 40000), 2);
    add(`icmp ${type}/${code} quoting udp/53`, icmpError(type, code, rest, s, d, IPPROTO.UDP, 53, 39000), 1);
  }
  add('icmp echo request', echo(8, 0x1234, s, d), 1);
  // an echo reply routes by its identifier's port block (a node's ping to the outside)
  add('icmp echo reply', echo(0, 33000, s, d), 2);
  return seeds;
}
