import {
  ConsecutiveBreaker,
  ConstantBackoff,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
} from 'cockatiel';
import {
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type IWatchResponse,
  isRecoverableError,
  type Watcher,
} from 'etcd3';
import type { TlsPems } from '../auth/tls-files.js';
import { type Logger, silentLogger } from '../logger.js';
import type { Allocation, AllocationRules, ControlStore, NewMember, StoreEvent } from './control-store.js';
import {
  clashOf,
  decodeSnapshot,
  type EtcdKeys,
  etcdKeys,
  type KeyValue,
  planAllocation,
  type Snapshot,
} from './etcd-layout.js';
import { readExportsRecord, readMemberRecord, StoreFileError } from './file-format.js';
import { MemberMirror } from './member-mirror.js';
import type { ExportsRecord, MemberRecord, StoreContents } from './records.js';

export interface EtcdStoreOptions {
  /** client URLs, https://address:port */
  endpoints: string[];
  /** the CA that signed etcd's certificates, and this gateway's client certificate and key */
  tls: TlsPems;
  /** where the cluster's keys live, e.g. /onehost/lab/ (start and end with /) */
  prefix: string;
  /** how long one request may take on one endpoint (default 3000 ms) */
  requestTimeoutMs?: number;
  /** how often writes that failed are tried again while etcd is away (default 500 ms) */
  resyncIntervalMs?: number;
  logger?: Logger;
}

/** EtcdStoreError is a read or write the etcd store could not do; its message names the store. */
export class EtcdStoreError extends Error {
  constructor(
    message: string,
    /** true when trying again cannot help (the record clashes with another gateway's) */
    readonly final = false,
  ) {
    super(message);
    this.name = 'EtcdStoreError';
  }
}

/** a transaction that lost a race is read and tried again; past this many it gives up */
const MAX_ATTEMPTS = 32;
/** the queue admissions wait in (no etcd key: it has no prefix) */
const ADMISSIONS = 'admissions';
/** how long a transaction that lost its race waits for the watch to bring the change that beat it */
const RACE_WAIT_MS = 1000;

/** a change seen on the watch, held while this store writes the same key */
interface Seen {
  revision: number;
  event: StoreEvent;
}

/** OwnKey is this store's writes to one key: how many run, and the revision of its last one. */
interface OwnKey {
  running: number;
  revision: number;
  held: Seen[];
}

interface Unsynced {
  seq: number;
  what: string;
  apply: () => Promise<void>;
}

/**
 * EtcdStore keeps the control plane's state in etcd (layout: etcd-layout.ts) so several gateways
 * share it. New members get their id and block in a transaction that compares the id counter's
 * revision, so two gateways never hand out the same ones. Writes to one key go out in order. A write
 * that fails (etcd unreachable) rejects naming the store, and is kept: the newest value of each key
 * is written again every `resyncIntervalMs` until etcd takes it, so the store catches up with the
 * gateway's memory once etcd is back, without a restart.
 */
export class EtcdStore implements ControlStore {
  readonly keys: EtcdKeys;
  /** how errors name this store */
  readonly source: string;
  private readonly client: Etcd3;
  private readonly log: Logger;
  private readonly resyncIntervalMs: number;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly unsynced = new Map<string, Unsynced>();
  private seq = 0;
  /** transactions that found another gateway's change since their read, and read again */
  racesLost = 0;
  private resyncTimer: NodeJS.Timeout | null = null;
  /** the revision `load` read at; the watch starts after it */
  private loadedRevision: number | null = null;
  /** the newest revision the watch has seen all changes up to */
  private seenRevision = 0;
  /**
   * the newest revision of a member or exports change this store has read (load, watch, reload): the
   * gateway registry reports it; other keys (the registry's own) do not move it
   */
  appliedRevision = 0;
  private watcher: Watcher | null = null;
  private listener: ((e: StoreEvent) => void) | null = null;
  private readonly own = new Map<string, OwnKey>();
  /** times the watch could not resume (its revision compacted) and everything was read again */
  reloads = 0;
  /** changes of other writers reported, and own writes' echoes dropped */
  readonly watched = { reported: 0, echoes: 0 };
  private closing: Promise<void> | null = null;
  private closed = false;
  /** the members and the counter as the watch keeps them; null until load */
  private mirror: MemberMirror | null = null;
  /** true while the watch runs connected: only then is the mirror kept current */
  private watching = false;
  private readonly mirrorWaiters = new Set<() => void>();
  /** admissions and member writes that read the mirror, and those that read etcd */
  readonly reads = { mirror: 0, etcd: 0 };

