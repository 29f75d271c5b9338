import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import {
  countRules,
  ip,
  ipJson,
  isMarkRule,
  JournalFile,
  localHost,
  type MarkRule,
  readSysctl,
  ruleArgs,
  writeSysctl,
} from '@onehost/kernel';
import {
  isTunError,
  PacketSender,
  type SenderStats,
  type TunError,
  TunQueue,
  type TunQueueStats,
} from '@onehost/tun';
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import { BYPASS_MARK, SPLICE_MARK } from '../nft.js';
import { ROUTE_PROTO } from '../routes.js';

/** The routing table SPLICE_MARK selects; its one route is `default dev <tun>`. */
export const SPLICE_TABLE = 7472;
/** Priority of the rule `fwmark SPLICE_MARK lookup SPLICE_TABLE`: after `local` (0), before `main` (32766). */
export const SPLICE_RULE_PRIORITY = 100;
/** Default UDP port for gateway → agent messages (docs/splice.md). */
export const SPLICE_PORT = 7472;
/** Default name of the agent's TUN device. */
export const SPLICE_TUN = 'ohsplice0';

const RULE = { priority: SPLICE_RULE_PRIORITY, fwmark: SPLICE_MARK, table: SPLICE_TABLE } as const;
const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;
/** What writeTun did with a packet. */
const WRITTEN = 1;
const FULL = 0;
const REFUSED = -1;
/** MTUs tried for the TUN, largest first. */
const MTUS = [65535, 65521, 16384, 9000];

/** Options of {@link SpliceIo.open}. Always this process's network namespace. */
export interface SpliceIoOptions {
  /** The state file applyNodeConfig created in this process; SpliceIo records its changes there too. */
  stateFile: string;
  /** The node's internal address: the UDP socket binds to it. */
  listenAddress: string;
  /** Internal addresses of the gateways: the only sources whose datagrams are delivered. */
  gateways: readonly string[];
  /** UDP port (default 7472). */
  port?: number;
  /** TUN device name (default "ohsplice0"). */
  tunName?: string;
  logger: Logger;
}

/** Callbacks of a {@link SpliceIo}; they run on the event loop and must not throw. */
export interface SpliceIoHandlers {
  /** One UDP datagram from a gateway, type byte first. `payload` is valid only during the call. */
  onMessage(payload: Buffer, from: string): void;
  /**
   * A batch of packets the node's kernel sent from a cluster address with a capture port (TunQueue
   * batch contract: packet i is `arena[meta[4i] .. meta[4i] + meta[4i+1])`, valid until the call
   * returns). Their source port is the node's own, also for MOUNT ports the agent restores otherwise.
   */
  onOutbound(count: number, arena: Buffer, meta: Int32Array): void;
  /** The TUN or the UDP socket failed for good (e.g. the device was deleted); close and open again. */
  onError?(err: Error): void;
}

/** Counters of a {@link SpliceIo}. */
export interface SpliceIoStats {
  /** Datagrams from a gateway, handed to onMessage. */
  messages: number;
  /** Datagrams from any other source: dropped. */
  notFromGateway: number;
  /** Packets handed to the node's stack. */
  injected: number;
  /** inject found the TUN full (the packet is dropped; TCP retransmits). */
  injectBlocked: number;
  /** inject's packet refused by the kernel (not IPv4/IPv6). */
  injectRefused: number;
  /** sendOut's packets handed to the raw socket (the kernel may still refuse one: sender.errors). */
  sentOut: number;
  /** sendOut found the socket buffer full (the packet is dropped; TCP retransmits). */
  sendOutBlocked: number;
  tun: TunQueueStats;
  sender: SenderStats;
}

function checkOptions(o: SpliceIoOptions): { port: number; tunName: string } {
  if (!isIPv4(o.listenAddress))
    throw new ConfigError('listenAddress', `not an IPv4 address: ${o.listenAddress}`);
  if (o.gateways.length === 0) throw new ConfigError('gateways', 'at least one gateway address is needed');
  o.gateways.forEach((g, i) => {
    if (!isIPv4(g)) throw new ConfigError(`gateways[${i}]`, `not an IPv4 address: ${g}`);
  });
  const port = o.port ?? SPLICE_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError('port', `not a port: ${port}`);
  const tunName = o.tunName ?? SPLICE_TUN;
  if (!IFNAME.test(tunName)) throw new ConfigError('tunName', `not an interface name: ${tunName}`);
  return { port, tunName };
}

async function linkExists(name: string): Promise<boolean> {
  return (await ipJson<{ ifname: string }>('link', 'show')).some((l) => l.ifname === name);
}

