import type { Etcd3, Lease, Watcher } from 'etcd3';
import { ControlError } from './control-error.js';
import { type Logger, silentLogger } from './logger.js';
import type { EtcdKeys } from './store/etcd-layout.js';

/*
 * The gateway registry: which gateways serve the cluster, as each one describes itself. On the etcd
 * store each gateway keeps its record under P gateways/<name>, bound to a short lease, so a gateway
 * that dies leaves the registry within the lease's TTL; every gateway reads the same keys and answers
 * ListGateways the same. With the embedded store the registry is this gateway alone.
 */

export type GatewayHealth = 'starting' | 'ready' | 'draining';
const HEALTHS: readonly string[] = ['starting', 'ready', 'draining'];

/** GatewayRecord is one gateway's entry (gateway.proto, GatewayInfo). */
export interface GatewayRecord {
  name: string;
  /** its control listener, host:port */
  address: string;
  /** "kernel" or "tun" */
  datapath: string;
  /** "announced" | "withdrawn" | "off" */
  announcement: string;
  health: GatewayHealth;
  appliedRevision: number;
  switchVersion: number;
  startedUnixMs: number;
  updatedUnixMs: number;
}

/** GatewayEntry is a record as listed: with its drain flag and why it is stale ('' when not). */
export interface GatewayEntry extends GatewayRecord {
  drained: boolean;
  stale: string;
}

export interface GatewayList {
  gateways: GatewayEntry[];
  /** the newest revision of the store's members and exports (0: embedded) */
  storeRevision: number;
}

/**
 * Announcer is the gateway's announcement of the cluster addresses (BGP), injected by the wiring: the
 * registry reports its state and, when an operator drains the gateway, asks it to withdraw.
 */
export interface Announcer {
  /** "announced" | "withdrawn" | "off" */
  announcementState(): string;
  /** withdraw (true) or announce again (false); may be absent (nothing to withdraw) */
  drain?(drained: boolean): void | Promise<void>;
}

/** NO_ANNOUNCER is the default: nothing is announced, a drain only changes the reported health. */
export const NO_ANNOUNCER: Announcer = { announcementState: () => 'off' };

/** GatewaySelf is what the gateway says of itself at each check. */
export interface GatewaySelf {
  ready: boolean;
  appliedRevision: number;
  switchVersion: number;
}

export interface GatewayRegistryOptions {
  name: string;
  address: string;
  datapath: string;
  /** read at each check (on `changed` and once a second) */
  self: () => GatewaySelf;
  announcer?: Announcer;
  /** the least time between two writes of the record (default 1000 ms) */
  minWriteIntervalMs?: number;
  now?: () => number;
  logger?: Logger;
}

/** GatewayRegistry is the registry as one gateway sees and feeds it. */
export interface GatewayRegistry {
  /** start registers this gateway (and, on etcd, follows its drain flag); resolves once registered. */
  start(): Promise<void>;
  /** changed says the record may have changed: it is written soon, at most once a second. */
  changed(): void;
  /** list reads every registered gateway, by name. */
  list(): Promise<GatewayList>;
  /** setDrained sets or lifts `name`'s drain flag; ControlError NOT_FOUND when it is not registered. */
  setDrained(name: string, drained: boolean): Promise<void>;
  /** close removes this gateway's record (revokes its lease). Safe twice. */
  close(): Promise<void>;
}

/** a record whose applied revision lags the store's and that has not changed for this long is stale */
export const STALE_AFTER_MS = 3000;

/**
 * staleness says why a record is stale, or '' when it is not: its applied revision lags the store's
 * newest change and it has not been rewritten for STALE_AFTER_MS (a live gateway rewrites it within a
 * second of applying a change). Uses the reader's clock against the writer's: keep them in step.
 */
export function staleness(r: GatewayRecord, storeRevision: number, now: number): string {
  const idle = now - r.updatedUnixMs;
  if (r.appliedRevision >= storeRevision || idle <= STALE_AFTER_MS) return '';
  return `applied revision ${r.appliedRevision} behind the store's ${storeRevision} for ${Math.round(idle / 1000)} s`;
}

