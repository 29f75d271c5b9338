import { binding } from './native.js';

/** What {@link tcpRepairDetach} reads off a TCP socket (tcp_info and, once frozen, the queue sequences). */
export interface TcpRepairInfo {
  /** bytes sent and not yet acknowledged; when > 0 nothing was frozen (try again when the peer acked). */
  sendQueued: number;
  /** bytes received that the application has not read yet. */
  recvQueued: number;
  /** TCPI_OPT_* bits: 1 timestamps, 2 SACK, 4 window scaling. */
  options: number;
  /** the peer's window scale, and ours. */
  sndWscale: number;
  rcvWscale: number;
  /** the MSS we send with (the peer's MSS less options), and the one we receive. */
  sndMss: number;
  rcvMss: number;
  /** Linux TCP state (1 = established). */
  state: number;
  /** present when frozen: the next sequence number we send, the next we expect, our TSval clock now. */
  sndNxt?: number;
  rcvNxt?: number;
  tsNow?: number;
  /** when frozen with bytes unread (recvQueued > 0): those bytes (they end at rcvNxt). */
  recvData?: Buffer;
}

export const TCPI_OPT = { TIMESTAMPS: 1, SACK: 2, WSCALE: 4 } as const;

/**
 * tcpRepairDetach puts an established TCP socket (by file descriptor) in repair mode (TCP_REPAIR, needs
 * CAP_NET_ADMIN) and returns its sequence numbers, options and timestamp clock, so that another host can
 * continue the connection. Closing the socket afterwards sends nothing to the peer. When bytes are still
 * unacknowledged it freezes nothing and returns without `sndNxt`. Throws TUN_PERMISSION or TUN_CONFIG.
 */
export function tcpRepairDetach(fd: number): TcpRepairInfo {
  return binding.tcpRepairDetach(fd);
}

/**
 * setReceiveBuffer sets SO_RCVBUF of a socket (by file descriptor) and returns what the kernel granted
 * (twice the request). On a listening socket the accepted connections inherit it, and with it the most
 * their receive window opens. Throws TUN_CONFIG.
 */
export function setReceiveBuffer(fd: number, bytes: number): number {
  return binding.setReceiveBuffer(fd, bytes);
}
