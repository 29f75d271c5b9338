import type { Clock, Timer } from './clock.js';
import { systemClock } from './clock.js';
import { ControlError } from './control-error.js';
import { type Logger, silentLogger } from './logger.js';
import {
  allocatePortBlock,
  checkPortBlockConfig,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_PORT_RANGE,
  type PortRange,
} from './port-blocks.js';
import type { Allocation, ControlStore } from './store/control-store.js';
import type { HealthRecord, MemberRecord, MemberStateName, StoreContents } from './store/records.js';

/**
 * DEFAULT_HEARTBEAT_INTERVAL_MS and DEFAULT_HEARTBEAT_TIMEOUT_MS: a dead node is noticed within a
 * second, and a live one survives a heartbeat stream waiting out TCP retransmission timeouts (≥ 200 ms
 * each) on a loaded interconnect: at 100/350 a lab node was taken down ten times in a minute of 20
 * parallel NFS copies, at 200/1000 never (docs/gateway.md). The data-path probe finds a broken path
 * sooner (`unreachable`).
 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 200;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 1000;
const MAX_NODE_ID = 0xffff;

/** MemberChangeKind is what happened to a member. */
export type MemberChangeKind =
  | 'joined'
  | 'down'
  | 'left'
  | 'draining'
  | 'undrained'
  | 'forgotten'
  | 'health'
  | 'unreachable'
  | 'reachable';

/** MemberChange is one event of `Membership.onChange`; `member` is a copy taken after the change. */
export interface MemberChange {
  kind: MemberChangeKind;
  member: MemberRecord;
  /** true when another gateway made the change (it writes the store; listeners here must not) */
  remote?: boolean;
}

export type MemberListener = (change: MemberChange) => void;

/** JoinInput is a validated join: who the node is and where it receives VXLAN. */
export interface JoinInput {
  name: string;
  internalAddress: string;
  vxlanMac: string;
  capabilities: string[];
}

export interface MembershipOptions {
  store: ControlStore;
  /** what `store.load()` returned. */
  contents: StoreContents;
  /** ephemeral range the port blocks are carved from (default 32768-60999). */
  portRange?: PortRange;
  /** ports per block (default 1024). */
  blockSize?: number;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/**
 * HeartbeatSession is one heartbeat stream bound to one join. `end` is how membership closes the
 * stream (timeout, a newer join, shutdown).
 */
export interface HeartbeatSession {
  readonly name: string;
  readonly session: number;
  readonly end: (err: ControlError) => void;
}

interface Liveness {
  session: number;
  timer: Timer;
  stream: HeartbeatSession | null;
  /** the node's stream closed from its side and no newer one has beaten since */
  closed: boolean;
  /** the last-seen time the join wrote: another gateway's join of the node writes another */
  joinedAt: number;
  /** the join's store write is still running: the node cannot beat before its answer */
  joining: boolean;
}

/**
 * Membership keeps the cluster's members: sticky ids and port blocks per node name, liveness from
 * heartbeats with a deadline, operator drains, and change events for the gateway's switch snapshot.
 * Every refusal is a ControlError with the status the RPC returns.
 */
export class Membership {
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  /** liveness judgements put off by one interval because this gateway's own timer ran late */
  lateJudgements = 0;
  readonly portRange: PortRange;
  readonly blockSize: number;
  private readonly store: ControlStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly records = new Map<string, MemberRecord>();
  private readonly live = new Map<string, Liveness>();
  private readonly listeners = new Set<MemberListener>();
  private changes = 0;
  private readonly health = new Map<string, HealthRecord[]>();
  private nextNodeId: number;
  /** joins waiting for a shared store to admit them, by name */
  private readonly admitting = new Map<string, { address: string; done: Promise<Allocation> }>();
  private sessions = 0;
  private closed = false;

