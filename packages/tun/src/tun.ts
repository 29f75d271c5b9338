import { type TunOpenOptions, TunQueue } from './tun-queue.js';

/** Options for the convenience {@link Tun}. */
export interface TunOptions extends TunOpenOptions {
  mtu?: number;
  /** "a.b.c.d/len" */
  ipv4?: string;
  /** Bring the device up (default true when ipv4 is given). */
  up?: boolean;
}

/**
 * Tun is the tuntap2-like convenience surface (name, mtu, ipv4, isUp, onReceive, write, release) over
 * one TunQueue. It copies each received packet into its own Buffer; hot paths use TunQueue batches.
 */
export class Tun {
  readonly queue: TunQueue;

  /** Opens the device and applies the options. Throws like TunQueue.open and the setters. */
  constructor(options: TunOptions = {}) {
    this.queue = TunQueue.open(options);
    try {
      if (options.mtu !== undefined) this.queue.mtu = options.mtu;
      if (options.ipv4 !== undefined) this.queue.ipv4 = options.ipv4;
      if (options.up ?? options.ipv4 !== undefined) this.queue.isUp = true;
    } catch (err) {
      this.queue.close();
      throw err;
    }
  }

  get name(): string {
    return this.queue.name;
  }
  get mtu(): number {
    return this.queue.mtu;
  }
  set mtu(value: number) {
    this.queue.mtu = value;
  }
  get ipv4(): string | undefined {
    return this.queue.ipv4;
  }
  set ipv4(cidr: string) {
    this.queue.ipv4 = cidr;
  }
  get isUp(): boolean {
    return this.queue.isUp;
  }
  set isUp(up: boolean) {
    this.queue.isUp = up;
  }

  /** onReceive calls `callback` with a copy of every packet read. Replaces an earlier callback. */
  onReceive(callback: (packet: Buffer) => void): this {
    this.queue.receive((count, arena, meta) => {
      for (let i = 0; i < count; i++) {
        const off = meta[i * 4]!;
        callback(Buffer.from(arena.subarray(off, off + meta[i * 4 + 1]!)));
      }
    });
    return this;
  }

  /** write sends one packet into the kernel; false means "would block". Throws TUN_WRITE if refused. */
  write(packet: Uint8Array): boolean {
    return this.queue.write(packet);
  }

  /** release closes the device. Safe to call twice. */
  release(): void {
    this.queue.close();
  }
}
