import type { Cluster } from '../cluster.js';

/** Counters is one scrape of the gateway's /metrics: `name{labels}` → value. */
export type Counters = Map<string, number>;

/** A scrape reads every kernel counter (libnftables): seconds on a busy machine, so a generous bound. */
const SCRAPE_TIMEOUT_S = 15;

/**
 * scrapeGateway reads the gateway's Prometheus page from inside the gateway host, plus the kernel's
 * counters of the gateway host's TUN devices (as `tun_device_*`): packets the kernel could not queue to
 * the app (the TUN queue was full) are counted there, not by the app. Throws when it cannot (after
 * SCRAPE_TIMEOUT_S).
 */
export async function scrapeGateway(c: Cluster): Promise<Counters> {
  const url = `http://${c.lab.addresses.gateway.inside}:9400/metrics`;
  const [metrics, links] = await Promise.all([
    c.lab.exec('gw', 'curl', ['-sS', '--max-time', String(SCRAPE_TIMEOUT_S), url]),
    c.lab.exec('gw', 'ip', ['-j', '-s', 'link', 'show', 'type', 'tun']),
  ]);
  const out: Counters = new Map();
  for (const line of metrics.stdout.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    const v = Number(line.slice(at + 1));
    if (Number.isFinite(v)) out.set(line.slice(0, at), v);
  }
  const devices = JSON.parse(links.stdout) as Array<{
    stats64: { tx: { packets: number; dropped: number } };
  }>;
  out.set(
    'tun_device_tx_packets',
    devices.reduce((a, d) => a + d.stats64.tx.packets, 0),
  );
  out.set(
    'tun_device_tx_dropped',
    devices.reduce((a, d) => a + d.stats64.tx.dropped, 0),
  );
  return out;
}

/** GatewayWork is what the gateway did during one run, from two scrapes. */
export interface GatewayWork {
  /** packets read from the TUN per second */
  tunPps: number;
  /** packets per TUN batch (one JS callback each) */
  perBatch: number;
  /** packets per sendmmsg call */
  perSend: number;
  /** drops by reason, only the non-zero ones; `tun_queue_full` are the kernel's (TUN device tx_dropped) */
  drops: Record<string, number>;
  /**
   * packets each routing function (or class no entry decides) decided, by who decided: the kernel's fast
   * path or user space (the switch, behind the TUN); only functions with packets
   */
  functions: Record<string, Split>;
  /** packets the kernel left to user space, by class: passed to the TUN or dropped by its guard; non-zero only */
  userSpace: Record<string, { passed: number; guardDrops: number }>;
}

/** Split is one function's packets by who decided them. */
export interface Split {
  kernel: number;
  user: number;
}

/** labels reads the labels of a counter key `name{a="x",b="y"}`; undefined when the name differs. */
function labels(key: string, name: string): Record<string, string> | undefined {
  if (!key.startsWith(`${name}{`)) return undefined;
  return Object.fromEntries(
    [...key.slice(name.length).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
  );
}

/** gatewayWork compares two scrapes taken `seconds` apart. */
export function gatewayWork(a: Counters, b: Counters, seconds: number): GatewayWork {
  const d = (k: string) => (b.get(k) ?? 0) - (a.get(k) ?? 0);
  const rx = d('onehost_io{side="tun",counter="rxPackets"}');
  const batches = d('onehost_io{side="tun",counter="rxBatches"}');
  const sent = d('onehost_io{side="sender",counter="packets"}');
  const calls = d('onehost_io{side="sender",counter="calls"}');
  const drops: Record<string, number> = {};
  for (const k of b.keys()) {
    const m = /^onehost_drops_total\{reason="([^"]+)"\}$/.exec(k);
    if (m && d(k) > 0) drops[m[1]!] = d(k);
  }
  if (d('tun_device_tx_dropped') > 0) drops.tun_queue_full = d('tun_device_tx_dropped');
  const functions: Record<string, Split> = {};
  const userSpace: GatewayWork['userSpace'] = {};
  for (const k of b.keys()) {
    const v = d(k);
    if (v <= 0) continue;
    const f = labels(k, 'onehost_function_packets_total');
    if (f?.function !== undefined && (f.path === 'kernel' || f.path === 'user')) {
      functions[f.function] ??= { kernel: 0, user: 0 };
      functions[f.function]![f.path] += v;
    }
    const u = labels(k, 'onehost_user_space_packets_total');
    if (u?.class !== undefined && (u.outcome === 'passed' || u.outcome === 'guard_drop')) {
      userSpace[u.class] ??= { passed: 0, guardDrops: 0 };
      userSpace[u.class]![u.outcome === 'passed' ? 'passed' : 'guardDrops'] += v;
    }
  }
  return {
    tunPps: rx / seconds,
    perBatch: batches > 0 ? rx / batches : 0,
    perSend: calls > 0 ? sent / calls : 0,
    drops,
    functions,
    userSpace,
  };
}
