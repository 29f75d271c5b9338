import type { HealthRecord, MemberChange } from '@onehost/control';

export type StatusEventKind =
  | 'down'
  | 'up'
  | 'drain'
  | 'undrain'
  | 'leave'
  | 'reload'
  | 'refused'
  | 'kernel'
  | 'unhealthy'
  | 'healthy'
  | 'unreachable'
  | 'reachable';

/** One thing an operator wants to see happened: a node down, a reload, a refused kernel change. */
export interface StatusEvent {
  /** increases by one per event: a page asks for what it has not seen */
  seq: number;
  /** Unix ms */
  t: number;
  kind: StatusEventKind;
  text: string;
}

/** EventLog keeps the last `capacity` events (bounded: older ones fall off). */
export class EventLog {
  private readonly events: StatusEvent[] = [];
  private seq = 0;
  /** the last state seen per node/check, so that a report lists only the checks that changed */
  private readonly checkStates = new Map<string, string>();

  constructor(readonly capacity = 200) {}

  add(kind: StatusEventKind, text: string, t = Date.now()): void {
    this.events.push({ seq: ++this.seq, t, kind, text });
    if (this.events.length > this.capacity) this.events.shift();
  }

  /** recent lists the kept events, newest first. */
  recent(): StatusEvent[] {
    return [...this.events].reverse();
  }

  /** health records a check's state when it changed (the agent reports every check on each change). */
  health(node: string, h: HealthRecord): void {
    const key = `${node}/${h.name}`;
    const state = `${h.healthy}`;
    if (this.checkStates.get(key) === state) return;
    this.checkStates.set(key, state);
    this.add(
      h.healthy ? 'healthy' : 'unhealthy',
      `${node} ${h.name} ${h.healthy ? 'healthy' : 'failing'}: ${h.description} ${h.detail}`,
      h.sinceUnixMs,
    );
  }

  /** member records a membership change in the operator's words. */
  member(c: MemberChange, t = Date.now()): void {
    const n = c.member.name;
    switch (c.kind) {
      case 'joined':
        this.add('up', `${n} joined (id ${c.member.id}, block ${c.member.block.lo}-${c.member.block.hi})`, t);
        break;
      case 'down':
        this.add('down', `${n} down${c.member.downReason !== '' ? `: ${c.member.downReason}` : ''}`, t);
        break;
      case 'left':
        this.add('leave', `${n} left`, t);
        break;
      case 'draining':
        this.add('drain', `${n} draining`, t);
        break;
      case 'undrained':
        this.add('undrain', `${n} undrained`, t);
        break;
      case 'forgotten':
        this.add('leave', `${n} forgotten`, t);
        break;
      case 'unreachable':
        this.add('unreachable', `${n} unreachable: ${c.member.downReason}`, t);
        break;
      case 'reachable':
        this.add('reachable', `${n} reachable again (data-path probes answered)`, t);
        break;
      case 'health':
        break;
    }
  }
}