/**
 * readGatewayRecord checks a stored record; throws Error naming `key` and the field at fault (a newer
 * gateway's extra fields are ignored).
 */
export function readGatewayRecord(key: string, value: string): GatewayRecord {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(value) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${key}: not JSON: ${(err as Error).message}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${key}: not an object`);
  const str = (f: string): string => {
    if (typeof o[f] !== 'string') throw new Error(`${key}: ${f}: must be a string`);
    return o[f] as string;
  };
  const num = (f: string): number => {
    const v = o[f];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw new Error(`${key}: ${f}: must be a whole number ≥ 0`);
    return v;
  };
  const health = str('health');
  if (!HEALTHS.includes(health)) throw new Error(`${key}: health: must be one of ${HEALTHS.join(', ')}`);
  return {
    name: str('name'),
    address: str('address'),
    datapath: str('datapath'),
    announcement: str('announcement'),
    health: health as GatewayHealth,
    appliedRevision: num('appliedRevision'),
    switchVersion: num('switchVersion'),
    startedUnixMs: num('startedUnixMs'),
    updatedUnixMs: num('updatedUnixMs'),
  };
}

/**
 * RecordKeeper computes this gateway's record and decides when to write it: on a change only, at most
 * once per `minWriteIntervalMs` (the first change after a quiet spell at once), and checks once per
 * interval for changes nobody signalled (the announcement, the applied revision).
 */
abstract class RecordKeeper implements GatewayRegistry {
  protected readonly log: Logger;
  protected readonly now: () => number;
  protected readonly announcer: Announcer;
  protected readonly startedUnixMs: number;
  protected drained = false;
  protected closed = false;
  private readonly intervalMs: number;
  /** the last record written, without updatedUnixMs; '' forces the next write */
  private written = '';
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;
  /** records written (tests: bounded writes) */
  writes = 0;

  constructor(protected readonly opts: GatewayRegistryOptions) {
    this.now = opts.now ?? Date.now;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'gateway-registry' });
    this.announcer = opts.announcer ?? NO_ANNOUNCER;
    this.intervalMs = opts.minWriteIntervalMs ?? 1000;
    this.startedUnixMs = this.now();
  }

  /** record is this gateway's record now. */
  record(): GatewayRecord {
    const s = this.opts.self();
    return {
      name: this.opts.name,
      address: this.opts.address,
      datapath: this.opts.datapath,
      announcement: this.announcer.announcementState(),
      health: this.drained ? 'draining' : s.ready ? 'ready' : 'starting',
      appliedRevision: s.appliedRevision,
      switchVersion: s.switchVersion,
      startedUnixMs: this.startedUnixMs,
      updatedUnixMs: this.now(),
    };
  }

  async start(): Promise<void> {
    await this.check();
    this.poll = setInterval(() => void this.check(), this.intervalMs);
    this.poll.unref();
  }

  changed(): void {
    void this.check();
  }

  /** rewrite forgets what was written: the next check writes (a new lease holds nothing). */
  protected rewrite(): void {
    this.written = '';
    void this.check();
  }

  /**
   * check writes the record when it changed and the last write is old enough, else schedules itself;
   * a check during a write waits for it and looks again (so start() resolves once registered).
   */
  protected async check(): Promise<void> {
    while (this.inflight !== null) await this.inflight;
    if (this.closed) return;
    let r: GatewayRecord;
    try {
      r = this.record();
    } catch (err) {
      // an injected announcer that throws must not end the gateway: the next check tries again
      this.log.error({ problem: (err as Error).message }, 'could not describe this gateway');
      return;
    }
    const key = JSON.stringify({ ...r, updatedUnixMs: 0 });
    if (key === this.written) return;
    const wait = this.lastWriteAt + this.intervalMs - this.now();
    if (wait > 0) {
      if (this.timer === null) {
        this.timer = setTimeout(() => {
          this.timer = null;
          void this.check();
        }, wait);
        this.timer.unref();
      }
      return;
    }
    this.lastWriteAt = this.now();
    const write = this.put(r).then(
      () => {
        this.written = key;
        this.writes++;
      },
      (err: Error) => {
        // tried again at the next check (once a second)
        this.log.warn({ problem: err.message }, 'could not write the gateway record');
      },
    );
    this.inflight = write;
    try {
      await write;
    } finally {
      this.inflight = null;
    }
  }

  /** stopChecks ends the timers. */
  protected stopChecks(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.poll !== null) clearInterval(this.poll);
  }

  /** applyDrain acts on this gateway's drain flag: the announcer withdraws, health says draining. */
  protected async applyDrain(drained: boolean): Promise<void> {
    if (drained === this.drained) return;
    this.drained = drained;
    this.log.info({ drained }, drained ? 'gateway drained' : 'gateway drain lifted');
    try {
      await this.announcer.drain?.(drained);
    } catch (err) {
      this.log.error({ problem: (err as Error).message }, 'the announcer failed to follow the drain');
    }
    void this.check();
  }

  protected abstract put(r: GatewayRecord): Promise<void>;
  abstract list(): Promise<GatewayList>;
  abstract setDrained(name: string, drained: boolean): Promise<void>;
  abstract close(): Promise<void>;
}

/** LocalGatewayRegistry is the embedded store's registry: this gateway alone, nothing written. */
export class LocalGatewayRegistry extends RecordKeeper {
  private last: GatewayRecord | null = null;

  protected async put(r: GatewayRecord): Promise<void> {
    this.last = r;
  }

  async list(): Promise<GatewayList> {
    const r = this.record();
    // updated-at: when the record last changed, as on etcd
    const same =
      this.last !== null &&
      JSON.stringify({ ...this.last, updatedUnixMs: 0 }) === JSON.stringify({ ...r, updatedUnixMs: 0 });
    const updatedUnixMs = same && this.last !== null ? this.last.updatedUnixMs : r.updatedUnixMs;
    return { gateways: [{ ...r, updatedUnixMs, drained: this.drained, stale: '' }], storeRevision: 0 };
  }

  async setDrained(name: string, drained: boolean): Promise<void> {
    if (name !== this.opts.name) throw new ControlError('NOT_FOUND', `gateway ${name}: not registered`);
    await this.applyDrain(drained);
  }

  async close(): Promise<void> {
    this.stopChecks();
  }
}

export interface EtcdGatewayRegistryOptions extends GatewayRegistryOptions {
  /** the etcd store's client (EtcdStore.etcd) and keys */
  client: Etcd3;
  keys: EtcdKeys;
  /** the record's lease, seconds (default 2; etcd raises a TTL below its minimum, ≈ 1.5 s) */
  ttlSeconds?: number;
}

/** how long close waits for etcd to end the drain watch */
const CLOSE_WAIT_MS = 1000;

/** how long after a lost lease a new one is asked for (each fails at once while etcd is away) */
const RENEW_AFTER_MS = 500;

/**
 * EtcdGatewayRegistry keeps this gateway's record in etcd under a lease kept alive every TTL/3. The
 * etcd3 client reports a lease `lost` only 2 × TTL after the last keep-alive; by then etcd has dropped
 * the record, so a keep-alive silent for a TTL counts as lost already: a new lease, and the record
 * written again under it.
 */
export class EtcdGatewayRegistry extends RecordKeeper {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly ttl: number;
  private lease: Lease | null = null;
  private lastKeepAlive = 0;
  private renewTimer: NodeJS.Timeout | null = null;
  private drainWatch: Watcher | null = null;
  private closing: Promise<void> | null = null;
  /** leases made again after one was lost */
  leasesLost = 0;

  constructor(opts: EtcdGatewayRegistryOptions) {
    super(opts);
    this.client = opts.client;
    this.keys = opts.keys;
    this.ttl = opts.ttlSeconds ?? 2;
  }

  override async start(): Promise<void> {
    this.lease = this.newLease();
    const key = this.keys.gatewayDrain(this.opts.name);
    // the watch first, then the read: no change falls between them
    this.drainWatch = await this.client.watch().key(key).create();
    this.drainWatch.on('put', () => void this.applyDrain(true));
    this.drainWatch.on('delete', () => void this.applyDrain(false));
    await this.applyDrain((await this.client.get(key).string()) !== null);
    await super.start();
  }

  private newLease(): Lease {
    const lease = this.client.lease(this.ttl);
    this.lastKeepAlive = this.now();
    const lost = (why: string) => {
      if (this.lease !== lease || this.closed) return;
      this.lease = null;
      lease.release();
      this.leasesLost++;
      this.log.warn({ why }, 'gateway record lease lost; registering again');
      // not at once: while etcd is away each new lease fails as soon as it is asked for
      this.renewTimer = setTimeout(() => {
        this.renewTimer = null;
        if (this.closed) return;
        this.lease = this.newLease();
        this.rewrite();
      }, RENEW_AFTER_MS);
      this.renewTimer.unref();
    };
    lease.on('lost', (err: Error) => lost(err.message));
    lease.on('keepaliveSucceeded', () => {
      this.lastKeepAlive = this.now();
    });
    // typed as a response, but etcd3 hands it the error
    lease.on('keepaliveFailed', (err: unknown) => {
      if (this.now() - this.lastKeepAlive > this.ttl * 1000)
        lost(`no keep-alive for a TTL (${(err as Error).message})`);
    });
    return lease;
  }

  protected async put(r: GatewayRecord): Promise<void> {
    if (this.lease === null) throw new Error('no lease (being made again)');
    await this.lease.put(this.keys.gateway(r.name)).value(JSON.stringify(r)).exec();
  }

  async list(): Promise<GatewayList> {
    const [recs, drains, data] = await Promise.all([
      this.client.getAll().prefix(this.keys.gateways).strings(),
      this.client.getAll().prefix(this.keys.gatewayDrains).keys(),
      // the newest member or exports change: what every gateway should have applied
      Promise.all(
        [this.keys.members, this.keys.exports].map((p) =>
          this.client.getAll().prefix(p).sort('Mod', 'Descend').limit(1).exec(),
        ),
      ),
    ]);
    const storeRevision = Math.max(0, ...data.flatMap((d) => d.kvs.map((kv) => Number(kv.mod_revision))));
    const drained = new Set(drains.map((k) => k.slice(this.keys.gatewayDrains.length)));
    const now = this.now();
    const gateways: GatewayEntry[] = [];
    for (const [key, value] of Object.entries(recs)) {
      try {
        const r = readGatewayRecord(key, value);
        gateways.push({ ...r, drained: drained.has(r.name), stale: staleness(r, storeRevision, now) });
      } catch (err) {
        this.log.error({ problem: (err as Error).message }, 'ignored a malformed gateway record');
      }
    }
    gateways.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { gateways, storeRevision };
  }

  async setDrained(name: string, drained: boolean): Promise<void> {
    const key = this.keys.gatewayDrain(name);
    if (!drained) {
      // lifting a drain needs no registered gateway: it may be down while its flag stays
      await this.client.delete().key(key).exec();
      return;
    }
    const r = await this.client
      .if(this.keys.gateway(name), 'Create', '>', 0)
      .then(this.client.put(key).value(String(this.now())))
      .commit();
    if (!r.succeeded) throw new ControlError('NOT_FOUND', `gateway ${name}: not registered`);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopChecks();
      if (this.renewTimer !== null) clearTimeout(this.renewTimer);
      // a cancel waits for etcd's answer: a stuck etcd must not hold the gateway's stop
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.drainWatch?.cancel().catch(() => undefined),
        new Promise<void>((r) => {
          timer = setTimeout(r, CLOSE_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      // revoking drops the record at once; a failure leaves it to the TTL
      await this.lease
        ?.revoke()
        .catch((err: Error) =>
          this.log.warn({ problem: err.message }, 'could not revoke the gateway record lease'),
        );
    })();
    return this.closing;
  }
}