  /**
   * constructor takes the store's contents; members it lists as up are marked down ("gateway
   * restart") until they join again, unless the store is shared (it has `watch`): there another
   * gateway may hold their heartbeats, and their stored state stands. Throws RangeError for a bad port range, block size or heartbeat
   * timing (the timeout must exceed the interval).
   */
  constructor(opts: MembershipOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'membership' });
    this.portRange = opts.portRange ?? DEFAULT_PORT_RANGE;
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    checkPortBlockConfig(this.portRange, this.blockSize);
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    if (!Number.isInteger(this.heartbeatIntervalMs) || this.heartbeatIntervalMs < 1)
      throw new RangeError(`heartbeat interval ${this.heartbeatIntervalMs} ms: must be a positive integer`);
    if (!Number.isInteger(this.heartbeatTimeoutMs) || this.heartbeatTimeoutMs <= this.heartbeatIntervalMs)
      throw new RangeError(
        `heartbeat timeout ${this.heartbeatTimeoutMs} ms: must be an integer above the interval (${this.heartbeatIntervalMs} ms)`,
      );
    this.nextNodeId = opts.contents.nextNodeId;
    for (const m of opts.contents.members) {
      const rec = structuredClone(m);
      if (rec.state !== 'down' && opts.store.watch === undefined) {
        rec.state = 'down';
        rec.downReason = 'gateway restart';
        this.persist(rec);
      }
      this.records.set(rec.name, rec);
      this.nextNodeId = Math.max(this.nextNodeId, rec.id + 1);
    }
  }

  /** members returns a copy of every member, by id. */
  members(): MemberRecord[] {
    return [...this.records.values()].sort((a, b) => a.id - b.id).map((m) => structuredClone(m));
  }

  /**
   * memberAt returns a copy of the member with this internal address, or undefined: for the packet
   * side's per-connection questions (splice messages), which `members()` (a sorted copy of all) would
   * make cost O(n log n) each.
   */
  memberAt(internalAddress: string): MemberRecord | undefined {
    for (const m of this.records.values())
      if (m.internalAddress === internalAddress) return structuredClone(m);
    return undefined;
  }

  /** healthOf is the node's health checks as its agent last reported them (empty while down). */
  healthOf(name: string): HealthRecord[] {
    return structuredClone(this.health.get(name) ?? []);
  }

  /**
   * unhealthyCovers lists, per node, the switch entries ("tcp/80") that a failing health check of the
   * node covers, with the first failing check's words for each.
   */
  unhealthyCovers(): Map<string, Map<string, HealthRecord>> {
    const out = new Map<string, Map<string, HealthRecord>>();
    for (const [name, checks] of this.health) {
      for (const c of checks) {
        if (c.healthy) continue;
        const m = out.get(name) ?? new Map<string, HealthRecord>();
        for (const e of c.covers) if (!m.has(e)) m.set(e, structuredClone(c));
        out.set(name, m);
      }
    }
    return out;
  }

  member(name: string): MemberRecord | undefined {
    const m = this.records.get(name);
    return m === undefined ? undefined : structuredClone(m);
  }

  /**
   * onChange calls `listener` after every change, synchronously, in order; returns the function
   * that unsubscribes it. A listener that throws is logged and does not stop the others.
   */
  onChange(listener: MemberListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * join admits a node or welcomes it back with the same id and block; it is up (active, or draining
   * when drained) until its heartbeats stop. Resolves once the record is durable. Throws ControlError:
   * ALREADY_EXISTS when another member (even a down one) has the internal address,
   * RESOURCE_EXHAUSTED when no id or block is left, UNAVAILABLE when closed or the store failed.
   */
  async join(input: JoinInput): Promise<MemberRecord> {
    this.checkOpen();
    const { name } = input;
    // Down members keep their address too: the switch table names every member, and two with one
    // address would be ambiguous. Forget the old one first.
    for (const other of this.records.values())
      if (other.name !== name && other.internalAddress === input.internalAddress)
        throw new ControlError(
          'ALREADY_EXISTS',
          `internal_address: ${input.internalAddress} belongs to ${other.name} (node ${other.id}, ${other.state})`,
        );
    for (const [other, a] of this.admitting)
      if (other !== name && a.address === input.internalAddress)
        throw new ControlError('ALREADY_EXISTS', `internal_address: ${input.internalAddress} is ${other}'s`);
    const now = this.clock.now();
    const known = this.records.get(name);
    if (known === undefined && this.store.allocateMember !== undefined) return this.joinShared(input);
    let rec: MemberRecord;
    if (known === undefined) {
      if (this.nextNodeId > MAX_NODE_ID)
        throw new ControlError('RESOURCE_EXHAUSTED', `node ids exhausted (at most ${MAX_NODE_ID})`);
      const block = allocatePortBlock(
        this.portRange,
        this.blockSize,
        [...this.records.values()].map((r) => r.block),
      );
      if (block === null)
        throw new ControlError(
          'RESOURCE_EXHAUSTED',
          `port range ${this.portRange.lo}-${this.portRange.hi} has no free block of ${this.blockSize} ports (${this.records.size} nodes hold blocks)`,
        );
      rec = { name, id: this.nextNodeId++, block, ...this.joinedFields(input, false, now) };
    } else {
      rec = { ...known, ...this.joinedFields(input, known.drained, now) };
    }
    this.records.set(name, rec);
    this.startSession(name);
    this.log.info(
      { node: name, id: rec.id, block: `${rec.block.lo}-${rec.block.hi}`, address: rec.internalAddress },
      known === undefined ? 'node joined' : 'node rejoined',
    );
    this.emit('joined', rec);
    await this.joinWrite(name, () => this.save(rec));
    return structuredClone(rec);
  }

  /**
   * joinShared admits a node this gateway does not know into a shared store: the store chooses its id
   * and block atomically (another gateway may be admitting nodes too), or hands back the record another
   * gateway made for the name. One admission per name at a time; a second join waits for the first.
   */
  private async joinShared(input: JoinInput): Promise<MemberRecord> {
    const { name } = input;
    const under = this.admitting.get(name);
    if (under !== undefined) {
      await under.done.catch(() => undefined);
      return this.join(input);
    }
    const allocate = this.store.allocateMember!.bind(this.store);
    const draft = { name, ...this.joinedFields(input, false, this.clock.now()) };
    const done = allocate(draft, {
      portRange: this.portRange,
      blockSize: this.blockSize,
      maxNodeId: MAX_NODE_ID,
    });
    this.admitting.set(name, { address: input.internalAddress, done });
    let got: Allocation;
    try {
      got = await done;
    } catch (err) {
      throw this.storeFailed(err);
    } finally {
      this.admitting.delete(name);
    }
    this.checkOpen();
    if (got.kind === 'exhausted')
      throw new ControlError(
        'RESOURCE_EXHAUSTED',
        got.what === 'ids'
          ? `node ids exhausted (at most ${MAX_NODE_ID})`
          : `port range ${this.portRange.lo}-${this.portRange.hi} has no free block of ${this.blockSize} ports (${got.holders} nodes hold blocks)`,
      );
    const drained = got.kind === 'existing' && got.member.drained;
    const rec: MemberRecord = { ...got.member, ...this.joinedFields(input, drained, this.clock.now()) };
    this.records.set(name, rec);
    this.nextNodeId = Math.max(this.nextNodeId, rec.id + 1);
    this.startSession(name);
    this.log.info(
      { node: name, id: rec.id, block: `${rec.block.lo}-${rec.block.hi}`, address: rec.internalAddress },
      got.kind === 'created' ? 'node joined' : 'node rejoined',
    );
    this.emit('joined', rec);
    // a created record is already stored as it is; an existing one gets this join's fields
    if (got.kind === 'existing') await this.joinWrite(name, () => this.save(rec));
    return structuredClone(rec);
  }

  /**
   * attachHeartbeat binds a heartbeat stream to the node's current join; `end` closes the stream when
   * membership must (timeout, newer join, shutdown). A previous stream of the node is ended. Throws
   * ControlError: FAILED_PRECONDITION when the node has not joined or is down, INVALID_ARGUMENT when
   * `nodeId` is not its id.
   */
  attachHeartbeat(name: string, nodeId: number, end: (err: ControlError) => void): HeartbeatSession {
    this.checkOpen();
    const rec = this.records.get(name);
    if (rec === undefined) throw new ControlError('FAILED_PRECONDITION', `node_name: ${name} has not joined`);
    if (rec.id !== nodeId)
      throw new ControlError('INVALID_ARGUMENT', `node_id: ${name} is node ${rec.id}, not ${nodeId}`);
    const live = this.live.get(name);
    if (live === undefined && rec.state !== 'down')
      throw new ControlError(
        'FAILED_PRECONDITION',
        `${name} joined through another gateway: join here first`,
      );
    if (live === undefined || rec.state === 'down')
      throw new ControlError('FAILED_PRECONDITION', `${name} is down (${rec.downReason}): join again`);
    const old = live.stream;
    const session: HeartbeatSession = { name, session: live.session, end };
    live.stream = session;
    old?.end(new ControlError('FAILED_PRECONDITION', 'superseded by a newer heartbeat stream'));
    return session;
  }

  /**
   * beat records a heartbeat on `session` and returns the member's state. Throws ControlError
   * FAILED_PRECONDITION when the session is no longer the node's (it went down or joined again).
   */
  beat(session: HeartbeatSession, health?: HealthRecord[]): MemberStateName {
    const live = this.live.get(session.name);
    const rec = this.records.get(session.name);
    if (live === undefined || live.stream !== session || rec === undefined || rec.state === 'down')
      throw new ControlError(
        'FAILED_PRECONDITION',
        `${session.name}: this heartbeat stream is no longer current: join again`,
      );
    live.timer.refresh();
    live.closed = false;
    rec.lastSeenUnixMs = this.clock.now();
    if (
      health !== undefined &&
      JSON.stringify(health) !== JSON.stringify(this.health.get(session.name) ?? [])
    ) {
      this.health.set(session.name, structuredClone(health));
      this.emit('health', rec);
    }
    return rec.state;
  }

  /**
   * detachHeartbeat is called when a stream ends from the node's side. The node is down once it has
   * been silent for the heartbeat timeout, unless a new stream beats first: an agent that reconnects
   * (it stopped hearing acknowledgements from a busy gateway, or its connection broke) must not cost
   * the node its connections. A stopping agent says Leave, which takes it down at once.
   */
  detachHeartbeat(session: HeartbeatSession): void {
    const live = this.live.get(session.name);
    if (live === undefined || live.stream !== session || this.closed) return;
    live.stream = null;
    live.closed = true;
    // judged a timeout after the last beat (the timer may have fired and found the node alive since)
    const rec = this.records.get(session.name);
    const left = rec === undefined ? 0 : rec.lastSeenUnixMs + this.heartbeatTimeoutMs - this.clock.now();
    live.timer.cancel();
    live.timer = this.livenessTimer(session.name, live.session, Math.max(0, left));
  }

  /**
   * leave marks the node down ("left") at once; listeners remove its exports. Its id and block stay
   * reserved. Throws ControlError FAILED_PRECONDITION when it never joined, UNAVAILABLE when the store
   * failed.
   */
  async leave(name: string): Promise<MemberRecord> {
    this.checkOpen();
    const rec = this.records.get(name);
    if (rec === undefined) throw new ControlError('FAILED_PRECONDITION', `node_name: ${name} has not joined`);
    this.markDown(name, 'left', 'left');
    await this.save(rec);
    return structuredClone(rec);
  }

  /**
   * drain stops new connections to the node (state draining while it is up), or lifts the drain.
   * The drain outlives downs and rejoins. Throws ControlError NOT_FOUND for an unknown node.
   */
  async drain(name: string, undrain = false): Promise<MemberRecord> {
    this.checkOpen();
    const rec = this.records.get(name);
    if (rec === undefined) throw new ControlError('NOT_FOUND', `node_name: no member named ${name}`);
    if (rec.drained !== !undrain) {
      rec.drained = !undrain;
      if (rec.state !== 'down' && rec.state !== 'unreachable') rec.state = undrain ? 'active' : 'draining';
      this.log.info({ node: name }, undrain ? 'drain lifted' : 'node drained');
      this.emit(undrain ? 'undrained' : 'draining', rec);
      await this.save(rec);
    }
    return structuredClone(rec);
  }

  /**
   * setReachable records what the gateway's data-path probes say of an up node: unreachable (with
   * `reason`) takes it out of new connections like a down node while its heartbeats go on; reachable
   * gives it back its active or draining state. Kept in memory only: a rejoin or a gateway restart
   * starts over. A down or unknown node is left alone.
   */
  setReachable(name: string, reachable: boolean, reason: string): void {
    const rec = this.records.get(name);
    if (rec === undefined || rec.state === 'down' || this.closed) return;
    if (!reachable && rec.state !== 'unreachable') {
      rec.state = 'unreachable';
      rec.downReason = reason;
      this.log.warn({ node: name, id: rec.id, reason }, 'node unreachable');
      this.emit('unreachable', rec);
    } else if (reachable && rec.state === 'unreachable') {
      rec.state = rec.drained ? 'draining' : 'active';
      rec.downReason = '';
      this.log.info({ node: name, id: rec.id, reason }, 'node reachable again');
      this.emit('reachable', rec);
    }
  }

  /**
   * forget releases a down node's id and block for good and emits 'forgotten'. Throws ControlError
   * NOT_FOUND for an unknown node, FAILED_PRECONDITION when it is up.
   */
  async forget(name: string): Promise<void> {
    this.checkOpen();
    const rec = this.records.get(name);
    if (rec === undefined) throw new ControlError('NOT_FOUND', `node_name: no member named ${name}`);
    if (rec.state !== 'down')
      throw new ControlError(
        'FAILED_PRECONDITION',
        `${name} is ${rec.state}: only a down node can be forgotten`,
      );
    this.records.delete(name);
    this.log.info({ node: name, id: rec.id }, 'node forgotten');
    this.emit('forgotten', rec);
    try {
      await this.store.deleteMember(name);
    } catch (err) {
      throw this.storeFailed(err);
    }
  }

  /**
   * applyStored takes a change another gateway made to a member (null: forgotten) as if it were
   * made here: the record, and the change events its listeners see (marked remote). Liveness is per
   * gateway: while this gateway holds the node's heartbeats, it keeps its own judgement of the
   * node's state and takes only the drain; when the store says the node is down meanwhile (the
   * gateway it left timed it out), this gateway writes its view back. A join through another gateway
   * (a new last-seen time in the record) ends this gateway's session of the node without judging it
   * down. Nothing is written otherwise.
   */
  applyStored(name: string, stored: MemberRecord | null): void {
    if (this.closed) return;
    const prev = this.records.get(name);
    if (stored === null) {
      if (prev === undefined) return;
      this.dropSession(name, 'forgotten through another gateway');
      this.records.delete(name);
      this.health.delete(name);
      this.log.info({ node: name, id: prev.id }, 'node forgotten by another gateway');
      this.emit('forgotten', prev, true);
      return;
    }
    const rec = structuredClone(stored);
    this.nextNodeId = Math.max(this.nextNodeId, rec.id + 1);
    const live = this.live.get(name);
    // the node joined through another gateway since it joined here: its heartbeats go there now
    if (live !== undefined && rec.state !== 'down' && rec.lastSeenUnixMs !== live.joinedAt)
      this.dropSession(name, 'joined through another gateway');
    if (prev !== undefined && this.live.has(name)) {
      // ours to judge: only the operator's drain comes from elsewhere
      if (rec.drained !== prev.drained) {
        prev.drained = rec.drained;
        if (prev.state !== 'unreachable') prev.state = rec.drained ? 'draining' : 'active';
        this.emit(rec.drained ? 'draining' : 'undrained', prev, true);
      }
      if (rec.state === 'down') this.persist(prev);
      return;
    }
    this.records.set(name, rec);
    const kind = remoteKind(prev, rec);
    if (rec.state === 'down') this.health.delete(name);
    if (kind === null) return;
    this.log.info({ node: name, id: rec.id, state: rec.state }, `node ${kind} (through another gateway)`);
    this.emit(kind, rec, true);
  }

  /** applyStoredAll makes the members what a shared store holds (after it lost track of changes). */
  applyStoredAll(members: readonly MemberRecord[]): void {
    const names = new Set(members.map((m) => m.name));
    for (const name of [...this.records.keys()]) if (!names.has(name)) this.applyStored(name, null);
    for (const m of members) this.applyStored(m.name, m);
  }

  /**
   * close stops every deadline and ends every heartbeat stream (UNAVAILABLE) without marking nodes
   * down: they are down for the next gateway anyway ("gateway restart").
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const live of this.live.values()) {
      live.timer.cancel();
      live.stream?.end(new ControlError('UNAVAILABLE', 'gateway shutting down'));
    }
    this.live.clear();
    this.listeners.clear();
  }

  private joinedFields(input: JoinInput, drained: boolean, now: number) {
    return {
      internalAddress: input.internalAddress,
      vxlanMac: input.vxlanMac,
      capabilities: [...input.capabilities],
      drained,
      state: (drained ? 'draining' : 'active') as MemberStateName,
      lastSeenUnixMs: now,
      downReason: '',
    };
  }

  /**
   * joinWrite runs a join's store write. The node's heartbeats can only start once it has the answer,
   * so while the write runs its liveness waits, and the timeout counts from the answer: a busy etcd
   * (a thousand agents joining) must not make every rejoining node time out before it could beat, and
   * join again, and again.
   */
  private async joinWrite(name: string, write: () => Promise<void>): Promise<void> {
    const live = this.live.get(name);
    if (live !== undefined) live.joining = true;
    try {
      await write();
    } finally {
      if (live !== undefined && this.live.get(name) === live) {
        live.joining = false;
        const rec = this.records.get(name);
        if (rec !== undefined) rec.lastSeenUnixMs = this.clock.now();
        live.timer.refresh();
      }
    }
  }

  private startSession(name: string): void {
    const old = this.live.get(name);
    if (old !== undefined) {
      old.timer.cancel();
      old.stream?.end(new ControlError('FAILED_PRECONDITION', 'superseded by a newer join'));
    }
    const session = ++this.sessions;
    const timer = this.livenessTimer(name, session, this.heartbeatTimeoutMs);
    const joinedAt = this.records.get(name)?.lastSeenUnixMs ?? 0;
    this.live.set(name, { session, timer, stream: null, closed: false, joinedAt, joining: false });
  }

  /**
   * livenessTimer judges the node `ms` from now (and at each refresh) by its last beat. `graced`: this
   * judgement was already put off once because the gateway itself was late.
   */
  private livenessTimer(name: string, session: number, ms: number, graced = false): Timer {
    let due = this.clock.now() + ms;
    const timer = this.clock.setTimer(ms, () => {
      const late = this.clock.now() - due;
      // After a busy spell (a long GC, a starved CPU) the timer runs before the heartbeats that came
      // meanwhile are read: judge once they have been, by the last one seen.
      this.clock.afterPendingIo(() => {
        const rec = this.records.get(name);
        const live = this.live.get(name);
        if (live?.session !== session || rec === undefined) return;
        if (live.joining) {
          live.timer = this.livenessTimer(name, session, this.heartbeatTimeoutMs);
          return;
        }
        // This gateway was busy past a heartbeat interval (measured: 200–400 ms runs of the switch's
        // rebuild and major GCs with a thousand members): the node had no fair chance to be heard.
        // Judge once more, one interval later.
        if (!graced && late > this.heartbeatIntervalMs) {
          this.lateJudgements++;
          live.timer = this.livenessTimer(name, session, this.heartbeatIntervalMs, true);
          return;
        }
        const left = rec.lastSeenUnixMs + this.heartbeatTimeoutMs - this.clock.now();
        if (left <= 0)
          this.markDown(name, live.closed ? 'heartbeat stream closed' : 'heartbeat timeout', 'down');
        // early (a refresh restarts a shortened timer with its shorter delay): judge again when due
        else live.timer = this.livenessTimer(name, session, left);
      });
    });
    return {
      refresh: () => {
        due = this.clock.now() + ms;
        timer.refresh();
      },
      cancel: () => timer.cancel(),
    };
  }

  /** dropSession ends the node's heartbeat session here without judging the node. */
  private dropSession(name: string, reason: string): void {
    const live = this.live.get(name);
    if (live === undefined) return;
    this.live.delete(name);
    live.timer.cancel();
    live.stream?.end(new ControlError('FAILED_PRECONDITION', `${name}: ${reason}: join again`));
  }

  private markDown(name: string, reason: string, kind: 'down' | 'left'): void {
    const rec = this.records.get(name);
    if (rec === undefined) return;
    const live = this.live.get(name);
    if (live !== undefined) {
      // Forget the session first so the stream's own close does not come back here.
      this.live.delete(name);
      live.timer.cancel();
      live.stream?.end(new ControlError('FAILED_PRECONDITION', `${name} is down (${reason}): join again`));
    }
    // a node that comes back reports its checks again; until then nothing is known
    this.health.delete(name);
    if (rec.state === 'down' && kind === 'down') return;
    rec.state = 'down';
    rec.downReason = reason;
    this.log.info({ node: name, id: rec.id, reason }, kind === 'left' ? 'node left' : 'node down');
    this.emit(kind, rec);
    if (kind === 'down') this.persist(rec);
  }

  /**
   * generation counts the changes `onChange` reports: a reader that polls (the data-path probe, five
   * times a second) copies `members()` again only when it moved.
   */
  get generation(): number {
    return this.changes;
  }

  private emit(kind: MemberChangeKind, rec: MemberRecord, remote = false): void {
    this.changes++;
    const change: MemberChange = { kind, member: structuredClone(rec), ...(remote ? { remote } : {}) };
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.log.error({ err, kind, node: rec.name }, 'membership listener failed');
      }
    }
  }

  private async save(rec: MemberRecord): Promise<void> {
    try {
      await this.store.putMember(structuredClone(rec));
    } catch (err) {
      throw this.storeFailed(err);
    }
  }

  /** persist writes in the background: the state is already in memory, a failure is only logged. */
  private persist(rec: MemberRecord): void {
    this.store.putMember(structuredClone(rec)).catch((err: unknown) => {
      this.log.error({ err, node: rec.name }, 'store write failed');
    });
  }

  private storeFailed(err: unknown): ControlError {
    this.log.error({ err }, 'store write failed');
    return new ControlError('UNAVAILABLE', `store: ${(err as Error).message}`);
  }

  private checkOpen(): void {
    if (this.closed) throw new ControlError('UNAVAILABLE', 'gateway shutting down');
  }
}

/**
 * remoteKind names what a stored change did to a member this gateway held as `prev`; null when
 * nothing a listener cares about changed (a newer last-seen time, an echo).
 */
function remoteKind(prev: MemberRecord | undefined, rec: MemberRecord): MemberChangeKind | null {
  const up = rec.state !== 'down';
  if (prev === undefined) return up ? 'joined' : 'down';
  if (prev.state === 'down' && up) return 'joined';
  if (prev.state !== 'down' && !up) return rec.downReason === 'left' ? 'left' : 'down';
  if (rec.state === 'unreachable' && prev.state !== 'unreachable') return 'unreachable';
  if (prev.state === 'unreachable' && rec.state !== 'unreachable') return 'reachable';
  if (prev.drained !== rec.drained) return rec.drained ? 'draining' : 'undrained';
  const same =
    prev.state === rec.state &&
    prev.internalAddress === rec.internalAddress &&
    prev.vxlanMac === rec.vxlanMac &&
    prev.capabilities.join() === rec.capabilities.join() &&
    (up || prev.downReason === rec.downReason);
  if (same) return null;
  return up ? 'joined' : 'down';
}
