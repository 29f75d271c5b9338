export { isTunError, type TunError, type TunErrorCode } from './errors.js';
export { sendIcmp6 } from './icmp6.js';
export { binding, type FloodOptions, type SenderStats, type TunQueueStats } from './native.js';
export { type Destination, PacketSender, type SenderOptions } from './sender.js';
export { setReceiveBuffer, TCPI_OPT, type TcpRepairInfo, tcpRepairDetach } from './tcp-repair.js';
export { Tun, type TunOptions } from './tun.js';
export {
  type BatchHandler,
  META_STRIDE,
  type ReceiveOptions,
  type TunOpenOptions,
  TunQueue,
} from './tun-queue.js';

import { binding, type FloodOptions } from './native.js';
import type { PacketSender } from './sender.js';
import type { TunQueue } from './tun-queue.js';

/**
 * flood sends a bounded UDP flood (count packets or durationMs, at most 10 s) from a raw socket in a
 * namespace, cycling through `flows` port pairs; for tests and benchmarks. Rejects never; throws
 * TUN_BAD_ARGUMENT for unbounded or bad options.
 */
export function flood(options: FloodOptions): Promise<{ sent: number; errors: number; elapsedMs: number }> {
  return binding.flood(options);
}

/**
 * forwardC runs the C forwarding loop (batch read from the queue, destination = destination port
 * modulo table size, sendmmsg) on a worker thread for durationMs (≤ 10 s); the benchmark's baseline.
 * Throws TUN_BUSY when the queue is reading or either object is closed or in use.
 */
export function forwardC(
  queue: TunQueue,
  sender: PacketSender,
  options: { durationMs: number; maxBatch?: number },
): Promise<{ packets: number; batches: number }> {
  return binding.forwardC(queue.nativeQueue, sender.nativeSender, options);
}