  /** Throws RangeError for no endpoint, an endpoint that is not https://host:port, or a bad prefix. */
  constructor(opts: EtcdStoreOptions) {
    this.keys = etcdKeys(opts.prefix);
    if (opts.endpoints.length === 0) throw new RangeError('etcd store: no endpoint');
    for (const e of opts.endpoints)
      if (!/^https:\/\/[^/\s]+:\d+$/.test(e))
        throw new RangeError(`etcd endpoint ${JSON.stringify(e)}: must be https://host:port`);
    this.source = `etcd store ${opts.endpoints.join(',')} (prefix ${opts.prefix})`;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'etcd-store' });
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 500;
    const timeoutMs = opts.requestTimeoutMs ?? 3000;
    this.client = new Etcd3({
      hosts: opts.endpoints,
      credentials: {
        rootCertificate: Buffer.from(opts.tls.caPem),
        certChain: Buffer.from(opts.tls.certPem),
        privateKey: Buffer.from(opts.tls.keyPem),
      },
      dialTimeout: timeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      // a member that came back is dialled again soon, not after gRPC's backoff of up to 2 minutes
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
      faultHandling: {
        // A member that refuses connections is skipped for a second, then tried again. Only that: a
        // slow answer (DEADLINE_EXCEEDED) is retried on another member but opens no breaker, or a busy
        // cluster (a thousand agents joining) would have every member's breaker open at once and every
        // write refused while etcd works (measured with bench:control).
        host: () =>
          circuitBreaker(
            handleWhen((e) => e instanceof GRPCUnavailableError),
            {
              halfOpenAfter: 1000,
              breaker: new ConsecutiveBreaker(2),
            },
          ),
        // each retry goes to another member: one down of three costs nothing
        global: retry(handleWhen(isRecoverableError), {
          maxAttempts: opts.endpoints.length,
          backoff: new ConstantBackoff(20),
        }),
        // the watch dials again within a second of etcd's return, not after cockatiel's default
        // backoff, which grows to 30 s: until it does, the gateway applies no other gateway's change
        // (seen: a gateway 10 s behind the store after all three members came back)
        // (etcd3 takes a first backoff, whose `next` gives the later ones)
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }).next(),
      },
    });
  }

  /**
   * load reads everything under the prefix at one revision. Throws EtcdStoreError when etcd cannot be
   * read, StoreFileError (naming the key) when a value is malformed.
   */
  async load(): Promise<StoreContents> {
    const { snap, revision, kvs } = await this.readAt('reading the state');
    this.mirror = new MemberMirror(this.source, this.keys);
    for (const kv of kvs) this.mirror.apply(kv.key, kv.value, Number(kv.modRevision));
    this.loadedRevision = revision;
    this.appliedRevision = revision;
    return { members: snap.members, exports: snap.exports, nextNodeId: snap.nextNodeId };
  }

  /**
   * watch reports other writers' changes from the revision `load` read at. The watch resumes from
   * the last revision it saw after a broken connection; when etcd has compacted that revision away,
   * the store reads everything again and reports it as one `reload`. Throws when called before load
   * or twice.
   */
  watch(listener: (e: StoreEvent) => void): Promise<void> {
    if (this.loadedRevision === null) throw new Error(`${this.source}: watch before load`);
    if (this.listener !== null) throw new Error(`${this.source}: watched twice`);
    this.listener = listener;
    return this.startWatch(this.loadedRevision);
  }

  allocateMember(m: NewMember, rules: AllocationRules): Promise<Allocation> {
    const key = this.keys.member(m.name);
    // One admission at a time per gateway: concurrent ones would only lose races to each other.
    return this.serial(ADMISSIONS, async () => {
      let lost: string | undefined;
      for (let attempt = 1; ; attempt++) {
        const snap = await this.read(`admitting ${m.name}`, lost);
        const plan = planAllocation(snap, m, rules);
        if (plan.kind !== 'created') return plan;
        // Nobody took the name, and no member was added since the read (each moves the counter).
        const r = await this.owned(key, `admitting ${m.name}`, () =>
          this.client
            .if(key, 'Create', '==', 0)
            .and(this.keys.counter, 'Mod', '==', snap.counterRevision)
            .then(
              this.client.put(key).value(JSON.stringify(plan.member)),
              this.client.put(this.keys.counter).value(String(plan.member.id + 1)),
            )
            .commit(),
        );
        if (r.succeeded) {
          const at = Number(r.header.revision);
          this.mirror?.apply(key, JSON.stringify(plan.member), at);
          this.mirror?.apply(this.keys.counter, String(plan.member.id + 1), at);
          return plan;
        }
        lost = snap.counterRevision;
        this.racesLost++;
        if (attempt >= MAX_ATTEMPTS)
          throw new EtcdStoreError(`${this.source}: admitting ${m.name}: lost ${attempt} races in a row`);
      }
    });
  }

  putMember(m: MemberRecord): Promise<void> {
    const rec = structuredClone(m);
    const key = this.keys.member(m.name);
    return this.write(key, `writing member ${m.name}`, async () => {
      let lost: string | undefined;
      let fresh = false;
      for (let attempt = 1; ; attempt++) {
        const what = `writing member ${rec.name}`;
        const snap: Snapshot = fresh ? (await this.readAt(what)).snap : await this.read(what, lost);
        const clash = clashOf(snap.members, rec);
        if (clash !== null) throw new EtcdStoreError(`${this.source}: member ${rec.name}: ${clash}`, true);
        const ops = [this.client.put(key).value(JSON.stringify(rec))];
        if (rec.id >= snap.nextNodeId) ops.push(this.client.put(this.keys.counter).value(String(rec.id + 1)));
        // A member that keeps its id and block (a rejoin, down, drain) is guarded by its own key: no
        // admission can take what a stored member holds, and a delete of it moves the key. Guarded by
        // the counter, which every admission on any gateway moves, such writes lost race after race to
        // another gateway admitting at full rate (32 in a row: an error, seen with 1,000 agents).
        const had = snap.members.find((o) => o.name === rec.name);
        const own =
          had !== undefined &&
          had.id === rec.id &&
          had.block.lo === rec.block.lo &&
          had.block.hi === rec.block.hi
            ? snap.memberRevisions.get(rec.name)
            : undefined;
        // Otherwise the counter's revision guards against a member added meanwhile with this id or block.
        const r = await this.owned(key, what, () =>
          (own !== undefined
            ? this.client.if(key, 'Mod', '==', own)
            : this.client.if(this.keys.counter, 'Mod', '==', snap.counterRevision)
          )
            .then(...ops)
            .commit(),
        );
        if (r.succeeded) {
          const at = Number(r.header.revision);
          this.mirror?.apply(key, JSON.stringify(rec), at);
          if (ops.length > 1) this.mirror?.apply(this.keys.counter, String(rec.id + 1), at);
          return;
        }
        // the member's own key moved (another gateway wrote or deleted it): etcd itself says how
        fresh = own !== undefined;
        lost = snap.counterRevision;
        this.racesLost++;
        if (attempt >= MAX_ATTEMPTS)
          throw new EtcdStoreError(
            `${this.source}: writing member ${rec.name}: lost ${attempt} races in a row`,
          );
      }
    });
  }

  deleteMember(name: string): Promise<void> {
    const key = this.keys.member(name);
    return this.write(key, `deleting member ${name}`, async () => {
      await this.owned(key, `deleting member ${name}`, () => this.client.delete().key(key).exec());
    });
  }

  putExports(r: ExportsRecord): Promise<void> {
    const key = this.keys.exportsOf(r.nodeName);
    const value = JSON.stringify(r);
    return this.write(key, `writing the exports of ${r.nodeName}`, async () => {
      await this.owned(key, `writing the exports of ${r.nodeName}`, () =>
        this.client.put(key).value(value).exec(),
      );
    });
  }

  deleteExports(nodeName: string): Promise<void> {
    const key = this.keys.exportsOf(nodeName);
    return this.write(key, `deleting the exports of ${nodeName}`, async () => {
      await this.owned(key, `deleting the exports of ${nodeName}`, () =>
        this.client.delete().key(key).exec(),
      );
    });
  }

  /** etcd is the client this store reads and writes with: the gateway registry shares it. */
  get etcd(): Etcd3 {
    return this.client;
  }

  /** unsyncedKeys lists the keys whose newest value etcd has not taken yet. */
  unsyncedKeys(): string[] {
    return [...this.unsynced.keys()];
  }

  /**
   * close waits for the writes already asked for (each bounded by the request timeout), then
   * disconnects; the resync stops. Safe twice.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.resyncTimer !== null) clearTimeout(this.resyncTimer);
      await Promise.allSettled([...this.chains.values()]);
      this.closed = true;
      this.listener = null;
      this.setWatching(false);
      await this.watcher?.cancel().catch(() => undefined);
      if (this.unsynced.size > 0)
        this.log.warn({ keys: this.unsyncedKeys() }, 'closing with writes etcd has not taken');
      this.client.close();
    })();
    return this.closing;
  }

  /**
   * read is the members and the counter for an admission or a member write: the mirror while the watch
   * keeps it, else a read of the prefix at one revision. `lost`: the counter revision of a snapshot
   * whose transaction lost its race; the mirror is used once the watch has brought a newer counter
   * (within RACE_WAIT_MS), else etcd is read. Protected: tests step in between a read and its commit.
   */
  protected async read(what: string, lost?: string): Promise<Snapshot> {
    const m = this.mirror;
    if (m !== null && this.watching) {
      if (lost === undefined || (await this.mirrorMoves(m, lost))) {
        try {
          const snap = m.snapshot();
          this.reads.mirror++;
          return snap;
        } catch {
          // a malformed value: the read below names it
        }
      }
    }
    this.reads.etcd++;
    return (await this.readAt(what)).snap;
  }

  /** mirrorMoves waits until the mirror's counter revision is no longer `from`; false after RACE_WAIT_MS. */
  private mirrorMoves(m: MemberMirror, from: string): Promise<boolean> {
    if (m.counterRevision !== from) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (moved: boolean) => {
        clearTimeout(timer);
        this.mirrorWaiters.delete(check);
        resolve(moved);
      };
      const check = () => {
        if (m.counterRevision !== from) done(true);
        else if (!this.watching) done(false);
      };
      const timer = setTimeout(() => done(false), RACE_WAIT_MS);
      this.mirrorWaiters.add(check);
    });
  }

  /** readAt reads the prefix and says at which revision. */
  private async readAt(what: string): Promise<{ snap: Snapshot; revision: number; kvs: KeyValue[] }> {
    const res = await this.attempt(what, () => this.client.getAll().prefix(this.keys.prefix).exec());
    const kvs = res.kvs.map((kv) => ({
      key: kv.key.toString(),
      value: kv.value.toString(),
      modRevision: String(kv.mod_revision),
    }));
    return { snap: decodeSnapshot(this.source, this.keys, kvs), revision: Number(res.header.revision), kvs };
  }

  /**
   * owned runs one of this store's writes to `key` and notes its revision: the watch drops the echo
   * of it, and holds other writers' changes to the key until it is done, so that a change older than
   * the write is not applied over it (`succeeded` false: a transaction that changed nothing).
   */
  private async owned<T extends { header: { revision: string }; succeeded?: boolean }>(
    key: string,
    what: string,
    call: () => Promise<T>,
  ): Promise<T> {
    const o = this.own.get(key) ?? { running: 0, revision: 0, held: [] };
    this.own.set(key, o);
    o.running++;
    try {
      const r = await this.attempt(what, call);
      if (r.succeeded !== false) o.revision = Math.max(o.revision, Number(r.header.revision));
      return r;
    } finally {
      o.running--;
      if (o.running === 0) for (const s of o.held.splice(0)) this.report(key, s);
    }
  }

  /** startWatch watches the prefix from after `revision`; resolves once etcd took the watch. */
  private startWatch(revision: number): Promise<void> {
    this.seenRevision = revision;
    this.setWatching(false);
    const w = this.client
      .watch()
      .prefix(this.keys.prefix)
      .startRevision(String(revision + 1))
      .watcher();
    this.watcher = w;
    w.on('data', (res: IWatchResponse) => this.onWatch(res));
    w.on('disconnected', (err: Error) => {
      // resume from what was seen, not from the header of the last `created` (which the client uses
      // and which is ahead of the changes it still had to replay)
      (w as unknown as { request: { start_revision: string } }).request.start_revision = String(
        this.seenRevision + 1,
      );
      this.setWatching(false);
      this.log.warn({ problem: err.message, revision: this.seenRevision }, 'etcd watch broken; resuming');
    });
    w.on('connected', () => {
      this.setWatching(true);
      this.log.info({ revision: this.seenRevision }, 'etcd watch running');
    });
    // etcd cancels (ends) a watch whose revision was compacted away: nothing can say what changed,
    // read it all
    w.on('error', (err: Error) => {
      if (this.watcher !== w) return;
      this.watcher = null;
      this.setWatching(false);
      this.log.warn({ problem: err.message, revision: this.seenRevision }, 'etcd watch ended; reloading');
      void this.reload();
    });
    return new Promise<void>((resolve, reject) => {
      w.once('connected', () => resolve());
      w.once('error', reject);
    }).catch(() => undefined);
  }

  /** reload reads everything, reports it, and watches from there; tried again while etcd is away. */
  private async reload(): Promise<void> {
    while (!this.closed && this.listener !== null) {
      try {
        const { snap, revision, kvs } = await this.readAt('reloading after a lost watch');
        // the watch starts again after this read: a mirror made from it is kept current from there
        this.mirror = new MemberMirror(this.source, this.keys);
        for (const kv of kvs) this.mirror.apply(kv.key, kv.value, Number(kv.modRevision));
        this.reloads++;
        this.appliedRevision = Math.max(this.appliedRevision, revision);
        this.listener({
          kind: 'reload',
          contents: { members: snap.members, exports: snap.exports, nextNodeId: snap.nextNodeId },
        });
        await this.startWatch(revision);
        return;
      } catch (err) {
        this.log.error({ problem: (err as Error).message }, 'etcd reload failed; trying again');
        await new Promise((r) => setTimeout(r, this.resyncIntervalMs).unref());
      }
    }
  }

  private onWatch(res: IWatchResponse): void {
    for (const ev of res.events) {
      const key = ev.kv.key.toString();
      const revision = Number(ev.kv.mod_revision);
      const value = ev.type === 'Delete' ? null : ev.kv.value.toString();
      this.mirror?.apply(key, value, revision);
      const event = this.decodeEvent(key, value);
      if (event === null) continue;
      const o = this.own.get(key);
      if (o !== undefined && o.running > 0) o.held.push({ revision, event });
      else this.report(key, { revision, event });
      this.appliedRevision = Math.max(this.appliedRevision, revision);
    }
    this.seenRevision = Math.max(this.seenRevision, Number(res.header.revision));
    for (const check of [...this.mirrorWaiters]) check();
  }

  /** setWatching notes whether the watch runs (and so keeps the mirror); waiters give up when it stops. */
  private setWatching(on: boolean): void {
    this.watching = on;
    if (!on) for (const check of [...this.mirrorWaiters]) check();
  }

  /** report hands a change to the listener unless it is this store's own write or older than it. */
  private report(key: string, s: Seen): void {
    const o = this.own.get(key);
    if (o !== undefined && s.revision <= o.revision) {
      this.watched.echoes++;
      return;
    }
    this.watched.reported++;
    try {
      this.listener?.(s.event);
    } catch (err) {
      this.log.error({ err, key }, 'store listener failed');
    }
  }

  /** decodeEvent turns a changed key into an event; null for keys it does not report or cannot read. */
  private decodeEvent(key: string, value: string | null): StoreEvent | null {
    try {
      if (key.startsWith(this.keys.members)) {
        const name = key.slice(this.keys.members.length);
        if (value === null) return { kind: 'member', name, record: null };
        const m = readMemberRecord(this.source, key, JSON.parse(value));
        if (m.name !== name) throw new StoreFileError(this.source, key, `holds the record of ${m.name}`);
        return { kind: 'member', name, record: m };
      }
      if (key.startsWith(this.keys.exports)) {
        const nodeName = key.slice(this.keys.exports.length);
        if (value === null) return { kind: 'exports', nodeName, record: null };
        const e = readExportsRecord(this.source, key, JSON.parse(value));
        if (e.nodeName !== nodeName)
          throw new StoreFileError(this.source, key, `holds the exports of ${e.nodeName}`);
        return { kind: 'exports', nodeName, record: e };
      }
    } catch (err) {
      this.log.error(
        { key, problem: (err as Error).message },
        'ignored a change etcd holds that is malformed',
      );
    }
    return null;
  }

  /** attempt runs one etcd call, turning its failure into an EtcdStoreError that names the store. */
  private async attempt<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (this.closed) throw new EtcdStoreError(`${this.source}: ${what}: closed`, true);
    try {
      return await call();
    } catch (err) {
      if (err instanceof EtcdStoreError || err instanceof StoreFileError) throw err;
      const e = err as Error;
      const unreachable =
        e instanceof GRPCUnavailableError ||
        e instanceof GRPCDeadlineExceededError ||
        // cockatiel's BrokenCircuitError keeps the name 'Error': it marks itself instead
        (e as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true;
      // grpc-js ends its messages with an often empty "Resolution note:"
      const cause = e.message.replace(/\s*Resolution note:\s*$/, '');
      throw new EtcdStoreError(
        `${this.source}: ${what}: ${unreachable ? 'etcd unreachable' : 'etcd refused'} (${cause})`,
      );
    }
  }

  /** serial runs `fn` after every earlier call for `key` has settled: one key's writes stay in order. */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.chains.get(key) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return run;
  }

  /** write applies a change to `key`; when etcd cannot take it, it is kept for the resync. */
  private write(key: string, what: string, apply: () => Promise<void>): Promise<void> {
    const u: Unsynced = { seq: ++this.seq, what, apply };
    return this.serial(key, async () => {
      try {
        await apply();
      } catch (err) {
        if (!(err instanceof EtcdStoreError) || !err.final) {
          this.unsynced.set(key, u);
          this.scheduleResync();
        }
        throw err;
      }
      const kept = this.unsynced.get(key);
      if (kept !== undefined && kept.seq <= u.seq) this.unsynced.delete(key);
    });
  }

  private scheduleResync(): void {
    if (this.resyncTimer !== null || this.closing !== null) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      void this.resync();
    }, this.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  /** resync writes each key's newest value that etcd has not taken, in the key's order. */
  private async resync(): Promise<void> {
    const pending = [...this.unsynced.entries()];
    await Promise.allSettled(
      pending.map(([key, u]) =>
        this.serial(key, async () => {
          if (this.unsynced.get(key) !== u) return; // a newer write came and settled it
          try {
            await u.apply();
          } catch (err) {
            if (err instanceof EtcdStoreError && err.final) {
              this.unsynced.delete(key);
              this.log.error({ key, problem: err.message }, 'dropped a write etcd refuses');
            }
            return;
          }
          if (this.unsynced.get(key) === u) this.unsynced.delete(key);
          this.log.info({ key, what: u.what }, 'etcd took a write it had missed');
        }),
      ),
    );
    if (this.unsynced.size > 0) this.scheduleResync();
  }
}
