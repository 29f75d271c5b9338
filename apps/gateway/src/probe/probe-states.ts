/** ProbeTiming is how the data-path probe judges a node: a probe per interval, fall and rise counts. */
export interface ProbeTiming {
  /** one probe per node per interval; an answer must arrive before the next one is sent */
  intervalMs: number;
  /** this many unanswered probes in a row make an up node unreachable */
  fall: number;
  /** this many answered probes in a row make an unreachable node reachable again */
  rise: number;
}

/** ProbeTransition is a node whose verdict changed at a tick, with the words for the log. */
export interface ProbeTransition {
  id: number;
  reachable: boolean;
  reason: string;
}

interface NodeProbe {
  reachable: boolean;
  /** sequence of the probe in flight; 0 when it was answered (or none was sent) */
  outstanding: number;
  fails: number;
  passes: number;
  sent: number;
  lost: number;
}

/**
 * ProbeStates is the data-path probe's state machine, without I/O or clocks: the driver calls `tick`
 * once per interval (which judges the probe sent at the previous tick and returns the next sequence
 * number to send per node) and `answered` for each reply. A node starts reachable: the heartbeat
 * already vouches for it, and a broken path is found within `fall` intervals.
 */
export class ProbeStates {
  private readonly nodes = new Map<number, NodeProbe>();
  private seq = 0;

  constructor(readonly timing: ProbeTiming) {}

  /**
   * tick judges the previous round for every node in `ids` (others are forgotten), starts a new one,
   * and returns the transitions. `send(id, seq)` is called for each node with the probe's sequence.
   */
  tick(ids: Iterable<number>, send: (id: number, seq: number) => void): ProbeTransition[] {
    const out: ProbeTransition[] = [];
    const seen = new Set<number>();
    for (const id of ids) {
      seen.add(id);
      let n = this.nodes.get(id);
      if (n === undefined) {
        n = { reachable: true, outstanding: 0, fails: 0, passes: 0, sent: 0, lost: 0 };
        this.nodes.set(id, n);
      } else if (n.outstanding !== 0) {
        n.lost++;
        n.passes = 0;
        n.fails++;
        if (n.reachable && n.fails >= this.timing.fall) {
          n.reachable = false;
          out.push({
            id,
            reachable: false,
            reason: `data path: ${n.fails} probes unanswered (every ${this.timing.intervalMs} ms)`,
          });
        }
      }
      this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
      n.outstanding = this.seq;
      n.sent++;
      send(id, this.seq);
    }
    for (const id of this.nodes.keys()) if (!seen.has(id)) this.nodes.delete(id);
    return out;
  }

  /**
   * answered records a reply; a late or unknown one (not the probe in flight) counts for nothing.
   * Returns the transition when the node is reachable again.
   */
  answered(id: number, seq: number): ProbeTransition | null {
    const n = this.nodes.get(id);
    if (n === undefined || seq === 0 || n.outstanding !== seq) return null;
    n.outstanding = 0;
    n.fails = 0;
    n.passes++;
    if (!n.reachable && n.passes >= this.timing.rise) {
      n.reachable = true;
      return { id, reachable: true, reason: `data path: ${n.passes} probes answered` };
    }
    return null;
  }

  /** reset forgets a node's history (it joined again): it starts reachable. */
  reset(id: number): void {
    this.nodes.delete(id);
  }

  /** counters is what the probe saw of a node: probes sent and lost, and its verdict. */
  counters(id: number): { sent: number; lost: number; reachable: boolean } | undefined {
    const n = this.nodes.get(id);
    return n === undefined ? undefined : { sent: n.sent, lost: n.lost, reachable: n.reachable };
  }

  /** ids lists the nodes being probed. */
  ids(): IterableIterator<number> {
    return this.nodes.keys();
  }
}
