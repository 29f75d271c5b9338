import { binding } from './native.js';

/**
 * sendIcmp6 sends one ICMPv6 message (`message`: type onwards, checksum left 0) to `destination` out of
 * `iface` with hop limit `hopLimit`, from a raw socket opened for the call: the kernel picks the source
 * address (for a link-scoped destination the interface's link-local, RFC 6724 §5), computes the checksum
 * over the pseudo-header (RFC 3542 §3.1) and does not loop a multicast copy back to this host. For the
 * few messages the gateway writes itself (unsolicited Neighbor Advertisements, RFC 4861 §7.2.6: hop
 * limit 255, §7.1), never per packet. `netns`: in that network namespace (a name or a path), not this
 * process's. Throws TUN_BAD_ARGUMENT (no such interface, a bad address or size), TUN_NETNS,
 * TUN_PERMISSION (no CAP_NET_RAW) or TUN_SEND (the kernel refused, with `errno`).
 */
export function sendIcmp6(
  iface: string,
  destination: string,
  hopLimit: number,
  message: Uint8Array,
  netns?: string,
): void {
  if (netns === undefined) binding.sendIcmp6(iface, destination, hopLimit, message);
  else binding.sendIcmp6(iface, destination, hopLimit, message, netns);
}
