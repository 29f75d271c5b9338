import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { isIPv4, isIPv6 } from 'node:net';
import type { GatewayConfig } from './config.js';

/**
 * The cluster addresses' BGP announcement (docs/gateway.md, "Announcement"): the gateway tells the
 * host's bgpd (FRR) to announce them once its data path and control plane are ready, and to withdraw
 * them before it stops or when it is drained, so the router in front sends new flows elsewhere first.
 * A dead gateway host is withdrawn by the router itself (BFD), not here. A dead gateway process on a
 * live host (kill -9, a crash) is withdrawn by its withdraw guard: a small child that waits for the
 * gateway's end of a pipe to close and then runs the withdrawal (see {@link spawnGuard}).
 */

/** AnnounceState: `off` when the gateway has no `announce` configured. */
export type AnnounceState = 'announced' | 'withdrawn' | 'off';

/** Announcer is what the gateway (and its registry, drain) calls. */
export interface Announcer {
  /** announce makes bgpd announce the cluster addresses; retried every second until it works. */
  announce(): Promise<void>;
  /**
   * withdraw makes bgpd withdraw them, then waits `withdrawGraceMs` (the router moves new flows away
   * while this gateway still forwards). Throws when bgpd refused.
   */
  withdraw(): Promise<void>;
  state(): AnnounceState;
}

/** Exec runs vtysh; resolves with its stdout, throws with its stderr. */
export type Exec = (file: string, args: string[]) => Promise<string>;

const execVtysh: Exec = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err)
        reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || stdout.trim() || err.message}`));
      else resolve(stdout);
    });
  });

type Log = { info(o: object, m: string): void; warn(o: object, m: string): void };

/** Guard is an armed withdraw guard; disarm ends it without its withdrawal. */
export interface Guard {
  disarm(): void;
}

/** GuardStarter arms a guard that runs `file args` once this process is gone. */
export type GuardStarter = (file: string, args: string[]) => Guard;

/**
 * spawnGuard starts `sh` in a process group of its own, reading a pipe from this process: when the
 * pipe closes (this process ended, however), `cat` returns and the shell runs the withdrawal. It ignores
 * SIGTERM, SIGINT and SIGHUP, so a service manager ending the gateway's group does not end it before
 * it has withdrawn (it exits as soon as vtysh has). disarm kills the group with SIGKILL.
 */
export const spawnGuard: GuardStarter = (file, args) => {
  const child: ChildProcess = spawn(
    'sh',
    ['-c', 'trap "" TERM INT HUP; cat >/dev/null; exec "$@"', 'onehost-withdraw-guard', file, ...args],
    { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
  );
  child.on('error', () => undefined);
  child.stdin?.on('error', () => undefined);
  // neither the child nor its pipe keeps this process alive
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return {
    disarm: () => {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      child.stdin?.destroy();
    },
  };
};

const RETRY_MS = 1000;

/** OFF is the announcer of a gateway without `announce`: nothing to do, state `off`. */
export const OFF: Announcer = {
  announce: async () => undefined,
  withdraw: async () => undefined,
  state: () => 'off',
};

/**
 * BgpAnnouncer adds and removes `network <address>/32` (IPv6: `/128`, in the IPv6 unicast address family)
 * in bgpd's `router bgp <asn>` through vtysh. Calls are applied one after the other in the order made.
 */
export class BgpAnnouncer implements Announcer {
  private current: 'announced' | 'withdrawn' = 'withdrawn';
  /** what the last call asked for: a failed announce is retried only while it still is */
  private wanted: 'announced' | 'withdrawn' = 'withdrawn';
  private chain: Promise<unknown> = Promise.resolve();
  private retry: NodeJS.Timeout | undefined;
  /** armed while announced: withdraws if this process ends without withdrawing */
  private guard: Guard | null = null;

  constructor(
    private readonly cfg: NonNullable<GatewayConfig['announce']>,
    /** the cluster addresses, either family */
    private readonly addresses: string[],
    private readonly log: Log,
    private readonly exec: Exec = execVtysh,
    private readonly startGuard: GuardStarter = spawnGuard,
  ) {}

  state(): AnnounceState {
    return this.current;
  }

  announce(): Promise<void> {
    this.wanted = 'announced';
    return this.queue(async () => {
      if (this.wanted !== 'announced') return;
      try {
        await this.networks(false);
        this.current = 'announced';
        this.guard ??= this.startGuard(this.cfg.vtysh, this.vtyshArgs(true));
        this.log.info({ addresses: this.addresses, asn: this.cfg.asn }, 'announced');
      } catch (e) {
        // bgpd not (yet) running: the addresses go out once it is
        this.log.warn({ problem: (e as Error).message }, 'announce: bgpd refused; trying again');
        this.retry ??= setTimeout(() => {
          this.retry = undefined;
          if (this.wanted === 'announced') void this.announce();
        }, RETRY_MS);
        this.retry.unref();
      }
    });
  }

  withdraw(): Promise<void> {
    this.wanted = 'withdrawn';
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
    return this.queue(async () => {
      if (this.current === 'withdrawn') return;
      await this.networks(true);
      this.current = 'withdrawn';
      // withdrawn by this process: nothing left for the guard (a failed withdrawal keeps it armed)
      this.guard?.disarm();
      this.guard = null;
      this.log.info({ addresses: this.addresses, graceMs: this.cfg.withdrawGraceMs }, 'withdrawn');
      // still forwarding while the router applies the withdrawal
      await new Promise((r) => setTimeout(r, this.cfg.withdrawGraceMs));
    });
  }

  private queue(step: () => Promise<void>): Promise<void> {
    const next = this.chain.then(step);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private vtyshArgs(remove: boolean): string[] {
    const family = (af: 'ipv4' | 'ipv6', bits: number, list: string[]) =>
      list.length === 0
        ? []
        : [
            `address-family ${af} unicast`,
            ...list.map((a) => `${remove ? 'no ' : ''}network ${a}/${bits}`),
            'exit-address-family',
          ];
    const cmds = [
      'configure terminal',
      `router bgp ${this.cfg.asn}`,
      ...family(
        'ipv4',
        32,
        this.addresses.filter((a) => isIPv4(a)),
      ),
      // RFC 4760 multiprotocol NLRI: over an IPv4 session too, with the link's IPv6 address as next hop
      ...family(
        'ipv6',
        128,
        this.addresses.filter((a) => isIPv6(a)),
      ),
    ];
    return ['--vty_socket', this.cfg.vtySocket, ...cmds.flatMap((c) => ['-c', c])];
  }

  private async networks(remove: boolean): Promise<void> {
    const out = await this.exec(this.cfg.vtysh, this.vtyshArgs(remove));
    // vtysh prints bgpd's refusals ("% …") and may still exit 0
    const refused = out.split('\n').find((l) => l.startsWith('%'));
    if (refused !== undefined) throw new Error(`bgpd: ${refused}`);
  }
}

/** makeAnnouncer: OFF without `announce`, else a BgpAnnouncer of the cluster addresses (both families). */
export function makeAnnouncer(
  cfg: GatewayConfig,
  log: Log,
  exec?: Exec,
  startGuard?: GuardStarter,
): Announcer {
  if (cfg.announce === null) return OFF;
  const addresses = cfg.switch.clusterAddresses
    .map((c) => String((c as { address?: unknown }).address ?? ''))
    .filter((a) => isIPv4(a) || isIPv6(a));
  return new BgpAnnouncer(cfg.announce, addresses, log, exec, startGuard);
}
