import { META_STRIDE } from '@onehost/tun';
import { describe, expect, it } from 'vitest';
import { Backpressure } from './backpressure.js';

/** A sink that takes `room` packets per call (Infinity: all) and keeps the writable callbacks. */
class SlowSink {
  room = Number.POSITIVE_INFINITY;
  calls = 0;
  /** (packet index, destination row) in the order sent */
  readonly sent: Array<[number, number]> = [];
  readonly writable: Array<() => void> = [];
  sendUdp(_arena: Uint8Array, _meta: Int32Array, start: number, end: number, dst: Int32Array): number {
    this.calls++;
    const stop = Math.min(end, start + this.room);
    for (let i = start; i < stop; i++) this.sent.push([i, dst[i]!]);
    return stop;
  }
  onWritable(cb: () => void): void {
    this.writable.push(cb);
  }
  /** drain makes room for `n` more per call and calls the one waiting callback. */
  drain(n: number): void {
    this.room = n;
    const cb = this.writable.shift();
    if (cb === undefined) throw new Error('nothing waits for the sink');
    cb();
  }
}

class Source {
  pauses = 0;
  resumes = 0;
  pause(): void {
    this.pauses++;
  }
  resume(): void {
    this.resumes++;
  }
}

const batch = (count: number) => ({
  arena: new Uint8Array(count * 64),
  meta: new Int32Array(count * META_STRIDE),
  dst: Int32Array.from({ length: count }, (_, i) => (i % 3 === 2 ? -1 : i % 4)),
});

describe('Backpressure', () => {
  it('sends a batch the sink takes whole without pausing', () => {
    const sink = new SlowSink();
    const source = new Source();
    const bp = new Backpressure(source, sink, () => true);
    const b = batch(5);
    expect(bp.send(b.arena, b.meta, 5, b.dst)).toBe(true);
    expect(sink.sent.map(([i]) => i)).toEqual([0, 1, 2, 3, 4]);
    expect([source.pauses, source.resumes, sink.writable.length, bp.waiting]).toEqual([0, 0, 0, false]);
  });

  it('pauses on a partial send and sends the rest once, in order, over several drains, then resumes', () => {
    const sink = new SlowSink();
    const source = new Source();
    const bp = new Backpressure(source, sink, () => true);
    const b = batch(10);
    sink.room = 3;
    expect(bp.send(b.arena, b.meta, 10, b.dst)).toBe(false);
    expect([source.pauses, bp.waiting, sink.writable.length]).toEqual([1, true, 1]);
    sink.drain(0); // woken without room: waits again, sends nothing, does not resume
    expect([sink.sent.length, source.resumes, sink.writable.length]).toEqual([3, 0, 1]);
    sink.drain(4);
    expect([sink.sent.length, source.resumes, sink.writable.length]).toEqual([7, 0, 1]);
    sink.drain(100);
    expect([source.pauses, source.resumes, bp.waiting, sink.writable.length]).toEqual([1, 1, false, 0]);
    expect(sink.sent).toEqual(Array.from({ length: 10 }, (_, i) => [i, b.dst[i]]));
  });

  it('does not resume a source the loop stopped meanwhile', () => {
    const sink = new SlowSink();
    const source = new Source();
    let running = true;
    const bp = new Backpressure(source, sink, () => running);
    const b = batch(4);
    sink.room = 1;
    expect(bp.send(b.arena, b.meta, 4, b.dst)).toBe(false);
    running = false;
    sink.drain(10);
    expect(sink.sent.map(([i]) => i)).toEqual([0, 1, 2, 3]);
    expect([source.pauses, source.resumes, bp.waiting]).toEqual([1, 0, false]);
  });
});
