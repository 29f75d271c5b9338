import { createRequire } from 'node:module';

/** Counters of one TUN queue (see README "Counters"). */
export interface TunQueueStats {
  rxPackets: number;
  rxBytes: number;
  rxBatches: number;
  /** Packets longer than frameSize: dropped. */
  rxTruncated: number;
  rxErrors: number;
  rxWakeups: number;
  txPackets: number;
  txBytes: number;
  /** Times a write met EAGAIN (the caller resumes on onWritable). */
  txWouldBlock: number;
  /** writeBatch entries whose offset/length lay outside the arena: skipped. */
  txBadPacket: number;
  /** Packets the kernel refused (e.g. EINVAL for a packet that is neither IPv4 nor IPv6): skipped. */
  txErrors: number;
  txLastErrno: number;
}

/** Counters of a sender (see README "Counters"). */
export interface SenderStats {
  packets: number;
  bytes: number;
  /** sendmmsg system calls. */
  calls: number;
  wouldBlock: number;
  badDestination: number;
  badPacket: number;
  errors: number;
  lastErrno: number;
}

export interface NativeTunQueue {
  name(): string;
  ifindex(): number;
  startReading(
    arena: Uint8Array,
    meta: Int32Array,
    maxBatch: number,
    frameSize: number,
    callback: (count: number) => void,
  ): void;
  setReading(on: boolean): void;
  write(packet: Uint8Array): boolean;
  writeBatch(arena: Uint8Array, meta: Int32Array, start: number, end: number): number;
  onWritable(callback: () => void): void;
  getMtu(): number;
  setMtu(mtu: number): void;
  getIpv4(): [string, number] | null;
  setIpv4(address: string, prefixLength: number): void;
  isUp(): boolean;
  setUp(up: boolean): void;
  stats(): TunQueueStats;
  close(): void;
}

export interface NativeSender {
  setDestinations(addresses: string[], ports: number[], prefixes: Array<Uint8Array | null>): void;
  sendUdp(
    arena: Uint8Array,
    meta: Int32Array,
    start: number,
    end: number,
    dst: Int32Array,
    sport: Int32Array | null,
  ): number;
  sendIp(arena: Uint8Array, meta: Int32Array, start: number, end: number): number;
  onWritable(callback: () => void): void;
  flowPort(packet: Uint8Array): number;
  stats(): SenderStats;
  close(): void;
}

/** Options of the bounded flood generator (benchmarks and tests). */
export interface FloodOptions {
  netns?: string;
  source?: string;
  destination: string;
  /** Distinct (source port, destination port) pairs cycled through (1..4096, default 64). */
  flows?: number;
  srcPortBase?: number;
  dstPortBase?: number;
  /** UDP payload bytes (default 18). */
  size?: number;
  /** Stop after this many packets. */
  count: number;
  /** Stop after this long (at most 10 000 ms). */
  durationMs: number;
  /** Packets per second; 0 or absent = as fast as the kernel takes them. */
  ratePps?: number;
}

export interface Binding {
  TunQueue: new (options: {
    name?: string;
    multiQueue?: boolean;
    offload?: boolean;
    netns?: string;
    devicePath?: string;
  }) => NativeTunQueue;
  Sender: new (options: {
    netns?: string;
    source?: string;
    ttl?: number;
    portMin?: number;
    portMax?: number;
    sendBuffer?: number;
    mark?: number;
  }) => NativeSender;
  flood(options: FloodOptions): Promise<{ sent: number; errors: number; elapsedMs: number }>;
  forwardC(
    queue: NativeTunQueue,
    sender: NativeSender,
    options: { durationMs: number; maxBatch?: number },
  ): Promise<{ packets: number; batches: number }>;
  tcpRepairDetach(fd: number): import('./tcp-repair.js').TcpRepairInfo;
  setReceiveBuffer(fd: number, bytes: number): number;
  sendIcmp6(iface: string, destination: string, hopLimit: number, message: Uint8Array, netns?: string): void;
  META_STRIDE: number;
}

const require = createRequire(import.meta.url);

/** The compiled addon (built by node-gyp at install time). */
export const binding = require('../build/Release/onehost_tun.node') as Binding;
