import { type Host, localHost } from '@onehost/kernel';
import { sendIcmp6 } from '@onehost/tun';
import { NEIGHBOR_ADVERT_LENGTH, parseIpv6, parseMac, writeNeighborAdvert } from '@onehost/wire';

/** The all-nodes multicast address (RFC 4291 §2.7.1): unsolicited advertisements go there (RFC 4861 §7.2.6). */
const ALL_NODES = 'ff02::1';
/** Neighbour discovery messages carry hop limit 255, or receivers drop them (RFC 4861 §7.1.2). */
const ND_HOP_LIMIT = 255;

/** Options for {@link advertiseClusterAddresses6}. */
export interface AdvertiseOptions {
  /** the IPv6 cluster addresses (RFC 5952 text) */
  vips6: readonly string[];
  /** the outside interfaces, each advertising every address with its own MAC */
  outside: readonly string[];
  /** rounds (default 3: MAX_NEIGHBOR_ADVERTISEMENT, RFC 4861 §10) */
  count?: number;
  /** between rounds (default 1000 ms: RetransTimer, RFC 4861 §7.2.6 and §10) */
  intervalMs?: number;
  /** reads the interfaces' MACs (default this namespace) */
  host?: Host;
  /** sends one ICMPv6 message (default `sendIcmp6` of `@onehost/tun`) */
  send?: (iface: string, destination: string, hopLimit: number, message: Uint8Array) => void;
  /** stops between rounds (the gateway is closing) */
  signal?: AbortSignal;
  /** told of each advertisement, sent or not (the gateway's metrics) */
  onResult?: (sent: boolean) => void;
}

/**
 * advertiseClusterAddresses6 sends unsolicited Neighbor Advertisements (RFC 4861 §7.2.6) for each IPv6
 * cluster address on each outside interface: to all nodes, with the interface's MAC as the target's
 * link-layer address, the Override flag (the gateway owns the address: a neighbour replaces what it
 * had cached, §7.2.5) and the Router flag as the kernel's own proxy answers have it (the host forwards
 * IPv6; a clear one would make hosts drop it as a router, §7.2.5). A neighbour that cached another
 * owner (a previous gateway) updates its entry at once instead of sending to the old one until its
 * reachability check fails. The kernel sends none for proxy NDP entries, which is how the gateway
 * answers for its cluster addresses (docs/gateway.md). `count` rounds, `intervalMs` apart. Resolves with
 * how many went out and the failures, each in words once (an interface without a MAC is one).
 */
export async function advertiseClusterAddresses6(
  o: AdvertiseOptions,
): Promise<{ sent: number; failed: string[] }> {
  const host = o.host ?? localHost;
  const send = o.send ?? sendIcmp6;
  const failed = new Set<string>();
  const messages: { iface: string; vip: string; message: Uint8Array }[] = [];
  for (const iface of o.outside) {
    const [link] = await host
      .ipJson<{ address?: string; link_type?: string }>('link', 'show', 'dev', iface)
      .catch(() => []);
    if (link?.link_type !== 'ether' || link.address === undefined) {
      failed.add(`${iface}: no Ethernet address to advertise`);
      continue;
    }
    const mac = parseMac(link.address);
    for (const vip of o.vips6) {
      const message = new Uint8Array(NEIGHBOR_ADVERT_LENGTH);
      writeNeighborAdvert(message, 0, parseIpv6(vip), mac, { router: true, override: true });
      messages.push({ iface, vip, message });
    }
  }
  let sent = 0;
  const rounds = o.count ?? 3;
  const aborted = () => o.signal?.aborted === true;
  for (let round = 0; round < rounds && !aborted(); round++) {
    if (round > 0) await pause(o.intervalMs ?? 1000, o.signal);
    if (aborted()) break;
    for (const m of messages) {
      try {
        send(m.iface, ALL_NODES, ND_HOP_LIMIT, m.message);
        sent++;
        o.onResult?.(true);
      } catch (e) {
        failed.add(`${m.vip} on ${m.iface}: ${(e as Error).message}`);
        o.onResult?.(false);
      }
    }
  }
  return { sent, failed: [...failed] };
}

/** pause waits `ms` (the protocol's spacing between rounds), or until `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