/** countRules6 counts the IPv6 rules that look exactly like `r` (none on a host without IPv6). */
async function countRules6(r: MarkRule): Promise<number> {
  return (await localHost.rules6().catch(() => [])).filter((x) => isMarkRule(x, r)).length;
}

/** deleteRules removes the agent's rule, of both families. */
async function deleteRules(): Promise<void> {
  for (let n = await countRules(RULE); n > 0; n--) await ip('rule', 'del', ...ruleArgs(RULE));
  for (let n = await countRules6(RULE); n > 0; n--) await ip('-6', 'rule', 'del', ...ruleArgs(RULE));
}

/**
 * SpliceIo is the node agent's packet I/O for delayed binding (docs/splice.md); the Splicer
 * (`@onehost/splice`) is the logic between its calls. It owns:
 *
 * - a TUN device (no address, rp_filter 0, MTU 65535; IPv6 forwarding on it alone, or IPv6 off on a
 *   kernel without force_forwarding): `inject` writes a packet into the node's stack as if it arrived
 *   from the client; what the kernel sends into it arrives at `onOutbound`;
 * - the rule `fwmark SPLICE_MARK lookup SPLICE_TABLE` and `default dev <tun>` in that table, for both
 *   families: the agent's
 *   nftables table (with `splice` in the config, see `nft.ts`) marks what the node sends on a capture port
 *   from a cluster address, and the kernel routes it again, into the TUN;
 * - a raw socket with SO_MARK = BYPASS_MARK: `sendOut` sends a complete IPv4 packet by the normal routes,
 *   neither captured again nor tracked by conntrack (an IPv6 one goes back through the TUN);
 * - a UDP socket on the internal address: datagrams from the gateways go to `onMessage`, others are
 *   dropped and counted.
 *
 * Open it after applyNodeConfig, in the same process: every kernel change is recorded in the same state
 * file first, so `restore()` (clean exit, or the next start after a crash) removes the rule, the route
 * and the device. Close it before applying again or restoring: both undo the whole state file, this
 * included, and would take the device away under it. The capture ports are part of the NodeConfig
 * (`splice.capturePorts`, applied with `updateNftables`), because the agent's table is rendered whole.
 */
