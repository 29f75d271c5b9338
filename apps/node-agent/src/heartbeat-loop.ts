import { describeError, type MembershipConnection, statusName } from '@onehost/control';
import { type HealthCheck, MemberState } from '@onehost/proto';

export interface HeartbeatOptions {
  nodeName: string;
  nodeId: number;
  /** beat this often (the gateway's heartbeat_interval_ms). */
  intervalMs: number;
  /**
   * give up when no acknowledgement came for this long (the gateway's heartbeat_timeout_ms): by then
   * the gateway has marked the node down, or the path to it is gone without the connection noticing.
   */
  timeoutMs: number;
  /** called with the member state of each acknowledgement. */
  onAck?: (state: MemberState) => void;
  /** the node's health checks and a version that grows when one changes: sent when it moved */
  health?: () => { version: number; checks: HealthCheck[] };
  now?: () => number;
}

/**
 * HeartbeatLoop keeps one Heartbeat stream going: a beat every interval, each acknowledged by the
 * gateway. `closed` resolves with the reason once the stream is over (the gateway ended or refused it,
 * the connection broke, acknowledgements stopped, or `end()` was called); it never rejects.
 */
export class HeartbeatLoop {
  readonly closed: Promise<string>;
  private readonly stream: ReturnType<MembershipConnection['heartbeat']>;
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private lastAckAt: number;
  private sequence = 0;
  /** the health version this stream last sent (-1: none yet, so the first beat carries it) */
  private healthSent = -1;
  private finished = false;
  private resolveClosed!: (reason: string) => void;

  constructor(
    conn: MembershipConnection,
    private readonly opts: HeartbeatOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.lastAckAt = this.now();
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.stream = conn.heartbeat();
    this.stream.on('data', (ack: { state: MemberState }) => {
      this.lastAckAt = this.now();
      this.opts.onAck?.(ack.state);
    });
    // Both can come for one ending; the first one names it.
    this.stream.on('error', (err: unknown) => this.finish(describeError(err)));
    this.stream.on('status', (s: { code: number; details: string }) =>
      this.finish(s.code === 0 ? 'the gateway ended the stream' : `${statusName(s.code)}: ${s.details}`),
    );
    this.timer = setInterval(() => this.beat(), opts.intervalMs);
    this.beat();
  }

  private beat(): void {
    if (this.finished) return;
    if (this.now() - this.lastAckAt > this.opts.timeoutMs) {
      // After a busy spell this timer runs before the acknowledgements that came meanwhile are read
      // (setImmediate runs after the event loop has read its sockets): judge once they have been.
      setImmediate(() => this.judge());
      return;
    }
    this.send();
  }

  private judge(): void {
    if (this.finished) return;
    const silent = this.now() - this.lastAckAt;
    if (silent > this.opts.timeoutMs) {
      this.finish(`no acknowledgement for ${silent} ms`);
      this.stream.cancel();
      return;
    }
    this.send();
  }

  private send(): void {
    this.sequence += 1;
    const h = this.opts.health?.();
    const update = h !== undefined && h.version !== this.healthSent;
    if (update) this.healthSent = h.version;
    this.stream.write({
      nodeName: this.opts.nodeName,
      nodeId: this.opts.nodeId,
      sequence: this.sequence,
      healthUpdate: update,
      health: update ? h.checks : [],
    });
  }

  private finish(reason: string): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    this.resolveClosed(reason);
  }

  /** end stops beating and closes the stream from this side (after a Leave, or when giving up). */
  end(): void {
    const wasOpen = !this.finished;
    this.finish('ended by the agent');
    if (wasOpen) this.stream.end();
  }
}

/** stateName renders a MemberState for logs ("active", "draining", "down"). */
export function stateName(s: MemberState): string {
  return (MemberState[s] ?? String(s)).replace('MEMBER_STATE_', '').toLowerCase();
}
