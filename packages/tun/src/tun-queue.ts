import { badArgument, readError, type TunError } from './errors.js';
import { binding, type NativeTunQueue, type TunQueueStats } from './native.js';

/** Int32 entries per packet in a batch's metadata: offset, length, flags, segment size. */
export const META_STRIDE = binding.META_STRIDE;

/** Options for opening a TUN queue. */
export interface TunOpenOptions {
  /** Interface name (≤ 15 bytes); empty or absent lets the kernel pick tunN. */
  name?: string;
  /** Open with IFF_MULTI_QUEUE; every queue of a device must agree. */
  multiQueue?: boolean;
  /**
   * Open with IFF_VNET_HDR and TSO4 + checksum offload: reads may be TSO super-packets (meta[4i+2] =
   * virtio flags | GSO type << 8, bit 0 = the TCP/UDP checksum field holds only the pseudo header's sum;
   * meta[4i+3] = segment size), and writeBatch hands packets back the same way (IPv4 or IPv6: the
   * checksum start is found behind IPv6's extension headers). Read with a frameSize of at least 65546.
   */
  offload?: boolean;
  /** Create the device (and its control socket) in this network namespace (name or path). */
  netns?: string;
  /** Character device to open (default /dev/net/tun). */
  devicePath?: string;
}

/** Options for batched receive. */
export interface ReceiveOptions {
  /** Most packets per batch (default 64). */
  maxBatch?: number;
  /** Room reserved per read; a longer packet is dropped and counted (default 65536, the largest MTU + 1). */
  frameSize?: number;
}

/**
 * BatchHandler receives one batch: packet i is `arena[meta[4i] .. meta[4i] + meta[4i+1])`. The arena
 * and meta views are the same objects every time; their contents are valid until the handler returns,
 * or, if the handler calls `pause()`, until `resume()`.
 */
export type BatchHandler = (count: number, arena: Buffer, meta: Int32Array) => void;

/**
 * TunQueue is one queue of a TUN device (IFF_TUN | IFF_NO_PI): batched nonblocking reads watched by
 * libuv with one callback per batch, batched writes with an EAGAIN contract, and device configuration.
 */
export class TunQueue {
  readonly name: string;
  /** Receive arena (allocated by `receive`). */
  arena: Buffer = Buffer.alloc(0);
  /** Receive metadata, META_STRIDE int32 per packet (allocated by `receive`). */
  meta: Int32Array = new Int32Array(0);
  private released = false;

  private constructor(private readonly native: NativeTunQueue) {
    this.name = native.name();
  }

  /**
   * open opens one queue of a TUN device, creating the device if needed. Throws a TunError:
   * TUN_NO_DEVICE, TUN_PERMISSION, TUN_BAD_NAME, TUN_BUSY, TUN_NETNS or TUN_OPEN_FAILED.
   */
  static open(options: TunOpenOptions = {}): TunQueue {
    return new TunQueue(new binding.TunQueue(options));
  }

  /**
   * receive starts batched reads. `handler(count, arena, meta)` runs once per batch of 1..maxBatch
   * packets, through napi_make_callback (microtasks run after it). A read error that ends the queue
   * (the device was deleted) goes to `onError` and reading stops. Throws TUN_BAD_ARGUMENT for bad
   * options, TUN_CLOSED after release.
   */
  receive(handler: BatchHandler, options: ReceiveOptions = {}, onError?: (err: TunError) => void): void {
    const maxBatch = options.maxBatch ?? 64;
    const frameSize = options.frameSize ?? 65536;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) {
      throw badArgument(`maxBatch must be an integer from 1 to 4096 (got ${maxBatch})`);
    }
    if (!Number.isInteger(frameSize) || frameSize < 68 || frameSize > 1 << 20) {
      throw badArgument(`frameSize must be an integer from 68 to ${1 << 20} (got ${frameSize})`);
    }
    // Packed layout: each packet starts 16-byte aligned; a read needs frameSize bytes of room.
    const arena = Buffer.allocUnsafeSlow(maxBatch * Math.min(frameSize, 2048) + frameSize);
    const meta = new Int32Array(maxBatch * META_STRIDE);
    this.arena = arena;
    this.meta = meta;
    const name = this.name;
    this.native.startReading(arena, meta, maxBatch, frameSize, (count) => {
      if (count >= 0) {
        handler(count, arena, meta);
      } else if (onError) {
        onError(readError(name, -count));
      }
    });
  }

  /** pause stops reading; the arena keeps its contents until `resume`. Throws TUN_BAD_ARGUMENT before `receive`. */
  pause(): void {
    this.native.setReading(false);
  }

  /** resume restarts reading after `pause`. Throws TUN_BAD_ARGUMENT before `receive`. */
  resume(): void {
    this.native.setReading(true);
  }

  /**
   * write hands one IPv4/IPv6 packet to the kernel. Returns false when the kernel would block (call
   * `onWritable`); throws TUN_WRITE when the kernel refuses the packet, TUN_CLOSED after release.
   */
  write(packet: Uint8Array): boolean {
    return this.native.write(packet);
  }

  /**
   * writeBatch writes packets [start, end) described by `meta` (META_STRIDE per packet) from `arena`.
   * Returns the index of the first packet not written: `end` when all were taken, less when the
   * kernel would block (resume from there after `onWritable`). Refused and out-of-arena packets are
   * counted (txErrors, txBadPacket) and skipped. Throws only for wrong argument types or after release.
   */
  writeBatch(arena: Uint8Array, meta: Int32Array, start: number, end: number): number {
    return this.native.writeBatch(arena, meta, start, end);
  }

  /** onWritable calls `callback` once, when the queue can take writes again. */
  onWritable(callback: () => void): void {
    this.native.onWritable(callback);
  }

  /** mtu reads or sets the device MTU; setting throws TUN_MTU_RANGE outside 68..65535. */
  get mtu(): number {
    return this.native.getMtu();
  }
  set mtu(value: number) {
    this.native.setMtu(value);
  }

  /** ipv4 reads ("a.b.c.d/len", or undefined when none) or replaces the primary IPv4 address. */
  get ipv4(): string | undefined {
    const got = this.native.getIpv4();
    return got ? `${got[0]}/${got[1]}` : undefined;
  }
  set ipv4(cidr: string) {
    const [address, len] = cidr.split('/');
    this.native.setIpv4(address ?? '', len === undefined ? 32 : Number(len));
  }

  /** isUp reads or sets the administrative state (IFF_UP). */
  get isUp(): boolean {
    return this.native.isUp();
  }
  set isUp(up: boolean) {
    this.native.setUp(up);
  }

  /** ifindex is the device's interface index. Throws TUN_CLOSED after release. */
  get ifindex(): number {
    return this.native.ifindex();
  }

  /** stats returns the queue's counters. */
  stats(): TunQueueStats {
    return this.native.stats();
  }

  /** closed is true after `close`. */
  get closed(): boolean {
    return this.released;
  }

  /** close releases the queue; the device goes away with its last queue. Safe to call twice. */
  close(): void {
    this.released = true;
    this.native.close();
  }

  /** nativeQueue is the addon object (for forwardC). */
  get nativeQueue(): NativeTunQueue {
    return this.native;
  }
}