export class SpliceIo {
  private readonly gateways: Set<string>;
  private readonly outMeta = new Int32Array(4);
  private readonly counters = {
    messages: 0,
    notFromGateway: 0,
    injected: 0,
    injectBlocked: 0,
    injectRefused: 0,
    sentOut: 0,
    sendOutBlocked: 0,
  };
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly queue: TunQueue,
    private readonly sender: PacketSender,
    private readonly udp: Socket,
    private readonly log: Logger,
    gateways: readonly string[],
  ) {
    this.gateways = new Set(gateways);
  }

  /**
   * open sets everything up and starts delivering to `handlers`. Throws a ConfigError for bad options,
   * an Error when the state file is missing or not this process's, or the device already exists; a
   * TunError or a CommandError when the kernel refuses; the UDP socket's error (EADDRINUSE,
   * EADDRNOTAVAIL). On failure what was set up is taken down again (the records stay; undoing them is
   * harmless).
   */
  static async open(options: SpliceIoOptions, handlers: SpliceIoHandlers): Promise<SpliceIo> {
    const { port, tunName } = checkOptions(options);
    const log = options.logger;
    const journal = await JournalFile.open(options.stateFile);
    const undo: Array<() => unknown> = [];
    try {
      if (await linkExists(tunName)) throw new Error(`device ${tunName} already exists and is not ours`);
      await journal.record({ kind: 'link', name: tunName });
      // With offloads the node's TCP hands over TSO super-packets (one per up to 64 KiB) and the agent
      // hands them back the same way: per-packet costs are paid once per super-packet.
      const queue = TunQueue.open({ name: tunName, offload: true });
      undo.push(() => queue.close());
      // Injected packets come from outside addresses whose route leaves by another device; the kernel
      // applies the larger of `all` and the device's value (applyNodeConfig has set `all` to 0 already).
      await writeSysctl(`net/ipv4/conf/${tunName}/rp_filter`, '0');
      // The agent writes the node's rewritten packets back into the TUN and the kernel forwards them to
      // the client: forwarding for packets from this device only, and their source is a local address
      // (a cluster address), which the kernel takes for a martian unless accept_local is on. Both go
      // with the device.
      await writeSysctl(`net/ipv4/conf/${tunName}/forwarding`, '1');
      await writeSysctl(`net/ipv4/conf/${tunName}/accept_local`, '1');
      const all = await readSysctl('net/ipv4/conf/all/rp_filter');
      if (all !== '0') {
        await journal.record({ kind: 'sysctl', key: 'net/ipv4/conf/all/rp_filter', previous: all });
        await writeSysctl('net/ipv4/conf/all/rp_filter', '0');
      }
      // IPv6 (delayed binding to an IPv6 cluster address): the rewritten packets are forwarded from the
      // TUN as IPv4's are, and IPv6 forwards only with `all` on, or with the device's force_forwarding
      // (Linux 6.17), which goes with the device and changes nothing else on the node. Without it, IPv6
      // stays off on the device. Before it is up either way: no link-local address, so no router
      // solicitations, DAD or MLD reports among the captured packets.
      const v6conf = `net/ipv6/conf/${tunName}`;
      const ipv6 = existsSync(`/proc/sys/${v6conf}/force_forwarding`);
      if (ipv6) {
        await localHost.noIpv6Autoconf(tunName);
        await writeSysctl(`${v6conf}/accept_ra`, '0');
        await writeSysctl(`${v6conf}/force_forwarding`, '1');
        // a node whose new devices start without IPv6 (default.disable_ipv6) would refuse its route
        await writeSysctl(`${v6conf}/disable_ipv6`, '0');
      } else if (existsSync(`/proc/sys/${v6conf}`)) {
        await writeSysctl(`${v6conf}/disable_ipv6`, '1');
        log.warn(
          'this kernel has no per-device IPv6 forwarding (force_forwarding, Linux 6.17): TCP MOUNT/NFS to an IPv6 cluster address cannot be handed over to this node',
        );
      }
      const mtu = MTUS.find((m) => {
        try {
          queue.mtu = m;
          return true;
        } catch (err) {
          if (isTunError(err, 'TUN_MTU_RANGE')) return false;
          throw err;
        }
      });
      // A queue long enough for a window of full-size segments: when the agent falls behind for a moment,
      // the default 500 drops, and every drop costs the node's connection a recovery.
      await ip('link', 'set', 'dev', tunName, 'txqueuelen', '10000');
      queue.isUp = true;
      await journal.record({ kind: 'table-route', table: SPLICE_TABLE, dst: '0.0.0.0/0', dev: tunName });
      await ip(
        'route',
        'replace',
        'default',
        'dev',
        tunName,
        'table',
        String(SPLICE_TABLE),
        'proto',
        ROUTE_PROTO,
      );
      await journal.record({ kind: 'rule', ...RULE });
      if ((await countRules(RULE)) === 0) await ip('rule', 'add', ...ruleArgs(RULE));
      undo.push(deleteRules);
      if (ipv6) {
        // the route goes with the device; the rule is recorded to be removed. A node with IPv6 off
        // (all.disable_ipv6) refuses them: it hands over IPv4 connections only.
        const route = ['default', 'dev', tunName, 'table', String(SPLICE_TABLE), 'proto', ROUTE_PROTO];
        try {
          await ip('-6', 'route', 'replace', ...route);
          await journal.record({ kind: 'rule-args', args: ruleArgs(RULE), family: 6 });
          if ((await countRules6(RULE)) === 0) await ip('-6', 'rule', 'add', ...ruleArgs(RULE));
        } catch (err) {
          log.warn(
            { err: err instanceof Error ? err.message : String(err) },
            'no IPv6 route into the splice TUN: TCP MOUNT/NFS to an IPv6 cluster address cannot be handed over to this node',
          );
        }
      }
      const sender = PacketSender.open({ mark: BYPASS_MARK });
      undo.push(() => sender.close());
      const udp = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
      undo.push(() => udp.close());
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: options.listenAddress, port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const io = new SpliceIo(queue, sender, udp, log, options.gateways);
      io.start(handlers);
      log.info(
        {
          tun: tunName,
          mtu: mtu ?? queue.mtu,
          listen: `${options.listenAddress}:${port}`,
          gateways: options.gateways,
        },
        'splice I/O open',
      );
      return io;
    } catch (err) {
      for (const step of undo.reverse()) {
        try {
          await step();
        } catch {
          // Best effort: restore() undoes whatever is left.
        }
      }
      throw err;
    }
  }

  private start(handlers: SpliceIoHandlers): void {
    const fail = (err: Error) => {
      this.log.error({ err }, 'splice I/O failed');
      handlers.onError?.(err);
    };
    this.queue.receive(
      (count, arena, meta) => handlers.onOutbound(count, arena, meta),
      { maxBatch: 64, frameSize: 65_536 + 64 },
      (err: TunError) => fail(err),
    );
    this.udp.on('message', (msg, from) => {
      if (!this.gateways.has(from.address)) {
        if (++this.counters.notFromGateway === 1) {
          this.log.warn(
            { from: from.address },
            'splice datagram from something other than a gateway dropped',
          );
        }
        return;
      }
      this.counters.messages++;
      handlers.onMessage(msg, from.address);
    });
    this.udp.on('error', fail);
  }

  /** tunName is the TUN device's name. */
  get tunName(): string {
    return this.queue.name;
  }

  /** port is the UDP port the agent listens on. */
  get port(): number {
    return this.udp.address().port;
  }

  /**
   * inject hands one IPv4 packet to the node's stack through the TUN, as if it came from its source.
   * Returns false when it was not taken (TUN full, refused by the kernel, or closed): dropped and counted.
   */
  inject(packet: Uint8Array): boolean {
    if (this.closing !== null) return false;
    const r = this.writeTun(packet);
    if (r === WRITTEN) this.counters.injected++;
    else if (r === FULL) this.counters.injectBlocked++;
    else this.counters.injectRefused++;
    return r === WRITTEN;
  }

  /** writeTun writes one packet into the TUN: WRITTEN, FULL, or REFUSED by the kernel. */
  private writeTun(packet: Uint8Array): number {
    try {
      return this.queue.write(packet) ? WRITTEN : FULL;
    } catch (err) {
      if (!isTunError(err, 'TUN_WRITE')) throw err;
      return REFUSED;
    }
  }

  /**
   * sendOut sends one complete IPv4 packet by the node's normal routes with BYPASS_MARK (the kernel
   * fills the header checksum; the TCP checksum must be right). Returns false when it was not taken
   * (socket buffer full, or closed): dropped and counted. Packets the kernel refuses (no route,
   * malformed) count in `stats().sender`. An IPv6 packet goes back through the TUN, which forwards it
   * like the node's rewritten packets (the raw socket is IPv4's).
   */
  sendOut(packet: Uint8Array): boolean {
    if (this.closing !== null) return false;
    if (packet.length > 0 && packet[0]! >>> 4 === 6) {
      const sent = this.writeTun(packet) === WRITTEN;
      if (sent) this.counters.sentOut++;
      else this.counters.sendOutBlocked++;
      return sent;
    }
    this.outMeta[1] = packet.length;
    if (this.sender.sendIp(packet, this.outMeta, 0, 1) === 1) {
      this.counters.sentOut++;
      return true;
    }
    this.counters.sendOutBlocked++;
    return false;
  }

  /**
   * forwardBatch hands packets [0, count) back to the kernel through the TUN, with their offload
   * metadata (meta[4i+2], meta[4i+3] as read), to be forwarded to the client by the normal routes: TSO
   * super-packets stay whole until the interface that sends them. Returns how many were taken.
   */
  forwardBatch(arena: Uint8Array, meta: Int32Array, count: number): number {
    if (this.closing !== null || count === 0) return 0;
    const n = this.queue.writeBatch(arena, meta, 0, count);
    this.counters.sentOut += n;
    this.counters.sendOutBlocked += count - n;
    return n;
  }

  /**
   * tellGateway sends one datagram from the agent's UDP port to a gateway's (the same port). A copy:
   * the send completes after this call returns (the address goes through a lookup first), and callers
   * reuse their buffer; once per connection, not per packet.
   */
  tellGateway(address: string, datagram: Uint8Array): void {
    if (this.closing !== null) return;
    this.udp.send(Buffer.from(datagram), this.port, address);
  }

  /** stats returns the counters, with the TUN's and the raw socket's. */
  stats(): SpliceIoStats {
    return { ...this.counters, tun: this.queue.stats(), sender: this.sender.stats() };
  }

  /**
   * close stops delivering, closes the sockets and the TUN (its route goes with it) and deletes the
   * rule. The state file keeps the records (undoing them again is harmless). Safe to call twice. Throws
   * a CommandError when the rule cannot be deleted.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = (async () => {
        const name = this.queue.name;
        this.queue.close();
        this.sender.close();
        await new Promise<void>((resolve) => this.udp.close(() => resolve()));
        // The device goes with its last file descriptor; a child process forked just now may hold a
        // copy until it execs, so delete it outright.
        if (await linkExists(name)) await ip('link', 'del', name).catch(() => undefined);
        await deleteRules();
      })();
    }
    return this.closing;
  }
}
